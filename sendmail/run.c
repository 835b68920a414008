/*
 * run.c - one run of the program (see run.h): load the configuration,
 * read the message, work out the envelope, and deliver it now, in the
 * background or through the queue; or run, list or check.
 *
 * The top of the pipeline: it turns each stage's result into the exit
 * status (the table below) and the one line on stderr.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "run.h"
#include "runner.h"
#include "secret.h"
#include "smtp_stdio.h"
#include "submit.h"
#include "sysinfo.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

/* -bs: a failure goes into the SMTP reply, not onto stderr */
static int quiet_failures;
static char *last_failure;

int
run_fail(int status, char *msg)
{
	if (quiet_failures) {
		free(last_failure);
		last_failure = msg;
		return status;
	}
	fprintf(stderr, "mailshim: %s\n", msg);
	free(msg);
	return status;
}

static const char *
config_path(const struct options *o)
{
	const char *env = getenv("MAILSHIM_CONFIG");

	if (o->config)
		return o->config;
	if (env && *env)
		return env;
	return SYSCONFDIR "/mailshim.ini";
}

static const char *
fqdn(struct run *r)
{
	if (!r->fqdn)
		r->fqdn = sysinfo_fqdn();
	return r->fqdn;
}

static int
load_aliases(struct run *r)
{
	const char *path = r->cfg.aliases ? r->cfg.aliases : "/etc/aliases";
	char *err = NULL;

	if (!r->cfg.aliases && access(path, R_OK))
		return 0; /* no aliases file: nothing to expand */
	if (aliases_load(path, &r->aliases, &err))
		return run_fail(EX_CONFIG, err);
	r->have_aliases = 1;
	return 0;
}

int
run_load(struct run *r)
{
	char *err = NULL;
	int st;

	st = config_load(config_path(&r->opt), &r->cfg, &err);
	if (st)
		return run_fail(st, err);
	log_setup(&r->cfg);
	/* the account follows the sender: see choose_account() */
	if (r->cfg.local_domain)
		r->local_domain = xstrdup(r->cfg.local_domain);
	else if (!(r->local_domain = sysinfo_mailname(NULL)))
		r->local_domain = xstrdup(fqdn(r));
	return load_aliases(r);
}

static void
print_notes(const struct run *r)
{
	for (size_t i = 0; r->opt.verbose && i < r->opt.notes.n; i++)
		fprintf(stderr, "mailshim: note: %s\n", r->opt.notes.v[i]);
	for (size_t i = 0; r->opt.verbose && i < r->notes.n; i++)
		fprintf(stderr, "mailshim: note: %s\n", r->notes.v[i]);
}

/* -v: which account, and why (when there was a choice). */
static void
note_account(struct run *r, const char *pattern)
{
	const char *why = "no match_from matches";

	if (pattern) {
		strlist_push_owned(&r->notes,
		    xasprintf("account [%s]: sender '%s' matches its "
		              "match_from '%s'",
		        r->acct->name, r->env.sender, pattern));
		return;
	}
	if (r->cfg.naccounts < 2)
		return;
	if (!r->opt.sender)
		why = "no -f";
	else if (!*r->env.sender)
		why = "the null sender";
	strlist_push_owned(&r->notes,
	    xasprintf(
	        "account [%s]: the default account (%s)", r->acct->name, why));
}

/*
 * Choose the account and the sender.  A sender given with -f chooses the
 * account through match_from, as it will be sent (aliased and qualified);
 * without -f, the default account's 'from' is the sender.  Then the
 * account's from_policy may replace the sender with its 'from'.
 */
static int
choose_account(struct run *r, struct envelope_ctx *ctx)
{
	const char *given = r->opt.sender, *pattern, *policy;
	char *err = NULL;
	int st;

	if (given && (st = envelope_set_sender(&r->env, given, ctx, &err)))
		return run_fail(st, err);
	r->acct = config_account_for(
	    &r->cfg, given ? r->env.sender : NULL, &pattern, &err);
	if (!r->acct)
		return run_fail(EX_CONFIG, err);
	note_account(r, pattern);
	ctx->default_sender = r->acct->from;
	if (!given && (st = envelope_set_sender(&r->env, NULL, ctx, &err)))
		return run_fail(st, err);
	r->caller_sender = xstrdup(r->env.sender);
	if (r->acct->from_policy == FROM_KEEP)
		return 0;
	st = envelope_force_sender(&r->env, ctx, &r->account_from, &err);
	if (st)
		return run_fail(st, err);
	policy = r->acct->from_policy == FROM_REWRITE ? "rewrite" : "envelope";
	if (*r->env.sender)
		strlist_push_owned(&r->notes,
		    xasprintf("from_policy = %s: sender '%s' sent as '%s'",
		        policy, r->caller_sender, r->env.sender));
	else
		strlist_push_owned(&r->notes,
		    xasprintf("from_policy = %s: the null sender stays null",
		        policy));
	return 0;
}

