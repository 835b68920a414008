/*
 * envelope.c - build the envelope (see envelope.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "envelope.h"
#include "rfc5322.h"

/* Aliases may point at aliases; stop well before a loop could hurt. */
#define ALIAS_DEPTH_MAX 16

static void
tell(const struct envelope_ctx *ctx, char *msg)
{
	if (ctx->notes)
		strlist_push_owned(ctx->notes, msg);
	else
		free(msg);
}

/* resolve() got the one address it wanted (the sender's) */
#define RESOLVED_ENOUGH (-1)

static int
add_final(struct envelope *env, const char *addr, const char *what, char **err)
{
	const char *why;

	if (!rfc5322_addr_is_safe(addr, &why)) {
		*err = xasprintf(
		    "invalid recipient '%s' in %s: %s", addr, what, why);
		return EX_DATAERR;
	}
	for (size_t i = 0; i < env->rcpts.n; i++)
		if (rfc5322_same_address(env->rcpts.v[i], addr))
			return 0;
	if (env->rcpts.n >= ENVELOPE_RCPT_MAX) {
		*err = xasprintf(
		    "too many recipients: more than %d", ENVELOPE_RCPT_MAX);
		return EX_USAGE;
	}
	strlist_push(&env->rcpts, addr);
	return 0;
}

static char *
qualify(const char *name, const struct envelope_ctx *ctx)
{
	return xasprintf("%s@%s", name, ctx->local_domain);
}

/*
 * One address on its way to its final, qualified forms.  Each goes
 * straight into the envelope, so that no list longer than the envelope
 * may hold is ever built; or, for the sender, only the first is wanted.
 */
struct resolution {
	struct envelope *env;
	const struct envelope_ctx *ctx;
	const char *top;     /* the address resolved, for messages */
	const char *what;    /* where it came from, for messages */
	char **first;        /* the sender's: the first address; else NULL */
	size_t given;        /* final addresses produced so far */
	struct strlist seen; /* the aliases on the current path, to cut loops */
};

/* A final address: 0, RESOLVED_ENOUGH, or an exit status with *err set. */
static int
give(struct resolution *x, const char *addr, char **err)
{
	x->given++;
	if (x->first) {
		*x->first = xstrdup(addr);
		return RESOLVED_ENOUGH;
	}
	return add_final(x->env, addr, x->what, err);
}

static int
give_qualified(struct resolution *x, const char *name, char **err)
{
	char *addr = qualify(name, x->ctx);
	int r = give(x, addr, err);

	free(addr);
	return r;
}

static int expand(
    struct resolution *x, const char *name, int depth, char **err);

/* The targets of alias a (named name), one after another. */
static int
expand_targets(struct resolution *x, const struct alias *a, const char *name,
    int depth, char **err)
{
	const struct envelope_ctx *ctx = x->ctx;
	int r = 0;

	for (size_t i = 0; !r && i < a->targets.n; i++) {
		const char *t = a->targets.v[i];
		struct strlist addrs = STRLIST_INIT;
		char *perr = NULL;

		if (alias_target_is_local_only(t)) {
			tell(ctx,
			    xasprintf("alias '%s': target '%s' needs "
			              "local delivery, ignored",
			        name, t));
			continue;
		}
		if (rfc5322_parse_list(t, strlen(t), &addrs, &perr)) {
			*err = xasprintf("%s:%d: alias '%s': %s",
			    ctx->aliases->path, a->line, name, perr);
			free(perr);
			strlist_release(&addrs);
			return EX_DATAERR;
		}
		for (size_t j = 0; !r && j < addrs.n; j++) {
			/* a fan-out of aliases naming aliases many times
			 * over: the duplicates would go, but not the time
			 * spent making them */
			if (++x->env->alias_addrs > ENVELOPE_ALIAS_MAX) {
				*err = xasprintf("too many recipients: "
				                 "aliases expand '%s' to more "
				                 "than %d addresses",
				    x->top, ENVELOPE_ALIAS_MAX);
				r = EX_USAGE;
			} else if (rfc5322_domain(addrs.v[j]))
				r = give(x, addrs.v[j], err);
			else
				r = expand(x, addrs.v[j], depth + 1, err);
		}
		strlist_release(&addrs);
	}
	return r;
}

