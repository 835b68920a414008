/*
 * curl_api.c - load libcrypto and libcurl at run time (see curl_api.h).
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

/* dlopen path into *lib: NULL, or why it could not. */
static char *
open_lib(const char *path, void **lib)
{
	const char *why;

	/* RTLD_NOW: a missing function is said here, not later */
	*lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (*lib)
		return NULL;
	why = dlerror(); /* names the file */
	return xasprintf("cannot load a library: %s", why ? why : path);
}

int
curl_api_load(char **err)
{
	void *crypto, *curl;
	const char *missing = NULL;

	if (state == 0) {
		/* libcrypto first: libcurl's libssl then finds it loaded */
		failure = open_lib(LIBCRYPTO_PATH, &crypto);
		if (!failure)
			failure = open_lib(LIBCURL_PATH, &curl);
		if (!failure) {
#define CURL_API_FIND(lib, name)                                               \
	if (!missing) {                                                        \
		*(void **)&curl_api.name = dlsym(lib, #name);                  \
		if (!curl_api.name)                                            \
			missing = #name;                                       \
	}
#define FIND_CURL(name) CURL_API_FIND(curl, name)
#define FIND_CRYPTO(name) CURL_API_FIND(crypto, name)
			CURL_API_FUNCTIONS(FIND_CURL)
			CRYPTO_API_FUNCTIONS(FIND_CRYPTO)
#undef FIND_CRYPTO
#undef FIND_CURL
#undef CURL_API_FIND
			if (missing)
				failure = xasprintf(
				    "cannot load libcurl or libcrypto: no %s",
				    missing);
		}
		state = failure ? -1 : 1;
	}
	if (state < 0 && err)
		*err = xstrdup(failure);
	return state > 0 ? 0 : -1;
}
