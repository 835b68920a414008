/*
 * fuzz-options.c - libFuzzer target for the command line: the input, split
 * on NUL bytes, is argv (its first element the program name, so "mailq"
 * and "newaliases" are reached too).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct options o;
	char *copy, **argv, *err = NULL;
	int argc = 0;
	size_t i, start;

	/* each argument its own allocation, so ASan sees a read past one */
	argv = calloc(size + 2, sizeof(*argv));
	if (!argv)
		return 0;
	for (start = 0, i = 0; i <= size; i++) {
		if (i == size || data[i] == '\0') {
			copy = malloc(i - start + 1);
			if (!copy)
				abort();
			memcpy(copy, data + start, i - start);
			copy[i - start] = '\0';
			argv[argc++] = copy;
			start = i + 1;
		}
	}
	argv[argc] = NULL;

	memset(&o, 0, sizeof(o));
	if (options_parse(argc, argv, &o, &err) == 0) {
		if (err)
			abort();
		for (i = 0; i < o.recipients.n; i++)
			if (!o.recipients.v[i])
				abort();
	} else {
		if (!err)
			abort();
		free(err);
	}
	options_release(&o);
	for (i = 0; i < (size_t)argc; i++)
		free(argv[i]);
	free(argv);
	return 0;
}
