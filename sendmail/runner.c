/*
 * runner.c - queue runs and the queue listing (see runner.h).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "envelope.h"
#include "log.h"
#include "queue.h"
#include "rfc5322.h"
#include "runner.h"
#include "submit.h"

/* What a run knows of a message before it locks it. */
struct item {
	char *id;
	char *account;
};

long
runner_backoff(unsigned attempts)
{
	long s = 60;

	while (attempts-- > 1 && s < 3600)
		s *= 2;
	return s < 3600 ? s : 3600;
}

static void say(const struct runner *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
say(const struct runner *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->verbose)
		return;
	va_start(ap, fmt);
	fputs("mailshim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- which messages ----------------------------------------------------- */

static int
ends_with_ci(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);

	return k <= n && !ascii_strcasecmp(s + n - k, tail);
}

static int
contains_ci(const char *s, const char *part)
{
	size_t k = strlen(part);

	for (; *s; s++)
		if (!ascii_strncasecmp(s, part, k))
			return 1;
	return !*part;
}

/* Is e selected by -qI, -qR, -qS, and due (unless selected or forced)? */
static int
wanted(const struct runner *r, const struct qentry *e, time_t now)
{
	int chosen = 0;

	if (r->id) {
		if (strncmp(e->id, r->id, strlen(r->id)))
			return 0;
		chosen = 1;
	}
	if (r->sender) {
		if (!contains_ci(e->sender, r->sender))
			return 0;
		chosen = 1;
	}
	if (r->domain) {
		int any = 0;
		for (size_t i = 0; i < e->rcpts.n && !any; i++) {
			const char *d = rfc5322_domain(e->rcpts.v[i]);
			any = d && ends_with_ci(d, r->domain);
		}
		if (!any)
			return 0;
		chosen = 1;
	}
	return chosen || r->force || e->next_attempt <= now;
}

static int
cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c = strcmp(x->account, y->account);

	return c ? c : strcmp(x->id, y->id);
}

/* ---- failure notices ---------------------------------------------------- */

/* The original's header section, for the notice (at most 64 KiB). */
static void
copy_headers(struct qentry *e, FILE *out)
{
	char buf[4096];
	off_t at = e->msg_offset, left = e->msg_size;
	size_t total = 0;
	int nl = 0;

	while (left > 0 && total < 64UL * 1024) {
		ssize_t n = pread(e->fd, buf,
		    left < (off_t)sizeof(buf) ? (size_t)left : sizeof(buf), at);
		if (n <= 0)
			return;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' && nl)
				return; /* the empty line: the body follows */
			if (buf[i] != '\r')
				nl = buf[i] == '\n';
			fputc(buf[i], out);
		}
		at += n;
		left -= n;
		total += (size_t)n;
	}
}

/*
 * Tell the sender (or, for the null sender, the postmaster) which
 * recipients failed for good and why: a new queued message, with the null
 * sender, sent by the next run (or this one).  A notice that fails makes
 * no notice.
 */
