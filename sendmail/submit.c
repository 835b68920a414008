/*
 * submit.c - the libcurl SMTP transport (see submit.h).
 *
 * libcurl drives the dialogue; two callbacks watch it.  The debug callback
 * sees every command we send (so we know what each reply answers) and
 * prints the dialogue under -v with credentials hidden.  The header
 * callback sees every reply line: it keeps the first failure reply of the
 * transaction, the reply to each RCPT and the one that decides the
 * accepted recipients (for the per-recipient outcomes), and checks the EHLO
 * capabilities that libcurl does not (AUTH, and the extensions our ESMTP
 * parameters need).
 */
#include "config.h"

#include <arpa/inet.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sysexits.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "curl_api.h"
#include "secret.h"
#include "submit.h"

/* The upload buffer: large enough that a big message needs few callbacks. */
#define UPLOAD_BUFFER (512 * 1024)

/* libcurl passes "<addr> PARAMS" on from 8.16.0; before, the parameters
 * would end up inside the angle brackets. */
#define PARAMS_LIBCURL 0x081000

/* Go on past refused recipients: the option's name lost an L in 8.2.0
 * (same option, same number). */
#if LIBCURL_VERSION_NUM >= 0x080200
#define OPT_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLOWFAILS
#else
#define OPT_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLLOWFAILS
#endif

/* EHLO capabilities we look for */
enum {
	CAP_DSN = 1 << 0,      /* RFC 3461: NOTIFY, RET, ENVID */
	CAP_8BITMIME = 1 << 1, /* RFC 6152: BODY=8BITMIME */
	CAP_SIZE = 1 << 2,
	CAP_SMTPUTF8 = 1 << 3,
};

static const struct {
	const char *word;
	unsigned cap;
} capabilities[] = {
	{ "DSN", CAP_DSN },
	{ "8BITMIME", CAP_8BITMIME },
	{ "SIZE", CAP_SIZE },
	{ "SMTPUTF8", CAP_SMTPUTF8 },
};

struct reply {
	int code;
	char *text;
};

struct submit_session {
	CURL *curl;
	CURLSH *share; /* its own connection and TLS session caches */
	const struct account *acct;
	char *user; /* SASL user name, with #mail_type */
	char *url;
	int verbose;
	int sent; /* messages sent on this session so far */
	char errbuf[CURL_ERROR_SIZE];

	/* the dialogue, as seen by the callbacks */
	char cmd[16]; /* verb of the command the next reply answers */
	char *rcpt;   /* the address of the last RCPT TO */
	int in_auth;  /* client lines are credentials */
	int starttls_done;
	int replies;      /* complete replies in this attempt */
	int auth_offered; /* EHLO offered our mechanism */
	unsigned offered; /* CAP_ bits of the EHLO reply being read */
	struct buf reply; /* reply being assembled */
	unsigned sending; /* CAP_ bits this attempt's parameters need */
	int params_abort; /* stopped after EHLO: the relay lacks one of them */

	/* what the relay offers, from its last EHLO on this session */
	unsigned caps;
	int caps_known;
	int params_noted; /* -v: said that libcurl cannot send parameters */

	/* the first failure of the transaction (with partial, a refused
	 * RCPT is not one: the transaction goes on) */
	int partial;
	int fail_code;
	char fail_cmd[16];
	char *fail_rcpt;
	struct buf fail_text;

	/* what decides each recipient: the reply to its RCPT (the n-th RCPT
	 * sent in this attempt answers for the n-th recipient: no
	 * PIPELINING), and the reply that decides all those accepted */
	struct reply *answers; /* one per recipient; text NULL: none yet */
	size_t nanswers;
	size_t rcpts_sent; /* RCPT commands sent in this attempt */
	int txn_code;      /* refused MAIL or DATA, or after the dot; or 0 */
	struct buf txn_text;

	char *abort_msg; /* we stopped the transfer, and why */
	int read_error;
	struct message_cursor cur;

	/* the message being sent, from submit_start() to submit_finish() */
	const char *sender;
	const struct strlist *rcpts;
	struct submit_params params;
	struct message *m;
	unsigned send;     /* CAP_ bits of the parameters this attempt sends */
	int attempt;       /* transfers of this message so far, less one */
	int param_retries; /* of them, for parameters the relay lacks */
	char *from;        /* CURLOPT_MAIL_FROM */
	struct curl_slist *list; /* CURLOPT_MAIL_RCPT */
	CURLcode rc;             /* how the last transfer ended */

	/* in a submit_multi: running, or ended and not yet handed back */
	struct submit_multi *multi;
	struct submit_session *next;

	/* mailshim --check: what the steps show, and the EHLO reply being
	 * read (its capabilities, and whether one is AUTH) */
	struct submit_check *check;
	struct buf check_caps;
	struct buf check_auth; /* the mechanisms of its first AUTH line */
	int check_any_auth;
	int check_starttls;
};

struct submit_multi {
	CURLM *multi;
	struct submit_session *running; /* transfers under way */
	struct submit_session *done;    /* ended, oldest first */
};

/* Reply text may come from anyone: keep it printable and on one line. */
static void
add_printable(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf_addch(b, (c < 0x20 || c == 0x7f) ? '?' : c);
	}
}

