/*
 * sysinfo.h - what the system says about itself: its mail name, its fully
 * qualified host name, the user who runs us.
 */
#ifndef MAILSHIM_SYSINFO_H
#define MAILSHIM_SYSINFO_H

/* First line of /etc/mailname (or of path), or NULL. Allocated. */
char *sysinfo_mailname(const char *path);

/* The host's fully qualified name (gethostname, then the resolver's
 * canonical name if that has no dot).  Allocated, never NULL. */
char *sysinfo_fqdn(void);

/* The login name of the real user id, or "uid<N>" if it has none. */
char *sysinfo_username(void);

#endif
