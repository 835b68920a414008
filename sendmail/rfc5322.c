/*
 * rfc5322.c - parse RFC 5322 address lists into bare envelope addresses
 * (see rfc5322.h).
 *
 * Three passes over the input, each simple enough to check by eye:
 *
 *  1. check_controls() rejects every control character that is not part of
 *     folding white space.  Doing this first, over the raw bytes, means no
 *     later bug can let a CR or LF through into an SMTP command.
 *  2. lex() cuts the input into tokens (atoms, quoted strings, domain
 *     literals and the specials . @ < > , : ;), dropping white space and
 *     comments and checking that quotes, comments and brackets balance.
 *  3. A recursive-descent parser over the token array builds the envelope
 *     addresses.  Keeping all tokens lets it look ahead as far as it needs
 *     to tell "Name <addr>" from "Group: ...;" from a plain addr-spec.
 *
 * Results go to a private list that is handed over only on success, so a
 * caller's list never holds half of a bad header.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rfc5322.h"

/*
 * The longest address accepted: an RFC 5322 line.  RFC 5321 limits are
 * tighter (a 256-byte path), but enforcing those is the server's call.
 */
#define ADDR_MAX 998
/* how much of the input an error message quotes */
#define QUOTE_MAX 200
/* how much of an atom an error message names */
#define ATOM_MAX 40

/* Token types: specials are their own character. */
enum {
	T_END = 0,
	T_ATOM = 256,
	T_QSTR, /* quoted string, quotes included in the span */
	T_DLIT  /* domain literal, brackets included in the span */
};

/* Where a mailbox is being parsed: decides what a group or "<>" means. */
enum mode {
	M_LIST,   /* top level of an address list: groups allowed */
	M_GROUP,  /* inside a group: no nested groups */
	M_MAILBOX /* rfc5322_parse_mailbox(): one mailbox, "<>" allowed */
};

struct tok {
	int type;
	size_t off; /* raw span in the input */
	size_t len;
};

