#!/usr/bin/python3
"""End-to-end: the strict TLS keys.

tls_min_version (1.3 against a relay that stops at TLS 1.2 fails, against
one that speaks 1.3 it delivers), tls_pin (the relay's own public key
delivers, another one is exit 78 before any credential is sent) and
allow_plaintext_auth (tls = none with credentials is a configuration error
without it, and delivers in clear text with it).
"""

import base64
import os
import re
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import is_, like, ok  # noqa: E402

MSG = b'Subject: tls-strict test\n\nbody line\n'
RCPT = 'rcpt@example.org'
STARTTLS_VERBS = ['EHLO', 'STARTTLS', 'EHLO', 'AUTH', 'MAIL', 'RCPT', 'DATA']
DIRECT_VERBS = ['EHLO', 'AUTH', 'MAIL', 'RCPT', 'DATA']
# a well-formed pin that matches no key
WRONG_PIN = 'sha256//' + base64.b64encode(b'\x00' * 32).decode('ascii')


def line_of(path, text):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.rstrip('\n') == text:
                return n
    return None


class Case(harness.RelayCase):
    """One run of mailshim against a fresh relay record."""

    def __init__(self, env, listener, **keys):
        super().__init__(env, listener, [RCPT], MSG, RCPT, **keys)


# ---- tls_min_version -------------------------------------------------------

def test_min_version(env):
    label = 'tls_min_version = 1.2 (default), tls12only'
    c = Case(env, 'tls12only')
    if c.delivered(label):
        is_(c.messages[0].tls_version, 'TLSv1.2',
            f'{label}: the listener stops at TLS 1.2')

    label = 'tls_min_version = 1.3, tls12only'
    c = Case(env, 'tls12only', tls_min_version='1.3', on_tempfail='fail')
    is_(c.rc, 75, f'{label}: exit 75, the handshake failed')
    like(c.err, rf'\Amailshim: TLS handshake with relay 127\.0\.0\.1:'
         rf'{c.port} failed: [^\n]* \(tls_min_version = 1\.3: does the '
         r'relay offer TLS 1\.3\?\)\n\Z', f'{label}: one line, with the hint')
    c.nothing_delivered(label)
    c.no_auth_sent(label)
    if c.sess:
        is_(harness.commands(c.sess.verbs), ['EHLO', 'STARTTLS'],
            f'{label}: nothing after STARTTLS, no fall back to clear text')

    label = 'tls_min_version = 1.3, starttls'
    c = Case(env, 'starttls', tls_min_version='1.3')
    if c.delivered(label):
        is_(c.messages[0].tls_version, 'TLSv1.3', f'{label}: over TLS 1.3')
        is_(harness.commands(c.sess.verbs), STARTTLS_VERBS,
            f'{label}: the commands in order')

    label = 'tls_min_version = 1.3, tls'
    c = Case(env, 'tls', tls_min_version='1.3')
    if c.delivered(label):
        is_(c.messages[0].tls_version, 'TLSv1.3', f'{label}: over TLS 1.3')


# ---- tls_pin ---------------------------------------------------------------

def test_pin(env):
    pin = harness.tls_pin_of(env.relay.server_cert)
    ok(re.fullmatch(r'sha256//[A-Za-z0-9+/]{43}=', pin),
       f'the pin of the relay certificate is well formed ({pin})')
    bad_pin = harness.tls_pin_of(env.relay.bad_server_cert)

    for listener in ('starttls', 'tls'):
        label = f'tls_pin of the relay key, {listener}'
        c = Case(env, listener, tls_pin=pin)
        if c.delivered(label):
            is_((c.messages[0].tls, c.messages[0].auth_user),
                (True, 'AppKey'), f'{label}: over TLS, authenticated')

        label = f'tls_pin: two pins, the second one right, {listener}'
        c = Case(env, listener, tls_pin=f'"{WRONG_PIN};{pin}"')
        c.delivered(label)

        for what, wrong in (('a wrong pin', WRONG_PIN),
                            ('another key of the same CA', bad_pin)):
            label = f'tls_pin: {what}, {listener}'
            c = Case(env, listener, tls_pin=wrong)
            is_(c.rc, 78, f'{label}: exit 78 (EX_CONFIG)')
            is_(c.err, f'mailshim: TLS public key of relay 127.0.0.1:'
                f'{c.port} does not match tls_pin\n',
                f'{label}: the message')
            c.nothing_delivered(label)
            c.no_auth_sent(label)

    label = 'tls_pin: wrong pin, tls_verify = no'
    c = Case(env, 'starttls', tls_pin=WRONG_PIN, tls_verify='no')
    is_(c.rc, 78, f'{label}: exit 78, the pin still holds')
    c.nothing_delivered(label)
    c.no_auth_sent(label)

    label = 'tls_pin with tls = none'
    c = Case(env, 'plain', tls_pin=pin)
    n = line_of(c.config, f'tls_pin = {pin}')
    is_(c.rc, 78, f'{label}: exit 78')
    is_(c.err, f"mailshim: {c.config}:{n}: 'tls_pin' set but tls = none "
        "in [test]\n", f'{label}: the message')
    is_(c.sessions, [], f'{label}: the relay was not contacted')


# ---- allow_plaintext_auth --------------------------------------------------

def test_plaintext_auth(env):
    for listener in ('plain', 'nostarttls'):
        label = f'tls = none with credentials, {listener}'
        c = Case(env, listener, allow_plaintext_auth=None)
        n = line_of(c.config, 'tls = none')
        is_(c.rc, 78, f'{label}: exit 78')
        is_(c.err, f'mailshim: {c.config}:{n}: [test] would send the '
            'password without TLS (tls = none): set allow_plaintext_auth '
            '= yes to allow it\n', f'{label}: the message')
        is_(c.sessions, [], f'{label}: the relay was not contacted')

    label = 'tls = none, auth = login, allow_plaintext_auth = no'
    c = Case(env, 'plain', auth='login', allow_plaintext_auth='no')
    is_(c.rc, 78, f'{label}: exit 78')
    like(c.err, r'would send the password without TLS', f'{label}: why')
    is_(c.sessions, [], f'{label}: the relay was not contacted')

    label = 'tls = none, allow_plaintext_auth = yes'
    c = Case(env, 'plain', allow_plaintext_auth='yes')
    if c.delivered(label):
        is_((c.messages[0].tls, c.messages[0].auth_user), (False, 'AppKey'),
            f'{label}: in clear text, authenticated, as configured')
        is_(harness.commands(c.sess.verbs), DIRECT_VERBS,
            f'{label}: the commands in order')

    label = 'tls = none without credentials'
    c = Case(env, 'plain_noauth', username=None, password=None,
             allow_plaintext_auth=None)
    c.delivered(label)

    label = 'allow_plaintext_auth = yes with STARTTLS'
    c = Case(env, 'starttls', allow_plaintext_auth='yes')
    if c.delivered(label):
        is_(c.messages[0].tls, True, f'{label}: still over TLS')


def test():
    with harness.Env() as env:
        test_min_version(env)
        test_pin(env)
        test_plaintext_auth(env)
        env.relay.wait_idle()
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
