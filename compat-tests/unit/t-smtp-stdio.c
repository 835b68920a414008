/*
 * t-smtp-stdio.c - the "sendmail -bs" SMTP engine, driven as its clients
 * drive it: each case forks a child that serves over two pipes with test
 * hooks (which log every call to a file and answer from a script keyed on
 * the address), talks to it, and checks every reply line, the exit code
 * and the log: which hooks were called, and the exact bytes of each
 * message the data hook received.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "smtp_stdio.h"
#include "tap.h"
#include "util.h"

#define HOST "test.example"
#define WAIT_MS 5000

/* ---- the hooks (they run in the server's process) ----------------------- */

static int logfd = -1;
static int queued;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
note(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	if (write(logfd, s, strlen(s)) < 0)
		abort();
	free(s);
}

static int
starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static int
h_mail(void *arg, const struct smtp_txn *t, const char *addr, char *reply,
    size_t n)
{
	(void)arg;
	note("MAIL <%s> helo=%s esmtp=%d size=%ld 8bit=%d utf8=%d sender=%s\n",
	    addr, t->helo ? t->helo : "-", t->esmtp, t->size_param,
	    t->body_8bit, t->smtputf8, t->sender ? "set" : "null");
	if (starts(addr, "deny@")) {
		snprintf(
		    reply, n, "553 5.7.1 <%s>: Sender address rejected", addr);
		return 1;
	}
	return starts(addr, "noreply@"); /* refuses, says nothing */
}

static int
h_rcpt(void *arg, const struct smtp_txn *t, const char *addr, char *reply,
    size_t n)
{
	(void)arg;
	note("RCPT <%s> #%zu\n", addr, t->rcpts.n);
	if (starts(addr, "reject@"))
		snprintf(reply, n, "550 5.1.1 <%s>: Recipient address rejected",
		    addr);
	else if (starts(addr, "temp@"))
		snprintf(reply, n, "450 4.2.0 mailbox busy");
	else if (starts(addr, "multi@"))
		snprintf(reply, n,
		    "550-5.1.1 first\n550 5.1.1 second\r\nthird\x01\r\n");
	else if (starts(addr, "liar@"))
		snprintf(reply, n, "250 2.1.5 refused, says it is fine");
	else
		return 0;
	return 1;
}

static void
h_data(void *arg, const struct smtp_txn *t, int fd, char *reply, size_t n)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t k;

	(void)arg;
	buf_init(&b);
	while ((k = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)k);
	note("DATA <%s>", t->sender);
	for (size_t i = 0; i < t->rcpts.n; i++)
		note(" <%s>", t->rcpts.v[i]);
	note(" len=%zu\n", b.len);
	if (write(logfd, b.s, b.len) < 0)
		abort();
	note("[end]\n");
	buf_release(&b);
	if (starts(t->sender, "perm@"))
		snprintf(reply, n, "554 5.7.1 relay says no");
	else if (starts(t->sender, "temp@"))
		snprintf(reply, n, "451 4.3.0 relay unavailable");
	else if (starts(t->sender, "junk@"))
		snprintf(reply, n, "hello");
	else
		snprintf(reply, n, "250 2.0.0 Ok: queued as Q%d", ++queued);
}

static void
h_reset(void *arg)
{
	(void)arg;
	note("RESET\n");
}

static const struct smtp_stdio_hooks hooks = {
	.mail = h_mail, .rcpt = h_rcpt, .data = h_data, .reset = h_reset
};

/* ---- a conversation with a server in a child process -------------------- */

struct conv {
	const char *name;
	pid_t pid;
	int to, from; /* our ends of its input and output */
	int lfd;      /* its hooks' log */
	struct buf in;
	int out_done;
	struct buf log;
	int status; /* its exit code; 128 + signal if killed */
};

static void
conv_start(struct conv *c, const char *name, long max_size, int idle)
{
	struct smtp_stdio_opts o = { HOST, max_size, idle };
	char path[] = "/tmp/t-smtp-stdio.XXXXXX";
	int pin[2], pout[2];

	memset(c, 0, sizeof(*c));
	c->name = name;
	buf_init(&c->in);
	buf_init(&c->log);
	c->lfd = mkstemp(path);
	if (c->lfd < 0 || pipe(pin) || pipe(pout))
		abort();
	unlink(path);
	fflush(stdout);
	c->pid = fork();
	if (c->pid < 0)
		abort();
	if (c->pid == 0) {
		int r;

		close(pin[1]);
		close(pout[0]);
		logfd = c->lfd;
		r = smtp_stdio_serve(pin[0], pout[1], &o, &hooks);
		close(pin[0]);
		close(pout[1]);
		buf_release(&c->in);
		buf_release(&c->log);
		exit(r);
	}
	close(pin[0]);
	close(pout[1]);
	c->to = pin[1];
	c->from = pout[0];
}

/* Read what the server has written, waiting up to ms; 0 when nothing. */
static int
conv_read(struct conv *c, int ms)
{
	struct pollfd p = { .fd = c->from, .events = POLLIN };
	char chunk[8192];
	ssize_t n;

	if (c->out_done || poll(&p, 1, ms) <= 0)
		return 0;
	n = read(c->from, chunk, sizeof(chunk));
	if (n <= 0) {
		c->out_done = 1;
		return 0;
	}
	buf_add(&c->in, chunk, (size_t)n);
	return 1;
}

