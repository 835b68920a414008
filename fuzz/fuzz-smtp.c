/*
 * fuzz-smtp.c - libFuzzer target for the "-bs" command reader: the input
 * is what the client sends, served by smtp_stdio_serve() with hooks that
 * accept everyone (but refuse a sender or recipient holding "reject") and
 * a data hook that reads the whole message back.  Replies go to
 * /dev/null.  Checks what smtp_stdio.h promises the hooks: every address
 * handed over is safe to put in MAIL FROM or RCPT TO, the message has
 * CRLF line endings (no bare LF) and a transaction has recipients.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rfc5322.h"
#include "smtp_stdio.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_addr(const char *addr)
{
	const char *why;

	if (*addr && !rfc5322_addr_is_safe(addr, &why))
		abort();
}

static int
hook_mail(void *arg, const struct smtp_txn *t, const char *addr, char *reply,
    size_t n)
{
	(void)arg;
	(void)t;
	check_addr(addr);
	if (strstr(addr, "reject")) {
		snprintf(reply, n, "553 5.1.7 refused");
		return 1;
	}
	if (strstr(addr, "tempfail")) {
		/* a slip: a 2xx refusal, which must go out as a 451 */
		snprintf(reply, n, "250 oops");
		return 1;
	}
	return 0;
}

static int
hook_rcpt(void *arg, const struct smtp_txn *t, const char *addr, char *reply,
    size_t n)
{
	(void)arg;
	if (!t->sender)
		abort();
	check_addr(addr);
	if (strstr(addr, "reject")) {
		snprintf(reply, n, "550-5.1.1 no\n550 5.1.1 such user\r\x01");
		return 1;
	}
	return 0;
}

static void
hook_data(void *arg, const struct smtp_txn *t, int fd, char *reply, size_t n)
{
	char buf[4096];
	ssize_t r;
	int prev_cr = 0;
	unsigned *count = arg;

	if (!t->sender || t->rcpts.n == 0)
		abort();
	for (size_t i = 0; i < t->rcpts.n; i++)
		check_addr(t->rcpts.v[i]);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] == '\n' && !prev_cr)
				abort(); /* bare LF */
			prev_cr = buf[i] == '\r';
		}
	if (r < 0)
		abort();
	(*count)++;
	if (*count % 3 == 2)
		snprintf(reply, n, "451 4.3.0 try later");
	else if (*count % 3 == 1)
		snprintf(reply, n, "250 2.0.0 Ok: queued as F%u", *count);
	/* else: no reply at all, which must go out as a 451 */
}

static void
hook_reset(void *arg)
{
	(void)arg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int devnull = -1;
	struct smtp_stdio_opts o = { .hostname = "fuzz.example.org",
		.max_size = 4096,
		.idle_timeout = 0 };
	unsigned count = 0;
	struct smtp_stdio_hooks h = { .arg = &count,
		.mail = hook_mail,
		.rcpt = hook_rcpt,
		.data = hook_data,
		.reset = hook_reset };
	size_t off = 0;
	int in;

	if (devnull < 0) {
		signal(SIGPIPE, SIG_IGN);
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull < 0)
			abort();
	}
	/* a memfd, not a pipe: an input over the pipe buffer cannot block */
	in = memfd_create("fuzz-smtp", MFD_CLOEXEC);
	if (in < 0)
		abort();
	while (off < size) {
		ssize_t w = write(in, data + off, size - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	if (lseek(in, 0, SEEK_SET) != 0)
		abort();
	(void)smtp_stdio_serve(in, devnull, &o, &h);
	close(in);
	return 0;
}
