/*
 * keys.c - the vocabulary of mailshim.ini (see keys.h): the key table, the
 * value parsers and what they accept, the keys that conflict, the provider
 * presets, and the defaults.
 *
 * Nothing here reads the file: cfg.c hands each value, once read and
 * cross-checked, to the parser in its key's row.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "cfg.h"
#include "keys.h"
#include "util.h"

static parse_fn p_string, p_secret, p_name, p_from, p_host, p_port, p_tls,
    p_auth, p_bool, p_timeout, p_mail_type, p_provider, p_match_from,
    p_from_policy, p_tls_min_version, p_tls_pin, p_on_tempfail, p_delivery,
    p_concurrency, p_duration, p_size, p_command, p_syslog, p_logfile;

#define A(f) offsetof(struct account, f)
#define C(f) offsetof(struct config, f)

static const struct keydef keys[] = {
	{ "account", S_GLOBAL, 0, p_string, C(default_account) },
	{ "local_domain", S_GLOBAL, 0, p_name, C(local_domain) },
	{ "aliases", S_GLOBAL, 0, p_string, C(aliases) },
	{ "queue_dir", S_GLOBAL, 0, p_string, C(queue_dir) },
	{ "on_tempfail", S_GLOBAL, 0, p_on_tempfail, C(on_tempfail) },
	{ "delivery", S_GLOBAL, 0, p_delivery, C(delivery) },
	{ "queue_concurrency", S_GLOBAL, 0, p_concurrency,
	    C(queue_concurrency) },
	{ "queue_lifetime", S_GLOBAL, 0, p_duration, C(queue_lifetime) },
	{ "max_message_size", S_GLOBAL, 0, p_size, C(max_message_size) },
	{ "syslog", S_GLOBAL, 0, p_syslog, C(syslog_facility) },
	{ "logfile", S_GLOBAL, 0, p_logfile, C(logfile) },
	{ "provider", S_ACCOUNT, 0, p_provider, A(provider) },
	{ "host", S_ACCOUNT, 0, p_host, A(host) },
	{ "port", S_ACCOUNT, 0, p_port, A(port) },
	{ "tls", S_ACCOUNT, 0, p_tls, A(tls) },
	{ "auth", S_ACCOUNT, 0, p_auth, A(auth) },
	/* NHN Cloud writes "appkey#mail_type": a silent cut would lose it */
	{ "username", S_ACCOUNT, KF_NOCUT, p_string, A(username) },
	{ "appkey", S_ACCOUNT, KF_NOCUT, p_string, A(username) },
	{ "password", S_ACCOUNT, KF_SECRET, p_secret, A(password) },
	{ "secretkey", S_ACCOUNT, KF_SECRET, p_secret, A(password) },
	{ "password_file", S_ACCOUNT, 0, p_string, A(password_file) },
	/* a command is no secret, but a cut one would run something else */
	{ "password_command", S_ACCOUNT, KF_NOCUT, p_command,
	    A(password_command) },
	{ "mail_type", S_ACCOUNT, 0, p_mail_type, A(mail_type) },
	{ "from", S_ACCOUNT, 0, p_from, A(from) },
	{ "match_from", S_ACCOUNT, 0, p_match_from, A(match_from) },
	{ "from_policy", S_ACCOUNT, 0, p_from_policy, A(from_policy) },
	{ "helo", S_ACCOUNT, 0, p_name, A(helo) },
	{ "ca_file", S_ACCOUNT, 0, p_string, A(ca_file) },
	{ "tls_verify", S_ACCOUNT, 0, p_bool, A(tls_verify) },
	{ "tls_min_version", S_ACCOUNT, 0, p_tls_min_version,
	    A(tls_min_version) },
	/* several pins are separated by ';': a silent cut would lose them */
	{ "tls_pin", S_ACCOUNT, KF_NOCUT, p_tls_pin, A(tls_pin) },
	{ "allow_plaintext_auth", S_ACCOUNT, 0, p_bool,
	    A(allow_plaintext_auth) },
	{ "timeout", S_ACCOUNT, 0, p_timeout, A(timeout) },
};

