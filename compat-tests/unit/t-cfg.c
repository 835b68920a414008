/*
 * t-cfg.c - unit tests for the mailshim.ini loader (cfg/cfg.c, cfg/keys.c)
 * and for account_password() (cfg/secret.c), which runs password_command.
 *
 * Each case writes an ini file into a private mkdtemp directory, loads it
 * and checks either one value or the exact error message; the messages
 * are the product's interface, so they are matched in full.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cfg.h"
#include "secret.h"
#include "util.h"
#include "tap.h"

static char *tmpdir;
static struct strlist made; /* files to remove at the end */

/*
 * Write len bytes to tmpdir/name with mode 0600 (a file holding a secret
 * must not be readable by others) and return the path (owned by made).
 */
static const char *
put_bytes(const char *name, const char *text, size_t len)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	FILE *f;

	if (!(f = fopen(path, "w")) || fwrite(text, 1, len, f) != len ||
	    fclose(f) != 0 || chmod(path, 0600) == -1) {
		printf(
		    "Bail out! cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	for (size_t i = 0; i < made.n; i++)
		if (!strcmp(made.v[i], path)) {
			free(path);
			return made.v[i];
		}
	strlist_push_owned(&made, path);
	return path;
}

static const char *
put_file(const char *name, const char *text)
{
	return put_bytes(name, text, strlen(text));
}

/* ---- values ------------------------------------------------------------- */

static const char *const tls_names[] = { "starttls", "tls", "none" };
static const char *const auth_names[] = { "none", "plain", "login" };
static const char *const policy_names[] = { "keep", "envelope", "rewrite" };

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* One field of cfg or of account a, as a string (NULL for NULL). */
static char *
field(const struct config *cfg, const struct account *a, const char *f)
{
	if (!strcmp(f, "default_account"))
		return dup_or_null(cfg->default_account);
	if (!strcmp(f, "local_domain"))
		return dup_or_null(cfg->local_domain);
	if (!strcmp(f, "aliases"))
		return dup_or_null(cfg->aliases);
	if (!strcmp(f, "naccounts"))
		return xasprintf("%zu", cfg->naccounts);
	if (!strcmp(f, "queue_dir"))
		return dup_or_null(cfg->queue_dir);
	if (!strcmp(f, "on_tempfail"))
		return xasprintf("%d", (int)cfg->on_tempfail);
	if (!strcmp(f, "delivery"))
		return xasprintf("%d", (int)cfg->delivery);
	if (!strcmp(f, "queue_concurrency"))
		return xasprintf("%ld", cfg->queue_concurrency);
	if (!strcmp(f, "queue_lifetime"))
		return xasprintf("%ld", cfg->queue_lifetime);
	if (!strcmp(f, "max_message_size"))
		return xasprintf("%ld", cfg->max_message_size);
	if (!strcmp(f, "syslog_facility"))
		return xasprintf("%d", cfg->syslog_facility);
	if (!strcmp(f, "logfile"))
		return dup_or_null(cfg->logfile);
	if (!strcmp(f, "name"))
		return dup_or_null(a->name);
	if (!strcmp(f, "provider"))
		return dup_or_null(a->provider);
	if (!strcmp(f, "host"))
		return dup_or_null(a->host);
	if (!strcmp(f, "port"))
		return xasprintf("%u", a->port);
	if (!strcmp(f, "tls"))
		return xstrdup(tls_names[a->tls]);
	if (!strcmp(f, "auth"))
		return xstrdup(auth_names[a->auth]);
	if (!strcmp(f, "username"))
		return dup_or_null(a->username);
	if (!strcmp(f, "password"))
		return dup_or_null(a->password);
	if (!strcmp(f, "password_file"))
		return dup_or_null(a->password_file);
	if (!strcmp(f, "password_command")) {
		/* each word in brackets, NULL for none */
		struct buf b = BUF_INIT;

		for (size_t i = 0; i < a->password_command.n; i++)
			buf_addf(&b, "[%s]", a->password_command.v[i]);
		return b.s;
	}
	if (!strcmp(f, "mail_type"))
		return dup_or_null(a->mail_type);
	if (!strcmp(f, "sasl_user"))
		return account_sasl_user(a);
	if (!strcmp(f, "from"))
		return dup_or_null(a->from);
	if (!strcmp(f, "match_from")) {
		/* the patterns joined by '|', NULL for none */
		struct buf b = BUF_INIT;

		for (size_t i = 0; i < a->match_from.n; i++)
			buf_addf(&b, "%s%s", i ? "|" : "", a->match_from.v[i]);
		return b.s;
	}
	if (!strcmp(f, "from_policy"))
		return xstrdup(policy_names[a->from_policy]);
	if (!strcmp(f, "helo"))
		return dup_or_null(a->helo);
	if (!strcmp(f, "ca_file"))
		return dup_or_null(a->ca_file);
	if (!strcmp(f, "tls_verify"))
		return xasprintf("%d", a->tls_verify);
	if (!strcmp(f, "timeout"))
		return xasprintf("%ld", a->timeout);
	if (!strcmp(f, "tls_min_version"))
		return xasprintf("%d", a->tls_min_version);
	if (!strcmp(f, "tls_pin"))
		return dup_or_null(a->tls_pin);
	if (!strcmp(f, "allow_plaintext_auth"))
		return xasprintf("%d", a->allow_plaintext_auth);
	if (!strcmp(f, "line"))
		return xasprintf("%d", a->line);
	return xasprintf("(no field %s)", f);
}

#define FULL                                                                   \
	"; mailshim test configuration\n"                                      \
	"# two comment styles\n"                                               \
	"[MailShim]\n"                                                         \
	"Account = Backup\n"                                                   \
	"local_domain = example.org\n"                                         \
	"aliases = /etc/mail/aliases\n"                                        \
	"\n"                                                                   \
	"[relay]\n"                                                            \
	"host = smtp.example.com ; an inline comment is fine here\n"           \
	"port = 0587\n"                                                        \
	"tls = STARTTLS\n"                                                     \
	"auth = login\n"                                                       \
	"username = bob\n"                                                     \
	"password = \"pa#ss;word\"\n"                                          \
	"mail_type = Normal\n"                                                 \
	"from = bob@example.com\n"                                             \
	"helo = client.example.com\n"                                          \
	"ca_file = /etc/ssl/ca.pem\n"                                          \
	"tls_verify = off\n"                                                   \
	"timeout = 30\n"                                                       \
	"\n"                                                                   \
	"  [ Backup ]\n"                                                       \
	"  HOST   =   [::1]\n"                                                 \
	"TLS = tls\n"

#define MIN "[relay]\nhost = smtp.example.com\n"
/* two well-formed tls_pin values */
#define PIN1 "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ="
#define PIN2 "sha256//abc+/0123456789abc+/0123456789Zyxwvutsrqpon="
#define PIN_EXPECT                                                             \
	"expected sha256// and the base64 SHA-256 of the relay's public "      \
	"key (44 characters ending in '='), several separated by ';'"
#define NHN "[nhn]\nprovider = nhncloud\nappkey = AK\nsecretkey = SK\n"

static const struct value_case {
	const char *ini;
	const char *account; /* NULL: the default one */
	const char *field;
	const char *want;
} value_cases[] = {
	{ FULL, NULL, "default_account", "backup" },
	{ FULL, NULL, "name", "backup" },
	{ FULL, NULL, "local_domain", "example.org" },
	{ FULL, NULL, "aliases", "/etc/mail/aliases" },
	{ FULL, NULL, "naccounts", "2" },
	{ FULL, "relay", "host", "smtp.example.com" },
	{ FULL, "relay", "port", "587" },
	{ FULL, "relay", "tls", "starttls" },
	{ FULL, "relay", "auth", "login" },
	{ FULL, "relay", "username", "bob" },
	{ FULL, "relay", "password", "pa#ss;word" },
	{ FULL, "relay", "mail_type", "normal" },
	{ FULL, "relay", "sasl_user", "bob#normal" },
	{ FULL, "relay", "from", "bob@example.com" },
	{ FULL, "relay", "helo", "client.example.com" },
	{ FULL, "relay", "ca_file", "/etc/ssl/ca.pem" },
	{ FULL, "relay", "tls_verify", "0" },
	{ FULL, "relay", "timeout", "30" },
	{ FULL, "relay", "line", "8" },
	{ FULL, "RELAY", "name", "relay" },
	{ FULL, "backup", "host", "::1" },
	{ FULL, "backup", "tls", "tls" },
	{ FULL, "backup", "port", "465" },
	{ FULL, "backup", "auth", "none" },
	{ FULL, "backup", "line", "22" },
	/* the queue's keys: defaults, then each form */
	{ MIN, NULL, "queue_dir", NULL },
	{ MIN, NULL, "on_tempfail", "0" },
	{ MIN, NULL, "delivery", "0" },
	{ MIN, NULL, "queue_concurrency", "4" },
	{ MIN, NULL, "queue_lifetime", "432000" },
	{ MIN, NULL, "max_message_size", "0" },
	{ "[mailshim]\nqueue_dir = /q\non_tempfail = FAIL\n"
	  "delivery = background\nqueue_concurrency = 64\n" MIN,
	    NULL, "on_tempfail", "1" },
	{ "[mailshim]\ndelivery = queue\n" MIN, NULL, "delivery", "2" },
	{ "[mailshim]\nqueue_dir = /q\n" MIN, NULL, "queue_dir", "/q" },
	{ "[mailshim]\nqueue_lifetime = 3600\n" MIN, NULL, "queue_lifetime",
	    "3600" },
	{ "[mailshim]\nqueue_lifetime = 1m\n" MIN, NULL, "queue_lifetime",
	    "60" },
	{ "[mailshim]\nqueue_lifetime = 36h\n" MIN, NULL, "queue_lifetime",
	    "129600" },
	{ "[mailshim]\nqueue_lifetime = 365d\n" MIN, NULL, "queue_lifetime",
	    "31536000" },
	{ "[mailshim]\nmax_message_size = 512k\n" MIN, NULL, "max_message_size",
	    "524288" },
	{ "[mailshim]\nmax_message_size = 10M\n" MIN, NULL, "max_message_size",
	    "10485760" },
	{ "[mailshim]\nmax_message_size = 4G\n" MIN, NULL, "max_message_size",
	    "4294967296" },
	{ "[mailshim]\nmax_message_size = 1000\n" MIN, NULL, "max_message_size",
	    "1000" },
	/* the log: syslog's facility (LOG_MAIL is 2 << 3, LOG_LOCAL3 19 << 3;
	 * off is -1) and the file; by default mail, and no file */
	{ MIN, NULL, "syslog_facility", "16" },
	{ MIN, NULL, "logfile", NULL },
	{ "[mailshim]\nsyslog = mail\n" MIN, NULL, "syslog_facility", "16" },
	{ "[mailshim]\nsyslog = user\n" MIN, NULL, "syslog_facility", "8" },
	{ "[mailshim]\nsyslog = daemon\n" MIN, NULL, "syslog_facility", "24" },
	{ "[mailshim]\nsyslog = local0\n" MIN, NULL, "syslog_facility", "128" },
	{ "[mailshim]\nsyslog = LOCAL3\n" MIN, NULL, "syslog_facility", "152" },
	{ "[mailshim]\nsyslog = local7\n" MIN, NULL, "syslog_facility", "184" },
	{ "[mailshim]\nsyslog = off\n" MIN, NULL, "syslog_facility", "-1" },
	{ "[mailshim]\nlogfile = /var/log/mailshim.log\n" MIN, NULL, "logfile",
	    "/var/log/mailshim.log" },
	{ "[mailshim]\nlogfile = \"/var/log/mail shim.log\"\n" MIN, NULL,
	    "logfile", "/var/log/mail shim.log" },
	{ "[mailshim]\nlogfile = /var/log/m.log ; a comment\n" MIN, NULL,
	    "logfile", "/var/log/m.log" },
/* password_command: words, quotes and escapes; nothing else special */
#define PWC MIN "username = u\npassword_command = "
	{ PWC "/usr/bin/printf '%s\\n' 'se cret'\n", NULL, "password_command",
	    "[/usr/bin/printf][%s\\n][se cret]" },
	{ PWC "/bin/echo $HOME ~ * ?\n", NULL, "password_command",
	    "[/bin/echo][$HOME][~][*][?]" },
	{ PWC "\"a | b > c ; d # e && $(f) `g`\"\n", NULL, "password_command",
	    "[a][|][b][>][c][;][d][#][e][&&][$(f)][`g`]" },
	{ PWC "a\\ b c\\'d e\\\\f \\\"\n", NULL, "password_command",
	    "[a b][c'd][e\\f][\"]" },
	{ PWC "x \"a \\\"b\\\" \\\\c \\d \\$e\"\n", NULL, "password_command",
	    "[x][a \"b\" \\c \\d \\$e]" },
	{ PWC "x 'a \\\" \"b' \"c ' d\"\n", NULL, "password_command",
	    "[x][a \\\" \"b][c ' d]" },
	{ PWC "a'b c'\"d e\"f g\n", NULL, "password_command", "[ab cd ef][g]" },
	{ PWC "x '' \"\" y\n", NULL, "password_command", "[x][][][y]" },
	{ PWC "a\t b  \t c\n", NULL, "password_command", "[a][b][c]" },
	{ PWC "\"  pass   show  \"\n", NULL, "password_command",
	    "[pass][show]" },
	{ PWC "'secret-tool lookup \"mail\" relay'\n", NULL, "password_command",
	    "[secret-tool][lookup][mail][relay]" },
	{ PWC "pass show mail/relay\n", NULL, "auth", "plain" },
	{ PWC "pass show mail/relay\n", NULL, "password", NULL },
	{ MIN "username = u\npassword = p\n", NULL, "password_command", NULL },
	/* defaults */
	{ MIN, NULL, "port", "587" },
	{ MIN, NULL, "tls", "starttls" },
	{ MIN, NULL, "auth", "none" },
	{ MIN, NULL, "tls_verify", "1" },
	{ MIN, NULL, "timeout", "60" },
	{ MIN, NULL, "tls_min_version", "12" },
	{ MIN, NULL, "tls_pin", NULL },
	{ MIN, NULL, "allow_plaintext_auth", "0" },
	{ MIN "tls_min_version = 1.2\n", NULL, "tls_min_version", "12" },
	{ MIN "tls_min_version = 1.3\n", NULL, "tls_min_version", "13" },
	{ MIN "tls_pin = " PIN1 "\n", NULL, "tls_pin", PIN1 },
	{ MIN "tls_pin = \"" PIN1 ";" PIN2 "\"\n", NULL, "tls_pin",
	    PIN1 ";" PIN2 },
	{ MIN "tls = tls\ntls_pin = " PIN2 "\n", NULL, "tls_pin", PIN2 },
	{ MIN "tls = none\nusername = u\npassword = p\n"
	      "allow_plaintext_auth = yes\n",
	    NULL, "allow_plaintext_auth", "1" },
	{ MIN "tls = none\nusername = u\npassword = p\n"
	      "allow_plaintext_auth = yes\n",
	    NULL, "auth", "plain" },
	{ MIN "tls = none\nauth = login\nusername = u\npassword = p\n"
	      "allow_plaintext_auth = on\n",
	    NULL, "auth", "login" },
	/* accepted, if pointless, with TLS or without credentials */
	{ MIN "username = u\npassword = p\nallow_plaintext_auth = yes\n", NULL,
	    "allow_plaintext_auth", "1" },
	{ MIN "tls = none\nallow_plaintext_auth = no\n", NULL,
	    "allow_plaintext_auth", "0" },
	{ MIN "tls = none\nauth = none\n", NULL, "auth", "none" },
	{ MIN, NULL, "provider", NULL },
	{ MIN, NULL, "username", NULL },
	{ MIN, NULL, "sasl_user", NULL },
	{ MIN, NULL, "from", NULL },
	{ MIN, NULL, "default_account", NULL },
	{ MIN "tls = none\n", NULL, "port", "587" },
	{ MIN "username = u\npassword = p\n", NULL, "auth", "plain" },
	{ MIN "username = u\npassword = p\n", NULL, "sasl_user", "u" },
	{ MIN "port = 2525\ntls = tls\n", NULL, "port", "2525" },
	{ "[relay]\nhost = ::1\n", NULL, "host", "::1" },
	{ "[relay]\nhost = 192.0.2.7\n", NULL, "host", "192.0.2.7" },
	{ "[relay]\nhost = [2001:db8::25]\n", NULL, "host", "2001:db8::25" },
	/* booleans */
	{ MIN "tls_verify = YES\n", NULL, "tls_verify", "1" },
	{ MIN "tls_verify = true\n", NULL, "tls_verify", "1" },
	{ MIN "tls_verify = On\n", NULL, "tls_verify", "1" },
	{ MIN "tls_verify = 1\n", NULL, "tls_verify", "1" },
	{ MIN "tls_verify = no\n", NULL, "tls_verify", "0" },
	{ MIN "tls_verify = FALSE\n", NULL, "tls_verify", "0" },
	{ MIN "tls_verify = 0\n", NULL, "tls_verify", "0" },
	{ MIN "timeout = 3600\n", NULL, "timeout", "3600" },
	{ MIN "timeout = 1\n", NULL, "timeout", "1" },
	{ MIN "port = 65535\n", NULL, "port", "65535" },
	/* NHN Cloud presets, synonyms, mail_type */
	{ NHN, NULL, "provider", "nhncloud" },
	{ NHN, NULL, "host", "smtp-mail.nhncloudservice.com" },
	{ NHN, NULL, "port", "587" },
	{ NHN, NULL, "tls", "starttls" },
	{ NHN, NULL, "auth", "plain" },
	{ NHN, NULL, "username", "AK" },
	{ NHN, NULL, "password", "SK" },
	{ NHN, NULL, "sasl_user", "AK" },
	{ NHN "mail_type = AUTH\n", NULL, "sasl_user", "AK#auth" },
	{ NHN "mail_type = ad\n", NULL, "mail_type", "ad" },
	{ NHN "host = relay.example.net\nport = 2587\n", NULL, "host",
	    "relay.example.net" },
	{ NHN "host = relay.example.net\nport = 2587\n", NULL, "port", "2587" },
	{ NHN "tls = tls\n", NULL, "port", "465" },
	{ NHN "auth = login\n", NULL, "auth", "login" },
	{ "[nhn]\nPROVIDER = NHNCloud\nauth = none\n", NULL, "auth", "none" },
	/* quoting: iniparser strips the quotes */
	{ MIN "password = 'it#s;x'\nusername = \"u\"\n", NULL, "password",
	    "it#s;x" },
	{ MIN "password = \" sp ace \" ; a comment\nusername = u\n", NULL,
	    "password", " sp ace " },
	{ MIN "password = a=b\"c\nusername = u\n", NULL, "password", "a=b\"c" },
	/* CRLF line ends */
	{ "[relay]\r\nhost = crlf.example.com\r\nport = 25\r\n", NULL, "port",
	    "25" },
	{ "[relay]\r\nhost = crlf.example.com\r\nport = 25\r\n", NULL, "host",
	    "crlf.example.com" },
	/* match_from: one value, a list of globs */
	{ MIN, NULL, "match_from", NULL },
	{ MIN "match_from = *@shop.example\n", NULL, "match_from",
	    "*@shop.example" },
	{ MIN "match_from = *@a.example, news@b.example  c@d\n", NULL,
	    "match_from", "*@a.example|news@b.example|c@d" },
	{ MIN "match_from = a,b ,c\t, d\n", NULL, "match_from", "a|b|c|d" },
	{ MIN "match_from = [!x]*@[a-c].example []x]y \\*@z\n", NULL,
	    "match_from", "[!x]*@[a-c].example|[]x]y|\\*@z" },
	{ MIN "match_from = \"*@q.example, r@s\"\n", NULL, "match_from",
	    "*@q.example|r@s" },
	/* from_policy */
	{ MIN, NULL, "from_policy", "keep" },
	{ MIN "from_policy = keep\n", NULL, "from_policy", "keep" },
	{ MIN "from = a@b\nfrom_policy = Envelope\n", NULL, "from_policy",
	    "envelope" },
	{ MIN "from_policy = REWRITE\nfrom = a@b\n", NULL, "from_policy",
	    "rewrite" },
	/* several accounts with a default; names are case-insensitive */
	{ "[mailshim]\naccount = TWO\n[one]\nhost = a\n[two]\nhost = b\n", NULL,
	    "host", "b" },
	{ "[mailshim]\naccount = TWO\n[one]\nhost = a\n[two]\nhost = b\n",
	    "One", "host", "a" },
};

static void
test_values(void)
{
	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]);
	     i++) {
		const struct value_case *c = &value_cases[i];
		struct config cfg;
		const struct account *a;
		char *err = NULL, *name, *got;
		const char *path = put_file("values.ini", c->ini);

		name = xasprintf("value %zu: [%s] %s = %s", i,
		    c->account ? c->account : "(default)", c->field,
		    c->want ? c->want : "(null)");
		memset(&cfg, 0, sizeof(cfg));
		if (config_load(path, &cfg, &err) != 0) {
			ok(0, name);
			printf("#   load failed: %s\n", err);
		} else if (!(a = config_account(&cfg, c->account, &err))) {
			ok(0, name);
			printf("#   no account: %s\n", err);
		} else {
			got = field(&cfg, a, c->field);
			is_str(got, c->want, name);
			free(got);
		}
		free(err);
		free(name);
		config_release(&cfg);
	}
}

