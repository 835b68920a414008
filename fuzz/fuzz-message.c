/*
 * fuzz-message.c - libFuzzer target for the header reader and normaliser:
 * the first byte chooses ignore_dots, the rest is the message on standard
 * input.  After message_complete() the whole message is read back with
 * message_out() and checked against what message.h promises:
 *   - every line ending is CRLF: no bare CR, no bare LF;
 *   - no line is longer than MESSAGE_LINE_MAX (998) octets before its CRLF;
 *   - the message ends with CRLF, has an empty line after the headers;
 *   - message_size() is the number of bytes message_out() gives.
 * A violation is an abort(), which libFuzzer reports as a crash.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "message.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* say which promise broke, then crash so that libFuzzer keeps the input */
static void
violated(const char *what, size_t offset)
{
	fprintf(stderr,
	    "fuzz-message: invariant violated: %s (at octet %zu "
	    "of the output)\n",
	    what, offset);
	abort();
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message m;
	struct message_cursor c;
	char *err = NULL;
	char buf[4096];
	size_t col = 0, total = 0;
	int prev_cr = 0, saw_blank = 0, ignore_dots, rc, fd;
	char last2[2] = { 0, 0 };
	long n;

	if (size < 1)
		return 0;
	ignore_dots = data[0] & 1;
	data++;
	size--;

	fd = memfd_create("fuzz-message", MFD_CLOEXEC);
	if (fd < 0 || write_all(fd, data, size) < 0 ||
	    lseek(fd, 0, SEEK_SET) != 0)
		abort();

	memset(&m, 0, sizeof(m));
	rc = message_read(&m, fd, ignore_dots, NULL, &err);
	close(fd);
	if (rc) {
		if (!err)
			abort();
		free(err);
		message_release(&m);
		return 0;
	}
	if (message_complete(
	        &m, "sender@example.org", "Fuzz Er", "example.org", &err)) {
		free(err);
		message_release(&m);
		return 0;
	}

	message_rewind(&c, &m);
	while ((n = message_out(&c, buf, sizeof(buf))) > 0) {
		for (long i = 0; i < n; i++) {
			char ch = buf[i];

			if (prev_cr && ch != '\n')
				violated("bare CR", total + (size_t)i);
			if (ch == '\n') {
				if (!prev_cr)
					violated("bare LF", total + (size_t)i);
				/* col counts the CR too */
				if (col - 1 > MESSAGE_LINE_MAX)
					violated("line over 998 octets",
					    total + (size_t)i);
				if (col == 1)
					saw_blank = 1;
				col = 0;
			} else {
				col++;
			}
			prev_cr = ch == '\r';
			last2[0] = last2[1];
			last2[1] = ch;
		}
		total += (size_t)n;
	}
	if (n < 0)
		violated("message_out() failed", total);
	if (prev_cr || col || last2[0] != '\r' || last2[1] != '\n')
		violated("the last line has no CRLF", total);
	if (!saw_blank)
		violated("no empty line after the header section", total);
	if ((off_t)total != message_size(&m))
		violated(
		    "message_size() is not what message_out() gives", total);
	message_release(&m);
	return 0;
}
