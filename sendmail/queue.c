/*
 * queue.c - the durable queue (see queue.h for the layout, the file format
 * and the locking rules).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "queue.h"

#define MAGIC "MAILSHIM-QUEUE"

/* ---- small helpers ------------------------------------------------------ */

static int
write_status(int e)
{
	/* a full disk, a quota or a file size limit: try again later */
	return e == ENOSPC || e == EDQUOT || e == EFBIG ? EX_TEMPFAIL
	                                                : EX_IOERR;
}

static int
open_status(int e)
{
	return e == ENOSPC || e == EDQUOT ? EX_TEMPFAIL : EX_CANTCREAT;
}

/* An id as queue_new_id() makes them: hex digits and one dot. */
static int
valid_id(const char *id)
{
	size_t n = 0;

	for (; id[n]; n++)
		if (!((id[n] >= '0' && id[n] <= '9') ||
		        (id[n] >= 'a' && id[n] <= 'f') || id[n] == '.'))
			return 0;
	return n > 0 && n < 64 && id[0] != '.';
}

static char *
path_of(const char *dir, const char *area, const char *name)
{
	return xasprintf("%s/%s/%s", dir, area, name);
}

/* Make a directory entry durable: fsync the directory that holds it. */
static int
sync_dir(const char *dir, const char *area)
{
	char *path = xasprintf("%s/%s", dir, area);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = -1;

	if (fd >= 0) {
		r = fsync(fd);
		close(fd);
	}
	free(path);
	return r;
}

/* Values are one line of printable text (a relay's reply could be
 * anything). */
static void
put_field(FILE *f, const char *name, const char *value)
{
	fprintf(f, "%s: ", name);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
	fputc('\n', f);
}

static void
put_envelope(FILE *f, const struct qentry *e)
{
	fprintf(f, "%s %d\n", MAGIC, QUEUE_VERSION);
	put_field(f, "id", e->id);
	fprintf(f, "created: %lld\n", (long long)e->created);
	put_field(f, "account", e->account ? e->account : "");
	put_field(f, "sender", e->sender ? e->sender : "");
	for (size_t i = 0; i < e->rcpts.n; i++)
		put_field(f, "rcpt", e->rcpts.v[i]);
	for (size_t i = 0; i < e->failed.n; i++)
		put_field(f, "failed", e->failed.v[i]);
	fprintf(f, "attempts: %u\n", e->attempts);
	fprintf(f, "last-attempt: %lld\n", (long long)e->last_attempt);
	fprintf(f, "next-attempt: %lld\n", (long long)e->next_attempt);
	if (e->last_error)
		put_field(f, "last-error", e->last_error);
	if (e->notify)
		put_field(f, "notify", e->notify);
	if (e->ret)
		put_field(f, "ret", e->ret);
	if (e->envid)
		put_field(f, "envid", e->envid);
	if (e->body_8bit)
		put_field(f, "body", "8BITMIME");
	if (e->notice)
		put_field(f, "notice", "yes");
	fputc('\n', f);
}

char *
queue_new_id(void)
{
	unsigned char rnd[6];
	struct timespec ts;
	unsigned long long ms, r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (unsigned long long)ts.tv_sec * 1000 +
	    (unsigned long long)ts.tv_nsec / 1000000;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		/* unique enough: the pid and the nanoseconds */
		r = ((unsigned long long)getpid() << 24) ^
		    (unsigned long long)ts.tv_nsec;
	else
		for (size_t i = 0; i < sizeof(rnd); i++)
			r = r << 8 | rnd[i];
	/* sorts by creation time */
	return xasprintf("%012llx.%012llx", ms, r & 0xffffffffffffULL);
}

/* ---- creating ----------------------------------------------------------- */

/*
 * Is path a directory mailshim may use?  The top directory is followed if
 * it is a symbolic link (admins move spools); an area must be a real
 * directory.  Neither may be writable by others: anyone could plant or
 * remove messages.  0; QUEUE_GONE when it does not exist and missing_ok;
 * else EX_* with *err set.
 */
static int
check_dir(
    const char *path, int top, int missing_ok, struct stat *st, char **err)
{
	if (top ? stat(path, st) : lstat(path, st)) {
		int e = errno;
		if (e == ENOENT && missing_ok)
			return QUEUE_GONE;
		*err = xasprintf(
		    "cannot read queue directory '%s': %s", path, strerror(e));
		return e == EACCES ? EX_NOPERM : EX_IOERR;
	}
	if (S_ISLNK(st->st_mode)) {
		*err = xasprintf("queue directory '%s' is a symbolic link: "
		                 "make it a real directory",
		    path);
		return EX_CONFIG;
	}
	if (!S_ISDIR(st->st_mode)) {
		*err = xasprintf(
		    "queue directory '%s' is not a directory", path);
		return EX_CONFIG;
	}
	if (st->st_mode & S_IWOTH) {
		*err = xasprintf("queue directory '%s' is writable by others: "
		                 "run chmod o-w %s",
		    path, path);
		return EX_CONFIG;
	}
	return 0;
}