/* ---- errors ------------------------------------------------------------- */

static const struct error_case {
	const char *ini;
	const char *want; /* the message after the path */
} error_cases[] = {
	{ "[relay]\nhots = x\n", ":2: unknown key 'hots' in [relay]" },
	{ "[mailshim]\nhost = x\n[r]\nhost = y\n",
	    ":2: unknown key 'host' in [mailshim]" },
	{ "[relay]\nport = 25\n[mailshim]\naccount = relay\n",
	    ":1: [relay] needs 'host' (or 'provider')" },
	{ MIN "\n\n\n\nport = 587x\n",
	    ":7: bad value for 'port' in [relay]: "
	    "expected a number from 1 to 65535 (got '587x')" },
	{ "[mailshim]\nqueue_lifetime = 59\n" MIN,
	    ":2: bad value for 'queue_lifetime' in [mailshim]: expected a "
	    "duration such as 5d, 12h, 30m or 3600 (1 minute to 365 days) "
	    "(got '59')" },
	{ "[mailshim]\nqueue_lifetime = 366d\n" MIN,
	    ":2: bad value for 'queue_lifetime' in [mailshim]: expected a "
	    "duration such as 5d, 12h, 30m or 3600 (1 minute to 365 days) "
	    "(got '366d')" },
	{ "[mailshim]\nqueue_lifetime = 5w\n" MIN,
	    ":2: bad value for 'queue_lifetime' in [mailshim]: expected a "
	    "duration such as 5d, 12h, 30m or 3600 (1 minute to 365 days) "
	    "(got '5w')" },
	{ "[mailshim]\nqueue_lifetime = d\n" MIN,
	    ":2: bad value for 'queue_lifetime' in [mailshim]: expected a "
	    "duration such as 5d, 12h, 30m or 3600 (1 minute to 365 days) "
	    "(got 'd')" },
	{ "[mailshim]\nmax_message_size = 5G\n" MIN,
	    ":2: bad value for 'max_message_size' in [mailshim]: expected a "
	    "size such as 10M, 512k or 0 (no limit), at most 4G (got '5G')" },
	{ "[mailshim]\nmax_message_size = -1\n" MIN,
	    ":2: bad value for 'max_message_size' in [mailshim]: expected a "
	    "size such as 10M, 512k or 0 (no limit), at most 4G (got '-1')" },
	{ "[mailshim]\nsyslog = local8\n" MIN,
	    ":2: bad value for 'syslog' in [mailshim]: expected mail, user, "
	    "daemon, local0 to local7, or off (got 'local8')" },
	{ "[mailshim]\nsyslog = no\n" MIN,
	    ":2: bad value for 'syslog' in [mailshim]: expected mail, user, "
	    "daemon, local0 to local7, or off (got 'no')" },
	{ "[mailshim]\nsyslog = kern\n" MIN,
	    ":2: bad value for 'syslog' in [mailshim]: expected mail, user, "
	    "daemon, local0 to local7, or off (got 'kern')" },
	{ "[mailshim]\nsyslog =\n" MIN,
	    ":2: empty value for 'syslog' in [mailshim]" },
	{ "[mailshim]\nlogfile = mailshim.log\n" MIN,
	    ":2: bad value for 'logfile' in [mailshim]: expected an absolute "
	    "path without control characters (got 'mailshim.log')" },
	{ "[mailshim]\nlogfile = ~/mailshim.log\n" MIN,
	    ":2: bad value for 'logfile' in [mailshim]: expected an absolute "
	    "path without control characters (got '~/mailshim.log')" },
	{ "[mailshim]\nlogfile = /var/log/a\tb\n" MIN,
	    ":2: bad value for 'logfile' in [mailshim]: expected an absolute "
	    "path without control characters (got '/var/log/a\tb')" },
	{ "[relay]\nhost = a\nlogfile = /x.log\n",
	    ":3: unknown key 'logfile' in [relay]" },
	{ "[mailshim]\nqueue_concurrency = 65\n" MIN,
	    ":2: bad value for 'queue_concurrency' in [mailshim]: expected a "
	    "number from 1 to 64 (got '65')" },
	{ "[mailshim]\ndelivery = later\n" MIN,
	    ":2: bad value for 'delivery' in [mailshim]: expected direct, "
	    "background or queue (got 'later')" },
	{ MIN "port = -1\n",
	    ":3: bad value for 'port' in [relay]: "
	    "expected a number from 1 to 65535 (got '-1')" },
	{ MIN "port = 0\n",
	    ":3: bad value for 'port' in [relay]: "
	    "expected a number from 1 to 65535 (got '0')" },
	{ MIN "port = 70000\n",
	    ":3: bad value for 'port' in [relay]: "
	    "expected a number from 1 to 65535 (got '70000')" },
	{ MIN "port = 0x19\n",
	    ":3: bad value for 'port' in [relay]: "
	    "expected a number from 1 to 65535 (got '0x19')" },
	{ MIN "port = 99999999999999999999999\n",
	    ":3: bad value for 'port' "
	    "in [relay]: expected a number from 1 to 65535 "
	    "(got '99999999999999999999999')" },
	{ MIN "timeout = 0\n",
	    ":3: bad value for 'timeout' in [relay]: "
	    "expected a number of seconds from 1 to 3600 (got '0')" },
	{ MIN "timeout = 3601\n",
	    ":3: bad value for 'timeout' in [relay]: "
	    "expected a number of seconds from 1 to 3600 (got '3601')" },
	{ MIN "tls_verify = maybe\n",
	    ":3: bad value for 'tls_verify' in "
	    "[relay]: expected yes or no (got 'maybe')" },
	{ MIN "tls_verify = yess\n",
	    ":3: bad value for 'tls_verify' in "
	    "[relay]: expected yes or no (got 'yess')" },
	{ MIN "tls = ssl\n",
	    ":3: bad value for 'tls' in [relay]: "
	    "expected starttls, tls or none (got 'ssl')" },
	{ MIN "auth = cram-md5\n",
	    ":3: bad value for 'auth' in [relay]: "
	    "expected plain, login or none (got 'cram-md5')" },
	{ MIN "username = u\npassword = p\nmail_type = x\n",
	    ":5: bad value "
	    "for 'mail_type' in [relay]: expected normal, auth or ad "
	    "(got 'x')" },
	{ "[relay]\nprovider = gmail\n",
	    ":2: bad value for 'provider' in "
	    "[relay]: expected nhncloud (got 'gmail')" },
	{ "[relay]\nhost = smtp.example.com/x\n",
	    ":2: bad value for 'host' "
	    "in [relay]: expected a host name or an IP address "
	    "(got 'smtp.example.com/x')" },
	{ "[relay]\nhost = user@smtp\n",
	    ":2: bad value for 'host' in "
	    "[relay]: expected a host name or an IP address "
	    "(got 'user@smtp')" },
	{ "[relay]\nhost = a b\n",
	    ":2: bad value for 'host' in [relay]: "
	    "expected a host name or an IP address (got 'a b')" },
	{ "[relay]\nhost = \"a#b\"\n",
	    ":2: bad value for 'host' in "
	    "[relay]: expected a host name or an IP address (got 'a#b')" },
	{ "[relay]\nhost = a?b\n",
	    ":2: bad value for 'host' in [relay]: "
	    "expected a host name or an IP address (got 'a?b')" },
	{ "[relay]\nhost = [::1\n",
	    ":2: bad value for 'host' in [relay]: "
	    "expected a host name or an IP address (got '[::1')" },
	{ "[relay]\nhost = 192.0.2.300\n",
	    ":2: bad value for 'host' in "
	    "[relay]: expected a host name or an IP address "
	    "(got '192.0.2.300')" },
	{ MIN "from = <bob@example.com>\n",
	    ":3: bad value for 'from' in "
	    "[relay]: expected an address without white space, control "
	    "characters, '<' or '>' (got '<bob@example.com>')" },
	{ MIN "helo = a/b\n",
	    ":3: bad value for 'helo' in [relay]: "
	    "expected a name without white space, control characters or '/' "
	    "(got 'a/b')" },
	{ MIN "from =\n", ":3: empty value for 'from' in [relay]" },
	{ MIN "from = ; just a comment\n",
	    ":3: empty value for 'from' in [relay]" },
	{ MIN "ca_file = \"\"\n", ":3: empty value for 'ca_file' in [relay]" },
	{ MIN "port = 25\nPort = 26\n", ":4: duplicate key 'port' in [relay]" },
	{ MIN "[Relay]\nhost = b\n", ":3: duplicate section [relay]" },
	{ MIN "username = u\nappkey = a\npassword = p\n",
	    ":4: 'username' and 'appkey' both set in [relay]" },
	{ MIN "secretkey = s\nusername = u\npassword = p\n",
	    ":5: 'password' and 'secretkey' both set in [relay]" },
	{ MIN "username = u\npassword = p\npassword_file = /f\n",
	    ":5: 'password' and 'password_file' both set in [relay]" },
	{ MIN "username = u\npassword = p\npassword_command = x\n",
	    ":5: 'password' and 'password_command' both set in [relay]" },
	{ MIN "username = u\npassword_command = x\npassword = p\n",
	    ":5: 'password' and 'password_command' both set in [relay]" },
	{ MIN "username = u\nsecretkey = s\npassword_command = x\n",
	    ":5: 'secretkey' and 'password_command' both set in [relay]" },
	{ MIN "username = u\npassword_command = x\npassword_file = /f\n",
	    ":5: 'password_file' and 'password_command' both set in [relay]" },
	{ MIN "password_command = x\n",
	    ":3: 'password_command' set but no 'username' in [relay]" },
	{ MIN "auth = none\npassword_command = x\n",
	    ":4: 'password_command' set but auth = none in [relay]" },
	{ PWC "\n", ":4: empty value for 'password_command' in [relay]" },
	{ PWC "\"\"\n", ":4: empty value for 'password_command' in [relay]" },
	{ PWC "\" \t \"\n",
	    ":4: bad value for 'password_command' in [relay]: expected a "
	    "command and its arguments (got ' \t ')" },
	{ PWC "pass show 'mail\n",
	    ":4: bad value for 'password_command' in [relay]: a single quote "
	    "is not closed (got 'pass show 'mail')" },
	{ PWC "pass show \"mail\n",
	    ":4: bad value for 'password_command' in [relay]: a double quote "
	    "is not closed (got 'pass show \"mail')" },
	{ PWC "pass show \"mail\\\"\n",
	    ":4: bad value for 'password_command' in [relay]: a double quote "
	    "is not closed (got 'pass show \"mail\\\"')" },
	{ PWC "\"pass show \\\"\n",
	    ":4: bad value for 'password_command' in [relay]: a backslash "
	    "ends the command (got 'pass show \\')" },
	{ PWC "pass show mail\\\n",
	    ":4: line ends with '\\': continuation lines are not supported" },
	{ PWC "pass show mail#1\n",
	    ":4: the value of 'password_command' is cut at '#': put the value "
	    "in double quotes" },
	{ PWC "pass show a;b\n",
	    ":4: the value of 'password_command' is cut at ';': put the value "
	    "in double quotes" },
	{ PWC "pass\x01show\n",
	    ":4: bad value for 'password_command' in [relay]: expected a "
	    "command without control characters (got 'pass\x01show')" },
	{ PWC "'pass' show\n",
	    ":4: text after the closing quote of 'password_command' in "
	    "[relay]" },
	{ MIN "auth = plain\n",
	    ":1: [relay] needs 'username' for "
	    "auth = plain" },
	{ MIN "auth = login\nusername = u\n",
	    ":1: [relay] needs 'password' for auth = login" },
	{ MIN "username = u\n",
	    ":1: [relay] needs 'password' for auth = plain" },
	{ "[nhn]\nprovider = nhncloud\nappkey = AK\n",
	    ":1: [nhn] needs 'password' for auth = plain" },
	{ MIN "username = u\npassword = p\nauth = none\n",
	    ":3: 'username' set but auth = none in [relay]" },
	{ MIN "password = p\n",
	    ":3: 'password' set but no 'username' in "
	    "[relay]" },
	{ MIN "mail_type = auth\n",
	    ":3: 'mail_type' set but no 'username' "
	    "in [relay]" },
	{ MIN "tls_min_version = 1.1\n",
	    ":3: bad value for 'tls_min_version' in [relay]: "
	    "expected 1.2 or 1.3 (got '1.1')" },
	{ MIN "tls_min_version = 1.3.0\n",
	    ":3: bad value for 'tls_min_version' in [relay]: "
	    "expected 1.2 or 1.3 (got '1.3.0')" },
	{ MIN "tls_min_version = TLSv1.3\n",
	    ":3: bad value for 'tls_min_version' in [relay]: "
	    "expected 1.2 or 1.3 (got 'TLSv1.3')" },
	{ MIN "tls = none\nusername = u\npassword = p\n",
	    ":3: [relay] would send the password without TLS (tls = none): "
	    "set allow_plaintext_auth = yes to allow it" },
	{ MIN "username = u\npassword = p\nauth = login\n\ntls = none\n",
	    ":7: [relay] would send the password without TLS (tls = none): "
	    "set allow_plaintext_auth = yes to allow it" },
	{ MIN "tls = none\nusername = u\npassword = p\n"
	      "allow_plaintext_auth = no\n",
	    ":3: [relay] would send the password without TLS (tls = none): "
	    "set allow_plaintext_auth = yes to allow it" },
	{ "[nhn]\nprovider = nhncloud\nappkey = AK\nsecretkey = SK\n"
	  "tls = none\n",
	    ":5: [nhn] would send the password without TLS (tls = none): "
	    "set allow_plaintext_auth = yes to allow it" },
	{ MIN "allow_plaintext_auth = maybe\n",
	    ":3: bad value for 'allow_plaintext_auth' in [relay]: "
	    "expected yes or no (got 'maybe')" },
	{ MIN "tls = none\ntls_pin = " PIN1 "\n",
	    ":4: 'tls_pin' set but tls = none in [relay]" },
	{ MIN "tls_pin = " PIN1 ";" PIN2 "\n",
	    ":3: the value of 'tls_pin' is cut at ';': "
	    "put the value in double quotes" },
	{ MIN "tls_pin = " PIN1 "x\n",
	    ":3: bad value for 'tls_pin' in [relay]: " PIN_EXPECT " (got '" PIN1
	    "x')" },
	{ MIN "tls_pin = \"" PIN1 "; " PIN2 "\"\n",
	    ":3: bad value for 'tls_pin' in [relay]: " PIN_EXPECT " (got '" PIN1
	    "; " PIN2 "')" },
	{ MIN "tls_pin = \"" PIN1 ";\"\n",
	    ":3: bad value for 'tls_pin' in [relay]: " PIN_EXPECT " (got '" PIN1
	    ";')" },
	{ MIN
	    "tls_pin = SHA256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ=\n",
	    ":3: bad value for 'tls_pin' in [relay]: " PIN_EXPECT
	    " (got 'SHA256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ=')" },
	{ MIN "tls_pin = sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ=\n",
	    ":3: bad value for 'tls_pin' in [relay]: " PIN_EXPECT
	    " (got 'sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ=')" },
	{ MIN
	    "tls_pin = sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-Q=\n",
	    ":3: bad value for 'tls_pin' in [relay]: " PIN_EXPECT
	    " (got 'sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-Q=')" },
	{ MIN "tls_pin = sha1//AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	    ":3: bad value for 'tls_pin' in [relay]: " PIN_EXPECT
	    " (got 'sha1//AAAAAAAAAAAAAAAAAAAAAAAAAAA=')" },
	{ MIN "junk\n", ":3: syntax error" },
	{ MIN "= value\n", ":3: syntax error" },
	{ MIN "[relay\n", ":3: syntax error" },
	{ MIN "[]\n",
	    ":3: bad section name []: use letters, digits, '.', "
	    "'-' and '_'" },
	{ MIN "[a:b]\n",
	    ":3: bad section name [a:b]: use letters, digits, "
	    "'.', '-' and '_'" },
	{ "host = x\n[relay]\nhost = y\n", ":1: key 'host' outside a section" },
	{ MIN "username = u\npassword = pa#ss\n",
	    ":4: the value of "
	    "'password' is cut at '#': put the value in double quotes" },
	{ MIN "username = u\npassword = pa;ss\n",
	    ":4: the value of "
	    "'password' is cut at ';': put the value in double quotes" },
	{ NHN "[x]\nprovider = nhncloud\nappkey = a\nsecretkey = s#t\n",
	    ":8: the value of 'secretkey' is cut at '#': put the value in "
	    "double quotes" },
	{ NHN "[x]\nprovider = nhncloud\nappkey = a#auth\nsecretkey = s\n",
	    ":7: the value of 'appkey' is cut at '#': put the value in "
	    "double quotes" },
	{ MIN "from = \"bob@example.com\n",
	    ":3: the value of 'from' in "
	    "[relay] has no closing quote" },
	{ MIN "from = \"bob\"@example.com\n",
	    ":3: text after the closing "
	    "quote of 'from' in [relay]" },
	{ MIN "# a comment ending in a backslash \\\nport = 25\n",
	    ":3: line ends with '\\': continuation lines are not supported" },
	{ "\xef\xbb\xbf" MIN,
	    ":1: the file starts with a UTF-8 byte order "
	    "mark: save it without one" },
	{ MIN "account = relay\n", ":3: unknown key 'account' in [relay]" },
	{ MIN "port 25\n", ":3: syntax error" },
	{ "[mailshim]\nlocal_domain = example.org\n",
	    ": no account: add a section such as [relay] with host = ..." },
	{ "", ": no account: add a section such as [relay] with host = ..." },
	{ "[mailshim]\naccount = Relay2\n" MIN,
	    ":2: [mailshim] account "
	    "names 'Relay2', but there is no [Relay2] section" },
	{ MIN "match_from = a,,b\n",
	    ":3: bad value for 'match_from' in [relay]: expected glob "
	    "patterns such as *@example.com, separated by commas or spaces "
	    "(got 'a,,b')" },
	{ MIN "match_from = a@b,\n",
	    ":3: bad value for 'match_from' in [relay]: expected glob "
	    "patterns such as *@example.com, separated by commas or spaces "
	    "(got 'a@b,')" },
	{ MIN "match_from = , a@b\n",
	    ":3: bad value for 'match_from' in [relay]: expected glob "
	    "patterns such as *@example.com, separated by commas or spaces "
	    "(got ', a@b')" },
	{ MIN "match_from = \" , \"\n",
	    ":3: bad value for 'match_from' in [relay]: expected glob "
	    "patterns such as *@example.com, separated by commas or spaces "
	    "(got ' , ')" },
	{ MIN "match_from = *@[ab.example\n",
	    ":3: bad value for 'match_from' in [relay]: expected glob "
	    "patterns such as *@example.com, separated by commas or spaces "
	    "(got '*@[ab.example')" },
	{ MIN "match_from = a\\ b@c\n",
	    ":3: bad value for 'match_from' in [relay]: expected glob "
	    "patterns such as *@example.com, separated by commas or spaces "
	    "(got 'a\\ b@c')" },
	{ MIN "match_from = a@b\x7f\n",
	    ":3: bad value for 'match_from' in [relay]: expected text "
	    "without control characters (got 'a@b\x7f')" },
	{ MIN "match_from =\n", ":3: empty value for 'match_from' in [relay]" },
	{ MIN "match_from = a@b\nmatch_from = c@d\n",
	    ":4: duplicate key 'match_from' in [relay]" },
	{ "[mailshim]\nmatch_from = a@b\n" MIN,
	    ":2: unknown key 'match_from' in [mailshim]" },
	{ MIN "from_policy = force\n",
	    ":3: bad value for 'from_policy' in [relay]: expected keep, "
	    "envelope or rewrite (got 'force')" },
	{ MIN "\nfrom_policy = rewrite\n",
	    ":4: [relay] needs 'from' for from_policy = rewrite" },
	{ MIN "from_policy = envelope\n",
	    ":3: [relay] needs 'from' for from_policy = envelope" },
	{ "[mailshim]\naccount = mailshim\n" MIN,
	    ":2: [mailshim] account "
	    "names 'mailshim', but there is no [mailshim] section" },
};

