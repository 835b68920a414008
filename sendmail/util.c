/*
 * util.c - allocation, buffers and string lists (see util.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "util.h"

static void
oom(void)
{
	/* stdio may itself need memory: write(2) the line directly */
	static const char msg[] = "mailshim: out of memory\n";
	fwrite(msg, 1, sizeof(msg) - 1, stderr);
	exit(EX_TEMPFAIL);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		oom();
	b.s = xmalloc((size_t)n + 1);
	vsnprintf(b.s, (size_t)n + 1, fmt, ap);
	return b.s;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void
grow_array(void **p, size_t *alloc, size_t want, size_t sz)
{
	size_t n = *alloc ? *alloc : 8;

	if (want <= *alloc)
		return;
	while (n < want) {
		if (n > ((size_t)-1) / 2 / sz)
			oom();
		n *= 2;
	}
	*p = xrealloc(*p, n * sz);
	*alloc = n;
}

void
buf_init(struct buf *b)
{
	b->alloc = 64;
	b->s = xmalloc(b->alloc);
	b->s[0] = '\0';
	b->len = 0;
}

void
buf_add(struct buf *b, const void *data, size_t n)
{
	if (!b->s)
		buf_init(b);
	if (n > ((size_t)-1) - b->len - 1)
		oom();
	grow_array((void **)&b->s, &b->alloc, b->len + n + 1, 1);
	memcpy(b->s + b->len, data, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
buf_addstr(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addch(struct buf *b, int c)
{
	char ch = (char)c;
	buf_add(b, &ch, 1);
}

void
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	buf_addstr(b, s);
	free(s);
}

void
buf_reset(struct buf *b)
{
	if (!b->s)
		buf_init(b);
	b->len = 0;
	b->s[0] = '\0';
}

char *
buf_detach(struct buf *b)
{
	char *s;

	if (!b->s)
		buf_init(b);
	s = b->s;
	b->s = NULL;
	b->len = b->alloc = 0;
	return s;
}

void
buf_release(struct buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->alloc = 0;
}

void
strlist_push_owned(struct strlist *l, char *s)
{
	grow_array((void **)&l->v, &l->alloc, l->n + 2, sizeof(*l->v));
	l->v[l->n++] = s;
	l->v[l->n] = NULL;
}

void
strlist_push(struct strlist *l, const char *s)
{
	strlist_push_owned(l, xstrdup(s));
}

int
strlist_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return 1;
	return 0;
}

void
strlist_release(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->alloc = 0;
}

void
free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static int
lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

int
ascii_strncasecmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		int d = lower((unsigned char)*a) - lower((unsigned char)*b);
		if (d || !*a)
			return d;
	}
	return 0;
}

int
ascii_strcasecmp(const char *a, const char *b)
{
	return ascii_strncasecmp(a, b, (size_t)-1);
}