/* Make a directory if missing, with exactly mode: the caller's umask must
 * not decide who can read the queue. */
static int
make_dir(const char *path, mode_t mode, char **err)
{
	int fd, e;

	if (mkdir(path, 0700)) {
		if (errno == EEXIST)
			return 0;
		goto fail;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (fchmod(fd, mode)) {
		e = errno;
		close(fd);
		errno = e;
		goto fail;
	}
	close(fd);
	return 0;
fail:
	e = errno;
	*err = xasprintf(
	    "cannot create queue directory '%s': %s", path, strerror(e));
	return open_status(e);
}

static const char *const areas[] = { "tmp", "q", "failed" };

/*
 * Make (with make) and check the queue: the top directory, then each
 * area.  Without make, a queue that does not exist is fine (nothing is
 * queued) and so is a missing area.
 */
static int
prepare(const char *dir, int make, char **err)
{
	/* privileged (setgid mailshim): the group's queue; else the user's */
	int privileged = getegid() != getgid() || geteuid() != getuid();
	struct stat top, st;
	int r;

	if (make && (r = make_dir(dir, privileged ? 02770 : 0700, err)))
		return r;
	r = check_dir(dir, 1, !make, &top, err);
	if (r)
		return r == QUEUE_GONE ? 0 : r;
	for (size_t i = 0; i < sizeof(areas) / sizeof(*areas); i++) {
		char *path = xasprintf("%s/%s", dir, areas[i]);

		/* as the top directory: its group's access, its setgid bit */
		r = make ? make_dir(path, top.st_mode & 07777, err) : 0;
		if (!r)
			r = check_dir(path, 0, !make, &st, err);
		free(path);
		if (r && r != QUEUE_GONE)
			return r;
	}
	return 0;
}

int
queue_init(const char *dir, char **err)
{
	return prepare(dir, 1, err);
}

int
queue_check(const char *dir, char **err)
{
	return prepare(dir, 0, err);
}

/* A queue is shared when its top directory lets its group write. */
static int
queue_shared(const char *dir, gid_t *gid)
{
	struct stat st;

	if (stat(dir, &st) || !(st.st_mode & S_IWGRP))
		return 0;
	*gid = st.st_gid;
	return 1;
}

/*
 * Write a complete file in tmp/ (the envelope, then either m's bytes or
 * the message of src), fsync it, and return its path.
 */
static int
write_tmp(const char *dir, const struct qentry *e, struct message *m,
    const struct qentry *src, char **tmp_path, char **err)
{
	char *name = queue_new_id();
	char *path = path_of(dir, "tmp", name);
	int fd, st = 0, saved, shared;
	gid_t group;
	FILE *f;

	free(name);
	fd = open(
	    path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		saved = errno;
		*err = xasprintf(
		    "cannot create queue file '%s': %s", path, strerror(saved));
		free(path);
		return open_status(saved);
	}
	/* exactly 0660 or 0600, whatever the caller's umask; in a shared
	 * queue, the queue's group (a setgid directory gives it already; a
	 * root runner's file would otherwise be root's group) */
	shared = queue_shared(dir, &group);
	if (shared && fchown(fd, (uid_t)-1, group)) {
		/* not a member: the file keeps the group the kernel gave */
	}
	if (fchmod(fd, shared ? 0660 : 0600)) {
		saved = errno;
		close(fd);
		goto fail_errno;
	}
	f = fdopen(fd, "w");
	if (!f) {
		saved = errno;
		close(fd);
		goto fail_errno;
	}
	put_envelope(f, e);
	if (m) {
		struct message_cursor c;
		char buf[64 * 1024];
		long n;

		message_rewind(&c, m);
		while ((n = message_out(&c, buf, sizeof(buf))) > 0)
			if (fwrite(buf, 1, (size_t)n, f) != (size_t)n)
				break;
		if (n < 0) {
			fclose(f);
			unlink(path);
			*err = xstrdup("cannot read the spooled message back");
			free(path);
			return EX_IOERR;
		}
	}
	if (fflush(f)) {
		saved = errno;
		fclose(f);
		goto fail_errno;
	}
	if (src) {
		/* the message part of the old file, copied by the kernel */
		off_t in = src->msg_offset, left = src->msg_size;

		while (left > 0) {
			ssize_t k = copy_file_range(
			    src->fd, &in, fd, NULL, (size_t)left, 0);
			if (k <= 0) {
				char buf[64 * 1024];
				ssize_t r = pread(src->fd, buf,
				    left < (off_t)sizeof(buf) ? (size_t)left
				                              : sizeof(buf),
				    in);
				if (r <= 0 || write(fd, buf, (size_t)r) != r) {
					saved = r < 0 ? errno : EIO;
					fclose(f);
					goto fail_errno;
				}
				k = r;
				in += r;
			}
			left -= k;
		}
	}
	if (fsync(fd)) {
		saved = errno;
		fclose(f);
		goto fail_errno;
	}
	if (fclose(f)) {
		saved = errno;
		goto fail_errno;
	}
	*tmp_path = path;
	return st;

fail_errno:
	unlink(path);
	*err = xasprintf(
	    "cannot write queue file '%s': %s", path, strerror(saved));
	free(path);
	return write_status(saved);
}

int
queue_add(const char *dir, struct qentry *e, struct message *m, char **err)
{
	char *tmp = NULL, *dst;
	int st;

	st = queue_init(dir, err);
	if (st)
		return st;
	for (int tries = 0;; tries++) {
		/* the caller's id first: a log line may have named it */
		if (tries || !e->id) {
			free(e->id);
			e->id = queue_new_id();
		}
		if (!e->created)
			e->created = time(NULL);
		if (!tmp && (st = write_tmp(dir, e, m, NULL, &tmp, err)))
			return st;
		dst = path_of(dir, "q", e->id);
		/* never over another message: ids are random, but be sure */
		if (!renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE))
			break;
		st = errno;
		free(dst);
		if (st != EEXIST || tries > 3) {
			*err = xasprintf("cannot queue the message in '%s/q': "
			                 "%s",
			    dir, strerror(st));
			unlink(tmp);
			free(tmp);
			return write_status(st);
		}
		/* the id is in the file: write it again under a new one */
		unlink(tmp);
		free(tmp);
		tmp = NULL;
	}
	free(tmp);
	free(dst);
	if (sync_dir(dir, "q")) {
		*err = xasprintf("cannot sync queue directory '%s/q': %s", dir,
		    strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
queue_list(const char *dir, const char *area, struct strlist *ids, char **err)
{
	char *path = xasprintf("%s/%s", dir, area);
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d) {
		int e = errno;
		if (e == ENOENT) {
			free(path);
			return 0; /* no queue yet: nothing queued */
		}
		*err = xasprintf(
		    "cannot read queue directory '%s': %s", path, strerror(e));
		free(path);
		return e == EACCES ? EX_NOPERM : EX_IOERR;
	}
	while ((de = readdir(d)))
		if (valid_id(de->d_name))
			strlist_push(ids, de->d_name);
	closedir(d);
	free(path);
	if (ids->n)
		qsort(ids->v, ids->n, sizeof(*ids->v), cmp_str);
	return 0;
}

static int
parse_time(const char *v, time_t *out)
{
	char *end;
	long long n = strtoll(v, &end, 10);

	if (end == v || *end)
		return -1;
	*out = (time_t)n;
	return 0;
}

/* One "name: value" line of the envelope. */
static int
parse_field(struct qentry *e, char *line)
{
	char *colon = strchr(line, ':');
	char *v;

	if (!colon || colon[1] != ' ')
		return -1;
	*colon = '\0';
	v = colon + 2;
	if (!strcmp(line, "id")) {
		free(e->id);
		e->id = xstrdup(v);
	} else if (!strcmp(line, "created")) {
		return parse_time(v, &e->created);
	} else if (!strcmp(line, "account")) {
		free(e->account);
		e->account = xstrdup(v);
	} else if (!strcmp(line, "sender")) {
		free(e->sender);
		e->sender = xstrdup(v);
	} else if (!strcmp(line, "rcpt")) {
		strlist_push(&e->rcpts, v);
	} else if (!strcmp(line, "failed")) {
		strlist_push(&e->failed, v);
	} else if (!strcmp(line, "attempts")) {
		e->attempts = (unsigned)strtoul(v, NULL, 10);
	} else if (!strcmp(line, "last-attempt")) {
		return parse_time(v, &e->last_attempt);
	} else if (!strcmp(line, "next-attempt")) {
		return parse_time(v, &e->next_attempt);
	} else if (!strcmp(line, "last-error")) {
		free(e->last_error);
		e->last_error = xstrdup(v);
	} else if (!strcmp(line, "notify")) {
		free(e->notify);
		e->notify = xstrdup(v);
	} else if (!strcmp(line, "ret")) {
		free(e->ret);
		e->ret = xstrdup(v);
	} else if (!strcmp(line, "envid")) {
		free(e->envid);
		e->envid = xstrdup(v);
	} else if (!strcmp(line, "body")) {
		e->body_8bit = !strcmp(v, "8BITMIME");
	} else if (!strcmp(line, "notice")) {
		e->notice = !strcmp(v, "yes");
	}
	/* other names: a later version's; ignored */
	return 0;
}

static int
read_envelope(struct qentry *e, const char *path, char **err)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, version;
	struct stat st;

	while ((n = getline(&line, &cap, e->file)) > 0) {
		lineno++;
		if (line[n - 1] != '\n')
			break; /* the file ends inside the envelope */
		line[--n] = '\0';
		if (lineno == 1) {
			if (sscanf(line, MAGIC " %d", &version) != 1)
				break;
			if (version > QUEUE_VERSION) {
				*err = xasprintf(
				    "queue file '%s' has version "
				    "%d; this mailshim reads up to %d",
				    path, version, QUEUE_VERSION);
				free(line);
				return EX_DATAERR;
			}
			e->version = version;
			continue;
		}
		if (n == 0) {
			free(line);
			e->msg_offset = ftello(e->file);
			if (fstat(e->fd, &st))
				return EX_IOERR;
			e->msg_size = st.st_size - e->msg_offset;
			if (!e->id || !e->sender || !e->account)
				goto damaged;
			return 0;
		}
		if (parse_field(e, line))
			break;
	}
	free(line);
damaged:
	*err = xasprintf(
	    "queue file '%s' is damaged (line %d)", path, lineno + 1);
	return EX_DATAERR;
}

static char *
untrusted(const char *path, const char *why)
{
	return xasprintf(
	    "queue file '%s' is not trusted (%s): left in place", path, why);
}

/*
 * Why the file at path (st: its fstat) must not be delivered, or NULL when
 * it may: it is a regular file with one name, not writable by others, and
 * written by this user or root, or by the queue's group in a shared queue.
 * Another user's file is someone's attack or someone's mail: never ours.
 */
static char *
distrust(const char *dir, const char *path, const struct stat *st)
{
	char *why, *msg;
	gid_t group;

	if (!S_ISREG(st->st_mode))
		return untrusted(path, "not a regular file");
	if (st->st_nlink != 1) {
		why = xasprintf("%ju hard links", (uintmax_t)st->st_nlink);
		goto out;
	}
	if (st->st_mode & S_IWOTH)
		return untrusted(path, "writable by others");
	if (st->st_uid == geteuid() || st->st_uid == 0 ||
	    (queue_shared(dir, &group) && st->st_gid == group))
		return NULL;
	why = xasprintf("owner uid %ju, group %ju", (uintmax_t)st->st_uid,
	    (uintmax_t)st->st_gid);
out:
	msg = untrusted(path, why);
	free(why);
	return msg;
}

/* queue_open() gives up on e: the descriptor closed, path freed. */
static int
open_failed(struct qentry *e, char *path, int status)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	free(path);
	return status;
}