static size_t
trim_eol(const char *s, size_t n)
{
	while (n && (s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	return n;
}

/* ---- watching the dialogue -------------------------------------------- */

static void
command_sent(struct submit_session *s, const char *p, size_t n)
{
	size_t i = 0, k = 0;

	n = trim_eol(p, n);
	if (s->in_auth)
		return; /* a SASL response, not a command */
	for (; i < n && p[i] != ' ' && p[i] != ':' && k < sizeof(s->cmd) - 1;
	     i++)
		s->cmd[k++] = (char)(p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32
		                                                : p[i]);
	s->cmd[k] = '\0';
	if (!strcmp(s->cmd, "AUTH"))
		s->in_auth = 1;
	/* only the capabilities of the latest greeting count: what a relay
	 * offered before STARTTLS says nothing about after it */
	if (!strcmp(s->cmd, "EHLO") || !strcmp(s->cmd, "HELO")) {
		s->auth_offered = 0;
		s->offered = 0;
		buf_reset(&s->check_caps);
		buf_reset(&s->check_auth);
		s->check_any_auth = 0;
		s->check_starttls = 0;
	}
	if (!strcmp(s->cmd, "RCPT")) {
		const char *lt = memchr(p, '<', n);
		const char *gt = lt ? memchr(lt, '>', n - (size_t)(lt - p))
		                    : NULL;
		free(s->rcpt);
		s->rcpt = (lt && gt) ? xstrndup(lt + 1, (size_t)(gt - lt - 1))
		                     : NULL;
		s->rcpts_sent++;
	}
}

static int
has_word(const char *list, size_t n, const char *word)
{
	size_t wl = strlen(word), i = 0;

	while (i < n) {
		size_t j = i;
		while (j < n && list[j] != ' ')
			j++;
		if (j - i == wl && !ascii_strncasecmp(list + i, word, wl))
			return 1;
		i = j + 1;
	}
	return 0;
}

/* An EHLO capability line (not the first, which names the relay): note
 * whether it offers our mechanism and the extensions we look for. */
static void
capability(struct submit_session *s, const char *text, size_t n)
{
	size_t kw = 0;

	if (s->check) {
		if (s->check_caps.len)
			buf_addch(&s->check_caps, ' ');
		add_printable(&s->check_caps, text, n);
		if (n >= 4 && !ascii_strncasecmp(text, "AUTH", 4) &&
		    (n == 4 || text[4] == ' ' || text[4] == '=') &&
		    !s->check_any_auth) {
			s->check_any_auth = 1;
			if (n > 5)
				add_printable(&s->check_auth, text + 5, n - 5);
		}
		if (n == 8 && !ascii_strncasecmp(text, "STARTTLS", 8))
			s->check_starttls = 1;
	}
	if (n > 5 && !ascii_strncasecmp(text, "AUTH", 4) &&
	    (text[4] == ' ' || text[4] == '=') &&
	    has_word(text + 5, n - 5, auth_mech_sasl(s->acct->auth)))
		s->auth_offered = 1;
	while (kw < n && text[kw] != ' ')
		kw++;
	for (size_t i = 0; i < sizeof(capabilities) / sizeof(*capabilities);
	     i++)
		if (strlen(capabilities[i].word) == kw &&
		    !ascii_strncasecmp(text, capabilities[i].word, kw))
			s->offered |= capabilities[i].cap;
}

/* Is the greeting just answered the one that counts, the one after
 * STARTTLS where there is one?  What a relay offers before STARTTLS says
 * nothing about after it. */
static int
greeting_final(const struct submit_session *s)
{
	return s->acct->tls != TLS_STARTTLS || s->starttls_done;
}

/* Must we stop because the relay will not authenticate us? */
static int
auth_missing(struct submit_session *s)
{
	const struct account *a = s->acct;

	if (a->auth == AUTH_NONE || s->auth_offered || !greeting_final(s))
		return 0;
	s->abort_msg = xasprintf("relay %s:%u does not offer AUTH %s%s; "
	                         "not sending without authentication",
	    a->host, a->port, auth_mech_sasl(a->auth),
	    a->tls == TLS_NONE ? " over a connection without TLS" : "");
	return 1;
}

/*
 * The relay has said what it offers: remember it for the session, and
 * stop (before AUTH and MAIL: nothing is sent twice) if this attempt's
 * parameters need what it does not offer.  submit_send() then tries again
 * at once without them.  HELO offers nothing at all.
 */
static int
params_unsupported(struct submit_session *s)
{
	if (!greeting_final(s))
		return 0;
	s->caps = s->offered;
	s->caps_known = 1;
	if (!(s->sending & ~s->caps))
		return 0;
	s->params_abort = 1;
	return 1;
}

/*
 * Keep what will decide the recipients' outcomes (see submit.h): the reply
 * to each RCPT, for its recipient, and the first reply that decides all the
 * accepted ones: a refused MAIL or DATA, or the reply after the final dot.
 */
static void
note_outcome(struct submit_session *s, int code)
{
	if (!strcmp(s->cmd, "RCPT")) {
		size_t i = s->rcpts_sent - 1;
		if (s->rcpts_sent && i < s->nanswers && !s->answers[i].text) {
			s->answers[i].code = code;
			s->answers[i].text = xstrdup(s->reply.s);
		}
		return;
	}
	if (s->txn_code)
		return;
	if (!strcmp(s->cmd, "DATA-END") ||
	    (code >= 400 &&
	        (!strcmp(s->cmd, "MAIL") || !strcmp(s->cmd, "DATA")))) {
		s->txn_code = code;
		buf_reset(&s->txn_text);
		buf_addstr(&s->txn_text, s->reply.s);
	}
}

/* --check: keep what the reply just read shows (before reply_done() acts
 * on it: a missing AUTH stops the dialogue there) */
static void
check_note_reply(struct submit_session *s, int code)
{
	struct submit_check *c = s->check;

	if (!s->replies && !s->cmd[0] && !c->banner)
		c->banner = xstrdup(s->reply.s);
	if (!strcmp(s->cmd, "EHLO") && code == 250) {
		free(c->ehlo);
		c->ehlo = xstrdup(s->check_caps.s);
		free(c->ehlo_auth);
		c->ehlo_auth = s->check_any_auth ? xstrdup(s->check_auth.s)
		                                 : NULL;
		c->starttls = s->check_starttls;
		if (s->acct->tls == TLS_STARTTLS && !s->starttls_done &&
		    s->check_any_auth)
			c->auth_before_tls = 1;
	}
	if (s->in_auth && code != 334 && !c->auth_code) {
		c->auth_code = code;
		c->auth_reply = xstrdup(s->reply.s);
	}
}

/* --check: libcurl's OpenSSL backend says "SSL connection using TLSv1.3 /
 * TLS_AES_256_GCM_SHA384[ / ...]" once the handshake is done (7.88 to
 * 8.21 alike); the version and cipher are not otherwise available
 * without linking libssl. */
static void
check_note_tls(struct submit_session *s, const char *p, size_t n)
{
	static const char lead[] = "SSL connection using ";
	size_t l = sizeof(lead) - 1, i, j;
	struct submit_check *c = s->check;

	n = trim_eol(p, n);
	if (n <= l || memcmp(p, lead, l) || c->tls_version)
		return;
	for (i = l; i + 3 <= n && memcmp(p + i, " / ", 3); i++)
		;
	if (i + 3 > n)
		return;
	for (j = i + 3; j + 3 <= n && memcmp(p + j, " / ", 3); j++)
		;
	if (j + 3 > n)
		j = n;
	{
		struct buf b = BUF_INIT;
		add_printable(&b, p + l, i - l);
		c->tls_version = buf_detach(&b);
		add_printable(&b, p + i + 3, j - i - 3);
		c->tls_cipher = buf_detach(&b);
	}
}

static void
reply_done(struct submit_session *s, int code)
{
	if (s->check)
		check_note_reply(s, code);
	s->replies++;
	/* a missing AUTH wins: it is the error to report */
	if ((!strcmp(s->cmd, "EHLO") || !strcmp(s->cmd, "HELO")) &&
	    code == 250 && (auth_missing(s) || params_unsupported(s)))
		return;
	if (!strcmp(s->cmd, "STARTTLS") && code == 220)
		s->starttls_done = 1;
	if (s->in_auth && code != 334)
		s->in_auth = 0;
	note_outcome(s, code);
	if (!strcmp(s->cmd, "DATA") && code == 354)
		snprintf(s->cmd, sizeof(s->cmd), "%s", "DATA-END");
	/* a refused EHLO is not a failure: libcurl falls back to HELO */
	if (code >= 400 && !s->fail_code && strcmp(s->cmd, "QUIT") &&
	    !(strcmp(s->cmd, "EHLO") == 0 && code >= 500) &&
	    !(s->partial && !strcmp(s->cmd, "RCPT"))) {
		s->fail_code = code;
		snprintf(s->fail_cmd, sizeof(s->fail_cmd), "%s", s->cmd);
		free(s->fail_rcpt);
		s->fail_rcpt = s->rcpt ? xstrdup(s->rcpt) : NULL;
		buf_reset(&s->fail_text);
		buf_addstr(&s->fail_text, s->reply.s);
	}
	buf_reset(&s->reply);
}

static size_t
on_reply_line(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct submit_session *s = userdata;
	size_t total = size * nmemb, n = trim_eol(p, total);
	int code;

	if (n < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9')
		return total; /* not an SMTP reply line; nothing to learn */
	code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (!strcmp(s->cmd, "EHLO") && n > 4 && s->reply.len)
		capability(s, p + 4, n - 4);
	if (s->reply.len)
		buf_addch(&s->reply, ' ');
	add_printable(&s->reply, s->reply.len ? p + 4 : p,
	    s->reply.len ? (n > 4 ? n - 4 : 0) : n);
	if (n == 3 || p[3] != '-') {
		reply_done(s, code);
		if (s->abort_msg || s->params_abort)
			return 0; /* makes libcurl stop: CURLE_WRITE_ERROR */
	}
	return total;
}

static int
on_debug(CURL *c, curl_infotype type, char *p, size_t n, void *userdata)
{
	struct submit_session *s = userdata;
	int secret;

	(void)c;
	if (type == CURLINFO_HEADER_OUT) {
		secret = s->in_auth;
		command_sent(s, p, n);
		secret |= s->in_auth;
		if (s->verbose && secret)
			fprintf(stderr, "--> %s\n",
			    strncmp(p, "AUTH ", 5) ? "(credentials hidden)"
			        : !ascii_strncasecmp(p + 5, "LOGIN", 5) &&
			            trim_eol(p, n) == 10
			        ? "AUTH LOGIN"
			        : "AUTH (credentials hidden)");
		else if (s->verbose)
			fprintf(stderr, "--> %.*s\n", (int)trim_eol(p, n), p);
	} else if (s->verbose && type == CURLINFO_HEADER_IN) {
		struct buf b = BUF_INIT;
		add_printable(&b, p, trim_eol(p, n));
		fprintf(stderr, "<-- %s\n", b.s);
		buf_release(&b);
	} else if (type == CURLINFO_TEXT && s->check) {
		check_note_tls(s, p, n);
		if (s->verbose > 1)
			fprintf(stderr, "* %.*s\n", (int)trim_eol(p, n), p);
	} else if (s->verbose > 1 && type == CURLINFO_TEXT) {
		fprintf(stderr, "* %.*s\n", (int)trim_eol(p, n), p);
	}
	return 0;
}

static size_t
on_read(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct submit_session *s = userdata;
	long n = message_out(&s->cur, buf, size * nmemb);

	if (n < 0) {
		s->read_error = 1;
		return CURL_READFUNC_ABORT;
	}
	return (size_t)n;
}

/* ---- session ------------------------------------------------------------ */

static int
setup(struct submit_session *s, const char *helo, const char *password)
{
	const struct account *a = s->acct;
	CURL *c = s->curl;
	int fail = 0;
	int v6 = strchr(a->host, ':') != NULL;

	s->url = xasprintf("%s://%s%s%s:%u/%s",
	    a->tls == TLS_IMPLICIT ? "smtps" : "smtp", v6 ? "[" : "", a->host,
	    v6 ? "]" : "", a->port, helo);
	/* the session's connection is its own, also among the sessions of
	 * a submit_multi: never reused by another session, let alone by
	 * another account */
	s->share = curl_share_init();
	if (!s->share ||
	    curl_share_setopt(s->share, CURLSHOPT_SHARE,
	        CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
	    curl_share_setopt(s->share, CURLSHOPT_SHARE,
	        CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
		return 1;
#define SET(opt, val) fail |= curl_easy_setopt(c, opt, val) != CURLE_OK
	SET(CURLOPT_SHARE, s->share);
	SET(CURLOPT_URL, s->url);
	SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SET(CURLOPT_PROXY, ""); /* no proxy from the environment */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, s->errbuf);
	SET(CURLOPT_CONNECTTIMEOUT, a->timeout);
	SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, a->timeout);
	/* a stalled transfer: less than one byte a second for 'timeout' */
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, a->timeout);
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_UPLOAD_BUFFERSIZE, (long)UPLOAD_BUFFER);
	SET(CURLOPT_READFUNCTION, on_read);
	SET(CURLOPT_READDATA, s);
	SET(CURLOPT_HEADERFUNCTION, on_reply_line);
	SET(CURLOPT_HEADERDATA, s);
	SET(CURLOPT_DEBUGFUNCTION, on_debug);
	SET(CURLOPT_DEBUGDATA, s);
	SET(CURLOPT_VERBOSE,
	    1L); /* feeds on_debug, which prints only under -v */

	if (a->tls != TLS_NONE) {
		SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
		SET(CURLOPT_SSLVERSION,
		    a->tls_min_version == 13 ? (long)CURL_SSLVERSION_TLSv1_3
		                             : (long)CURL_SSLVERSION_TLSv1_2);
		if (a->tls_pin)
			SET(CURLOPT_PINNEDPUBLICKEY, a->tls_pin);
		SET(CURLOPT_SSL_VERIFYPEER, a->tls_verify ? 1L : 0L);
		SET(CURLOPT_SSL_VERIFYHOST, a->tls_verify ? 2L : 0L);
		if (a->ca_file)
			SET(CURLOPT_CAINFO, a->ca_file);
	}
	if (a->auth != AUTH_NONE) {
		s->user = account_sasl_user(a);
		SET(CURLOPT_USERNAME, s->user);
		SET(CURLOPT_PASSWORD, password);
		SET(CURLOPT_LOGIN_OPTIONS,
		    a->auth == AUTH_LOGIN ? "AUTH=LOGIN" : "AUTH=PLAIN");
		SET(CURLOPT_SASL_IR, 1L);
	}
#undef SET
	return fail;
}

int
submit_global_init(char **err)
{
	static int initialised;

	if (curl_api_load(err))
		return -1;
	if (!initialised) {
		/* the character type only, and only when a connection is
		 * wanted: libcurl's IDN host names need it; nothing else may
		 * change with the locale */
		setlocale(LC_CTYPE, "");
		if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
			*err = xstrdup("cannot initialise libcurl");
			return -1;
		}
		initialised = 1;
	}
	return 0;
}

struct submit_session *
submit_open(
    const struct account *acct, const char *helo, int verbose, char **err)
{
	struct submit_session *s;
	const char *password = NULL;

	/* password_command runs here, when a connection is wanted */
	if (acct->auth != AUTH_NONE && account_password(acct, &password, err))
		return NULL;
	if (submit_global_init(err))
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->acct = acct;
	s->verbose = verbose;
	buf_init(&s->reply);
	buf_init(&s->fail_text);
	buf_init(&s->txn_text);
	buf_init(&s->check_caps);
	buf_init(&s->check_auth);
	s->curl = curl_easy_init();
	if (!s->curl || setup(s, helo, password)) {
		*err = xasprintf(
		    "cannot set up libcurl for relay %s "
		    "(libcurl %s lacks smtp, smtps or an option mailshim "
		    "needs)",
		    acct->host, curl_version_info(CURLVERSION_NOW)->version);
		submit_close(s);
		return NULL;
	}
	return s;
}

static void
answers_reset(struct submit_session *s)
{
	for (size_t i = 0; i < s->nanswers; i++) {
		free(s->answers[i].text);
		s->answers[i].text = NULL;
		s->answers[i].code = 0;
	}
	s->rcpts_sent = 0;
	s->txn_code = 0;
	buf_reset(&s->txn_text);
}

static void
attempt_reset(struct submit_session *s)
{
	s->cmd[0] = '\0';
	s->in_auth = 0;
	s->starttls_done = 0;
	s->auth_offered = 0;
	s->offered = 0;
	s->params_abort = 0;
	s->replies = 0;
	s->fail_code = 0;
	s->fail_cmd[0] = '\0';
	s->read_error = 0;
	free(s->abort_msg);
	s->abort_msg = NULL;
	buf_reset(&s->reply);
	buf_reset(&s->fail_text);
	answers_reset(s);
}

static void
result(struct submit_result *res, enum submit_status st, int code, char *msg)
{
	res->status = st;
	res->code = code;
	res->message = msg;
}

/* Turn what the relay said into a status. */
static void
classify_reply(struct submit_session *s, struct submit_result *res)
{
	const char *t = s->fail_text.s;
	int temp = s->fail_code < 500;

	if (!strcmp(s->fail_cmd, "RCPT"))
		result(res, temp ? SUBMIT_TEMPFAIL : SUBMIT_RCPT, s->fail_code,
		    xasprintf("relay %s recipient <%s>: %s",
		        temp ? "deferred" : "refused",
		        s->fail_rcpt ? s->fail_rcpt : "?", t));
	else if (!strcmp(s->fail_cmd, "MAIL"))
		result(res, temp ? SUBMIT_TEMPFAIL : SUBMIT_REFUSED,
		    s->fail_code,
		    xasprintf("relay %s the sender: %s",
		        temp ? "deferred" : "refused", t));
	else if (!strcmp(s->fail_cmd, "AUTH"))
		result(res, temp ? SUBMIT_TEMPFAIL : SUBMIT_AUTH, s->fail_code,
		    xasprintf("relay refused authentication as '%s' "
		              "(AUTH %s): %s",
		        s->user, auth_mech_sasl(s->acct->auth), t));
	else if (!strcmp(s->fail_cmd, "DATA-END") ||
	    !strcmp(s->fail_cmd, "DATA"))
		result(res, temp ? SUBMIT_TEMPFAIL : SUBMIT_REFUSED,
		    s->fail_code,
		    xasprintf("relay %s the message: %s",
		        temp ? "deferred" : "refused", t));
	else if (!s->fail_cmd[0])
		result(res, temp ? SUBMIT_TEMPFAIL : SUBMIT_REFUSED,
		    s->fail_code,
		    xasprintf("relay %s:%u %s the connection: "
		              "%s",
		        s->acct->host, s->acct->port,
		        temp ? "deferred" : "refused", t));
	else
		result(res, temp ? SUBMIT_TEMPFAIL : SUBMIT_REFUSED,
		    s->fail_code,
		    xasprintf("relay answered %s with: %s", s->fail_cmd, t));
}

static void
classify(struct submit_session *s, CURLcode rc, struct submit_result *res)
{
	const struct account *a = s->acct;
	const char *e = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);

	if (s->abort_msg) {
		result(res, SUBMIT_CONFIG, 0, s->abort_msg);
		s->abort_msg = NULL;
		return;
	}
	if (s->params_abort) {
		/* offered on one connection, not on the next */
		result(res, SUBMIT_TEMPFAIL, 0,
		    xasprintf("relay %s:%u changes what it offers from one "
		              "connection to the next",
		        a->host, a->port));
		return;
	}
	if (s->read_error) {
		result(res, SUBMIT_IOERR, 0,
		    xstrdup("cannot read the spooled "
		            "message back"));
		return;
	}
	if (s->fail_code) {
		classify_reply(s, res);
		return;
	}
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		result(res, SUBMIT_TEMPFAIL, 0,
		    xasprintf("cannot resolve "
		              "relay host '%s': %s",
		        a->host, e));
		break;
	case CURLE_COULDNT_CONNECT:
		result(res, SUBMIT_TEMPFAIL, 0,
		    xasprintf("cannot connect to "
		              "relay %s:%u: %s",
		        a->host, a->port, e));
		break;
	case CURLE_OPERATION_TIMEDOUT:
		result(res, SUBMIT_TEMPFAIL, 0,
		    xasprintf("relay %s:%u timed "
		              "out: %s",
		        a->host, a->port, e));
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		result(res, SUBMIT_CONFIG, 0,
		    xasprintf(
		        "TLS certificate of "
		        "relay %s:%u not verified: %s (check host and ca_file)",
		        a->host, a->port, e));
		break;
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		result(res, SUBMIT_CONFIG, 0,
		    xasprintf("TLS public key of relay %s:%u does not match "
		              "tls_pin",
		        a->host, a->port));
		break;
	case CURLE_SSL_CACERT_BADFILE:
		result(res, SUBMIT_CONFIG, 0,
		    xasprintf("cannot load CA "
		              "certificates from '%s': %s",
		        a->ca_file ? a->ca_file : "the system store", e));
		break;
	case CURLE_USE_SSL_FAILED:
		result(res, SUBMIT_CONFIG, 0,
		    xasprintf(
		        "relay %s:%u does not "
		        "offer STARTTLS; not sending in clear text (tls = %s)",
		        a->host, a->port, tls_mode_name(a->tls)));
		break;
	case CURLE_SSL_CONNECT_ERROR:
		result(res, SUBMIT_TEMPFAIL, 0,
		    xasprintf("TLS handshake with "
		              "relay %s:%u failed: %s%s",
		        a->host, a->port, e,
		        a->tls_min_version == 13
		            ? " (tls_min_version = 1.3: does the relay offer "
		              "TLS 1.3?)"
		            : a->tls == TLS_IMPLICIT
		            ? " (is this an implicit-TLS port? "
		              "use tls = starttls for ports 25 and 587)"
		            : ""));
		break;
	case CURLE_LOGIN_DENIED:
		result(res, SUBMIT_AUTH, 0,
		    xasprintf("relay refused "
		              "authentication as '%s': %s",
		        s->user ? s->user : "", e));
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_FAILED_INIT:
	case CURLE_OUT_OF_MEMORY:
		result(res, SUBMIT_SOFTWARE, 0, xasprintf("libcurl: %s", e));
		break;
	default:
		/* lost connection and the like: nothing refused the mail */
		result(res, SUBMIT_TEMPFAIL, 0,
		    xasprintf("connection to relay "
		              "%s:%u failed: %s",
		        a->host, a->port, e));
		break;
	}
}

