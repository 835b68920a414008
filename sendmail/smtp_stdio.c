/*
 * smtp_stdio.c - the SMTP server behind "sendmail -bs" (see smtp_stdio.h).
 *
 * One loop reads a command line, answers it and, for DATA, copies the
 * message into an unlinked temporary file.  Replies are collected and
 * written out before the engine waits for input, which is all RFC 2920
 * pipelining asks of a server: commands the client sent ahead are simply
 * answered in order from the input buffer.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "envelope.h"
#include "rfc5322.h"
#include "smtp_stdio.h"

#define CMD_MAX 1000       /* a command line, its CRLF included (issue 5) */
#define IN_MAX 8192        /* the input buffer: the longest piece of a line */
#define REPLY_MAX 2048     /* room for a hook's reply */
#define REPLY_TEXT_MAX 400 /* per line: well inside RFC 5321's 512 octets */
#define REPLY_LINES 16
#define MAX_ERRORS 100 /* protocol errors in a row before we give up */
#define OUT_FLUSH 4096
#define SPOOL_CHUNK 65536

/* How reading (or writing) went. */
enum io { IO_OK, IO_EOF, IO_ERR, IO_TIMEOUT };

struct session {
	const struct smtp_stdio_hooks *h;
	char host[256];
	long max_size;
	int timeout_ms; /* -1: none */

	int in;
	char ibuf[IN_MAX];
	size_t istart, iend;
	int eof;

	int out;
	struct buf obuf;
	enum io out_state; /* IO_OK until a write fails or times out */

	char *helo;
	struct smtp_txn t;
	int in_txn;     /* MAIL accepted */
	int rcpt_tried; /* some RCPT in this transaction, accepted or not */
	int proto_err;  /* this command was answered 500/501/555 */
	int errors;     /* ... and so many commands before it in a row */
	int quit;
};

/* ---- output ------------------------------------------------------------- */

static int
wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Write out the replies collected so far; -1 once output is lost. */
static int
flush_out(struct session *s)
{
	size_t off = 0;

	while (s->out_state == IO_OK && off < s->obuf.len) {
		ssize_t n;
		int r = wait_fd(s->out, POLLOUT, s->timeout_ms);

		if (r <= 0) {
			s->out_state = r == 0 ? IO_TIMEOUT : IO_ERR;
			break;
		}
		n = write(s->out, s->obuf.s + off, s->obuf.len - off);
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			s->out_state = IO_ERR; /* EPIPE: the client is gone */
		else if (n > 0)
			off += (size_t)n;
	}
	buf_reset(&s->obuf);
	return s->out_state == IO_OK ? 0 : -1;
}

static void reply(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct session *s, const char *fmt, ...)
{
	va_list ap;
	char line[REPLY_MAX];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	buf_addstr(&s->obuf, line);
	buf_add(&s->obuf, "\r\n", 2);
	if (s->obuf.len >= OUT_FLUSH)
		flush_out(s);
}

/* A reply to a command the client got wrong (counted by the main loop). */
#define syntax_reply(s, ...)                                                   \
	do {                                                                   \
		(s)->proto_err = 1;                                            \
		reply((s), __VA_ARGS__);                                       \
	} while (0)

static int
is_code(const char *r, const char *classes)
{
	return r[0] && strchr(classes, r[0]) && r[1] >= '0' && r[1] <= '9' &&
	    r[2] >= '0' && r[2] <= '9' &&
	    (r[3] == '\0' || r[3] == ' ' || r[3] == '-' || r[3] == '\r' ||
	        r[3] == '\n');
}

/*
 * Send a reply a hook wrote (see smtp_stdio.h): its lines, "\n" or "\r\n"
 * between them, each "NNN text", "NNN-text" or, after the first, bare
 * text.  Its code must be of one of classes, else it becomes a 451.
 */
static void
hook_reply(struct session *s, const char *r, const char *classes)
{
	const char *text[REPLY_LINES];
	size_t len[REPLY_LINES], nlines = 0;
	const char *p = r;

	if (!is_code(r, classes)) {
		reply(s, "451 4.3.0 Error: internal error");
		return;
	}
	while (*p && nlines < REPLY_LINES) {
		size_t n = strcspn(p, "\n");
		const char *next = p + n + (p[n] == '\n');

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n >= 3 && !memcmp(p, r, 3) &&
		    (n == 3 || p[3] == ' ' || p[3] == '-')) {
			size_t skip = n == 3 ? 3 : 4; /* its own code */

			p += skip;
			n -= skip;
		}
		if (n > 0 || nlines == 0) {
			text[nlines] = p;
			len[nlines++] = n;
		}
		p = next;
	}
	for (size_t i = 0; i < nlines; i++) {
		size_t n = len[i] > REPLY_TEXT_MAX ? REPLY_TEXT_MAX : len[i];

		buf_add(&s->obuf, r, 3);
		buf_addch(&s->obuf, i + 1 < nlines ? '-' : ' ');
		for (size_t j = 0; j < n; j++) {
			unsigned char c = (unsigned char)text[i][j];

			buf_addch(&s->obuf, c < 0x20 || c == 0x7f ? '?' : c);
		}
		buf_add(&s->obuf, "\r\n", 2);
	}
	if (s->obuf.len >= OUT_FLUSH)
		flush_out(s);
}

/* ---- input -------------------------------------------------------------- */

/* Read more input, after sending every reply the client may wait for. */
static enum io
read_more(struct session *s)
{
	for (;;) {
		ssize_t n;
		int r;

		struct pollfd p[2] = { { .fd = s->in, .events = POLLIN },
			/* no events asked: POLLERR/POLLHUP still come, and say
			 * the client closed our output while we wait for it */
			{ .fd = s->out, .events = 0 } };

		if (flush_out(s) < 0)
			return IO_ERR;
		do
			r = poll(p, 2, s->timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r == 0)
			return IO_TIMEOUT;
		if (r < 0)
			return IO_ERR;
		if (!(p[0].revents & (POLLIN | POLLHUP)) &&
		    (p[1].revents & (POLLERR | POLLHUP | POLLNVAL)))
			return IO_ERR; /* nobody reads our replies any more */
		n = read(s->in, s->ibuf + s->iend, sizeof(s->ibuf) - s->iend);
		if (n > 0) {
			s->iend += (size_t)n;
			return IO_OK;
		}
		if (n == 0) {
			s->eof = 1;
			return IO_OK;
		}
		if (errno != EINTR && errno != EAGAIN)
			return IO_ERR;
	}
}

/*
 * The next piece of input: a whole line through its LF, or, for a line
 * longer than the buffer, its next IN_MAX bytes (never ending in a CR, so
 * that a CRLF is never split), or what is left at the end of input.
 * *p stays valid until the next call.
 */
static enum io
next_piece(struct session *s, const char **p, size_t *len, int *lf)
{
	for (;;) {
		char *base = s->ibuf + s->istart;
		size_t avail = s->iend - s->istart;
		char *nl = memchr(base, '\n', avail);
		enum io st;

		*lf = nl != NULL;
		if (nl)
			*len = (size_t)(nl - base) + 1;
		else if (avail == sizeof(s->ibuf))
			*len = avail - (base[avail - 1] == '\r');
		else if (s->eof && avail > 0)
			*len = avail;
		else if (s->eof)
			return IO_EOF;
		else {
			memmove(s->ibuf, base, avail);
			s->istart = 0;
			s->iend = avail;
			if ((st = read_more(s)) != IO_OK)
				return st;
			continue;
		}
		*p = base;
		s->istart += *len;
		return IO_OK;
	}
}

/*
 * Read a command line into line (NUL-terminated, its CRLF or LF removed,
 * *len bytes, which may include NULs).  A line over CMD_MAX octets is
 * skipped to its end and reported with *too_long.  An unterminated line
 * at the end of input counts as a line.
 */
static enum io
read_command(struct session *s, char *line, size_t *len, int *too_long)
{
	const char *p;
	size_t n;
	int lf;
	enum io st;

	*too_long = 0;
	if ((st = next_piece(s, &p, &n, &lf)) != IO_OK)
		return st;
	if (n > CMD_MAX) {
		*too_long = 1;
		while (!lf && (st = next_piece(s, &p, &n, &lf)) == IO_OK)
			;
		return st == IO_EOF ? IO_OK : st;
	}
	if (lf)
		n--;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	memcpy(line, p, n);
	line[n] = '\0';
	*len = n;
	return IO_OK;
}

/* ---- the message file --------------------------------------------------- */

struct spool {
	int fd;
	struct buf b;
	long long size;
	long max;
	int too_big;
	int failed; /* a write failed: the disk is full, say */
};

static int
spool_open(struct spool *sp, long max)
{
	const char *dir = getenv("TMPDIR");
	char *path;

	if (!dir || !*dir)
		dir = "/tmp";
	path = xasprintf("%s/mailshim-bs.XXXXXX", dir);
	sp->fd = mkstemp(path);
	if (sp->fd >= 0)
		unlink(path);
	free(path);
	buf_init(&sp->b);
	sp->size = 0;
	sp->max = max;
	sp->too_big = sp->failed = 0;
	return sp->fd < 0 ? -1 : 0;
}

static void
spool_flush(struct spool *sp)
{
	size_t off = 0;

	while (!sp->failed && off < sp->b.len) {
		ssize_t n = write(sp->fd, sp->b.s + off, sp->b.len - off);

		if (n < 0 && errno != EINTR)
			sp->failed = 1;
		else if (n > 0)
			off += (size_t)n;
	}
	buf_reset(&sp->b);
}

/* Past the size limit or a failed write, the rest is only counted. */
static void
spool_add(struct spool *sp, const char *p, size_t n)
{
	sp->size += (long long)n;
	if (sp->max > 0 && sp->size > sp->max)
		sp->too_big = 1;
	if (sp->too_big || sp->failed)
		return;
	buf_add(&sp->b, p, n);
	if (sp->b.len >= SPOOL_CHUNK)
		spool_flush(sp);
}

static void
spool_close(struct spool *sp)
{
	close(sp->fd);
	buf_release(&sp->b);
}

/*
 * Copy the message up to its lone "." into sp: one leading dot removed
 * from every other line that starts with one (RFC 5321 4.5.2), every line
 * ending, CRLF or bare LF, written as CRLF.  A bare CR is data.
 */
static enum io
read_data(struct session *s, struct spool *sp)
{
	int bol = 1;

	for (;;) {
		const char *p;
		size_t n;
		int lf;
		enum io st = next_piece(s, &p, &n, &lf);

		if (st != IO_OK)
			return st;
		if (bol && p[0] == '.') {
			if (lf && (n == 2 || (n == 3 && p[1] == '\r')))
				return IO_OK;
			p++;
			n--;
		}
		if (lf) {
			n--;
			if (n > 0 && p[n - 1] == '\r')
				n--;
			spool_add(sp, p, n);
			spool_add(sp, "\r\n", 2);
		} else
			spool_add(sp, p, n);
		bol = lf;
	}
}

/* ---- the transaction ---------------------------------------------------- */

/* End the transaction; abandoned: it did not reach the data hook. */
static void
txn_end(struct session *s, int abandoned)
{
	if (s->in_txn && abandoned && s->h->reset)
		s->h->reset(s->h->arg);
	free(s->t.sender);
	s->t.sender = NULL;
	strlist_release(&s->t.rcpts);
	s->t.body_8bit = s->t.smtputf8 = 0;
	s->t.size_param = -1;
	s->in_txn = s->rcpt_tried = 0;
}

/*
 * Parse "FROM:<path> params" (or "TO:..."; kw says which) at args: sets
 * *addr to the address ("" for "<>") and *params to what follows the
 * path.  Returns 0, or -1 for a syntax error with *bad_addr set when the
 * syntax was right but the address is not.
 */
static int
parse_path(
    char *args, const char *kw, char **addr, char **params, int *bad_addr)
{
	size_t kwlen = strlen(kw);
	char *p, *end, *path, *err = NULL;
	const char *why;
	int quoted = 0;

	*bad_addr = 0;
	if (ascii_strncasecmp(args, kw, kwlen))
		return -1;
	p = args + kwlen;
	while (*p == ' ')
		p++; /* "MAIL FROM: <a@b>": not RFC 5321, but common */
	if (*p != '<')
		return -1;
	for (end = p + 1; *end; end++) {
		if (*end == '\\' && end[1])
			end++;
		else if (*end == '"')
			quoted = !quoted;
		else if (*end == '>' && !quoted)
			break;
	}
	if (*end != '>' || (end[1] != '\0' && end[1] != ' '))
		return -1;
	*params = end + 1;
	path = xstrndup(p, (size_t)(end + 1 - p));
	*bad_addr = rfc5322_parse_mailbox(path, addr, &err) < 0;
	free(path);
	free(err);
	if (!*bad_addr && **addr && !rfc5322_addr_is_safe(*addr, &why)) {
		free(*addr);
		*bad_addr = 1;
	}
	return *bad_addr ? -1 : 0;
}

/* Parse a SIZE= value: digits only, LONG_MAX when too big for a long. */
static int
parse_size(const char *v, long *size)
{
	long n = 0;

	if (!*v || strlen(v) > 20)
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		n = n > (LONG_MAX - 9) / 10 ? LONG_MAX : n * 10 + (*v - '0');
	}
	*size = n;
	return 0;
}

/* The MAIL parameters (RFC 1870, RFC 6152, RFC 6531) into s->t. */
static int
mail_params(struct session *s, char *p)
{
	unsigned seen = 0;

	for (;;) {
		char *key, *val;
		unsigned bit;

		while (*p == ' ')
			p++;
		if (!*p)
			return 0;
		key = p;
		p += strcspn(p, " ");
		if (*p)
			*p++ = '\0';
		if ((val = strchr(key, '=')) != NULL)
			*val++ = '\0';
		if (!ascii_strcasecmp(key, "SIZE") && val) {
			bit = 1;
			if (parse_size(val, &s->t.size_param) < 0) {
				syntax_reply(s, "501 5.5.4 Bad SIZE value");
				return -1;
			}
		} else if (!ascii_strcasecmp(key, "BODY") && val) {
			bit = 2;
			if (!ascii_strcasecmp(val, "8BITMIME"))
				s->t.body_8bit = 1;
			else if (ascii_strcasecmp(val, "7BIT")) {
				syntax_reply(s, "501 5.5.4 Bad BODY value");
				return -1;
			}
		} else if (!ascii_strcasecmp(key, "SMTPUTF8") && !val) {
			bit = 4;
			s->t.smtputf8 = 1;
		} else {
			syntax_reply(s, "555 5.5.4 Unsupported option");
			return -1;
		}
		if (seen & bit) {
			syntax_reply(s, "501 5.5.4 Repeated option");
			return -1;
		}
		seen |= bit;
	}
}

/* ---- commands ----------------------------------------------------------- */

static void
cmd_helo(struct session *s, const char *args, int esmtp)
{
	if (!*args) {
		syntax_reply(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	for (const char *p = args; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			syntax_reply(s, "501 5.5.4 Bad %s hostname",
			    esmtp ? "EHLO" : "HELO");
			return;
		}
	txn_end(s, 1);
	free(s->helo);
	s->helo = xstrdup(args);
	s->t.helo = s->helo;
	s->t.esmtp = esmtp;
	if (!esmtp) {
		reply(s, "250 %s", s->host);
		return;
	}
	reply(s, "250-%s", s->host);
	reply(s, "250-PIPELINING");
	reply(s, "250-8BITMIME");
	if (s->max_size > 0)
		reply(s, "250-SIZE %ld", s->max_size);
	else
		reply(s, "250-SIZE");
	reply(s, "250-ENHANCEDSTATUSCODES");
	reply(s, "250 SMTPUTF8");
}

static void
cmd_mail(struct session *s, char *args)
{
	char *addr, *params, r[REPLY_MAX] = "";
	int bad_addr;

	if (s->in_txn) {
		reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (parse_path(args, "FROM:", &addr, &params, &bad_addr) < 0) {
		if (bad_addr)
			syntax_reply(s, "501 5.1.7 Bad sender address syntax");
		else
			syntax_reply(
			    s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if (mail_params(s, params) < 0)
		goto reject;
	if (s->max_size > 0 && s->t.size_param > s->max_size) {
		reply(s, "552 5.3.4 Message size exceeds fixed limit");
		goto reject;
	}
	if (s->h->mail && s->h->mail(s->h->arg, &s->t, addr, r, sizeof(r))) {
		hook_reply(s, r, "45");
		goto reject;
	}
	s->t.sender = addr;
	s->in_txn = 1;
	reply(s, "250 2.1.0 Ok");
	return;
reject:
	free(addr);
	txn_end(s, 0);
}

static void
cmd_rcpt(struct session *s, char *args)
{
	char *addr, *params, r[REPLY_MAX] = "";
	int bad_addr;

	if (!s->in_txn) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (parse_path(args, "TO:", &addr, &params, &bad_addr) < 0) {
		if (bad_addr)
			syntax_reply(
			    s, "501 5.1.3 Bad recipient address syntax");
		else
			syntax_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	s->rcpt_tried = 1;
	while (*params == ' ')
		params++;
	if (*params)
		syntax_reply(s, "555 5.5.4 Unsupported option");
	else if (!*addr)
		syntax_reply(s, "501 5.1.3 Bad recipient address syntax");
	else if (strlist_has(&s->t.rcpts, addr))
		reply(s, "250 2.1.5 Ok");
	else if (s->t.rcpts.n >= ENVELOPE_RCPT_MAX)
		/* the envelope's own limit; RFC 5321 4.5.3.1.8 asks for 100 */
		reply(s, "452 4.5.3 Error: too many recipients");
	else if (s->h->rcpt && s->h->rcpt(s->h->arg, &s->t, addr, r, sizeof(r)))
		hook_reply(s, r, "45");
	else {
		strlist_push_owned(&s->t.rcpts, addr);
		reply(s, "250 2.1.5 Ok");
		return;
	}
	free(addr);
}

static enum io
cmd_data(struct session *s, const char *args)
{
	struct spool sp;
	char r[REPLY_MAX] = "";
	enum io st;

	if (*args) {
		syntax_reply(s, "501 5.5.4 Syntax: DATA");
		return IO_OK;
	}
	if (!s->in_txn) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		return IO_OK;
	}
	if (s->t.rcpts.n == 0) {
		if (s->rcpt_tried)
			reply(s, "554 5.5.1 Error: no valid recipients");
		else
			reply(s, "503 5.5.1 Error: need RCPT command");
		return IO_OK;
	}
	if (spool_open(&sp, s->max_size) < 0) {
		reply(s, "451 4.3.0 Error: cannot create temporary file");
		return IO_OK;
	}
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	st = read_data(s, &sp);
	if (st == IO_OK) {
		spool_flush(&sp);
		if (sp.too_big)
			reply(s, "552 5.3.4 Message size exceeds fixed limit");
		else if (sp.failed || lseek(sp.fd, 0, SEEK_SET) != 0)
			reply(s, "452 4.3.1 Insufficient system storage");
		else {
			if (s->h->data)
				s->h->data(
				    s->h->arg, &s->t, sp.fd, r, sizeof(r));
			hook_reply(s, r, "245");
			s->in_txn = 0; /* not abandoned: the data hook had it */
		}
		txn_end(s, 1);
	}
	spool_close(&sp);
	return st;
}

/* Answer one command line (len bytes at line, NUL-terminated). */
static enum io
dispatch(struct session *s, char *line, size_t len)
{
	char *args;
	size_t vlen;

	if (memchr(line, '\0', len)) {
		syntax_reply(s, "500 5.5.2 Error: NUL character in command");
		return IO_OK;
	}
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		line[--len] = '\0';
	vlen = strcspn(line, " ");
	for (args = line + vlen; *args == ' '; args++)
		;
#define VERB(v) (vlen == sizeof(v) - 1 && !ascii_strncasecmp(line, v, vlen))
	if (VERB("EHLO") || VERB("HELO"))
		cmd_helo(s, args, VERB("EHLO"));
	else if (VERB("MAIL"))
		cmd_mail(s, args);
	else if (VERB("RCPT"))
		cmd_rcpt(s, args);
	else if (VERB("DATA"))
		return cmd_data(s, args);
	else if (VERB("RSET") && *args)
		syntax_reply(s, "501 5.5.4 Syntax: RSET");
	else if (VERB("RSET")) {
		txn_end(s, 1);
		reply(s, "250 2.0.0 Ok");
	} else if (VERB("NOOP"))
		reply(s, "250 2.0.0 Ok");
	else if (VERB("VRFY") && !*args)
		syntax_reply(s, "501 5.5.4 Syntax: VRFY address");
	else if (VERB("VRFY"))
		reply(s,
		    "252 2.5.2 Cannot VRFY user, but will accept message "
		    "and attempt delivery");
	else if (VERB("HELP"))
		reply(s,
		    "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
		    "NOOP VRFY HELP QUIT");
	else if (VERB("QUIT")) {
		reply(s, "221 2.0.0 Bye");
		s->quit = 1;
	} else if (VERB("EXPN") || VERB("AUTH") || VERB("STARTTLS") ||
	    VERB("BDAT") || VERB("ETRN") || VERB("TURN"))
		reply(s, "502 5.5.1 Error: command not implemented");
	else
		syntax_reply(s, "500 5.5.1 Error: command not recognized");
#undef VERB
	return IO_OK;
}

int
smtp_stdio_serve(int in, int out, const struct smtp_stdio_opts *o,
    const struct smtp_stdio_hooks *h)
{
	static const struct smtp_stdio_hooks no_hooks;
	struct session *s = xcalloc(1, sizeof(*s));
	const char *host = o->hostname && *o->hostname ? o->hostname
	                                               : "localhost";
	char line[CMD_MAX + 1];
	enum io st;
	int result;
	size_t i;

	/* it goes into every greeting: no spaces, no control characters */
	for (i = 0; host[i] && i + 1 < sizeof(s->host); i++) {
		unsigned char c = (unsigned char)host[i];

		s->host[i] = c <= ' ' || c == 0x7f ? '?' : (char)c;
	}
	s->h = h ? h : &no_hooks;
	s->max_size = o->max_size;
	s->timeout_ms = -1;
	if (o->idle_timeout > 0)
		s->timeout_ms = o->idle_timeout > INT_MAX / 1000
		    ? INT_MAX
		    : o->idle_timeout * 1000;
	s->in = in;
	s->out = out;
	buf_init(&s->obuf);
	s->t.size_param = -1;

	reply(s, "220 %s ESMTP mailshim", s->host);
	for (;;) {
		size_t len;
		int too_long;

		st = read_command(s, line, &len, &too_long);
		if (st != IO_OK)
			break;
		s->proto_err = 0;
		if (too_long)
			syntax_reply(s, "500 5.5.2 Line too long");
		else
			st = dispatch(s, line, len);
		if (st != IO_OK || s->quit || s->out_state != IO_OK)
			break;
		s->errors = s->proto_err ? s->errors + 1 : 0;
		if (s->errors >= MAX_ERRORS) {
			reply(
			    s, "421 4.7.0 %s Error: too many errors", s->host);
			break;
		}
	}

	if (s->quit)
		result = 0;
	else if (s->out_state != IO_OK)
		result = s->out_state == IO_TIMEOUT ? EX_TEMPFAIL : EX_IOERR;
	else if (st == IO_TIMEOUT) {
		reply(s, "421 4.4.2 %s Error: timeout exceeded", s->host);
		result = EX_TEMPFAIL;
	} else if (st == IO_ERR)
		result = EX_IOERR;
	else if (st == IO_EOF)
		result = s->in_txn ? EX_PROTOCOL : 0;
	else
		result = EX_PROTOCOL; /* too many errors */
	flush_out(s);
	txn_end(s, 1);
	free(s->helo);
	buf_release(&s->obuf);
	free(s);
	return result;
}