static void
send_notice(struct runner *r, const struct account *acct, struct qentry *e,
    const struct strlist *failed)
{
	struct envelope env = { 0 };
	struct envelope_ctx ctx = { .local_domain = r->local_domain,
		.aliases = r->aliases };
	struct qentry n = { 0 };
	struct message m = { 0 };
	struct timespec start;
	char *err = NULL, *from, *what;
	FILE *f;
	int st;

	if (e->notice)
		return;
	n.fd = -1; /* not open: qentry_release must not close fd 0 */
	clock_gettime(CLOCK_MONOTONIC, &start);
	st = envelope_add_list(&env, *e->sender ? e->sender : "postmaster",
	    strlen(*e->sender ? e->sender : "postmaster"), "notice", &ctx,
	    &err);
	if (st || !env.rcpts.n) {
		fprintf(stderr, "mailshim: no failure notice for %s: %s\n",
		    e->id, err ? err : "no recipient");
		goto out;
	}
	f = tmpfile();
	if (!f)
		goto out;
	fprintf(f,
	    "From: Mail Delivery System <MAILER-DAEMON@%s>\n"
	    "To: %s\n"
	    "Subject: Undelivered Mail Returned to Sender\n"
	    "Auto-Submitted: auto-replied\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=UTF-8\n"
	    "\n"
	    "This is mailshim on %s.\n\n"
	    "Your message could not be delivered to the following "
	    "recipients:\n\n",
	    r->local_domain, env.rcpts.v[0], r->helo);
	for (size_t i = 0; i < failed->n; i++)
		fprintf(f, "  %s\n", failed->v[i]);
	fprintf(f,
	    "\nQueue id: %s\n\n"
	    "----- The header of your message follows -----\n\n",
	    e->id);
	copy_headers(e, f);
	if (fflush(f) || fseek(f, 0, SEEK_SET))
		goto close;
	st = message_read(&m, fileno(f), 1, NULL, &err);
	if (st)
		goto close;
	from = xasprintf("MAILER-DAEMON@%s", r->local_domain);
	message_complete(
	    &m, from, "Mail Delivery System", r->local_domain, &err);
	free(from);
	n.account = xstrdup(e->account);
	n.sender = xstrdup("");
	for (size_t i = 0; i < env.rcpts.n; i++)
		strlist_push(&n.rcpts, env.rcpts.v[i]);
	n.notice = 1;
	st = queue_add(r->queue_dir, &n, &m, &err);
	if (st)
		fprintf(stderr,
		    "mailshim: cannot queue the failure notice for "
		    "%s: %s\n",
		    e->id, err);
	else
		say(r, "%s: failure notice queued as %s", e->id, n.id);
	/* the notice is a message of its own: its line names the one it
	 * is about */
	what = st
	    ? xasprintf("failure notice for %s not queued: %s", e->id, err)
	    : xasprintf("failure notice for %s", e->id);
	log_write(&(struct log_entry){ .id = st ? NULL : n.id,
	    .acct = acct,
	    .from = n.sender,
	    .rcpts = &n.rcpts,
	    .mailsize = (long long)message_size(&m),
	    .fate = st ? FATE_FAILED : FATE_QUEUED,
	    .exitcode = st,
	    .elapsed_ms = log_ms_since(&start),
	    .errormsg = what });
	free(what);
	qentry_release(&n);
	message_release(&m);
close:
	fclose(f);
out:
	free(err);
	envelope_release(&env);
}

/* ---- recording what happened ------------------------------------------ */

/* The recipient's fate in this attempt, from the transport's answer. */
static enum rcpt_outcome
outcome(const struct submit_result *res, size_t i, const char **why)
{
	if (res->rcpt && i < res->nrcpt) {
		*why = res->rcpt[i].reply ? res->rcpt[i].reply : res->message;
		return res->rcpt[i].outcome;
	}
	*why = res->message;
	return res->status == SUBMIT_OK ? RCPT_DELIVERED : RCPT_TEMPFAIL;
}

/* ---- the log lines of an attempt --------------------------------------- */

/* What the log says of one recipient after an attempt. */
struct rcpt_log {
	enum fate fate;
	int status;        /* as the attempt's exit status would be */
	int code;          /* the relay's deciding reply code, or 0 */
	const char *reply; /* that reply, or NULL */
	const char *why;   /* what the queue file records, or NULL */
};

/* The status an attempt would have (run.c's table), for a recipient the
 * relay refused for good, and for one still to deliver. */
static int
permanent_status(const struct submit_result *res)
{
	/* MAIL or DATA refused; else it was the recipient's RCPT */
	return res->status == SUBMIT_REFUSED ? EX_UNAVAILABLE : EX_NOUSER;
}

