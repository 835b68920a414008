/*
 * secret.c - the password an account sends, and running password_command
 * (see secret.h).
 *
 * fork() and execvp() rather than popen() or posix_spawn(): between the
 * two the child gives up privilege for good and closes every descriptor
 * but 0, 1 and 2 (the spool, a queue lock, another session's socket must
 * not reach the command), and a close-on-exec pipe carries the errno of
 * an exec that failed, so that "no such command" is told apart from a
 * command that failed.  Only system calls run in the child: a queue run's
 * libcurl may have resolver threads.
 *
 * The first line is read with read(2) into a buffer that is wiped, as
 * password_file's is; the rest of the output is read and thrown away up to
 * its end, so that a command printing more than the password (pass show)
 * finishes normally instead of dying of SIGPIPE.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "secret.h"
#include "util.h"

/* ---- the child ---------------------------------------------------------- */

static void child_fail(int ep, int e) __attribute__((noreturn));
static void child(char *const argv[], int out, int ep)
    __attribute__((noreturn));

/* Tell the parent why the command could not start, and end. */
static void
child_fail(int ep, int e)
{
	ssize_t n = write(ep, &e, sizeof(e));

	(void)n;
	_exit(127);
}

/* Close every descriptor from low up. */
static void
close_from(int low)
{
	struct rlimit rl;
	long max = 65536;

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	if (close_range((unsigned)low, ~0U, 0) == 0)
		return;
#endif
	/* an older kernel (ENOSYS): one by one, up to the limit */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = (long)rl.rlim_cur;
	for (long fd = low; fd < max; fd++)
		close((int)fd);
}

/*
 * Become the caller for good, keep only /dev/null as 0, out as 1 and the
 * caller's 2 (mailshim's main() makes sure 0, 1 and 2 are open, so out and
 * ep are above them), and run the command.
 */