int
queue_open(const char *dir, const char *area, const char *id, struct qentry *e,
    int lock, char **err)
{
	char *path;
	struct stat a, b;
	int st, saved;

	memset(e, 0, sizeof(*e));
	e->fd = -1;
	if (!valid_id(id)) {
		*err = xasprintf("no such queue id '%s'", id);
		return EX_USAGE;
	}
	path = path_of(dir, area, id);
	/* O_NONBLOCK: a FIFO planted there must not hang the run */
	e->fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (e->fd < 0) {
		saved = errno;
		if (saved == ENOENT)
			return open_failed(e, path, QUEUE_GONE);
		if (saved == ELOOP) {
			*err = untrusted(path, "a symbolic link");
			return open_failed(e, path, QUEUE_UNTRUSTED);
		}
		*err = xasprintf(
		    "cannot open queue file '%s': %s", path, strerror(saved));
		return open_failed(
		    e, path, saved == EACCES ? EX_NOPERM : EX_IOERR);
	}
	if (fstat(e->fd, &a) || fcntl(e->fd, F_SETFL, 0)) {
		*err = xasprintf(
		    "cannot read queue file '%s': %s", path, strerror(errno));
		return open_failed(e, path, EX_IOERR);
	}
	/* removed or replaced since: delivered, or another runner's */
	if (a.st_nlink == 0)
		return open_failed(e, path, QUEUE_GONE);
	if ((*err = distrust(dir, path, &a)))
		return open_failed(e, path, QUEUE_UNTRUSTED);
	if (lock) {
		if (flock(e->fd, LOCK_EX | LOCK_NB)) {
			saved = errno;
			if (saved == EWOULDBLOCK)
				return open_failed(e, path, QUEUE_BUSY);
			*err = xasprintf(
			    "cannot lock queue file: %s", strerror(saved));
			return open_failed(e, path, EX_IOERR);
		}
		/* delivered and removed, or replaced, while we waited */
		if (fstat(e->fd, &a) || stat(path, &b) ||
		    a.st_ino != b.st_ino || a.st_dev != b.st_dev ||
		    a.st_nlink == 0)
			return open_failed(e, path, QUEUE_GONE);
		/* a link made, or the owner changed, while we waited */
		if ((*err = distrust(dir, path, &a)))
			return open_failed(e, path, QUEUE_UNTRUSTED);
	}
	e->file = fdopen(e->fd, "r");
	if (!e->file)
		return open_failed(e, path, EX_OSERR);
	e->dir = xstrdup(dir);
	e->area = xstrdup(area);
	st = read_envelope(e, path, err);
	free(path);
	if (st) {
		fclose(e->file);
		e->file = NULL;
		e->fd = -1;
	}
	return st;
}

