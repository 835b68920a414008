/*
 * main.c - mailshim, a sendmail for hosts that send mail through a relay.
 *
 * Dispatch only: make the standard descriptors safe, harden the process
 * (privilege.c), parse the command line, and hand over to the run (run.c,
 * or check.c for --check) the mode asks for.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sysexits.h>

#include "check.h"
#include "options.h"
#include "privilege.h"
#include "run.h"
#include "version.h"

static const char usage_text[] =
    "usage: sendmail [-t] [-i] [-f sender] [-F name] [-C config] [-v] "
    "[--] [recipient ...]\n"
    "       mailq | newaliases | sendmail --version\n"
    "       sendmail [-C config] [-v] --check [account]\n"
    "Reads a message on standard input and sends it through the relay "
    "configured in\nmailshim.ini; see mailshim(8).\n";

/*
 * Callers (cron, mail clients) may start us with 0, 1 or 2 closed.  Were
 * the spool or the relay's socket to get one of those numbers, an error
 * message would be written into it.
 */
static void
open_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0) {
			int n = open("/dev/null", fd ? O_WRONLY : O_RDONLY);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
}

int
main(int argc, char **argv)
{
	struct run r = { 0 };
	char *err = NULL;
	int st;

	open_std_fds();
	privilege_harden();
	signal(SIGPIPE, SIG_IGN);
	/* a file size limit makes writes fail (EFBIG: queue later), not kill */
	signal(SIGXFSZ, SIG_IGN);

	st = options_parse(argc, argv, &r.opt, &err);
	if (st) {
		run_fail(st, err);
		fputs(usage_text, stderr);
		run_release(&r);
		return st;
	}
	/* before any file is read */
	if ((st = privilege_user_config(r.opt.config, &err))) {
		run_fail(st, err);
		run_release(&r);
		return st;
	}
	switch (r.opt.mode) {
	case MODE_VERSION:
		version_print(stdout);
		st = 0;
		break;
	case MODE_HELP:
		fputs(usage_text, stdout);
		st = 0;
		break;
	case MODE_SMTP:
		st = run_smtp(&r);
		break;
	case MODE_LIST_QUEUE:
		st = run_list_queue(&r);
		break;
	case MODE_QUEUE_RUN:
		st = run_queue(&r);
		break;
	case MODE_ALIASES:
		st = run_check_aliases(&r);
		break;
	case MODE_CHECK:
		st = check_run(&r);
		break;
	case MODE_VERIFY:
	case MODE_DELIVER:
		st = run_deliver(&r);
		break;
	}
	run_release(&r);
	return st;
}