/*
 * from_policy = rewrite: the account's 'from' in From:, the caller's
 * address (From:'s, else the sender's) in Reply-To:.
 */
static int
rewrite_from(struct run *r, const struct envelope_ctx *ctx)
{
	char *err = NULL, *original;
	int st;

	st = envelope_from_header(&r->msg, ctx, &original, &err);
	if (st)
		return run_fail(st, err);
	if (!original)
		original = xstrdup(r->caller_sender);
	st = message_rewrite_from(
	    &r->msg, r->account_from, r->opt.fullname, original, &err);
	free(original);
	if (st)
		return run_fail(st, err);
	return 0;
}

/* Read the message and work out the envelope. */
int
run_prepare(struct run *r)
{
	struct envelope_ctx ctx = {
		.local_domain = r->local_domain,
		/* -n: no aliasing, as in sendmail */
		.aliases = r->have_aliases && !r->opt.no_aliases ? &r->aliases
		                                                 : NULL,
		.user = r->user,
		.notes = &r->notes,
	};
	char *err = NULL, *from_addr;
	int st;

	st = choose_account(r, &ctx);
	if (st)
		return st;
	for (size_t i = 0; !st && i < r->opt.recipients.n; i++) {
		const char *a = r->opt.recipients.v[i];
		st = envelope_add_list(&r->env, a, strlen(a),
		    "command-line recipient", &ctx, &err);
	}
	if (st)
		return run_fail(st, err);
	/* -bv collects no message, unless the recipients are in it */
	if (r->opt.mode == MODE_VERIFY && !r->opt.extract)
		goto check;
	/* -bs: the SMTP engine held DATA to max_message_size already */
	if (r->opt.mode != MODE_SMTP)
		r->msg.max_size = r->cfg.max_message_size;
	st = message_read(&r->msg, r->in_fd, r->opt.ignore_dots, NULL, &err);
	if (st)
		return run_fail(st, err);
	if (r->opt.extract &&
	    (st = envelope_add_headers(&r->env, &r->msg, &ctx, &err)))
		return run_fail(st, err);
check:
	if (!r->env.rcpts.n)
		return run_fail(EX_USAGE,
		    xstrdup(!r->opt.extract
		            ? "no recipients given (use -t to read them "
		              "from the headers)"
		            : r->env.resent
		            ? "no recipients: none on the command line and "
		              "none in Resent-To:, Resent-Cc: or Resent-Bcc:"
		            : "no recipients: none on the command line and "
		              "none in To:, Cc: or Bcc:"));
	if (r->opt.mode == MODE_VERIFY)
		return 0;
	if (r->acct->from_policy == FROM_REWRITE &&
	    (st = rewrite_from(r, &ctx)))
		return st;
	/* a From: still missing names the caller: from_policy = envelope
	 * leaves the headers alone */
	from_addr = *r->caller_sender
	    ? xstrdup(r->caller_sender)
	    : xasprintf("MAILER-DAEMON@%s", r->local_domain);
	st = message_complete(
	    &r->msg, from_addr, r->opt.fullname, r->local_domain, &err);
	free(from_addr);
	if (st)
		return run_fail(st, err);
	return 0;
}

static const char *
queue_dir(const struct run *r)
{
	return r->cfg.queue_dir ? r->cfg.queue_dir : QUEUE_DIR_DEFAULT;
}

static struct submit_params
params_of(const struct run *r)
{
	/* BODY=8BITMIME for -B8BITMIME, and for any 8-bit message whatever
	 * -B says, as Postfix does: a relay that offers 8BITMIME is told */
	struct submit_params p = {
		.notify = r->opt.dsn_notify,
		.ret = r->opt.dsn_ret,
		.envid = r->opt.dsn_envid,
		.body_8bit = r->msg.eight_bit ||
		    (r->opt.body_type &&
		        !ascii_strcasecmp(r->opt.body_type, "8BITMIME")),
	};
	return p;
}