static int
is_stale_connection(CURLcode rc)
{
	return rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
	    rc == CURLE_GOT_NOTHING;
}

/* ---- ESMTP parameters ---------------------------------------------------- */

static int
params_supported(void)
{
	return curl_version_info(CURLVERSION_NOW)->version_num >=
	    PARAMS_LIBCURL;
}

/* The CAP_ bits the parameters p asks for need. */
static unsigned
params_need(const struct submit_params *p)
{
	unsigned need = 0;

	if (p && (p->notify || p->ret || p->envid))
		need |= CAP_DSN;
	if (p && p->body_8bit)
		need |= CAP_8BITMIME;
	return need;
}

/* "NOTIFY, RET and BODY=8BITMIME": the parameters of p that need caps. */
static char *
params_names(const struct submit_params *p, unsigned caps)
{
	const char *v[4];
	size_t n = 0;
	struct buf b = BUF_INIT;

	if ((caps & CAP_DSN) && p->notify)
		v[n++] = "NOTIFY";
	if ((caps & CAP_DSN) && p->ret)
		v[n++] = "RET";
	if ((caps & CAP_DSN) && p->envid)
		v[n++] = "ENVID";
	if ((caps & CAP_8BITMIME) && p->body_8bit)
		v[n++] = "BODY=8BITMIME";
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addstr(&b, i + 1 < n ? ", " : " and ");
		buf_addstr(&b, v[i]);
	}
	return buf_detach(&b);
}