/* Keys that say the same thing twice; the first name is the one shown first. */
const char *const conflicts[][2] = {
	{ "username", "appkey" },
	{ "password", "secretkey" },
	{ "password", "password_file" },
	{ "secretkey", "password_file" },
	{ "password", "password_command" },
	{ "secretkey", "password_command" },
	{ "password_file", "password_command" },
	{ NULL, NULL },
};

/*
 * Provider presets, as key/value pairs run through the same parsers, for
 * the keys the section leaves out.  There is no port preset: the port
 * follows tls (587 for starttls, 465 when tls = tls is set over the preset).
 */
static const char *const nhncloud_presets[] = { "host",
	"smtp-mail.nhncloudservice.com", "tls", "starttls", "auth", "plain",
	NULL };

static const struct provider providers[] = {
	{ "nhncloud", nhncloud_presets },
};

struct word {
	const char *name;
	int value;
};

static const struct word tls_words[] = { { "starttls", TLS_STARTTLS },
	{ "tls", TLS_IMPLICIT }, { "none", TLS_NONE }, { NULL, 0 } };
static const struct word auth_words[] = { { "plain", AUTH_PLAIN },
	{ "login", AUTH_LOGIN }, { "none", AUTH_NONE }, { NULL, 0 } };
static const struct word bool_words[] = { { "yes", 1 }, { "true", 1 },
	{ "on", 1 }, { "1", 1 }, { "no", 0 }, { "false", 0 }, { "off", 0 },
	{ "0", 0 }, { NULL, 0 } };
static const struct word mail_type_words[] = { { "normal", 0 }, { "auth", 1 },
	{ "ad", 2 }, { NULL, 0 } };
static const struct word on_tempfail_words[] = { { "queue", TEMPFAIL_QUEUE },
	{ "fail", TEMPFAIL_FAIL }, { NULL, 0 } };
static const struct word delivery_words[] = { { "direct", DELIVERY_DIRECT },
	{ "background", DELIVERY_BACKGROUND }, { "queue", DELIVERY_QUEUE },
	{ NULL, 0 } };
/* syslog = off is -1: no facility */
static const struct word syslog_words[] = { { "mail", LOG_MAIL },
	{ "user", LOG_USER }, { "daemon", LOG_DAEMON },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 }, { "off", -1 },
	{ NULL, 0 } };
static const struct word from_policy_words[] = { { "keep", FROM_KEEP },
	{ "envelope", FROM_ENVELOPE }, { "rewrite", FROM_REWRITE },
	{ NULL, 0 } };

/* ---- small helpers ------------------------------------------------------ */

static int
is_cntrl(int c)
{
	return (c >= 0 && c < 0x20) || c == 0x7f;
}

static const struct word *
pick(const struct word *w, const char *v)
{
	for (; w->name; w++)
		if (!ascii_strcasecmp(w->name, v))
			return w;
	return NULL;
}

/* Decimal only: iniparser_getint() would read "0587" as octal. */
static int
decimal(const char *v, long min, long max, long *out)
{
	long n = 0;

	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		n = n * 10 + (*v - '0');
		if (n > max)
			return -1;
	}
	if (n < min)
		return -1;
	*out = n;
	return 0;
}

static int
has_cntrl(const char *v)
{
	for (; *v; v++)
		if (is_cntrl((unsigned char)*v))
			return 1;
	return 0;
}

void
set_string(void *dst, const char *v)
{
	char **p = dst;

	free(*p);
	*p = xstrdup(v);
}

/* ---- value parsers ------------------------------------------------------ */

static const char *
p_string(const char *v, void *dst)
{
	if (has_cntrl(v))
		return "expected text without control characters";
	set_string(dst, v);
	return NULL;
}

