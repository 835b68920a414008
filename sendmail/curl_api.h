/*
 * curl_api.h - libcurl, loaded when mailshim first needs it.
 *
 * Linking libcurl would make every run pay for loading it and the thirty
 * libraries it needs (about 4 ms here, most of a run that only queues,
 * lists or checks a message).  So mailshim is not linked with it: the
 * transport (submit.c, the only file that includes this one) loads it
 * with dlopen(3) when it first needs it, from the path found at configure
 * time (LIBCURL_PATH: the library mailshim was built against).
 *
 * Each libcurl function submit.c uses is a pointer in curl_api, with the
 * type of its declaration in curl.h; the macros below make a call of
 * curl_easy_init() a call through curl_api.curl_easy_init.  Nothing may
 * call them before curl_api_load() returned 0.
 */
#ifndef MAILSHIM_CURL_API_H
#define MAILSHIM_CURL_API_H

/* plain declarations, not curl.h's type-checking macros */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#define CURL_API_FUNCTIONS(X)                                                  \
	X(curl_global_init)                                                    \
	X(curl_version)                                                        \
	X(curl_version_info)                                                   \
	X(curl_easy_init)                                                      \
	X(curl_easy_setopt)                                                    \
	X(curl_easy_getinfo)                                                   \
	X(curl_easy_perform)                                                   \
	X(curl_easy_send)                                                      \
	X(curl_easy_recv)                                                      \
	X(curl_easy_cleanup)                                                   \
	X(curl_easy_strerror)                                                  \
	X(curl_multi_init)                                                     \
	X(curl_multi_add_handle)                                               \
	X(curl_multi_remove_handle)                                            \
	X(curl_multi_perform)                                                  \
	X(curl_multi_poll)                                                     \
	X(curl_multi_info_read)                                                \
	X(curl_multi_strerror)                                                 \
	X(curl_multi_cleanup)                                                  \
	X(curl_share_init)                                                     \
	X(curl_share_setopt)                                                   \
	X(curl_share_cleanup)                                                  \
	X(curl_slist_append)                                                   \
	X(curl_slist_free_all)

struct curl_api {
#define CURL_API_MEMBER(name) __typeof__(name) *name;
	CURL_API_FUNCTIONS(CURL_API_MEMBER)
#undef CURL_API_MEMBER
};

extern struct curl_api curl_api;

/*
 * Load libcurl and find its functions, once (later calls return what the
 * first did).  0 when they can be used; -1 otherwise, with *err set to
 * why ("cannot load libcurl from PATH: ...") when err is not NULL.  Not
 * for threads: the first call must come before any are started.
 */
int curl_api_load(char **err);

/* The file libcurl is loaded from. */
const char *curl_api_path(void);

#ifndef CURL_API_DEFINE
/* curl.h wraps these in macros that only check the number of arguments */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#define curl_global_init (*curl_api.curl_global_init)
#define curl_version (*curl_api.curl_version)
#define curl_version_info (*curl_api.curl_version_info)
#define curl_easy_init (*curl_api.curl_easy_init)
#define curl_easy_setopt (*curl_api.curl_easy_setopt)
#define curl_easy_getinfo (*curl_api.curl_easy_getinfo)
#define curl_easy_perform (*curl_api.curl_easy_perform)
#define curl_easy_send (*curl_api.curl_easy_send)
#define curl_easy_recv (*curl_api.curl_easy_recv)
#define curl_easy_cleanup (*curl_api.curl_easy_cleanup)
#define curl_easy_strerror (*curl_api.curl_easy_strerror)
#define curl_multi_init (*curl_api.curl_multi_init)
#define curl_multi_add_handle (*curl_api.curl_multi_add_handle)
#define curl_multi_remove_handle (*curl_api.curl_multi_remove_handle)
#define curl_multi_perform (*curl_api.curl_multi_perform)
#define curl_multi_poll (*curl_api.curl_multi_poll)
#define curl_multi_info_read (*curl_api.curl_multi_info_read)
#define curl_multi_strerror (*curl_api.curl_multi_strerror)
#define curl_multi_cleanup (*curl_api.curl_multi_cleanup)
#define curl_share_init (*curl_api.curl_share_init)
#define curl_share_setopt (*curl_api.curl_share_setopt)
#define curl_share_cleanup (*curl_api.curl_share_cleanup)
#define curl_slist_append (*curl_api.curl_slist_append)
#define curl_slist_free_all (*curl_api.curl_slist_free_all)
#endif

#endif
