/*
 * rfc5322.h - parse RFC 5322 address lists into bare envelope addresses.
 *
 * A pure parser: no I/O, no allocation beyond its results.  It accepts the
 * full syntax of RFC 5322 section 3.4 and the obsolete forms of section 4.4
 * that real mail still carries: display names (atoms, quoted strings, encoded
 * words, periods), angle addresses with source routes, nested comments,
 * quoted local parts, domain literals, folding white space (CRLF or LF
 * followed by WSP), groups (including the empty "undisclosed-recipients:;"),
 * and empty list elements ("a@x, , b@y").
 *
 * Envelope addresses come out as "local@domain" with comments, folding white
 * space and source routes removed, the local part quoted only where RFC 5321
 * needs it.  A bare local name ("root", "www-data") is accepted and returned
 * without a domain: the caller decides what to append.
 *
 * Nothing that could inject an SMTP command gets through: a control
 * character (0x00-0x1f other than folding white space, 0x7f) anywhere in the
 * input is an error, as are unbalanced '<' '>' '(' ')' '"' '[' ']' and any
 * '<' or '>' left inside an address.  Bytes >= 0x80 (UTF-8) are allowed.
 */
#ifndef MAILSHIM_RFC5322_H
#define MAILSHIM_RFC5322_H

#include <stddef.h>

#include "util.h"

/*
 * Parse the address list s (a header field body or a command-line
 * argument, len bytes, not necessarily NUL-terminated) and append each
 * address to out.  Returns 0, or -1 with *err set to an allocated one-line
 * message that names the problem and quotes the offending input (control
 * characters shown as \r, \n, \x01...).  On error, out keeps what it held
 * before the call.
 */
int rfc5322_parse_list(
    const char *s, size_t len, struct strlist *out, char **err);

/*
 * Parse a single mailbox, as given to -f or -r: "addr", "<addr>",
 * "Name <addr>", or the null sender "<>" / "" (returned as "").  Returns 0
 * with *addr set to an allocated string, or -1 with *err set.
 */
int rfc5322_parse_mailbox(const char *s, char **addr, char **err);

/*
 * Is addr (as returned by the parsers, or from a config file) safe to put
 * between '<' and '>' in MAIL FROM or RCPT TO?  Returns 1 if so; 0 with
 * *why set to a static string otherwise.
 */
int rfc5322_addr_is_safe(const char *addr, const char **why);

/* The domain part of addr (after the last '@' outside quotes), or NULL. */
const char *rfc5322_domain(const char *addr);

/*
 * Are a and b (as returned by the parsers) the same mailbox?  Local parts
 * are compared exactly, domains without case; a bare local name is only
 * the same as the same bare name.
 */
int rfc5322_same_address(const char *a, const char *b);

/*
 * The display name of the first mailbox of the address list s (len bytes,
 * a From: field body, say), as written: for "Name <addr>" the phrase,
 * quotes, encoded words, escapes and comments kept, with *is_comment = 0;
 * for the old form "addr (Name)", its last comment, parentheses included,
 * with *is_comment = 1.  Folding is removed (CR and LF dropped, the white
 * space after them kept) and so is white space at either end.  A group's
 * name is not a display name: the first mailbox inside it counts.  Returns
 * an allocated string, or NULL when the mailbox has no display name or the
 * quotes, comments or brackets do not balance.  A scanner, not a parser:
 * check the list with rfc5322_parse_list() first.
 */
char *rfc5322_display_name(const char *s, size_t len, int *is_comment);

#endif
