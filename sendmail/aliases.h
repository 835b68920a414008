/*
 * aliases.h - the aliases file, in /etc/aliases format.
 *
 *   # comment
 *   root: admin@example.com, ops
 *   ops:  alice@example.com,
 *         bob@example.com          (continuation lines start with white space)
 *
 * Names are matched case-insensitively.  Targets that a relay client cannot
 * deliver (|command, /file, :include:) are kept so that they can be
 * reported, but expand to nothing.
 */
#ifndef MAILSHIM_ALIASES_H
#define MAILSHIM_ALIASES_H

#include "util.h"

struct alias {
	char *name;
	struct strlist targets;
	int line;
};

struct aliases {
	char *path;
	struct alias *v;
	size_t n, alloc;
	struct strlist problems; /* "path:line: ..." for each bad line */
};

/*
 * Load the file at path into al (zeroed by the caller).  Lines that cannot
 * be parsed are skipped and described in al->problems.  Returns 0, or -1
 * with *err set if the file cannot be read.
 */
int aliases_load(const char *path, struct aliases *al, char **err);

/* The alias named name, or NULL. */
const struct alias *aliases_find(const struct aliases *al, const char *name);

/* Is target one that only a local delivery agent could handle? */
int alias_target_is_local_only(const char *target);

void aliases_release(struct aliases *al);

#endif