/* Send n bytes, reading replies meanwhile so that neither side blocks. */
static void
conv_send_n(struct conv *c, const void *data, size_t n)
{
	const char *p = data;

	while (n > 0 && c->to >= 0) {
		struct pollfd fds[2] = { { .fd = c->to, .events = POLLOUT },
			{ .fd = c->out_done ? -1 : c->from,
			    .events = POLLIN } };
		ssize_t k;

		if (poll(fds, 2, WAIT_MS) <= 0)
			break;
		if (fds[1].revents)
			conv_read(c, 0);
		if (!fds[0].revents)
			continue;
		k = write(c->to, p, n > 4096 ? 4096 : n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break; /* the server has gone: EPIPE */
		p += k;
		n -= (size_t)k;
	}
}

static void
conv_send(struct conv *c, const char *s)
{
	conv_send_n(c, s, strlen(s));
}

/*
 * The next reply line without its CRLF (a bare LF is kept, so that it
 * shows), or "(nothing)".  Static storage.
 */
static const char *
conv_line(struct conv *c)
{
	static char line[8192];
	char *nl;

	while (!(nl = memchr(c->in.s, '\n', c->in.len)))
		if (!conv_read(c, WAIT_MS))
			return "(nothing)";
	{
		size_t n = (size_t)(nl - c->in.s) + 1;
		size_t keep = n >= 2 && nl[-1] == '\r' ? n - 2 : n;

		if (keep >= sizeof(line))
			keep = sizeof(line) - 1;
		memcpy(line, c->in.s, keep);
		line[keep] = '\0';
		memmove(c->in.s, c->in.s + n, c->in.len - n);
		c->in.len -= n;
	}
	return line;
}

/* Is the next reply line want? Quietly, for loops; says why if not. */
static int
line_is(struct conv *c, const char *want)
{
	const char *got = conv_line(c);

	if (!strcmp(got, want))
		return 1;
	printf("# %s:\n#   got:  '%s'\n#   want: '%s'\n", c->name, got, want);
	return 0;
}

static void
expect(struct conv *c, const char *want)
{
	char name[200];

	snprintf(name, sizeof(name), "%s: %.150s", c->name, want);
	is_str(conv_line(c), want, name);
}

/* End our input, collect all output and the log, reap the server. */
static int
conv_close(struct conv *c)
{
	char chunk[4096];
	ssize_t n;
	int st;

	if (c->to >= 0)
		close(c->to);
	c->to = -1;
	while (conv_read(c, WAIT_MS))
		;
	close(c->from);
	if (waitpid(c->pid, &st, 0) < 0)
		abort();
	c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	lseek(c->lfd, 0, SEEK_SET);
	while ((n = read(c->lfd, chunk, sizeof(chunk))) > 0)
		buf_add(&c->log, chunk, (size_t)n);
	close(c->lfd);
	return c->status;
}

static void
conv_release(struct conv *c)
{
	buf_release(&c->in);
	buf_release(&c->log);
}

/* Print s escaped, runs of one character shortened: "a{8191}". */
static void
show(const char *tag, const char *s, size_t n)
{
	printf("#   %s '", tag);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		size_t run = 1;

		while (i + run < n && s[i + run] == s[i])
			run++;
		if (run > 8 && ch >= 0x20 && ch < 0x7f) {
			printf("%c{%zu}", ch, run);
			i += run - 1;
			continue;
		}

		if (ch == '\n')
			printf("\\n'\n#         '");
		else if (ch == '\r')
			printf("\\r");
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
	printf("'\n");
}

static void
is_mem(
    const char *got, size_t gn, const char *want, size_t wn, const char *name)
{
	if (!ok(gn == wn && !memcmp(got, want, gn), name)) {
		show("got: ", got, gn);
		show("want:", want, wn);
	}
}

/* After conv_close(): no reply left over, this exit code, this log. */
static void
check_end(struct conv *c, int code, const char *log)
{
	char name[200];

	snprintf(name, sizeof(name), "%s: no further replies", c->name);
	ok(c->in.len == 0, name);
	if (c->in.len)
		show("left:", c->in.s, c->in.len);
	snprintf(name, sizeof(name), "%s: exit code %d", c->name, code);
	is_int(c->status, code, name);
	if (log) {
		snprintf(name, sizeof(name), "%s: hook log", c->name);
		is_mem(c->log.s, c->log.len, log, strlen(log), name);
	}
}

#define GREETING "220 " HOST " ESMTP mailshim"

/* ---- the clients -------------------------------------------------------- */

/*
 * Symfony Mailer's SmtpTransport over "sendmail -bs": HELO, one command
 * at a time, "\r\n." stuffed to "\r\n..", the body closed with
 * "\r\n.\r\n", NOOP as a ping, RSET after a refused recipient.
 */
static void
test_symfony(void)
{
	struct conv c;

	conv_start(&c, "symfony", 0, 0);
	expect(&c, GREETING);
	conv_send(&c, "HELO [127.0.0.1]\r\n");
	expect(&c, "250 " HOST);
	conv_send(&c, "MAIL FROM:<app@example.com>\r\n");
	expect(&c, "250 2.1.0 Ok");
	conv_send(&c, "RCPT TO:<to@example.com>\r\n");
	expect(&c, "250 2.1.5 Ok");
	conv_send(&c, "DATA\r\n");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	conv_send(&c,
	    "From: app@example.com\r\nTo: to@example.com\r\n"
	    "Subject: Hi\r\n\r\nline one\r\n");
	conv_send(&c, "..leading dot\r\n...two dots\r\nlast");
	conv_send(&c, "\r\n.\r\n");
	expect(&c, "250 2.0.0 Ok: queued as Q1");
	conv_send(&c, "NOOP\r\n");
	expect(&c, "250 2.0.0 Ok");
	conv_send(&c, "MAIL FROM:<app@example.com>\r\n");
	expect(&c, "250 2.1.0 Ok");
	conv_send(&c, "RCPT TO:<reject@example.com>\r\n");
	expect(&c,
	    "550 5.1.1 <reject@example.com>: Recipient address "
	    "rejected");
	conv_send(&c, "RSET\r\n");
	expect(&c, "250 2.0.0 Ok");
	conv_send(&c, "MAIL FROM:<>\r\n");
	expect(&c, "250 2.1.0 Ok");
	conv_send(&c, "RCPT TO:<to@example.com>\r\n");
	expect(&c, "250 2.1.5 Ok");
	conv_send(&c, "DATA\r\n");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	conv_send(&c, "Subject: bounce\r\n\r\nx\r\n.\r\n");
	expect(&c, "250 2.0.0 Ok: queued as Q2");
	conv_send(&c, "QUIT\r\n");
	expect(&c, "221 2.0.0 Bye");
	conv_close(&c);
	check_end(&c, 0,
	    "MAIL <app@example.com> helo=[127.0.0.1] esmtp=0 size=-1 8bit=0 "
	    "utf8=0 sender=null\n"
	    "RCPT <to@example.com> #0\n"
	    "DATA <app@example.com> <to@example.com> len=100\n"
	    "From: app@example.com\r\nTo: to@example.com\r\nSubject: Hi\r\n"
	    "\r\nline one\r\n.leading dot\r\n..two dots\r\nlast\r\n[end]\n"
	    "MAIL <app@example.com> helo=[127.0.0.1] esmtp=0 size=-1 8bit=0 "
	    "utf8=0 sender=null\n"
	    "RCPT <reject@example.com> #0\n"
	    "RESET\n"
	    "MAIL <> helo=[127.0.0.1] esmtp=0 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "RCPT <to@example.com> #0\n"
	    "DATA <> <to@example.com> len=22\n"
	    "Subject: bounce\r\n\r\nx\r\n[end]\n");
	conv_release(&c);
}

/* A queue worker sending 100 messages in one session, lock step. */
static void
test_hundred(void)
{
	struct conv c;
	int good = 1;
	char want[64], body[64];

	conv_start(&c, "100 messages", 0, 0);
	good &= line_is(&c, GREETING);
	conv_send(&c, "HELO [127.0.0.1]\r\n");
	good &= line_is(&c, "250 " HOST);
	for (int i = 1; i <= 100; i++) {
		conv_send(&c, "MAIL FROM:<app@example.com>\r\n");
		good &= line_is(&c, "250 2.1.0 Ok");
		conv_send(&c, "RCPT TO:<to@example.com>\r\n");
		good &= line_is(&c, "250 2.1.5 Ok");
		conv_send(&c, "DATA\r\n");
		good &= line_is(&c, "354 End data with <CR><LF>.<CR><LF>");
		snprintf(
		    body, sizeof(body), "Subject: %d\r\n\r\n%d\r\n.\r\n", i, i);
		conv_send(&c, body);
		snprintf(want, sizeof(want), "250 2.0.0 Ok: queued as Q%d", i);
		good &= line_is(&c, want);
	}
	conv_send(&c, "QUIT\r\n");
	good &= line_is(&c, "221 2.0.0 Bye");
	ok(good, "100 messages: every reply as expected");
	conv_close(&c);
	check_end(&c, 0, NULL);
	{
		int n = 0;

		for (const char *p = c.log.s; (p = strstr(p, "\nDATA ")); p++)
			n++;
		is_int(n, 100, "100 messages: the data hook saw 100");
		ok(strstr(c.log.s, "Subject: 100\r\n\r\n100\r\n[end]"),
		    "100 messages: the last one intact");
	}
	conv_release(&c);
}

/* Laravel and Swift Mailer: EHLO, MAIL with parameters. */
static void
test_ehlo(void)
{
	struct conv c;

	conv_start(&c, "ehlo", 10485760, 0);
	expect(&c, GREETING);
	conv_send(&c, "EHLO [127.0.0.1]\r\n");
	expect(&c, "250-" HOST);
	expect(&c, "250-PIPELINING");
	expect(&c, "250-8BITMIME");
	expect(&c, "250-SIZE 10485760");
	expect(&c, "250-ENHANCEDSTATUSCODES");
	expect(&c, "250 SMTPUTF8");
	conv_send(&c,
	    "MAIL FROM:<app@example.com> BODY=8BITMIME SIZE=1234 "
	    "SMTPUTF8\r\n");
	expect(&c, "250 2.1.0 Ok");
	conv_send(&c,
	    "RCPT TO:<j\xc3\xbcrgen@b\xc3\xbc"
	    "cher.example>\r\n");
	expect(&c, "250 2.1.5 Ok");
	conv_send(&c, "RCPT TO:<to@example.com>\r\n");
	expect(&c, "250 2.1.5 Ok");
	conv_send(&c, "RCPT TO:<to@example.com>\r\n");
	expect(&c, "250 2.1.5 Ok");
	conv_send(&c, "DATA\r\n");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	conv_send(&c, "Subject: caf\xc3\xa9\r\n\r\n\xe2\x82\xac\r\n.\r\n");
	expect(&c, "250 2.0.0 Ok: queued as Q1");
	/* a second EHLO: the same reply, a new session state */
	conv_send(&c, "ehlo other\r\nmail from:<a@example.com> body=7bit\r\n");
	expect(&c, "250-" HOST);
	expect(&c, "250-PIPELINING");
	expect(&c, "250-8BITMIME");
	expect(&c, "250-SIZE 10485760");
	expect(&c, "250-ENHANCEDSTATUSCODES");
	expect(&c, "250 SMTPUTF8");
	expect(&c, "250 2.1.0 Ok");
	conv_send(&c, "QUIT\r\n");
	expect(&c, "221 2.0.0 Bye");
	conv_close(&c);
	check_end(&c, 0,
	    "MAIL <app@example.com> helo=[127.0.0.1] esmtp=1 size=1234 8bit=1 "
	    "utf8=1 sender=null\n"
	    "RCPT <j\xc3\xbcrgen@b\xc3\xbc"
	    "cher.example> #0\n"
	    "RCPT <to@example.com> #1\n"
	    "DATA <app@example.com> <j\xc3\xbcrgen@b\xc3\xbc"
	    "cher.example> <to@example.com> len=23\n"
	    "Subject: caf\xc3\xa9\r\n\r\n\xe2\x82\xac\r\n[end]\n"
	    "MAIL <a@example.com> helo=other esmtp=1 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "RESET\n");
	conv_release(&c);

	/* with no size limit, SIZE has no number */
	conv_start(&c, "ehlo, no limit", 0, 0);
	conv_send(&c, "EHLO x\r\nQUIT\r\n");
	expect(&c, GREETING);
	expect(&c, "250-" HOST);
	expect(&c, "250-PIPELINING");
	expect(&c, "250-8BITMIME");
	expect(&c, "250-SIZE");
	expect(&c, "250-ENHANCEDSTATUSCODES");
	expect(&c, "250 SMTPUTF8");
	expect(&c, "221 2.0.0 Bye");
	conv_close(&c);
	check_end(&c, 0, "");
	conv_release(&c);
}

/* RFC 2920: a group of commands in one write, answered in order. */
static void
test_pipelining(void)
{
	struct conv c;

	conv_start(&c, "pipelining", 0, 0);
	expect(&c, GREETING);
	conv_send(&c,
	    "EHLO client.example\r\n"
	    "MAIL FROM:<app@example.com>\r\n"
	    "RCPT TO:<a@example.com>\r\n"
	    "RCPT TO:<reject@example.com>\r\n"
	    "RCPT TO:<temp@example.com>\r\n"
	    "RCPT TO:<b@example.com>\r\n"
	    "DATA\r\n");
	expect(&c, "250-" HOST);
	expect(&c, "250-PIPELINING");
	expect(&c, "250-8BITMIME");
	expect(&c, "250-SIZE");
	expect(&c, "250-ENHANCEDSTATUSCODES");
	expect(&c, "250 SMTPUTF8");
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(
	    &c, "550 5.1.1 <reject@example.com>: Recipient address rejected");
	expect(&c, "450 4.2.0 mailbox busy");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	/* the body, the next transaction and QUIT in one write */
	conv_send(&c,
	    "Subject: p\r\n\r\nbody\r\n.\r\n"
	    "RSET\r\nMAIL FROM:<perm@example.com>\r\n"
	    "RCPT TO:<a@example.com>\r\nDATA\r\n"
	    "Subject: q\r\n\r\n.\r\nQUIT\r\n");
	expect(&c, "250 2.0.0 Ok: queued as Q1");
	expect(&c, "250 2.0.0 Ok");
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	expect(&c, "554 5.7.1 relay says no");
	expect(&c, "221 2.0.0 Bye");
	conv_close(&c);
	check_end(&c, 0,
	    "MAIL <app@example.com> helo=client.example esmtp=1 size=-1 "
	    "8bit=0 utf8=0 sender=null\n"
	    "RCPT <a@example.com> #0\n"
	    "RCPT <reject@example.com> #1\n"
	    "RCPT <temp@example.com> #1\n"
	    "RCPT <b@example.com> #1\n"
	    "DATA <app@example.com> <a@example.com> <b@example.com> len=20\n"
	    "Subject: p\r\n\r\nbody\r\n[end]\n"
	    "MAIL <perm@example.com> helo=client.example esmtp=1 size=-1 "
	    "8bit=0 utf8=0 sender=null\n"
	    "RCPT <a@example.com> #0\n"
	    "DATA <perm@example.com> <a@example.com> len=14\n"
	    "Subject: q\r\n\r\n[end]\n");
	conv_release(&c);
}

/* The data hook gets exactly the unstuffed message, CRLF throughout. */
static void
test_data_bytes(void)
{
	static const char in[] = "Subject: t\n\n"
	                         "..dot\n"
	                         ".\tdot tab\r\n"
	                         "...\r\n"
	                         "nul\0byte\xff\xfe\n"
	                         "bare\rcr\r\n"
	                         "cr at end\r\r\n"
	                         "\n"
	                         " .\r\n"
	                         ". \n"
	                         ".\n";
	static const char out[] = "Subject: t\r\n\r\n"
	                          ".dot\r\n"
	                          "\tdot tab\r\n"
	                          "..\r\n"
	                          "nul\0byte\xff\xfe\r\n"
	                          "bare\rcr\r\n"
	                          "cr at end\r\r\n"
	                          "\r\n"
	                          " .\r\n"
	                          " \r\n";
	struct conv c;
	struct buf msg = BUF_INIT, want = BUF_INIT;
	const char *log;

	conv_start(&c, "data bytes", 0, 0);
	conv_send(&c,
	    "HELO x\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.com>"
	    "\nDATA\n");
	conv_send_n(&c, in, sizeof(in) - 1);
	conv_send(&c, "QUIT\n");
	expect(&c, GREETING);
	expect(&c, "250 " HOST);
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	expect(&c, "250 2.0.0 Ok: queued as Q1");
	expect(&c, "221 2.0.0 Bye");
	conv_close(&c);
	check_end(&c, 0, NULL);
	log = strstr(c.log.s, "len=");
	ok(log && strtol(log + 4, NULL, 10) == (long)sizeof(out) - 1,
	    "data bytes: length");
	log = log ? strchr(log, '\n') : NULL;
	if (log)
		log++;
	is_mem(log ? log : "", log ? sizeof(out) - 1 : 0, out, sizeof(out) - 1,
	    "data bytes: unstuffed, CRLF, NUL and 8-bit kept");
	conv_release(&c);

	/*
	 * Lines longer than the engine's buffer: a CRLF that falls on the
	 * buffer's edge, a dot in mid-line at the start of a piece, a line
	 * with a bare LF, then a stuffed dot.
	 */
	buf_init(&msg);
	buf_init(&want);
	for (int i = 0; i < 8191; i++)
		buf_addch(&msg, 'a');
	buf_addstr(&msg, "\r\n");
	for (int i = 0; i < 8192; i++)
		buf_addch(&msg, 'b');
	buf_addstr(&msg, ".\r\n");
	for (int i = 0; i < 8192; i++)
		buf_addch(&msg, 'c');
	buf_addstr(&msg, ".\r\n");
	for (int i = 0; i < 20000; i++)
		buf_addch(&msg, 'd');
	buf_addstr(&msg, "\n..x\r\n");
	buf_add(&want, msg.s, msg.len);
	want.len -= 20006;
	for (int i = 0; i < 20000; i++)
		buf_addch(&want, 'd');
	buf_addstr(&want, "\r\n.x\r\n");
	buf_addstr(&msg, ".\r\n");

	conv_start(&c, "long lines", 0, 0);
	conv_send(&c,
	    "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
	    "DATA\r\n");
	conv_send_n(&c, msg.s, msg.len);
	conv_send(&c, "QUIT\r\n");
	expect(&c, GREETING);
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	expect(&c, "250 2.0.0 Ok: queued as Q1");
	expect(&c, "221 2.0.0 Bye");
	conv_close(&c);
	check_end(&c, 0, NULL);
	log = strchr(c.log.s, '\n');
	log = log ? strchr(log + 1, '\n') : NULL;
	log = log ? strchr(log + 1, '\n') : NULL;
	if (log)
		log++;
	is_mem(log ? log : "", log ? want.len : 0, want.s, want.len,
	    "long lines: message intact");
	conv_release(&c);
	buf_release(&msg);
	buf_release(&want);
}

/* Command lines: the 1000-octet limit, NULs, bare LF, case, spaces. */
static void
test_lines(void)
{
	struct conv c;
	struct buf b = BUF_INIT;

	buf_init(&b);
	conv_start(&c, "lines", 0, 0);
	expect(&c, GREETING);
	for (int i = 0; i < 5000; i++)
		buf_addch(&b, 'X');
	buf_addstr(&b, "\r\n");
	conv_send(&c, b.s);
	expect(&c, "500 5.5.2 Line too long");
	conv_send(&c, "NOOP\r\n");
	expect(&c, "250 2.0.0 Ok");
	/* 998 octets and CRLF: the longest allowed; one more is too long */
	buf_reset(&b);
	buf_addstr(&b, "NOOP ");
	while (b.len < 998)
		buf_addch(&b, 'y');
	buf_addstr(&b, "\r\n");
	conv_send(&c, b.s);
	expect(&c, "250 2.0.0 Ok");
	b.len -= 2;
	buf_addstr(&b, "y\r\n");
	conv_send(&c, b.s);
	expect(&c, "500 5.5.2 Line too long");
	/* 999 octets and a bare LF: 1000 */
	b.len -= 2;
	buf_addstr(&b, "\n");
	conv_send(&c, b.s);
	expect(&c, "250 2.0.0 Ok");
	/* a long line split over several writes, then a command after it */
	buf_reset(&b);
	for (int i = 0; i < 30000; i++)
		buf_addch(&b, i % 2 ? '\r' : 'z');
	conv_send(&c, b.s);
	conv_send(&c, "still the same line\r\nNOOP\r\n");
	expect(&c, "500 5.5.2 Line too long");
	expect(&c, "250 2.0.0 Ok");
	conv_send_n(&c, "NO\0OP\r\n", 7);
	expect(&c, "500 5.5.2 Error: NUL character in command");
	conv_send_n(&c, "MAIL FROM:<a@b\0c>\r\n", 19);
	expect(&c, "500 5.5.2 Error: NUL character in command");
	conv_send(&c, "\xff\xfe\x80\x01\x7f\r\n");
	expect(&c, "500 5.5.1 Error: command not recognized");
	conv_send(&c, "\r\n");
	expect(&c, "500 5.5.1 Error: command not recognized");
	conv_send(&c,
	    "noop\nhelo [127.0.0.1]\nmail from: <a@example.com>\n"
	    "rcpt to:  <b@example.com>   \nRcPt To:<c@example.com>\n"
	    "data\n");
	expect(&c, "250 2.0.0 Ok");
	expect(&c, "250 " HOST);
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	conv_send(&c, "x\n.\nquit\n");
	expect(&c, "250 2.0.0 Ok: queued as Q1");
	expect(&c, "221 2.0.0 Bye");
	conv_close(&c);
	check_end(&c, 0,
	    "MAIL <a@example.com> helo=[127.0.0.1] esmtp=0 size=-1 8bit=0 "
	    "utf8=0 sender=null\n"
	    "RCPT <b@example.com> #0\n"
	    "RCPT <c@example.com> #1\n"
	    "DATA <a@example.com> <b@example.com> <c@example.com> len=3\n"
	    "x\r\n[end]\n");
	conv_release(&c);
	buf_release(&b);
}

/* Sequence and syntax errors: answered, and the session goes on. */
static void
test_errors(void)
{
	struct conv c;

	conv_start(&c, "errors", 0, 0);
	expect(&c, GREETING);
	conv_send(&c, "RCPT TO:<b@example.com>\r\nDATA\r\n");
	expect(&c, "503 5.5.1 Error: need MAIL command");
	expect(&c, "503 5.5.1 Error: need MAIL command");
	conv_send(&c,
	    "MAIL FROM:<a@example.com>\r\nMAIL FROM:<a@example.com>"
	    "\r\nDATA\r\n");
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "503 5.5.1 Error: nested MAIL command");
	expect(&c, "503 5.5.1 Error: need RCPT command");
	conv_send(&c, "RCPT TO:<reject@example.com>\r\nDATA\r\n");
	expect(
	    &c, "550 5.1.1 <reject@example.com>: Recipient address rejected");
	expect(&c, "554 5.5.1 Error: no valid recipients");
	conv_send(&c,
	    "RCPT TO:<multi@example.com>\r\n"
	    "RCPT TO:<liar@example.com>\r\n"
	    "RCPT TO:<>\r\n"
	    "RCPT TO:<b@example.com> NOTIFY=NEVER\r\n"
	    "RCPT TO:b@example.com\r\n"
	    "RCPT <b@example.com>\r\n"
	    "RCPT TO:<b c@example.com>\r\n"
	    "RCPT TO:<b@example.com>x\r\n"
	    "RCPT TO:<b@example.com\r\n"
	    "RCPT TO:<\"quoted >\"@example.com>\r\n"
	    "RCPT TO:<postmaster>\r\n");
	expect(&c, "550-5.1.1 first");
	expect(&c, "550-5.1.1 second");
	expect(&c, "550 third?");
	expect(&c, "451 4.3.0 Error: internal error");
	expect(&c, "501 5.1.3 Bad recipient address syntax");
	expect(&c, "555 5.5.4 Unsupported option");
	expect(&c, "501 5.5.4 Syntax: RCPT TO:<address>");
	expect(&c, "501 5.5.4 Syntax: RCPT TO:<address>");
	expect(&c, "501 5.1.3 Bad recipient address syntax");
	expect(&c, "501 5.5.4 Syntax: RCPT TO:<address>");
	expect(&c, "501 5.5.4 Syntax: RCPT TO:<address>");
	expect(&c, "501 5.1.3 Bad recipient address syntax");
	expect(&c, "250 2.1.5 Ok");
	conv_send(&c,
	    "RSET\r\nMAIL\r\nMAIL FROM:\r\nMAIL FROM:a@example.com\r\n"
	    "MAIL TO:<a@example.com>\r\n"
	    "MAIL FROM:<a@@example.com>\r\n"
	    "MAIL FROM:<a@example.com> FOO=1\r\n"
	    "MAIL FROM:<a@example.com> SIZE=abc\r\n"
	    "MAIL FROM:<a@example.com> BODY=BINARYMIME\r\n"
	    "MAIL FROM:<a@example.com> SIZE=1 SIZE=2\r\n"
	    "MAIL FROM:<a@example.com> AUTH=<>\r\n"
	    "MAIL FROM:<deny@example.com>\r\n"
	    "MAIL FROM:<noreply@example.com>\r\n"
	    "RSET x\r\nDATA x\r\nVRFY\r\nEHLO\r\nHELO\r\n");
	expect(&c, "250 2.0.0 Ok");
	expect(&c, "501 5.5.4 Syntax: MAIL FROM:<address>");
	expect(&c, "501 5.5.4 Syntax: MAIL FROM:<address>");
	expect(&c, "501 5.5.4 Syntax: MAIL FROM:<address>");
	expect(&c, "501 5.5.4 Syntax: MAIL FROM:<address>");
	expect(&c, "501 5.1.7 Bad sender address syntax");
	expect(&c, "555 5.5.4 Unsupported option");
	expect(&c, "501 5.5.4 Bad SIZE value");
	expect(&c, "501 5.5.4 Bad BODY value");
	expect(&c, "501 5.5.4 Repeated option");
	expect(&c, "555 5.5.4 Unsupported option");
	expect(&c, "553 5.7.1 <deny@example.com>: Sender address rejected");
	expect(&c, "451 4.3.0 Error: internal error");
	expect(&c, "501 5.5.4 Syntax: RSET");
	expect(&c, "501 5.5.4 Syntax: DATA");
	expect(&c, "501 5.5.4 Syntax: VRFY address");
	expect(&c, "501 5.5.4 Syntax: EHLO hostname");
	expect(&c, "501 5.5.4 Syntax: HELO hostname");
	conv_send(&c,
	    "VRFY root\r\nEXPN staff\r\nHELP\r\nSTARTTLS\r\n"
	    "AUTH PLAIN AGFAYg==\r\nFOO bar\r\nNOOP ignored\r\n");
	expect(&c,
	    "252 2.5.2 Cannot VRFY user, but will accept message and "
	    "attempt delivery");
	expect(&c, "502 5.5.1 Error: command not implemented");
	expect(&c,
	    "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP "
	    "VRFY HELP QUIT");
	expect(&c, "502 5.5.1 Error: command not implemented");
	expect(&c, "502 5.5.1 Error: command not implemented");
	expect(&c, "500 5.5.1 Error: command not recognized");
	expect(&c, "250 2.0.0 Ok");
	/* EHLO and RSET end a transaction; the reset hook hears of it */
	conv_send(&c,
	    "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
	    "HELO again\r\nDATA\r\n"
	    "MAIL FROM:<junk@example.com>\r\nRCPT TO:<b@example.com>\r\n"
	    "DATA\r\nx\r\n.\r\n"
	    "MAIL FROM:<temp@example.com>\r\nRCPT TO:<b@example.com>\r\n"
	    "DATA\r\nx\r\n.\r\n"
	    "QUIT now\r\n");
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "250 " HOST);
	expect(&c, "503 5.5.1 Error: need MAIL command");
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	expect(&c, "451 4.3.0 Error: internal error");
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	expect(&c, "451 4.3.0 relay unavailable");
	expect(&c, "221 2.0.0 Bye");
	conv_close(&c);
	check_end(&c, 0,
	    "MAIL <a@example.com> helo=- esmtp=0 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "RCPT <reject@example.com> #0\n"
	    "RCPT <multi@example.com> #0\n"
	    "RCPT <liar@example.com> #0\n"
	    "RCPT <postmaster> #0\n"
	    "RESET\n"
	    "MAIL <deny@example.com> helo=- esmtp=0 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "MAIL <noreply@example.com> helo=- esmtp=0 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "MAIL <a@example.com> helo=- esmtp=0 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "RCPT <b@example.com> #0\n"
	    "RESET\n"
	    "MAIL <junk@example.com> helo=again esmtp=0 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "RCPT <b@example.com> #0\n"
	    "DATA <junk@example.com> <b@example.com> len=3\nx\r\n[end]\n"
	    "MAIL <temp@example.com> helo=again esmtp=0 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "RCPT <b@example.com> #0\n"
	    "DATA <temp@example.com> <b@example.com> len=3\nx\r\n[end]\n");
	conv_release(&c);
}

