/*
 * cfg.c - load and check mailshim.ini (see cfg.h).
 *
 * iniparser reads the values, but it keeps no line numbers, silently keeps
 * the last of two equal keys, joins a line ending in '\' to the next one
 * (even a comment line), cuts unquoted values at ';' and '#', and fails
 * the whole load on lines over 1024 bytes.  So the file is first read by a
 * small scanner of our own that follows iniparser 4.1's rules, refuses
 * whatever iniparser would misread, and records the line of every section
 * and key for the messages.  Every value iniparser returns is then checked
 * against the scanner's reading of the same line, so the two can never
 * silently disagree.
 *
 * What the keys are and how their values are checked (the key table, the
 * value parsers, the conflicting keys, the provider presets and the
 * defaults) is in keys.c; this file reads the file, applies each value
 * through its key's row, finishes each account and implements cfg.h.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <iniparser.h>

#include "cfg.h"
#include "keys.h"
#include "util.h"

/* iniparser 4.1 gives up on lines of 1023 bytes or more */
#define MAX_LINE 1000
/* a config file is a few hundred bytes; refuse to slurp a stray big file */
#define MAX_FILE (1024L * 1024)

/* one "key = value" line, as the scanner read it */
struct ent {
	const struct keydef *kd;
	char *value; /* may be a secret: wiped when freed */
	int line;
};

struct sect {
	char *name; /* lower case, as iniparser stores it */
	int line;
	int global;
	struct ent *ents;
	size_t nents, alloc;
};

struct loader {
	const char *path;
	struct config *cfg;
	char *text; /* the whole file, wiped when freed */
	size_t len;
	mode_t mode; /* of the file, for secret_readable() */
	struct sect *sects;
	size_t nsects, alloc;
	dictionary *ini;
	char *err;
};

/* ---- small helpers ------------------------------------------------------ */

/* the C locale's isspace(), which is what iniparser strips */
static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	    c == '\r';
}

static void
lower_ascii(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s += 'a' - 'A';
}

/* Wipe and free n bytes that may hold a secret. */
static void
free_wiped(char *s, size_t n)
{
	if (!s)
		return;
	explicit_bzero(s, n);
	free(s);
}

/* ---- errors ------------------------------------------------------------- */

/* Keep the first error: "PATH:LINE: message", or "PATH: message" (line 0). */
static int fail(struct loader *l, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct loader *l, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (l->err)
		return EX_CONFIG;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (line > 0)
		l->err = xasprintf("%s:%d: %s", l->path, line, msg);
	else
		l->err = xasprintf("%s: %s", l->path, msg);
	free(msg);
	return EX_CONFIG;
}

/*
 * iniparser reports through one global callback with no user pointer.
 * Keep the first message's first line (later lines quote the file, which
 * may hold a secret) instead of letting it reach stderr.
 */
static char ini_msg[256];

static int ini_capture(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
ini_capture(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ini_msg[0])
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(ini_msg, sizeof(ini_msg), fmt, ap);
	va_end(ap);
	ini_msg[strcspn(ini_msg, "\n")] = '\0';
	return n;
}

/* ---- reading the file --------------------------------------------------- */

static int
cannot_read(struct loader *l, const char *why)
{
	if (!l->err)
		l->err = xasprintf("cannot read config '%s': %s", l->path, why);
	return EX_CONFIG;
}