/* -v: why parameters the caller asked for do not go to the relay */
static void
note_not_sent(
    struct submit_session *s, const struct submit_params *p, unsigned lacking)
{
	char *names;

	if (!s->verbose || !lacking)
		return;
	names = params_names(p, lacking);
	fprintf(stderr,
	    "mailshim: note: %s not sent: relay %s:%u does not offer %s%s%s\n",
	    names, s->acct->host, s->acct->port, lacking & CAP_DSN ? "DSN" : "",
	    (lacking & CAP_DSN) && (lacking & CAP_8BITMIME) ? " or " : "",
	    lacking & CAP_8BITMIME ? "8BITMIME" : "");
	free(names);
}

/* An ESMTP keyword value (NOTIFY, RET): letters and commas, sent in upper
 * case.  -1 for anything else: nothing unchecked goes on the wire. */
static int
add_keyword(struct buf *b, const char *v)
{
	if (!*v)
		return -1;
	for (; *v; v++) {
		char c = *v >= 'a' && *v <= 'z' ? (char)(*v - 32) : *v;
		if (!((c >= 'A' && c <= 'Z') || c == ','))
			return -1;
		buf_addch(b, c);
	}
	return 0;
}

/* RFC 3461 4: xtext.  '<' and '>' are encoded too: libcurl takes the last
 * '>' of the value for the end of the address. */