/* SIZE: refused at MAIL when announced, at the end when not. */
static void
test_size(void)
{
	struct conv c;
	struct buf b = BUF_INIT;
	char *line = xmalloc(1001);

	buf_init(&b);
	memset(line, 'm', 998);
	memcpy(line + 998, "\r\n", 3);
	conv_start(&c, "size", 10000, 0);
	expect(&c, GREETING);
	conv_send(&c, "EHLO x\r\n");
	expect(&c, "250-" HOST);
	expect(&c, "250-PIPELINING");
	expect(&c, "250-8BITMIME");
	expect(&c, "250-SIZE 10000");
	expect(&c, "250-ENHANCEDSTATUSCODES");
	expect(&c, "250 SMTPUTF8");
	conv_send(&c,
	    "MAIL FROM:<a@example.com> SIZE=10001\r\n"
	    "MAIL FROM:<a@example.com> SIZE=99999999999999999999\r\n"
	    "MAIL FROM:<a@example.com> SIZE=10000\r\n"
	    "RCPT TO:<b@example.com>\r\nDATA\r\n");
	expect(&c, "552 5.3.4 Message size exceeds fixed limit");
	expect(&c, "552 5.3.4 Message size exceeds fixed limit");
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	/* exactly 10000 octets once unstuffed: 10 lines of 1000 */
	for (int i = 0; i < 10; i++) {
		if (i == 3)
			buf_addch(&b, '.'); /* stuffed: does not count */
		buf_addstr(&b, line);
	}
	buf_addstr(&b, ".\r\n");
	conv_send(&c, b.s);
	expect(&c, "250 2.0.0 Ok: queued as Q1");
	/* one octet more (the last line one longer), with no SIZE= */
	conv_send(&c,
	    "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
	    "DATA\r\n");
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	b.len -= 5;
	buf_addstr(&b, "m\n.\r\n");
	conv_send(&c, b.s);
	expect(&c, "552 5.3.4 Message size exceeds fixed limit");
	/* far more, and the session goes on */
	conv_send(&c,
	    "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
	    "DATA\r\n");
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	for (int i = 0; i < 1000; i++)
		conv_send(&c, line);
	conv_send(&c, ".\r\nRSET\r\n");
	expect(&c, "552 5.3.4 Message size exceeds fixed limit");
	expect(&c, "250 2.0.0 Ok");
	conv_send(&c, "QUIT\r\n");
	expect(&c, "221 2.0.0 Bye");
	conv_close(&c);
	check_end(&c, 0, NULL);
	ok(strstr(c.log.s, "len=10000\n"),
	    "size: the message at the limit passed");
	{
		int n = 0;

		for (const char *p = c.log.s; (p = strstr(p, "DATA <")); p++)
			n++;
		is_int(n, 1, "size: no data hook for the messages too big");
		ok(strstr(c.log.s,
		       "[end]\nMAIL <a@example.com> helo=x esmtp=1 "
		       "size=-1 8bit=0 utf8=0 sender=null\nRCPT "
		       "<b@example.com> #0\nRESET\nMAIL"),
		    "size: the reset hook heard of the refused message");
	}
	conv_release(&c);
	buf_release(&b);
	free(line);
}

