/*
 * t-message.c - reading a message: line endings, the lone-dot rule, the
 * header/body split, header edits, and what goes back out.  Each case feeds
 * bytes through a pipe, as standard input would, and compares the bytes
 * message_out() produces.  Raw messages (a region of a queue file) must
 * come back byte for byte.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/wait.h>
#include <unistd.h>

#include "message.h"
#include "util.h"
#include "tap.h"

/* Read in through a pipe (in a child, so that large inputs cannot block). */
static int
load(struct message *m, const char *in, size_t n, int ignore_dots, char **err)
{
	int fds[2];
	pid_t pid;
	int st;

	if (pipe(fds))
		abort();
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		while (n) {
			ssize_t k = write(fds[1], in, n);
			if (k <= 0)
				_exit(1);
			in += k;
			n -= (size_t)k;
		}
		_exit(0);
	}
	close(fds[1]);
	st = message_read(m, fds[0], ignore_dots, NULL, err);
	close(fds[0]);
	waitpid(pid, NULL, 0);
	return st;
}

/* Everything message_out() gives, size bytes at a time; NULL on an error. */
static char *
out_by(struct message *m, size_t size)
{
	struct message_cursor c;
	struct buf b = BUF_INIT;
	char chunk[64];
	long n;

	buf_init(&b);
	message_rewind(&c, m);
	while ((n = message_out(&c, chunk, size)) > 0)
		buf_add(&b, chunk, (size_t)n);
	if (n < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b);
}

static char *
out(struct message *m)
{
	return out_by(m, 7); /* small, to cross every boundary */
}

struct row {
	const char *name;
	const char *in;
	int ignore_dots;
	const char *want;
};

static const struct row rows[] = {
	{ "LF becomes CRLF", "Subject: a\nTo: b\n\nline1\nline2\n", 1,
	    "Subject: a\r\nTo: b\r\n\r\nline1\r\nline2\r\n" },
	{ "CRLF stays", "Subject: a\r\n\r\nx\r\n", 1,
	    "Subject: a\r\n\r\nx\r\n" },
	{ "mixed endings and a lone CR", "Subject: a\r\n\nx\ry\r\nz\n", 1,
	    "Subject: a\r\n\r\nx\r\ny\r\nz\r\n" },
	{ "no final newline", "Subject: a\n\nlast", 1,
	    "Subject: a\r\n\r\nlast\r\n" },
	{ "final CR", "Subject: a\n\nlast\r", 1, "Subject: a\r\n\r\nlast\r\n" },
	{ "folded header kept folded", "Subject: a\n  b\n\tc\n\nx\n", 1,
	    "Subject: a\r\n  b\r\n\tc\r\n\r\nx\r\n" },
	{ "no headers at all", "just text\nmore\n", 1,
	    "\r\njust text\r\nmore\r\n" },
	{ "body starts without an empty line", "Subject: a\nnot a header\n", 1,
	    "Subject: a\r\n\r\nnot a header\r\n" },
	{ "empty input", "", 1, "\r\n" },
	{ "headers only", "Subject: a\n", 1, "Subject: a\r\n\r\n" },
	{ "mbox From line dropped", "From me@x Mon Jan 1\nSubject: a\n\nb\n", 1,
	    "Subject: a\r\n\r\nb\r\n" },
	{ "obsolete white space before colon", "Subject : a\n\nb\n", 1,
	    "Subject : a\r\n\r\nb\r\n" },
	{ "lone dot ends input without -i", "Subject: a\n\nx\n.\nafter\n", 0,
	    "Subject: a\r\n\r\nx\r\n" },
	{ "lone dot CRLF ends input", "Subject: a\r\n\r\nx\r\n.\r\nafter\r\n",
	    0, "Subject: a\r\n\r\nx\r\n" },
	{ "lone dot at EOF without newline", "Subject: a\n\nx\n.", 0,
	    "Subject: a\r\n\r\nx\r\n" },
	{ "lone dot in headers ends input", "Subject: a\n.\nTo: b\n", 0,
	    "Subject: a\r\n\r\n" },
	{ "lone dot kept with -i", "Subject: a\n\nx\n.\nafter\n", 1,
	    "Subject: a\r\n\r\nx\r\n.\r\nafter\r\n" },
	{ "dot lines are not the end", "S: a\n\n..\n.x\n. \nx.\n", 0,
	    "S: a\r\n\r\n..\r\n.x\r\n. \r\nx.\r\n" },
	{ "bare LF dot LF cannot smuggle", "S: a\n\nx\r\n.\nMAIL FROM:<e>\n", 1,
	    "S: a\r\n\r\nx\r\n.\r\nMAIL FROM:<e>\r\n" },
	{ "bare CR dot CR cannot smuggle", "S: a\n\nx\r.\rDATA\r\n", 1,
	    "S: a\r\n\r\nx\r\n.\r\nDATA\r\n" },
	{ "blank lines in the body kept", "S: a\n\n\n\nx\n\n", 1,
	    "S: a\r\n\r\n\r\n\r\nx\r\n\r\n" },
	{ "8-bit bytes pass", "Subject: caf\xc3\xa9\n\n\xe2\x82\xac\n", 1,
	    "Subject: caf\xc3\xa9\r\n\r\n\xe2\x82\xac\r\n" },
};