static void
add_xtext(struct buf *b, const char *v)
{
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c < 33 || c > 126 || c == '+' || c == '=' || c == '<' ||
		    c == '>')
			buf_addf(b, "+%02X", c);
		else
			buf_addch(b, c);
	}
}

/*
 * The values of CURLOPT_MAIL_FROM and CURLOPT_MAIL_RCPT: "<addr>", then
 * the parameters of p whose extensions are in caps.  -1 (res filled in)
 * if a parameter is not what submit.h says it must be.
 */
static int
envelope_values(const char *sender, const struct strlist *rcpts,
    const struct submit_params *p, unsigned caps, char **from,
    struct curl_slist **list, struct submit_result *res)
{
	struct buf b = BUF_INIT;
	int bad = 0;

	buf_addf(&b, "<%s>", sender);
	if ((caps & CAP_DSN) && p->ret) {
		buf_addstr(&b, " RET=");
		bad |= add_keyword(&b, p->ret);
	}
	if ((caps & CAP_DSN) && p->envid) {
		buf_addstr(&b, " ENVID=");
		add_xtext(&b, p->envid);
	}
	if ((caps & CAP_8BITMIME) && p->body_8bit)
		buf_addstr(&b, " BODY=8BITMIME");
	*from = buf_detach(&b);
	*list = NULL;
	for (size_t i = 0; i < rcpts->n && !bad; i++) {
		struct curl_slist *l;
		buf_addf(&b, "<%s>", rcpts->v[i]);
		if ((caps & CAP_DSN) && p->notify) {
			buf_addstr(&b, " NOTIFY=");
			bad |= add_keyword(&b, p->notify);
		}
		l = curl_slist_append(*list, b.s);
		buf_reset(&b);
		if (!l) {
			buf_release(&b);
			result(
			    res, SUBMIT_SOFTWARE, 0, xstrdup("out of memory"));
			return -1;
		}
		*list = l;
	}
	buf_release(&b);
	if (bad) {
		result(res, SUBMIT_SOFTWARE, 0,
		    xstrdup("invalid NOTIFY or RET value for the relay"));
		return -1;
	}
	if (!*list) {
		/* libcurl would send HELP and report success */
		result(res, SUBMIT_SOFTWARE, 0, xstrdup("no recipients"));
		return -1;
	}
	return 0;
}

/* ---- per recipient ------------------------------------------------------- */

/* With partial: did the relay take the message for anyone? */
static int
delivered_any(const struct submit_session *s)
{
	if (s->txn_code / 100 != 2)
		return 0;
	for (size_t i = 0; i < s->nanswers; i++)
		if (s->answers[i].text && s->answers[i].code / 100 == 2)
			return 1;
	return 0;
}

/*
 * With partial, a refused RCPT does not fail the transaction; but when the
 * relay refused every recipient, nothing else did: the first refusal is
 * the failure to report, as without partial.
 */
static void
blame_first_refusal(struct submit_session *s, const struct strlist *rcpts)
{
	if (s->fail_code || !s->nanswers)
		return;
	for (size_t i = 0; i < s->nanswers; i++)
		if (!s->answers[i].text || s->answers[i].code < 400)
			return;
	s->fail_code = s->answers[0].code;
	snprintf(s->fail_cmd, sizeof(s->fail_cmd), "%s", "RCPT");
	free(s->fail_rcpt);
	s->fail_rcpt = xstrdup(rcpts->v[0]);
	buf_reset(&s->fail_text);
	buf_addstr(&s->fail_text, s->answers[0].text);
}

static void
decided(struct submit_rcpt *r, int code, const char *text)
{
	r->outcome = code / 100 == 2 ? RCPT_DELIVERED
	    : code >= 500            ? RCPT_PERMFAIL
	                             : RCPT_TEMPFAIL;
	r->code = code;
	r->reply = xstrdup(text);
}

/* Fill res->rcpt from the replies (the rules are in submit.h); res->status
 * and res->message must be set already. */
static void
rcpt_outcomes(
    const struct submit_session *s, size_t n, struct submit_result *res)
{
	res->nrcpt = n;
	res->rcpt = n ? xcalloc(n, sizeof(*res->rcpt)) : NULL;
	for (size_t i = 0; i < n; i++) {
		const struct reply *a = i < s->nanswers ? &s->answers[i] : NULL;
		int answered = a && a->text;
		int accepted = answered && a->code / 100 == 2;

		if (answered && !accepted)
			decided(&res->rcpt[i], a->code, a->text);
		else if (s->txn_code && (accepted || s->txn_code >= 400))
			decided(&res->rcpt[i], s->txn_code, s->txn_text.s);
		else
			decided(&res->rcpt[i], 0,
			    res->message ? res->message
			                 : "the relay did not answer for "
			                   "this recipient");
	}
}

/*
 * Set the handle up for the next transfer of the message: the envelope
 * with the parameters this attempt sends, and everything the callbacks
 * learn reset.  -1 (res filled in) if the envelope cannot be made.
 */
static int
attempt_prepare(struct submit_session *s, struct submit_result *res)
{
	free(s->from);
	s->from = NULL;
	curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, NULL);
	curl_slist_free_all(s->list);
	s->list = NULL;
	if (envelope_values(s->sender, s->rcpts, &s->params, s->send, &s->from,
	        &s->list, res))
		return -1;
	curl_easy_setopt(s->curl, CURLOPT_MAIL_FROM, s->from);
	curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, s->list);
	attempt_reset(s);
	s->sending = s->send;
	s->errbuf[0] = '\0';
	message_rewind(&s->cur, s->m);
	return 0;
}

