/*
 * log.h - one line for each message and attempt, to syslog(3) and to a
 * file, so that an administrator can tell what became of any message.
 *
 * The line is key=value pairs, always the same keys in the same order,
 * each always present ('-' when there is nothing to say), close to
 * msmtp's log line (see LOGGING in mailshim(8) for every field):
 *
 *   id=019a7c3e5f2b.4f1c2a9e3d01 account=relay host=smtp.example.com
 *   port=587 tls=starttls auth=plain user=joe from=joe@example.com
 *   recipients=a@b.example,c@d.example mailsize=345 smtpstatus=250
 *   smtpmsg='250 2.0.0 Ok: queued as 12345' outcome=sent exitcode=EX_OK
 *   elapsed_ms=120 errormsg=-
 *
 * A value is written as it is when it is printable ASCII without spaces,
 * quotes or backslashes (and is not empty or "-"); otherwise, and always
 * for smtpmsg and errormsg, it is single-quoted, with ' and \ escaped by
 * a backslash and control characters written \xNN.  In recipients, a comma
 * inside an address is written \x2c, so the commas that are left separate
 * the addresses.  The null sender is from=<>.
 *
 * Where the line goes comes from the configuration (log_setup()): syslog,
 * with the facility of the syslog key (ident "mailshim", with the pid),
 * and the file of the logfile key.  The file gets a timestamp and
 * "mailshim[PID]: " in front, and each line is written with one write(2)
 * on a descriptor opened O_APPEND, so that the lines of processes writing
 * at once never mix.  A log that cannot be written is said once on stderr
 * and changes nothing else: the message matters more than its log.
 */
#ifndef MAILSHIM_LOG_H
#define MAILSHIM_LOG_H

#include <time.h>

#include "cfg.h"
#include "util.h"

/* What became of the message (or of some of its recipients). */
enum fate {
	FATE_SENT,     /* the relay took it */
	FATE_QUEUED,   /* it went into the queue (delivery = queue, or a
	                  direct attempt failed temporarily) */
	FATE_DEFERRED, /* a queue run's attempt failed: it stays queued */
	FATE_BOUNCED,  /* refused for good by the relay; or, in a queue run,
	                  out of queue_lifetime: a failure notice goes */
	FATE_FAILED    /* not sent and not queued, for a reason that is not
	                  the relay's verdict on the message: configuration,
	                  TLS verification, authentication, a full disk */
};

/* One line.  Pointers may be NULL where the field can be '-'. */
struct log_entry {
	const char *id;              /* the message's queue id */
	const struct account *acct;  /* account, host, port, tls, auth, user */
	const char *from;            /* envelope sender; "" is the null one */
	const struct strlist *rcpts; /* the recipients this line is about */
	long long mailsize;          /* octets as sent; -1: unknown */
	int smtpstatus;              /* the relay's deciding reply code; 0 */
	const char *smtpmsg;         /* that reply's text */
	enum fate fate;
	int exitcode;         /* the status, as mailshim exits with it */
	long long elapsed_ms; /* the attempt's duration */
	const char *errormsg; /* why not sent, as said on stderr */
};

/*
 * Take where to log from cfg: its syslog facility (or none) and its
 * logfile (or none).  The file is opened at the first line.  Again
 * later: the new settings replace the old.
 */
void log_setup(const struct config *cfg);

/* The fields of e, as the line carries them (no timestamp, no ident). */
char *log_format(const struct log_entry *e);

/*
 * Log e: to syslog at LOG_INFO (sent), LOG_NOTICE (queued, deferred) or
 * LOG_ERR (bounced, failed), and to the file.  Never fails: the first
 * error of the file goes to stderr as "mailshim: cannot write logfile
 * 'PATH': REASON", and later lines go to syslog only.
 */
void log_write(const struct log_entry *e);

/* Close the file and syslog and forget the settings: nothing more is
 * logged until the next log_setup(). */
void log_close(void);

/* The sysexits(3) name of status: "EX_OK", "EX_TEMPFAIL"...; else the
 * number. */
const char *log_exit_name(int status, char *buf, size_t n);

/* Milliseconds since *start, a CLOCK_MONOTONIC time. */
long long log_ms_since(const struct timespec *start);

/*
 * The relay's reply that a mailshim message quotes at its end, after
 * ": " (as "relay refused authentication as 'u' (AUTH PLAIN): 535 5.7.8
 * ..."): a pointer into why at the reply's code, or NULL when why quotes
 * no reply with that code.
 */
const char *log_quoted_reply(const char *why, int code);

#endif