/* The end of input, anywhere: the exit code tells what was lost. */
static void
test_eof(void)
{
	struct conv c;

	conv_start(&c, "eof mid-DATA", 0, 0);
	conv_send(&c,
	    "HELO x\r\nMAIL FROM:<a@example.com>\r\n"
	    "RCPT TO:<b@example.com>\r\nDATA\r\nSubject: t\r\n\r\n"
	    "half a line");
	expect(&c, GREETING);
	expect(&c, "250 " HOST);
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	conv_close(&c);
	check_end(&c, EX_PROTOCOL,
	    "MAIL <a@example.com> helo=x esmtp=0 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "RCPT <b@example.com> #0\n"
	    "RESET\n");
	conv_release(&c);

	conv_start(&c, "eof at a lone dot without its line end", 0, 0);
	conv_send(&c,
	    "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
	    "DATA\r\nx\r\n.");
	expect(&c, GREETING);
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	conv_close(&c);
	check_end(&c, EX_PROTOCOL, NULL);
	ok(!strstr(c.log.s, "DATA"), "eof at a lone dot: no data hook call");
	conv_release(&c);

	conv_start(&c, "eof after MAIL", 0, 0);
	conv_send(&c, "MAIL FROM:<a@example.com>\r\n");
	expect(&c, GREETING);
	expect(&c, "250 2.1.0 Ok");
	conv_close(&c);
	check_end(&c, EX_PROTOCOL, NULL);
	conv_release(&c);

	/* answered 250, then no QUIT: nothing lost, exit 0 */
	conv_start(&c, "eof after a message", 0, 0);
	conv_send(&c,
	    "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
	    "DATA\r\nx\r\n.\r\n");
	expect(&c, GREETING);
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	expect(&c, "250 2.0.0 Ok: queued as Q1");
	conv_close(&c);
	check_end(&c, 0,
	    "MAIL <a@example.com> helo=- esmtp=0 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "RCPT <b@example.com> #0\n"
	    "DATA <a@example.com> <b@example.com> len=3\nx\r\n[end]\n");
	conv_release(&c);

	conv_start(&c, "eof at once", 0, 0);
	conv_close(&c);
	expect(&c, GREETING);
	check_end(&c, 0, "");
	conv_release(&c);

	/* an unterminated last command still counts */
	conv_start(&c, "eof after QUIT without CRLF", 0, 0);
	conv_send(&c, "NOOP\r\nQUIT");
	conv_close(&c);
	expect(&c, GREETING);
	expect(&c, "250 2.0.0 Ok");
	expect(&c, "221 2.0.0 Bye");
	check_end(&c, 0, "");
	conv_release(&c);

	conv_start(&c, "eof in a long line", 0, 0);
	for (int i = 0; i < 20; i++)
		conv_send(&c,
		    "0123456789012345678901234567890123456789"
		    "0123456789012345678901234567890123456789");
	conv_close(&c);
	expect(&c, GREETING);
	expect(&c, "500 5.5.2 Line too long");
	check_end(&c, 0, "");
	conv_release(&c);
}