/* -od<x> before the configuration's delivery */
static enum delivery
delivery_mode(const struct run *r)
{
	const char *od = r->opt.delivery;

	if (od && (*od == 'i' || *od == 'I'))
		return DELIVERY_DIRECT;
	if (od && (*od == 'b' || *od == 'B'))
		return DELIVERY_BACKGROUND;
	if (od && strchr("qQdD", *od))
		return DELIVERY_QUEUE;
	return r->cfg.delivery;
}

static char *
upper(char *s)
{
	for (char *p = s; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	return s;
}

/*
 * Put the message in the queue: after a temporary failure (why is the
 * reason), or at once (why is NULL).  *id is the id to give it, or NULL
 * for a new one; on success it is the queue id.  On failure the one-line
 * reason goes to *failed, or to stderr when failed is NULL.
 */
static int
enqueue(struct run *r, const char *why, const struct submit_result *res,
    char **id, char **failed)
{
	struct submit_params p = params_of(r);
	struct qentry e = { 0 };
	char *err = NULL;
	int st;

	e.fd = -1;
	e.id = *id ? xstrdup(*id) : NULL;
	e.account = xstrdup(r->acct->name);
	e.sender = xstrdup(r->env.sender);
	for (size_t i = 0; i < r->env.rcpts.n; i++)
		/* the relay took it for some: never send it to them twice */
		if (!res || i >= res->nrcpt ||
		    res->rcpt[i].outcome != RCPT_DELIVERED)
			strlist_push(&e.rcpts, r->env.rcpts.v[i]);
	e.created = time(NULL);
	if (why) {
		e.attempts = 1;
		e.last_attempt = e.created;
		e.next_attempt = e.created + runner_backoff(1);
		e.last_error = xstrdup(why);
	} else {
		e.next_attempt = e.created;
	}
	/* as they go on the wire: NOTIFY and RET are case-insensitive */
	e.notify = p.notify ? upper(xstrdup(p.notify)) : NULL;
	e.ret = p.ret ? upper(xstrdup(p.ret)) : NULL;
	e.envid = p.envid ? xstrdup(p.envid) : NULL;
	e.body_8bit = p.body_8bit;
	st = queue_add(queue_dir(r), &e, &r->msg, &err);
	if (st) {
		/* one line: why it was not delivered, and why not queued */
		char *msg = why
		    ? xasprintf("%s; message not queued either: %s", why, err)
		    : xasprintf("message not queued: %s", err);
		if (failed)
			*failed = msg;
		else
			run_fail(st, msg);
		free(err);
	} else {
		free(*id);
		*id = xstrdup(e.id);
	}
	qentry_release(&e);
	return st;
}

/* The log line of one message of this run. */
static void
log_message(const struct run *r, const char *id, enum fate fate, int status,
    int code, const char *reply, const char *why, const struct timespec *start)
{
	struct log_entry le = {
		.id = id,
		.acct = r->acct,
		.from = r->env.sender,
		.rcpts = &r->env.rcpts,
		.mailsize = (long long)message_size(&r->msg),
		.smtpstatus = reply ? code : 0,
		.smtpmsg = reply,
		.fate = fate,
		.exitcode = status,
		.elapsed_ms = log_ms_since(start),
		.errormsg = why,
	};

	log_write(&le);
}

/*
 * The relay's reply that decided a direct attempt: the one after the
 * final dot when the message went; else the failure's, as the recipient
 * it decided keeps it, or as the message quotes it (AUTH, the greeting).
 */
static const char *
deciding_reply(const struct submit_result *res, int sent, int *code)
{
	for (size_t i = 0; i < res->nrcpt; i++) {
		const struct submit_rcpt *rc = &res->rcpt[i];
		if (rc->code &&
		    (sent ? rc->outcome == RCPT_DELIVERED
		          : rc->code == res->code)) {
			*code = rc->code;
			return rc->reply;
		}
	}
	*code = res->code;
	return sent ? NULL : log_quoted_reply(res->message, res->code);
}

/* delivery = queue or background: into the queue at once, logged. */
static int
queue_now(struct run *r, char **id, char **failed)
{
	struct timespec start;
	char *why = NULL;
	int st;

	clock_gettime(CLOCK_MONOTONIC, &start);
	st = enqueue(r, NULL, NULL, id, &why);
	log_message(
	    r, *id, st ? FATE_FAILED : FATE_QUEUED, st, 0, NULL, why, &start);
	if (st && failed)
		*failed = why;
	else if (st)
		run_fail(st, why);
	return st;
}

/*
 * A session for the run's account: the one kept from the previous message
 * when it is for the same account (-bs), else a new one.  NULL with *err
 * and *status set when there is none.
 */
static struct submit_session *
session_for(struct run *r, int *status, char **err)
{
	const char *password;

	if (r->session && r->session_acct == r->acct)
		return r->session;
	submit_close(r->session);
	r->session = NULL;
	r->session_acct = NULL;
	/* a failing password_command is the configuration's fault; asked
	 * here, so that it is told apart (submit_open() finds it kept) */
	if (r->acct->auth != AUTH_NONE &&
	    (*status = account_password(r->acct, &password, err)))
		return NULL;
	*status = EX_SOFTWARE;
	r->session = submit_open(r->acct,
	    r->acct->helo ? r->acct->helo : fqdn(r), r->opt.verbose, err);
	r->session_acct = r->session ? r->acct : NULL;
	return r->session;
}

/*
 * Deliver now; on a temporary failure, queue (unless on_tempfail = fail).
 * Nothing is printed: o says what happened, and the log line too.
 */
void
run_deliver_now(struct run *r, struct outcome *o)
{
	struct submit_params params = params_of(r);
	struct submit_session *s;
	struct submit_result res;
	struct timespec start;
	const char *reply;
	char *err = NULL;
	int code;

	clock_gettime(CLOCK_MONOTONIC, &start);
	memset(o, 0, sizeof(*o));
	/* an id from the start: the log line names the message by it, and
	 * the queue keeps it if the message goes there */
	o->id = queue_new_id();
	s = session_for(r, &o->status, &err);
	if (!s) {
		o->why = err;
		log_message(
		    r, o->id, FATE_FAILED, o->status, 0, NULL, o->why, &start);
		return;
	}
	submit_send(s, r->env.sender, &r->env.rcpts, &params, &r->msg, &res);
	o->status = submit_exit_status(res.status);
	if (o->status && res.nrcpt == r->env.rcpts.n) {
		/* the relay took it for everyone and then the connection
		 * failed: delivered all the same */
		size_t done = 0;
		while (done < res.nrcpt &&
		    res.rcpt[done].outcome == RCPT_DELIVERED)
			done++;
		if (done == res.nrcpt)
			o->status = 0;
	}
	reply = deciding_reply(&res, !o->status, &code);
	if (o->status && res.status == SUBMIT_TEMPFAIL &&
	    r->cfg.on_tempfail == TEMPFAIL_QUEUE) {
		o->status = enqueue(r, res.message, &res, &o->id, &o->why);
		o->queued = !o->status;
		if (o->queued) {
			o->why = res.message;
			res.message = NULL;
		}
	} else if (o->status) {
		o->relay_code = res.code;
		o->why = res.message;
		res.message = NULL;
	}
	log_message(r, o->id,
	    o->queued        ? FATE_QUEUED
	        : !o->status ? FATE_SENT
	        : res.status == SUBMIT_RCPT || res.status == SUBMIT_REFUSED
	        ? FATE_BOUNCED
	        : FATE_FAILED,
	    o->status, code, reply, o->why, &start);
	submit_result_release(&res);
}

void
outcome_release(struct outcome *o)
{
	free(o->id);
	free(o->why);
	memset(o, 0, sizeof(*o));
}

/* The command line's delivery: one line on stderr for what went wrong. */
static int
send_message(struct run *r)
{
	struct outcome o;
	int st;

	run_deliver_now(r, &o);
	st = o.status;
	if (o.queued)
		fprintf(stderr, "mailshim: queued as %s: %s\n", o.id, o.why);
	else if (st)
		fprintf(stderr, "mailshim: %s\n", o.why ? o.why : "failed");
	outcome_release(&o);
	return st;
}

/* A runner for the configured queue, as -q and -odb need it. */
static void
runner_init(struct run *r, struct runner *q)
{
	memset(q, 0, sizeof(*q));
	q->cfg = &r->cfg;
	q->queue_dir = queue_dir(r);
	q->helo = fqdn(r);
	q->local_domain = r->local_domain;
	q->aliases = r->have_aliases ? &r->aliases : NULL;
	q->verbose = r->opt.verbose;
}

/*
 * delivery = background: the message is queued; a runner, detached from
 * the caller, delivers it while we return at once.  When we are about to
 * exit (exiting), one fork: the runner outlives us and init takes it, and
 * we do not wait for anything.  A -bs session goes on after each message:
 * there a child forks the runner and exits at once, so that no runner
 * stays our zombie when it ends.
 */
static void
deliver_in_background(struct run *r, const char *id, int exiting)
{
	pid_t pid;
	int fd;

	pid = fork();
	if (pid < 0)
		return; /* queued all the same: the next -q delivers it */
	if (pid > 0) {
		if (!exiting)
			waitpid(pid, NULL, 0);
		return;
	}
	/* The caller's pipes go first: a caller that reads our stdout and
	 * stderr to their end (PHP's proc_open, Symfony's Process) must see
	 * that end when we exit, not when the runner lets go of them. */
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	setsid();
	if (exiting || fork() == 0) {
		struct runner q;
		char *err = NULL;

		runner_init(r, &q);
		q.verbose = 0;
		q.id = id;
		runner_run(&q, &err);
	}
	_exit(0);
}

int
run_deliver(struct run *r)
{
	int st;

	r->user = sysinfo_username();
	st = run_load(r);
	if (!st)
		st = run_prepare(r);
	print_notes(r);
	if (st)
		return st;
	if (r->opt.mode == MODE_VERIFY) {
		printf("%s\n", *r->env.sender ? r->env.sender : "<>");
		for (size_t i = 0; i < r->env.rcpts.n; i++)
			printf("%s\n", r->env.rcpts.v[i]);
		return fflush(stdout) ? EX_IOERR : 0;
	}
	switch (delivery_mode(r)) {
	case DELIVERY_DIRECT:
		return send_message(r);
	case DELIVERY_BACKGROUND: {
		char *id = NULL;
		st = queue_now(r, &id, NULL);
		if (!st)
			deliver_in_background(r, id, 1);
		free(id);
		return st;
	}
	case DELIVERY_QUEUE: {
		char *id = NULL;
		st = queue_now(r, &id, NULL);
		free(id);
		return st;
	}
	}
	return EX_SOFTWARE;
}

/* sendmail -q[x]: one run over the queue. */
int
run_queue(struct run *r)
{
	const char *a = r->opt.queue_arg ? r->opt.queue_arg : "";
	struct runner q;
	char *err = NULL;
	int st = run_load(r);

	if (st)
		return st;
	runner_init(r, &q);
	/* an empty selector selects nothing more than -q does */
	if (*a == 'I' && a[1])
		q.id = a + 1;
	else if (*a == 'R' && a[1])
		q.domain = a + 1;
	else if (*a == 'S' && a[1])
		q.sender = a + 1;
	else if (*a == 'f')
		q.force = 1; /* -qf: everything now, in the foreground */
	else if (*a && r->opt.verbose)
		/* -q30m: sendmail's daemon; here the timer repeats runs */
		fprintf(stderr,
		    "mailshim: note: -q%s: one run now; repeated "
		    "runs are the timer's job\n",
		    a);
	/* a day is far longer than any sender takes to write its file */
	queue_sweep_tmp(q.queue_dir, 86400);
	st = runner_run(&q, &err);
	if (st)
		return run_fail(st, err);
	if (r->opt.verbose)
		fprintf(stderr,
		    "mailshim: queue run: %u delivered, %u "
		    "deferred, %u failed, %u busy\n",
		    q.delivered, q.deferred, q.failed, q.busy);
	return 0;
}

/* mailq, sendmail -bp */
int
run_list_queue(struct run *r)
{
	char *err = NULL;
	int st = run_load(r);

	if (st)
		return st;
	st = runner_list(queue_dir(r), stdout, &err);
	return st ? run_fail(st, err) : 0;
}

int
run_check_aliases(struct run *r)
{
	int st = run_load(r);

	if (st)
		return st;
	/* Debian's package scripts run newaliases: report, but never fail */
	for (size_t i = 0; r->have_aliases && i < r->aliases.problems.n; i++)
		fprintf(stderr, "mailshim: warning: %s\n",
		    r->aliases.problems.v[i]);
	return 0;
}

void
run_next_message(struct run *r)
{
	message_release(&r->msg);
	envelope_release(&r->env);
	free(r->caller_sender);
	free(r->account_from);
	r->caller_sender = r->account_from = NULL;
	r->acct = NULL;
	strlist_release(&r->notes);
}

void
run_release(struct run *r)
{
	log_close();
	submit_close(r->session);
	r->session = NULL;
	options_release(&r->opt);
	config_release(&r->cfg);
	if (r->have_aliases)
		aliases_release(&r->aliases);
	free(r->local_domain);
	free(r->fqdn);
	free(r->user);
	message_release(&r->msg);
	envelope_release(&r->env);
	free(r->caller_sender);
	free(r->account_from);
	strlist_release(&r->notes);
}

/* ---- sendmail -bs ------------------------------------------------------- */

/* The final reply for a message that could not be taken. */
static void
refusal(int status, int relay_code, const char *why, char *reply, size_t n)
{
	if (!why)
		why = "failed";
	if ((status == EX_NOUSER || status == EX_UNAVAILABLE) &&
	    relay_code >= 500 && relay_code < 600) {
		/* the relay's code, and its enhanced code (RFC 2034) when its
		 * reply has one, else 5.0.0 */
		char enh[16] = "5.0.0";
		for (const char *p = why; *p; p++) {
			int a, b, c, len = 0;
			if (*p == '5' && (p == why || p[-1] == ' ') &&
			    sscanf(p, "%1d.%3d.%3d%n", &a, &b, &c, &len) == 3 &&
			    (p[len] == ' ' || !p[len])) {
				snprintf(enh, sizeof(enh), "%d.%d.%d", a, b, c);
				break;
			}
		}
		snprintf(reply, n, "%d %s %s", relay_code, enh, why);
	} else if (status == EX_DATAERR || status == EX_USAGE)
		snprintf(reply, n, "554 5.6.0 %s", why);
	else if (status == EX_NOPERM || status == EX_CONFIG ||
	    status == EX_SOFTWARE)
		/* not the client's doing: it may try again later */
		snprintf(reply, n, "451 4.3.5 %s", why);
	else
		snprintf(reply, n, "451 4.3.0 %s", why);
}

/* The data hook: the transaction goes the way of a sendmail -f ... call. */
static void
bs_data(void *arg, const struct smtp_txn *t, int fd, char *reply, size_t n)
{
	struct run *r = arg;
	struct outcome o = { 0 };
	int st;

	r->opt.sender = t->sender;
	strlist_release(&r->opt.recipients);
	for (size_t i = 0; i < t->rcpts.n; i++)
		strlist_push(&r->opt.recipients, t->rcpts.v[i]);
	r->opt.extract = 0;
	r->opt.ignore_dots = 1; /* the engine ended DATA and unstuffed it */
	r->in_fd = fd;
	st = run_prepare(r);
	if (st) {
		refusal(st, 0, last_failure, reply, n);
	} else if (delivery_mode(r) == DELIVERY_DIRECT) {
		run_deliver_now(r, &o);
		if (!o.status) {
			/* the id of the log line */
			snprintf(reply, n, "250 2.0.0 Ok: queued as %s", o.id);
		} else {
			refusal(o.status, o.relay_code, o.why, reply, n);
		}
		outcome_release(&o);
	} else {
		char *id = NULL, *why = NULL;
		st = queue_now(r, &id, &why);
		if (st) {
			refusal(st, 0, why, reply, n);
		} else {
			snprintf(reply, n, "250 2.0.0 Ok: queued as %s", id);
			if (delivery_mode(r) == DELIVERY_BACKGROUND)
				deliver_in_background(r, id, 0);
		}
		free(id);
		free(why);
	}
	r->opt.sender = NULL;
	r->in_fd = 0;
	run_next_message(r);
}

int
run_smtp(struct run *r)
{
	struct smtp_stdio_opts opts = { 0 };
	struct smtp_stdio_hooks hooks = { .arg = r, .data = bs_data };
	int st = run_load(r);

	if (st)
		return st;
	opts.hostname = r->local_domain;
	opts.max_size = r->cfg.max_message_size;
	opts.idle_timeout = 300;
	quiet_failures = 1;
	st = smtp_stdio_serve(STDIN_FILENO, STDOUT_FILENO, &opts, &hooks);
	quiet_failures = 0;
	free(last_failure);
	last_failure = NULL;
	return st;
}