static void
child(char *const argv[], int out, int ep)
{
	gid_t gid = getgid(), rg, eg, sg;
	uid_t uid = getuid(), ru, eu, su;
	struct sigaction dfl;
	sigset_t none;
	int in;

	if (setresgid(gid, gid, gid) == -1 || setresuid(uid, uid, uid) == -1)
		child_fail(ep, errno);
	if (getresgid(&rg, &eg, &sg) == -1 || getresuid(&ru, &eu, &su) == -1)
		child_fail(ep, errno);
	if (rg != gid || eg != gid || sg != gid || ru != uid || eu != uid ||
	    su != uid || getegid() != getgid() || geteuid() != getuid())
		child_fail(ep, EPERM);

	if ((in = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		child_fail(ep, errno);
	if (dup2(in, 0) == -1 || dup2(out, 1) == -1)
		child_fail(ep, errno);
	if (ep != 3) {
		if (dup3(ep, 3, O_CLOEXEC) == -1)
			child_fail(ep, errno);
		ep = 3;
	}
	close_from(4);

	/* what mailshim ignores, the command must not inherit ignored */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGPIPE, &dfl, NULL);
	sigaction(SIGXFSZ, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	execvp(argv[0], argv);
	child_fail(ep, errno);
}

/* ---- the parent --------------------------------------------------------- */

/* Milliseconds left until deadline (CLOCK_MONOTONIC), 0 when past. */
static int
ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0)
		return 0;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static pid_t
wait_for(pid_t pid, int *status, int flags)
{
	pid_t r;

	while ((r = waitpid(pid, status, flags)) == -1 && errno == EINTR)
		;
	return r;
}

/* Reap the child by the deadline, or kill it: 0, or -1 when it timed out. */
static int
reap(pid_t pid, const struct timespec *deadline, int *status)
{
	const struct timespec tick = { 0, 10000000L }; /* 10 ms */
	pid_t r;

	while ((r = wait_for(pid, status, WNOHANG)) == 0) {
		if (!ms_left(deadline)) {
			kill(pid, SIGKILL);
			wait_for(pid, status, 0);
			return -1;
		}
		nanosleep(&tick, NULL);
	}
	if (r == -1)
		*status = 0; /* reaped by someone else: nothing to tell */
	return 0;
}

/*
 * Run argv and take the first line it prints as *password (allocated).
 * NULL, or why it failed (allocated, without the account's name).
 */
static char *
run_command(char *const argv[], long timeout, char **password)
{
	char line[MAX_SECRET + 2]; /* the line, a CR and the LF */
	char rest[512];
	struct timespec deadline;
	struct pollfd pfd;
	size_t filled = 0, len = 0;
	ssize_t got;
	pid_t pid;
	int out[2], ep[2], exec_errno = 0, read_errno = 0, status = 0;
	int have_line = 0, timed_out = 0, too_long = 0;
	char *why = NULL, *nl;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout;
	out[0] = out[1] = ep[0] = ep[1] = -1;
	if (pipe2(out, O_CLOEXEC) == -1 || pipe2(ep, O_CLOEXEC) == -1 ||
	    (pid = fork()) == -1) {
		why = xasprintf(
		    "cannot run '%s': %s", argv[0], strerror(errno));
		for (int i = 0; i < 2; i++) {
			if (out[i] != -1)
				close(out[i]);
			if (ep[i] != -1)
				close(ep[i]);
		}
		return why;
	}
	if (pid == 0)
		child(argv, out[1], ep[1]);
	close(out[1]);
	close(ep[1]);

	/* the exec closes this pipe, or the child sends why it failed */
	while ((got = read(ep[0], &exec_errno, sizeof(exec_errno))) == -1 &&
	    errno == EINTR)
		;
	close(ep[0]);
	if (got == (ssize_t)sizeof(exec_errno)) {
		close(out[0]);
		wait_for(pid, &status, 0);
		return xasprintf(
		    "cannot run '%s': %s", argv[0], strerror(exec_errno));
	}

	pfd.fd = out[0];
	pfd.events = POLLIN;
	for (;;) {
		int ms = ms_left(&deadline), r;

		if (!ms) {
			timed_out = 1;
			break;
		}
		if ((r = poll(&pfd, 1, ms)) == -1 && errno != EINTR) {
			read_errno = errno;
			break;
		}
		if (r <= 0)
			continue;
		if (have_line)
			got = read(out[0], rest, sizeof(rest));
		else
			got = read(
			    out[0], line + filled, sizeof(line) - filled);
		if (got == -1 && errno != EINTR && errno != EAGAIN) {
			read_errno = errno;
			break;
		}
		if (got == 0)
			break;
		if (got < 0 || have_line)
			continue;
		if ((nl = memchr(line + filled, '\n', (size_t)got))) {
			have_line = 1;
			len = (size_t)(nl - line);
		}
		filled += (size_t)got;
		if (!have_line && filled == sizeof(line)) {
			too_long = 1;
			break;
		}
	}
	close(out[0]);
	if (timed_out || too_long || read_errno) {
		kill(pid, SIGKILL);
		wait_for(pid, &status, 0);
	} else if (reap(pid, &deadline, &status)) {
		timed_out = 1;
	}

	if (!have_line)
		len = filled;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (timed_out)
		why = xasprintf("timed out after %ld s", timeout);
	else if (too_long || len > MAX_SECRET)
		why = xasprintf(
		    "printed a first line longer than %d bytes", MAX_SECRET);
	else if (read_errno)
		why = xasprintf(
		    "cannot read what it printed: %s", strerror(read_errno));
	else if (WIFSIGNALED(status))
		why = xasprintf("killed by signal %d", WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status))
		why = xasprintf("exited with status %d", WEXITSTATUS(status));
	else if (memchr(line, '\0', len))
		why = xstrdup("printed a NUL byte");
	else if (len == 0)
		why = xstrdup("printed no password");
	else
		*password = xstrndup(line, len);
	explicit_bzero(line, sizeof(line));
	explicit_bzero(rest, sizeof(rest));
	return why;
}

/* ---- the API ------------------------------------------------------------ */

int
account_password(const struct account *acct, const char **password, char **err)
{
	struct fetched_password *f = acct->fetched;
	char *why;

	if (!f || !acct->password_command.n) {
		*password = acct->password;
		return 0;
	}
	if (!f->done) {
		why = run_command(
		    acct->password_command.v, acct->timeout, &f->password);
		if (why) {
			f->err = xasprintf(
			    "password_command for [%s]: %s", acct->name, why);
			free(why);
		}
		f->done = 1;
	}
	if (f->err) {
		*err = xstrdup(f->err);
		return EX_CONFIG;
	}
	*password = f->password;
	return 0;
}
