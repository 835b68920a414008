/*
 * t-queue.c - the queue file format and its operations: add, list, open
 * (with and without the lock), update, fail, remove, sweep; what a reader
 * makes of a damaged file or a later version; the modes of what it makes,
 * whatever the umask; which files it trusts, and which directories.
 */
#include "config.h"

#include <errno.h>
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
add_one_in(const char *qdir, const char *sender)
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
	if (!is_int(queue_add(qdir, &e, &m, &err), 0, "queue_add"))
		printf("#   %s\n", err);
	id = xstrdup(e.id);
	qentry_release(&e);
	message_release(&m);
	fclose(f);
	return id;
}

static char *
add_one(const char *sender)
{
	return add_one_in(dir, sender);
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

/* ---- modes -------------------------------------------------------------- */

static int is_root;

/* A TAP line for a case that needs root. */
static void
skip_root(const char *name)
{
	tap_count++;
	printf("ok %d - %s # SKIP needs root\n", tap_count, name);
}

static long
mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) ? -1 : (long)(st.st_mode & 07777);
}

/* The modes of a queue's directories and of the file q/<id>, as
 * "top tmp q failed file" in octal, for one exact comparison. */
static char *
modes(const char *qdir, const char *id)
{
	char *p[5], *s;

	p[0] = xstrdup(qdir);
	p[1] = xasprintf("%s/tmp", qdir);
	p[2] = xasprintf("%s/q", qdir);
	p[3] = xasprintf("%s/failed", qdir);
	p[4] = xasprintf("%s/q/%s", qdir, id);
	s = xasprintf("%lo %lo %lo %lo %lo", mode_of(p[0]), mode_of(p[1]),
	    mode_of(p[2]), mode_of(p[3]), mode_of(p[4]));
	for (int i = 0; i < 5; i++)
		free(p[i]);
	return s;
}

static void
test_modes(void)
{
	static const mode_t masks[] = { 077, 0 };
	mode_t old = umask(022);

	for (size_t i = 0; i < 2; i++) {
		char *priv = xasprintf("%s/private-%03o", dir, masks[i]);
		char *shared = xasprintf("%s/shared-%03o", dir, masks[i]);
		char *name, *id, *got;
		struct qentry e;
		char *err = NULL;

		umask(masks[i]);
		/* a queue the process makes: not privileged, so the user's */
		id = add_one_in(priv, "me@example.net");
		got = modes(priv, id);
		name = xasprintf("umask %03o: a private queue is 0700, its "
		                 "file 0600",
		    masks[i]);
		is_str(got, "700 700 700 700 600", name);
		free(name);
		free(got);
		free(id);

		/* an administrator's shared queue: 02770 */
		mkdir(shared, 0700);
		chmod(shared, 02770);
		id = add_one_in(shared, "me@example.net");
		got = modes(shared, id);
		name = xasprintf("umask %03o: a queue whose top is 02770: its "
		                 "areas 2770, its file 0660",
		    masks[i]);
		is_str(got, "2770 2770 2770 2770 660", name);
		free(name);
		free(got);

		/* a runner rewrites it: the same mode */
		if (is_int(queue_open(shared, "q", id, &e, 1, &err), 0,
		        "open the shared queue's file")) {
			e.attempts = 5;
			is_int(queue_update(&e, &err), 0, "and update it");
		}
		qentry_release(&e);
		got = modes(shared, id);
		name = xasprintf("umask %03o: a file rewritten in a shared "
		                 "queue is 0660",
		    masks[i]);
		is_str(got, "2770 2770 2770 2770 660", name);
		free(name);
		free(got);
		free(id);
		free(priv);
		free(shared);
	}
	umask(old);
}

/* A privileged process (setgid mailshim, here: root with another effective
 * group) makes a missing queue the group's: 02770, files 0660. */
static void
test_privileged_modes(void)
{
	char *qdir = xasprintf("%s/privileged", dir), *id, *got, *file;
	mode_t old;
	struct stat st;

	if (!is_root) {
		skip_root("privileged: a new queue is 02770, its files 0660");
		return;
	}
	old = umask(077);
	if (!is_int(setresgid(0, 4242, 0), 0, "egid 4242: privileged")) {
		umask(old);
		free(qdir);
		return;
	}
	id = add_one_in(qdir, "me@example.net");
	is_int(setresgid(0, 0, 0), 0, "egid 0 again");
	umask(old);
	got = modes(qdir, id);
	is_str(got, "2770 2770 2770 2770 660",
	    "privileged, umask 077: the queue 02770 (areas too), file 0660");
	file = xasprintf("%s/q/%s", qdir, id);
	ok(!stat(file, &st) && st.st_gid == 4242,
	    "... the file of the effective group");
	free(file);
	free(got);
	free(id);
	free(qdir);
}

