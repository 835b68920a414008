/*
 * message.c - read, normalise, spool and edit the message (see message.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "message.h"
#include "rfc5322.h"
#include "util.h"

/* ---- reading ------------------------------------------------------------ */

enum line_state { AT_BOL, AFTER_DOT, IN_LINE };

struct reader {
	struct message *m;
	int ignore_dots;
	int in_headers;
	int first_line;
	int done; /* a lone "." ended the input */
	int pending_cr;
	int lone_cr;        /* the line being ended ended with a lone CR */
	enum line_state st; /* body phase only */
	size_t col;         /* body phase: bytes in the current output line */
	struct buf line;    /* header phase: the current physical line */
	struct buf field;   /* header phase: the open field, folded lines */
	size_t field_name_len;
	char *err;
	int status;
	char *out; /* body bytes not yet written to the spool */
	size_t out_len;
};

/* What the reader keeps before writing to the spool: a write(2) per
 * 64 KiB, and no stdio call per line. */
#define OUT_CAP ((size_t)64 * 1024)

static int
fail(struct reader *r, int status, char *msg)
{
	if (!r->status) {
		r->status = status;
		r->err = msg;
	} else {
		free(msg);
	}
	return status;
}

/*
 * Would n more bytes take the message over m->max_size?  Counted as
 * message_size() counts: the header fields, the empty line after them,
 * the body, as they will be sent.  Checked before each write, so the
 * spool never holds more than the limit.
 */
static int
too_large(struct reader *r, size_t n)
{
	const struct message *m = r->m;

	if (m->max_size <= 0 ||
	    (off_t)m->header_bytes + 2 + m->body_len + (off_t)n <= m->max_size)
		return 0;
	fail(r, EX_DATAERR,
	    xasprintf("message too large: more than %lld bytes "
	              "(max_message_size)",
	        (long long)m->max_size));
	return 1;
}

/* Write what the reader holds, and n more bytes at p, to the spool. */
static void
spool_write(struct reader *r, const char *p, size_t n)
{
	if (r->status)
		return;
	if ((r->out_len &&
	        fwrite(r->out, 1, r->out_len, r->m->body) != r->out_len) ||
	    (n && fwrite(p, 1, n, r->m->body) != n)) {
		int e = errno;
		/* a full disk, a quota, a file size limit: try again later */
		fail(r,
		    e == ENOSPC || e == EDQUOT || e == EFBIG ? EX_TEMPFAIL
		                                             : EX_IOERR,
		    xasprintf("cannot write spool file: %s", strerror(e)));
	}
	r->out_len = 0;
}

static void
body_put(struct reader *r, const char *p, size_t n)
{
	if (r->status || !n || too_large(r, n))
		return;
	if (r->out_len + n <= OUT_CAP) {
		memcpy(r->out + r->out_len, p, n);
		r->out_len += n;
	} else {
		spool_write(r, p, n);
	}
	r->m->body_len += (off_t)n;
}

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/*
 * Body text within a line.  A line may hold 998 octets on the wire (RFC
 * 5321 4.5.3.1.6) and strict relays refuse the whole message otherwise:
 * like Postfix's SMTP client, break longer lines with CRLF SPACE.
 */
static void
body_text(struct reader *r, const char *p, size_t n)
{
	while (n) {
		size_t room = MESSAGE_LINE_MAX - r->col;
		size_t k = n < room ? n : room;

		body_put(r, p, k);
		r->col += k;
		p += k;
		n -= k;
		if (n) {
			body_put(r, "\r\n ", 3);
			r->col = 1;
		}
	}
}

/*
 * Append one physical header line with its CRLF, folded to lines of at
 * most MESSAGE_LINE_MAX octets: before existing white space where there is
 * some (which leaves the field's value as it was), else with CRLF SPACE.
 */
static void
fold_into(struct buf *b, const char *s, size_t n)
{
	/* octets the current output line may still take: after a break
	 * with an inserted space, that space is the line's first */
	size_t room = MESSAGE_LINE_MAX;

	while (n > room) {
		size_t i = room;

		while (i > 1 && !is_wsp((unsigned char)s[i]))
			i--;
		if (i > 1) {
			/* before white space: the next line starts with it */
			buf_add(b, s, i);
			buf_addstr(b, "\r\n");
			room = MESSAGE_LINE_MAX;
		} else {
			i = room;
			buf_add(b, s, i);
			buf_addstr(b, "\r\n ");
			room = MESSAGE_LINE_MAX - 1;
		}
		s += i;
		n -= i;
	}
	buf_add(b, s, n);
	buf_addstr(b, "\r\n");
}

/* Does the line start a header field: a name of printable ASCII other than
 * ':', then optional white space (obsolete syntax), then ':'? */
static size_t
header_name_len(const char *s, size_t n)
{
	size_t i = 0, len;

	while (i < n && s[i] > 32 && s[i] < 127 && s[i] != ':')
		i++;
	len = i;
	while (i < n && is_wsp((unsigned char)s[i]))
		i++;
	return (len && i < n && s[i] == ':') ? len : 0;
}

/* The open field is complete: it joins the message's header fields. */
static void
field_close(struct reader *r)
{
	struct message *m = r->m;
	struct header *h;

	if (!r->field.len)
		return;
	grow_array((void **)&m->h, &m->ah, m->nh + 1, sizeof(*m->h));
	h = &m->h[m->nh++];
	h->field = buf_detach(&r->field);
	h->name_len = r->field_name_len;
}

/*
 * One physical header line: the start of a field (name_len > 0) or a
 * continuation of the open one.  The open field grows in r->field, so a
 * field of many lines is never copied over and over.
 */
static void
header_add_line(struct reader *r, const char *s, size_t n, size_t name_len)
{
	struct message *m = r->m;
	size_t before;

	if (m->header_bytes + n + 2 > MESSAGE_HEADER_MAX) {
		fail(r, EX_DATAERR,
		    xasprintf("header section too large "
		              "(more than %ld bytes)",
		        MESSAGE_HEADER_MAX));
		return;
	}
	if (name_len) {
		field_close(r);
		r->field_name_len = name_len;
	}
	before = r->field.len;
	fold_into(&r->field, s, n);
	m->header_bytes += r->field.len - before;
	too_large(r, 0);
}

/* The header section ends: what follows is body, in the middle of nothing. */
static void
start_body(struct reader *r)
{
	field_close(r);
	r->in_headers = 0;
	r->st = AT_BOL;
	r->col = 0;
}

/* A complete physical line in the header phase. */
static void
header_line(struct reader *r, const char *s, size_t n)
{
	size_t name_len;
	int first = r->first_line;

	r->first_line = 0;
	/* sendmail's rule is about lines ended by LF; a lone CR only gets
	 * written as CRLF */
	if (n == 1 && s[0] == '.' && !r->ignore_dots && !r->lone_cr) {
		r->done = 1;
		return;
	}
	if (n == 0) {
		start_body(r);
		return;
	}
	/* an mbox "From " line before the headers is not part of the mail */
	if (first && n >= 5 && !memcmp(s, "From ", 5))
		return;
	if (is_wsp((unsigned char)s[0]) && r->field.len) {
		header_add_line(r, s, n, 0);
		return;
	}
	name_len = header_name_len(s, n);
	if (name_len) {
		header_add_line(r, s, n, name_len);
		return;
	}
	/* not a header: the body starts here, with no empty line before it */
	start_body(r);
	body_text(r, s, n);
	body_put(r, "\r\n", 2);
}

/* End of a line in the body phase. */
static void
body_eol(struct reader *r)
{
	if (r->st == AFTER_DOT) {
		if (!r->ignore_dots && !r->lone_cr) {
			r->done = 1;
			return;
		}
		body_text(r, ".", 1);
	}
	body_put(r, "\r\n", 2);
	r->st = AT_BOL;
	r->col = 0;
}

static void
header_eol(struct reader *r)
{
	header_line(r, r->line.s ? r->line.s : "", r->line.len);
	buf_reset(&r->line);
}

static void
eol(struct reader *r, int lone_cr)
{
	r->lone_cr = lone_cr;
	if (r->in_headers)
		header_eol(r);
	else
		body_eol(r);
}

/* Has any of the n bytes at p the high bit set?  Eight at a time. */
static int
any_8bit(const char *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		if (w & 0x8080808080808080ULL)
			return 1;
	}
	for (; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return 1;
	return 0;
}

/* Feed n bytes of input through the line-ending state machine.  Runs of
 * ordinary bytes are found with memchr(3); the next CR of the buffer is
 * looked for once, not once a line, as most input has none. */
static void
feed(struct reader *r, const char *p, size_t n)
{
	const char *end = p + n;
	const char *next_cr = NULL; /* the next CR at or after p, or end */

	while (p < end && !r->done && !r->status) {
		if (r->pending_cr) {
			r->pending_cr = 0;
			eol(r, *p != '\n');
			if (*p == '\n') {
				p++;
				continue;
			}
			if (r->done || r->status)
				break;
		}
		if (*p == '\r') {
			r->pending_cr = 1;
			p++;
			continue;
		}
		if (*p == '\n') {
			eol(r, 0);
			p++;
			continue;
		}
		/* a run of ordinary bytes, up to the next CR or LF */
		if (!next_cr || next_cr < p) {
			next_cr = memchr(p, '\r', (size_t)(end - p));
			if (!next_cr)
				next_cr = end;
		}
		const char *q = memchr(p, '\n', (size_t)(next_cr - p));
		if (!q)
			q = next_cr;
		if (!r->m->eight_bit && any_8bit(p, (size_t)(q - p)))
			r->m->eight_bit = 1;
		if (r->in_headers) {
			/* header fields are strings: a NUL would cut one and
			 * glue the next to it */
			if (memchr(p, '\0', (size_t)(q - p))) {
				fail(r, EX_DATAERR,
				    xstrdup("the header section "
				            "contains a NUL byte"));
				return;
			}
			if (r->line.len + (size_t)(q - p) >
			    MESSAGE_HEADER_LINE_MAX) {
				fail(r, EX_DATAERR,
				    xasprintf("header line "
				              "too long (more than %ld bytes)",
				        MESSAGE_HEADER_LINE_MAX));
				return;
			}
			buf_add(&r->line, p, (size_t)(q - p));
		} else {
			if (r->st == AT_BOL && *p == '.') {
				r->st = AFTER_DOT;
				p++;
				continue;
			}
			if (r->st == AFTER_DOT)
				body_text(r, ".", 1);
			body_text(r, p, (size_t)(q - p));
			r->st = IN_LINE;
		}
		p = q;
	}
}

/* End of input: finish a last line that had no line ending. */
static void
finish(struct reader *r)
{
	if (r->done || r->status)
		return;
	if (r->pending_cr) {
		r->pending_cr = 0;
		eol(r, 0); /* "." CR at the very end: the end either way */
		return;
	}
	if (r->in_headers) {
		if (r->line.len)
			header_eol(r);
	} else if (r->st != AT_BOL) {
		body_eol(r);
	}
}

static FILE *
spool_open(const char *tmpdir, char **err, int *status)
{
	const char *dir = tmpdir ? tmpdir : getenv("TMPDIR");
	char *path;
	int fd;
	FILE *f;

	if (!dir || !*dir)
		dir = "/tmp";
	/* anonymous from the start where the file system can (Linux 3.11
	 * on): no name to make and unlink.  Anything else takes the named
	 * way, which also says what went wrong. */
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		goto opened;
	path = xasprintf("%s/mailshim.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0) {
		int e = errno;
		*status = (e == ENOSPC || e == EDQUOT) ? EX_TEMPFAIL
		                                       : EX_CANTCREAT;
		*err = xasprintf(
		    "cannot create spool file in '%s': %s", dir, strerror(e));
		free(path);
		return NULL;
	}
	/* anonymous: nothing is left behind, whatever happens to us */
	unlink(path);
	free(path);
opened:
	f = fdopen(fd, "w+");
	if (!f) {
		close(fd);
		*status = EX_OSERR;
		*err = xasprintf("cannot open spool file: %s", strerror(errno));
		return NULL;
	}
	return f;
}

int
message_read(
    struct message *m, int fd, int ignore_dots, const char *tmpdir, char **err)
{
	struct reader r = { 0 };
	static char in[64 * 1024];
	int status = 0;

	m->body = spool_open(tmpdir, err, &status);
	if (!m->body)
		return status;
	r.m = m;
	r.out = xmalloc(OUT_CAP);
	r.ignore_dots = ignore_dots;
	r.in_headers = 1;
	r.first_line = 1;
	buf_init(&r.line);
	buf_init(&r.field);

	while (!r.done && !r.status) {
		ssize_t n = read(fd, in, sizeof(in));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(&r, EX_IOERR,
			    xasprintf("cannot read the "
			              "message from standard input: %s",
			        strerror(errno)));
			break;
		}
		if (n == 0) {
			finish(&r);
			break;
		}
		feed(&r, in, (size_t)n);
	}
	buf_release(&r.line);
	if (!r.status)
		field_close(&r); /* the input ended in the header section */
	buf_release(&r.field);
	spool_write(&r, NULL, 0);
	free(r.out);
	if (!r.status && (fflush(m->body) || fseeko(m->body, 0, SEEK_SET)))
		fail(&r,
		    errno == ENOSPC || errno == EDQUOT || errno == EFBIG
		        ? EX_TEMPFAIL
		        : EX_IOERR,
		    xasprintf("cannot write spool file: %s", strerror(errno)));
	if (r.status) {
		*err = r.err;
		return r.status;
	}
	return 0;
}

/* ---- headers ------------------------------------------------------------ */

long
message_find(const struct message *m, const char *name, size_t from)
{
	size_t len = strlen(name);

	for (size_t i = from; i < m->nh; i++)
		if (m->h[i].name_len == len &&
		    !ascii_strncasecmp(m->h[i].field, name, len))
			return (long)i;
	return -1;
}

const char *
message_value(const struct message *m, size_t i)
{
	const char *v = strchr(m->h[i].field, ':');
	return v ? v + 1 : "";
}

void
message_remove(struct message *m, const char *name)
{
	size_t j = 0;
	size_t len = strlen(name);

	for (size_t i = 0; i < m->nh; i++) {
		if (m->h[i].name_len == len &&
		    !ascii_strncasecmp(m->h[i].field, name, len)) {
			m->header_bytes -= strlen(m->h[i].field);
			free(m->h[i].field);
			continue;
		}
		m->h[j++] = m->h[i];
	}
	m->nh = j;
}

void
message_append(struct message *m, const char *name, const char *value)
{
	struct header *h;

	grow_array((void **)&m->h, &m->ah, m->nh + 1, sizeof(*m->h));
	h = &m->h[m->nh++];
	h->field = xasprintf("%s: %s\r\n", name, value);
	h->name_len = strlen(name);
	m->header_bytes += strlen(h->field);
}

/* Does a display name need to be a quoted-string (RFC 5322 atext/specials)? */
static int
needs_quotes(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		        (*s >= '0' && *s <= '9') || *s == ' ' ||
		        strchr("!#$%&'*+-/=?^_`{|}~", *s)))
			return 1;
	return 0;
}

static void
base64(struct buf *b, const unsigned char *u, size_t n)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)u[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)u[i + 1] << 8;
		if (i + 2 < n)
			v |= u[i + 2];
		buf_addch(b, tbl[(v >> 18) & 63]);
		buf_addch(b, tbl[(v >> 12) & 63]);
		buf_addch(b, i + 1 < n ? tbl[(v >> 6) & 63] : '=');
		buf_addch(b, i + 2 < n ? tbl[v & 63] : '=');
	}
}

/* An atom of RFC 5322's atext, or something that must be encoded? */
static int
is_atext(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') ||
		        strchr("!#$%&'*+-/=?^_`{|}~", s[i])))
			return 0;
	return 1;
}

/*
 * RFC 2047 B-encoding of n bytes as encoded words of at most 75
 * characters (45 bytes of text each, cut between UTF-8 characters), folded
 * onto lines of their own.
 */
#define WORD_BYTES 45
static void
encode_run(struct buf *b, const unsigned char *u, size_t n)
{
	while (n) {
		size_t k = n < WORD_BYTES ? n : WORD_BYTES;
		/* back off continuation bytes (10xxxxxx) */
		while (k < n && k > 1 && (u[k] & 0xc0) == 0x80)
			k--;
		buf_addstr(b, "=?UTF-8?B?");
		base64(b, u, k);
		buf_addstr(b, "?=");
		u += k;
		n -= k;
		if (n)
			buf_addstr(b, "\r\n ");
	}
}

/*
 * A display name with bytes >= 0x80: plain words stay plain, and each run
 * of words that need encoding becomes encoded words, the spaces inside the
 * run encoded with it.  Readers keep the space between a plain word and an
 * encoded one, and (most of them) drop it between two encoded ones.
 */