struct parser {
	const char *s;
	size_t len;
	struct tok *tok; /* always ends with a T_END token */
	size_t ntok, alloc;
	size_t i;        /* the next token */
	size_t elem;     /* start of the element being parsed */
	const char *why; /* the problem, once one is found */
	char whybuf[96];
};

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* White space as the lexer sees it: check_controls() vetted every CR/LF. */
static int
is_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 5322 atext, plus every byte >= 0x80 for SMTPUTF8 (RFC 6532). */
static int
is_atext(int c)
{
	if (c >= 0x80)
		return 1;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int
fail(struct parser *p, const char *why)
{
	if (p->why == NULL)
		p->why = why;
	return -1;
}

/* Name a token for a message: "'<'", "'junk'", "quoted string"... */
static void
describe(const struct parser *p, const struct tok *t, char *dst, size_t n)
{
	switch (t->type) {
	case T_END:
		snprintf(dst, n, "end of input");
		break;
	case T_ATOM:
		snprintf(dst, n, "'%.*s%s'",
		    (int)(t->len > ATOM_MAX ? ATOM_MAX : t->len), p->s + t->off,
		    t->len > ATOM_MAX ? "..." : "");
		break;
	case T_QSTR:
		snprintf(dst, n, "quoted string");
		break;
	case T_DLIT:
		snprintf(dst, n, "domain literal");
		break;
	default:
		snprintf(dst, n, "'%c'", t->type);
		break;
	}
}

/* "unexpected <token><where>"; a stray '>' is reported as unbalanced. */
static int
unexpected(struct parser *p, const char *where)
{
	const struct tok *t = &p->tok[p->i];
	char what[64];

	if (t->type == '>')
		return fail(p, "unbalanced '>'");
	describe(p, t, what, sizeof(what));
	snprintf(p->whybuf, sizeof(p->whybuf), "unexpected %s%s", what, where);
	return fail(p, p->whybuf);
}

/*
 * Pass 1.  The only control characters allowed are TAB and line breaks
 * that fold: CR LF or a bare LF, followed by SP or TAB.  A line break
 * followed by anything else would end the line on the wire, which is how
 * "a@x\r\nRCPT TO:<evil@y>" smuggles a command in.
 */
static int
check_controls(struct parser *p)
{
	const unsigned char *s = (const unsigned char *)p->s;
	size_t i;

	for (i = 0; i < p->len; i++) {
		if (s[i] == '\r') {
			if (i + 2 < p->len && s[i + 1] == '\n' &&
			    is_wsp(s[i + 2])) {
				i++;
				continue;
			}
		} else if (s[i] == '\n') {
			if (i + 1 < p->len && is_wsp(s[i + 1]))
				continue;
		} else if (s[i] == '\t' || (s[i] >= 0x20 && s[i] != 0x7f))
			continue;
		return fail(p, "control character");
	}
	return 0;
}

static void
add_tok(struct parser *p, int type, size_t off, size_t len)
{
	grow_array((void **)&p->tok, &p->alloc, p->ntok + 1, sizeof(*p->tok));
	p->tok[p->ntok].type = type;
	p->tok[p->ntok].off = off;
	p->tok[p->ntok].len = len;
	p->ntok++;
}

/*
 * Skip a comment starting at *pos.  Comments nest; counting depth instead
 * of recursing keeps "((((..." from exhausting the stack.
 */
static int
skip_comment(struct parser *p, size_t *pos)
{
	size_t i = *pos + 1, depth = 1;

	while (i < p->len) {
		char c = p->s[i];

		if (c == '\\') {
			/* a quoted-pair: the next byte is ctext, whatever */
			i += 2;
			continue;
		}
		i++;
		if (c == '(')
			depth++;
		else if (c == ')' && --depth == 0) {
			*pos = i;
			return 0;
		}
	}
	return fail(p, "unbalanced '('");
}

/*
 * A quoted-pair is "\" followed by VCHAR or WSP (RFC 5322 section 3.2.1);
 * a backslash before a line break would hide the break.
 */
static int
qpair_ok(const struct parser *p, size_t i)
{
	return i + 1 < p->len && p->s[i + 1] != '\r' && p->s[i + 1] != '\n';
}

static int
lex_qstr(struct parser *p, size_t *pos)
{
	size_t i = *pos + 1;

	while (i < p->len) {
		if (p->s[i] == '"') {
			add_tok(p, T_QSTR, *pos, i + 1 - *pos);
			*pos = i + 1;
			return 0;
		}
		if (p->s[i] == '\\') {
			if (i + 1 >= p->len)
				break;
			if (!qpair_ok(p, i))
				return fail(p, "invalid quoted-pair");
			i += 2;
		} else
			i++;
	}
	return fail(p, "unbalanced '\"'");
}

/* dtext: printable ASCII but '[', ']' and '\', and UTF-8 */
static int
is_dtext(int c)
{
	return c >= 0x21 && c != '[' && c != ']' && c != '\\' && c != 0x7f;
}

static int
lex_dlit(struct parser *p, size_t *pos)
{
	const unsigned char *s = (const unsigned char *)p->s;
	size_t i = *pos + 1;

	while (i < p->len) {
		if (s[i] == ']') {
			add_tok(p, T_DLIT, *pos, i + 1 - *pos);
			*pos = i + 1;
			return 0;
		}
		if (s[i] == '\\') {
			/*
			 * obs-dtext allows quoted-pairs, but RFC 5321 has no
			 * way to write an escaped byte in an address literal:
			 * accept only those that decode to plain dtext.
			 */
			if (i + 1 >= p->len)
				break;
			if (!is_dtext(s[i + 1]))
				return fail(p, "invalid domain literal");
			i += 2;
		} else if (s[i] == '[')
			return fail(p, "invalid domain literal");
		else
			i++;
	}
	return fail(p, "unbalanced '['");
}

/* Pass 2: tokens, without white space and comments. */
static int
lex(struct parser *p)
{
	size_t i = 0;

	while (i < p->len) {
		unsigned char c = (unsigned char)p->s[i];

		if (is_fws(c)) {
			i++;
		} else if (c == '(') {
			if (skip_comment(p, &i) == -1)
				return -1;
		} else if (c == ')') {
			return fail(p, "unbalanced ')'");
		} else if (c == '"') {
			if (lex_qstr(p, &i) == -1)
				return -1;
		} else if (c == '[') {
			if (lex_dlit(p, &i) == -1)
				return -1;
		} else if (c == ']') {
			return fail(p, "unbalanced ']'");
		} else if (is_atext(c)) {
			size_t start = i;

			while (i < p->len && is_atext((unsigned char)p->s[i]))
				i++;
			add_tok(p, T_ATOM, start, i - start);
		} else if (strchr(".@<>,:;", c) != NULL) {
			/* strchr() would match the NUL, but that is a CTL */
			add_tok(p, c, i, 1);
			/* an error quotes the input from the failing element */
			if (c == ',')
				p->elem = i + 1;
			i++;
		} else {
			snprintf(
			    p->whybuf, sizeof(p->whybuf), "unexpected '%c'", c);
			return fail(p, p->whybuf);
		}
	}
	add_tok(p, T_END, p->len, 0);
	return 0;
}

static int
peek(const struct parser *p)
{
	return p->tok[p->i].type;
}

/* The contents of a quoted string: quoted-pairs reduced, folds unfolded. */
static void
qstr_value(const struct parser *p, const struct tok *t, struct buf *b)
{
	size_t i, end = t->off + t->len - 1;

	for (i = t->off + 1; i < end; i++) {
		if (p->s[i] == '\\')
			i++;
		else if (p->s[i] == '\r' || p->s[i] == '\n')
			continue;
		buf_addch(b, p->s[i]);
	}
}

/* A domain literal as RFC 5321 writes it: no white space, no escapes. */
static void
dlit_value(const struct parser *p, const struct tok *t, struct buf *b)
{
	size_t i, end = t->off + t->len - 1;

	buf_addch(b, '[');
	for (i = t->off + 1; i < end; i++) {
		if (p->s[i] == '\\')
			i++;
		else if (is_fws((unsigned char)p->s[i]))
			continue;
		buf_addch(b, p->s[i]);
	}
	buf_addch(b, ']');
}

static int
is_word(int type)
{
	return type == T_ATOM || type == T_QSTR;
}

/* Can s be written as a dot-atom, i.e. without quotes? */
static int
is_dot_atom(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/*
 * local-part = dot-atom / quoted-string / obs-local-part, where the last is
 * word *("." word) with CFWS anywhere.  All forms mean the same string,
 * so decode it and write it the RFC 5321 way: bare if it is a dot-atom,
 * otherwise quoted with '\' only before '"' and '\'.
 */
static int
parse_local(struct parser *p, struct buf *out)
{
	struct buf v = BUF_INIT;
	size_t i;

	buf_init(&v);
	for (;;) {
		const struct tok *t = &p->tok[p->i];

		/* the caller and the loop below saw a word here */
		if (t->type == T_ATOM)
			buf_add(&v, p->s + t->off, t->len);
		else
			qstr_value(p, t, &v);
		p->i++;
		if (peek(p) != '.')
			break;
		p->i++;
		if (!is_word(peek(p))) {
			buf_release(&v);
			return fail(p, "empty label in local part");
		}
		buf_addch(&v, '.');
	}

	if (is_dot_atom(v.s, v.len))
		buf_add(out, v.s, v.len);
	else {
		buf_addch(out, '"');
		for (i = 0; i < v.len; i++) {
			if (v.s[i] == '"' || v.s[i] == '\\')
				buf_addch(out, '\\');
			buf_addch(out, v.s[i]);
		}
		buf_addch(out, '"');
	}
	buf_release(&v);
	return 0;
}

/*
 * domain = dot-atom / domain-literal / obs-domain.  The labels are kept
 * as written (no case folding): only their separators are normalised.
 */
static int
parse_domain(struct parser *p, struct buf *out)
{
	const struct tok *t = &p->tok[p->i];

	if (t->type == T_DLIT) {
		if (t->len == 2)
			return fail(p, "empty domain literal");
		dlit_value(p, t, out);
		p->i++;
		return 0;
	}
	if (t->type == '.')
		return fail(p, "empty label in domain");
	if (t->type != T_ATOM) {
		if (t->type == T_END || t->type == ',' || t->type == ';' ||
		    t->type == '>')
			return fail(p, "empty domain");
		return unexpected(p, " in domain");
	}
	for (;;) {
		t = &p->tok[p->i];
		buf_add(out, p->s + t->off, t->len);
		p->i++;
		if (peek(p) != '.')
			return 0;
		p->i++;
		if (peek(p) != T_ATOM)
			return fail(p, "empty label in domain");
		buf_addch(out, '.');
	}
}

/*
 * addr-spec = local-part "@" domain, or a bare local part, which the
 * caller will qualify with its own domain.
 */
static int
parse_addr_spec(struct parser *p, struct buf *out)
{
	switch (peek(p)) {
	case T_ATOM:
	case T_QSTR:
		break;
	case '@':
		return fail(p, "empty local part");
	case '.':
		return fail(p, "empty label in local part");
	default:
		return unexpected(p, "");
	}
	if (parse_local(p, out) == -1)
		return -1;
	if (peek(p) != '@')
		return 0;
	buf_addch(out, '@');
	p->i++;
	return parse_domain(p, out);
}

/*
 * obs-route = obs-domain-list ":", with obs-domain-list =
 * *(CFWS / ",") "@" domain *("," [CFWS] ["@" domain]).  RFC 5322 says
 * to ignore the route, so the domains are parsed and dropped.
 */
static int
skip_route(struct parser *p)
{
	struct buf scratch = BUF_INIT;
	int r = -1;

	buf_init(&scratch);
	while (peek(p) == ',')
		p->i++;
	if (peek(p) != '@') {
		unexpected(p, " in source route");
		goto out;
	}
	p->i++;
	if (parse_domain(p, &scratch) == -1)
		goto out;
	while (peek(p) == ',') {
		p->i++;
		if (peek(p) == '@') {
			p->i++;
			if (parse_domain(p, &scratch) == -1)
				goto out;
		}
	}
	if (peek(p) == ':') {
		p->i++;
		r = 0;
	} else if (peek(p) == '>')
		fail(p, "empty local part"); /* "<@x>" */
	else
		unexpected(p, " in source route");
out:
	buf_release(&scratch);
	return r;
}

/* angle-addr = "<" [obs-route] addr-spec ">" */
static int
parse_angle(struct parser *p, enum mode mode, struct buf *out)
{
	p->i++; /* the '<' */
	if (peek(p) == '>') {
		/* "<>" is the null sender, which only a sender can be */
		if (mode != M_MAILBOX)
			return fail(p, "empty address");
		p->i++;
		return 0;
	}
	if (peek(p) == T_END)
		return fail(p, "unbalanced '<'");
	if ((peek(p) == '@' || peek(p) == ',') && skip_route(p) == -1)
		return -1;
	if (peek(p) == T_END)
		return fail(p, "unbalanced '<'");
	if (parse_addr_spec(p, out) == -1)
		return -1;
	if (peek(p) == T_END)
		return fail(p, "unbalanced '<'");
	if (peek(p) != '>')
		return unexpected(p, " in angle address");
	p->i++;
	return 0;
}

/* The last check on a finished address, whatever path built it. */
static int
finish(struct parser *p, struct buf *b, enum mode mode, struct strlist *out)
{
	const char *why;

	if (b->len == 0 && mode == M_MAILBOX) {
		strlist_push_owned(out, buf_detach(b));
		return 0;
	}
	if (b->len == 2 && b->s[0] == '"')
		return fail(p, "empty address"); /* a lone "" */
	/*
	 * The grammar keeps out most of what this rejects, but a quoted
	 * local part can still carry '<', '>' or a TAB.  Checking every
	 * result here also keeps the promise of rfc5322.h independent of
	 * the grammar code above.
	 */
	if (!rfc5322_addr_is_safe(b->s, &why))
		return fail(p, why);
	strlist_push_owned(out, buf_detach(b));
	return 0;
}

static int parse_group(struct parser *, struct strlist *);

/*
 * address = mailbox / group; mailbox = name-addr / addr-spec.  Which one
 * it is shows after the leading phrase (words and, obsolete, periods): a
 * '<' starts an angle-addr, a ':' makes the phrase a group's name, and
 * anything else means the "phrase" was the start of an addr-spec.
 */
static int
parse_address(struct parser *p, enum mode mode, struct strlist *out)
{
	struct buf b = BUF_INIT;
	size_t j = p->i;
	int r;

	p->elem = p->tok[p->i].off;
	while (is_word(p->tok[j].type) || p->tok[j].type == '.')
		j++;
	if (p->tok[j].type == ':' && j > p->i) {
		if (mode == M_LIST) {
			p->i = j + 1;
			return parse_group(p, out);
		}
		return fail(p,
		    mode == M_GROUP ? "nested group" : "expected one address");
	}
	buf_init(&b);
	if (p->tok[j].type == '<') {
		p->i = j;
		r = parse_angle(p, mode, &b);
	} else
		r = parse_addr_spec(p, &b);
	if (r == 0)
		r = finish(p, &b, mode, out);
	buf_release(&b);
	return r;
}

/*
 * group = display-name ":" [group-list] ";", the name already consumed.
 * The list may hold empty elements.  A group cut off by the end of the
 * input ("undisclosed-recipients:") is common enough in the wild, and
 * harmless, so it is accepted as if the ';' were there.
 */
static int
parse_group(struct parser *p, struct strlist *out)
{
	for (;;) {
		switch (peek(p)) {
		case ';':
			p->i++;
			return 0;
		case T_END:
			return 0;
		case ',':
			p->i++;
			continue;
		}
		if (parse_address(p, M_GROUP, out) == -1)
			return -1;
		if (peek(p) != ',' && peek(p) != ';' && peek(p) != T_END)
			return unexpected(p, " after address");
	}
}

/* address-list, with the empty elements of obs-addr-list */
static int
parse_list(struct parser *p, struct strlist *out)
{
	for (;;) {
		switch (peek(p)) {
		case T_END:
			return 0;
		case ',':
			p->i++;
			continue;
		}
		if (parse_address(p, M_LIST, out) == -1)
			return -1;
		if (peek(p) != ',' && peek(p) != T_END)
			return unexpected(p, " after address");
	}
}

/*
 * "invalid address '<input>': <why>", the input quoted from the element
 * that failed, control characters escaped so the message stays one line.
 */
static char *
error_message(const struct parser *p)
{
	struct buf b = BUF_INIT;
	const unsigned char *s = (const unsigned char *)p->s;
	size_t i = p->elem, end = p->len;

	/* skip the white space (and folds) after the comma */
	while (i < end &&
	    (is_wsp(s[i]) ||
	        (s[i] == '\n' && i + 1 < end && is_wsp(s[i + 1])) ||
	        (s[i] == '\r' && i + 2 < end && s[i + 1] == '\n' &&
	            is_wsp(s[i + 2]))))
		i++;
	if (end - i > QUOTE_MAX) {
		end = i + QUOTE_MAX;
		/* do not cut a UTF-8 sequence in half */
		while (end > i && (s[end] & 0xc0) == 0x80)
			end--;
	}
	buf_addstr(&b, "invalid address '");
	for (; i < end; i++) {
		if (s[i] == '\r')
			buf_addstr(&b, "\\r");
		else if (s[i] == '\n')
			buf_addstr(&b, "\\n");
		else if (s[i] == '\t')
			buf_addstr(&b, "\\t");
		else if (s[i] < 0x20 || s[i] == 0x7f)
			buf_addf(&b, "\\x%02x", s[i]);
		else
			buf_addch(&b, s[i]);
	}
	if (end < p->len)
		buf_addstr(&b, "...");
	buf_addf(&b, "': %s", p->why ? p->why : "syntax error");
	return buf_detach(&b);
}

/* Passes 1 and 2, shared by both entry points. */
static int
prepare(struct parser *p, const char *s, size_t len)
{
	memset(p, 0, sizeof(*p));
	p->s = s;
	p->len = len;
	if (check_controls(p) == -1)
		return -1;
	return lex(p);
}

int
rfc5322_parse_list(const char *s, size_t len, struct strlist *out, char **err)
{
	struct parser p;
	struct strlist tmp = STRLIST_INIT;
	size_t i;
	int r;

	r = prepare(&p, s, len);
	if (r == 0)
		r = parse_list(&p, &tmp);
	if (r == -1) {
		*err = error_message(&p);
		strlist_release(&tmp);
	} else {
		for (i = 0; i < tmp.n; i++)
			strlist_push_owned(out, tmp.v[i]);
		free(tmp.v);
	}
	free(p.tok);
	return r;
}

int
rfc5322_parse_mailbox(const char *s, char **addr, char **err)
{
	struct parser p;
	struct strlist tmp = STRLIST_INIT;
	int r;

	r = prepare(&p, s, strlen(s));
	if (r == 0) {
		if (peek(&p) == T_END ||
		    (p.ntok == 2 && p.tok[0].type == T_QSTR &&
		        p.tok[0].len == 2)) {
			/* "", '""' and white space: the null sender */
			strlist_push(&tmp, "");
			p.i = p.ntok - 1;
		} else if (peek(&p) == ',')
			r = fail(&p, "expected one address");
		else
			r = parse_address(&p, M_MAILBOX, &tmp);
		if (r == 0 && peek(&p) == ',')
			r = fail(&p, "expected one address");
		else if (r == 0 && peek(&p) != T_END)
			r = unexpected(&p, " after address");
	}
	if (r == -1)
		*err = error_message(&p);
	else
		*addr = xstrdup(tmp.v[0]);
	strlist_release(&tmp);
	free(p.tok);
	return r;
}

/*
 * Skip a quoted local part at the start of addr; returns the byte after
 * its closing quote, or NULL if it never closes.
 */
static const char *
skip_quoted(const char *addr)
{
	const char *q = addr + 1;

	while (*q != '\0' && *q != '"') {
		if (*q == '\\' && q[1] != '\0')
			q++;
		q++;
	}
	return *q == '"' ? q + 1 : NULL;
}

int
rfc5322_addr_is_safe(const char *addr, const char **why)
{
	const char *q = addr, *quoted_end = addr;
	size_t len = strlen(addr);

	if (len == 0) {
		*why = "empty";
		return 0;
	}
	if (len > ADDR_MAX) {
		*why = "too long";
		return 0;
	}
	if (addr[0] == '"' && (quoted_end = skip_quoted(addr)) == NULL) {
		*why = "unbalanced quote";
		return 0;
	}
	for (; *q != '\0'; q++) {
		unsigned char c = (unsigned char)*q;

		if ((c == ' ' || c == '\t') && q >= quoted_end) {
			*why = "white space";
			return 0;
		}
		if (c < 0x20 || c == 0x7f) {
			*why = "control character";
			return 0;
		}
		if (c == '<' || c == '>') {
			*why = "angle bracket";
			return 0;
		}
	}
	return 1;
}

const char *
rfc5322_domain(const char *addr)
{
	const char *q = addr, *at = NULL;
	int in_literal = 0;

	if (addr[0] == '"' && (q = skip_quoted(addr)) == NULL)
		return NULL;
	/* an '@' inside "[...]" is dtext, not a separator */
	for (; *q != '\0'; q++) {
		if (*q == '[')
			in_literal = 1;
		else if (*q == ']')
			in_literal = 0;
		else if (*q == '@' && !in_literal)
			at = q;
	}
	return at ? at + 1 : NULL;
}

int
rfc5322_same_address(const char *a, const char *b)
{
	const char *da = rfc5322_domain(a), *db = rfc5322_domain(b);
	size_t la = da ? (size_t)(da - a) : strlen(a);
	size_t lb = db ? (size_t)(db - b) : strlen(b);

	if (la != lb || memcmp(a, b, la))
		return 0;
	if (!da || !db)
		return !da && !db;
	return !ascii_strcasecmp(da, db);
}

/*
 * The end of the quoted string, comment or domain literal that opens at
 * s[i] (comments nest), or 0 if it never closes.  A backslash escapes the
 * next byte in all three.
 */
static size_t
skip_span(const char *s, size_t len, size_t i)
{
	char open = s[i];
	char close = open == '(' ? ')' : open == '[' ? ']' : '"';
	size_t depth = 1;

	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == close && --depth == 0)
			return i + 1;
		else if (s[i] == open && open == '(')
			depth++;
	}
	return 0;
}