/* A bare local name, through the aliases. */
static int
expand(struct resolution *x, const char *name, int depth, char **err)
{
	const struct envelope_ctx *ctx = x->ctx;
	const struct alias *a = NULL;
	size_t before = x->given;
	int r;

	if (ctx->aliases && depth < ALIAS_DEPTH_MAX)
		a = aliases_find(ctx->aliases, name);
	for (size_t i = 0; a && i < x->seen.n; i++)
		if (!ascii_strcasecmp(x->seen.v[i], name))
			a = NULL; /* an alias naming itself means itself */
	if (!a)
		return give_qualified(x, name, err);
	strlist_push(&x->seen, name);
	r = expand_targets(x, a, name, depth, err);
	free(x->seen.v[--x->seen.n]);
	x->seen.v[x->seen.n] = NULL;
	if (r || x->given > before)
		return r;
	/* nothing a relay can take: deliver to the name itself */
	tell(ctx,
	    xasprintf("alias '%s' has no address a relay can "
	              "take; sending to %s@%s",
	        name, name, ctx->local_domain));
	return give_qualified(x, name, err);
}

/*
 * Resolve one parsed address into env's recipients (what names its
 * source) or, when first is not NULL, into *first (allocated): the first
 * address it stands for.
 */
static int
resolve(struct envelope *env, const char *addr, const char *what, char **first,
    const struct envelope_ctx *ctx, char **err)
{
	struct resolution x = {
		.env = env,
		.ctx = ctx,
		.top = addr,
		.what = what,
		.first = first,
	};
	int r;

	if (rfc5322_domain(addr))
		r = give(&x, addr, err);
	else
		r = expand(&x, addr, 0, err);
	strlist_release(&x.seen);
	return r == RESOLVED_ENOUGH ? 0 : r;
}

int
envelope_set_sender(struct envelope *env, const char *given,
    const struct envelope_ctx *ctx, char **err)
{
	const char *what = given  ? "-f"
	    : ctx->default_sender ? "'from'"
	                          : "the user name";
	const char *src = given   ? given
	    : ctx->default_sender ? ctx->default_sender
	                          : ctx->user;
	char *addr = NULL, *perr = NULL, *first = NULL;
	const char *why;
	int r;

	if (rfc5322_parse_mailbox(src, &addr, &perr)) {
		*err = xasprintf("invalid sender in %s: %s", what, perr);
		free(perr);
		return EX_DATAERR;
	}
	free(env->sender);
	env->sender = NULL;
	if (!*addr) {
		env->sender = addr; /* the null sender, <> */
		return 0;
	}
	/* only -f goes through the aliases (a caller naming "root" means
	 * root's address); the default sender is just qualified */
	r = 0;
	if (given || rfc5322_domain(addr))
		r = resolve(env, addr, what, &first, ctx, err);
	else
		first = qualify(addr, ctx);
	free(addr);
	if (r) {
		free(first);
		return r;
	}
	if (!rfc5322_addr_is_safe(first, &why)) {
		*err = xasprintf(
		    "invalid sender '%s' in %s: %s", first, what, why);
		free(first);
		return EX_DATAERR;
	}
	env->sender = first;
	return 0;
}

int
envelope_add_list(struct envelope *env, const char *list, size_t len,
    const char *what, const struct envelope_ctx *ctx, char **err)
{
	struct strlist addrs = STRLIST_INIT;
	char *perr = NULL;
	int r = 0;

	if (rfc5322_parse_list(list, len, &addrs, &perr)) {
		*err = xasprintf("%s: %s", what, perr);
		free(perr);
		return EX_DATAERR;
	}
	for (size_t i = 0; !r && i < addrs.n; i++)
		r = resolve(env, addrs.v[i], what, NULL, ctx, err);
	strlist_release(&addrs);
	return r;
}

/* The body of header i, without the line ending that ends the field. */
static const char *
field_body(const struct message *m, size_t i, size_t *len)
{
	const char *v = message_value(m, i);
	size_t n = strlen(v);

	/* the field's own line ending is not folding */
	while (n && (v[n - 1] == '\n' || v[n - 1] == '\r'))
		n--;
	*len = n;
	return v;
}