/* A secret is taken as written: any byte iniparser can hand over is fine. */
static const char *
p_secret(const char *v, void *dst)
{
	char **p = dst;

	free_secret(*p);
	*p = xstrdup(v);
	return NULL;
}

/* a name that goes into SMTP as one word: EHLO argument, local domain */
static const char *
p_name(const char *v, void *dst)
{
	for (const char *s = v; *s; s++)
		if (is_cntrl((unsigned char)*s) || *s == ' ' || *s == '/')
			return "expected a name without white space, control "
			       "characters or '/'";
	set_string(dst, v);
	return NULL;
}

static const char *
p_from(const char *v, void *dst)
{
	for (const char *s = v; *s; s++)
		if (is_cntrl((unsigned char)*s) || *s == ' ' || *s == '<' ||
		    *s == '>')
			return "expected an address without white space, "
			       "control characters, '<' or '>'";
	set_string(dst, v);
	return NULL;
}

/*
 * A DNS name, an IPv4 address or an IPv6 literal, bare or in brackets.
 * Anything that could make the host part of a URL mean something else
 * ('/', '@', '?', '#', white space) is outside the allowed characters.
 */
static int
valid_hostname(const char *v)
{
	size_t n = strlen(v), label = 0;
	int numeric = 1;

	if (n == 0 || n > 254 || v[0] == '.' || (n == 254 && v[n - 1] != '.'))
		return 0;
	for (const char *s = v; *s; s++) {
		if (*s == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (++label > 63)
			return 0;
		if (*s >= '0' && *s <= '9')
			continue;
		numeric = 0;
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		        *s == '-' || *s == '_'))
			return 0;
	}
	if (numeric) {
		/* all digits and dots: it had better be a dotted quad */
		struct in_addr a4;
		return inet_pton(AF_INET, v, &a4) == 1;
	}
	return 1;
}

static const char *
p_host(const char *v, void *dst)
{
	static const char expect[] = "expected a host name or an IP address";
	struct in6_addr a6;
	size_t n = strlen(v);
	char *bare;

	if (v[0] == '[' || strchr(v, ':')) {
		if (v[0] == '[') {
			if (n < 3 || v[n - 1] != ']')
				return expect;
			bare = xstrndup(v + 1, n - 2);
		} else
			bare = xstrdup(v);
		if (inet_pton(AF_INET6, bare, &a6) != 1) {
			free(bare);
			return expect;
		}
		free(*(char **)dst);
		*(char **)dst = bare;
		return NULL;
	}
	if (!valid_hostname(v))
		return expect;
	set_string(dst, v);
	return NULL;
}

static const char *
p_port(const char *v, void *dst)
{
	long n;

	if (decimal(v, 1, 65535, &n) == -1)
		return "expected a number from 1 to 65535";
	*(unsigned *)dst = (unsigned)n;
	return NULL;
}

static const char *
p_timeout(const char *v, void *dst)
{
	long n;

	if (decimal(v, 1, 3600, &n) == -1)
		return "expected a number of seconds from 1 to 3600";
	*(long *)dst = n;
	return NULL;
}

static const char *
p_on_tempfail(const char *v, void *dst)
{
	const struct word *w = pick(on_tempfail_words, v);

	if (!w)
		return "expected queue or fail";
	*(enum on_tempfail *)dst = (enum on_tempfail)w->value;
	return NULL;
}

static const char *
p_delivery(const char *v, void *dst)
{
	const struct word *w = pick(delivery_words, v);

	if (!w)
		return "expected direct, background or queue";
	*(enum delivery *)dst = (enum delivery)w->value;
	return NULL;
}

static const char *
p_concurrency(const char *v, void *dst)
{
	long n;

	if (decimal(v, 1, 64, &n) == -1)
		return "expected a number from 1 to 64";
	*(long *)dst = n;
	return NULL;
}