static void
encode_phrase(struct buf *b, const char *s)
{
	const char *p = s;

	while (*p) {
		const char *w = p, *run, *run_end;
		size_t n;

		while (*w == ' ')
			w++;
		if (!*w)
			break;
		n = strcspn(w, " ");
		if (b->len && b->s[b->len - 1] != ' ')
			buf_addch(b, ' ');
		if (is_atext(w, n)) {
			buf_add(b, w, n);
			p = w + n;
			continue;
		}
		/* extend the run over following words that need encoding */
		run = w;
		run_end = w + n;
		for (;;) {
			const char *nx = run_end;
			size_t m;

			while (*nx == ' ')
				nx++;
			m = strcspn(nx, " ");
			if (!m || is_atext(nx, m))
				break;
			run_end = nx + m;
		}
		encode_run(
		    b, (const unsigned char *)run, (size_t)(run_end - run));
		p = run_end;
	}
}

static void
format_from(struct buf *b, const char *fullname, const char *sender)
{
	int high = 0;

	if (fullname && *fullname) {
		for (const char *p = fullname; *p; p++)
			high |= (unsigned char)*p >= 0x80;
		if (high) {
			encode_phrase(b, fullname);
		} else if (needs_quotes(fullname)) {
			buf_addch(b, '"');
			for (const char *p = fullname; *p; p++) {
				if (*p == '"' || *p == '\\')
					buf_addch(b, '\\');
				buf_addch(b, *p);
			}
			buf_addch(b, '"');
		} else {
			buf_addstr(b, fullname);
		}
		buf_addf(b, " <%s>", sender);
	} else {
		buf_addstr(b, sender);
	}
}

static void
format_date(char *out, size_t n)
{
	static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri",
		"Sat" };
	static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t now = time(NULL);
	struct tm tm;
	long off;

	localtime_r(&now, &tm);
	off = tm.tm_gmtoff / 60;
	/* names by hand: strftime's %a and %b follow the locale */
	snprintf(out, n, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
	    labs(off) / 60, labs(off) % 60);
}

static char *
make_message_id(const char *domain)
{
	unsigned char rnd[12];
	char hex[sizeof(rnd) * 2 + 1];
	time_t now = time(NULL);
	struct tm tm;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		/* not a secret: time and pid keep it unique enough */
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)(rand() ^ getpid() >> i);
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	gmtime_r(&now, &tm);
	return xasprintf("<%04d%02d%02d%02d%02d%02d.%s@%s>", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, hex,
	    domain);
}

/* -F goes into a header: a CR or LF there would start another one. */
static int
check_fullname(const char *fullname, char **err)
{
	if (fullname)
		for (const char *p = fullname; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				*err = xstrdup("invalid full name (-F): it "
				               "contains a control character");
				return EX_DATAERR;
			}
	return 0;
}

int
message_complete(struct message *m, const char *sender, const char *fullname,
    const char *id_domain, char **err)
{
	int r = check_fullname(fullname, err);

	if (r)
		return r;
	message_remove(m, "Bcc");
	message_remove(m, "Resent-Bcc");
	if (message_find(m, "From", 0) < 0) {
		struct buf b = BUF_INIT;
		format_from(&b, fullname, sender);
		message_append(m, "From", b.s);
		buf_release(&b);
	}
	if (message_find(m, "Date", 0) < 0) {
		char date[64];
		format_date(date, sizeof(date));
		message_append(m, "Date", date);
	}
	if (message_find(m, "Message-ID", 0) < 0) {
		char *id = make_message_id(id_domain);
		message_append(m, "Message-ID", id);
		free(id);
	}
	return 0;
}

/* Replace header i with the physical line s ("Name: value", no CRLF). */
static void
replace_field(struct message *m, size_t i, const char *s, size_t name_len)
{
	struct buf b = BUF_INIT;

	buf_init(&b);
	fold_into(&b, s, strlen(s));
	m->header_bytes -= strlen(m->h[i].field);
	free(m->h[i].field);
	m->h[i].field = buf_detach(&b);
	m->h[i].name_len = name_len;
	m->header_bytes += strlen(m->h[i].field);
}

/* Remove the headers named name after header i. */
static void
remove_after(struct message *m, const char *name, size_t i)
{
	size_t j = i + 1;

	for (size_t k = i + 1; k < m->nh; k++) {
		if (message_find(m, name, k) == (long)k) {
			m->header_bytes -= strlen(m->h[k].field);
			free(m->h[k].field);
			continue;
		}
		m->h[j++] = m->h[k];
	}
	m->nh = j;
}

