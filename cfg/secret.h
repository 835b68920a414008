/*
 * secret.h - the password an account sends, and password_command: a
 * secret kept outside the config file, printed by a command of the user's
 * (a password manager, a keyring, a vault client).
 *
 * The command is split into words when the config is loaded (keys.c), but
 * runs only when a connection for its account is about to be opened, at
 * most once per process: its password, or its failure, is kept in the
 * account (struct fetched_password) until config_release() wipes it.
 *
 * It runs without a shell, through execvp(3) (a PATH search), with
 * standard input /dev/null, standard output a pipe and standard error
 * mailshim's own, and nothing else open.  Before it starts, the child
 * gives up for good whatever privilege mailshim holds (real, effective and
 * saved group and user IDs all become the real ones): under a setgid
 * install the command cannot read what only mailshim's group can.  The
 * account's timeout bounds the whole command; then it is killed.
 */
#ifndef MAILSHIM_SECRET_H
#define MAILSHIM_SECRET_H

#include "cfg.h"

/*
 * The password to send for acct: the one the config gave (password,
 * secretkey, password_file; NULL with auth = none), or, with
 * password_command, the first line the command printed, without its line
 * ending.  The command runs the first time this is asked for an account;
 * later calls give what it gave then, success or failure.
 *
 * Returns 0 with *password set (owned by the account), or EX_CONFIG with
 * *err set to an allocated one-line message that never quotes what the
 * command printed:
 *   password_command for [relay]: cannot run 'pass': No such file or ...
 *   password_command for [relay]: exited with status 1
 *   password_command for [relay]: killed by signal 9
 *   password_command for [relay]: timed out after 60 s
 *   password_command for [relay]: printed no password
 *   password_command for [relay]: printed a first line longer than 4096
 *     bytes
 *   password_command for [relay]: printed a NUL byte
 */
int account_password(
    const struct account *acct, const char **password, char **err);

#endif
