/*
 * envelope.h - who the message is from and who it goes to.
 *
 * Sources, in order: the sender from -f/-r, else the account's 'from', else
 * the user's login name; recipients from the command line and, with -t,
 * from To:, Cc: and Bcc: (or from the most recent Resent- block).  A bare local name ("root") goes through the
 * aliases file, recursively, then gets the local domain.  The result is a
 * list of unique, validated addresses, safe to hand to SMTP.
 *
 * Both the list and the work of building it are bounded, whatever the
 * command line, the headers or the aliases file hold: at most
 * ENVELOPE_RCPT_MAX recipients (after aliases and duplicates), and at most
 * ENVELOPE_ALIAS_MAX addresses out of the aliases (duplicates included),
 * so that aliases that name each other many times over cannot make the
 * expansion run for ever.
 */
#ifndef MAILSHIM_ENVELOPE_H
#define MAILSHIM_ENVELOPE_H

#include "aliases.h"
#include "message.h"
#include "util.h"

/* Recipients of one message, on every path (also -bs's RCPT limit). */
#define ENVELOPE_RCPT_MAX 1000
/* Addresses the aliases may give for one message, duplicates included. */
#define ENVELOPE_ALIAS_MAX 10000 /* 10 x ENVELOPE_RCPT_MAX */

struct envelope {
	char *sender; /* "" is the null sender */
	struct strlist rcpts;
	int resent;         /* -t read the recipients from a Resent- block */
	size_t alias_addrs; /* addresses the aliases gave so far */
};

struct envelope_ctx {
	const char *local_domain;      /* appended to bare names */
	const struct aliases *aliases; /* or NULL */
	const char *default_sender;    /* the account's 'from', or NULL */
	const char *user;              /* login name, the last resort sender */
	struct strlist *notes;         /* what -v should tell; may be NULL */
};

/*
 * Set env->sender from given (-f/-r, or NULL) and ctx: the first address
 * its aliases give.  Returns 0, or EX_DATAERR with *err set for an address
 * that cannot be used.
 */
int envelope_set_sender(struct envelope *env, const char *given,
    const struct envelope_ctx *ctx, char **err);

/*
 * Add the recipients in an address list (a command-line argument or a
 * header field body of len bytes); what names the source in messages.
 * Returns 0; EX_DATAERR with *err set for an address that cannot be used;
 * EX_USAGE with *err set ("too many recipients: ...") when the envelope
 * would hold more than ENVELOPE_RCPT_MAX recipients, or the aliases give
 * more than ENVELOPE_ALIAS_MAX addresses.  env is then incomplete: do not
 * send it.
 */
int envelope_add_list(struct envelope *env, const char *list, size_t len,
    const char *what, const struct envelope_ctx *ctx, char **err);

/*
 * Add the recipients of every To:, Cc: and Bcc: header of m; or, when m
 * carries Resent- fields (it is being resent, RFC 5322 3.6.6), those of
 * the Resent-To:, Resent-Cc: and Resent-Bcc: fields of the most recent
 * Resent- block: the first run of consecutive Resent- fields, as each
 * resend puts its block on top.  A block that names no recipients (only
 * Resent-From:, Resent-Date:...) leaves To:, Cc: and Bcc: in charge.
 * Sets env->resent when the block was used.  Returns as
 * envelope_add_list() does, but EX_DATAERR for too many recipients too:
 * the message is at fault.
 */
int envelope_add_headers(struct envelope *env, const struct message *m,
    const struct envelope_ctx *ctx, char **err);

/*
 * from_policy = envelope or rewrite: the account's 'from' (ctx->
 * default_sender, qualified as when the caller gives no -f) becomes the
 * sender, and *forced (allocated) holds it for the From: header.  The
 * null sender stays null: a bounce is sent with none so that a failure to
 * deliver it cannot bounce back, and loop.  Returns 0, or EX_DATAERR with
 * *err set.
 */
int envelope_force_sender(struct envelope *env, const struct envelope_ctx *ctx,
    char **forced, char **err);

/*
 * The address of the first mailbox of m's first From: field in *addr
 * (allocated), a bare name qualified with the local domain (not aliased:
 * it is what the caller wrote); NULL when m has no From: or it names no
 * mailbox.  Returns 0, or EX_DATAERR with *err set when it does not parse.
 */
int envelope_from_header(const struct message *m,
    const struct envelope_ctx *ctx, char **addr, char **err);

/* Free what env holds and make it empty, ready for another message. */
void envelope_release(struct envelope *env);

#endif
