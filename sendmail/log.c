/*
 * log.c - the log line: its fields, and writing it to syslog and to the
 * log file (see log.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"

static struct {
	int facility; /* -1: no syslog */
	char *path;   /* the log file, or NULL */
	int fd;       /* open on it, or -1 */
	int broken;   /* an error was said: the file is given up */
} lg = { -1, NULL, -1, 0 };

void
log_setup(const struct config *cfg)
{
	log_close();
	lg.path = cfg->logfile ? xstrdup(cfg->logfile) : NULL;
	lg.facility = cfg->syslog_facility;
	if (lg.facility >= 0)
		openlog("mailshim", LOG_PID, lg.facility);
}

static void
close_file(void)
{
	if (lg.fd >= 0)
		close(lg.fd);
	lg.fd = -1;
}

void
log_close(void)
{
	close_file();
	if (lg.facility >= 0)
		closelog();
	free(lg.path);
	lg.facility = -1;
	lg.path = NULL;
	lg.broken = 0;
}

/* ---- the fields --------------------------------------------------------- */

static const char *const fate_names[] = {
	[FATE_SENT] = "sent",
	[FATE_QUEUED] = "queued",
	[FATE_DEFERRED] = "deferred",
	[FATE_BOUNCED] = "bounced",
	[FATE_FAILED] = "failed",
};

const char *
log_exit_name(int status, char *buf, size_t n)
{
	static const char *const names[] = { "EX_USAGE", "EX_DATAERR",
		"EX_NOINPUT", "EX_NOUSER", "EX_NOHOST", "EX_UNAVAILABLE",
		"EX_SOFTWARE", "EX_OSERR", "EX_OSFILE", "EX_CANTCREAT",
		"EX_IOERR", "EX_TEMPFAIL", "EX_PROTOCOL", "EX_NOPERM",
		"EX_CONFIG" };

	if (status == EX_OK)
		return "EX_OK";
	if (status >= EX__BASE && status <= EX__MAX)
		return names[status - EX__BASE];
	snprintf(buf, n, "%d", status);
	return buf;
}

long long
log_ms_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - start->tv_sec) * 1000 +
	    (now.tv_nsec - start->tv_nsec) / 1000000;
}

const char *
log_quoted_reply(const char *why, int code)
{
	char digits[8];
	size_t k;

	if (!why || code < 200 || code > 599)
		return NULL;
	k = (size_t)snprintf(digits, sizeof(digits), ": %d", code);
	/* the first one: what comes before it is mailshim's (host, user,
	 * address), what follows is the relay's and may say anything */
	for (const char *p = strstr(why, digits); p; p = strstr(p + 1, digits))
		if (p[k] == ' ' || p[k] == '-' || !p[k])
			return p + 2;
	return NULL;
}

/* Can v go into the line as it is? */
static int
is_plain(const char *v)
{
	if (!*v || !strcmp(v, "-"))
		return 0;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '\'' || *p == '"' ||
		    *p == '\\')
			return 0;
	return 1;
}

/* v inside single quotes; with comma, a ',' is written \x2c. */
static void
add_escaped(struct buf *b, const char *v, int comma)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '\'' || *p == '\\') {
			buf_addch(b, '\\');
			buf_addch(b, *p);
		} else if (*p < ' ' || *p == 0x7f || (comma && *p == ',')) {
			buf_addf(b, "\\x%02x", *p);
		} else {
			buf_addch(b, *p);
		}
	}
}

static void
add_field(struct buf *b, const char *key, const char *v, int always_quote)
{
	buf_addf(b, "%s%s=", b->len ? " " : "", key);
	if (!v) {
		buf_addch(b, '-');
	} else if (!always_quote && is_plain(v)) {
		buf_addstr(b, v);
	} else {
		buf_addch(b, '\'');
		add_escaped(b, v, 0);
		buf_addch(b, '\'');
	}
}

static void
add_recipients(struct buf *b, const struct strlist *l)
{
	int plain = l && l->n;

	for (size_t i = 0; plain && i < l->n; i++)
		plain = is_plain(l->v[i]) && !strchr(l->v[i], ',');
	buf_addstr(b, " recipients=");
	if (!l || !l->n) {
		buf_addch(b, '-');
		return;
	}
	if (!plain)
		buf_addch(b, '\'');
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			buf_addch(b, ',');
		if (plain)
			buf_addstr(b, l->v[i]);
		else
			add_escaped(b, l->v[i], 1);
	}
	if (!plain)
		buf_addch(b, '\'');
}

