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
 * libcurl keeps no reply text), tell what became of each recipient (libcurl
 * does not say which were refused), and hide credentials from -v output.
 *
 * ESMTP parameters (DSN's NOTIFY, RET and ENVID, and BODY=8BITMIME) go to
 * the relay only when the libcurl in use can send them (8.16.0 and later;
 * before, the text would land inside the address's angle brackets) and the
 * relay offers the extension; otherwise they are left out, and -v says so.
 * What the relay offers is known only once it has answered EHLO: a
 * parameter it does not offer stops that attempt right after EHLO, before
 * AUTH and MAIL, and the message goes at once over a new connection
 * without it.  The session remembers what the relay offers, so the next
 * messages pay nothing.
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

/* The exit status (sysexits.h) mailshim gives each outcome. */
int submit_exit_status(enum submit_status st);

/* What became of one recipient. */
enum rcpt_outcome {
	RCPT_DELIVERED, /* the relay took the message for it */
	RCPT_TEMPFAIL,  /* not delivered: try again later */
	RCPT_PERMFAIL,  /* refused for good (5xx): do not try again */
};

/*
 * The outcome of one recipient, and the relay's reply that decided it:
 *   - its RCPT refused: 5xx PERMFAIL, 4xx TEMPFAIL, with that reply;
 *   - MAIL refused: the same, with the reply to MAIL, for every recipient;
 *   - its RCPT accepted (2xx): the reply to DATA when that refused the
 *     message, else the reply after the final dot: 2xx DELIVERED, 5xx
 *     PERMFAIL, anything else TEMPFAIL;
 *   - no reply decided it (connection lost or timed out, TLS, AUTH or
 *     configuration failure, a transaction abandoned at another
 *     recipient's refusal without partial, or a RCPT never sent):
 *     TEMPFAIL, code 0, and the result's message as reply.
 * DELIVERED is never said of a recipient whose RCPT was not seen accepted.
 */
struct submit_rcpt {
	enum rcpt_outcome outcome;
	int code;    /* the reply code that decided it, or 0 */
	char *reply; /* that reply ("550 5.1.1 ..."), or why there was none:
	                one printable line, allocated, never NULL */
};

/*
 * status, code and message say what happened to the message as a whole.
 * Without partial, SUBMIT_OK means every recipient has it; anything else,
 * that none has (libcurl ends the transaction at the first refusal), bar
 * a connection that failed after the relay took it, which rcpt[] tells.
 * With partial, SUBMIT_OK means the relay took the message for at least
 * one recipient (code 0, message NULL, even if others were refused: see
 * rcpt[]); anything else means it took it for none, and says why as
 * without partial: the first failure other than a refused RCPT (AUTH,
 * MAIL, DATA, the connection...) or, when the relay refused every
 * recipient, the first refusal (SUBMIT_RCPT or SUBMIT_TEMPFAIL).
 *
 * rcpt[] always has one entry per recipient passed, in their order
 * (nrcpt == rcpts->n), whatever the status, also with partial unset.
 */
struct submit_result {
	enum submit_status status;
	int code;      /* the relay's failure reply code, or 0 */
	char *message; /* one line, allocated; NULL on success */
	size_t nrcpt;
	struct submit_rcpt *rcpt;
};

struct submit_session;

/*
 * The ESMTP parameters a caller asked for (sendmail's -N, -R, -V, -B);
 * NULL or 0 for none.  notify and ret must have been checked by options.c
 * (letters and commas only; sent in upper case); envid is any printable
 * ASCII (sent xtext-encoded, RFC 3461 4).  body_8bit asks for
 * BODY=8BITMIME.  A value that is not what these say makes submit_send()
 * fail with SUBMIT_SOFTWARE: nothing unchecked reaches the relay.
 *
 * partial (for queue runs) sends the message to the recipients the relay
 * accepts even when it refuses others (libcurl's
 * CURLOPT_MAIL_RCPT_ALLOWFAILS); without it (direct delivery) the first
 * refused recipient ends the transaction and nobody gets the message.
 */
struct submit_params {
	const char *notify; /* NOTIFY= on every RCPT: NEVER, SUCCESS,FAILURE */
	const char *ret;    /* RET= on MAIL: FULL or HDRS */
	const char *envid;  /* ENVID= on MAIL */
	int body_8bit;      /* BODY=8BITMIME on MAIL */
	int partial;        /* go on past refused recipients */
};

/*
 * Prepare a session for acct (which must outlive it).  helo is the EHLO
 * name; verbose > 0 prints the dialogue, credentials hidden, on stderr.
 * NULL with *err set if libcurl cannot be initialised, or the account's
 * password_command fails (it runs here, once per process and account).
 */
struct submit_session *submit_open(
    const struct account *acct, const char *helo, int verbose, char **err);

/*
 * Send one message: envelope sender ("" for <>), recipients (at least one),
 * the ESMTP parameters asked for (params may be NULL: none) and the
 * message itself.  Fills res (overall and per recipient, see struct
 * submit_result); release it with submit_result_release.  Parameters left
 * out (see above) are not an error.
 */
void submit_send(struct submit_session *s, const char *sender,
    const struct strlist *rcpts, const struct submit_params *params,
    struct message *m, struct submit_result *res);

/*
 * The same in steps, for callers that drive several sessions at once
 * (queue runs).  submit_start() takes what submit_send() takes and makes
 * the session ready to send; it returns 0, or -1 when res is final
 * already (nothing to send: a bad parameter, say).  Then the transfer
 * runs in a submit_multi (below), and submit_finish() reads how it went:
 * 1 when the same message must go again at once (a fresh connection
 * after a stale one, or without the parameters the relay turned out not
 * to offer: add the session to the multi again), 0 when res is final.
 * What start was given must live until then.
 */
int submit_start(struct submit_session *s, const char *sender,
    const struct strlist *rcpts, const struct submit_params *params,
    struct message *m, struct submit_result *res);
int submit_finish(struct submit_session *s, struct submit_result *res);

/* Close the session and its connection (QUIT); NULL is fine.  A session
 * still in a submit_multi leaves it first. */
void submit_close(struct submit_session *s);

/*
 * Several sessions' transfers at once, over libcurl's multi interface, in
 * this one thread.  Each session keeps its own connection: sessions never
 * take over each other's, even when they are for one account.
 *
 *	if (!submit_start(s, sender, rcpts, params, m, &res))
 *		submit_multi_add(mm, s);
 *	... other sessions ...
 *	while ((s = submit_multi_next(mm)))
 *		if (submit_finish(s, &res))
 *			submit_multi_add(mm, s);
 *		else
 *			... res (that of s) is final ...
 *
 * submit_multi_new() returns NULL with *err set if libcurl cannot be set
 * up.  submit_multi_add() starts the transfer submit_start() or
 * submit_finish() prepared.  submit_multi_next() runs the transfers until
 * one ends and returns its session, in the order they end; NULL when none
 * is under way.  submit_multi_free() leaves the sessions open.
 *
 * One caution: libcurl waits for the reply to a message's end of data
 * without returning (smtp_done blocks), so sessions on one submit_multi
 * wait for each other's last reply.  The queue runner gives each
 * connection a thread and a submit_multi of its own.
 */
struct submit_multi;

/* libcurl's global set-up (curl_global_init), once per process; the other
 * functions do it when needed, but a program with threads must call it
 * before it starts them.  -1 with *err set when it fails. */
int submit_global_init(char **err);

struct submit_multi *submit_multi_new(char **err);
void submit_multi_add(struct submit_multi *mm, struct submit_session *s);
struct submit_session *submit_multi_next(struct submit_multi *mm);
void submit_multi_free(struct submit_multi *mm);

/*
 * mailshim --check: connect to an account's relay exactly as a send does
 * (the same TLS, verification, pin, EHLO name, AUTH and timeouts) but send
 * no mail: greeting, EHLO, STARTTLS, EHLO, AUTH, then QUIT.  What each step
 * showed is kept for the report; every string is one printable line,
 * allocated, or NULL when the step was not reached.
 */
enum check_failure {
	CHECK_PASSED,
	CHECK_RESOLVE, /* the host name does not resolve */
	CHECK_CONNECT, /* no TCP connection: refused, unreachable */
	CHECK_TIMEOUT, /* no answer in time */
	CHECK_TLS,     /* the TLS handshake failed */
	CHECK_VERIFY,  /* the certificate was not verified */
	CHECK_PIN,     /* its public key is not the one tls_pin names */
	CHECK_CA_FILE, /* ca_file cannot be loaded */
	/* tls = starttls, and the relay does not offer it */
	CHECK_NO_STARTTLS,
	/* the relay does not offer our AUTH mechanism */
	CHECK_NO_AUTH,
	/* it refused the credentials (any final reply to AUTH) */
	CHECK_AUTH_REFUSED,
	CHECK_REPLY, /* another refusal: the greeting, EHLO... */
	CHECK_OTHER, /* libcurl could not be set up, and the rest */
};

struct submit_check {
	enum check_failure failure;
	enum submit_status status; /* as a send would classify the failure */
	char *message;             /* the failure as a send would print it */

	int connected;   /* a TCP connection was made */
	char *address;   /* the address connected to, when libcurl says */
	long connect_ms; /* how long that took, or -1: not known */
	char *banner;    /* the greeting, its lines joined by spaces */
	char *ehlo;      /* the capabilities of the last EHLO answered */
	char *ehlo_auth; /* its AUTH mechanisms ("LOGIN PLAIN"), NULL: none */
	int starttls;    /* it offers STARTTLS */
	int auth_before_tls; /* an EHLO before STARTTLS offered AUTH */
	char *tls_version;   /* "TLSv1.3", once the handshake is done */
	char *tls_cipher;    /* "TLS_AES_256_GCM_SHA384" */
	/* the relay's certificate, when libcurl showed it (some versions do
	 * not when verification fails) */
	char *cert_subject; /* "CN=localhost" */
	char *cert_issuer;
	char *cert_expires; /* "2027-11-22 12:00:00 GMT" */
	char *cert_pin;     /* "sha256//<base64>", as tls_pin takes it */
	char *cert_names;   /* the names it is for: "wrong.example, 10.0.0.1" */
	int cert_name_ok;   /* it is for the account's host: 1, 0, -1 unknown */
	int cert_expired;   /* it has expired, or is not valid yet */
	long verify_result; /* OpenSSL's verification result, 0: none */
	char *verify_error; /* what that result means */
	int auth_code;      /* the relay's final reply to AUTH, or 0 */
	char *auth_reply;
};

/*
 * Run the check for acct with helo as EHLO name; verbose > 0 prints the
 * dialogue on stderr, credentials hidden, as a send does.  Fills c (which
 * the caller zeroes and frees with submit_check_release()) and returns
 * c->status: SUBMIT_OK when every step passed.
 */
enum submit_status submit_check(const struct account *acct, const char *helo,
    int verbose, struct submit_check *c);

void submit_check_release(struct submit_check *c);

/* Free what res holds (message and rcpt[]), leaving it empty. */
void submit_result_release(struct submit_result *res);

/* "libcurl/8.x.y OpenSSL/3.0.z", for --version */
const char *submit_library_version(void);

/* OpenSSL_version() of the libcrypto loaded, with the version built
 * against when they differ: "OpenSSL 3.0.22 ... (built with OpenSSL ...)";
 * or why it cannot be loaded. */
const char *submit_crypto_version(void);

/*
 * Can the libcurl in use send ESMTP parameters?  For --version: "yes
 * (libcurl 8.21.0)" or "no (needs libcurl 8.16, this is 7.88.1)".
 */
const char *submit_params_support(void);

/*
 * Who keeps CR, LF and other control characters out of envelope
 * addresses, for --version: mailshim always does (envelope.c), because no
 * libcurl up to 8.21 refuses them in MAIL_FROM/MAIL_RCPT.
 */
const char *submit_crlf_check(void);

#endif