/*
 * A decimal number, optionally followed by one of the unit letters in
 * units (mults[k] is what units[k] multiplies by), from min to max once
 * multiplied.  0, or -1 when v is not such a number.
 */
static int
with_unit(const char *v, const char *units, const long *mults, long min,
    long max, long *out)
{
	size_t n = strlen(v);
	const char *u = n ? strchr(units, v[n - 1]) : NULL;
	long mult = u ? mults[u - units] : 1, num;
	char digits[32];

	if (u)
		n--;
	if (n == 0 || n >= sizeof(digits))
		return -1;
	memcpy(digits, v, n);
	digits[n] = '\0';
	if (decimal(digits, 0, max, &num) == -1 || num > max / mult ||
	    num * mult < min)
		return -1;
	*out = num * mult;
	return 0;
}

/* A duration: a decimal number of seconds, or with a unit s, m, h or d. */
static const char *
p_duration(const char *v, void *dst)
{
	static const long mults[] = { 1, 60, 3600, 86400 };

	if (with_unit(v, "smhd", mults, 60, 365L * 86400, (long *)dst))
		return "expected a duration such as 5d, 12h, 30m or 3600 "
		       "(1 minute to 365 days)";
	return NULL;
}

/* A size in octets, or with a unit k, M or G (1024s); 0 is no limit. */
static const char *
p_size(const char *v, void *dst)
{
	static const long mults[] = { 1024L, 1024L, 1024L * 1024, 1024L * 1024,
		1024L * 1024 * 1024, 1024L * 1024 * 1024 };

	if (with_unit(
	        v, "kKmMgG", mults, 0, 4L * 1024 * 1024 * 1024, (long *)dst))
		return "expected a size such as 10M, 512k or 0 (no limit), "
		       "at most 4G";
	return NULL;
}

static const char *
p_syslog(const char *v, void *dst)
{
	const struct word *w = pick(syslog_words, v);

	if (!w)
		return "expected mail, user, daemon, local0 to local7, or off";
	*(int *)dst = w->value;
	return NULL;
}

/* The log file: an absolute path, so that it does not depend on where
 * mailshim was started. */
static const char *
p_logfile(const char *v, void *dst)
{
	if (v[0] != '/' || has_cntrl(v))
		return "expected an absolute path without control characters";
	set_string(dst, v);
	return NULL;
}

static const char *
p_bool(const char *v, void *dst)
{
	const struct word *w = pick(bool_words, v);

	if (!w)
		return "expected yes or no";
	*(int *)dst = w->value;
	return NULL;
}

static const char *
p_tls(const char *v, void *dst)
{
	const struct word *w = pick(tls_words, v);

	if (!w)
		return "expected starttls, tls or none";
	*(enum tls_mode *)dst = (enum tls_mode)w->value;
	return NULL;
}

static const char *
p_tls_min_version(const char *v, void *dst)
{
	if (!strcmp(v, "1.2"))
		*(int *)dst = 12;
	else if (!strcmp(v, "1.3"))
		*(int *)dst = 13;
	else
		return "expected 1.2 or 1.3";
	return NULL;
}

