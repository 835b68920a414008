/*
 * curl_api.c - load libcurl at run time (see curl_api.h).
 */
#include "config.h"

#include <dlfcn.h>
#include <stdlib.h>

#define CURL_API_DEFINE 1
#include "curl_api.h"
#include "util.h"

struct curl_api curl_api;

static int state;     /* 0: not tried; 1: loaded; -1: failed */
static char *failure; /* why it failed */

const char *
curl_api_path(void)
{
	return LIBCURL_PATH;
}

int
curl_api_load(char **err)
{
	void *lib;
	const char *missing = NULL;

	if (state == 0) {
		/* RTLD_NOW: a missing function is said here, not later */
		lib = dlopen(LIBCURL_PATH, RTLD_NOW | RTLD_LOCAL);
		if (!lib) {
			const char *why = dlerror();
			failure = xasprintf("cannot load libcurl: %s",
			    why ? why : LIBCURL_PATH);
		} else {
#define CURL_API_FIND(name)                                                    \
	if (!missing) {                                                        \
		*(void **)&curl_api.name = dlsym(lib, #name);                  \
		if (!curl_api.name)                                            \
			missing = #name;                                       \
	}
			CURL_API_FUNCTIONS(CURL_API_FIND)
#undef CURL_API_FIND
			if (missing)
				failure = xasprintf("cannot load libcurl: %s "
				                    "has no %s",
				    LIBCURL_PATH, missing);
		}
		state = failure ? -1 : 1;
	}
	if (state < 0 && err)
		*err = xstrdup(failure);
	return state > 0 ? 0 : -1;
}
