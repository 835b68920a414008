/*
 * cfg.h - mailshim.ini: load, validate, and choose an account.
 *
 * This is the only code that calls iniparser.  The file has one section
 * [mailshim] of global settings; every other section is an account.  Every
 * key and every value is checked: an unknown key, a bad value or a missing
 * one is an error that names the file, the line and the key, in the form
 *   /etc/mailshim.ini:12: unknown key 'hots' in [relay]
 * and config_load() returns EX_CONFIG (78).  Numbers are decimal, booleans
 * yes/no/true/false/on/off/1/0, whatever iniparser would make of them.
 */
#ifndef MAILSHIM_CFG_H
#define MAILSHIM_CFG_H

#include "util.h"

enum tls_mode { TLS_STARTTLS, TLS_IMPLICIT, TLS_NONE };
enum auth_mech { AUTH_NONE, AUTH_PLAIN, AUTH_LOGIN };
/* what the account does to the caller's sender (from_policy) */
enum from_policy {
	FROM_KEEP,     /* send it as given */
	FROM_ENVELOPE, /* MAIL FROM is the account's 'from' */
	FROM_REWRITE   /* so is From:, with a Reply-To: to the caller */
};

/* The longest secret read from a password_file or a password_command. */
#define MAX_SECRET 4096

/*
 * The outcome of an account's password_command, kept for the rest of the
 * process: it runs at most once.  Wiped and freed by config_release().
 */
struct fetched_password {
	int done;       /* it has run: password or err is set */
	char *password; /* the first line it printed */
	char *err;      /* or why it failed: one line, no secret in it */
};

struct account {
	char *name;     /* section name, lower case */
	char *provider; /* "nhncloud" or NULL */
	char *host;     /* never NULL after a successful load */
	unsigned
	    port; /* 1..65535; default 587 for starttls/none, 465 for tls */
	enum tls_mode tls; /* default TLS_STARTTLS */
	enum auth_mech
	    auth;       /* default AUTH_PLAIN with a username, else AUTH_NONE */
	char *username; /* as written, without the mail_type suffix */
	/* the secret, from password or password_file; NULL with
	 * password_command, whose secret account_password() fetches */
	char *password;
	char *password_file; /* the file password was read from, or NULL */
	/* password_command split into its words (v is NULL-terminated, an
	 * argv), or none (n == 0) */
	struct strlist password_command;
	/* what password_command printed, once it has run (see secret.h);
	 * NULL without password_command.  A pointer, so that the accounts
	 * callers hold (const) can keep it. */
	struct fetched_password *fetched;
	char *mail_type;     /* "normal", "auth", "ad" or NULL */
	char *from;          /* envelope sender, or NULL */
	char *helo;          /* EHLO name, or NULL for the host's FQDN */
	char *ca_file;       /* or NULL for the system store */
	int tls_verify;      /* default 1 */
	int tls_min_version; /* 12 (TLS 1.2, the default) or 13 */
	char *tls_pin; /* CURLOPT_PINNEDPUBLICKEY: "sha256//..." or NULL */
	/* with tls = none, send credentials anyway: default 0 */
	int allow_plaintext_auth;
	long timeout; /* seconds, default 60 */
	int line;     /* line of the section header, for messages */
	/* globs of the senders this account is for (match_from), or none */
	struct strlist match_from;
	/* default FROM_KEEP; the others only with 'from' set */
	enum from_policy from_policy;
};

enum on_tempfail { TEMPFAIL_QUEUE, TEMPFAIL_FAIL };
enum delivery { DELIVERY_DIRECT, DELIVERY_BACKGROUND, DELIVERY_QUEUE };

/* where the queue is when queue_dir is not set: configure's
 * --with-queue-dir, /var/spool/mailshim by default */
#ifndef QUEUEDIR
#define QUEUEDIR "/var/spool/mailshim"
#endif
#define QUEUE_DIR_DEFAULT QUEUEDIR

struct config {
	char *path;
	char *default_account; /* [mailshim] account, or NULL */
	char *local_domain; /* [mailshim] local_domain, or NULL for default */
	char *aliases;      /* [mailshim] aliases, or NULL for default */
	char *queue_dir;    /* [mailshim] queue_dir, or NULL for the default */
	enum on_tempfail on_tempfail; /* default TEMPFAIL_QUEUE */
	enum delivery delivery;       /* default DELIVERY_DIRECT */
	long queue_concurrency;       /* connections at once, default 4 */
	long queue_lifetime;          /* seconds, default 5 days */
	long max_message_size;        /* octets, any input; 0: no limit */
	/* where log lines go (see sendmail/log.h): the syslog(3) facility,
	 * LOG_MAIL by default, or -1 for syslog = off; and a file, by its
	 * absolute path, or NULL for none (the default) */
	int syslog_facility;
	char *logfile;
	struct account *accounts;
	size_t naccounts;
};

/*
 * Load and check the file at path into cfg (which the caller zeroes).
 * Returns 0, or EX_CONFIG with *err set to an allocated one-line message
 * (the file cannot be read: "cannot read config '/x': No such file or
 * directory").  Secrets are never quoted in messages.
 */
int config_load(const char *path, struct config *cfg, char **err);

/*
 * The account named name, or the default one when name is NULL: the one
 * [mailshim] account names, else the only account.  NULL with *err set if
 * there is no such account or no default can be chosen.
 */
const struct account *config_account(
    const struct config *cfg, const char *name, char **err);

/*
 * The account for a message whose envelope sender is sender (as sent:
 * after aliases and local_domain; "" is the null sender; NULL when the
 * caller gave none): the first account, in file order, with a match_from
 * pattern that matches sender (fnmatch(3), without case); else the default
 * account, as config_account(cfg, NULL) chooses it.  The null sender and
 * NULL match no pattern.  *pattern is the pattern that matched, or NULL
 * when the default was taken.  NULL with *err set when no account fits.
 */
const struct account *config_account_for(const struct config *cfg,
    const char *sender, const char **pattern, char **err);

/* The value of the tls key that means t: "starttls", "tls" or "none". */
const char *tls_mode_name(enum tls_mode t);

/* The value of the auth key that means m: "plain", "login" or "none". */
const char *auth_mech_name(enum auth_mech m);

/* The SASL mechanism of m as sent in AUTH: "PLAIN" or "LOGIN". */
const char *auth_mech_sasl(enum auth_mech m);

/* The SASL user name to send: username, plus "#mail_type" when set. */
char *account_sasl_user(const struct account *acct);

/* Free everything cfg holds, wiping secrets. */
void config_release(struct config *cfg);

#endif
