/*
 * util.h - small helpers shared by every module: allocation that cannot
 * fail, a growable byte buffer and a growable list of strings.
 *
 * Allocation failure is the one error that is not returned: the x*()
 * functions print one line and exit with EX_TEMPFAIL (75), which tells the
 * caller to try again later and so loses nothing.
 */
#ifndef MAILSHIM_UTIL_H
#define MAILSHIM_UTIL_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* Grow *p (holding *alloc elements of size sz) to hold at least want. */
void grow_array(void **p, size_t *alloc, size_t want, size_t sz);

/*
 * A growable byte buffer, always NUL-terminated (s is never NULL after
 * buf_init()).  buf_release() frees the contents; buf_detach() hands them
 * to the caller and leaves the buffer empty.
 */
struct buf {
	char *s;
	size_t len;
	size_t alloc;
};
#define BUF_INIT                                                               \
	{                                                                      \
		NULL, 0, 0                                                     \
	}
void buf_init(struct buf *b);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_addstr(struct buf *b, const char *s);
void buf_addch(struct buf *b, int c);
void buf_addf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
char *buf_detach(struct buf *b);
void buf_release(struct buf *b);

/* A growable list of owned strings. */
struct strlist {
	char **v;
	size_t n;
	size_t alloc;
};
#define STRLIST_INIT                                                           \
	{                                                                      \
		NULL, 0, 0                                                     \
	}
void strlist_push(struct strlist *l, const char *s);
/* take ownership of s (which must come from malloc) */
void strlist_push_owned(struct strlist *l, char *s);
int strlist_has(const struct strlist *l, const char *s);
void strlist_release(struct strlist *l);

/* Overwrite a secret before freeing it. NULL is allowed. */
void free_secret(char *s);

/* case-insensitive ASCII comparisons, independent of the locale */
int ascii_strcasecmp(const char *a, const char *b);
int ascii_strncasecmp(const char *a, const char *b, size_t n);

#endif