/* The message is done with: the outcome of each recipient, and the
 * handle left ready for the next message. */
static void
message_done(struct submit_session *s, struct submit_result *res)
{
	curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, 0L);
	rcpt_outcomes(s, s->rcpts->n, res);
	answers_reset(s);
	curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, NULL);
	curl_slist_free_all(s->list);
	s->list = NULL;
	free(s->from);
	s->from = NULL;
	s->sender = NULL;
	s->rcpts = NULL;
	s->m = NULL;
}

int
submit_start(struct submit_session *s, const char *sender,
    const struct strlist *rcpts, const struct submit_params *params,
    struct message *m, struct submit_result *res)
{
	static const struct submit_params none = { 0 };
	const struct submit_params *p = params ? params : &none;
	unsigned want = params_need(p);

	memset(res, 0, sizeof(*res));
	s->sender = sender;
	s->rcpts = rcpts;
	s->params = *p;
	s->m = m;
	s->attempt = 0;
	s->param_retries = 0;
	answers_reset(s);
	free(s->answers);
	s->answers = xcalloc(rcpts->n ? rcpts->n : 1, sizeof(*s->answers));
	s->nanswers = rcpts->n;
	s->partial = p->partial;
	if (curl_easy_setopt(s->curl, OPT_RCPT_ALLOWFAILS,
	        p->partial ? 1L : 0L) != CURLE_OK &&
	    p->partial) {
		result(res, SUBMIT_SOFTWARE, 0,
		    xasprintf("libcurl %s cannot go on past a refused "
		              "recipient",
		        curl_version_info(CURLVERSION_NOW)->version));
		goto final;
	}
	if (want && !params_supported()) {
		if (s->verbose && !s->params_noted) {
			char *names = params_names(p, want);
			fprintf(stderr,
			    "mailshim: note: %s not sent: libcurl %s cannot "
			    "pass ESMTP parameters (needs 8.16)\n",
			    names, curl_version_info(CURLVERSION_NOW)->version);
			free(names);
			s->params_noted = 1;
		}
		want = 0;
	}
	/* what the relay offers, if this session has seen it already */
	s->send = s->caps_known ? want & s->caps : want;
	note_not_sent(s, p, want & ~s->send);
	if (attempt_prepare(s, res))
		goto final;
	return 0;
final:
	message_done(s, res);
	return -1;
}

int
submit_finish(struct submit_session *s, struct submit_result *res)
{
	const struct submit_params *p = &s->params;
	CURLcode rc = s->rc;

	/* stopped after EHLO: at once, afresh, with what it offers (a
	 * second time only if it changed its mind) */
	if (s->params_abort && !s->abort_msg && s->param_retries < 2) {
		s->param_retries++;
		note_not_sent(s, p, s->send & ~s->caps);
		s->send &= s->caps;
		goto again;
	}
	/* a reused connection the relay had closed: once more, afresh */
	if (rc != CURLE_OK && s->attempt == 0 && s->sent &&
	    is_stale_connection(rc) && !s->replies)
		goto again;
	if (p->partial ? delivered_any(s)
	               : rc == CURLE_OK && !s->fail_code && !s->params_abort) {
		s->sent++;
		result(res, SUBMIT_OK, 0, NULL);
	} else {
		if (p->partial)
			blame_first_refusal(s, s->rcpts);
		classify(s, rc, res);
	}
	message_done(s, res);
	return 0;
again:
	s->attempt++;
	curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, 1L);
	if (attempt_prepare(s, res)) {
		message_done(s, res);
		return 0;
	}
	return 1;
}

void
submit_send(struct submit_session *s, const char *sender,
    const struct strlist *rcpts, const struct submit_params *params,
    struct message *m, struct submit_result *res)
{
	if (submit_start(s, sender, rcpts, params, m, res))
		return;
	do
		s->rc = curl_easy_perform(s->curl);
	while (submit_finish(s, res));
}

/* ---- several sessions at once ------------------------------------------- */

struct submit_multi *
submit_multi_new(char **err)
{
	struct submit_multi *mm;

	if (submit_global_init(err))
		return NULL;
	mm = xcalloc(1, sizeof(*mm));
	mm->multi = curl_multi_init();
	if (!mm->multi) {
		free(mm);
		*err = xstrdup("cannot set up libcurl's multi interface");
		return NULL;
	}
	return mm;
}

/* s's transfer has ended (s->rc says how): hand it back after those
 * that ended before. */
static void
push_done(struct submit_multi *mm, struct submit_session *s)
{
	struct submit_session **pp = &mm->done;

	while (*pp)
		pp = &(*pp)->next;
	s->next = NULL;
	*pp = s;
}

/* Take s off mm's lists (and its handle out of mm); 0 if it was not on
 * them. */
static int
detach(struct submit_multi *mm, struct submit_session *s)
{
	for (struct submit_session **pp = &mm->running; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			curl_multi_remove_handle(mm->multi, s->curl);
			s->next = NULL;
			return 1;
		}
	for (struct submit_session **pp = &mm->done; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			s->next = NULL;
			return 1;
		}
	return 0;
}

void
submit_multi_add(struct submit_multi *mm, struct submit_session *s)
{
	CURLMcode mc;

	s->multi = mm;
	mc = curl_multi_add_handle(mm->multi, s->curl);
	if (mc != CURLM_OK) {
		snprintf(s->errbuf, sizeof(s->errbuf), "%s",
		    curl_multi_strerror(mc));
		s->rc = CURLE_FAILED_INIT;
		push_done(mm, s);
		return;
	}
	s->next = mm->running;
	mm->running = s;
}

/* The transfers libcurl says have ended: off the running list, on the
 * done list. */
static void
collect(struct submit_multi *mm)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(mm->multi, &left))) {
		struct submit_session *s = mm->running;

		if (msg->msg != CURLMSG_DONE)
			continue;
		while (s && s->curl != msg->easy_handle)
			s = s->next;
		if (!s)
			continue;
		s->rc = msg->data.result; /* msg goes with the handle */
		detach(mm, s);
		push_done(mm, s);
	}
}

/* The multi handle itself failed: every transfer under way ends. */
static void
abandon(struct submit_multi *mm, CURLMcode mc)
{
	while (mm->running) {
		struct submit_session *s = mm->running;

		detach(mm, s);
		snprintf(s->errbuf, sizeof(s->errbuf), "%s",
		    curl_multi_strerror(mc));
		s->rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY
		                                  : CURLE_FAILED_INIT;
		push_done(mm, s);
	}
}

struct submit_session *
submit_multi_next(struct submit_multi *mm)
{
	struct submit_session *s;

	while (!mm->done && mm->running) {
		int running;
		CURLMcode mc = curl_multi_perform(mm->multi, &running);

		if (mc == CURLM_OK) {
			collect(mm);
			if (!mm->done)
				mc = curl_multi_poll(
				    mm->multi, NULL, 0, 1000, NULL);
		}
		if (mc != CURLM_OK)
			abandon(mm, mc);
	}
	s = mm->done;
	if (s) {
		mm->done = s->next;
		s->next = NULL;
		s->multi = NULL;
	}
	return s;
}

