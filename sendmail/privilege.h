/*
 * privilege.h - what mailshim does about running setgid (or setuid): keep
 * its memory out of core dumps and debuggers, keep the caller's environment
 * from steering libcurl, OpenSSL and the resolver, and give the privilege
 * up for a config file the caller chose.  See SECURITY in mailshim(8).
 */
#ifndef MAILSHIM_PRIVILEGE_H
#define MAILSHIM_PRIVILEGE_H

/* Whether the process runs with a group or user other than its caller's. */
int privilege_held(void);

/*
 * First thing in main(): no core dumps, no ptrace by other users (the
 * process holds the relay's password), and, when privileged, remove from
 * the environment what libcurl, OpenSSL and the resolver would honour.
 * $MAILSHIM_CONFIG is kept for privilege_user_config().
 */
void privilege_harden(void);

/*
 * A config file named by the caller (config, from -C, or a non-empty
 * $MAILSHIM_CONFIG) is read with the caller's own rights: give the
 * privilege up for good.  Returns 0, or EX_OSERR with an allocated *err.
 */
int privilege_user_config(const char *config, char **err);

#endif
