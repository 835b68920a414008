/*
 * t-rfc5322.c - unit tests for the RFC 5322 address parser: every address
 * example of RFC 5322 Appendix A, the forms real callers pass (cron's
 * MAILTO, folded headers, UTF-8), and every SMTP injection we could think
 * of, which must all fail without touching the caller's list.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rfc5322.h"
#include "tap.h"

/*
 * One row: the input (sizeof keeps embedded NULs), then either the
 * addresses it yields joined by one space, or a substring of the error.
 */
struct list_case {
	const char *in;
	size_t len;
	const char *want;
	const char *err;
};
#define OK(in, want)                                                           \
	{                                                                      \
		in, sizeof(in) - 1, want, NULL                                 \
	}
#define ERR(in, err)                                                           \
	{                                                                      \
		in, sizeof(in) - 1, NULL, err                                  \
	}

static const struct list_case list_cases[] = {
	/* RFC 5322 A.1.1: simple addressing */
	OK("John Doe <jdoe@machine.example>", "jdoe@machine.example"),
	OK("Michael Jones <mjones@machine.example>", "mjones@machine.example"),
	OK("Mary Smith <mary@example.net>", "mary@example.net"),
	/* A.1.2: different types of mailboxes */
	OK("\"Joe Q. Public\" <john.q.public@example.com>",
	    "john.q.public@example.com"),
	OK("Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
	    "mary@x.test jdoe@example.org one@y.test"),
	OK("<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" "
	   "<sysservices@example.net>",
	    "boss@nil.test sysservices@example.net"),
	/* A.1.3: group addresses */
	OK("Pete <pete@silly.example>", "pete@silly.example"),
	OK("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
	    "c@a.test joe@where.test jdoe@one.test"),
	OK("Undisclosed recipients:;", ""),
	/* A.2: reply messages */
	OK("\"Mary Smith: Personal Account\" <smith@home.example>",
	    "smith@home.example"),
	OK("John Doe <jdoe@machine.example>, "
	   "\"Mary Smith: Personal Account\" <smith@home.example>",
	    "jdoe@machine.example smith@home.example"),
	/* A.3: resent fields */
	OK("Mary Smith <mary@example.net>", "mary@example.net"),
	OK("Jane Brown <j-brown@other.example>", "j-brown@other.example"),
	/* A.4: trace fields (the "for" clause) */
	OK("John Doe <jdoe@node.example>", "jdoe@node.example"),
	OK("<mary@example.net>", "mary@example.net"),
	/* A.5: white space, comments and other oddities */
	OK("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	    "pete@silly.test"),
	OK("A Group(Some people)\r\n"
	   "     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
	   "         joe@example.org,\r\n"
	   "  John <jdoe@one.test> (my dear friend); (the end of the group)",
	    "c@public.example joe@example.org jdoe@one.test"),
	OK("(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;",
	    ""),
	/* A.6.1: obsolete addressing */
	OK("Joe Q. Public <john.q.public@example.com>",
	    "john.q.public@example.com"),
	OK("Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example",
	    "mary@example.net jdoe@test.example"),
	/* A.6.3: obsolete white space and comments */
	OK("John Doe <jdoe@machine(comment).  example>",
	    "jdoe@machine.example"),
	OK("Mary Smith\r\n   \r\n <mary@example.net>", "mary@example.net"),

	/* source routes */
	OK("<@node.test,@x.test:mary@example.net>", "mary@example.net"),
	OK("<,@a.test,,@b.test:m@x>", "m@x"),
	OK("Name <@a.test, @b.test : m@x>", "m@x"),
	/* local parts: quoted only where RFC 5321 needs it */
	OK("\"john doe\"@example.com", "\"john doe\"@example.com"),
	OK("\"john\"@example.com", "john@example.com"),
	OK("\"john.doe\"@x", "john.doe@x"),
	OK("\"john..doe\"@x", "\"john..doe\"@x"),
	OK("\".john\"@x", "\".john\"@x"),
	OK("\"a\\b\"@x", "ab@x"),
	OK("\"a\\\"b\"@x", "\"a\\\"b\"@x"),
	OK("\"a\\\\b\"@x", "\"a\\\\b\"@x"),
	OK("\"a\" . \"b\"@x", "a.b@x"),
	OK("\"a b\".c@x", "\"a b.c\"@x"),
	OK("\"john\r\n doe\"@x", "\"john doe\"@x"),
	OK("\"\"@x", "\"\"@x"),
	OK("a!#$%&'*+-/=?^_`{|}~@x", "a!#$%&'*+-/=?^_`{|}~@x"),
	OK("john.(c)doe@x", "john.doe@x"),
	OK("john . doe @ x . y", "john.doe@x.y"),
	OK("a\t@\tx", "a@x"),
	/* domains */
	OK("user@[192.0.2.1]", "user@[192.0.2.1]"),
	OK("user@[IPv6:::1]", "user@[IPv6:::1]"),
	OK("user@[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]"),
	OK("user@[ 192.0.2.1 ]", "user@[192.0.2.1]"),
	OK("User@Example.COM", "User@Example.COM"),
	/* bare local names */
	OK("root", "root"),
	OK("www-data", "www-data"),
	OK("root, admin", "root admin"),
	OK("Root User <root>", "root"),
	OK("\"john doe\"", "\"john doe\""),
	/* empty inputs and empty elements */
	OK("", ""),
	OK("   ", ""),
	OK(" \t\r\n \n\t", ""),
	OK("(just a comment)", ""),
	OK(",", ""),
	OK(", ,,", ""),
	OK("a@x, , b@y", "a@x b@y"),
	OK(",a@x,", "a@x"),
	OK("undisclosed-recipients:;", ""),
	OK("undisclosed-recipients:", ""),
	/* groups */
	OK("G: a@x;, b@y", "a@x b@y"),
	OK("G1: a@x;, G2: b@y, c@z;", "a@x b@y c@z"),
	OK("G:,,a@x,,;", "a@x"),
	OK("G: a@x, Name <b@y>", "a@x b@y"),
	/* what callers pass */
	OK("a@x,b@y", "a@x b@y"),
	OK("Name <a@x>, \"Last, First\" <b@y>", "a@x b@y"),
	OK("a@x,\r\n b@y", "a@x b@y"),
	OK("a@x,\n\tb@y", "a@x b@y"),
	OK("Mary\n Smith <m@x>", "m@x"),
	OK("a@x (comment), (c) b@y", "a@x b@y"),
	OK("\"quoted\" (comment) <a@x>", "a@x"),
	OK("Name <a @ x . y>", "a@x.y"),
	OK("<a@x>", "a@x"),
	OK("=?UTF-8?B?SsO2cmc=?= <jorg@example.de>", "jorg@example.de"),
	OK("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>",
	    "keld@dkuug.dk"),
	OK("=?utf-8?q?J=C3=B6rg?= =?utf-8?q?_M?= <a@x>", "a@x"),
	/* SMTPUTF8 */
	OK("J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc"
	   "cher.example>",
	    "j\xc3\xb6rg@b\xc3\xbc"
	    "cher.example"),
	OK("\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac",
	    "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac"),
	OK("\"J\xc3\xb6rg M\"@x", "\"J\xc3\xb6rg M\"@x"),

	/* injection: control characters outside folding white space */
	ERR("a@x\r\nRCPT TO:<evil@y>", "control character"),
	ERR("a@x\nDATA", "control character"),
	ERR("a@x\rDATA", "control character"),
	ERR("a@x\r\n", "control character"),
	ERR("a@x\n", "control character"),
	ERR("a@x\r", "control character"),
	ERR("a@x\r \n b@y", "control character"),
	ERR("a@x,\r\n\r\n b@y", "control character"),
	ERR("a@x\n\r\n b@y", "control character"),
	ERR("a@x\0b@y", "control character"),
	ERR("a@x\0", "control character"),
	ERR("a@x\x7f", "control character"),
	ERR("a@x\x1b[31m", "control character"),
	ERR("a\x01@x", "control character"),
	ERR("\"a\r\nRCPT TO:<b@y>\"@x", "control character"),
	ERR("\"a\nb\"@x", "control character"),
	ERR("(a\r\nDATA\r\n.\r\n)a@x", "control character"),
	ERR("a@[1.2.3.4\r\nDATA]", "control character"),
	ERR("a@x>\r\nRCPT TO:<b@y", "control character"),
	ERR("\"a\tb\"@x", "control character"),
	/* injection: angle brackets where they cannot be */
	ERR("a@x>RCPT TO:<b@y", "unbalanced '>'"),
	ERR("<a@x> <b@y>", "unexpected '<'"),
	ERR("<a@x", "unbalanced '<'"),
	ERR("<", "unbalanced '<'"),
	ERR("a@x>", "unbalanced '>'"),
	ERR(">", "unbalanced '>'"),
	ERR("<<a@x>>", "unexpected '<'"),
	ERR("<a@x>>", "unbalanced '>'"),
	ERR("Name <a@x", "unbalanced '<'"),
	ERR("Name <a@x, b@y>", "unexpected ','"),
	ERR("<a@x> b@y", "unexpected 'b'"),
	ERR("\"a<b\"@x", "angle bracket"),
	ERR("\"a>b\"@x", "angle bracket"),
	ERR("a@[<x>]", "angle bracket"),
	ERR("<>", "empty address"),
	ERR("Name <>", "empty address"),
	ERR("\"\"", "empty address"),
	/* unbalanced comments, quotes and brackets */
	ERR("(a@x", "unbalanced '('"),
	ERR("((a) a@x", "unbalanced '('"),
	ERR("a@x (\\)", "unbalanced '('"),
	ERR("a@x)", "unbalanced ')'"),
	ERR("\"a@x", "unbalanced '\"'"),
	ERR("a\"@x", "unbalanced '\"'"),
	ERR("\"a\\\"@x", "unbalanced '\"'"),
	ERR("a@[1.2.3.4", "unbalanced '['"),
	ERR("a@1.2.3.4]", "unbalanced ']'"),
	ERR("a@[1[2]", "invalid domain literal"),
	ERR("a@[1\\ 2]", "invalid domain literal"),
	ERR("a@[]", "empty domain literal"),
	ERR("\"a\\\r\n b\"@x", "invalid quoted-pair"),
	/* empty parts */
	ERR("@x", "empty local part"),
	ERR("a@x, @y", "empty local part"),
	ERR("<@x>", "empty local part"),
	ERR("a@", "empty domain"),
	ERR("a@, b@y", "empty domain"),
	ERR("<a@>", "empty domain"),
	ERR("a@x..y", "empty label in domain"),
	ERR("a@.x", "empty label in domain"),
	ERR("a@x.", "empty label in domain"),
	ERR(".a@x", "empty label in local part"),
	ERR("a..b@x", "empty label in local part"),
	ERR("a.@x", "empty label in local part"),
	/* garbage */
	ERR("a@b c@d", "unexpected 'c'"),
	ERR("<a@b> junk", "unexpected 'junk'"),
	ERR("root admin", "unexpected 'admin'"),
	ERR("a@b@c", "unexpected '@'"),
	ERR("a@\"x\"", "unexpected quoted string in domain"),
	ERR("a@x.[1.2.3.4]", "empty label in domain"),
	ERR("[1.2.3.4] <a@x>", "unexpected domain literal"),
	ERR("G: H: a@x;;", "nested group"),
	ERR("G: a@x;;", "unexpected ';'"),
	ERR("a@x; b@y", "unexpected ';'"),
	ERR(":;", "unexpected ':'"),
	ERR("a\\b@x", "unexpected '\\'"),
	ERR("a@x, <b@y", "unbalanced '<'"),
	ERR("<@x.test a@y>", "unexpected 'a' in source route"),
};

/* Join l->v[from...] with single spaces. */
static char *
join(const struct strlist *l, size_t from)
{
	struct buf b = BUF_INIT;

	buf_init(&b);
	for (size_t i = from; i < l->n; i++) {
		if (i > from)
			buf_addch(&b, ' ');
		buf_addstr(&b, l->v[i]);
	}
	return buf_detach(&b);
}

/* Escape the input for a test name, so TAP output stays one line each. */
static char *
name_of(const char *prefix, const char *s, size_t len)
{
	struct buf b = BUF_INIT;

	buf_init(&b);
	buf_addstr(&b, prefix);
	buf_addstr(&b, " '");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || c >= 0x80 || c == '#')
			buf_addf(&b, "\\x%02x", c);
		else
			buf_addch(&b, c);
	}
	buf_addch(&b, '\'');
	return buf_detach(&b);
}

