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
};

/* Read a message and send it (or queue it); -bv prints instead. */
int run_deliver(struct run *r);

/* sendmail -q[x]: one run over the queue. */
int run_queue(struct run *r);

/* mailq, sendmail -bp. */
int run_list_queue(struct run *r);

/* newaliases, sendmail -bi. */
int run_check_aliases(struct run *r);

/* Print "mailshim: msg", free msg, and return status. */
int run_fail(int status, char *msg);

void run_release(struct run *r);

#endif
