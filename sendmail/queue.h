/*
 * queue.h - the queue: messages mailshim accepted but could not hand to the
 * relay yet, kept on disk until it takes them.
 *
 * Layout under queue_dir:
 *   tmp/     files being written; never read by a runner
 *   q/       one file per queued message, named by its id
 *   failed/  messages that failed permanently, kept for the administrator
 *
 * A queue file is text up to the first empty line, then the message exactly
 * as it is sent (headers, CRLF, body, CRLF line endings):
 *
 *   MAILSHIM-QUEUE 1
 *   id: 0000019a7c3e5f2b.4f1c2a9e
 *   created: 1795363820
 *   account: nhncloud
 *   sender: www@shop.example          (empty: the null sender)
 *   rcpt: a@example.com               (one line each, still to deliver)
 *   failed: b@example.com 550 5.1.1 user unknown   (refused for good)
 *   attempts: 2
 *   last-attempt: 1795363880
 *   next-attempt: 1795364000
 *   last-error: relay deferred recipient <a@example.com>: 451 4.3.0 ...
 *   notify: SUCCESS,FAILURE           (ESMTP parameters, when given)
 *   ret: HDRS
 *   envid: abc
 *   body: 8BITMIME
 *   notice: yes                       (a failure notice mailshim wrote)
 *
 *   <the message>
 *
 * Unknown field names are ignored (a later version may add some); a higher
 * version number is refused.  Values are one line of printable text.
 *
 * Durability: a file is written in tmp/, fsync'd, then renamed into q/
 * (never over an existing name) and q/ is fsync'd, so a crash at any moment
 * leaves either no queue file or a complete one.  The envelope is updated
 * the same way: a new file with the new envelope and a copy of the message,
 * renamed over the old one.
 *
 * Locking: a runner holds flock(LOCK_EX) on the file it is delivering, and
 * after taking the lock checks that the name still refers to that file, so
 * two runners never deliver one message.
 *
 * Modes, whatever the caller's umask: a queue is shared when its top
 * directory lets its group write (installed setgid mailshim: root:mailshim
 * 2770).  queue_init() makes a missing top directory 02770 when the process
 * is privileged (setgid or setuid), else 0700 (a user's own queue); areas
 * it makes get the top directory's mode.  Queue files are 0660 in a shared
 * queue, else 0600.
 *
 * Trust: a queue file is read only when it is a regular file with one
 * link, not writable by others, and owned by the effective user or root,
 * or, in a shared queue, of the top directory's group.  Another file is
 * left where it is (QUEUE_UNTRUSTED).  No queue directory may be writable
 * by others, and an area must be a real directory (not a symbolic link):
 * such a queue is refused with EX_CONFIG.
 */
#ifndef MAILSHIM_QUEUE_H
#define MAILSHIM_QUEUE_H

#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "message.h"
#include "util.h"

#define QUEUE_VERSION 1

/* what queue_open() can answer besides 0 and an error */
enum { QUEUE_BUSY = -1, QUEUE_GONE = -2, QUEUE_UNTRUSTED = -3 };

struct qentry {
	char *id;
	int version;
	time_t created;
	time_t last_attempt;
	time_t next_attempt;
	unsigned attempts;
	char *account;
	char *sender;          /* "" is the null sender */
	struct strlist rcpts;  /* still to deliver */
	struct strlist failed; /* "addr reply" for each refused for good */
	char *last_error;
	char *notify, *ret, *envid;
	int body_8bit;
	int notice; /* a failure notice: a failing one makes none */

	/* while open */
	int fd;           /* -1 when not open; locked when held */
	FILE *file;       /* over fd, for reading the message */
	off_t msg_offset; /* where the message starts */
	off_t msg_size;
	char *dir;  /* the queue directory */
	char *area; /* "q" or "failed" */
};

/* Make queue_dir and its tmp/, q/ and failed/ if missing, then check them
 * as queue_check() does.  0, or EX_* with *err set. */
int queue_init(const char *dir, char **err);

/*
 * Check an existing queue before using it: no directory writable by
 * others, each area a real directory.  0 (also when there is no queue
 * yet), EX_CONFIG with *err = "queue directory 'P' is writable by others:
 * run chmod o-w P" (or why else), or EX_* when it cannot be read.
 */
int queue_check(const char *dir, char **err);

/*
 * Queue a message: e holds the envelope (created is set here when 0, and
 * id: the one the caller set, from queue_new_id(), unless another message
 * has it, else a new one), m the message as it would be sent.  Returns 0
 * once the file and its directory entry are on disk (fsync'd);
 * EX_TEMPFAIL (disk full) or EX_CANTCREAT or EX_IOERR with *err set,
 * leaving nothing behind.
 */
int queue_add(const char *dir, struct qentry *e, struct message *m, char **err);

/* The ids in q/ (or failed/ when area is "failed"), sorted. */
int queue_list(
    const char *dir, const char *area, struct strlist *ids, char **err);

/*
 * Open q/<id> and read its envelope.  With lock, take the delivery lock
 * without waiting: QUEUE_BUSY if another runner holds it, QUEUE_GONE if the
 * file went away (delivered meanwhile).  QUEUE_UNTRUSTED with *err set
 * ("queue file 'P' is not trusted (why): left in place") for a file that
 * fails the trust rules above, never read nor locked.  0 on success (e
 * then holds the fd); EX_* with *err set on errors (a damaged file:
 * EX_DATAERR).
 */
int queue_open(const char *dir, const char *area, const char *id,
    struct qentry *e, int lock, char **err);

/* A message reading the queued bytes of an open entry (for submit). */
void queue_message(struct qentry *e, struct message *m);

/* Write e's envelope (with its message) over q/<id>, durably. */
int queue_update(struct qentry *e, char **err);

/* Move e to failed/<id> with its envelope as it is now, durably. */
int queue_fail(struct qentry *e, char **err);

/* Delivered: remove q/<id> (still holding the lock), durably. */
int queue_remove(struct qentry *e, char **err);

/*
 * Remove files in tmp/ older than max_age seconds: what senders killed
 * while writing left behind (they never acknowledged those messages).
 * Nothing in a queue queue_check() refuses.  Returns how many were removed.
 */
int queue_sweep_tmp(const char *dir, long max_age);

/* Close the file (releasing the lock) and free everything. */
void qentry_release(struct qentry *e);

/* A new queue id: creation time and randomness, 25 characters. */
char *queue_new_id(void);

#endif