static void
test_list_table(void)
{
	for (size_t i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]);
	     i++) {
		const struct list_case *c = &list_cases[i];
		struct strlist out = STRLIST_INIT;
		char *err = NULL, *name, *got;
		int r;

		/* a sentinel shows both appending and "unchanged on error" */
		strlist_push(&out, "sentinel");
		r = rfc5322_parse_list(c->in, c->len, &out, &err);
		name = name_of(c->want ? "parse" : "reject", c->in, c->len);
		if (c->want) {
			got = join(&out, 1);
			if (r != 0)
				printf("# unexpected error: %s\n", err);
			ok(r == 0 && err == NULL && out.n >= 1 &&
			        !strcmp(out.v[0], "sentinel") &&
			        !strcmp(got, c->want),
			    name);
			if (r == 0 && strcmp(got, c->want))
				printf("#   got:  '%s'\n#   want: '%s'\n", got,
				    c->want);
			free(got);
		} else {
			int good = r == -1 && err != NULL &&
			    strstr(err, c->err) != NULL &&
			    !strncmp(err, "invalid address '", 17) &&
			    strpbrk(err, "\r\n") == NULL && out.n == 1 &&
			    !strcmp(out.v[0], "sentinel");

			ok(good, name);
			if (!good)
				printf("#   got:  %d '%s' (%zu entries)\n"
				       "#   want: -1 '...%s...'\n",
				    r, err ? err : "(null)", out.n, c->err);
		}
		free(name);
		free(err);
		strlist_release(&out);
	}
}