char *
log_format(const struct log_entry *e)
{
	const struct account *a = e->acct;
	struct buf b = BUF_INIT;
	char num[32], *user = NULL;

	buf_init(&b);
	add_field(&b, "id", e->id, 0);
	add_field(&b, "account", a ? a->name : NULL, 0);
	add_field(&b, "host", a ? a->host : NULL, 0);
	snprintf(num, sizeof(num), "%u", a ? a->port : 0);
	add_field(&b, "port", a ? num : NULL, 0);
	add_field(&b, "tls", a ? tls_mode_name(a->tls) : NULL, 0);
	add_field(&b, "auth", a ? auth_mech_name(a->auth) : NULL, 0);
	/* the login name only: the password never comes near the log */
	if (a && a->auth != AUTH_NONE)
		user = account_sasl_user(a);
	add_field(&b, "user", user, 0);
	free(user);
	add_field(&b, "from", !e->from ? NULL : *e->from ? e->from : "<>", 0);
	add_recipients(&b, e->rcpts);
	snprintf(num, sizeof(num), "%lld", e->mailsize);
	add_field(&b, "mailsize", e->mailsize >= 0 ? num : NULL, 0);
	snprintf(num, sizeof(num), "%d", e->smtpstatus);
	add_field(&b, "smtpstatus", e->smtpstatus ? num : NULL, 0);
	add_field(&b, "smtpmsg", e->smtpmsg, 1);
	add_field(&b, "outcome", fate_names[e->fate], 0);
	add_field(
	    &b, "exitcode", log_exit_name(e->exitcode, num, sizeof(num)), 0);
	snprintf(
	    num, sizeof(num), "%lld", e->elapsed_ms > 0 ? e->elapsed_ms : 0);
	add_field(&b, "elapsed_ms", num, 0);
	add_field(&b, "errormsg", e->errormsg, 1);
	return buf_detach(&b);
}

/* ---- writing ------------------------------------------------------------ */

static void
file_broken(const char *why)
{
	fprintf(
	    stderr, "mailshim: cannot write logfile '%s': %s\n", lg.path, why);
	lg.broken = 1;
	close_file();
}

/*
 * Open the log file for appending: a new one is made 0600 whatever the
 * umask (the group's rights are the administrator's to give), an existing
 * one is taken as it is.  Never through a symbolic link, never anything
 * but a regular file (a FIFO would block, a device is no log).
 */
static const char *
open_file(void)
{
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	const char *why = NULL;
	struct stat st;
	int fd;

	fd = open(lg.path, flags | O_CREAT | O_EXCL, 0600);
	if (fd < 0 && errno == EEXIST)
		fd = open(lg.path, flags);
	else if (fd >= 0 && fchmod(fd, 0600))
		why = strerror(errno);
	if (fd < 0)
		return strerror(errno);
	if (!why && fstat(fd, &st))
		why = strerror(errno);
	else if (!why && !S_ISREG(st.st_mode))
		why = "not a regular file";
	if (why) {
		close(fd);
		return why;
	}
	lg.fd = fd;
	return NULL;
}

/* "2026-11-22T19:50:01+00:00": local time, and its offset from UTC */
static void
timestamp(char *buf, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;
	size_t k;

	localtime_r(&now, &tm);
	k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S%z", &tm);
	if (k == 24 && n > 25) {
		/* +0000 becomes +00:00 */
		memmove(buf + 23, buf + 22, 3);
		buf[22] = ':';
	} else if (!k) {
		snprintf(buf, n, "-");
	}
}

static void
write_file(const char *fields)
{
	const char *why;
	char when[40];
	char *line;
	size_t len;
	ssize_t w;

	if (!lg.path || lg.broken)
		return;
	if (lg.fd < 0 && (why = open_file())) {
		file_broken(why);
		return;
	}
	timestamp(when, sizeof(when));
	line = xasprintf(
	    "%s mailshim[%ld]: %s\n", when, (long)getpid(), fields);
	len = strlen(line);
	/* one write: O_APPEND puts it whole at the end, after the lines of
	 * any other process writing the file at the same time */
	do
		w = write(lg.fd, line, len);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		file_broken(strerror(errno));
	else if ((size_t)w != len)
		file_broken("the line was cut short (file system full?)");
	free(line);
}

void
log_write(const struct log_entry *e)
{
	char *fields = log_format(e);

	if (lg.facility >= 0)
		syslog(e->fate == FATE_SENT ? LOG_INFO
		        : e->fate == FATE_QUEUED || e->fate == FATE_DEFERRED
		        ? LOG_NOTICE
		        : LOG_ERR,
		    "%s", fields);
	write_file(fields);
	free(fields);
}
