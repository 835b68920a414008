/*
 * tap.h - a minimal Test Anything Protocol emitter for the unit tests,
 * read by automake's TAP driver.  Header-only: each test program is one .c.
 */
#ifndef MAILSHIM_TAP_H
#define MAILSHIM_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count, tap_failed;

static int
tap_ok(int cond, const char *name)
{
	tap_count++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_count, name);
	if (!cond)
		tap_failed++;
	fflush(stdout);
	return cond;
}

#define ok(cond, name) tap_ok(!!(cond), (name))

static int
tap_is_str(const char *got, const char *want, const char *name)
{
	int same = (!got && !want) || (got && want && !strcmp(got, want));
	if (!tap_ok(same, name))
		printf("#   got:  '%s'\n#   want: '%s'\n", got ? got : "(null)",
		    want ? want : "(null)");
	return same;
}
#define is_str(got, want, name) tap_is_str((got), (want), (name))

static int
tap_is_int(long got, long want, const char *name)
{
	if (!tap_ok(got == want, name))
		printf("#   got:  %ld\n#   want: %ld\n", got, want);
	return got == want;
}
#define is_int(got, want, name) tap_is_int((long)(got), (long)(want), (name))

static int
done_testing(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif
