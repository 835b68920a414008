/*
 * t-options.c - the sendmail command line, table-driven: each row is an
 * argv and a summary of what options_parse() made of it (or its error).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "options.h"
#include "tap.h"

#define MAXARGS 12

struct row {
	const char *argv[MAXARGS];
	const char *want; /* summary, or "error: <message>" */
};

static const char *modes[] = { "deliver", "smtp", "listq", "aliases", "verify",
	"qrun", "version", "help", "check" };

static char *
summary(const struct options *o)
{
	struct buf b = BUF_INIT;

	buf_addf(&b,
	    "%s t=%d i=%d v=%d f=%s F=%s C=%s B=%s od=%s rcpt=", modes[o->mode],
	    o->extract, o->ignore_dots, o->verbose, o->sender ? o->sender : "-",
	    o->fullname ? o->fullname : "-", o->config ? o->config : "-",
	    o->body_type ? o->body_type : "-", o->delivery ? o->delivery : "-");
	for (size_t i = 0; i < o->recipients.n; i++)
		buf_addf(&b, "%s%s", i ? "," : "", o->recipients.v[i]);
	buf_addf(&b, " notes=%zu", o->notes.n);
	/* the rarer fields only when set, to keep the rows short */
	if (o->dsn_notify)
		buf_addf(&b, " N=%s", o->dsn_notify);
	if (o->dsn_ret)
		buf_addf(&b, " R=%s", o->dsn_ret);
	if (o->dsn_envid)
		buf_addf(&b, " V=%s", o->dsn_envid);
	if (o->queue_arg)
		buf_addf(&b, " q=%s", o->queue_arg);
	if (o->no_aliases)
		buf_addstr(&b, " n");
	if (o->check_account)
		buf_addf(&b, " check=%s", o->check_account);
	return buf_detach(&b);
}

