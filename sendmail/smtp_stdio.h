/*
 * smtp_stdio.h - the SMTP server behind "sendmail -bs": RFC 5321 on two
 * file descriptors for one local client (Symfony Mailer, Laravel, Swift
 * Mailer), with PIPELINING, 8BITMIME, SIZE, ENHANCEDSTATUSCODES and
 * SMTPUTF8.
 *
 * The engine knows nothing of relays, configuration or the queue: it
 * checks syntax and sequence itself and asks its caller, through hooks,
 * about each sender, each recipient and each finished message.  The hooks
 * decide every reply that matters to delivery, so the reply to the final
 * "." is whatever the data hook says and nothing else.
 */
#ifndef MAILSHIM_SMTP_STDIO_H
#define MAILSHIM_SMTP_STDIO_H

#include <stddef.h>

#include "util.h"

struct smtp_stdio_opts {
	const char
	    *hostname; /* in the greeting and EHLO reply; NULL: "localhost" */
	long max_size; /* SIZE offered and enforced (octets); 0 = none */
	int idle_timeout; /* seconds waiting for input or output; 0 = none */
};

/*
 * One mail transaction, as the hooks see it.  Everything is owned by the
 * engine and lives until the transaction ends; a hook that wants to keep
 * something copies it.
 */
struct smtp_txn {
	const char *helo; /* the client's HELO/EHLO argument, or NULL */
	int esmtp;        /* the client said EHLO */
	char *sender;     /* from MAIL FROM: "" for <>; NULL in the mail hook */
	struct strlist
	    rcpts;       /* accepted RCPT TO addresses, in order, no repeats */
	int body_8bit;   /* BODY=8BITMIME */
	int smtputf8;    /* SMTPUTF8 */
	long size_param; /* SIZE= value (LONG_MAX if huge), or -1 */
};

/*
 * Replies from hooks: one line such as "553 5.1.7 bad sender", or several
 * separated by "\n" (a relay's multi-line reply may be passed as it came,
 * "550-5.1.1 a\n550 5.1.1 b").  The engine sends them as a well-formed
 * reply: control characters become '?', long lines are cut.  A reply
 * whose code is missing or of the wrong class (a 2xx refusal, an empty
 * reply) goes out as "451 4.3.0 Error: internal error", so a hook's slip
 * can neither claim a message accepted nor refuse it for good.
 */
struct smtp_stdio_hooks {
	void *arg;
	/*
	 * Check the sender addr of MAIL FROM (t holds its parameters; the
	 * sender is not set yet): return 0 to accept, else non-zero with a
	 * 4xx/5xx reply in reply.  NULL accepts every sender.
	 */
	int (*mail)(void *arg, const struct smtp_txn *t, const char *addr,
	    char *reply, size_t n);
	/* The same for each new recipient; t->rcpts holds those accepted. */
	int (*rcpt)(void *arg, const struct smtp_txn *t, const char *addr,
	    char *reply, size_t n);
	/*
	 * The message is complete: fd is an unlinked file, positioned at 0,
	 * holding it dot-unstuffed with CRLF line endings.  Take it (deliver
	 * or queue; dup() fd to keep it, the engine closes its own) and fill
	 * reply with the final reply: "250 2.0.0 Ok: queued as X" only when
	 * the message is delivered or durably queued, else a 4xx or 5xx.
	 */
	void (*data)(
	    void *arg, const struct smtp_txn *t, int fd, char *reply, size_t n);
	/*
	 * A transaction whose sender the mail hook accepted ended without
	 * reaching the data hook: RSET, HELO/EHLO, a message too big or not
	 * stored, QUIT, end of input.  For a caller that opened something
	 * (a relay transaction) at MAIL or RCPT time.  May be NULL.
	 */
	void (*reset)(void *arg);
};

/*
 * Serve one SMTP session: read commands from in, write replies to out,
 * until QUIT or the end of input.  Neither fd is closed.  SIGPIPE must be
 * ignored (a client that stops reading ends the session).  Returns
 *   0            after QUIT, or at the end of input with no transaction
 *                open (every message the client was told "250" about
 *                has been through the data hook);
 *   EX_PROTOCOL  input ended with a transaction open (after MAIL, or
 *                inside DATA: that message was not passed on), or the
 *                client made 100 protocol errors in a row (421 sent);
 *   EX_TEMPFAIL  the idle timeout (421 sent if possible);
 *   EX_IOERR     reading in or writing out failed (EPIPE: the client
 *                stopped reading).
 */
int smtp_stdio_serve(int in, int out, const struct smtp_stdio_opts *o,
    const struct smtp_stdio_hooks *h);

#endif