/* ---- trust -------------------------------------------------------------- */

/* queue_open of qdir/q/id, with and without the lock: both untrusted,
 * with exactly the reason why; the file is still there. */
static void
untrusted_case(
    const char *qdir, const char *id, const char *why, const char *name)
{
	char *path = xasprintf("%s/q/%s", qdir, id);
	char *want = xasprintf(
	    "queue file '%s' is not trusted (%s): left in place", path, why);
	char *label;
	struct qentry e;
	struct stat st;

	for (int lock = 0; lock < 2; lock++) {
		char *err = NULL;
		label = xasprintf(
		    "%s%s: QUEUE_UNTRUSTED", name, lock ? " (locking)" : "");
		is_int(queue_open(qdir, "q", id, &e, lock, &err),
		    QUEUE_UNTRUSTED, label);
		free(label);
		label = xasprintf(
		    "%s%s: the reason", name, lock ? " (locking)" : "");
		is_str(err, want, label);
		free(label);
		is_int(e.fd, -1, "... nothing left open");
		qentry_release(&e);
		free(err);
	}
	label = xasprintf("%s: left in place", name);
	ok(!lstat(path, &st), label);
	free(label);
	free(want);
	free(path);
}

static void
trusted_case(const char *qdir, const char *id, const char *name)
{
	struct qentry e;
	char *err = NULL;

	if (!is_int(queue_open(qdir, "q", id, &e, 1, &err), 0, name))
		printf("#   %s\n", err ? err : "");
	free(err);
	qentry_release(&e);
}

static void
test_trust(void)
{
	char *id, *path, *link_path, *fake;
	char *shared = xasprintf("%s/trust-shared", dir);

	/* a second name: whoever made it can change the message */
	id = add_one("me@example.net");
	trusted_case(dir, id, "control: one link, mine: trusted");
	path = xasprintf("%s/q/%s", dir, id);
	link_path = xasprintf("%s/second-name", dir);
	is_int(link(path, link_path), 0, "a second hard link");
	untrusted_case(dir, id, "2 hard links", "a file with 2 links");
	unlink(link_path);
	trusted_case(dir, id, "the link removed: trusted again");

	/* writable by others */
	chmod(path, 0602);
	untrusted_case(dir, id, "writable by others", "a file chmod o+w");
	chmod(path, 0600);

	/* a symbolic link in q/, to a good file */
	fake = xasprintf("%s/q/%s", dir, "00000000000b.000000000001");
	is_int(symlink(path, fake), 0, "a symbolic link in q/");
	untrusted_case(dir, "00000000000b.000000000001", "a symbolic link",
	    "a symbolic link");
	unlink(fake);
	free(fake);

	/* a FIFO: refused without blocking the run */
	fake = xasprintf("%s/q/%s", dir, "00000000000b.000000000002");
	is_int(mkfifo(fake, 0600), 0, "a FIFO in q/");
	untrusted_case(
	    dir, "00000000000b.000000000002", "not a regular file", "a FIFO");
	unlink(fake);
	free(fake);

	/* another user's, in a private queue */
	if (is_root) {
		is_int(chown(path, 65534, 65534), 0, "chown 65534:65534");
		untrusted_case(dir, id, "owner uid 65534, group 65534",
		    "another user's file, private queue");
	} else {
		skip_root("another user's file, private queue");
	}
	unlink(path);
	free(path);
	free(link_path);
	free(id);

	/* a shared queue: the group of its top directory is trusted */
	mkdir(shared, 0700);
	id = add_one_in(shared, "me@example.net");
	path = xasprintf("%s/q/%s", shared, id);
	if (is_root) {
		is_int(chown(shared, 0, 4242), 0, "a shared queue: group 4242");
		chmod(shared, 02770);
		is_int(chown(path, 65534, 4242), 0, "chown 65534:4242");
		trusted_case(shared, id,
		    "shared queue (02770, group 4242): a file of another "
		    "user, of group 4242: trusted");
		chmod(shared, 02750);
		untrusted_case(shared, id, "owner uid 65534, group 4242",
		    "the same, the top not group-writable (not shared)");
		chmod(shared, 02770);
		is_int(chown(path, 65534, 65534), 0, "chown 65534:65534");
		untrusted_case(shared, id, "owner uid 65534, group 65534",
		    "shared queue: another user's file of another group");
	} else {
		skip_root("shared queue: a file of the queue's group");
	}
	free(path);
	free(id);
	free(shared);
}

