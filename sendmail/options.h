/*
 * options.h - the sendmail command line.
 *
 * Parses argv the way Sendmail 8 and Postfix do: flags first (clustered
 * "-ti", glued "-fbob" or separate "-f bob"), then recipients; "--" ends the
 * flags.  Flags a caller may pass but that mean nothing to a relay client
 * are accepted and recorded as notes, printed under -v.
 */
#ifndef MAILSHIM_OPTIONS_H
#define MAILSHIM_OPTIONS_H

#include "util.h"

enum mode {
	MODE_DELIVER,    /* -bm, the default: read a message and send it */
	MODE_SMTP,       /* -bs */
	MODE_LIST_QUEUE, /* -bp, or called as mailq */
	MODE_ALIASES,    /* -bi, or called as newaliases */
	MODE_VERIFY,     /* -bv */
	MODE_QUEUE_RUN,  /* -q */
	MODE_VERSION,    /* --version */
	MODE_HELP,       /* --help */
	MODE_CHECK,      /* --check [account]: connect, send nothing */
};

struct options {
	enum mode mode;
	int extract;               /* -t: recipients from the headers too */
	int ignore_dots;           /* -i, -oi: a lone "." does not end input */
	int verbose;               /* -v, repeatable */
	const char *sender;        /* -f / -r, as given */
	const char *fullname;      /* -F */
	const char *config;        /* -C */
	const char *body_type;     /* -B: 7BIT or 8BITMIME */
	const char *delivery;      /* -od<x>: "i", "b", "q" ... */
	const char *dsn_notify;    /* -N: NEVER, or SUCCESS,FAILURE,DELAY */
	const char *dsn_ret;       /* -R: FULL or HDRS */
	const char *dsn_envid;     /* -V: the envelope id */
	const char *queue_arg;     /* -q<...>: interval or I/R/S selector */
	const char *check_account; /* --check's account, or NULL: default */
	int no_aliases;            /* -n: do not expand aliases */
	struct strlist recipients; /* arguments after the flags */
	struct strlist notes;      /* accepted-and-ignored flags, for -v */
};

/*
 * Parse argv into o (zeroed by the caller).  The program name decides the
 * default mode (mailq, newaliases).  Returns 0, or EX_USAGE with *err set
 * to an allocated one-line message.
 */
int options_parse(int argc, char **argv, struct options *o, char **err);

void options_release(struct options *o);

#endif