static int
is_base64(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * Public-key pins as CURLOPT_PINNEDPUBLICKEY takes them: "sha256//" and the
 * base64 of a SHA-256 digest (43 characters and '='), several separated by
 * ';' without white space.
 */
static const char *
p_tls_pin(const char *v, void *dst)
{
	static const char prefix[] = "sha256//";
	const char *p = v;

	for (;;) {
		if (strncmp(p, prefix, sizeof(prefix) - 1))
			goto bad;
		p += sizeof(prefix) - 1;
		for (int i = 0; i < 43; i++, p++)
			if (!is_base64((unsigned char)*p))
				goto bad;
		if (*p++ != '=')
			goto bad;
		if (!*p)
			break;
		if (*p++ != ';')
			goto bad;
	}
	set_string(dst, v);
	return NULL;
bad:
	return "expected sha256// and the base64 SHA-256 of the relay's "
	       "public key (44 characters ending in '='), several separated "
	       "by ';'";
}

static const char *
p_auth(const char *v, void *dst)
{
	const struct word *w = pick(auth_words, v);

	if (!w)
		return "expected plain, login or none";
	*(enum auth_mech *)dst = (enum auth_mech)w->value;
	return NULL;
}

const char *
auth_mech_name(enum auth_mech m)
{
	return m == AUTH_PLAIN ? "plain" : m == AUTH_LOGIN ? "login" : "none";
}

const char *
auth_mech_sasl(enum auth_mech m)
{
	return m == AUTH_LOGIN ? "LOGIN" : "PLAIN";
}

const char *
tls_mode_name(enum tls_mode t)
{
	return t == TLS_IMPLICIT ? "tls" : t == TLS_NONE ? "none" : "starttls";
}

static const char *
p_mail_type(const char *v, void *dst)
{
	const struct word *w = pick(mail_type_words, v);

	if (!w)
		return "expected normal, auth or ad";
	set_string(dst, w->name);
	return NULL;
}

/*
 * One glob pattern of n bytes, for fnmatch(3): a '[' must be closed and a
 * backslash must escape something.  fnmatch() would read the first literally and
 * match nothing with the second: either way a typo, never what was meant.
 */
static int
valid_glob(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\') {
			if (++i == n)
				return 0;
		} else if (p[i] == '[') {
			size_t j = i + 1;

			if (j < n && (p[j] == '!' || p[j] == '^'))
				j++;
			if (j < n && p[j] == ']')
				j++; /* a ']' first in the set is a member */
			while (j < n && p[j] != ']')
				j++;
			if (j == n)
				return 0;
			i = j;
		}
	}
	return 1;
}

/*
 * Glob patterns separated by commas and/or white space: "*@a.example,
 * news@b.example".  iniparser keeps one value per key, so the list is one
 * value; an empty element ("a,,b", a trailing comma) is a mistake.
 */
static const char *
p_match_from(const char *v, void *dst)
{
	static const char expect[] = "expected glob patterns such as "
	                             "*@example.com, separated by commas or "
	                             "spaces";
	struct strlist *l = dst, pats = STRLIST_INIT;
	int need = 1; /* at the start or after a comma: a pattern must come */

	for (const char *p = v; *p; p++)
		if (*p != '\t' && is_cntrl((unsigned char)*p))
			return "expected text without control characters";
	for (const char *p = v;;) {
		size_t n;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == ',') {
			if (need)
				goto bad;
			if (!*p)
				break;
			need = 1;
			p++;
			continue;
		}
		n = strcspn(p, ", \t");
		if (!valid_glob(p, n))
			goto bad;
		strlist_push_owned(&pats, xstrndup(p, n));
		need = 0;
		p += n;
	}
	strlist_release(l);
	*l = pats;
	return NULL;
bad:
	strlist_release(&pats);
	return expect;
}

/*
 * A command and its arguments, split into words the way a shell would
 * split a simple command, without anything else a shell does: words are
 * separated by spaces and tabs; '...' is taken as is; in "...", \" and
 * \\ stand for " and \ (a backslash before anything else stays); outside
 * quotes a backslash takes the next character as is.  $, ~, *, |, >, ;
 * and the like are plain characters.  Stores the words in a struct
 * strlist (an argv: NULL after the last).
 */