/* The messages themselves: escaped, quoted from the failing element. */
static void
test_messages(void)
{
	struct strlist out = STRLIST_INIT;
	char *err = NULL, big[600];
	static const char nul[] = "a\0b";
	static const char inj[] = "a@x\r\nRCPT TO:<e@y>";

	rfc5322_parse_list(inj, strlen(inj), &out, &err);
	is_str(err,
	    "invalid address 'a@x\\r\\nRCPT TO:<e@y>': "
	    "control character",
	    "message escapes CR LF");
	free(err);

	rfc5322_parse_list(nul, sizeof(nul) - 1, &out, &err);
	is_str(err, "invalid address 'a\\x00b': control character",
	    "message escapes NUL");
	free(err);

	rfc5322_parse_list("a@x\t\x7f", 5, &out, &err);
	is_str(err, "invalid address 'a@x\\t\\x7f': control character",
	    "message escapes TAB and DEL");
	free(err);

	rfc5322_parse_list("a@x, <b@y", 9, &out, &err);
	is_str(err, "invalid address '<b@y': unbalanced '<'",
	    "message quotes the failing element");
	free(err);

	rfc5322_parse_list("a@x,\r\n b@y>", 11, &out, &err);
	is_str(err, "invalid address 'b@y>': unbalanced '>'",
	    "message skips the fold before the element");
	free(err);

	/* 500 bytes of "x y, ", an error at once: the quote stops at 200 */
	for (size_t i = 0; i < 500; i += 5)
		memcpy(big + i, "x y, ", 5);
	rfc5322_parse_list(big, 500, &out, &err);
	ok(err &&
	        strlen(err) ==
	            strlen("invalid address '") + 200 +
	                strlen("...': unexpected 'y' after address"),
	    "message truncates the input at 200 bytes");
	ok(err && strstr(err, "...': unexpected 'y' after address"),
	    "truncated message ends with ...");
	free(err);

	/* a UTF-8 sequence straddling byte 200 is not cut in half */
	memset(big, 'a', 199);
	memcpy(big + 199, "\xc3\xb6 b", 4);
	rfc5322_parse_list(big, 203, &out, &err);
	ok(err && strstr(err, "aaa...'") != NULL,
	    "truncation backs up to a UTF-8 boundary");
	free(err);

	is_int(out.n, 0, "no address added by any of those");
	strlist_release(&out);
}