static int
temporary_status(const struct submit_result *res)
{
	switch (res->status) {
	case SUBMIT_AUTH:
		return EX_NOPERM;
	case SUBMIT_CONFIG:
		return EX_CONFIG;
	case SUBMIT_IOERR:
		return EX_IOERR;
	case SUBMIT_SOFTWARE:
		return EX_SOFTWARE;
	default:
		return EX_TEMPFAIL;
	}
}

/* The relay's reply that decided recipient i: its own, else the one the
 * failure of the whole quotes (AUTH, the greeting). */
static const char *
relay_reply(const struct submit_result *res, size_t i, int *code)
{
	const char *reply;

	if (res->rcpt && i < res->nrcpt && res->rcpt[i].code) {
		*code = res->rcpt[i].code;
		return res->rcpt[i].reply;
	}
	reply = log_quoted_reply(res->message, res->code);
	*code = reply ? res->code : 0;
	return reply;
}

static int
same_text(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static int
same_line(const struct rcpt_log *a, const struct rcpt_log *b)
{
	return a->fate == b->fate && a->status == b->status &&
	    a->code == b->code && same_text(a->reply, b->reply) &&
	    same_text(a->why, b->why);
}

/*
 * The lines of one attempt at e (its recipients before the attempt, and
 * rl[] what became of each): one for each group of recipients that fared
 * alike (the same outcome, reply and reason), in the order of the first
 * recipient of each.  Most attempts are one line.
 */
static void
log_attempt(const struct account *acct, const struct qentry *e,
    const struct rcpt_log *rl, const struct timespec *start)
{
	long long ms = log_ms_since(start);
	size_t n = e->rcpts.n;
	char *done = xcalloc(n ? n : 1, 1);

	for (size_t i = 0; i < n; i++) {
		struct strlist group = STRLIST_INIT;

		if (done[i])
			continue;
		for (size_t j = i; j < n; j++)
			if (!done[j] && same_line(&rl[i], &rl[j])) {
				strlist_push(&group, e->rcpts.v[j]);
				done[j] = 1;
			}
		log_write(&(struct log_entry){ .id = e->id,
		    .acct = acct,
		    .from = e->sender,
		    .rcpts = &group,
		    .mailsize = (long long)e->msg_size,
		    .smtpstatus = rl[i].code,
		    .smtpmsg = rl[i].reply,
		    .fate = rl[i].fate,
		    .exitcode = rl[i].status,
		    .elapsed_ms = ms,
		    .errormsg = rl[i].why });
		strlist_release(&group);
	}
	free(done);
}

/*
 * Record what the attempt that began at now (start, on the monotonic
 * clock) did to the locked message e of acct: log it, and remove it, keep
 * it for later, or move it to failed/.  Returns 1 when the relay could not
 * be reached at all (the account's other messages wait).
 */
static int
record(struct runner *r, const struct account *acct, struct qentry *e,
    time_t now, const struct timespec *start, const struct submit_result *res)
{
	struct strlist left = STRLIST_INIT, now_failed = STRLIST_INIT;
	struct rcpt_log *rl = xcalloc(e->rcpts.n ? e->rcpts.n : 1, sizeof(*rl));
	char *err = NULL, *expired = NULL;
	int unreachable, st;

	/* no recipient got as far as a reply: the relay, not the message */
	unreachable = res->status != SUBMIT_OK;
	for (size_t i = 0; unreachable && i < res->nrcpt; i++)
		unreachable = res->rcpt[i].code == 0;

	for (size_t i = 0; i < e->rcpts.n; i++) {
		const char *why;

		rl[i].reply = relay_reply(res, i, &rl[i].code);
		switch (outcome(res, i, &why)) {
		case RCPT_DELIVERED:
			r->delivered++;
			rl[i].fate = FATE_SENT;
			rl[i].status = EX_OK;
			say(r, "%s: delivered to <%s>", e->id, e->rcpts.v[i]);
			break;
		case RCPT_PERMFAIL:
			r->failed++;
			rl[i].fate = FATE_BOUNCED;
			rl[i].status = permanent_status(res);
			rl[i].why = why;
			strlist_push_owned(&now_failed,
			    xasprintf("%s %s", e->rcpts.v[i], why));
			say(r, "%s: <%s> failed: %s", e->id, e->rcpts.v[i],
			    why);
			break;
		default:
			rl[i].fate = FATE_DEFERRED;
			rl[i].status = temporary_status(res);
			rl[i].why = why ? why : "temporary failure";
			strlist_push(&left, e->rcpts.v[i]);
			free(e->last_error);
			e->last_error = xstrdup(rl[i].why);
			break;
		}
	}
	e->attempts++;
	e->last_attempt = now;

	/* past its lifetime, what is left fails too */
	if (left.n && now - e->created >= r->cfg->queue_lifetime) {
		long t = r->cfg->queue_lifetime;
		/* as queue_lifetime would say it: 5d, 36h, 90m */
		char *span = t % 86400 == 0 ? xasprintf("%ldd", t / 86400)
		    : t % 3600 == 0         ? xasprintf("%ldh", t / 3600)
		                            : xasprintf("%ldm", t / 60);
		expired = xasprintf("not delivered in %s (queue_lifetime): %s",
		    span, e->last_error);
		for (size_t i = 0; i < left.n; i++)
			strlist_push_owned(&now_failed,
			    xasprintf("%s %s", left.v[i], expired));
		/* out of time: a failure notice, as for a refusal */
		for (size_t i = 0; i < e->rcpts.n; i++)
			if (rl[i].fate == FATE_DEFERRED) {
				rl[i].fate = FATE_BOUNCED;
				rl[i].why = expired;
			}
		free(span);
		r->failed += (unsigned)left.n;
		strlist_release(&left);
	}
	for (size_t i = 0; i < now_failed.n; i++)
		strlist_push(&e->failed, now_failed.v[i]);
	/* the attempt's lines first, then the notice's */
	log_attempt(acct, e, rl, start);
	if (now_failed.n)
		send_notice(r, acct, e, &now_failed);

	strlist_release(&e->rcpts);
	e->rcpts = left;
	if (e->rcpts.n) {
		r->deferred++;
		e->next_attempt = now + runner_backoff(e->attempts);
		st = queue_update(e, &err);
		say(r,
		    "%s: deferred (%zu recipients), next attempt in %lds: %s",
		    e->id, e->rcpts.n, runner_backoff(e->attempts),
		    e->last_error);
	} else if (e->failed.n) {
		st = queue_fail(e, &err);
	} else {
		st = queue_remove(e, &err);
	}
	if (st) {
		fprintf(stderr, "mailshim: %s: %s\n", e->id, err);
		free(err);
	}
	strlist_release(&now_failed);
	free(expired);
	free(rl);
	return unreachable;
}

/* ---- delivering --------------------------------------------------------- */

/*
 * A run delivers over at most queue_concurrency connections at once, each
 * driven by a thread of its own (see worker_run).  Each is a lane: one
 * session for one account, that takes the account's messages one after the
 * other over its connection.  A free lane goes to the account with messages left that
 * has the fewest lanes, so that accounts share the connections and one
 * account can use them all.  A lane takes (locks) a message only when it
 * starts it, so a runner running beside this one finds the rest free to
 * take.  With one connection at once, this is one account after the other,
 * each over one connection, in the order of their names.
 */

/* One account's due messages, in the order of their ids. */
struct group {
	struct item *items;
	size_t n;
	size_t next;                /* the first not yet taken */
	const struct account *acct; /* NULL until a lane is wanted */
	time_t now;                 /* when the account's turn came */
	unsigned lanes;             /* open now */
	int stopped;                /* take no more: the relay is down */
};

/* A session busy with one message of its account. */
struct lane {
	struct group *g;
	struct submit_session *s; /* NULL: the lane is free */
	struct qentry e;          /* the message, locked */
	struct message m;
	struct submit_result res;
	time_t started;
	struct timespec start; /* the same, for the log's elapsed_ms */
};

/* The account's next message still to deliver, opened and locked in e;
 * 0 when it has none left. */
static int
take(struct runner *r, struct group *g, struct qentry *e)
{
	char *err = NULL;

	while (g->next < g->n) {
		int st = queue_open(
		    r->queue_dir, "q", g->items[g->next++].id, e, 1, &err);

		if (st == QUEUE_BUSY)
			r->busy++;
		if (st) {
			/* untrusted since the run looked at it: not ours */
			if (st > 0 || st == QUEUE_UNTRUSTED) {
				fprintf(stderr, "mailshim: %s\n", err);
				free(err);
				err = NULL;
			}
			qentry_release(e);
			continue;
		}
		/* another runner may have delivered it since we looked */
		if (!e->rcpts.n || !wanted(r, e, g->now)) {
			qentry_release(e);
			continue;
		}
		return 1;
	}
	return 0;
}

/* The transport is done with the lane's message: record the outcome, and
 * stop the account's lanes if the relay could not be reached. */
static void
lane_record(struct runner *r, struct lane *l)
{
	struct group *g = l->g;

	message_release(&l->m);
	if (record(r, g->acct, &l->e, l->started, &l->start, &l->res) &&
	    !g->stopped) {
		/* the relay is down: the others wait their turn */
		g->stopped = 1;
		say(r,
		    "relay of account [%s] unreachable: %zu more "
		    "message(s) wait",
		    g->acct->name, g->n - g->next);
	}
	submit_result_release(&l->res);
	qentry_release(&l->e);
}

static void
lane_close(struct lane *l)
{
	submit_close(l->s);
	l->s = NULL;
	l->g->lanes--;
	l->g = NULL;
}

/*
 * Send the message the lane holds, or, when its result comes at once
 * (nothing was sent), record it and go on with the account's next one.
 * The lane is left sending, or closed when its account has nothing more.
 */
static void
lane_start(struct runner *r, struct lane *l, struct submit_multi *mm)
{
	for (;;) {
		struct qentry *e = &l->e;
		struct submit_params params = { .notify = e->notify,
			.ret = e->ret,
			.envid = e->envid,
			.body_8bit = e->body_8bit,
			/* recipients have their own fates from here on */
			.partial = 1 };

		queue_message(e, &l->m);
		l->started = time(NULL);
		clock_gettime(CLOCK_MONOTONIC, &l->start);
		if (!submit_start(
		        l->s, e->sender, &e->rcpts, &params, &l->m, &l->res)) {
			submit_multi_add(mm, l->s);
			return;
		}
		lane_record(r, l);
		if (l->g->stopped || !take(r, l->g, &l->e)) {
			lane_close(l);
			return;
		}
	}
}

/* The account that should have the next free lane: of those with
 * messages left, the one with the fewest lanes, the first of equals. */
static struct group *
next_group(struct group *gs, size_t ng)
{
	struct group *best = NULL;

	for (size_t i = 0; i < ng; i++)
		if (!gs[i].stopped && gs[i].next < gs[i].n &&
		    (!best || gs[i].lanes < best->lanes))
			best = &gs[i];
	return best;
}

/* Give the free lane l a message, of the account that should have it
 * (next_group), until it is sending or no account has messages left. */
static void
fill(struct runner *r, struct group *gs, size_t ng, struct lane *l,
    struct submit_multi *mm)
{
	struct group *g;
	char *err = NULL;

	while (!l->s && (g = next_group(gs, ng))) {
		if (!g->acct) {
			g->now = time(NULL);
			g->acct = config_account(
			    r->cfg, g->items[0].account, &err);
			if (!g->acct) {
				fprintf(stderr,
				    "mailshim: %zu queued message(s) for "
				    "account [%s] wait: %s\n",
				    g->n, g->items[0].account, err);
				free(err);
				err = NULL;
				g->stopped = 1;
				continue;
			}
		}
		if (!take(r, g, &l->e))
			continue;
		l->s = submit_open(g->acct,
		    g->acct->helo ? g->acct->helo : r->helo, r->verbose, &err);
		if (!l->s) {
			fprintf(stderr, "mailshim: %s\n", err);
			free(err);
			err = NULL;
			qentry_release(&l->e);
			g->stopped = 1;
			continue;
		}
		l->g = g;
		g->lanes++;
		lane_start(r, l, mm);
	}
}

/*
 * One lane's thread.  Each lane has a thread and a multi handle of its
 * own because libcurl waits for the reply to the end of a message's data
 * without returning (smtp_done blocks, in every version): with all lanes
 * on one multi handle, that wait held up every other connection, one
 * round trip per message.  The threads share the run (the groups, the
 * counters, the queue, the log) under run_lock, which a thread lets go
 * only while libcurl talks to its relay; libcurl's callbacks touch only
 * the lane's own session and message.
 */
struct worker {
	struct runner *r;
	struct group *gs;
	size_t ng;
	pthread_t thread;
};

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct runner *r = w->r;
	struct lane lane;
	struct submit_multi *mm;
	char *err = NULL;

	memset(&lane, 0, sizeof(lane));
	pthread_mutex_lock(&run_lock);
	mm = submit_multi_new(&err);
	if (!mm) {
		fprintf(stderr, "mailshim: %s\n", err);
		free(err);
		pthread_mutex_unlock(&run_lock);
		return NULL;
	}
	for (;;) {
		struct submit_session *s;

		fill(r, w->gs, w->ng, &lane, mm);
		if (!lane.s)
			break; /* nothing left to take */
		pthread_mutex_unlock(&run_lock);
		s = submit_multi_next(mm);
		pthread_mutex_lock(&run_lock);
		if (!s)
			break; /* cannot happen: the lane was sending */
		if (submit_finish(s, &lane.res)) {
			submit_multi_add(mm, s); /* the same message again */
			continue;
		}
		lane_record(r, &lane);
		if (lane.g->stopped || !take(r, lane.g, &lane.e))
			lane_close(&lane);
		else
			lane_start(r, &lane, mm);
	}
	pthread_mutex_unlock(&run_lock);
	submit_multi_free(mm); /* QUIT on its connections, unlocked */
	return NULL;
}