/* The client that stops talking, or stops listening. */
static void
test_idle_and_epipe(void)
{
	struct conv c;

	conv_start(&c, "idle timeout", 0, 1);
	expect(&c, GREETING);
	conv_send(&c, "MAIL FROM:<a@example.com>\r\n");
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "421 4.4.2 " HOST " Error: timeout exceeded");
	conv_close(&c);
	check_end(&c, EX_TEMPFAIL,
	    "MAIL <a@example.com> helo=- esmtp=0 size=-1 8bit=0 utf8=0 "
	    "sender=null\n"
	    "RESET\n");
	conv_release(&c);

	conv_start(&c, "idle timeout in DATA", 0, 1);
	conv_send(&c,
	    "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
	    "DATA\r\nSubject: t\r\n");
	expect(&c, GREETING);
	expect(&c, "250 2.1.0 Ok");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "354 End data with <CR><LF>.<CR><LF>");
	expect(&c, "421 4.4.2 " HOST " Error: timeout exceeded");
	conv_close(&c);
	check_end(&c, EX_TEMPFAIL, NULL);
	ok(!strstr(c.log.s, "DATA"), "idle timeout in DATA: no data hook call");
	conv_release(&c);

	/* the client closes its end of our output: EPIPE ends the session */
	conv_start(&c, "client stops reading", 0, 0);
	expect(&c, GREETING);
	close(c.from);
	c.from = open("/dev/null", O_RDONLY);
	c.out_done = 1;
	conv_send(&c, "NOOP\r\n");
	conv_close(&c);
	check_end(&c, EX_IOERR, "");
	conv_release(&c);

	/* ... which is no error once it has said QUIT */
	conv_start(&c, "client stops reading after QUIT", 0, 0);
	expect(&c, GREETING);
	conv_send(&c, "QUIT\r\n");
	close(c.from);
	c.from = open("/dev/null", O_RDONLY);
	c.out_done = 1;
	conv_close(&c);
	check_end(&c, 0, "");
	conv_release(&c);
}

