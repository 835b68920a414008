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

/* Same address: local parts compared exactly, domains without case. */
static int
same_address(const char *a, const char *b)
{
	const char *da = rfc5322_domain(a), *db = rfc5322_domain(b);
	size_t la = da ? (size_t)(da - a) : strlen(a);
	size_t lb = db ? (size_t)(db - b) : strlen(b);

	if (la != lb || memcmp(a, b, la))
		return 0;
	if (!da || !db)
		return !da && !db;
	return !ascii_strcasecmp(da, db);
}

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
		if (same_address(env->rcpts.v[i], addr))
			return 0;
	strlist_push(&env->rcpts, addr);
	return 0;
}

static char *
qualify(const char *name, const struct envelope_ctx *ctx)
{
	return xasprintf("%s@%s", name, ctx->local_domain);
}

/*
 * Expand a bare local name through the aliases into out (qualified
 * addresses).  seen holds the names on the current path, to cut loops.
 */
static int
expand(const char *name, int depth, struct strlist *seen, struct strlist *out,
    const struct envelope_ctx *ctx, char **err)
{
	const struct alias *a = NULL;
	size_t before = out->n;

	if (ctx->aliases && depth < ALIAS_DEPTH_MAX)
		a = aliases_find(ctx->aliases, name);
	for (size_t i = 0; a && i < seen->n; i++)
		if (!ascii_strcasecmp(seen->v[i], name))
			a = NULL; /* an alias naming itself means itself */
	if (!a) {
		strlist_push_owned(out, qualify(name, ctx));
		return 0;
	}
	strlist_push(seen, name);
	for (size_t i = 0; i < a->targets.n; i++) {
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
		for (size_t j = 0; j < addrs.n; j++) {
			int r = 0;
			if (rfc5322_domain(addrs.v[j]))
				strlist_push(out, addrs.v[j]);
			else
				r = expand(
				    addrs.v[j], depth + 1, seen, out, ctx, err);
			if (r) {
				strlist_release(&addrs);
				return r;
			}
		}
		strlist_release(&addrs);
	}
	free(seen->v[--seen->n]);
	seen->v[seen->n] = NULL;
	if (out->n == before) {
		/* nothing a relay can take: deliver to the name itself */
		tell(ctx,
		    xasprintf("alias '%s' has no address a relay can "
		              "take; sending to %s@%s",
		        name, name, ctx->local_domain));
		strlist_push_owned(out, qualify(name, ctx));
	}
	return 0;
}

/* Resolve one parsed address to its final, qualified forms. */
static int
resolve(const char *addr, struct strlist *out, const struct envelope_ctx *ctx,
    char **err)
{
	struct strlist seen = STRLIST_INIT;
	int r;

	if (rfc5322_domain(addr)) {
		strlist_push(out, addr);
		return 0;
	}
	r = expand(addr, 0, &seen, out, ctx, err);
	strlist_release(&seen);
	return r;
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
	struct strlist out = STRLIST_INIT;
	char *addr = NULL, *perr = NULL;
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
		r = resolve(addr, &out, ctx, err);
	else
		strlist_push_owned(&out, qualify(addr, ctx));
	free(addr);
	if (r) {
		strlist_release(&out);
		return r;
	}
	if (!rfc5322_addr_is_safe(out.v[0], &why)) {
		*err = xasprintf(
		    "invalid sender '%s' in %s: %s", out.v[0], what, why);
		strlist_release(&out);
		return EX_DATAERR;
	}
	env->sender = xstrdup(out.v[0]);
	strlist_release(&out);
	return 0;
}

int
envelope_add_list(struct envelope *env, const char *list, size_t len,
    const char *what, const struct envelope_ctx *ctx, char **err)
{
	struct strlist addrs = STRLIST_INIT, final = STRLIST_INIT;
	char *perr = NULL;
	int r = 0;

	if (rfc5322_parse_list(list, len, &addrs, &perr)) {
		*err = xasprintf("%s: %s", what, perr);
		free(perr);
		return EX_DATAERR;
	}
	for (size_t i = 0; !r && i < addrs.n; i++)
		r = resolve(addrs.v[i], &final, ctx, err);
	for (size_t i = 0; !r && i < final.n; i++)
		r = add_final(env, final.v[i], what, err);
	strlist_release(&addrs);
	strlist_release(&final);
	return r;
}

int
envelope_add_headers(struct envelope *env, const struct message *m,
    const struct envelope_ctx *ctx, char **err)
{
	static const char *names[] = { "To", "Cc", "Bcc" };

	for (size_t k = 0; k < sizeof(names) / sizeof(*names); k++) {
		char what[16];

		snprintf(what, sizeof(what), "%s: header", names[k]);
		for (long i = message_find(m, names[k], 0); i >= 0;
		     i = message_find(m, names[k], (size_t)i + 1)) {
			const char *v = message_value(m, (size_t)i);
			size_t len = strlen(v);
			int r;

			/* the field's own line ending is not folding */
			while (
			    len && (v[len - 1] == '\n' || v[len - 1] == '\r'))
				len--;
			r = envelope_add_list(env, v, len, what, ctx, err);
			if (r)
				return r;
		}
	}
	return 0;
}

void
envelope_release(struct envelope *env)
{
	free(env->sender);
	env->sender = NULL;
	strlist_release(&env->rcpts);
}