/* Every due message of every account, over up to queue_concurrency
 * connections at once: a thread for each, or this one alone. */
static void
deliver_all(struct runner *r, struct group *gs, size_t ng)
{
	size_t nlanes = r->cfg->queue_concurrency > 0
	    ? (size_t)r->cfg->queue_concurrency
	    : 1;
	size_t total = 0, started = 0;
	struct worker *ws;
	char *err = NULL;

	for (size_t i = 0; i < ng; i++)
		total += gs[i].n;
	if (nlanes > total)
		nlanes = total;
	/* libcurl's global set-up, once, before there are threads */
	if (submit_global_init(&err)) {
		fprintf(stderr, "mailshim: %s\n", err);
		free(err);
		return;
	}
	ws = xcalloc(nlanes, sizeof(*ws));
	for (size_t i = 0; i < nlanes; i++) {
		ws[i].r = r;
		ws[i].gs = gs;
		ws[i].ng = ng;
	}
	/* a thread that cannot be had is a lane less; with none, this
	 * thread is the one lane */
	for (size_t i = 1; i < nlanes; i++, started++)
		if (pthread_create(&ws[i].thread, NULL, worker_run, &ws[i]))
			break;
	worker_run(&ws[0]);
	for (size_t i = 1; i <= started; i++)
		pthread_join(ws[i].thread, NULL);
	free(ws);
}

