/*
 * submit-driver.c - send one message through submit.c and print what
 * became of each recipient, for compat-tests/e2e/t-partial.py (no mailshim
 * command uses partial delivery yet: the queue runner will).
 *
 *   submit-driver [-d] [-R] [-n count] config sender rcpt...
 *
 * The message is read from standard input as mailshim reads it (line
 * endings normalised, no lone-dot rule), or with -R taken as it is, as a
 * queue file holds it, and sent from the middle of a temporary file
 * (message_init_raw()).  It goes with partial set, or without it (-d, as
 * direct delivery sends), count times (default 1) over one session.
 * After each send, stdout gets one line per recipient and one for the
 * whole:
 *
 *   rcpt <address> <delivered|tempfail|permfail> <code> <reply>
 *   status <ok|tempfail|auth|rcpt|refused|config|ioerr|software> <code>
 *       <message, or "-">
 *
 * Exit status 0 whatever the relay said; 2 for a usage or set-up error.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "message.h"
#include "submit.h"
#include "util.h"

static const char *const outcome_names[] = {
	[RCPT_DELIVERED] = "delivered",
	[RCPT_TEMPFAIL] = "tempfail",
	[RCPT_PERMFAIL] = "permfail",
};

static const char *const status_names[] = {
	[SUBMIT_OK] = "ok",
	[SUBMIT_TEMPFAIL] = "tempfail",
	[SUBMIT_AUTH] = "auth",
	[SUBMIT_RCPT] = "rcpt",
	[SUBMIT_REFUSED] = "refused",
	[SUBMIT_CONFIG] = "config",
	[SUBMIT_IOERR] = "ioerr",
	[SUBMIT_SOFTWARE] = "software",
};

/* Standard input as it is, between two lines that are not the message. */
static FILE *
raw_spool(off_t *offset, off_t *size)
{
	static const char before[] = "not the message\r\n.\r\n";
	static const char after[] = "\r\n.\r\nnot the message either\r\n";
	FILE *f = tmpfile();
	char buf[8192];
	size_t n;

	if (!f)
		return NULL;
	fputs(before, f);
	*offset = (off_t)strlen(before);
	*size = 0;
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		fwrite(buf, 1, n, f);
		*size += (off_t)n;
	}
	fputs(after, f);
	if (ferror(stdin) || fflush(f)) {
		fclose(f);
		return NULL;
	}
	return f;
}

static void
print_result(const struct strlist *rcpts, const struct submit_result *res)
{
	for (size_t i = 0; i < res->nrcpt; i++)
		printf("rcpt %s %s %d %s\n", i < rcpts->n ? rcpts->v[i] : "?",
		    outcome_names[res->rcpt[i].outcome], res->rcpt[i].code,
		    res->rcpt[i].reply);
	printf("status %s %d %s\n", status_names[res->status], res->code,
	    res->message ? res->message : "-");
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct config cfg = { 0 };
	const struct account *acct;
	struct submit_params params = { .partial = 1 };
	struct submit_session *s;
	struct strlist rcpts = STRLIST_INIT;
	struct message m = { 0 };
	FILE *raw = NULL;
	char *err = NULL;
	int c, count = 1, use_raw = 0;

	while ((c = getopt(argc, argv, "dRn:")) != -1) {
		switch (c) {
		case 'd':
			params.partial = 0;
			break;
		case 'R':
			use_raw = 1;
			break;
		case 'n':
			count = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind < 3 || count < 1)
		goto usage;
	if (config_load(argv[optind], &cfg, &err) ||
	    !(acct = config_account(&cfg, NULL, &err))) {
		fprintf(stderr, "submit-driver: %s\n", err);
		return 2;
	}
	for (int i = optind + 2; i < argc; i++)
		strlist_push(&rcpts, argv[i]);
	if (use_raw) {
		off_t offset, size;
		raw = raw_spool(&offset, &size);
		if (!raw) {
			perror("submit-driver: cannot spool standard input");
			return 2;
		}
		message_init_raw(&m, raw, offset, size);
	} else if (message_read(&m, 0, 1, NULL, &err)) {
		fprintf(stderr, "submit-driver: %s\n", err);
		return 2;
	}
	s = submit_open(acct, acct->helo ? acct->helo : "client.test", 0, &err);
	if (!s) {
		fprintf(stderr, "submit-driver: %s\n", err);
		return 2;
	}
	for (int i = 0; i < count; i++) {
		struct submit_result res;

		submit_send(s, argv[optind + 1], &rcpts, &params, &m, &res);
		print_result(&rcpts, &res);
		submit_result_release(&res);
	}
	submit_close(s);
	message_release(&m);
	if (raw)
		fclose(raw);
	strlist_release(&rcpts);
	config_release(&cfg);
	return 0;

usage:
	fprintf(stderr,
	    "usage: submit-driver [-d] [-R] [-n count] config sender "
	    "rcpt...\n");
	return 2;
}
