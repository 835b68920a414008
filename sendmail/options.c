/*
 * options.c - parse the sendmail command line (see options.h).
 *
 * A hand-written getopt: sendmail's flags mix clustering ("-ti"), glued
 * values ("-fbob", "-oi", "-odb", "-B8BITMIME") and separate values
 * ("-f bob"), and "-o" and "-b" take a glued letter that is part of the flag
 * itself.  getopt(3) would permute arguments on glibc and print its own
 * messages; this keeps the behaviour identical everywhere.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "options.h"

static int usage_error(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
usage_error(char **err, const char *fmt, ...)
{
	va_list ap;

	struct buf b = BUF_INIT;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	/* the message quotes what the caller gave: keep it on one line */
	buf_init(&b);
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			buf_addf(&b, "\\x%02x", *p);
		else
			buf_addch(&b, *p);
	free(msg);
	*err = buf_detach(&b);
	return EX_USAGE;
}

static void
note(struct options *o, const char *flag, const char *val, const char *why)
{
	strlist_push_owned(&o->notes,
	    xasprintf("%s%s%s: %s", flag, val ? " " : "", val ? val : "", why));
}

/* -b<mode> */
static int
set_mode(struct options *o, const char *v, char **err)
{
	if (!strcmp(v, "m"))
		o->mode = MODE_DELIVER;
	else if (!strcmp(v, "s"))
		o->mode = MODE_SMTP;
	else if (!strcmp(v, "p") || !strcmp(v, "P"))
		o->mode = MODE_LIST_QUEUE;
	else if (!strcmp(v, "i"))
		o->mode = MODE_ALIASES;
	else if (!strcmp(v, "v"))
		o->mode = MODE_VERIFY;
	else if (!strcmp(v, "d") || !strcmp(v, "D") || !strcmp(v, "l"))
		return usage_error(err,
		    "-b%s is not supported: mailshim "
		    "sends mail to a relay and runs no daemon",
		    v);
	else if (!strcmp(v, "t") || !strcmp(v, "h") || !strcmp(v, "H") ||
	    !strcmp(v, "a"))
		return usage_error(err,
		    "-b%s is not supported: mailshim has no "
		    "address test mode, host status or ARPANET mode",
		    v);
	else
		return usage_error(err, "unknown mode '-b%s'", v);
	return 0;
}

/* -N: NEVER, or a list of SUCCESS, FAILURE and DELAY (RFC 3461) */
static int
valid_notify(const char *v)
{
	const char *p = v;

	if (!ascii_strcasecmp(v, "NEVER"))
		return 1;
	while (*p) {
		size_t n = strcspn(p, ",");
		if (!((n == 7 && !ascii_strncasecmp(p, "SUCCESS", 7)) ||
		        (n == 7 && !ascii_strncasecmp(p, "FAILURE", 7)) ||
		        (n == 5 && !ascii_strncasecmp(p, "DELAY", 5))))
			return 0;
		p += n;
		if (*p == ',' && *++p == '\0')
			return 0;
	}
	return p != v;
}

/* -V: printable ASCII, at most 100 characters (RFC 3461 4.4) */
static int
valid_envid(const char *v)
{
	size_t n = 0;

	for (; v[n]; n++)
		if ((unsigned char)v[n] < 0x21 || (unsigned char)v[n] > 0x7e)
			return 0;
	return n > 0 && n <= 100;
}

/* -o<option>[value]: the sendmail.cf options callers pass on the command line */
static int
set_o(struct options *o, const char *v)
{
	if (!strcmp(v, "i"))
		o->ignore_dots = 1;
	else if (v[0] == 'd' && v[1])
		o->delivery = v + 1;
	else {
		/* named as callers write it: -oem, not -o em */
		char *flag = xasprintf("-o%s", v);
		note(o, flag, NULL, "ignored");
		free(flag);
	}
	return 0;
}

