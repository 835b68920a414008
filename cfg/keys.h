/*
 * keys.h - the vocabulary of mailshim.ini: which keys there are, in which
 * section, and how their values are checked (see keys.c).
 *
 * Internal to cfg/: only cfg.c and keys.c include it, and nothing here is
 * part of the API in cfg.h.  Keys are described by one table in keys.c
 * (name, section, flags, parser, field), which cfg.c walks to apply, preset
 * and check values; adding a key means adding a field to struct config or
 * struct account (cfg.h), a row to the table, and perhaps a parser and a
 * default (set_defaults()), all in keys.c.
 */
#ifndef MAILSHIM_KEYS_H
#define MAILSHIM_KEYS_H

#include <stddef.h>

#include "cfg.h"

/* the section of the S_GLOBAL keys; every other section is an account */
#define GLOBAL_SECTION "mailshim"

enum scope { S_GLOBAL = 1, S_ACCOUNT = 2 };

enum {
	KF_NOCUT = 1, /* an unquoted ';' or '#' is an error, not a comment */
	KF_SECRET = 2 /* never quoted in messages; wiped; implies KF_NOCUT */
};

/*
 * A value parser checks v (never empty) and stores it at dst.  It returns
 * NULL, or what was expected, for "bad value for 'KEY' ...: EXPECTATION".
 */
typedef const char *parse_fn(const char *v, void *dst);

struct keydef {
	const char *name;
	int scope;
	int flags;
	parse_fn *parse;
	size_t off; /* of the field in struct config or account */
};

/* The key called name (lower case) that a section of scope may hold. */
const struct keydef *find_key(const char *name, int scope);

/*
 * Keys that say the same thing twice; the first name is the one shown first.
 * The last pair is { NULL, NULL }.
 */
extern const char *const conflicts[][2];

/*
 * A provider's presets are key/value pairs (NULL after the last), run
 * through the same parsers, for the keys the section leaves out.
 */
struct provider {
	const char *name;
	const char *const *presets;
};

/* The provider called name (any case), or NULL. */
const struct provider *find_provider(const char *name);

/* What provider (may be NULL) presets key to, or NULL. */
const char *preset_value(const char *provider, const char *key);

/*
 * Store the defaults of the keys of scope in base (a struct config for
 * S_GLOBAL, a struct account for S_ACCOUNT), before the file's values.
 * Defaults that depend on other keys are left to cfg.c's finish_account().
 */
void set_defaults(int scope, void *base);

/*
 * Free what the values of the keys of scope hold in base (wiping secrets)
 * and set those fields to NULL.
 */
void release_values(int scope, void *base);

/* Replace the string at dst (a char **) with a copy of v. */
void set_string(void *dst, const char *v);

/* The value of the from_policy key that means p. */
const char *from_policy_name(enum from_policy p);

#endif
