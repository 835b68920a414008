/*
 * t-queue.c - the queue file format and its operations: add, list, open
 * (with and without the lock), update, fail, remove, sweep; what a reader
 * makes of a damaged file or a later version.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "message.h"
#include "queue.h"
#include "tap.h"
#include "util.h"

static char dir[256];

/* A message over a temp file, as the transport would read it. */
static FILE *
raw_message(struct message *m, const char *text)
{
	FILE *f = tmpfile();

	fputs(text, f);
	fflush(f);
	message_init_raw(m, f, 0, (off_t)strlen(text));
	return f;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;

	buf_init(&b);
	if (!f)
		return buf_detach(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	return buf_detach(&b);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static const char MSG[] = "Subject: t\r\n\r\n.line\r\nbody\r\n";

static char *
add_one(const char *sender)
{
	struct qentry e = { 0 };
	struct message m = { 0 };
	FILE *f = raw_message(&m, MSG);
	char *err = NULL, *id;

	e.fd = -1;
	e.account = xstrdup("relay");
	e.sender = xstrdup(sender);
	strlist_push(&e.rcpts, "a@example.com");
	strlist_push(&e.rcpts, "b@example.com");
	e.attempts = 1;
	e.last_attempt = 1000;
	e.next_attempt = 1060;
	e.last_error = xstrdup("451 4.3.0 try\r\nlater");
	e.notify = xstrdup("SUCCESS,FAILURE");
	e.body_8bit = 1;
	is_int(queue_add(dir, &e, &m, &err), 0, "queue_add");
	id = xstrdup(e.id);
	qentry_release(&e);
	message_release(&m);
	fclose(f);
	return id;
}

static void
test_roundtrip(void)
{
	struct strlist ids = STRLIST_INIT;
	struct qentry e;
	struct message m;
	struct message_cursor c;
	char *err = NULL, *id, *path, *text, buf[256];
	long n;

	id = add_one("www@shop.example");
	is_int((long)strlen(id), 25, "an id is 25 characters");
	is_int(queue_list(dir, "q", &ids, &err), 0, "queue_list");
	ok(ids.n == 1 && !strcmp(ids.v[0], id), "the id is listed");
	strlist_release(&ids);

	path = xasprintf("%s/q/%s", dir, id);
	text = slurp(path);
	ok(!strncmp(text, "MAILSHIM-QUEUE 1\nid: ", 21), "format: magic line");
	ok(strstr(text,
	       "\nsender: www@shop.example\nrcpt: a@example.com\n"
	       "rcpt: b@example.com\n") != NULL,
	    "format: sender and recipients");
	ok(strstr(text, "\nlast-error: 451 4.3.0 try??later\n") != NULL,
	    "format: control characters in a value cannot break a line");
	ok(strstr(text, "\nnotify: SUCCESS,FAILURE\n") != NULL &&
	        strstr(text, "\nbody: 8BITMIME\n") != NULL,
	    "format: ESMTP parameters");
	ok(strstr(text, "\n\nSubject: t\r\n\r\n.line\r\nbody\r\n") != NULL,
	    "format: an empty line, then the message as sent");
	free(text);

	is_int(queue_open(dir, "q", id, &e, 1, &err), 0, "open and lock");
	is_str(e.sender, "www@shop.example", "read: sender");
	ok(e.rcpts.n == 2 && !strcmp(e.rcpts.v[1], "b@example.com"),
	    "read: recipients");
	ok(e.attempts == 1 && e.next_attempt == 1060 && e.body_8bit,
	    "read: attempts, next attempt, body");
	queue_message(&e, &m);
	message_rewind(&c, &m);
	n = message_out(&c, buf, sizeof(buf));
	ok(n == (long)strlen(MSG) && !memcmp(buf, MSG, (size_t)n),
	    "read: the message bytes, exactly");
	message_release(&m);

	/* another runner: the lock is held */
	{
		struct qentry other;
		is_int(queue_open(dir, "q", id, &other, 1, &err), QUEUE_BUSY,
		    "a second lock: QUEUE_BUSY");
		qentry_release(&other);
	}

	/* update: fewer recipients, one failed */
	strlist_release(&e.rcpts);
	strlist_push(&e.rcpts, "b@example.com");
	strlist_push(&e.failed, "a@example.com 550 5.1.1 unknown");
	e.attempts = 2;
	is_int(queue_update(&e, &err), 0, "queue_update");
	qentry_release(&e);
	is_int(queue_open(dir, "q", id, &e, 1, &err), 0, "open the update");
	ok(e.rcpts.n == 1 && e.failed.n == 1 && e.attempts == 2,
	    "the update kept what changed");
	queue_message(&e, &m);
	message_rewind(&c, &m);
	n = message_out(&c, buf, sizeof(buf));
	ok(n == (long)strlen(MSG) && !memcmp(buf, MSG, (size_t)n),
	    "the update kept the message");
	message_release(&m);

	/* fail: to failed/, gone from q/ */
	is_int(queue_fail(&e, &err), 0, "queue_fail");
	qentry_release(&e);
	is_int(access(path, F_OK), -1, "gone from q/");
	free(path);
	path = xasprintf("%s/failed/%s", dir, id);
	is_int(access(path, F_OK), 0, "kept in failed/");
	is_int(queue_open(dir, "q", id, &e, 1, &err), QUEUE_GONE,
	    "opening it in q/: QUEUE_GONE");
	qentry_release(&e);
	free(path);
	free(id);
}

static void
test_remove_and_gone(void)
{
	struct qentry e, held;
	char *err = NULL, *id = add_one("");

	is_int(queue_open(dir, "q", id, &e, 0, &err), 0, "peek (no lock)");
	is_str(e.sender, "", "the null sender reads back as empty");
	is_int(
	    queue_open(dir, "q", id, &held, 1, &err), 0, "a runner locks it");
	is_int(queue_remove(&held, &err), 0, "and removes it (delivered)");
	qentry_release(&held);
	/* a peeker that now tries to lock its open file must see it gone */
	is_int(queue_open(dir, "q", id, &held, 1, &err), QUEUE_GONE,
	    "removed: QUEUE_GONE");
	qentry_release(&held);
	qentry_release(&e);
	free(id);
}

static void
test_damaged(void)
{
	struct qentry e;
	char *err = NULL, *path;

	path = xasprintf("%s/q/%s", dir, "00000000000a.000000000001");
	write_file(path, "MAILSHIM-QUEUE 2\nid: x\n\nbody");
	is_int(queue_open(dir, "q", "00000000000a.000000000001", &e, 1, &err),
	    EX_DATAERR, "a later version is refused");
	ok(err && strstr(err, "has version 2; this mailshim reads up to 1"),
	    "... saying why");
	free(err);
	err = NULL;
	qentry_release(&e);
	write_file(path, "MAILSHIM-QUEUE 1\nid: x\naccount: a\nsender: s\n");
	is_int(queue_open(dir, "q", "00000000000a.000000000001", &e, 1, &err),
	    EX_DATAERR, "an envelope without its end is damaged");
	free(err);
	err = NULL;
	qentry_release(&e);
	write_file(path, "MAILSHIM-QUEUE 1\nid: x\nsender: s\n\nbody");
	is_int(queue_open(dir, "q", "00000000000a.000000000001", &e, 1, &err),
	    EX_DATAERR, "an envelope without an account is damaged");
	free(err);
	err = NULL;
	qentry_release(&e);
	write_file(path,
	    "MAILSHIM-QUEUE 1\nid: x\naccount: a\nsender: s\n"
	    "future-field: anything\n\nbody");
	is_int(queue_open(dir, "q", "00000000000a.000000000001", &e, 1, &err),
	    0, "unknown fields are ignored");
	is_int((long)e.msg_size, 4, "... and the message is what follows");
	qentry_release(&e);
	unlink(path);
	free(path);
	is_int(queue_open(dir, "q", "../../etc/passwd", &e, 1, &err), EX_USAGE,
	    "an id with a path in it is refused");
	free(err);
	qentry_release(&e);
}

static void
test_sweep(void)
{
	char *old = xasprintf("%s/tmp/%s", dir, "000000000001.000000000002");
	char *fresh = xasprintf("%s/tmp/%s", dir, "000000000001.000000000003");
	struct timespec t[2] = { { 1000, 0 }, { 1000, 0 } };

	write_file(old, "partial");
	write_file(fresh, "being written");
	utimensat(AT_FDCWD, old, t, 0);
	is_int(queue_sweep_tmp(dir, 3600), 1, "sweep: one old tmp file");
	is_int(access(old, F_OK), -1, "... the old one is gone");
	is_int(access(fresh, F_OK), 0, "... a fresh one stays");
	unlink(fresh);
	free(old);
	free(fresh);
}

static void
test_errors(void)
{
	struct qentry e = { 0 };
	struct message m = { 0 };
	FILE *f = raw_message(&m, MSG);
	char *err = NULL, *file = xasprintf("%s/plainfile", dir), *bad;
	int st;

	/* a queue_dir under a regular file cannot be made, even by root */
	write_file(file, "x");
	bad = xasprintf("%s/queue", file);
	e.fd = -1;
	e.account = xstrdup("a");
	e.sender = xstrdup("s");
	strlist_push(&e.rcpts, "r@x");
	st = queue_add(bad, &e, &m, &err);
	ok(st == EX_CANTCREAT, "an impossible queue_dir: EX_CANTCREAT");
	ok(err && strstr(err, "cannot create queue directory"),
	    "... with a clear message");
	free(err);
	qentry_release(&e);
	message_release(&m);
	fclose(f);
	unlink(file);
	free(file);
	free(bad);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");
	char *cmd;

	snprintf(dir, sizeof(dir), "%s/t-queue.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	test_roundtrip();
	test_remove_and_gone();
	test_damaged();
	test_sweep();
	test_errors();
	cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	free(cmd);
	return done_testing();
}