/* s[from..to) without folding and outer white space, or NULL if empty. */
static char *
unfolded(const char *s, size_t from, size_t to)
{
	struct buf b = BUF_INIT;

	while (from < to && is_fws((unsigned char)s[from]))
		from++;
	while (to > from && is_fws((unsigned char)s[to - 1]))
		to--;
	if (from == to)
		return NULL;
	buf_init(&b);
	for (size_t i = from; i < to; i++)
		if (s[i] != '\r' && s[i] != '\n')
			buf_addch(&b, s[i]);
	return buf_detach(&b);
}

char *
rfc5322_display_name(const char *s, size_t len, int *is_comment)
{
	size_t i = 0, start = 0, c_from = 0, c_to = 0;
	int content = 0; /* the element has more than white space, comments */

	*is_comment = 0;
	while (i < len) {
		char c = s[i];
		size_t end;

		switch (c) {
		case '"':
		case '(':
		case '[':
			end = skip_span(s, len, i);
			if (!end)
				return NULL;
			if (c == '(') {
				c_from = i;
				c_to = end;
			} else
				content = 1;
			i = end;
			continue;
		case '<':
			return unfolded(s, start, i);
		case ':':
			/* a group's name: the mailbox comes after it */
			start = i + 1;
			c_from = c_to = 0;
			content = 0;
			break;
		case ',':
		case ';':
			if (content)
				goto addr_spec;
			/* an empty element (obs-addr-list) or group */
			start = i + 1;
			c_from = c_to = 0;
			break;
		default:
			if (!is_fws((unsigned char)c))
				content = 1;
		}
		i++;
	}
addr_spec:
	if (!content || c_to == 0)
		return NULL;
	*is_comment = 1;
	return unfolded(s, c_from, c_to);
}