/* Load path, expecting EX_CONFIG and exactly want; cfg must come back empty. */
static void
expect_error(const char *path, const char *want, const char *name)
{
	struct config cfg;
	char *err = NULL;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	rc = config_load(path, &cfg, &err);
	if (!tap_is_int(rc, EX_CONFIG, name))
		printf("#   (%s)\n", err ? err : "no message");
	else
		is_str(err, want, name);
	if (cfg.accounts || cfg.naccounts || cfg.path || cfg.default_account)
		ok(0, "config left half loaded after an error");
	config_release(&cfg); /* and again: must stay safe */
	free(err);
}

static void
test_errors(void)
{
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]);
	     i++) {
		const struct error_case *c = &error_cases[i];
		const char *path = put_file("errors.ini", c->ini);
		char *want = xasprintf("%s%s", path, c->want);
		char *name = xasprintf("error %zu:%s", i, c->want);

		expect_error(path, want, name);
		free(name);
		free(want);
	}
}

static void
test_long_and_odd_lines(void)
{
	struct buf b = BUF_INIT;
	const char *path;
	char *want;
	static const char nul[] = "[relay]\nhost = a\0b\n";

	buf_addstr(&b, MIN "; ");
	for (int i = 0; i < 1500; i++)
		buf_addch(&b, 'x');
	buf_addstr(&b, "\nport = 25\n");
	path = put_file("long.ini", b.s);
	want = xasprintf("%s:3: line too long", path);
	expect_error(path, want, "a 1500-byte line");
	free(want);
	buf_release(&b);

	/* 1000 bytes is still fine, and iniparser reads it */
	buf_addstr(&b, MIN "from = ");
	for (int i = 0; i < 1000 - 7; i++)
		buf_addch(&b, 'f');
	buf_addstr(&b, "\n");
	path = put_file("long.ini", b.s);
	{
		struct config cfg;
		char *err = NULL;

		memset(&cfg, 0, sizeof(cfg));
		is_int(config_load(path, &cfg, &err), 0, "a 1000-byte line");
		ok(cfg.naccounts == 1 && cfg.accounts[0].from &&
		        strlen(cfg.accounts[0].from) == 993,
		    "a 1000-byte value read whole");
		if (err)
			printf("#   %s\n", err);
		free(err);
		config_release(&cfg);
	}
	buf_release(&b);

	path = put_bytes("nul.ini", nul, sizeof(nul) - 1);
	want = xasprintf("%s:2: syntax error", path);
	expect_error(path, want, "a NUL byte");
	free(want);
}