static const struct row rows[] = {
	/* the callers of shared/CALLERS.md */
	{ { "sendmail", "-t", "-i" },
	    "deliver t=1 i=1 v=0 f=- F=- C=- B=- od=- rcpt= notes=0" },
	{ { "sendmail", "-t", "-i", "-fwww@shop.example" },
	    "deliver t=1 i=1 v=0 f=www@shop.example F=- C=- B=- od=- rcpt= "
	    "notes=0" },
	{ { "sendmail", "-oi", "-t", "-f", "bob@x" },
	    "deliver t=1 i=1 v=0 f=bob@x F=- C=- B=- od=- rcpt= notes=0" },
	{ { "/usr/sbin/sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem",
	      "root" },
	    "deliver t=0 i=1 v=0 f=- F=CronDaemon C=- B=8BITMIME od=- "
	    "rcpt=root notes=1" },
	{ { "sendmail", "-FAnacron", "-odi", "root" },
	    "deliver t=0 i=0 v=0 f=- F=Anacron C=- B=- od=i rcpt=root "
	    "notes=0" },
	{ { "sendmail", "-i", "-B", "8BITMIME", "root" },
	    "deliver t=0 i=1 v=0 f=- F=- C=- B=8BITMIME od=- rcpt=root "
	    "notes=0" },
	{ { "sendmail", "-f", "me@x", "-i", "a@x", "b@y", "c@z" },
	    "deliver t=0 i=1 v=0 f=me@x F=- C=- B=- od=- rcpt=a@x,b@y,c@z "
	    "notes=0" },
	{ { "sendmail", "-oi", "-f", "root@host", "-t" },
	    "deliver t=1 i=1 v=0 f=root@host F=- C=- B=- od=- rcpt= notes=0" },
	{ { "sendmail", "-i", "-F", "Full Name", "-f", "a@x", "--", "-dash@x" },
	    "deliver t=0 i=1 v=0 f=a@x F=Full Name C=- B=- od=- rcpt=-dash@x "
	    "notes=0" },
	{ { "sendmail", "-oem", "-oi", "-N", "success,failure", "-R", "hdrs",
	      "--", "to@x" },
	    "deliver t=0 i=1 v=0 f=- F=- C=- B=- od=- rcpt=to@x notes=1 "
	    "N=success,failure R=hdrs" },
	{ { "sendmail", "-f", "fail2ban", "root" },
	    "deliver t=0 i=0 v=0 f=fail2ban F=- C=- B=- od=- rcpt=root "
	    "notes=0" },
	{ { "sendmail", "-t", "-fmdadm@host" },
	    "deliver t=1 i=0 v=0 f=mdadm@host F=- C=- B=- od=- rcpt= notes=0" },
	{ { "sendmail", "a@x,b@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=a@x,b@y notes=0" },
	/* clustering, glued and separate, repetition */
	{ { "sendmail", "-ti", "-v", "-v" },
	    "deliver t=1 i=1 v=2 f=- F=- C=- B=- od=- rcpt= notes=0" },
	{ { "sendmail", "-tif", "a@x", "r@y" },
	    "deliver t=1 i=1 v=0 f=a@x F=- C=- B=- od=- rcpt=r@y notes=0" },
	{ { "sendmail", "-ra@x", "-C/etc/m.ini", "-t", "-t" },
	    "deliver t=1 i=0 v=0 f=a@x F=- C=/etc/m.ini B=- od=- rcpt= "
	    "notes=0" },
	{ { "sendmail", "-C", "/x.ini", "-f", "a@x", "-f", "a@x" },
	    "deliver t=0 i=0 v=0 f=a@x F=- C=/x.ini B=- od=- rcpt= notes=0" },
	{ { "sendmail", "-X", "/tmp/log", "-t" },
	    "deliver t=1 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=1" },
	{ { "sendmail", "-o", "i", "x@y" },
	    "deliver t=0 i=1 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=0" },
	{ { "sendmail", "-bm", "-odb", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=b rcpt=x@y notes=0" },
	{ { "sendmail", "-B", "7bit", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=7bit od=- rcpt=x@y notes=0" },
	/* recipients end the flags; "-" alone is a recipient */
	{ { "sendmail", "x@y", "-t" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y,-t notes=0" },
	/* modes */
	{ { "sendmail", "-bs" },
	    "smtp t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0" },
	{ { "sendmail", "-bp" },
	    "listq t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0" },
	{ { "mailq" }, "listq t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0" },
	{ { "/usr/bin/newaliases" },
	    "aliases t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0" },
	{ { "sendmail", "-bv", "root" },
	    "verify t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=root notes=0" },
	{ { "sendmail", "-q30m" },
	    "qrun t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0 q=30m" },
	{ { "sendmail", "--version" },
	    "version t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0" },
	/* --check [account]: the account as the next argument unless that
	 * is a flag, or glued with '=' */
	{ { "sendmail", "--check" },
	    "check t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0" },
	{ { "sendmail", "--check", "relay" },
	    "check t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0 "
	    "check=relay" },
	{ { "sendmail", "-C", "/x.ini", "--check", "relay", "-v" },
	    "check t=0 i=0 v=1 f=- F=- C=/x.ini B=- od=- rcpt= notes=0 "
	    "check=relay" },
	{ { "sendmail", "--check", "-v", "-C/x.ini" },
	    "check t=0 i=0 v=1 f=- F=- C=/x.ini B=- od=- rcpt= notes=0" },
	{ { "sendmail", "-v", "--check=relay" },
	    "check t=0 i=0 v=1 f=- F=- C=- B=- od=- rcpt= notes=0 "
	    "check=relay" },
	{ { "sendmail", "--check", "relay", "--check=relay" },
	    "check t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0 "
	    "check=relay" },
	/* every flag of Sendmail 8's and Postfix's sendmail(1), glued and
	 * separate: honoured ones show in the summary, ignored ones as notes */
	{ { "sendmail", "-Am", "-A", "c", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=2" },
	{ { "sendmail", "-G", "-U", "-m", "-n", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=3 n" },
	{ { "sendmail", "-GUmn", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=3 n" },
	{ { "sendmail", "-h", "17", "-h17", "-L", "tag", "-Ltag", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=4" },
	{ { "sendmail", "-O", "DeliveryMode=b", "-OLogLevel=9", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=2" },
	{ { "sendmail", "-p", "ESMTP:host", "-pSMTP", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=2" },
	{ { "sendmail", "-eq", "-Mrfoo", "-d0.1", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=3" },
	{ { "sendmail", "-X", "/tmp/x.log", "-X/tmp/y.log", "-D", "/tmp/d",
	      "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=3" },
	{ { "sendmail", "-XV", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=1" },
	{ { "sendmail", "-NSUCCESS,DELAY", "-RFULL", "-Venv-1", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=0 "
	    "N=SUCCESS,DELAY R=FULL V=env-1" },
	{ { "sendmail", "-N", "never", "-R", "full", "-V", "abc", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=0 "
	    "N=never R=full V=abc" },
	{ { "sendmail", "-oA/etc/aliases", "-o7", "-o8", "-om", "-oee", "-oep",
	      "-oeq", "-oew", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt=x@y notes=8" },
	{ { "sendmail", "-odq", "-odb", "x@y" },
	    "deliver t=0 i=0 v=0 f=- F=- C=- B=- od=b rcpt=x@y notes=0" },
	{ { "sendmail", "-I" },
	    "aliases t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0" },
	{ { "sendmail", "-bi" },
	    "aliases t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0" },
	{ { "sendmail", "-bP" },
	    "listq t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0" },
	{ { "sendmail", "-q" },
	    "qrun t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0 q=" },
	{ { "sendmail", "-qIabc123" },
	    "qrun t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0 q=Iabc123" },
	{ { "sendmail", "-qRexample.com" },
	    "qrun t=0 i=0 v=0 f=- F=- C=- B=- od=- rcpt= notes=0 "
	    "q=Rexample.com" },
	{ { "sendmail", "-qS@shop.example", "-v" },
	    "qrun t=0 i=0 v=1 f=- F=- C=- B=- od=- rcpt= notes=0 "
	    "q=S@shop.example" },
	{ { "sendmail", "-bm", "-i", "-i", "-oi", "-t", "-v", "-f", "a@x",
	      "-fa@x", "x@y" },
	    "deliver t=1 i=1 v=1 f=a@x F=- C=- B=- od=- rcpt=x@y notes=0" },
	/* errors */
	{ { "sendmail", "-f" }, "error: option -f needs a value" },
	{ { "sendmail", "-t", "-F" }, "error: option -F needs a value" },
	{ { "sendmail", "-k" }, "error: unknown option '-k'" },
	{ { "sendmail", "--frobnicate" },
	    "error: unknown option '--frobnicate'" },
	{ { "sendmail", "-bd" },
	    "error: -bd is not supported: mailshim sends "
	    "mail to a relay and runs no daemon" },
	{ { "sendmail", "-bz" }, "error: unknown mode '-bz'" },
	{ { "sendmail", "-b" }, "error: -b needs a mode letter, e.g. -bm" },
	{ { "sendmail", "-B", "9BIT" },
	    "error: -B takes 7BIT or 8BITMIME, not '9BIT'" },
	{ { "sendmail", "-N", "sometimes", "x@y" },
	    "error: -N takes NEVER or a list of SUCCESS, FAILURE and DELAY, "
	    "not 'sometimes'" },
	{ { "sendmail", "-NSUCCESS,", "x@y" },
	    "error: -N takes NEVER or a list of SUCCESS, FAILURE and DELAY, "
	    "not 'SUCCESS,'" },
	{ { "sendmail", "-R", "HDRS\r\nRCPT TO:<e@vil>", "x@y" },
	    "error: -R takes FULL or HDRS, not 'HDRS\\x0d\\x0aRCPT "
	    "TO:<e@vil>'" },
	{ { "sendmail", "-\x01" }, "error: unknown option '-\\x01'" },
	{ { "sendmail", "-R", "BODY", "x@y" },
	    "error: -R takes FULL or HDRS, not 'BODY'" },
	{ { "sendmail", "-V", "a b", "x@y" },
	    "error: -V takes an envelope id of 1 to 100 printable characters" },
	{ { "sendmail", "-bt" },
	    "error: -bt is not supported: mailshim has no address test mode, "
	    "host status or ARPANET mode" },
	{ { "sendmail", "-bD" },
	    "error: -bD is not supported: mailshim sends mail to a relay and "
	    "runs no daemon" },
	{ { "sendmail", "-bl" },
	    "error: -bl is not supported: mailshim sends mail to a relay and "
	    "runs no daemon" },
	{ { "sendmail", "-bh" },
	    "error: -bh is not supported: mailshim has no address test mode, "
	    "host status or ARPANET mode" },
	{ { "sendmail", "-bH" },
	    "error: -bH is not supported: mailshim has no address test mode, "
	    "host status or ARPANET mode" },
	{ { "sendmail", "-f", "a@x", "-r", "b@y" },
	    "error: more than one sender given (-f/-r 'b@y')" },
	{ { "sendmail", "--check", "a", "b" },
	    "error: --check takes one account name, not also 'b'" },
	{ { "sendmail", "--check", "--", "a" },
	    "error: --check takes one account name, not also 'a'" },
	{ { "sendmail", "--check=" },
	    "error: --check: the account name is empty" },
	{ { "sendmail", "--check", "" },
	    "error: --check: the account name is empty" },
	{ { "sendmail", "--check", "a", "--check", "b" },
	    "error: --check given twice, for 'a' and 'b'" },
	{ { "sendmail", "--check", "--check", "b" },
	    "error: --check given twice, for '(default)' and 'b'" },
	{ { "sendmail", "--checks" }, "error: unknown option '--checks'" },
	{ { "sendmail", "--check=a\nb" },
	    "error: --check: no account can be named 'a\\x0ab'" },
};

int
main(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		struct options o = { 0 };
		char *err = NULL, *got, name[300];
		int argc = 0, st;

		while (argc < MAXARGS && rows[i].argv[argc])
			argc++;
		snprintf(name, sizeof(name), "row %zu: %s %s %s", i,
		    rows[i].argv[0], argc > 1 ? rows[i].argv[1] : "",
		    argc > 2 ? rows[i].argv[2] : "");
		st = options_parse(argc, (char **)rows[i].argv, &o, &err);
		if (st) {
			got = xasprintf("error: %s", err);
			is_int(st, EX_USAGE, "usage errors are EX_USAGE");
		} else {
			got = summary(&o);
		}
		is_str(got, rows[i].want, name);
		free(got);
		free(err);
		options_release(&o);
	}
	return done_testing();
}
