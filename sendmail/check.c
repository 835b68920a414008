/*
 * check.c - mailshim --check: the report of a connection to the relay
 * that sends no mail, and what to do about a failure (see check.h).
 *
 * submit.c makes the connection and says what each step showed; this
 * prints it and, for the failures an administrator meets when setting up
 * (a port for the other TLS mode, an unknown CA, a wrong password...),
 * adds one line saying which key to change.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "check.h"
#include "secret.h"
#include "submit.h"
#include "sysinfo.h"

/* Does the space-separated list have word (any case)? */
static int
has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	while (list && *list) {
		size_t k = strcspn(list, " ");
		if (k == n && !ascii_strncasecmp(list, word, n))
			return 1;
		list += k;
		list += strspn(list, " ");
	}
	return 0;
}

/* The TLS handshake was done and the certificate accepted. */
static int
tls_passed(const struct account *a, const struct submit_check *c)
{
	return a->tls != TLS_NONE && c->tls_version &&
	    c->failure != CHECK_TLS && c->failure != CHECK_VERIFY &&
	    c->failure != CHECK_PIN && c->failure != CHECK_CA_FILE;
}

/* The port answered, but not in the protocol the tls key says. */
static int
wrong_port(const struct account *a, const struct submit_check *c)
{
	if (!c->connected || c->banner)
		return 0;
	if (a->tls == TLS_IMPLICIT)
		return !c->tls_version &&
		    (c->failure == CHECK_TLS || c->failure == CHECK_TIMEOUT ||
		        c->failure == CHECK_OTHER);
	return c->failure == CHECK_TIMEOUT || c->failure == CHECK_OTHER;
}

static char *
hint_wrong_port(const struct account *a)
{
	if (a->tls == TLS_IMPLICIT)
		return xasprintf("port %u does not start with TLS: it may be a "
		                 "STARTTLS port; set tls = starttls for it, or "
		                 "port = 465 for tls = tls",
		    a->port);
	return xasprintf("port %u sent no greeting: it may expect TLS at once "
	                 "(implicit TLS); set tls = tls for it, or port = 587 "
	                 "for tls = %s",
	    a->port, tls_mode_name(a->tls));
}

static char *
hint_verify(const struct account *a, const struct submit_check *c)
{
	if (c->cert_name_ok == 0)
		return xasprintf("the relay's certificate is for %s, not %s: "
		                 "set host to a name it is for",
		    c->cert_names, a->host);
	if (c->cert_expired)
		return xstrdup("the relay's certificate is not valid now "
		               "(expired, or not yet valid): check this host's "
		               "clock, or tell the relay's operator");
	return xasprintf("the relay's certificate is not signed by a CA this "
	                 "host trusts%s%s%s: set ca_file to the certificate of "
	                 "the CA that signed it, or check that host = %s names "
	                 "the relay",
	    c->verify_error ? " (" : "", c->verify_error ? c->verify_error : "",
	    c->verify_error ? ")" : "", a->host);
}

static char *
hint_no_auth(const struct account *a, const struct submit_check *c)
{
	if (c->ehlo_auth) {
		const char *other = a->auth == AUTH_PLAIN ? "LOGIN" : "PLAIN";
		if (has_word(c->ehlo_auth, other))
			return xasprintf(
			    "the relay offers AUTH %s: set auth = %s",
			    c->ehlo_auth,
			    a->auth == AUTH_PLAIN ? "login" : "plain");
		return xasprintf(
		    "the relay offers AUTH %s only, which mailshim "
		    "does not speak: ask its operator for PLAIN or "
		    "LOGIN",
		    c->ehlo_auth);
	}
	if (a->tls == TLS_NONE && c->starttls)
		return xstrdup("the relay offers AUTH only over TLS: set "
		               "tls = starttls");
	if (c->auth_before_tls)
		return xstrdup(
		    "the relay offers AUTH only before STARTTLS, "
		    "where the password would go in clear text: "
		    "mailshim does not send it there; tell the relay's "
		    "operator");
	return xasprintf("the relay offers no AUTH on port %u: if it takes "
	                 "mail from this host without a password, set "
	                 "auth = none; else check host and port",
	    a->port);
}

static char *
hint_auth_refused(const struct account *a, const struct submit_check *c)
{
	if (c->auth_code && c->auth_code < 500)
		return xstrdup("the relay cannot check the credentials now: "
		               "try again later");
	if (a->provider && !strcmp(a->provider, "nhncloud"))
		return xasprintf(
		    "check appkey and secretkey: they are the "
		    "Email service's AppKey and SecretKey (NHN Cloud "
		    "console), and mail_type (%s) must be normal, "
		    "auth or ad",
		    a->mail_type ? a->mail_type : "not set: normal");
	return xstrdup("check username and password: the relay does not "
	               "accept them");
}

