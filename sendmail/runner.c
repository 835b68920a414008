/*
 * runner.c - queue runs and the queue listing (see runner.h).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "envelope.h"
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

	while (left > 0 && total < 64 * 1024) {
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
send_notice(struct runner *r, struct qentry *e, const struct strlist *failed)
{
	struct envelope env = { 0 };
	struct envelope_ctx ctx = { .local_domain = r->local_domain,
		.aliases = r->aliases };
	struct qentry n = { 0 };
	struct message m = { 0 };
	char *err = NULL, *from;
	FILE *f;
	int st;

	if (e->notice)
		return;
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
	qentry_release(&n);
	message_release(&m);
close:
	fclose(f);
out:
	free(err);
	envelope_release(&env);
}

/* ---- delivering --------------------------------------------------------- */

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

/*
 * Deliver the locked message e over s, then record what happened: remove
 * it, keep it for later, or move it to failed/.  Returns 1 when the relay
 * could not be reached at all (the account's other messages wait).
 */
static int
deliver(struct runner *r, struct submit_session *s, struct qentry *e)
{
	struct submit_params params = { .notify = e->notify,
		.ret = e->ret,
		.envid = e->envid,
		.body_8bit = e->body_8bit,
		/* recipients have their own fates from here on */
		.partial = 1 };
	struct strlist left = STRLIST_INIT, now_failed = STRLIST_INIT;
	struct submit_result res;
	struct message m;
	time_t now = time(NULL);
	char *err = NULL;
	int unreachable, st;

	queue_message(e, &m);
	submit_send(s, e->sender, &e->rcpts, &params, &m, &res);
	message_release(&m);
	/* no recipient got as far as a reply: the relay, not the message */
	unreachable = res.status != SUBMIT_OK;
	for (size_t i = 0; unreachable && i < res.nrcpt; i++)
		unreachable = res.rcpt[i].code == 0;

	for (size_t i = 0; i < e->rcpts.n; i++) {
		const char *why;
		switch (outcome(&res, i, &why)) {
		case RCPT_DELIVERED:
			r->delivered++;
			say(r, "%s: delivered to <%s>", e->id, e->rcpts.v[i]);
			break;
		case RCPT_PERMFAIL:
			r->failed++;
			strlist_push_owned(&now_failed,
			    xasprintf("%s %s", e->rcpts.v[i], why));
			say(r, "%s: <%s> failed: %s", e->id, e->rcpts.v[i],
			    why);
			break;
		default:
			strlist_push(&left, e->rcpts.v[i]);
			free(e->last_error);
			e->last_error = xstrdup(
			    why ? why : "temporary failure");
			break;
		}
	}
	e->attempts++;
	e->last_attempt = now;

	/* past its lifetime, what is left fails too */
	if (left.n && now - e->created >= r->cfg->queue_lifetime) {
		for (size_t i = 0; i < left.n; i++)
			strlist_push_owned(&now_failed,
			    xasprintf("%s not delivered in %ld days: %s",
			        left.v[i], r->cfg->queue_lifetime / 86400,
			        e->last_error));
		r->failed += (unsigned)left.n;
		strlist_release(&left);
	}
	for (size_t i = 0; i < now_failed.n; i++)
		strlist_push(&e->failed, now_failed.v[i]);
	if (now_failed.n)
		send_notice(r, e, &now_failed);

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
	submit_result_release(&res);
	return unreachable;
}

/* Every due message of one account, over one connection. */
static void
run_account(struct runner *r, struct item *items, size_t n)
{
	const struct account *acct;
	struct submit_session *s = NULL;
	char *err = NULL;
	time_t now = time(NULL);

	acct = config_account(r->cfg, items[0].account, &err);
	if (!acct) {
		fprintf(stderr,
		    "mailshim: %zu queued message(s) for account "
		    "[%s] wait: %s\n",
		    n, items[0].account, err);
		free(err);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct qentry e;
		int st = queue_open(
		    r->queue_dir, "q", items[i].id, &e, 1, &err);

		if (st == QUEUE_BUSY)
			r->busy++;
		if (st) {
			if (st > 0) {
				fprintf(stderr, "mailshim: %s\n", err);
				free(err);
				err = NULL;
			}
			qentry_release(&e);
			continue;
		}
		/* another runner may have delivered it since we looked */
		if (!e.rcpts.n || !wanted(r, &e, now)) {
			qentry_release(&e);
			continue;
		}
		if (!s) {
			s = submit_open(acct, acct->helo ? acct->helo : r->helo,
			    r->verbose, &err);
			if (!s) {
				fprintf(stderr, "mailshim: %s\n", err);
				free(err);
				qentry_release(&e);
				return;
			}
		}
		if (deliver(r, s, &e)) {
			/* the relay is down: the others wait their turn */
			say(r,
			    "relay of account [%s] unreachable: %zu more "
			    "message(s) wait",
			    acct->name, n - i - 1);
			qentry_release(&e);
			break;
		}
		qentry_release(&e);
	}
	submit_close(s);
}

int
runner_run(struct runner *r, char **err)
{
	struct strlist ids = STRLIST_INIT;
	struct item *items = NULL;
	size_t n = 0;
	time_t now = time(NULL);
	int st;

	st = queue_list(r->queue_dir, "q", &ids, err);
	if (st)
		return st;
	items = xcalloc(ids.n ? ids.n : 1, sizeof(*items));
	for (size_t i = 0; i < ids.n; i++) {
		struct qentry e;
		char *perr = NULL;

		/* a look without the lock: the run takes it message by message */
		st = queue_open(r->queue_dir, "q", ids.v[i], &e, 0, &perr);
		if (st > 0) {
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
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1;
		     j < n && !strcmp(items[j].account, items[i].account); j++)
			;
		run_account(r, items + i, j - i);
	}
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

	st = queue_list(queue_dir, "q", &ids, err);
	if (st)
		return st;
	for (size_t i = 0; i < ids.n; i++) {
		struct qentry e;
		char when[32], *perr = NULL;
		struct tm tm;
		long age;

		st = queue_open(queue_dir, "q", ids.v[i], &e, 0, &perr);
		if (st) {
			if (st > 0) {
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
	return fflush(out) ? EX_IOERR : 0;
}