/* --check [account] */
static int
set_check(struct options *o, const char *name, char **err)
{
	if (name && !*name)
		return usage_error(
		    err, "%s", "--check: the account name is empty");
	/* it is printed in the report: one line, and no section has them */
	for (const char *p = name; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return usage_error(
			    err, "--check: no account can be named '%s'", name);
	if (o->mode == MODE_CHECK &&
	    (name && o->check_account ? strcmp(name, o->check_account) != 0
	                              : name != o->check_account))
		return usage_error(err,
		    "--check given twice, for '%s' and '%s'",
		    o->check_account ? o->check_account : "(default)",
		    name ? name : "(default)");
	o->mode = MODE_CHECK;
	o->check_account = name;
	return 0;
}

/* Is a flag letter one that takes a value (glued or in the next argument)? */
static int
takes_value(int c)
{
	return strchr("fFrCBNRVXDhLpAOo", c) != NULL;
}

static int
apply(struct options *o, int c, const char *v, char **err)
{
	char flag[3] = { '-', (char)c, '\0' };

	switch (c) {
	case 'f':
	case 'r':
		if (o->sender && strcmp(o->sender, v))
			return usage_error(err,
			    "more than one sender given "
			    "(-f/-r '%s')",
			    v);
		o->sender = v;
		break;
	case 'F':
		o->fullname = v;
		break;
	case 'C':
		o->config = v;
		break;
	case 'B':
		if (ascii_strcasecmp(v, "8BITMIME") &&
		    ascii_strcasecmp(v, "7BIT"))
			return usage_error(err,
			    "-B takes 7BIT or 8BITMIME, "
			    "not '%s'",
			    v);
		o->body_type = v;
		break;
	case 'o':
		return set_o(o, v);
	case 'N':
		if (!valid_notify(v))
			return usage_error(err,
			    "-N takes NEVER or a list of "
			    "SUCCESS, FAILURE and DELAY, not '%s'",
			    v);
		o->dsn_notify = v;
		break;
	case 'R':
		if (ascii_strcasecmp(v, "FULL") && ascii_strcasecmp(v, "HDRS"))
			return usage_error(
			    err, "-R takes FULL or HDRS, not '%s'", v);
		o->dsn_ret = v;
		break;
	case 'V':
		if (!valid_envid(v))
			return usage_error(err,
			    "-V takes an envelope id of 1 to 100 "
			    "printable characters");
		o->dsn_envid = v;
		break;
	case 'X':
	case 'D':
		/* never a file: -X was the vehicle of CVE-2016-10033 */
		note(o, flag, v, "ignored, no log file is written");
		break;
	default:
		note(o, flag, v, "ignored");
		break;
	}
	return 0;
}

int
options_parse(int argc, char **argv, struct options *o, char **err)
{
	const char *prog = argc > 0 && argv[0] ? argv[0] : "sendmail";
	const char *base = strrchr(prog, '/');
	int i, r;

	base = base ? base + 1 : prog;
	if (!strcmp(base, "mailq"))
		o->mode = MODE_LIST_QUEUE;
	else if (!strcmp(base, "newaliases"))
		o->mode = MODE_ALIASES;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "--version")) {
			o->mode = MODE_VERSION;
			continue;
		}
		if (!strcmp(a, "--help")) {
			o->mode = MODE_HELP;
			continue;
		}
		if (!strcmp(a, "--check") || !strncmp(a, "--check=", 8)) {
			/* the account: glued, or the next argument unless
			 * that is a flag */
			const char *name = a[7] == '='              ? a + 8
			    : i + 1 < argc && argv[i + 1][0] != '-' ? argv[++i]
			                                            : NULL;
			r = set_check(o, name, err);
			if (r)
				return r;
			continue;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (a[1] == '-')
			return usage_error(err, "unknown option '%s'", a);

		for (const char *p = a + 1; *p; p++) {
			int c = (unsigned char)*p;
			const char *v;

			if (c == 'b') {
				if (!p[1])
					return usage_error(err, "%s",
					    "-b needs a mode letter, e.g. -bm");
				r = set_mode(o, p + 1, err);
				if (r)
					return r;
				break;
			}
			if (c == 'q' || c == 'd' || c == 'M' || c == 'e') {
				/* value only ever glued: -q30m, -qIid, -d0.1 */
				if (c == 'q') {
					o->mode = MODE_QUEUE_RUN;
					o->queue_arg = p + 1;
				} else
					note(o, (char[]){ '-', (char)c, 0 },
					    p + 1, "ignored");
				break;
			}
			if (takes_value(c)) {
				if (p[1])
					v = p + 1;
				else if (i + 1 < argc)
					v = argv[++i];
				else
					return usage_error(err,
					    "option -%s needs a value",
					    (char[]){ (char)c, 0 });
				r = apply(o, c, v, err);
				if (r)
					return r;
				break;
			}
			switch (c) {
			case 't':
				o->extract = 1;
				break;
			case 'i':
				o->ignore_dots = 1;
				break;
			case 'v':
				o->verbose++;
				break;
			case 'n':
				o->no_aliases = 1;
				break;
			case 'I':
				/* Postfix: initialise the alias database */
				o->mode = MODE_ALIASES;
				break;
			case 'G':
			case 'U':
			case 'm':
				note(o, (char[]){ '-', (char)c, 0 }, NULL,
				    "ignored");
				break;
			default:
				return usage_error(err, "unknown option '-%s'",
				    (char[]){ (char)c, 0 });
			}
		}
	}
	if (o->mode == MODE_CHECK && i < argc)
		return usage_error(err,
		    "--check takes one account name, not also '%s'", argv[i]);
	for (; i < argc; i++)
		strlist_push(&o->recipients, argv[i]);
	return 0;
}

void
options_release(struct options *o)
{
	strlist_release(&o->recipients);
	strlist_release(&o->notes);
}
