/*
 * aliases.c - read an /etc/aliases style file (see aliases.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char *
trim(char *s)
{
	char *e;

	while (is_space((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_space((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Split a target list at commas outside double quotes. */
static void
split_targets(char *s, struct strlist *out)
{
	int quoted = 0;
	char *start = s;

	for (char *p = s;; p++) {
		if (*p == '"')
			quoted = !quoted;
		if ((*p == ',' && !quoted) || !*p) {
			int end = !*p;
			char *t;

			*p = '\0';
			t = trim(start);
			if (*t)
				strlist_push(out, t);
			if (end)
				break;
			start = p + 1;
		}
	}
}

static void
add_entry(struct aliases *al, char *logical, int line)
{
	char *colon = strchr(logical, ':');
	char *name;
	struct alias *a;

	if (!colon) {
		strlist_push_owned(&al->problems,
		    xasprintf("%s:%d: "
		              "expected 'name: target, ...'",
		        al->path, line));
		return;
	}
	*colon = '\0';
	name = trim(logical);
	if (!*name || strpbrk(name, " \t\"")) {
		strlist_push_owned(&al->problems,
		    xasprintf("%s:%d: "
		              "bad alias name",
		        al->path, line));
		return;
	}
	grow_array((void **)&al->v, &al->alloc, al->n + 1, sizeof(*al->v));
	a = &al->v[al->n];
	memset(a, 0, sizeof(*a));
	split_targets(colon + 1, &a->targets);
	if (!a->targets.n) {
		strlist_push_owned(&al->problems,
		    xasprintf("%s:%d: alias "
		              "'%s' has no target",
		        al->path, line, name));
		return;
	}
	a->name = xstrdup(name);
	a->line = line;
	al->n++;
}

int
aliases_load(const char *path, struct aliases *al, char **err)
{
	FILE *f = fopen(path, "r");
	struct buf logical = BUF_INIT;
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, start = 0;

	if (!f) {
		*err = xasprintf(
		    "cannot read aliases file '%s': %s", path, strerror(errno));
		return -1;
	}
	al->path = xstrdup(path);
	buf_init(&logical);
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		if (line[0] == '#')
			continue;
		if (is_space((unsigned char)line[0])) {
			char *t = trim(line);
			if (!*t || *t == '#')
				continue;
			if (logical.len) {
				buf_addch(&logical, ' ');
				buf_addstr(&logical, t);
				continue;
			}
			strlist_push_owned(&al->problems,
			    xasprintf("%s:%d: "
			              "continuation line without an alias",
			        path, lineno));
			continue;
		}
		if (logical.len)
			add_entry(al, logical.s, start);
		buf_reset(&logical);
		buf_addstr(&logical, trim(line));
		start = lineno;
	}
	if (logical.len)
		add_entry(al, logical.s, start);
	free(line);
	buf_release(&logical);
	fclose(f);
	return 0;
}

const struct alias *
aliases_find(const struct aliases *al, const char *name)
{
	for (size_t i = al->n; i-- > 0;)
		if (!ascii_strcasecmp(al->v[i].name, name))
			return &al->v[i];
	return NULL;
}

int
alias_target_is_local_only(const char *t)
{
	if (t[0] == '"')
		t++;
	return t[0] == '|' || t[0] == '/' ||
	    !ascii_strncasecmp(t, ":include:", 9);
}

void
aliases_release(struct aliases *al)
{
	for (size_t i = 0; i < al->n; i++) {
		free(al->v[i].name);
		strlist_release(&al->v[i].targets);
	}
	free(al->v);
	free(al->path);
	strlist_release(&al->problems);
	memset(al, 0, sizeof(*al));
}