void
submit_multi_free(struct submit_multi *mm)
{
	if (!mm)
		return;
	while (mm->running || mm->done) {
		struct submit_session *s = mm->running ? mm->running : mm->done;
		detach(mm, s);
		s->multi = NULL;
	}
	curl_multi_cleanup(mm->multi);
	free(mm);
}

void
submit_close(struct submit_session *s)
{
	if (!s)
		return;
	if (s->multi)
		detach(s->multi, s);
	if (s->curl)
		curl_easy_cleanup(s->curl);
	/* after the handle: this closes the connection */
	if (s->share)
		curl_share_cleanup(s->share);
	curl_slist_free_all(s->list);
	free(s->from);
	free(s->url);
	free(s->rcpt);
	free(s->fail_rcpt);
	free(s->abort_msg);
	answers_reset(s);
	free(s->answers);
	buf_release(&s->reply);
	buf_release(&s->fail_text);
	buf_release(&s->txn_text);
	buf_release(&s->check_caps);
	buf_release(&s->check_auth);
	free(s->user);
	free(s);
}

void
submit_result_release(struct submit_result *res)
{
	free(res->message);
	res->message = NULL;
	for (size_t i = 0; i < res->nrcpt; i++)
		free(res->rcpt[i].reply);
	free(res->rcpt);
	res->rcpt = NULL;
	res->nrcpt = 0;
}

/* For --version and the like: libcurl is loaded, or why it cannot be
 * is the text to show. */
static const char *
loaded_or_why(void)
{
	static char *why;

	if (curl_api_load(why ? NULL : &why))
		return why;
	return NULL;
}

const char *
submit_library_version(void)
{
	const char *why = loaded_or_why();

	return why ? why : curl_version();
}

int
submit_exit_status(enum submit_status st)
{
	static const int status[] = {
		[SUBMIT_OK] = EX_OK,
		[SUBMIT_TEMPFAIL] = EX_TEMPFAIL,
		[SUBMIT_AUTH] = EX_NOPERM,
		[SUBMIT_RCPT] = EX_NOUSER,
		[SUBMIT_REFUSED] = EX_UNAVAILABLE,
		[SUBMIT_CONFIG] = EX_CONFIG,
		[SUBMIT_IOERR] = EX_IOERR,
		[SUBMIT_SOFTWARE] = EX_SOFTWARE,
	};

	return (unsigned)st < sizeof(status) / sizeof(*status) ? status[st]
	                                                       : EX_SOFTWARE;
}

const char *
submit_crypto_version(void)
{
	static char text[200];
	const char *why = loaded_or_why(), *v;

	if (why)
		return why;
	v = OpenSSL_version(OPENSSL_VERSION);
	if (OpenSSL_version_num() == OPENSSL_VERSION_NUMBER)
		snprintf(text, sizeof(text), "%s", v);
	else
		snprintf(text, sizeof(text), "%s (built with %s)", v,
		    OPENSSL_VERSION_TEXT);
	return text;
}

const char *
submit_crlf_check(void)
{
	static char text[120];

	if (loaded_or_why())
		return loaded_or_why();
	snprintf(text, sizeof(text),
	    "refused by mailshim (libcurl %s would send them as given)",
	    curl_version_info(CURLVERSION_NOW)->version);
	return text;
}

const char *
submit_params_support(void)
{
	static char text[80];
	const char *v;

	if (loaded_or_why())
		return loaded_or_why();
	v = curl_version_info(CURLVERSION_NOW)->version;

	if (params_supported())
		snprintf(text, sizeof(text), "yes (libcurl %s)", v);
	else
		snprintf(text, sizeof(text),
		    "no (needs libcurl 8.16, this is %s)", v);
	return text;
}

/* ---- mailshim --check ---------------------------------------------------- */

/* What an OpenSSL BIO holds, printable, as a new string. */
static char *
bio_text(BIO *bio)
{
	struct buf b = BUF_INIT;
	char *p = NULL;
	long n = BIO_get_mem_data(bio, &p);

	if (n > 0)
		add_printable(&b, p, (size_t)n);
	return buf_detach(&b);
}

static char *
name_text(const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *t;

	if (!bio)
		return NULL;
	/* "C=US, O=Example, CN=mail.example": OpenSSL's one-line form */
	X509_NAME_print_ex(bio, name, 0, XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ);
	t = bio_text(bio);
	BIO_free(bio);
	return t;
}

/* The names a certificate is for: its subjectAltName DNS names and
 * addresses, or its subject when it has none. */
static char *
cert_names(X509 *x)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(
	    x, NID_subject_alt_name, NULL, NULL);
	struct buf b = BUF_INIT;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char ip[INET6_ADDRSTRLEN];
		const unsigned char *d;
		int len;

		if (g->type == GEN_DNS) {
			d = ASN1_STRING_get0_data(g->d.dNSName);
			len = ASN1_STRING_length(g->d.dNSName);
			buf_addstr(&b, b.len ? ", " : "");
			add_printable(&b, (const char *)d, (size_t)len);
		} else if (g->type == GEN_IPADD) {
			d = ASN1_STRING_get0_data(g->d.iPAddress);
			len = ASN1_STRING_length(g->d.iPAddress);
			if ((len == 4 || len == 16) &&
			    inet_ntop(len == 4 ? AF_INET : AF_INET6, d, ip,
			        sizeof(ip)))
				buf_addf(&b, "%s%s", b.len ? ", " : "", ip);
		}
	}
	GENERAL_NAMES_free(gens);
	if (!b.len) {
		buf_release(&b);
		return name_text(X509_get_subject_name(x));
	}
	return buf_detach(&b);
}

/* "sha256//<base64>": the pin of x's public key, as tls_pin takes it. */
static char *
cert_pin(X509 *x)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	unsigned mdlen = 0;
	int len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	char *pin = NULL;

	if (len > 0 &&
	    EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1) {
		EVP_EncodeBlock(b64, md, (int)mdlen);
		pin = xasprintf("sha256//%s", (const char *)b64);
	}
	OPENSSL_free(der);
	return pin;
}

/* What the relay's certificate (PEM, as libcurl's certinfo gives it)
 * says: subject, issuer, expiry, key pin, and whom it is for. */
static void
check_describe_cert(
    const struct account *a, const char *pem, struct submit_check *c)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	int host_ok, ip_ok, expired, early;
	struct tm tm;

	if (x) {
		c->cert_subject = name_text(X509_get_subject_name(x));
		c->cert_issuer = name_text(X509_get_issuer_name(x));
		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
			char t[40];
			if (strftime(
			        t, sizeof(t), "%Y-%m-%d %H:%M:%S GMT", &tm))
				c->cert_expires = xstrdup(t);
		}
		c->cert_pin = cert_pin(x);
		c->cert_names = cert_names(x);
		host_ok = X509_check_host(x, a->host, 0, 0, NULL) == 1;
		ip_ok = X509_check_ip_asc(x, a->host, 0) == 1;
		c->cert_name_ok = host_ok || ip_ok;
		expired = X509_cmp_current_time(X509_get0_notAfter(x)) < 0;
		early = X509_cmp_current_time(X509_get0_notBefore(x)) > 0;
		c->cert_expired = expired || early;
		X509_free(x);
	}
	BIO_free(bio);
}