/* One line on what to change for the common failures; NULL for others. */
static char *
hint(const struct account *a, const struct submit_check *c)
{
	if (wrong_port(a, c))
		return hint_wrong_port(a);
	switch (c->failure) {
	case CHECK_RESOLVE:
		return xasprintf("host = %s does not resolve here: check the "
		                 "name, and this host's DNS",
		    a->host);
	case CHECK_CONNECT:
		return xasprintf("nothing takes connections on %s port %u: "
		                 "check host and port, and that no firewall "
		                 "blocks them",
		    a->host, a->port);
	case CHECK_TIMEOUT:
		if (!c->connected)
			return xasprintf(
			    "%s port %u does not answer: check host "
			    "and port, and that no firewall drops "
			    "the connection",
			    a->host, a->port);
		return NULL;
	case CHECK_TLS:
		if (a->tls_min_version == 13)
			return xstrdup("the relay may not offer TLS 1.3: set "
			               "tls_min_version = 1.2");
		return NULL;
	case CHECK_VERIFY:
		return hint_verify(a, c);
	case CHECK_PIN:
		if (c->cert_pin)
			return xasprintf(
			    "the relay's public key is %s: if it "
			    "changed on purpose (ask its operator), "
			    "set tls_pin to that",
			    c->cert_pin);
		return xstrdup("the relay's public key changed, or tls_pin is "
		               "wrong");
	case CHECK_CA_FILE:
		return xasprintf(
		    "ca_file = %s must be a readable PEM file of CA "
		    "certificates",
		    a->ca_file ? a->ca_file : "(system store)");
	case CHECK_NO_STARTTLS:
		return xasprintf(
		    "port %u offers no STARTTLS: use the relay's "
		    "submission port (587 with tls = starttls, or 465 "
		    "with tls = tls)",
		    a->port);
	case CHECK_NO_AUTH:
		return hint_no_auth(a, c);
	case CHECK_AUTH_REFUSED:
		return hint_auth_refused(a, c);
	case CHECK_REPLY:
		if (!c->ehlo)
			return xstrdup(
			    "the relay turned the connection away: it "
			    "may be busy, or not take connections from "
			    "this host");
		return NULL;
	case CHECK_PASSED:
	case CHECK_OTHER:
		break;
	}
	return NULL;
}

/* The lines of the steps that showed something, in a fixed order. */
static void
print_steps(const struct account *a, const struct submit_check *c)
{
	char *user;

	if (c->connected) {
		printf("connect: %s port %u: ok",
		    c->address ? c->address : a->host, a->port);
		if (c->connect_ms >= 0)
			printf(" (%ld ms)", c->connect_ms);
		putchar('\n');
	}
	if (c->banner)
		printf("banner: %s\n", c->banner);
	if (c->ehlo)
		printf("ehlo: %s\n", *c->ehlo ? c->ehlo : "(no extensions)");
	if (a->tls == TLS_NONE && c->ehlo)
		printf("tls: none (tls = none%s)\n",
		    a->auth != AUTH_NONE ? ": the password goes in clear text"
		                         : "");
	else if (tls_passed(a, c))
		printf("tls: %s, %s\n", c->tls_version, c->tls_cipher);
	if (c->cert_subject) {
		printf("certificate: subject %s\n", c->cert_subject);
		printf("certificate: issuer %s\n", c->cert_issuer);
		if (c->cert_expires)
			printf("certificate: expires %s\n", c->cert_expires);
	}
	if (tls_passed(a, c))
		printf("verify: %s%s\n",
		    a->tls_verify ? "ok" : "off (tls_verify = no)",
		    a->tls_pin ? ", pinned key matches" : "");
	if (a->auth != AUTH_NONE && c->auth_code / 100 == 2) {
		user = account_sasl_user(a);
		printf("auth: %s as %s: %s\n", auth_mech_sasl(a->auth), user,
		    c->auth_reply);
		free(user);
	} else if (a->auth == AUTH_NONE && c->failure == CHECK_PASSED) {
		puts("auth: none (auth = none)");
	}
}

/* The last lines of a failed check; returns status. */
static int
failed(int status, char *why, char *hint)
{
	printf("check: failed: %s\n", why);
	if (hint)
		printf("hint: %s\n", hint);
	free(why);
	free(hint);
	return status;
}

/* "[a], [b]": the accounts the config has. */
static char *
account_list(const struct config *cfg)
{
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < cfg->naccounts; i++)
		buf_addf(&b, "%s[%s]", i ? ", " : "", cfg->accounts[i].name);
	return buf_detach(&b);
}

static int
finish(int status)
{
	if (fflush(stdout) && !status)
		return EX_IOERR;
	return status;
}

int
check_run(struct run *r)
{
	struct submit_check c = { 0 };
	const struct account *a;
	const char *password;
	char *err = NULL, *list;
	int st;

	/* a config error is printed on stderr, as in every mode */
	if ((st = run_load(r))) {
		puts("check: failed: the configuration did not load (its error "
		     "is on standard error)");
		return finish(st);
	}
	a = config_account(&r->cfg, r->opt.check_account, &err);
	if (!a) {
		printf("config: %s\n", r->cfg.path);
		list = account_list(&r->cfg);
		st = failed(EX_CONFIG, err,
		    r->cfg.naccounts
		        ? xasprintf("the accounts are %s: name one "
		                    "(mailshim --check NAME)",
		              list)
		        : NULL);
		free(list);
		return finish(st);
	}
	r->acct = a;
	printf("config: %s, account [%s]\n", r->cfg.path, a->name);
	printf("relay: %s port %u, tls = %s\n", a->host, a->port,
	    tls_mode_name(a->tls));
	/* a failing password_command is the configuration's fault, as in a
	 * send */
	if (a->auth != AUTH_NONE && (st = account_password(a, &password, &err)))
		return finish(failed(st, err, NULL));
	if (!a->helo && !r->fqdn)
		r->fqdn = sysinfo_fqdn();
	submit_check(a, a->helo ? a->helo : r->fqdn, r->opt.verbose, &c);
	print_steps(a, &c);
	if (c.status == SUBMIT_OK) {
		puts("check: ok, nothing was sent");
		st = 0;
	} else {
		st = failed(
		    submit_exit_status(c.status), c.message, hint(a, &c));
		c.message = NULL;
	}
	submit_check_release(&c);
	return finish(st);
}