/* Limits that keep a runaway client from running the server forever. */
static void
test_limits(void)
{
	struct conv c;
	struct buf b = BUF_INIT;
	int good = 1;

	buf_init(&b);
	conv_start(&c, "too many errors", 0, 0);
	for (int i = 0; i < 99; i++)
		buf_addstr(
		    &b, i % 2 ? "BOGUS\r\n" : "MAIL FROM:nobrackets\r\n");
	buf_addstr(&b, "NOOP\r\n"); /* a good command starts the count again */
	for (int i = 0; i < 100; i++)
		buf_addstr(&b, "BOGUS\r\n");
	buf_addstr(&b, "NOOP\r\n");
	conv_send(&c, b.s);
	conv_close(&c);
	good &= line_is(&c, GREETING);
	for (int i = 0; i < 99; i++)
		good &= line_is(&c,
		    i % 2 ? "500 5.5.1 Error: command not recognized"
		          : "501 5.5.4 Syntax: MAIL FROM:<address>");
	good &= line_is(&c, "250 2.0.0 Ok");
	for (int i = 0; i < 100; i++)
		good &= line_is(&c, "500 5.5.1 Error: command not recognized");
	ok(good, "too many errors: 99 errors, NOOP, 100 errors");
	expect(&c, "421 4.7.0 " HOST " Error: too many errors");
	check_end(&c, EX_PROTOCOL, "");
	conv_release(&c);

	buf_reset(&b);
	good = 1;
	conv_start(&c, "too many recipients", 0, 0);
	buf_addstr(&b, "MAIL FROM:<a@example.com>\r\n");
	for (int i = 0; i <= 1000; i++)
		buf_addf(&b, "RCPT TO:<r%d@example.com>\r\n", i);
	buf_addstr(&b, "RCPT TO:<r0@example.com>\r\nRSET\r\nQUIT\r\n");
	conv_send(&c, b.s);
	conv_close(&c);
	good &= line_is(&c, GREETING);
	good &= line_is(&c, "250 2.1.0 Ok");
	for (int i = 0; i < 1000; i++)
		good &= line_is(&c, "250 2.1.5 Ok");
	ok(good, "too many recipients: 1000 accepted");
	expect(&c, "452 4.5.3 Error: too many recipients");
	expect(&c, "250 2.1.5 Ok");
	expect(&c, "250 2.0.0 Ok");
	expect(&c, "221 2.0.0 Bye");
	check_end(&c, 0, NULL);
	conv_release(&c);
	buf_release(&b);
}

