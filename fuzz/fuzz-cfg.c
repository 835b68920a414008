/*
 * fuzz-cfg.c - libFuzzer target for the config loader: the input is
 * mailshim.ini, written to a temporary file of mode 0600 and loaded.  A
 * loaded config also chooses its accounts, as mailshim would.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[4096];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char *err = NULL;
	const char *pattern;
	const struct account *a;
	int fd;
	size_t off = 0;
	const char *dir = getenv("TMPDIR");

	snprintf(path, sizeof(path), "%s/fuzz-cfg.XXXXXX",
	    dir && *dir ? dir : "/tmp");
	fd = mkstemp(path); /* mode 0600 */
	if (fd < 0)
		abort();
	if (fchmod(fd, 0600) != 0)
		abort();
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	close(fd);

	memset(&cfg, 0, sizeof(cfg));
	if (config_load(path, &cfg, &err) == 0) {
		if (err)
			abort();
		for (size_t i = 0; i < cfg.naccounts; i++) {
			if (!cfg.accounts[i].host || !cfg.accounts[i].name)
				abort();
			a = config_account(&cfg, cfg.accounts[i].name, &err);
			if (!a) {
				free(err);
				err = NULL;
			}
			free(account_sasl_user(&cfg.accounts[i]));
		}
		if (!config_account(&cfg, NULL, &err)) {
			free(err);
			err = NULL;
		}
		a = config_account_for(
		    &cfg, "user@example.org", &pattern, &err);
		if (!a) {
			free(err);
			err = NULL;
		}
	} else {
		if (!err)
			abort();
		free(err);
	}
	config_release(&cfg);
	unlink(path);
	return 0;
}