static void
test_headers(void)
{
	struct message m = { 0 };
	const char *in = "To: a@x,\n b@y\nBcc: secret@z\nCc: c@x\n"
	                 "Resent-Bcc: r@z\nbcc: s2@z\n\nbody\n";
	char *err = NULL, *got;

	is_int(load(&m, in, strlen(in), 1, &err), 0, "headers: read");
	is_int(m.nh, 5, "headers: five fields");
	is_int(message_find(&m, "TO", 0), 0, "find is case-insensitive");
	is_str(message_value(&m, 0), " a@x,\r\n b@y\r\n",
	    "value keeps folding, CRLF");
	is_int(message_find(&m, "bcc", 2), 4, "find from an index");
	is_int(message_complete(
	           &m, "me@example.net", "Cron Daemon", "example.net", &err),
	    0, "complete");
	is_int(message_find(&m, "Bcc", 0), -1, "Bcc removed (both)");
	is_int(message_find(&m, "Resent-Bcc", 0), -1, "Resent-Bcc removed");
	ok(message_find(&m, "Date", 0) >= 0, "Date added");
	ok(message_find(&m, "Message-ID", 0) >= 0, "Message-ID added");
	is_str(message_value(&m, (size_t)message_find(&m, "From", 0)),
	    " Cron Daemon <me@example.net>\r\n", "From added");
	got = out(&m);
	ok(strstr(got, "secret") == NULL, "no Bcc in the output");
	ok(strstr(got, "\r\n\r\nbody\r\n") != NULL, "body after the headers");
	ok(strstr(got, "@example.net>\r\n") != NULL, "Message-ID domain");
	is_int((long)strlen(got), (long)message_size(&m), "message_size");
	free(got);
	message_release(&m);

	/* existing From, Date and Message-ID are kept */
	in = "From: x@y\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
	     "Message-ID: <1@y>\n\nb\n";
	is_int(load(&m, in, strlen(in), 1, &err), 0, "keep: read");
	message_complete(&m, "other@z", NULL, "z", &err);
	got = out(&m);
	is_str(got,
	    "From: x@y\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "Message-ID: <1@y>\r\n\r\nb\r\n",
	    "keep: nothing added");
	free(got);
	message_release(&m);

	/* full names: plain, needing quotes, non-ASCII, control characters */
	in = "\n";
	load(&m, in, strlen(in), 1, &err);
	message_complete(&m, "a@x", "Anacron", "x", &err);
	is_str(message_value(&m, 0), " Anacron <a@x>\r\n", "plain name");
	message_release(&m);
	load(&m, in, strlen(in), 1, &err);
	message_complete(&m, "a@x", "Doe, \"J\"", "x", &err);
	is_str(message_value(&m, 0), " \"Doe, \\\"J\\\"\" <a@x>\r\n",
	    "name with specials quoted");
	message_release(&m);
	load(&m, in, strlen(in), 1, &err);
	message_complete(&m, "a@x", "Ren\xc3\xa9", "x", &err);
	is_str(message_value(&m, 0), " =?UTF-8?B?UmVuw6k=?= <a@x>\r\n",
	    "UTF-8 name encoded");
	message_release(&m);
	load(&m, in, strlen(in), 1, &err);
	message_complete(&m, "a@x",
	    "Syst\xc3\xa8me de contr\xc3\xb4le "
	    "\xc3\xa0 distance",
	    "x", &err);
	is_str(message_value(&m, 0),
	    " =?UTF-8?B?U3lzdMOobWU=?= de "
	    "=?UTF-8?B?Y29udHLDtGxlIMOg?= distance <a@x>\r\n",
	    "only the words that need it are encoded, runs merged");
	message_release(&m);
	load(&m, in, strlen(in), 1, &err);
	message_complete(&m, "a@x",
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
	    "x", &err);
	is_str(message_value(&m, 0),
	    " =?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqcOpw6nDq"
	    "cOpw6nDqcOpw6nDqcOpw6nDqcOpw6k=?=\r\n =?UTF-8?B?w6nDqQ==?= <a@x>"
	    "\r\n",
	    "a long run: words of 45 bytes at most, cut between "
	    "characters, folded");
	message_release(&m);
	load(&m, in, strlen(in), 1, &err);
	is_int(message_complete(&m, "a@x", "x\r\nBcc: e@vil", "x", &err),
	    EX_DATAERR, "control character in -F refused");
	is_str(err, "invalid full name (-F): it contains a control character",
	    "its message");
	free(err);
	err = NULL;
	message_release(&m);
	load(&m, in, strlen(in), 1, &err);
	message_complete(&m, "", NULL, "x", &err);
	is_str(message_value(&m, 0), " \r\n",
	    "From for the null sender "
	    "is the caller's business (main passes MAILER-DAEMON)");
	message_release(&m);
}