/* len is honoured: nothing past it is read */
static void
test_len(void)
{
	struct strlist out = STRLIST_INIT;
	char *err = NULL, *got;
	static const char buf[] = "a@x, b@y>\r\nRCPT TO:<evil@z>";
	char *exact;
	int r;

	r = rfc5322_parse_list(buf, 8, &out, &err);
	got = join(&out, 0);
	is_int(r, 0, "garbage past len is not read");
	is_str(got, "a@x b@y", "addresses within len");
	free(got);
	strlist_release(&out);

	r = rfc5322_parse_list(buf, 0, &out, &err);
	is_int(r + (int)out.n, 0, "len 0 adds nothing");

	/* an exact-size heap copy without NUL: ASan catches an over-read */
	exact = xmalloc(3);
	memcpy(exact, "a@x", 3);
	r = rfc5322_parse_list(exact, 3, &out, &err);
	is_int(r, 0, "unterminated input parses");
	is_str(out.n == 1 ? out.v[0] : NULL, "a@x", "unterminated input");
	memcpy(exact, "\"a@", 3);
	r = rfc5322_parse_list(exact, 3, &out, &err);
	ok(r == -1 && strstr(err, "unbalanced '\"'"),
	    "unterminated quote at the end of the buffer");
	free(err);
	memcpy(exact, "a\\", 2);
	r = rfc5322_parse_list(exact, 2, &out, &err);
	ok(r == -1, "backslash at the end of the buffer");
	free(err);
	memcpy(exact, "(\\", 2);
	r = rfc5322_parse_list(exact, 2, &out, &err);
	ok(r == -1 && strstr(err, "unbalanced '('"),
	    "quoted-pair at the end of a comment");
	free(err);
	memcpy(exact, "\"\\", 2);
	r = rfc5322_parse_list(exact, 2, &out, &err);
	ok(r == -1 && strstr(err, "unbalanced '\"'"),
	    "quoted-pair at the end of a quoted string");
	free(err);
	memcpy(exact, "a\r", 2);
	r = rfc5322_parse_list(exact, 2, &out, &err);
	ok(r == -1 && strstr(err, "control character"),
	    "CR at the end of the buffer");
	free(err);
	memcpy(exact, "a\r\n", 3);
	r = rfc5322_parse_list(exact, 3, &out, &err);
	ok(r == -1 && strstr(err, "control character"),
	    "CR LF at the end of the buffer");
	free(err);
	free(exact);
	is_int(out.n, 1, "errors left the list alone");
	strlist_release(&out);
}