void
queue_message(struct qentry *e, struct message *m)
{
	message_init_raw(m, e->file, e->msg_offset, e->msg_size);
}

/* ---- changing ----------------------------------------------------------- */

/* A new file with e's envelope and the message, renamed to area/<id>. */
static int
rewrite(struct qentry *e, const char *area, int replace, char **err)
{
	char *tmp = NULL, *dst;
	int st;

	st = write_tmp(e->dir, e, NULL, e, &tmp, err);
	if (st)
		return st;
	dst = path_of(e->dir, area, e->id);
	if (replace
	        ? rename(tmp, dst)
	        : renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE)) {
		int saved = errno;
		*err = xasprintf(
		    "cannot move queue file to '%s': %s", dst, strerror(saved));
		unlink(tmp);
		free(tmp);
		free(dst);
		return write_status(saved);
	}
	free(tmp);
	free(dst);
	if (sync_dir(e->dir, area)) {
		*err = xasprintf("cannot sync queue directory '%s/%s': %s",
		    e->dir, area, strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

int
queue_update(struct qentry *e, char **err)
{
	return rewrite(e, e->area, 1, err);
}

int
queue_fail(struct qentry *e, char **err)
{
	int st = queue_init(e->dir, err);

	/* over an older failed/<id> if there is one: leaving this one in q/
	 * would deliver its delivered recipients again */
	if (!st)
		st = rewrite(e, "failed", 1, err);
	if (!st)
		st = queue_remove(e, err);
	return st;
}

int
queue_remove(struct qentry *e, char **err)
{
	char *path = path_of(e->dir, e->area, e->id);

	if (unlink(path) && errno != ENOENT) {
		*err = xasprintf(
		    "cannot remove queue file '%s': %s", path, strerror(errno));
		free(path);
		return EX_IOERR;
	}
	free(path);
	if (sync_dir(e->dir, e->area)) {
		*err = xasprintf("cannot sync queue directory '%s/%s': %s",
		    e->dir, e->area, strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

void
qentry_release(struct qentry *e)
{
	if (e->file)
		fclose(e->file);
	else if (e->fd >= 0)
		close(e->fd);
	free(e->id);
	free(e->account);
	free(e->sender);
	strlist_release(&e->rcpts);
	strlist_release(&e->failed);
	free(e->last_error);
	free(e->notify);
	free(e->ret);
	free(e->envid);
	free(e->dir);
	free(e->area);
	memset(e, 0, sizeof(*e));
	e->fd = -1;
}

int
queue_sweep_tmp(const char *dir, long max_age)
{
	char *path, *err = NULL;
	DIR *d;
	struct dirent *de;
	time_t now = time(NULL);
	int removed = 0;

	/* never in a queue others could have put things in */
	if (queue_check(dir, &err)) {
		free(err);
		return 0;
	}
	path = xasprintf("%s/tmp", dir);
	d = opendir(path);
	if (!d) {
		free(path);
		return 0;
	}
	while ((de = readdir(d))) {
		struct stat st;
		char *f;

		if (!valid_id(de->d_name))
			continue;
		f = path_of(dir, "tmp", de->d_name);
		/* old enough that no sender can still be writing it */
		if (!lstat(f, &st) && S_ISREG(st.st_mode) &&
		    now - st.st_mtime > max_age && !unlink(f))
			removed++;
		free(f);
	}
	closedir(d);
	free(path);
	return removed;
}