int
message_rewrite_from(struct message *m, const char *addr, const char *fullname,
    const char *original, char **err)
{
	long i = message_find(m, "From", 0);
	struct buf b = BUF_INIT;
	int r = check_fullname(fullname, err);

	if (r)
		return r;
	buf_init(&b);
	if (i < 0) {
		format_from(&b, fullname, addr);
		message_append(m, "From", b.s);
	} else {
		const char *v = message_value(m, (size_t)i);
		int is_comment;
		char *name = rfc5322_display_name(v, strlen(v), &is_comment);

		if (!name)
			buf_addf(&b, "From: %s", addr);
		else if (is_comment)
			buf_addf(&b, "From: %s %s", addr, name);
		else
			buf_addf(&b, "From: %s <%s>", name, addr);
		free(name);
		replace_field(m, (size_t)i, b.s, 4);
		/* a second From: (RFC 5322 allows one) would still show the
		 * address the relay is not to see */
		remove_after(m, "From", (size_t)i);
	}
	buf_release(&b);
	if (original && *original && !rfc5322_same_address(original, addr) &&
	    message_find(m, "Reply-To", 0) < 0)
		message_append(m, "Reply-To", original);
	return 0;
}

/* ---- writing back ------------------------------------------------------- */

enum { OUT_HEADERS, OUT_SEPARATOR, OUT_BODY, OUT_END };

void
message_init_raw(struct message *m, FILE *f, off_t offset, off_t size)
{
	memset(m, 0, sizeof(*m));
	m->body = f;
	m->body_off = offset;
	m->body_len = size;
	m->raw = 1;
	m->borrowed = 1;
}

void
message_rewind(struct message_cursor *c, const struct message *m)
{
	c->m = m;
	c->hi = c->hoff = 0;
	c->pos = 0;
	c->phase = m->raw ? OUT_BODY : OUT_HEADERS;
}

/* Up to n bytes of the body, at the cursor: pread(2), so that neither the
 * FILE's position nor another cursor gets in the way.  0 at its end; -1 on
 * an error, or if the file ends before the body does. */
static long
body_out(struct message_cursor *c, char *buf, size_t n)
{
	const struct message *m = c->m;
	off_t left = m->body_len - c->pos;
	ssize_t k;

	if ((off_t)n > left)
		n = (size_t)left;
	if (!n)
		return 0;
	do
		k = pread(fileno(m->body), buf, n, m->body_off + c->pos);
	while (k < 0 && errno == EINTR);
	if (k <= 0)
		return -1;
	c->pos += k;
	return (long)k;
}

long
message_out(struct message_cursor *c, char *buf, size_t n)
{
	size_t done = 0;

	while (done < n && c->phase != OUT_END) {
		if (c->phase == OUT_HEADERS) {
			if (c->hi == c->m->nh) {
				c->phase = OUT_SEPARATOR;
				continue;
			}
			const char *f = c->m->h[c->hi].field;
			size_t len = strlen(f + c->hoff);
			size_t k = len < n - done ? len : n - done;
			memcpy(buf + done, f + c->hoff, k);
			done += k;
			c->hoff += k;
			if (!f[c->hoff]) {
				c->hi++;
				c->hoff = 0;
			}
		} else if (c->phase == OUT_SEPARATOR) {
			/* hoff: how much of it went out (n may be 1) */
			buf[done++] = "\r\n"[c->hoff++];
			if (c->hoff == 2) {
				c->hoff = 0;
				c->phase = OUT_BODY;
			}
		} else {
			long k = body_out(c, buf + done, n - done);
			if (k < 0)
				return -1;
			if (k == 0)
				c->phase = OUT_END;
			done += (size_t)k;
		}
	}
	return (long)done;
}

off_t
message_size(const struct message *m)
{
	off_t n = 2;

	if (m->raw)
		return m->body_len;
	for (size_t i = 0; i < m->nh; i++)
		n += (off_t)strlen(m->h[i].field);
	return n + m->body_len;
}

void
message_release(struct message *m)
{
	for (size_t i = 0; i < m->nh; i++)
		free(m->h[i].field);
	free(m->h);
	if (m->body && !m->borrowed)
		fclose(m->body);
	memset(m, 0, sizeof(*m));
}