/* A secret in a broken file must not show up in the message. */
static void
test_secret_never_shown(void)
{
	static const char *const cases[] = {
		MIN "username = u\npassword = S3cr3t!\nport = 587x\n",
		MIN "username = u\npassword = S3cr3t!#tail\n",
		MIN "username = u\npassword = \"S3cr3t!\n",
		MIN "username = u\npassword = \"S3cr3t!\" junk\n",
		MIN "username = u\npassword S3cr3t!\n",
		MIN "username = u\npassword S3cr3t!=x\n",
		MIN "username = u\npasswrod = S3cr3t!\n",
		MIN "password = S3cr3t!\n",
		MIN "username = u\npassword = S3cr3t!\nauth = none\n",
		MIN "password = S3cr3t!\nsecretkey = S3cr3t!\n",
		MIN "secretkey = S3cr3t!\npassword = S3cr3t!\n",
		MIN "username = u\npassword = S3cr3t!\\\n",
		"[relay]\nusername = u\npassword = S3cr3t!\n",
		("password = S3cr3t!\n" MIN),
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char *err = NULL, *name;
		const char *path = put_file("secret.ini", cases[i]);
		int rc;

		memset(&cfg, 0, sizeof(cfg));
		rc = config_load(path, &cfg, &err);
		name = xasprintf("secret case %zu fails without the secret", i);
		if (!ok(rc == EX_CONFIG && err && !strstr(err, "S3cr3t"), name))
			printf("#   %s\n", err ? err : "(no message)");
		free(name);
		free(err);
		config_release(&cfg);
	}
}