/* queue_init, queue_check and queue_add refuse path with exactly this. */
static void
refused_case(const char *qdir, const char *want, const char *name)
{
	struct qentry e = { 0 };
	struct message m = { 0 };
	FILE *f = raw_message(&m, MSG);
	char *err = NULL, *label;

	label = xasprintf("%s: queue_init: EX_CONFIG", name);
	is_int(queue_init(qdir, &err), EX_CONFIG, label);
	free(label);
	label = xasprintf("%s: queue_init: the message", name);
	is_str(err, want, label);
	free(label);
	free(err);
	err = NULL;
	label = xasprintf("%s: queue_check: EX_CONFIG, the message", name);
	ok(queue_check(qdir, &err) == EX_CONFIG && err && !strcmp(err, want),
	    label);
	free(label);
	free(err);
	err = NULL;
	e.fd = -1;
	e.account = xstrdup("a");
	e.sender = xstrdup("s");
	strlist_push(&e.rcpts, "r@x");
	label = xasprintf("%s: queue_add: EX_CONFIG, the message", name);
	ok(queue_add(qdir, &e, &m, &err) == EX_CONFIG && err &&
	        !strcmp(err, want),
	    label);
	free(label);
	free(err);
	qentry_release(&e);
	message_release(&m);
	fclose(f);
}

static void
test_directories(void)
{
	char *top = xasprintf("%s/ww", dir);
	char *q = xasprintf("%s/q", top), *want, *old, *id, *err = NULL;
	char *real = xasprintf("%s/real-q", dir);
	char *moved = xasprintf("%s/moved", dir);
	struct timespec t[2] = { { 1000, 0 }, { 1000, 0 } };
	struct strlist ids = STRLIST_INIT;

	is_int(queue_init(top, &err), 0, "control: queue_init of a new queue");
	is_int(queue_check(top, &err), 0, "control: queue_check passes");
	old = xasprintf("%s/tmp/%s", top, "000000000001.000000000004");
	write_file(old, "partial");
	utimensat(AT_FDCWD, old, t, 0);

	chmod(top, 0777);
	want = xasprintf("queue directory '%s' is writable by others: run "
	                 "chmod o-w %s",
	    top, top);
	refused_case(top, want, "the top directory o+w");
	free(want);
	is_int(queue_sweep_tmp(top, 3600), 0,
	    "... and the sweep removes nothing in it");
	is_int(access(old, F_OK), 0, "... the old tmp file is still there");
	chmod(top, 0700);

	chmod(q, 0703);
	want = xasprintf("queue directory '%s' is writable by others: run "
	                 "chmod o-w %s",
	    q, q);
	refused_case(top, want, "an area (q/) o+w");
	free(want);
	chmod(q, 0700);
	is_int(queue_sweep_tmp(top, 3600), 1,
	    "control: the modes back, the sweep removes it");

	/* an area that is a symbolic link (to a good directory) */
	mkdir(real, 0700);
	ok(!rmdir(q) && !symlink(real, q), "q/ replaced by a symbolic link");
	want = xasprintf("queue directory '%s' is a symbolic link: make it "
	                 "a real directory",
	    q);
	refused_case(top, want, "q/ a symbolic link");
	free(want);
	unlink(q);

	/* the top directory itself may be a symbolic link */
	is_int(symlink(top, moved), 0, "a symbolic link to a queue");
	id = add_one_in(moved, "me@example.net");
	is_int(queue_list(moved, "q", &ids, &err), 0,
	    "a top directory that is a symbolic link: accepted");
	ok(ids.n == 1 && !strcmp(ids.v[0], id), "... and the message queued");
	strlist_release(&ids);
	trusted_case(moved, id, "... and opened");

	/* no queue at all: nothing to refuse */
	free(err);
	err = NULL;
	free(q);
	q = xasprintf("%s/no-such-queue", dir);
	is_int(queue_check(q, &err), 0, "queue_check of no queue: 0");
	ok(access(q, F_OK) == -1 && errno == ENOENT, "... and makes nothing");

	free(id);
	free(old);
	free(q);
	free(top);
	free(real);
	free(moved);
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
	is_root = geteuid() == 0;
	test_modes();
	test_privileged_modes();
	test_trust();
	test_directories();
	cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	free(cmd);
	return done_testing();
}
