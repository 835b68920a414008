/*
 * check.h - mailshim --check [account]: check the setup without sending
 * mail.
 *
 * Loads the configuration as a send does, picks the account (the one
 * named, else the default), connects to its relay exactly as a send
 * would (submit_check(): greeting, EHLO, STARTTLS, EHLO, AUTH, QUIT; no
 * MAIL) and prints on stdout one "label: value" line per step:
 *
 *	config: /etc/mailshim.ini, account [relay]
 *	relay: smtp.example port 587, tls = starttls
 *	connect: 192.0.2.1 port 587: ok (12 ms)
 *	banner: 220 smtp.example ESMTP
 *	ehlo: PIPELINING SIZE 10240000 8BITMIME AUTH PLAIN LOGIN
 *	tls: TLSv1.3, TLS_AES_256_GCM_SHA384
 *	certificate: subject CN=smtp.example
 *	certificate: issuer C=US, O=Let's Encrypt, CN=R11
 *	certificate: expires 2027-11-22 12:00:00 GMT
 *	verify: ok
 *	auth: PLAIN as AppKey: 235 2.7.0 Authentication successful
 *	check: ok, nothing was sent
 *
 * A failure ends the report with "check: failed: <the reason, as a send
 * would print it>" and, for the common ones, one "hint: ..." line; the
 * exit status is the one a send would get.  The secret never appears.
 */
#ifndef MAILSHIM_CHECK_H
#define MAILSHIM_CHECK_H

#include "run.h"

/* Run the check r->opt asks for; returns the exit status (sysexits(3)). */
int check_run(struct run *r);

#endif
