/*
 * sysinfo.c - host and user names (see sysinfo.h).
 */
#include "config.h"

#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sysinfo.h"
#include "util.h"

char *
sysinfo_mailname(const char *path)
{
	FILE *f = fopen(path ? path : "/etc/mailname", "r");
	char line[256];
	size_t n;

	if (!f)
		return NULL;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	n = strcspn(line, " \t\r\n#");
	return n ? xstrndup(line, n) : NULL;
}

char *
sysinfo_fqdn(void)
{
	char host[256];
	struct addrinfo hints = { 0 }, *res = NULL;
	char *out;

	if (gethostname(host, sizeof(host)) || !host[0])
		return xstrdup("localhost");
	host[sizeof(host) - 1] = '\0';
	if (strchr(host, '.'))
		return xstrdup(host);
	hints.ai_flags = AI_CANONNAME;
	hints.ai_socktype = SOCK_STREAM;
	if (!getaddrinfo(host, NULL, &hints, &res) && res &&
	    res->ai_canonname && strchr(res->ai_canonname, '.'))
		out = xstrdup(res->ai_canonname);
	else
		out = xstrdup(host);
	if (res)
		freeaddrinfo(res);
	return out;
}

char *
sysinfo_username(void)
{
	struct passwd *pw = getpwuid(getuid());

	if (pw && pw->pw_name && pw->pw_name[0])
		return xstrdup(pw->pw_name);
	return xasprintf("uid%lu", (unsigned long)getuid());
}