/* The 998-byte limit, on both sides. */
static void
test_length(void)
{
	struct strlist out = STRLIST_INIT;
	char *err = NULL, addr[1100];
	const char *why;
	int r;

	memset(addr, 'a', sizeof(addr));
	memcpy(addr + 996, "@x", 2); /* 998 bytes */
	r = rfc5322_parse_list(addr, 998, &out, &err);
	ok(r == 0 && out.n == 1 && strlen(out.v[0]) == 998,
	    "998-byte address accepted");
	memcpy(addr + 996, "a@x", 3); /* 999 bytes */
	r = rfc5322_parse_list(addr, 999, &out, &err);
	ok(r == -1 && strstr(err, "too long") && out.n == 1,
	    "999-byte address rejected");
	free(err);
	strlist_release(&out);

	addr[998] = '\0';
	is_int(rfc5322_addr_is_safe(addr, &why), 1, "safe: 998 bytes");
	addr[998] = 'a';
	addr[999] = '\0';
	why = NULL;
	is_int(rfc5322_addr_is_safe(addr, &why), 0, "unsafe: 999 bytes");
	is_str(why, "too long", "why: too long");
}

struct mailbox_case {
	const char *in;
	const char *want;
	const char *err;
};

static const struct mailbox_case mailbox_cases[] = {
	{ "a@x", "a@x", NULL },
	{ "<a@x>", "a@x", NULL },
	{ "Name <a@x>", "a@x", NULL },
	{ "\"Last, First\" <a@x>", "a@x", NULL },
	{ "  a@x (comment) ", "a@x", NULL },
	{ "<@route.test:a@x>", "a@x", NULL },
	{ "root", "root", NULL },
	{ "Root User <root>", "root", NULL },
	{ "\"john doe\"@x", "\"john doe\"@x", NULL },
	{ "<>", "", NULL },
	{ " <> ", "", NULL },
	{ "Name <>", "", NULL },
	{ "\"\"", "", NULL },
	{ "", "", NULL },
	{ "  \t ", "", NULL },
	{ "a@x, b@y", NULL, "expected one address" },
	{ "a@x,", NULL, "expected one address" },
	{ ",a@x", NULL, "expected one address" },
	{ "G: a@x;", NULL, "expected one address" },
	{ "Undisclosed recipients:;", NULL, "expected one address" },
	{ "a@x\r\nDATA", NULL, "control character" },
	{ "<a@x", NULL, "unbalanced '<'" },
	{ "a@x>", NULL, "unbalanced '>'" },
	{ "a@x b", NULL, "unexpected 'b'" },
	{ "@x", NULL, "empty local part" },
	{ "a@", NULL, "empty domain" },
};