static int
is_resent(const struct message *m, size_t i)
{
	return m->h[i].name_len > 7 &&
	    !ascii_strncasecmp(m->h[i].field, "Resent-", 7);
}

/*
 * The most recent Resent- block, as header indices [*begin, *end): each
 * resend prepends its block, so it is the first run of consecutive
 * Resent- fields (trace fields such as Received: may come before it, and
 * any other field ends it).  Returns 0 if m has no Resent- field.
 */
static int
resent_block(const struct message *m, size_t *begin, size_t *end)
{
	size_t i = 0;

	while (i < m->nh && !is_resent(m, i))
		i++;
	if (i == m->nh)
		return 0;
	*begin = i;
	while (i < m->nh && is_resent(m, i))
		i++;
	*end = i;
	return 1;
}

/* Does one of names[0..n) occur among the headers [begin, end)? */
static int
has_any(const struct message *m, const char *const *names, size_t n,
    size_t begin, size_t end)
{
	for (size_t k = 0; k < n; k++) {
		long i = message_find(m, names[k], begin);
		if (i >= 0 && (size_t)i < end)
			return 1;
	}
	return 0;
}

int
envelope_add_headers(struct envelope *env, const struct message *m,
    const struct envelope_ctx *ctx, char **err)
{
	static const char *const plain[] = { "To", "Cc", "Bcc" };
	static const char *const resent[] = { "Resent-To", "Resent-Cc",
		"Resent-Bcc" };
	const size_t n = sizeof(plain) / sizeof(*plain);
	const char *const *names = plain;
	size_t begin = 0, end = 0;

	if (resent_block(m, &begin, &end)) {
		if (has_any(m, resent, n, begin, end)) {
			names = resent;
			env->resent = 1;
			tell(ctx,
			    xstrdup("-t: recipients from the most recent "
			            "Resent- block, not from To:, Cc:, Bcc:"));
		} else {
			/* only Resent-From:, -Date:...: nothing to go by */
			tell(ctx,
			    xstrdup("-t: the most recent Resent- block names "
			            "no recipients: using To:, Cc: and Bcc:"));
		}
	}
	if (names == plain) {
		begin = 0;
		end = m->nh;
	}
	for (size_t k = 0; k < n; k++) {
		char what[32];

		snprintf(what, sizeof(what), "%s: header", names[k]);
		for (long i = message_find(m, names[k], begin);
		     i >= 0 && (size_t)i < end;
		     i = message_find(m, names[k], (size_t)i + 1)) {
			size_t len;
			const char *v = field_body(m, (size_t)i, &len);
			int r = envelope_add_list(env, v, len, what, ctx, err);

			/* too many: the message's fault, not the caller's */
			if (r)
				return r == EX_USAGE ? EX_DATAERR : r;
		}
	}
	return 0;
}

int
envelope_force_sender(struct envelope *env, const struct envelope_ctx *ctx,
    char **forced, char **err)
{
	struct envelope acct = { 0 };
	int r;

	/* without -f, envelope_set_sender() takes ctx->default_sender */
	r = envelope_set_sender(&acct, NULL, ctx, err);
	if (r)
		return r;
	if (*env->sender) {
		free(env->sender);
		env->sender = xstrdup(acct.sender);
	}
	*forced = acct.sender;
	return 0;
}

int
envelope_from_header(const struct message *m, const struct envelope_ctx *ctx,
    char **addr, char **err)
{
	struct strlist addrs = STRLIST_INIT;
	long i = message_find(m, "From", 0);
	const char *v;
	char *perr = NULL;
	size_t len;

	*addr = NULL;
	if (i < 0)
		return 0;
	v = field_body(m, (size_t)i, &len);
	if (rfc5322_parse_list(v, len, &addrs, &perr)) {
		*err = xasprintf("From: header: %s", perr);
		free(perr);
		return EX_DATAERR;
	}
	if (addrs.n)
		*addr = rfc5322_domain(addrs.v[0]) ? xstrdup(addrs.v[0])
		                                   : qualify(addrs.v[0], ctx);
	strlist_release(&addrs);
	return 0;
}

void
envelope_release(struct envelope *env)
{
	free(env->sender);
	strlist_release(&env->rcpts);
	memset(env, 0, sizeof(*env));
}