static int
read_text(struct loader *l)
{
	struct stat st;
	size_t alloc;
	ssize_t n;
	int fd, rc = 0;

	if ((fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return cannot_read(l, strerror(errno));
	if (fstat(fd, &st) == -1) {
		rc = cannot_read(l, strerror(errno));
		goto out;
	}
	/* iniparser opens the file again: a FIFO would not read twice */
	if (S_ISDIR(st.st_mode)) {
		rc = cannot_read(l, strerror(EISDIR));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = cannot_read(l, "not a regular file");
		goto out;
	}
	if (st.st_size >= MAX_FILE) {
		rc = cannot_read(l, strerror(EFBIG));
		goto out;
	}
	l->mode = st.st_mode;
	/* one read past the size sees a file that grew; no realloc copies */
	alloc = (size_t)st.st_size + 2;
	l->text = xmalloc(alloc);
	l->len = 0;
	for (;;) {
		n = read(fd, l->text + l->len, alloc - 1 - l->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = cannot_read(l, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		l->len += (size_t)n;
		if (l->len == alloc - 1) {
			rc = fail(l, 0, "the file changed while it was read");
			goto out;
		}
	}
	l->text[l->len] = '\0';
out:
	close(fd);
	return rc;
}

/*
 * A file that holds a secret must not be readable by others; its group may
 * read it (root:mailshim 0640 is how a setgid mailshim reads it).
 */
static int
secret_readable(struct loader *l, const char *file, mode_t mode)
{
	if (!(mode & S_IROTH))
		return 0;
	if (!l->err)
		l->err = xasprintf("%s: holds a secret and is readable by "
		                   "others: run chmod o-r %s",
		    file, file);
	return EX_CONFIG;
}

/* Refuse a config file readable by others when it holds a secret. */
static int
check_secret_mode(struct loader *l)
{
	for (size_t i = 0; i < l->nsects; i++)
		for (size_t j = 0; j < l->sects[i].nents; j++)
			if (l->sects[i].ents[j].kd->flags & KF_SECRET)
				return secret_readable(l, l->path, l->mode);
	return 0;
}

/* ---- the scanner -------------------------------------------------------- */

static const struct ent *
find_ent(const struct sect *s, const char *name)
{
	for (size_t i = 0; i < s->nents; i++)
		if (!strcmp(s->ents[i].kd->name, name))
			return &s->ents[i];
	return NULL;
}

/* a section name or a key, in lower case */
static int
valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		        *s == '.' || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

static int
scan_section(struct loader *l, char *p, size_t n, int line)
{
	struct sect *s;
	char *name;

	/* iniparser reads "[a]b]" as [a]; anything odd is refused instead */
	p[n - 1] = '\0';
	p++;
	while (is_space((unsigned char)*p))
		p++;
	n = strlen(p);
	while (n > 0 && is_space((unsigned char)p[n - 1]))
		p[--n] = '\0';
	lower_ascii(p);
	if (!valid_name(p))
		return fail(l, line,
		    "bad section name [%s]: use letters, "
		    "digits, '.', '-' and '_'",
		    p);
	for (size_t i = 0; i < l->nsects; i++)
		if (!strcmp(l->sects[i].name, p))
			return fail(l, line, "duplicate section [%s]", p);
	name = xstrdup(p);
	grow_array(
	    (void **)&l->sects, &l->alloc, l->nsects + 1, sizeof(*l->sects));
	s = &l->sects[l->nsects++];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->line = line;
	s->global = !strcmp(name, GLOBAL_SECTION);
	return 0;
}

/*
 * Read the value after '=' the way iniparser 4.1 does: between "..." or
 * '...' as is, else up to the first ';' or '#', stripped.  Refuse what it
 * would read differently from what was meant.
 */
static int
scan_value(struct loader *l, const struct sect *s, const struct keydef *kd,
    char *p, int line, char **value)
{
	int nocut = kd->flags & (KF_NOCUT | KF_SECRET);
	char *end, *cut;

	while (is_space((unsigned char)*p))
		p++;
	if (*p == '"' || *p == '\'') {
		if (!(end = strchr(p + 1, *p)))
			return fail(l, line,
			    "the value of '%s' in [%s] has no "
			    "closing quote",
			    kd->name, s->name);
		cut = end + 1;
		while (is_space((unsigned char)*cut))
			cut++;
		if (*cut && *cut != ';' && *cut != '#')
			return fail(l, line,
			    "text after the closing quote of "
			    "'%s' in [%s]",
			    kd->name, s->name);
		*value = xstrndup(p + 1, (size_t)(end - p - 1));
		return 0;
	}
	if ((cut = strpbrk(p, ";#"))) {
		if (nocut)
			return fail(l, line,
			    "the value of '%s' is cut at "
			    "'%c': put the value in double quotes",
			    kd->name, *cut);
		*cut = '\0';
	}
	end = p + strlen(p);
	while (end > p && is_space((unsigned char)end[-1]))
		end--;
	*value = xstrndup(p, (size_t)(end - p));
	return 0;
}

static int
scan_key(struct loader *l, char *p, char *eq, int line)
{
	struct sect *s;
	const struct keydef *kd;
	const struct ent *prev;
	struct ent *e;
	char *key = p, *end = eq, *value = NULL;

	while (end > key && is_space((unsigned char)end[-1]))
		end--;
	*end = '\0';
	lower_ascii(key);
	/*
	 * Only a word is echoed as a key: "password s3cr=t" (a forgotten
	 * '=') must not show up in the message.
	 */
	if (!valid_name(key))
		return fail(l, line, "syntax error");
	if (l->nsects == 0)
		return fail(l, line, "key '%s' outside a section", key);
	s = &l->sects[l->nsects - 1];
	kd = find_key(key, s->global ? S_GLOBAL : S_ACCOUNT);
	if (!kd)
		return fail(l, line, "unknown key '%s' in [%s]", key, s->name);
	if (find_ent(s, kd->name))
		return fail(
		    l, line, "duplicate key '%s' in [%s]", kd->name, s->name);
	for (size_t i = 0; conflicts[i][0]; i++) {
		const char *a = conflicts[i][0], *b = conflicts[i][1];

		if (!strcmp(kd->name, a))
			prev = find_ent(s, b);
		else if (!strcmp(kd->name, b))
			prev = find_ent(s, a);
		else
			continue;
		if (prev)
			return fail(l, line, "'%s' and '%s' both set in [%s]",
			    a, b, s->name);
	}
	if (scan_value(l, s, kd, eq + 1, line, &value))
		return EX_CONFIG;
	grow_array(
	    (void **)&s->ents, &s->alloc, s->nents + 1, sizeof(*s->ents));
	e = &s->ents[s->nents++];
	e->kd = kd;
	e->value = value;
	e->line = line;
	return 0;
}

/* One line, without its '\n'; it may be changed in place. */
static int
scan_line(struct loader *l, char *p, size_t n, int line)
{
	char *eq;

	if (n > MAX_LINE)
		return fail(l, line, "line too long");
	/* iniparser would see the line end at the NUL */
	if (memchr(p, '\0', n))
		return fail(l, line, "syntax error");
	p[n] = '\0';
	while (n > 0 && is_space((unsigned char)p[n - 1]))
		p[--n] = '\0';
	while (is_space((unsigned char)*p)) {
		p++;
		n--;
	}
	if (n == 0)
		return 0;
	/* iniparser joins the next line to this one, even to a comment */
	if (p[n - 1] == '\\')
		return fail(l, line,
		    "line ends with '\\': continuation lines "
		    "are not supported");
	if (*p == '#' || *p == ';')
		return 0;
	if (*p == '[') {
		if (p[n - 1] != ']')
			return fail(l, line, "syntax error");
		return scan_section(l, p, n, line);
	}
	if (!(eq = strchr(p, '=')))
		return fail(l, line, "syntax error");
	return scan_key(l, p, eq, line);
}

static int
scan(struct loader *l)
{
	char *p = l->text, *end = l->text + l->len, *nl;
	int line = 0;

	/* iniparser would take it for part of the first line */
	if (l->len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
		return fail(l, 1,
		    "the file starts with a UTF-8 byte order "
		    "mark: save it without one");
	while (p < end) {
		line++;
		if (!(nl = memchr(p, '\n', (size_t)(end - p))))
			nl = end;
		if (scan_line(l, p, (size_t)(nl - p), line))
			return EX_CONFIG;
		p = nl + 1;
	}
	return 0;
}

/* ---- values from iniparser ---------------------------------------------- */

static int
load_ini(struct loader *l)
{
	ini_msg[0] = '\0';
	iniparser_set_error_callback(ini_capture);
	l->ini = iniparser_load(l->path);
	iniparser_set_error_callback(NULL);
	if (!l->ini)
		return fail(l, 0, "cannot load: %s",
		    ini_msg[0] ? ini_msg : "iniparser failed");
	if (iniparser_getnsec(l->ini) != (int)l->nsects)
		return fail(l, 0,
		    "iniparser reads the sections differently "
		    "(did the file change while it was read?)");
	return 0;
}

static int
apply_ent(
    struct loader *l, const struct sect *s, const struct ent *e, void *base)
{
	const struct keydef *kd = e->kd;
	const char *v, *expect;
	char *k;

	k = xasprintf("%s:%s", s->name, kd->name);
	v = iniparser_getstring(l->ini, k, NULL);
	free(k);
	if (!v || strcmp(v, e->value))
		return fail(l, e->line,
		    "iniparser reads the value of '%s' in "
		    "[%s] differently: put the value in double quotes",
		    kd->name, s->name);
	if (!*v)
		return fail(l, e->line, "empty value for '%s' in [%s]",
		    kd->name, s->name);
	if (!(expect = kd->parse(v, (char *)base + kd->off)))
		return 0;
	if (kd->flags & KF_SECRET)
		return fail(l, e->line, "bad value for '%s' in [%s]: %s",
		    kd->name, s->name, expect);
	return fail(l, e->line, "bad value for '%s' in [%s]: %s (got '%s')",
	    kd->name, s->name, expect, v);
}

static int
apply_section(struct loader *l, const struct sect *s, void *base)
{
	if (iniparser_getsecnkeys(l->ini, s->name) != (int)s->nents)
		return fail(l, s->line,
		    "iniparser reads [%s] differently "
		    "(did the file change while it was read?)",
		    s->name);
	for (size_t i = 0; i < s->nents; i++)
		if (apply_ent(l, s, &s->ents[i], base))
			return EX_CONFIG;
	return 0;
}

/* Is key set in the section, or by its provider? */
static int
given(const struct sect *s, const struct account *a, const char *key)
{
	return find_ent(s, key) || preset_value(a->provider, key);
}

static int
apply_presets(struct loader *l, const struct sect *s, struct account *a)
{
	const struct provider *p;
	const struct keydef *kd;

	if (!a->provider || !(p = find_provider(a->provider)))
		return 0;
	for (const char *const *kv = p->presets; *kv; kv += 2) {
		if (find_ent(s, kv[0]))
			continue;
		kd = find_key(kv[0], S_ACCOUNT);
		if (!kd || kd->parse(kv[1], (char *)a + kd->off))
			return fail(l, s->line,
			    "internal error: bad preset "
			    "'%s' for provider %s",
			    kv[0], p->name);
	}
	return 0;
}

/*
 * The secret is the file's first line without its CR/LF.  Read with
 * read(2) into a wiped stack buffer, so no stdio buffer keeps a copy.
 */
static int
read_password_file(struct loader *l, const struct ent *e, struct account *a)
{
	const char *file = a->password_file;
	char buf[MAX_SECRET + 1];
	struct stat st;
	size_t len = 0, n;
	ssize_t got;
	char *nl = NULL;
	int fd, rc = 0;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1)
		return fail(l, e->line, "cannot read password_file '%s': %s",
		    file, strerror(errno));
	/* O_NONBLOCK and this check keep a FIFO from hanging the caller */
	if (fstat(fd, &st) == -1) {
		rc = fail(l, e->line, "cannot read password_file '%s': %s",
		    file, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = fail(l, e->line, "cannot read password_file '%s': %s",
		    file,
		    S_ISDIR(st.st_mode) ? strerror(EISDIR)
		                        : "not a regular file");
		goto out;
	}
	if ((rc = secret_readable(l, file, st.st_mode)))
		goto out;
	while (!nl && len < MAX_SECRET) {
		got = read(fd, buf + len, MAX_SECRET - len);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			rc = fail(l, e->line,
			    "cannot read password_file "
			    "'%s': %s",
			    file, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		nl = memchr(buf + len, '\n', (size_t)got);
		len += (size_t)got;
	}
	if (!nl && len == MAX_SECRET) {
		rc = fail(l, e->line,
		    "the first line of password_file '%s' "
		    "is too long",
		    file);
		goto out;
	}
	n = nl ? (size_t)(nl - buf) : len;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0) {
		rc = fail(l, e->line, "password_file '%s' is empty", file);
		goto out;
	}
	if (memchr(buf, '\0', n)) {
		rc = fail(
		    l, e->line, "password_file '%s' holds a NUL byte", file);
		goto out;
	}
	free_secret(a->password);
	a->password = xstrndup(buf, n);
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

/* The first of the keys set in the section, for messages. */
static const struct ent *
first_ent(const struct sect *s, const char *const *names)
{
	const struct ent *e;

	for (; *names; names++)
		if ((e = find_ent(s, *names)))
			return e;
	return NULL;
}

static int
finish_account(struct loader *l, const struct sect *s, struct account *a)
{
	static const char *const user_keys[] = { "username", "appkey", NULL };
	static const char *const pass_keys[] = { "password", "secretkey",
		"password_file", "password_command", NULL };
	const struct ent *e, *user, *pass;

	if (apply_presets(l, s, a))
		return EX_CONFIG;
	if (!a->host)
		return fail(
		    l, s->line, "[%s] needs 'host' (or 'provider')", s->name);
	if ((e = find_ent(s, "password_file")) && read_password_file(l, e, a))
		return EX_CONFIG;

	user = first_ent(s, user_keys);
	pass = first_ent(s, pass_keys);
	if (!given(s, a, "auth"))
		a->auth = a->username ? AUTH_PLAIN : AUTH_NONE;
	if (a->auth != AUTH_NONE) {
		if (!a->username)
			return fail(l, s->line,
			    "[%s] needs 'username' for "
			    "auth = %s",
			    s->name, auth_mech_name(a->auth));
		if (!a->password && !a->password_command.n)
			return fail(l, s->line,
			    "[%s] needs 'password' for "
			    "auth = %s",
			    s->name, auth_mech_name(a->auth));
	} else if (given(s, a, "auth")) {
		/* said auth = none, yet gave what only auth would use */
		if ((e = user) || (e = pass))
			return fail(l, e->line,
			    "'%s' set but auth = none in "
			    "[%s]",
			    e->kd->name, s->name);
	} else if (pass)
		return fail(l, pass->line, "'%s' set but no 'username' in [%s]",
		    pass->kd->name, s->name);
	if (!a->username && (e = find_ent(s, "mail_type")))
		return fail(l, e->line,
		    "'mail_type' set but no 'username' in "
		    "[%s]",
		    s->name);
	if (a->from_policy != FROM_KEEP && !a->from) {
		e = find_ent(s, "from_policy");
		return fail(l, e->line,
		    "[%s] needs 'from' for from_policy = %s", s->name,
		    from_policy_name(a->from_policy));
	}
	if (a->tls == TLS_NONE && a->auth != AUTH_NONE &&
	    !a->allow_plaintext_auth) {
		e = find_ent(s, "tls");
		return fail(l, e ? e->line : s->line,
		    "[%s] would send the password without TLS (tls = none): "
		    "set allow_plaintext_auth = yes to allow it",
		    s->name);
	}
	if (a->tls == TLS_NONE && (e = find_ent(s, "tls_pin")))
		return fail(l, e->line, "'tls_pin' set but tls = none in [%s]",
		    s->name);
	if (a->port == 0)
		a->port = a->tls == TLS_IMPLICIT ? 465 : 587;
	/* the command runs later, when a connection needs it (secret.h) */
	if (a->password_command.n)
		a->fetched = xcalloc(1, sizeof(*a->fetched));
	return 0;
}

static struct account *
find_account(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->naccounts; i++)
		if (!ascii_strcasecmp(cfg->accounts[i].name, name))
			return &cfg->accounts[i];
	return NULL;
}

static int
apply_all(struct loader *l)
{
	struct config *cfg = l->cfg;
	const struct sect *global = NULL;
	const struct ent *e;
	struct account *a;
	size_t n = 0;

	for (size_t i = 0; i < l->nsects; i++)
		n += !l->sects[i].global;
	if (n == 0)
		return fail(l, 0,
		    "no account: add a section such as [relay] "
		    "with host = ...");
	cfg->accounts = xcalloc(n, sizeof(*cfg->accounts));
	set_defaults(S_GLOBAL, cfg);

	for (size_t i = 0; i < l->nsects; i++) {
		const struct sect *s = &l->sects[i];

		if (s->global) {
			global = s;
			if (apply_section(l, s, cfg))
				return EX_CONFIG;
			continue;
		}
		a = &cfg->accounts[cfg->naccounts++];
		a->name = xstrdup(s->name);
		a->line = s->line;
		set_defaults(S_ACCOUNT, a);
		if (apply_section(l, s, a) || finish_account(l, s, a))
			return EX_CONFIG;
	}

	if (cfg->default_account) {
		e = global ? find_ent(global, "account") : NULL;
		if (!(a = find_account(cfg, cfg->default_account)))
			return fail(l, e ? e->line : 0,
			    "[%s] account names '%s', but "
			    "there is no [%s] section",
			    GLOBAL_SECTION, cfg->default_account,
			    cfg->default_account);
		/* the section's own spelling, as config_account() shows it */
		set_string(&cfg->default_account, a->name);
	}
	return 0;
}

static void
loader_release(struct loader *l)
{
	for (size_t i = 0; i < l->nsects; i++) {
		struct sect *s = &l->sects[i];

		for (size_t j = 0; j < s->nents; j++)
			free_secret(s->ents[j].value);
		free(s->ents);
		free(s->name);
	}
	free(l->sects);
	free_wiped(l->text, l->len);
	if (l->ini) {
		/* iniparser frees without wiping; its values hold secrets */
		for (ssize_t i = 0; i < l->ini->size; i++)
			if (l->ini->val[i])
				explicit_bzero(
				    l->ini->val[i], strlen(l->ini->val[i]));
		iniparser_freedict(l->ini);
	}
	explicit_bzero(ini_msg, sizeof(ini_msg));
}

/* ---- the API ------------------------------------------------------------ */

int
config_load(const char *path, struct config *cfg, char **err)
{
	struct loader l;
	int rc;

	memset(&l, 0, sizeof(l));
	l.path = path;
	l.cfg = cfg;
	*err = NULL;
	cfg->path = xstrdup(path);
	rc = read_text(&l);
	if (!rc)
		rc = scan(&l);
	if (!rc)
		rc = check_secret_mode(&l);
	if (!rc)
		rc = load_ini(&l);
	if (!rc)
		rc = apply_all(&l);
	loader_release(&l);
	if (rc) {
		config_release(cfg);
		*err = l.err ? l.err : xasprintf("%s: cannot load", path);
		return EX_CONFIG;
	}
	free(l.err);
	return 0;
}

const struct account *
config_account(const struct config *cfg, const char *name, char **err)
{
	const char *path = cfg->path ? cfg->path : "(no config)";
	const struct account *a;

	if (!name)
		name = cfg->default_account;
	if (name) {
		if ((a = find_account(cfg, name)))
			return a;
		if (err)
			*err = xasprintf("%s: no account '%s'", path, name);
		return NULL;
	}
	if (cfg->naccounts == 1)
		return &cfg->accounts[0];
	if (err && cfg->naccounts == 0)
		*err = xasprintf("%s: no account: add a section such as "
		                 "[relay] with host = ...",
		    path);
	else if (err)
		*err = xasprintf("%s: several accounts and no default: set "
		                 "'account' in [%s]",
		    path, GLOBAL_SECTION);
	return NULL;
}

/* The first of a's match_from patterns that matches sender, or NULL. */
static const char *
matching_pattern(const struct account *a, const char *sender)
{
	for (size_t i = 0; i < a->match_from.n; i++)
		if (!fnmatch(a->match_from.v[i], sender, FNM_CASEFOLD))
			return a->match_from.v[i];
	return NULL;
}

const struct account *
config_account_for(const struct config *cfg, const char *sender,
    const char **pattern, char **err)
{
	const char *path = cfg->path ? cfg->path : "(no config)";
	int patterns = 0;

	*pattern = NULL;
	for (size_t i = 0; i < cfg->naccounts; i++) {
		const struct account *a = &cfg->accounts[i];

		patterns |= a->match_from.n > 0;
		/* a bounce (the null sender) belongs to no one in particular */
		if (sender && *sender &&
		    (*pattern = matching_pattern(a, sender)))
			return a;
	}
	/* without match_from, config_account() says best what is missing */
	if (!patterns || cfg->default_account || cfg->naccounts == 1)
		return config_account(cfg, NULL, err);
	if (!err)
		return NULL;
	if (!sender)
		*err = xasprintf("%s: no account for a message without -f: "
		                 "match_from needs a sender and no default is "
		                 "set ('account' in [%s])",
		    path, GLOBAL_SECTION);
	else if (!*sender)
		*err = xasprintf("%s: no account for the null sender: "
		                 "match_from does not apply to it and no "
		                 "default is set ('account' in [%s])",
		    path, GLOBAL_SECTION);
	else
		*err = xasprintf("%s: no account for sender '%s': none matches "
		                 "and no default is set ('account' in [%s])",
		    path, sender, GLOBAL_SECTION);
	return NULL;
}

char *
account_sasl_user(const struct account *acct)
{
	if (!acct->username)
		return NULL;
	if (!acct->mail_type)
		return xstrdup(acct->username);
	return xasprintf("%s#%s", acct->username, acct->mail_type);
}

void
config_release(struct config *cfg)
{
	for (size_t i = 0; i < cfg->naccounts; i++) {
		struct account *a = &cfg->accounts[i];

		free(a->name);
		release_values(S_ACCOUNT, a);
		if (a->fetched) {
			free_secret(a->fetched->password);
			free(a->fetched->err);
			free(a->fetched);
		}
	}
	free(cfg->accounts);
	free(cfg->path);
	release_values(S_GLOBAL, cfg);
	memset(cfg, 0, sizeof(*cfg));
}