int
runner_run(struct runner *r, char **err)
{
	struct strlist ids = STRLIST_INIT;
	struct item *items = NULL;
	struct group *groups;
	size_t n = 0, ng = 0;
	time_t now = time(NULL);
	int st;

	st = queue_check(r->queue_dir, err);
	if (!st)
		st = queue_list(r->queue_dir, "q", &ids, err);
	if (st)
		return st;
	items = xcalloc(ids.n ? ids.n : 1, sizeof(*items));
	for (size_t i = 0; i < ids.n; i++) {
		struct qentry e;
		char *perr = NULL;

		/* a look without the lock: the run takes it message by message;
		 * a damaged or untrusted file is said once and left as it is */
		st = queue_open(r->queue_dir, "q", ids.v[i], &e, 0, &perr);
		if (st > 0 || st == QUEUE_UNTRUSTED) {
			fprintf(stderr, "mailshim: %s\n", perr);
			free(perr);
		}
		if (!st && e.rcpts.n && wanted(r, &e, now)) {
			items[n].id = xstrdup(e.id);
			items[n].account = xstrdup(e.account);
			n++;
		}
		qentry_release(&e);
	}
	strlist_release(&ids);
	if (n)
		qsort(items, n, sizeof(*items), cmp_item);
	groups = xcalloc(n ? n : 1, sizeof(*groups));
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1;
		     j < n && !strcmp(items[j].account, items[i].account); j++)
			;
		groups[ng].items = items + i;
		groups[ng++].n = j - i;
	}
	if (ng)
		deliver_all(r, groups, ng);
	free(groups);
	for (size_t i = 0; i < n; i++) {
		free(items[i].id);
		free(items[i].account);
	}
	free(items);
	return 0;
}