static void
test_limits(void)
{
	struct message m = { 0 };
	struct buf b = BUF_INIT;
	char *err = NULL;

	buf_init(&b);
	buf_addstr(&b, "Subject: ");
	for (int i = 0; i < MESSAGE_HEADER_LINE_MAX; i++)
		buf_addch(&b, 'x');
	buf_addstr(&b, "\n\nbody\n");
	is_int(load(&m, b.s, b.len, 1, &err), EX_DATAERR, "long header line");
	is_str(
	    err, "header line too long (more than 65536 bytes)", "its message");
	free(err);
	err = NULL;
	message_release(&m);

	buf_reset(&b);
	for (int i = 0; i < 20000; i++)
		buf_addf(&b, "X-Filler-%05d: %s\n", i,
		    "0123456789012345678901234567890123456789");
	buf_addstr(&b, "\nbody\n");
	is_int(load(&m, b.s, b.len, 1, &err), EX_DATAERR,
	    "header section over 1 MiB");
	is_str(err, "header section too large (more than 1048576 bytes)",
	    "its message");
	free(err);
	message_release(&m);
	buf_release(&b);
}

/* A long body crosses the 64 KiB read buffer with dots and CRs at the
 * boundaries. */
static void
test_boundaries(void)
{
	struct message m = { 0 };
	struct buf in = BUF_INIT, want = BUF_INIT;
	char *err = NULL, *got;

	buf_addstr(&in, "S: x\n\n");
	buf_addstr(&want, "S: x\r\n\r\n");
	for (int i = 0; i < 40000; i++) {
		const char *l = (i % 3 == 0) ? "." : (i % 3 == 1) ? ".." : "a.";
		buf_addf(&in, "%s%s", l, (i % 2) ? "\r\n" : "\r");
		buf_addf(&want, "%s\r\n", l);
	}
	is_int(load(&m, in.s, in.len, 1, &err), 0, "boundaries: read");
	got = out(&m);
	ok(!strcmp(got, want.s), "boundaries: identical after normalising");
	free(got);
	message_release(&m);
	buf_release(&in);
	buf_release(&want);
}