static const char *
p_command(const char *v, void *dst)
{
	struct strlist *l = dst, words = STRLIST_INIT;
	struct buf w = BUF_INIT;
	const char *why = NULL;
	int in_word = 0;

	for (const char *p = v; *p; p++)
		if (*p != '\t' && is_cntrl((unsigned char)*p))
			return "expected a command without control characters";
	for (const char *p = v;; p++) {
		if (!*p || *p == ' ' || *p == '\t') {
			if (in_word)
				strlist_push_owned(&words, buf_detach(&w));
			in_word = 0;
			if (!*p)
				break;
			continue;
		}
		in_word = 1;
		if (*p == '\'') {
			const char *end = strchr(p + 1, '\'');

			if (!end) {
				why = "a single quote is not closed";
				break;
			}
			buf_add(&w, p + 1, (size_t)(end - p - 1));
			p = end;
		} else if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				buf_addch(&w, *p);
			}
			if (!*p) {
				why = "a double quote is not closed";
				break;
			}
		} else if (*p == '\\') {
			if (!*++p) {
				why = "a backslash ends the command";
				break;
			}
			buf_addch(&w, *p);
		} else {
			buf_addch(&w, *p);
		}
	}
	buf_release(&w);
	if (!why && !words.n)
		why = "expected a command and its arguments";
	if (why) {
		strlist_release(&words);
		return why;
	}
	strlist_release(l);
	*l = words;
	return NULL;
}

static const char *
p_from_policy(const char *v, void *dst)
{
	const struct word *w = pick(from_policy_words, v);

	if (!w)
		return "expected keep, envelope or rewrite";
	*(enum from_policy *)dst = (enum from_policy)w->value;
	return NULL;
}

const char *
from_policy_name(enum from_policy p)
{
	for (const struct word *w = from_policy_words; w->name; w++)
		if (w->value == (int)p)
			return w->name;
	return "keep";
}

const struct provider *
find_provider(const char *name)
{
	for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
		if (!ascii_strcasecmp(providers[i].name, name))
			return &providers[i];
	return NULL;
}

static const char *
p_provider(const char *v, void *dst)
{
	const struct provider *p = find_provider(v);

	if (!p)
		return "expected nhncloud";
	set_string(dst, p->name);
	return NULL;
}

/*
 * Does the parser store an allocated string at dst?  A new parser that does
 * goes here, so that release_values() frees what it stores (p_match_from
 * and p_command store a struct strlist, which release_values() knows
 * about).
 */
static int
stores_string(parse_fn *parse)
{
	return parse == p_string || parse == p_secret || parse == p_name ||
	    parse == p_from || parse == p_host || parse == p_mail_type ||
	    parse == p_provider || parse == p_tls_pin || parse == p_logfile;
}

/* ---- lookups, defaults, release ----------------------------------------- */

const struct keydef *
find_key(const char *name, int scope)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((keys[i].scope & scope) && !strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

const char *
preset_value(const char *provider, const char *key)
{
	const struct provider *p;

	if (!provider || !(p = find_provider(provider)))
		return NULL;
	for (const char *const *kv = p->presets; *kv; kv += 2)
		if (!strcmp(kv[0], key))
			return kv[1];
	return NULL;
}

void
set_defaults(int scope, void *base)
{
	struct account *a = base;

	if (scope == S_GLOBAL) {
		struct config *c = base;

		/* the others default to NULL or 0 (the caller zeroes cfg) */
		c->queue_concurrency = 4;
		c->queue_lifetime = 5L * 86400;
		c->syslog_facility = LOG_MAIL;
		return;
	}
	a->tls = TLS_STARTTLS;
	a->tls_verify = 1;
	a->tls_min_version = 12;
	a->timeout = 60;
}

void
release_values(int scope, void *base)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct keydef *kd = &keys[i];
		char **p = (char **)((char *)base + kd->off);

		if ((kd->scope & scope) &&
		    (kd->parse == p_match_from || kd->parse == p_command)) {
			strlist_release((struct strlist *)p);
			continue;
		}
		if (!(kd->scope & scope) || !stores_string(kd->parse))
			continue;
		if (kd->flags & KF_SECRET)
			free_secret(*p);
		else
			free(*p);
		/* two keys may share a field: username and appkey */
		*p = NULL;
	}
}