static void
test_mailbox(void)
{
	for (size_t i = 0; i < sizeof(mailbox_cases) / sizeof(mailbox_cases[0]);
	     i++) {
		const struct mailbox_case *c = &mailbox_cases[i];
		char *addr = NULL, *err = NULL;
		char *name = name_of("mailbox", c->in, strlen(c->in));
		int r = rfc5322_parse_mailbox(c->in, &addr, &err);

		if (c->want) {
			if (r != 0)
				printf("# unexpected error: %s\n", err);
			is_str(r == 0 ? addr : NULL, c->want, name);
		} else {
			int good = r == -1 && err && strstr(err, c->err);

			ok(good, name);
			if (!good)
				printf("#   got:  %d '%s'\n#   want: '%s'\n", r,
				    err ? err : "(null)", c->err);
		}
		free(name);
		free(addr);
		free(err);
	}
}

struct safe_case {
	const char *addr;
	const char *why; /* NULL: safe */
};

static const struct safe_case safe_cases[] = {
	{ "a@x", NULL },
	{ "root", NULL },
	{ "\"john doe\"@x", NULL },
	{ "\"a\\\" b\"@x", NULL },
	{ "j\xc3\xb6rg@b\xc3\xbc"
	  "cher.example",
	    NULL },
	{ "user@[IPv6:::1]", NULL },
	{ "", "empty" },
	{ "a b@x", "white space" },
	{ "a\t@x", "white space" },
	{ "\"a b\"@x y", "white space" },
	{ "a@x ", "white space" },
	{ "a\r\n@x", "control character" },
	{ "a@x\r\nDATA", "control character" },
	{ "a\x7f@x", "control character" },
	{ "a\x01@x", "control character" },
	{ "\"a\tb\"@x", "control character" },
	{ "a<b@x", "angle bracket" },
	{ "a@x>", "angle bracket" },
	{ "a@x>RCPT TO:<b@y", "angle bracket" },
	{ "\"a<b\"@x", "angle bracket" },
	{ "\"a b@x", "unbalanced quote" },
};

static void
test_safe(void)
{
	for (size_t i = 0; i < sizeof(safe_cases) / sizeof(safe_cases[0]);
	     i++) {
		const struct safe_case *c = &safe_cases[i];
		const char *why = NULL;
		char *name = name_of("safe", c->addr, strlen(c->addr));
		int r = rfc5322_addr_is_safe(c->addr, &why);

		if (c->why == NULL)
			ok(r == 1, name);
		else
			is_str(r == 0 ? why : "(safe)", c->why, name);
		free(name);
	}
}