/* put_file() with another mode */
static const char *
put_mode(const char *name, const char *text, mode_t mode)
{
	const char *path = put_file(name, text);

	if (chmod(path, mode) == -1) {
		printf("Bail out! chmod %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return path;
}

/* Load path and expect success; name the case. */
static void
expect_load(const char *path, const char *name)
{
	struct config cfg;
	char *err = NULL;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	rc = config_load(path, &cfg, &err);
	if (!tap_is_int(rc, 0, name))
		printf("#   (%s)\n", err ? err : "no message");
	config_release(&cfg);
	free(err);
}

/* A file that holds a secret may be read by its group, not by others. */
static void
test_secret_mode(void)
{
	static const char pass[] = MIN "username = u\npassword = p\n";
	const char *path, *pw;
	char *ini, *want;

	path = put_mode("mode.ini", pass, 0600);
	expect_load(path, "secret mode: 0600 accepted");
	path = put_mode("mode.ini", pass, 0640);
	expect_load(path, "secret mode: 0640 accepted");
	path = put_mode("mode.ini", pass, 0644);
	want = xasprintf("%s: holds a secret and is readable by others: "
	                 "run chmod o-r %s",
	    path, path);
	expect_error(path, want, "secret mode: password at 0644 refused");
	free(want);
	path = put_mode("mode.ini", pass, 0604);
	want = xasprintf("%s: holds a secret and is readable by others: "
	                 "run chmod o-r %s",
	    path, path);
	expect_error(path, want, "secret mode: password at 0604 refused");
	free(want);
	path = put_mode("mode.ini", NHN, 0644);
	want = xasprintf("%s: holds a secret and is readable by others: "
	                 "run chmod o-r %s",
	    path, path);
	expect_error(path, want, "secret mode: secretkey at 0644 refused");
	free(want);
	path = put_mode("mode.ini", MIN "port = 25\n", 0644);
	expect_load(path, "secret mode: no secret at 0644 accepted");

	/* password_file: the secret is in that file, not in the config */
	pw = put_mode("mode-pw", "s3cret\n", 0640);
	ini = xasprintf(MIN "username = u\npassword_file = %s\n", pw);
	path = put_mode("mode-pw.ini", ini, 0644);
	free(ini);
	expect_load(path, "secret mode: password_file 0640, config 0644");
	pw = put_mode("mode-pw", "s3cret\n", 0644);
	want = xasprintf("%s: holds a secret and is readable by others: "
	                 "run chmod o-r %s",
	    pw, pw);
	expect_error(path, want, "secret mode: password_file at 0644 refused");
	free(want);
}

static void
test_password_file(void)
{
	const char *pw, *empty, *path;
	char *ini, *want, *missing;
	struct config cfg;
	char *err = NULL;

	pw = put_file("pw", "s3cret\r\nsecond line\n");
	ini = xasprintf(MIN "username = u\npassword_file = %s\n", pw);
	path = put_file("pwfile.ini", ini);
	free(ini);
	memset(&cfg, 0, sizeof(cfg));
	is_int(config_load(path, &cfg, &err), 0, "password_file loads");
	if (cfg.naccounts == 1) {
		is_str(cfg.accounts[0].password, "s3cret",
		    "password_file: the first line, without CR LF");
		is_str(cfg.accounts[0].password_file, pw,
		    "password_file: path kept");
		is_int(cfg.accounts[0].auth, AUTH_PLAIN,
		    "password_file: auth plain");
	} else
		ok(0, "password_file: no account");
	free(err);
	err = NULL;
	config_release(&cfg);

	pw = put_file("pw2", "no-newline");
	ini = xasprintf("[nhn]\nprovider = nhncloud\nappkey = a\n"
	                "password_file = %s\n",
	    pw);
	path = put_file("pwfile.ini", ini);
	free(ini);
	memset(&cfg, 0, sizeof(cfg));
	is_int(config_load(path, &cfg, &err), 0,
	    "password_file without a newline");
	is_str(cfg.naccounts ? cfg.accounts[0].password : NULL, "no-newline",
	    "password_file without a newline: read whole");
	free(err);
	err = NULL;
	config_release(&cfg);

	empty = put_file("pw-empty", "");
	ini = xasprintf(MIN "username = u\npassword_file = %s\n", empty);
	path = put_file("pwfile.ini", ini);
	free(ini);
	want = xasprintf("%s:4: password_file '%s' is empty", path, empty);
	expect_error(path, want, "password_file: empty file");
	free(want);

	empty = put_file("pw-blank", "\nsecond-line-is-not-used\n");
	ini = xasprintf(MIN "username = u\npassword_file = %s\n", empty);
	path = put_file("pwfile.ini", ini);
	free(ini);
	want = xasprintf("%s:4: password_file '%s' is empty", path, empty);
	expect_error(path, want, "password_file: empty first line");
	free(want);

	missing = xasprintf("%s/no-such-pw", tmpdir);
	ini = xasprintf(MIN "username = u\npassword_file = %s\n", missing);
	path = put_file("pwfile.ini", ini);
	free(ini);
	want = xasprintf("%s:4: cannot read password_file '%s': %s", path,
	    missing, strerror(ENOENT));
	expect_error(path, want, "password_file: missing file");
	free(want);

	ini = xasprintf(MIN "username = u\npassword_file = %s\n", tmpdir);
	path = put_file("pwfile.ini", ini);
	free(ini);
	want = xasprintf("%s:4: cannot read password_file '%s': %s", path,
	    tmpdir, strerror(EISDIR));
	expect_error(path, want, "password_file: a directory");
	free(want);
	free(missing);
}

/*
 * Load ini, with every @ in it replaced by tmpdir, and return its only
 * account in cfg, or NULL after a failed test.
 */
static const struct account *
load_account(struct config *cfg, const char *ini, const char *name)
{
	struct buf b = BUF_INIT;
	const char *path;
	char *err = NULL;

	for (const char *p = ini; *p; p++)
		if (*p == '@')
			buf_addstr(&b, tmpdir);
		else
			buf_addch(&b, *p);
	path = put_file("pwcmd.ini", b.s);
	buf_release(&b);
	memset(cfg, 0, sizeof(*cfg));
	if (config_load(path, cfg, &err) || cfg->naccounts != 1) {
		ok(0, name);
		printf("#   load failed: %s\n", err ? err : "no account");
		free(err);
		return NULL;
	}
	return &cfg->accounts[0];
}

/* account_password() for ini: 0 and the password, or the error */
static void
expect_password(
    const char *ini, int want_rc, const char *want, const char *name)
{
	struct config cfg;
	const struct account *a = load_account(&cfg, ini, name);
	const char *password = NULL;
	char *err = NULL;
	int rc;

	if (!a)
		return;
	rc = account_password(a, &password, &err);
	if (is_int(rc, want_rc, name))
		is_str(rc ? err : password, want, name);
	else
		printf("#   %s\n", rc ? err : "(a password)");
	free(err);
	config_release(&cfg);
}

static int
lines_in(const char *file)
{
	FILE *f = fopen(file, "r");
	int c, n = 0;

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

#define ACCT "[relay]\nhost = a\nusername = u\ntimeout = 5\n"

static void
test_password_command(void)
{
	struct config cfg;
	const struct account *a;
	const char *password = NULL, *again = NULL;
	char *err = NULL, *err2 = NULL, *file, *want;
	struct buf b = BUF_INIT;

	/* loading never runs it; asking for the password does, once */
	file = xasprintf("%s/ran", tmpdir);
	a = load_account(&cfg,
	    ACCT
	    "password_command = \"/bin/sh -c 'echo x >> @/ran; echo pw'\"\n",
	    "password_command: loads");
	if (a) {
		is_int(access(file, F_OK), -1, "loading does not run it");
		is_int(account_password(a, &password, &err), 0,
		    "asked for: it runs");
		is_str(password, "pw", "asked for: its first line");
		is_int(lines_in(file), 1, "asked for: it ran (the control)");
		is_int(account_password(a, &again, &err), 0, "asked again");
		ok(again == password, "asked again: the same password");
		is_int(lines_in(file), 1, "asked again: it did not run again");
		config_release(&cfg);
	}
	unlink(file);

	/* a failure is kept too */
	a = load_account(&cfg,
	    ACCT
	    "password_command = \"/bin/sh -c 'echo x >> @/ran; exit 3'\"\n",
	    "failing password_command: loads");
	if (a) {
		is_int(account_password(a, &password, &err), EX_CONFIG,
		    "failing: EX_CONFIG");
		is_str(err,
		    "password_command for [relay]: exited with status 3",
		    "failing: the message");
		is_int(account_password(a, &password, &err2), EX_CONFIG,
		    "failing, asked again: EX_CONFIG");
		is_str(err2, err, "failing, asked again: the same message");
		is_int(lines_in(file), 1, "failing, asked again: ran once");
		config_release(&cfg);
	}
	free(err);
	free(err2);
	unlink(file);
	free(file);

	/* what is taken of the output */
	expect_password(ACCT "password_command = printf 'pw\\r\\nmore\\n'\n", 0,
	    "pw", "CR LF: the CR goes");
	expect_password(ACCT "password_command = printf 'pw\\r\\r\\n'\n", 0,
	    "pw\r", "CR CR LF: only one CR goes");
	expect_password(ACCT "password_command = printf 'p w'\n", 0, "p w",
	    "no line ending: all of it");
	expect_password(ACCT "password_command = printf ' pw \\n'\n", 0, " pw ",
	    "spaces are kept");
	expect_password(ACCT "password_command = printf 'pw\\nNUL\\0\\n'\n", 0,
	    "pw", "a NUL after the first line does not matter");
	expect_password(ACCT "password_command = \"/bin/sh -c 'seq 100000; "
	                     "echo done >&2' -\"\n",
	    0, "1", "much more output: read to its end, no SIGPIPE");
	expect_password(ACCT "password_command = printf '\\r\\nx\\n'\n",
	    EX_CONFIG, "password_command for [relay]: printed no password",
	    "an empty first line");
	expect_password(ACCT "password_command = printf 'p\\0w\\n'\n",
	    EX_CONFIG, "password_command for [relay]: printed a NUL byte",
	    "a NUL in the first line");

	/* MAX_SECRET bytes, with or without CR LF, and one more */
	for (int i = 0; i < MAX_SECRET; i++)
		buf_addch(&b, '0');
	expect_password(ACCT "password_command = printf '%04096d\\r\\n' 0\n", 0,
	    b.s, "4096 bytes and CR LF: taken");
	expect_password(ACCT "password_command = printf %04096d 0\n", 0, b.s,
	    "4096 bytes, no line ending: taken");
	want = xasprintf("password_command for [relay]: printed a first line "
	                 "longer than %d bytes",
	    MAX_SECRET);
	expect_password(ACCT "password_command = printf '%04097d\\n' 0\n",
	    EX_CONFIG, want, "4097 bytes: too long");
	expect_password(ACCT "password_command = printf %04097d 0\n", EX_CONFIG,
	    want, "4097 bytes, no line ending: too long");
	expect_password(ACCT "password_command = head -c 100000 /dev/zero\n",
	    EX_CONFIG, want, "no line ending for 100000 bytes: too long");
	free(want);
	buf_release(&b);

	/* the command is no secret: the file may be readable by others */
	{
		const char *path = put_file(
		    "pwcmd.ini", ACCT "password_command = pass show relay\n");

		memset(&cfg, 0, sizeof(cfg));
		chmod(path, 0644);
		is_int(config_load(path, &cfg, &err), 0,
		    "password_command: a config at 0644 loads");
		if (err)
			printf("#   %s\n", err);
		free(err);
		err = NULL;
		config_release(&cfg);
	}

	/* without password_command: the config's own password */
	expect_password(ACCT "password = s3cret\n", 0, "s3cret",
	    "password: as the config gives it");
}

static void
test_unreadable(void)
{
	char *missing = xasprintf("%s/missing.ini", tmpdir);
	char *want;

	want = xasprintf(
	    "cannot read config '%s': %s", missing, strerror(ENOENT));
	expect_error(missing, want, "missing file");
	free(want);
	want = xasprintf(
	    "cannot read config '%s': %s", tmpdir, strerror(EISDIR));
	expect_error(tmpdir, want, "a directory");
	free(want);
	free(missing);
}

static void
test_config_account(void)
{
	struct config cfg;
	const struct account *a;
	char *err = NULL, *want;
	const char *path;

	path = put_file("accounts.ini", "[one]\nhost = a\n[two]\nhost = b\n");
	memset(&cfg, 0, sizeof(cfg));
	is_int(config_load(path, &cfg, &err), 0, "two accounts load");
	a = config_account(&cfg, NULL, &err);
	ok(a == NULL, "two accounts, no default: none chosen");
	want = xasprintf("%s: several accounts and no default: set 'account' "
	                 "in [mailshim]",
	    path);
	is_str(err, want, "two accounts, no default: message");
	free(want);
	free(err);
	err = NULL;
	a = config_account(&cfg, "TWO", &err);
	is_str(a ? a->host : NULL, "b", "account by name, any case");
	a = config_account(&cfg, "three", &err);
	ok(a == NULL, "unknown account");
	want = xasprintf("%s: no account 'three'", path);
	is_str(err, want, "unknown account: message");
	free(want);
	free(err);
	err = NULL;
	a = config_account(&cfg, "mailshim", &err);
	ok(a == NULL, "[mailshim] is not an account");
	free(err);
	err = NULL;
	config_release(&cfg);

	path = put_file("accounts.ini", "[only]\nhost = a\n");
	memset(&cfg, 0, sizeof(cfg));
	is_int(config_load(path, &cfg, &err), 0, "one account loads");
	a = config_account(&cfg, NULL, &err);
	is_str(a ? a->name : NULL, "only", "the only account is the default");
	config_release(&cfg);
	free(err);

	/* a released (or never loaded) config answers, without crashing */
	err = NULL;
	a = config_account(&cfg, NULL, &err);
	ok(a == NULL && err != NULL, "empty config: no account");
	free(err);
}

/* Which account config_account_for() picks for a sender, and why. */
static void
test_account_for(void)
{
	static const char two[] =
	    "[mailshim]\naccount = Normal\n"
	    "[normal]\nhost = a\nmatch_from = *@shop.example, promo@*\n"
	    "[ad]\nhost = b\nmatch_from = *@ad.shop.example promo@*\n"
	    "[plain]\nhost = c\n";
	static const struct {
		const char *sender;  /* NULL: no -f */
		const char *account; /* the one chosen */
		const char *pattern; /* what matched, NULL for the default */
	} cases[] = {
		{ "news@ad.shop.example", "ad", "*@ad.shop.example" },
		{ "x@shop.example", "normal", "*@shop.example" },
		{ "NEWS@AD.Shop.EXAMPLE", "ad", "*@ad.shop.example" },
		/* both match: the first in file order */
		{ "promo@ad.shop.example", "normal", "promo@*" },
		{ "promo@elsewhere.example", "normal", "promo@*" },
		{ "x@shop.example.evil", "normal", NULL },
		{ "x@other.example", "normal", NULL },
		{ "", "normal", NULL },
		{ NULL, "normal", NULL },
	};
	struct config cfg;
	const struct account *a;
	const char *path, *pattern;
	char *err = NULL, *want;

	path = put_file("for.ini", two);
	memset(&cfg, 0, sizeof(cfg));
	is_int(config_load(path, &cfg, &err), 0, "match_from: three accounts");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *name = xasprintf("account for '%s'",
		    cases[i].sender ? cases[i].sender : "(no -f)");

		pattern = "unset";
		a = config_account_for(&cfg, cases[i].sender, &pattern, &err);
		is_str(a ? a->name : err, cases[i].account, name);
		is_str(pattern, cases[i].pattern, name);
		free(name);
	}
	config_release(&cfg);

	/* no default: a sender must match */
	path = put_file("for.ini",
	    "[normal]\nhost = a\nmatch_from = *@shop.example\n"
	    "[ad]\nhost = b\nmatch_from = *@ad.shop.example\n");
	memset(&cfg, 0, sizeof(cfg));
	is_int(config_load(path, &cfg, &err), 0, "match_from, no default");
	a = config_account_for(&cfg, "n@ad.shop.example", &pattern, &err);
	is_str(a ? a->name : NULL, "ad", "no default: a match still works");
	a = config_account_for(&cfg, "x@y.example", &pattern, &err);
	want = xasprintf("%s: no account for sender 'x@y.example': none "
	                 "matches and no default is set ('account' in "
	                 "[mailshim])",
	    path);
	ok(a == NULL, "no default, no match: no account");
	is_str(err, want, "no default, no match: message");
	free(want);
	free(err);
	a = config_account_for(&cfg, "", &pattern, &err);
	want = xasprintf("%s: no account for the null sender: match_from "
	                 "does not apply to it and no default is set "
	                 "('account' in [mailshim])",
	    path);
	is_str(a ? a->name : err, want, "no default, null sender: message");
	free(want);
	free(err);
	a = config_account_for(&cfg, NULL, &pattern, &err);
	want = xasprintf("%s: no account for a message without -f: "
	                 "match_from needs a sender and no default is set "
	                 "('account' in [mailshim])",
	    path);
	is_str(a ? a->name : err, want, "no default, no -f: message");
	free(want);
	free(err);
	err = NULL;
	config_release(&cfg);

	/* without match_from anywhere, the old message still says it best */
	path = put_file("for.ini", "[one]\nhost = a\n[two]\nhost = b\n");
	memset(&cfg, 0, sizeof(cfg));
	is_int(config_load(path, &cfg, &err), 0, "two accounts, no match_from");
	a = config_account_for(&cfg, "x@y.example", &pattern, &err);
	want = xasprintf("%s: several accounts and no default: set 'account' "
	                 "in [mailshim]",
	    path);
	is_str(a ? a->name : err, want, "no match_from, no default: message");
	free(want);
	free(err);
	err = NULL;
	config_release(&cfg);

	/* the only account is the default, whatever its match_from */
	path = put_file("for.ini", "[only]\nhost = a\nmatch_from = *@x\n");
	memset(&cfg, 0, sizeof(cfg));
	is_int(config_load(path, &cfg, &err), 0, "one account with match_from");
	a = config_account_for(&cfg, "a@y", &pattern, &err);
	is_str(a ? a->name : err, "only", "the only account, no match: it");
	ok(pattern == NULL, "the only account, no match: no pattern");
	a = config_account_for(&cfg, "a@x", &pattern, &err);
	is_str(pattern, "*@x", "the only account, a match: the pattern");
	config_release(&cfg);
	free(err);
}

int
main(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl;

	tmpl = xasprintf("%s/t-cfg.XXXXXX", base && *base ? base : "/tmp");
	if (!(tmpdir = mkdtemp(tmpl))) {
		printf("Bail out! mkdtemp %s: %s\n", tmpl, strerror(errno));
		return 1;
	}

	test_values();
	test_errors();
	test_long_and_odd_lines();
	test_secret_never_shown();
	test_password_file();
	test_password_command();
	test_secret_mode();
	test_unreadable();
	test_config_account();
	test_account_for();

	for (size_t i = 0; i < made.n; i++)
		unlink(made.v[i]);
	strlist_release(&made);
	if (rmdir(tmpdir) == -1)
		printf("# cannot remove %s: %s\n", tmpdir, strerror(errno));
	free(tmpdir);
	return done_testing();
}
