/*
 * run.h - one run of the program: the configuration, the message and its
 * envelope, and what is done with them (deliver now, queue, run the
 * queue, list it, check the aliases).
 *
 * main.c parses the command line and calls one of these; each prints its
 * own one-line errors and returns the exit status (sysexits(3)).
 */
#ifndef MAILSHIM_RUN_H
#define MAILSHIM_RUN_H

#include "aliases.h"
#include "cfg.h"
#include "envelope.h"
#include "message.h"
#include "options.h"

struct submit_session;

/* Everything a run needs, released in one place (run_release()). */
struct run {
	struct options opt;
	struct config cfg;
	const struct account *acct;
	struct aliases aliases;
	int have_aliases;
	char *local_domain;
	char *fqdn;
	char *user;
	struct message msg;
	struct envelope env;
	char *caller_sender; /* the sender before from_policy */
	char *account_from;  /* the sender from_policy forces, or NULL */
	struct strlist notes;
	int in_fd; /* where the message comes from: 0, or -bs's data */

	/* a connection kept for the next message of the same account (-bs) */
	struct submit_session *session;
	const struct account *session_acct;
};

/* What became of one message sent now (deliver_now()). */
struct outcome {
	int status;     /* exit status: 0 when delivered or queued */
	int queued;     /* it is in the queue, as id */
	char *id;       /* the message's id (its queue id when queued) */
	int relay_code; /* the relay's failure reply code, or 0 */
	char *why;      /* one line: the failure, or why it was queued */
};

/* Read a message and send it (or queue it); -bv prints instead. */
int run_deliver(struct run *r);

/* sendmail -q[x]: one run over the queue. */
int run_queue(struct run *r);

/* mailq, sendmail -bp. */
int run_list_queue(struct run *r);

/* sendmail -bs: SMTP with the caller on standard input and output; each
 * transaction goes the way a sendmail -f ... call would. */
int run_smtp(struct run *r);

/* newaliases, sendmail -bi. */
int run_check_aliases(struct run *r);

/*
 * The steps of one message, for callers that feed them one by one (-bs):
 * load the configuration once; then for each message set r->opt.sender,
 * r->opt.recipients and r->in_fd, run_prepare(), run_deliver_now(), and
 * run_next_message() before the next.
 */
int run_load(struct run *r);
int run_prepare(struct run *r);
void run_deliver_now(struct run *r, struct outcome *o);
void run_next_message(struct run *r);
void outcome_release(struct outcome *o);

/* Print "mailshim: msg", free msg, and return status. */
int run_fail(int status, char *msg);

void run_release(struct run *r);

#endif
