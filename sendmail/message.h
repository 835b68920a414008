/*
 * message.h - the message: read once from standard input into a spool,
 * normalised as it passes, then edited and read back for transmission.
 *
 * Reading splits the header section from the body.  Header fields are kept
 * in memory (bounded by MESSAGE_HEADER_MAX); the body goes to an unlinked
 * temporary file, so memory use does not grow with the message.  Every line
 * ending that comes in (CRLF, LF, or a lone CR) goes out as CRLF, so no bare
 * CR or LF ever reaches the relay (the SMTP-smuggling pattern).  Without
 * ignore_dots, a line holding a single "." ends the input, as sendmail does.
 *
 * A message can also be made over bytes that are already final, such as a
 * queue file's (message_init_raw()): it is then sent exactly as stored.
 */
#ifndef MAILSHIM_MESSAGE_H
#define MAILSHIM_MESSAGE_H

#include <stdio.h>
#include <sys/types.h>

/* Limits on the header section, which is held in memory. */
#define MESSAGE_HEADER_MAX (1024L * 1024)    /* bytes in all header fields */
#define MESSAGE_HEADER_LINE_MAX (64L * 1024) /* bytes in one physical line */
/* Longest line sent (RFC 5321 4.5.3.1.6); longer ones are broken. */
#define MESSAGE_LINE_MAX 998

struct header {
	char *field;     /* "Name: value\r\n", folded lines each end CRLF */
	size_t name_len; /* length of "Name" */
};

struct message {
	struct header *h;
	size_t nh, ah;
	size_t header_bytes;
	FILE *body;     /* the spool: body lines, CRLF-terminated */
	off_t body_off; /* where they start in it */
	off_t body_len;
	int eight_bit;  /* a byte >= 0x80 was seen */
	int raw;        /* body is the whole message: no headers, no CRLF */
	int borrowed;   /* body is the caller's: message_release() keeps it */
	off_t max_size; /* set before message_read(): the limit; 0 = none */
};

/*
 * Read the message from fd into m (zeroed by the caller).  tmpdir is where
 * the spool file goes (NULL: $TMPDIR, else /tmp).  Returns 0; EX_DATAERR
 * for a header section over the limits, or a message over m->max_size
 * when the caller set one (counted as message_size() counts, before any
 * edit: reading stops there, the rest of the input is left unread);
 * EX_IOERR or EX_TEMPFAIL (disk full) for I/O errors; *err set to a
 * one-line message on failure.
 * Lines over MESSAGE_LINE_MAX octets are broken as Postfix does: header
 * lines are folded before white space where possible, and otherwise, like
 * body lines, broken with CRLF SPACE.
 */
int message_read(
    struct message *m, int fd, int ignore_dots, const char *tmpdir, char **err);

/*
 * Make m a message whose bytes are exactly the size bytes of f at offset
 * (headers, empty line and body, as message_out() once produced them):
 * message_out() gives them back verbatim, with nothing added, and
 * message_size() is size.  f stays the caller's: keep it open until
 * message_release(), which does not close it.  m has no header fields (do
 * not edit them) and eight_bit is 0: set it if the message has 8-bit
 * bytes.  f is read with pread(2) at explicit offsets, so its file
 * position does not matter and is not changed, but anything written
 * through f must have been flushed.  A region that reaches past the end of
 * the file is a read error for message_out(), never a shorter message.
 */
void message_init_raw(struct message *m, FILE *f, off_t offset, off_t size);

/* Index of the first header named name (case-insensitive) at or after from;
 * -1 if none. */
long message_find(const struct message *m, const char *name, size_t from);

/* The value of header i: everything after the colon, folding included. */
const char *message_value(const struct message *m, size_t i);

/* Remove every header named name. */
void message_remove(struct message *m, const char *name);

/* Append "name: value" (value may fold only as CRLF WSP). */
void message_append(struct message *m, const char *name, const char *value);

/*
 * Add what a message must carry and drop what it must not: remove Bcc and
 * Resent-Bcc; add From (from fullname and sender), Date and Message-ID
 * (with id_domain) where missing.  Returns 0, or EX_DATAERR with *err set
 * when fullname holds a control character.
 */
int message_complete(struct message *m, const char *sender,
    const char *fullname, const char *id_domain, char **err);

/*
 * from_policy = rewrite: make addr (the account's 'from') the From:
 * address.  The first From: field becomes the display name of its first
 * mailbox, exactly as written (see rfc5322_display_name(): "Name <addr>",
 * or "addr (Name)" for the old comment form), or addr alone when it has
 * none; any further From: field is removed.  Without a From:, one is added
 * from fullname (-F) and addr.  original (the caller's address; NULL or ""
 * for none) goes into an added Reply-To:, unless the message has one or
 * original is addr.  Returns 0, or EX_DATAERR with *err set when fullname
 * holds a control character.
 */
int message_rewrite_from(struct message *m, const char *addr,
    const char *fullname, const char *original, char **err);

/*
 * Reading the message back for transmission: headers, an empty line, the
 * body (or, raw, the stored bytes).  message_rewind() starts over (a
 * retry); message_out() fills buf with up to n bytes and returns how many,
 * 0 at the end, or -1 on a read error of the spool (or a spool shorter
 * than the message).  Several cursors may read one message at once.
 */
struct message_cursor {
	const struct message *m;
	size_t hi, hoff;
	off_t pos; /* bytes of the body given out */
	int phase;
};
void message_rewind(struct message_cursor *c, const struct message *m);
long message_out(struct message_cursor *c, char *buf, size_t n);

/* Total size of what message_out() produces. */
off_t message_size(const struct message *m);

void message_release(struct message *m);

#endif
