/*
 * submit.h - hand messages to the relay through libcurl's SMTP backend.
 *
 * The only code that talks to libcurl.  A session holds one connection to
 * one account's relay: open it, send any number of messages, close it.  The
 * transport never parses headers: it streams what message_out() produces.
 *
 * What libcurl does not do, this does (see shared/LIBCURL-SMTP.md): refuse
 * to go on when authentication is required but the relay does not offer the
 * configured mechanism (libcurl would silently skip AUTH), classify every
 * failure by the relay's own reply (collected from the dialogue, since
 * libcurl keeps no reply text), and hide credentials from -v output.
 */
#ifndef MAILSHIM_SUBMIT_H
#define MAILSHIM_SUBMIT_H

#include "cfg.h"
#include "message.h"
#include "util.h"

enum submit_status {
	SUBMIT_OK = 0,
	SUBMIT_TEMPFAIL, /* try later: connection, timeout, any 4xx */
	SUBMIT_AUTH,     /* the relay refused the credentials (5xx) */
	SUBMIT_RCPT,     /* the relay refused a recipient (5xx) */
	SUBMIT_REFUSED,  /* any other 5xx */
	SUBMIT_CONFIG,   /* TLS not verified, STARTTLS or AUTH missing */
	SUBMIT_IOERR,    /* the spool could not be read */
	SUBMIT_SOFTWARE, /* libcurl could not be set up */
};

struct submit_result {
	enum submit_status status;
	int code;      /* the relay's failure reply code, or 0 */
	char *message; /* one line, allocated; NULL on success */
};

struct submit_session;

/*
 * Prepare a session for acct (which must outlive it).  helo is the EHLO
 * name; verbose > 0 prints the dialogue, credentials hidden, on stderr.
 * NULL with *err set if libcurl cannot be initialised.
 */
struct submit_session *submit_open(
    const struct account *acct, const char *helo, int verbose, char **err);

/*
 * Send one message: envelope sender ("" for <>), recipients (at least one),
 * and the message itself.  Fills res; release it with submit_result_release.
 */
void submit_send(struct submit_session *s, const char *sender,
    const struct strlist *rcpts, struct message *m, struct submit_result *res);

void submit_close(struct submit_session *s);
void submit_result_release(struct submit_result *res);

/* "libcurl/8.x.y OpenSSL/3.0.z", for --version */
const char *submit_library_version(void);

#endif