static void
test_domain(void)
{
	static const struct {
		const char *addr, *domain;
	} cases[] = {
		{ "a@x", "x" },
		{ "a@Example.COM", "Example.COM" },
		{ "root", NULL },
		{ "", NULL },
		{ "a@", "" },
		{ "a@b@c", "c" },
		{ "\"a@b\"@c", "c" },
		{ "\"a@b\"", NULL },
		{ "\"a\\\"@b\"@c", "c" },
		{ "\"a@b", NULL },
		{ "a@[IPv6:::1]", "[IPv6:::1]" },
		{ "a@[x@y]", "[x@y]" },
		{ "j\xc3\xb6rg@b\xc3\xbc"
		  "cher.example",
		    "b\xc3\xbc"
		    "cher.example" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *name = name_of(
		    "domain", cases[i].addr, strlen(cases[i].addr));

		is_str(rfc5322_domain(cases[i].addr), cases[i].domain, name);
		free(name);
	}
}

static void
test_same_address(void)
{
	static const struct {
		const char *a, *b;
		int same;
	} cases[] = {
		{ "a@x.example", "a@x.example", 1 },
		{ "a@x.example", "a@X.Example", 1 },
		{ "a@x.example", "A@x.example", 0 },
		{ "a@x.example", "a@y.example", 0 },
		{ "a@x.example", "ab@x.example", 0 },
		{ "root", "root", 1 },
		{ "root", "root@x", 0 },
		{ "\"a@b\"@x", "\"a@b\"@X", 1 },
		{ "\"a@b\"@x", "\"a@c\"@x", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *name = xasprintf(
		    "same address '%s' '%s'", cases[i].a, cases[i].b);

		is_int(rfc5322_same_address(cases[i].a, cases[i].b),
		    cases[i].same, name);
		free(name);
	}
}

/*
 * The display name of the first mailbox: the phrase as written, or the
 * comment of the old "addr (Name)" form (want starting with '('), NULL for
 * none.
 */
static void
test_display_name(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "John Doe <jdoe@machine.example>", "John Doe" },
		{ "\"Doe, John\" <j@x>", "\"Doe, John\"" },
		{ "\"Joe Q. Public\" <john.q.public@example.com>",
		    "\"Joe Q. Public\"" },
		{ "Joe Q. Public <john.q.public@example.com>",
		    "Joe Q. Public" },
		{ "=?UTF-8?B?Sm9zw6k=?= <jose@example.com>",
		    "=?UTF-8?B?Sm9zw6k=?=" },
		{ "=?UTF-8?Q?Kim_=EA=B9=80?= Lee\t<kim@example.org>",
		    "=?UTF-8?Q?Kim_=EA=B9=80?= Lee" },
		/* escapes and brackets inside quotes are part of the name */
		{ "\"a <b@evil.example>, c\" <j@x>",
		    "\"a <b@evil.example>, c\"" },
		{ "\"x\\\" <y\" <j@x>", "\"x\\\" <y\"" },
		/* comments in the phrase are kept; those in the address not */
		{ "Pete(A nice \\) chap) <pete(his account)@silly.test(his "
		  "host)>",
		    "Pete(A nice \\) chap)" },
		/* folding is removed, the white space after it kept */
		{ "  John\r\n Doe\r\n\t <j@x>", "John Doe" },
		{ "\"Doe,\r\n John\" <j@x>", "\"Doe, John\"" },
		/* the old comment form */
		{ "jdoe@example.com (John Doe)", "(John Doe)" },
		{ "jdoe@example.com (John (the) Doe), x@y",
		    "(John (the) Doe)" },
		{ "j(one)@x (two)", "(two)" },
		{ "(First) j@x", "(First)" },
		/* none */
		{ "jdoe@example.com", NULL },
		{ "<jdoe@example.com>", NULL },
		{ "  <jdoe@example.com> ", NULL },
		{ "j@x, Ann <a@y>", NULL },
		/* the first mailbox counts: of a list, of a group */
		{ "Ann <a@x>, Bob <b@y>", "Ann" },
		{ ", , Ann <a@x>", "Ann" },
		{ "Team: Ann <a@x>, b@y;", "Ann" },
		{ "Empty:;, Ann <a@x>", "Ann" },
		{ "Team: a@x (Ann);", "(Ann)" },
		/* unbalanced: no name rather than a wrong one */
		{ "\"Ann <a@x>", NULL },
		{ "Ann (x <a@x>", NULL },
		{ "", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].in, *want = cases[i].want;
		char *name = name_of("display name", in, strlen(in));
		int is_comment = -1;
		char *got = rfc5322_display_name(in, strlen(in), &is_comment);

		is_str(got, want, name);
		is_int(is_comment, want && want[0] == '(' && !strchr(in, '<'),
		    name);
		free(got);
		free(name);
	}
}

/* Appending: a second call adds after the first call's results. */
static void
test_append(void)
{
	struct strlist out = STRLIST_INIT;
	char *err = NULL, *got;

	rfc5322_parse_list("a@x", 3, &out, &err);
	rfc5322_parse_list("b@y, c@z", 8, &out, &err);
	got = join(&out, 0);
	is_str(got, "a@x b@y c@z", "results are appended");
	free(got);
	strlist_release(&out);
}

int
main(void)
{
	test_list_table();
	test_messages();
	test_len();
	test_length();
	test_mailbox();
	test_safe();
	test_domain();
	test_append();
	test_same_address();
	test_display_name();
	return done_testing();
}