/* Random bytes and random commands: the server never crashes. */
static void
test_garbage(void)
{
	static const char *const words[] = { "HELO x", "EHLO y",
		"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA",
		".", "..", "RSET", "NOOP", "mail from:<", "rcpt to:<>", "QUITX",
		"VRFY", "SIZE=", "MAIL FROM:<a@example.com> SIZE=", "BDAT" };
	unsigned long x = 88172645463325252UL;

	for (int round = 0; round < 8; round++) {
		struct conv c;
		struct buf b = BUF_INIT;
		int replies = 0, bad = 0;
		char name[64];

		buf_init(&b);
		for (int i = 0; i < 3000; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (x % 3)
				buf_addstr(&b,
				    words[(x >> 8) %
				        (sizeof(words) / sizeof(words[0]))]);
			else
				for (unsigned n =
				         (x >> 16) % (round < 4 ? 40 : 3000);
				     n > 0; n--) {
					x ^= x << 13;
					x ^= x >> 7;
					x ^= x << 17;
					buf_addch(&b, (int)(x & 0xff));
				}
			buf_addstr(&b, x & 0x100000 ? "\r\n" : "\n");
		}
		snprintf(name, sizeof(name), "garbage %d", round);
		conv_start(&c, name, round % 2 ? 5000 : 0, 0);
		conv_send_n(&c, b.s, b.len);
		conv_close(&c);
		/* every reply a well-formed line, and many of them */
		for (size_t i = 0; i < c.in.len && !bad; replies++) {
			const char *r = c.in.s + i;
			char *nl = memchr(r, '\n', c.in.len - i);
			size_t n = nl ? (size_t)(nl - r) : 0;

			bad = n < 5 || r[n - 1] != '\r' || r[0] < '2' ||
			    r[0] > '5' || (r[3] != ' ' && r[3] != '-');
			for (size_t j = 0; j + 1 < n; j++)
				bad |= (unsigned char)r[j] < 0x20;
			i += n + 1;
		}
		snprintf(name, sizeof(name),
		    "garbage %d: %d replies, each well formed", round, replies);
		ok(!bad && replies > 100, name);
		snprintf(
		    name, sizeof(name), "garbage %d: exit %d", round, c.status);
		ok(c.status == 0 || c.status == EX_PROTOCOL, name);
		conv_release(&c);
		buf_release(&b);
	}
}