/* What libcurl learnt of the connection and the relay's certificate. */
static void
check_connection_info(struct submit_session *s, struct submit_check *c)
{
	struct curl_certinfo *ci = NULL;
	curl_off_t us = 0;
	char *ip = NULL;
	long vr = 0;

	if (curl_easy_getinfo(s->curl, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK &&
	    ip && *ip)
		c->address = xstrdup(ip);
	if (curl_easy_getinfo(s->curl, CURLINFO_CONNECT_TIME_T, &us) ==
	        CURLE_OK &&
	    us > 0)
		c->connect_ms = (long)(us / 1000);
	/* libcurl 7.88 leaves the time unset when an implicit-TLS handshake
	 * fails, 8.x the address: either means the TCP connection was made */
	c->connected = c->address || us > 0 || c->banner;
	if (s->acct->tls == TLS_NONE)
		return;
	if (curl_easy_getinfo(s->curl, CURLINFO_SSL_VERIFYRESULT, &vr) ==
	        CURLE_OK &&
	    vr) {
		c->verify_result = vr;
		c->verify_error = xstrdup(X509_verify_cert_error_string(vr));
		c->cert_expired |= vr == X509_V_ERR_CERT_HAS_EXPIRED ||
		    vr == X509_V_ERR_CERT_NOT_YET_VALID;
	}
	if (curl_easy_getinfo(s->curl, CURLINFO_CERTINFO, &ci) != CURLE_OK ||
	    !ci || ci->num_of_certs < 1)
		return;
	for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next)
		if (!strncmp(l->data, "Cert:", 5)) {
			check_describe_cert(s->acct, l->data + 5, c);
			break;
		}
}

static enum check_failure
check_failure_of(const struct submit_session *s, CURLcode rc)
{
	if (s->abort_msg)
		return CHECK_NO_AUTH; /* the only reason to stop here */
	if (s->fail_code)
		return !strcmp(s->fail_cmd, "AUTH") ? CHECK_AUTH_REFUSED
		                                    : CHECK_REPLY;
	switch (rc) {
	case CURLE_OK:
		return CHECK_PASSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return CHECK_RESOLVE;
	case CURLE_COULDNT_CONNECT:
		return CHECK_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return CHECK_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
		return CHECK_TLS;
	case CURLE_PEER_FAILED_VERIFICATION:
		return CHECK_VERIFY;
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return CHECK_PIN;
	case CURLE_SSL_CACERT_BADFILE:
		return CHECK_CA_FILE;
	case CURLE_USE_SSL_FAILED:
		return CHECK_NO_STARTTLS;
	case CURLE_LOGIN_DENIED:
		return CHECK_AUTH_REFUSED;
	default:
		return CHECK_OTHER;
	}
}

/* Wait until fd is ready for events, at most ms; 0 if it is. */
static int
wait_fd(curl_socket_t fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, ms) == 1 ? 0 : -1;
}

/*
 * Say QUIT on the connection CURLOPT_CONNECT_ONLY left open, and wait a
 * little for the reply (a relay that does not answer is no failure: the
 * check is done).  libcurl would just close the connection.
 */
static void
check_quit(struct submit_session *s)
{
	static const char quit[] = "QUIT\r\n";
	const int wait_ms = 1000, tries = 5;
	curl_socket_t fd = CURL_SOCKET_BAD;
	struct buf reply = BUF_INIT;
	size_t off = 0, n;
	char in[512];
	CURLcode rc;
	int waits = 0;

	if (curl_easy_getinfo(s->curl, CURLINFO_ACTIVESOCKET, &fd) !=
	        CURLE_OK ||
	    fd == CURL_SOCKET_BAD)
		return;
	if (s->verbose)
		fprintf(stderr, "--> QUIT\n");
	while (off < sizeof(quit) - 1) {
		rc = curl_easy_send(
		    s->curl, quit + off, sizeof(quit) - 1 - off, &n);
		if (rc == CURLE_AGAIN && waits++ < tries &&
		    !wait_fd(fd, POLLOUT, wait_ms))
			continue;
		if (rc != CURLE_OK)
			return;
		off += n;
	}
	buf_init(&reply);
	for (;;) {
		const char *eol;

		rc = curl_easy_recv(s->curl, in, sizeof(in), &n);
		if (rc == CURLE_AGAIN && waits++ < tries &&
		    !wait_fd(fd, POLLIN, wait_ms))
			continue;
		if (rc != CURLE_OK || !n || reply.len > 4096)
			break;
		buf_add(&reply, in, n);
		/* the last line of the reply: "221 ...", not "221-..." */
		eol = strrchr(reply.s, '\n');
		if (eol && eol - reply.s >= 4) {
			const char *line = eol - 1;
			while (line > reply.s && line[-1] != '\n')
				line--;
			if (eol - line > 3 && line[3] != '-')
				break;
		}
	}
	if (s->verbose && reply.len) {
		struct buf b = BUF_INIT;
		add_printable(&b, reply.s, trim_eol(reply.s, reply.len));
		fprintf(stderr, "<-- %s\n", b.s);
		buf_release(&b);
	}
	buf_release(&reply);
}

enum submit_status
submit_check(const struct account *acct, const char *helo, int verbose,
    struct submit_check *c)
{
	struct submit_session *s;
	struct submit_result res;
	char *err = NULL;
	int fail = 0;
	CURLcode rc;

	c->connect_ms = -1;
	c->cert_name_ok = -1;
	s = submit_open(acct, helo, verbose, &err);
	if (!s) {
		c->failure = CHECK_OTHER;
		c->status = SUBMIT_SOFTWARE;
		c->message = err;
		return c->status;
	}
	s->check = c;
	/* the connection phase of SMTP is greeting, EHLO, STARTTLS, EHLO
	 * and AUTH: stop there, before MAIL (no recipients are set either:
	 * nothing could be sent) */
	fail |= curl_easy_setopt(s->curl, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK;
	fail |= curl_easy_setopt(s->curl, CURLOPT_UPLOAD, 0L) != CURLE_OK;
	if (acct->tls != TLS_NONE)
		fail |= curl_easy_setopt(s->curl, CURLOPT_CERTINFO, 1L) !=
		    CURLE_OK;
	if (fail) {
		c->failure = CHECK_OTHER;
		c->status = SUBMIT_SOFTWARE;
		c->message = xasprintf("libcurl %s cannot connect without "
		                       "sending (CONNECT_ONLY, CERTINFO)",
		    curl_version_info(CURLVERSION_NOW)->version);
		submit_close(s);
		return c->status;
	}
	attempt_reset(s);
	s->errbuf[0] = '\0';
	rc = curl_easy_perform(s->curl);
	check_connection_info(s, c);
	c->failure = check_failure_of(s, rc);
	if (c->failure == CHECK_PASSED) {
		c->status = SUBMIT_OK;
		check_quit(s);
	} else {
		memset(&res, 0, sizeof(res));
		classify(s, rc, &res);
		c->status = res.status;
		c->message = res.message;
	}
	submit_close(s);
	return c->status;
}

void
submit_check_release(struct submit_check *c)
{
	free(c->message);
	free(c->address);
	free(c->banner);
	free(c->ehlo);
	free(c->ehlo_auth);
	free(c->tls_version);
	free(c->tls_cipher);
	free(c->cert_subject);
	free(c->cert_issuer);
	free(c->cert_expires);
	free(c->cert_pin);
	free(c->cert_names);
	free(c->verify_error);
	free(c->auth_reply);
	memset(c, 0, sizeof(*c));
}