/* Lines over 998 octets are broken the way Postfix's SMTP client does. */
static void
test_long_lines(void)
{
	struct message m = { 0 };
	struct buf in = BUF_INIT, want = BUF_INIT;
	char *err = NULL, *got;
	int i;

	/* the body: exactly 998 stays; 999 and 2000 get CRLF SPACE */
	buf_addstr(&in, "S: x\n\n");
	buf_addstr(&want, "S: x\r\n\r\n");
	for (i = 0; i < 998; i++)
		buf_addch(&in, 'a'), buf_addch(&want, 'a');
	buf_addstr(&in, "\n.");
	buf_addstr(&want, "\r\n.");
	for (i = 0; i < 998; i++) /* the leading dot counts: 999 */
		buf_addch(&in, 'b');
	for (i = 0; i < 997; i++)
		buf_addch(&want, 'b');
	buf_addstr(&want, "\r\n b");
	buf_addstr(&in, "\n");
	buf_addstr(&want, "\r\n");
	for (i = 0; i < 2000; i++)
		buf_addch(&in, 'c');
	buf_addstr(&in, "\n");
	for (i = 0; i < 998; i++)
		buf_addch(&want, 'c');
	buf_addstr(&want, "\r\n ");
	for (i = 0; i < 997; i++)
		buf_addch(&want, 'c');
	buf_addstr(&want, "\r\n ccccc\r\n");
	is_int(load(&m, in.s, in.len, 1, &err), 0, "long body lines: read");
	got = out(&m);
	ok(!strcmp(got, want.s),
	    "long body lines broken at 998 with CRLF SPACE");
	free(got);
	message_release(&m);

	/* a header: folded before white space, which keeps its value */
	buf_reset(&in);
	buf_reset(&want);
	buf_addstr(&in, "To:");
	for (i = 0; i < 150; i++)
		buf_addf(&in, " u%04d@x.example,", i);
	buf_addstr(&in, "\n\nb\n");
	is_int(load(&m, in.s, in.len, 1, &err), 0, "long header: read");
	got = out(&m);
	{
		char *p = got, *eol;
		int longest = 0, lines = 0;
		struct buf unfolded = BUF_INIT;

		buf_init(&unfolded);
		while ((eol = strstr(p, "\r\n")) && eol != p) {
			if (eol - p > longest)
				longest = (int)(eol - p);
			buf_add(&unfolded, p, (size_t)(eol - p));
			lines++;
			p = eol + 2;
		}
		ok(lines > 2 && longest <= 998,
		    "long header folded to lines "
		    "of 998 octets at most");
		is_int((long)unfolded.len, (long)(in.len - 4),
		    "unfolding it gives the field back, byte for byte");
		ok(!strncmp(unfolded.s, in.s, unfolded.len), "... identical");
		buf_release(&unfolded);
	}
	free(got);
	message_release(&m);

	/* a header without white space: CRLF SPACE, as Postfix does */
	buf_reset(&in);
	buf_reset(&want);
	buf_addstr(&in, "X-Token:");
	buf_addstr(&want, "X-Token:");
	for (i = 0; i < 1200; i++)
		buf_addch(&in, 't');
	for (i = 0; i < 990; i++)
		buf_addch(&want, 't');
	buf_addstr(&want, "\r\n ");
	for (i = 0; i < 210; i++)
		buf_addch(&want, 't');
	buf_addstr(&in, "\n\nb\n");
	buf_addstr(&want, "\r\n\r\nb\r\n");
	is_int(load(&m, in.s, in.len, 1, &err), 0, "token header: read");
	got = out(&m);
	is_str(got, want.s, "a header with no white space: CRLF SPACE at 998");
	free(got);
	message_release(&m);

	/* twice as long: after an inserted space, the next break comes one
	 * octet earlier (found by fuzz/fuzz-message) */
	buf_reset(&in);
	buf_addstr(&in, "X-Long: ");
	for (i = 0; i < 2000; i++)
		buf_addch(&in, 'A');
	buf_addstr(&in, "\n\nb\n");
	is_int(load(&m, in.s, in.len, 1, &err), 0, "2000-octet token: read");
	got = out(&m);
	{
		size_t longest = 0, len = 0, unfolded = 0;
		for (const char *p = got; *p; p++) {
			if (p[0] == '\r' && p[1] == '\n') {
				if (len > longest)
					longest = len;
				len = 0;
				p++;
				continue;
			}
			len++;
			unfolded += *p == 'A';
		}
		is_int((long)longest, 998,
		    "no line over 998 octets, however "
		    "many breaks");
		is_int((long)unfolded, 2000, "every octet of the value kept");
	}
	free(got);
	message_release(&m);
	buf_release(&in);
	buf_release(&want);
}

