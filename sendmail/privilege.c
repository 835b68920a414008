/*
 * privilege.c - hardening at start-up and giving up privilege (see
 * privilege.h).
 *
 * mailshim may be installed setgid mailshim so that it can read a config
 * file (root:mailshim 0640) its callers cannot, and write the queue.  The
 * caller then controls the environment and the command line of a process
 * that holds the relay's password; glibc's secure mode drops a few
 * variables, but not the ones libcurl and OpenSSL read themselves.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "privilege.h"
#include "util.h"

extern char **environ;

/*
 * What a caller could point elsewhere: where TLS secrets are logged, which
 * proxy sees the connection, which CA is trusted, which OpenSSL config and
 * modules are loaded, how host names resolve, where temporary files go.
 */
static const char *const unsafe_env[] = { "SSLKEYLOGFILE", "CURL_CA_BUNDLE",
	"CURL_HOME", "CURL_SSL_BACKEND", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES", "LOCALDOMAIN",
	"RES_OPTIONS", "HOSTALIASES", "TMPDIR", NULL };

/* The first len bytes of name are a variable mailshim must not honour. */
static int
unsafe(const char *name, size_t len)
{
	static const char proxy[] = "_proxy";
	size_t plen = sizeof(proxy) - 1;

	/* http_proxy, HTTPS_PROXY, all_proxy, no_proxy, smtp_proxy, ... */
	if (len >= plen && !strncasecmp(name + len - plen, proxy, plen))
		return 1;
	for (size_t i = 0; unsafe_env[i]; i++)
		if (strlen(unsafe_env[i]) == len &&
		    !memcmp(unsafe_env[i], name, len))
			return 1;
	return 0;
}

static void
clean_environment(void)
{
	size_t i = 0;

	while (environ && environ[i]) {
		const char *v = environ[i];
		size_t len = strcspn(v, "=");
		char *name;

		if (!unsafe(v, len)) {
			i++;
			continue;
		}
		/* unsetenv() moves the entries after it down: look again at i */
		name = xstrndup(v, len);
		if (unsetenv(name) == -1)
			i++;
		free(name);
	}
}

int
privilege_held(void)
{
	return getegid() != getgid() || geteuid() != getuid();
}

void
privilege_harden(void)
{
	struct rlimit none = { 0, 0 };

	/* best effort: neither call fails on Linux with these arguments */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &none);
	if (privilege_held())
		clean_environment();
}

int
privilege_user_config(const char *config, char **err)
{
	const char *env = getenv("MAILSHIM_CONFIG");
	gid_t gid = getgid();
	uid_t uid = getuid();

	if (!config && !(env && *env))
		return 0;
	if (!privilege_held())
		return 0;
	if (setresgid(gid, gid, gid) == -1 || setresuid(uid, uid, uid) == -1) {
		*err = xasprintf(
		    "cannot give up privilege for a config file of "
		    "your own: %s",
		    strerror(errno));
		return EX_OSERR;
	}
	if (privilege_held()) {
		*err = xasprintf("cannot give up privilege for a config file "
		                 "of your own");
		return EX_OSERR;
	}
	return 0;
}
