/*
 * fuzz-rfc5322.c - libFuzzer target for the address parser: the input is
 * an address list (a header field body), and, NUL-terminated, a mailbox as
 * given to -f.  Checks what rfc5322.h promises: no control character and
 * no angle bracket survives into an address, and out keeps what it held
 * when the parse fails.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rfc5322.h"
#include "util.h"

static void
check_addr(const char *a)
{
	const char *why;

	for (const char *p = a; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f || c == '<' || c == '>')
			abort();
	}
	if (!rfc5322_addr_is_safe(a, &why) && !why)
		abort();
	(void)rfc5322_domain(a);
	if (!rfc5322_same_address(a, a) && *a)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strlist out = STRLIST_INIT;
	char *copy, *err = NULL, *addr = NULL;
	int is_comment = -1;

	/* an exact-size heap copy, so ASan sees a read past len */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);

	strlist_push(&out, "sentinel@example.org");
	if (rfc5322_parse_list(copy, size, &out, &err) == 0) {
		if (err)
			abort();
		for (size_t i = 1; i < out.n; i++) {
			check_addr(out.v[i]);
			if (i > 1)
				(void)rfc5322_same_address(
				    out.v[i - 1], out.v[i]);
		}
		char *name = rfc5322_display_name(copy, size, &is_comment);
		if (name) {
			if (is_comment != 0 && is_comment != 1)
				abort();
			if (is_comment && name[0] != '(')
				abort();
			free(name);
		}
	} else {
		/* on error, out keeps what it held */
		if (!err || out.n != 1 ||
		    strcmp(out.v[0], "sentinel@example.org"))
			abort();
		free(err);
		err = NULL;
		free(rfc5322_display_name(copy, size, &is_comment));
	}
	strlist_release(&out);
	free(copy);

	/* the same bytes, up to a NUL, as a mailbox (-f / -r) */
	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	if (rfc5322_parse_mailbox(copy, &addr, &err) == 0) {
		if (!addr)
			abort();
		check_addr(addr);
		free(addr);
	} else {
		if (!err)
			abort();
		free(err);
	}
	free(copy);
	return 0;
}