/* A region in the middle of a file, sent as it is: nothing added. */
static void
test_raw(void)
{
	static const char before[] = "MAILSHIM-QUEUE 1\nrcpt: a@x\n\n";
	static const char after[] = "TRAILING GARBAGE\r\n";
	struct message m;
	struct message_cursor c1, c2;
	struct buf region = BUF_INIT, b1 = BUF_INIT, b2 = BUF_INIT;
	FILE *f = tmpfile();
	char *got, chunk[5];
	off_t pos;
	long n1, n2;

	buf_init(&region);
	buf_addstr(&region, "Subject: raw\r\nX: y\r\n\r\n.leading dot\r\n");
	for (int i = 0; i < 300; i++)
		buf_addf(&region, "line %03d\r\n", i);
	buf_addstr(&region, "no final CRLF");
	if (!f)
		abort();
	fputs(before, f);
	fwrite(region.s, 1, region.len, f);
	fputs(after, f);
	fflush(f);
	fseeko(f, 3, SEEK_SET);
	pos = ftello(f);

	message_init_raw(&m, f, (off_t)strlen(before), (off_t)region.len);
	is_int(message_size(&m), region.len, "raw: message_size is the region");
	got = out(&m);
	ok(got && !strcmp(got, region.s), "raw: the region, in 7-byte reads");
	free(got);
	got = out_by(&m, 1);
	ok(got && !strcmp(got, region.s), "raw: again after rewind, 1 byte");
	free(got);
	got = out_by(&m, sizeof(chunk));
	ok(got && !strcmp(got, region.s), "raw: and a third time");
	free(got);

	/* two cursors at once, interleaved */
	buf_init(&b1);
	buf_init(&b2);
	message_rewind(&c1, &m);
	message_rewind(&c2, &m);
	do {
		n1 = message_out(&c1, chunk, 3);
		if (n1 > 0)
			buf_add(&b1, chunk, (size_t)n1);
		n2 = message_out(&c2, chunk, sizeof(chunk));
		if (n2 > 0)
			buf_add(&b2, chunk, (size_t)n2);
	} while (n1 > 0 || n2 > 0);
	ok(n1 == 0 && n2 == 0 && !strcmp(b1.s, region.s) &&
	        !strcmp(b2.s, region.s),
	    "raw: two cursors do not disturb each other");
	is_int(ftello(f), pos, "raw: the FILE's position is left alone");
	message_release(&m);
	ok(fseeko(f, 0, SEEK_SET) == 0 && fgetc(f) == 'M',
	    "raw: message_release() leaves the FILE open");

	message_init_raw(&m, f, (off_t)strlen(before), 0);
	got = out(&m);
	is_str(got, "", "raw: an empty region");
	is_int(message_size(&m), 0, "raw: of size 0");
	free(got);
	message_release(&m);

	/* the file is shorter than the region: an error, not a short message */
	message_init_raw(&m, f, (off_t)strlen(before),
	    (off_t)(region.len + strlen(after) + 1));
	ok(out(&m) == NULL, "raw: a region past the end of the file fails");
	message_release(&m);

	ok(fclose(f) == 0, "raw: the caller closes its FILE");
	buf_release(&region);
	buf_release(&b1);
	buf_release(&b2);
}