/* ---- mailq -------------------------------------------------------------- */

int
runner_list(const char *queue_dir, FILE *out, char **err)
{
	struct strlist ids = STRLIST_INIT;
	time_t now = time(NULL);
	unsigned long long bytes = 0;
	size_t shown = 0;
	int st;

	st = queue_check(queue_dir, err);
	if (!st)
		st = queue_list(queue_dir, "q", &ids, err);
	if (st)
		return st;
	for (size_t i = 0; i < ids.n; i++) {
		struct qentry e;
		char when[32], *perr = NULL;
		struct tm tm;
		long age;

		/* as a run: a damaged or untrusted file is said, not listed */
		st = queue_open(queue_dir, "q", ids.v[i], &e, 0, &perr);
		if (st) {
			if (st > 0 || st == QUEUE_UNTRUSTED) {
				fprintf(stderr, "mailshim: %s\n", perr);
				free(perr);
			}
			qentry_release(&e);
			continue;
		}
		if (!shown++)
			fprintf(out, "%-25s %10s %-19s %8s %s\n", "-Queue ID-",
			    "-Size-", "-Arrival Time-", "-Tries-",
			    "-Sender/Recipient-");
		localtime_r(&e.created, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		age = (long)(now - e.created);
		fprintf(out, "%-25s %10lld %-19s %8u %s\n", e.id,
		    (long long)e.msg_size, when, e.attempts,
		    *e.sender ? e.sender : "<>");
		fprintf(out, "%-25s age %ldd%02ldh%02ldm%s%s\n", "",
		    age / 86400, age % 86400 / 3600, age % 3600 / 60,
		    e.last_error ? ", last error: " : "",
		    e.last_error ? e.last_error : "");
		for (size_t k = 0; k < e.rcpts.n; k++)
			fprintf(out, "%-65s %s\n", "", e.rcpts.v[k]);
		fputc('\n', out);
		bytes += (unsigned long long)e.msg_size;
		qentry_release(&e);
	}
	strlist_release(&ids);
	if (!shown)
		fputs("Mail queue is empty\n", out);
	else
		fprintf(out, "-- %llu Kbytes in %zu Request%s.\n",
		    (bytes + 1023) / 1024, shown, shown == 1 ? "" : "s");
	if (fflush(out) || ferror(out)) {
		*err = xasprintf("cannot write the listing: %s",
		    strerror(errno ? errno : EIO));
		return EX_IOERR;
	}
	return 0;
}
