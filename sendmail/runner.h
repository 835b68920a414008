/*
 * runner.h - queue runs (sendmail -q) and the queue listing (mailq).
 *
 * A run peeks at every queued message, groups the due ones by account, and
 * delivers them over at most queue_concurrency connections at once (one
 * process, a thread for each connection), each for one account and reused for
 * its messages one after another, holding each message's lock while it is
 * delivered.  When the relay of an account cannot be reached, the run
 * leaves its other messages for the next run.  Recipients the relay takes are
 * done; those refused for good are reported to the sender in a failure
 * notice; the others wait for the next run, backing off from 1 minute,
 * doubling, to 1 hour, until queue_lifetime has passed.
 */
#ifndef MAILSHIM_RUNNER_H
#define MAILSHIM_RUNNER_H

#include <stdio.h>
#include <time.h>

#include "aliases.h"
#include "cfg.h"

struct runner {
	const struct config *cfg;
	const char *queue_dir;
	const char *helo;         /* EHLO name when an account sets none */
	const char *local_domain; /* for notices: MAILER-DAEMON, postmaster */
	const struct aliases *aliases; /* where postmaster goes; may be NULL */
	int verbose;

	/* which messages: -qI<id>, -qR<domain>, -qS<sender>; with one of
	 * them (or force), not only those that are due */
	const char *id;
	const char *domain;
	const char *sender;
	int force;

	/* what the run did, for the caller */
	unsigned delivered, deferred, failed, busy;
};

/*
 * Run the queue.  Returns 0, or an EX_* status with *err set when the
 * queue could not be read at all; the fate of each message is in its
 * queue file (and, under verbose, on stderr).
 */
int runner_run(struct runner *r, char **err);

/* Write the queue listing, as mailq does, to out.  0 or EX_*. */
int runner_list(const char *queue_dir, FILE *out, char **err);

/* Seconds to wait after a failed attempt: 1 minute doubling to 1 hour. */
long runner_backoff(unsigned attempts);

#endif