/* The empty line between headers and body with reads of one byte. */
static void
test_one_byte_reads(void)
{
	struct message m = { 0 };
	const char *in = "S: a\nT: b\n\nbody\n";
	char *err = NULL, *got;

	is_int(load(&m, in, strlen(in), 1, &err), 0, "1-byte reads: read");
	got = out_by(&m, 1);
	is_str(got, "S: a\r\nT: b\r\n\r\nbody\r\n", "1-byte reads: all of it");
	free(got);
	message_release(&m);
}

/*
 * A body of many lines, larger than a read, with the line ends mixed far
 * apart (a lone CR after thousands of LF lines, then CRLF lines), and one
 * 8-bit byte at a given column of a given line (none when line < 0).  The
 * reader looks for the next CR once per buffer and for 8-bit bytes eight
 * at a time: each must still see every one.
 */
static void
test_big_mixed(int line, size_t col)
{
	struct buf in = BUF_INIT, want = BUF_INIT;
	struct message m = { 0 };
	char *err = NULL, *got, name[80];

	buf_addstr(&in, "Subject: big\n\n");
	buf_addstr(&want, "Subject: big\r\n\r\n");
	for (int i = 0; i < 4000; i++) {
		char text[64];
		int len = snprintf(text, sizeof(text), "line %d of the body %s",
		    i, i % 3 ? "xyz" : "abcdefgh");

		if (i == line && col < (size_t)len)
			text[col] = (char)0xe9;
		buf_add(&in, text, (size_t)len);
		buf_add(&want, text, (size_t)len);
		buf_addstr(&in,
		    i == 1500                   ? "\r"
		        : i >= 2000 && i < 2100 ? "\r\n"
		                                : "\n");
		buf_addstr(&want, "\r\n");
	}
	snprintf(name, sizeof(name), "big mixed body, 8-bit at line %d col %zu",
	    line, col);
	if (!is_int(load(&m, in.s, in.len, 1, &err), 0, name))
		printf("# error: %s\n", err);
	got = out_by(&m, 64);
	ok(got && !strcmp(got, want.s), name);
	is_int(m.eight_bit, line >= 0, "... and eight_bit says so");
	free(got);
	free(err);
	message_release(&m);
	buf_release(&in);
	buf_release(&want);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		struct message m = { 0 };
		char *err = NULL, *got;

		if (load(&m, rows[i].in, strlen(rows[i].in),
		        rows[i].ignore_dots, &err)) {
			ok(0, rows[i].name);
			printf("# error: %s\n", err);
			free(err);
			continue;
		}
		got = out(&m);
		is_str(got, rows[i].want, rows[i].name);
		free(got);
		message_release(&m);
	}
	test_headers();
	test_limits();
	test_boundaries();
	test_long_lines();
	test_raw();
	test_one_byte_reads();
	test_big_mixed(-1, 0);
	test_big_mixed(3999, 0);  /* the last line, its first byte */
	test_big_mixed(2050, 13); /* in the CRLF lines, past a word */
	test_big_mixed(0, 26);    /* the first line, its last byte */
	return done_testing();
}