/* A script in a file, as "sendmail -bs < script" reads it, in-process. */
static void
test_file_input(void)
{
	static const char script[] = "EHLO x\r\nMAIL FROM:<a@example.com>\r\n"
	                             "RCPT TO:<b@example.com>\r\nDATA\r\n"
	                             ".x\r\n.\r\nQUIT\r\n";
	static const char transcript[] = GREETING
	    "\r\n250-" HOST "\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
	    "250-SIZE 100\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
	    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 Bye\r\n";
	struct smtp_stdio_opts o = { HOST, 100, 10 };
	FILE *in = tmpfile(), *out = tmpfile(), *log = tmpfile();
	char got[1024];
	size_t n;
	int r;

	fputs(script, in);
	fflush(in);
	rewind(in);
	logfd = fileno(log);
	queued = 0;
	r = smtp_stdio_serve(fileno(in), fileno(out), &o, &hooks);
	is_int(r, 0, "file input: exit code");
	rewind(out);
	n = fread(got, 1, sizeof(got), out);
	is_mem(got, n, transcript, sizeof(transcript) - 1,
	    "file input: the whole transcript");
	rewind(log);
	n = fread(got, 1, sizeof(got), log);
	got[n] = '\0';
	ok(strstr(got, "len=3\nx\r\n[end]\n") != NULL,
	    "file input: the message");
	fclose(in);
	fclose(out);
	fclose(log);
	logfd = -1;
}

int
main(void)
{
	char tmp[] = "/tmp/t-smtp-stdio-dir.XXXXXX";

	signal(SIGPIPE, SIG_IGN);
	alarm(300); /* a server that hangs fails the test, not the build */
	/* the engine's temporary files go here, and must not stay */
	if (!mkdtemp(tmp))
		abort();
	setenv("TMPDIR", tmp, 1);

	test_symfony();
	test_hundred();
	test_ehlo();
	test_pipelining();
	test_data_bytes();
	test_lines();
	test_errors();
	test_size();
	test_eof();
	test_idle_and_epipe();
	test_limits();
	test_garbage();
	test_file_input();

	ok(rmdir(tmp) == 0, "no temporary file left behind");
	return done_testing();
}
