#!/usr/bin/python3
"""End-to-end: TLS modes, certificate verification and SMTP AUTH.

mailshim against the test relay's listeners (see relay.py): STARTTLS,
implicit TLS and plain text; AUTH PLAIN (with SASL-IR) and LOGIN; NHN
Cloud's AppKey/SecretKey and mail_type; secrets with ini-hostile
characters; refusal to go on with an unverified certificate, without
STARTTLS or without AUTH (credentials and mail never reach such a relay);
and -v, which shows the dialogue but never the secret.
"""

import base64
import os
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import is_, like, ok, unlike  # noqa: E402

MSG = b'Subject: tls-auth test\n\nbody line\n'
RCPT = 'rcpt@example.org'

# What a STARTTLS submission looks like on the wire, and an implicit-TLS or
# plain-text one.
STARTTLS_VERBS = ['EHLO', 'STARTTLS', 'EHLO', 'AUTH', 'MAIL', 'RCPT', 'DATA']
DIRECT_VERBS = ['EHLO', 'AUTH', 'MAIL', 'RCPT', 'DATA']

# Extra relay users: a secret that is only writable in double quotes (with
# the spaces at both ends that quotes keep).
EXTRA_USERS = {'quoted@example.com': ' h#sh;pw = x '}


def b64(data) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode('ascii')


def plain_token(user, password) -> str:
    return b64(f'\0{user}\0{password}')


def secret_forms(user, password):
    """The ways a secret could leak: as is, and base64 encoded the way AUTH
    PLAIN and AUTH LOGIN send it."""
    return [password, plain_token(user, password), b64(password)]


def client_lines(sess):
    return [t for t in sess.transcript if t.startswith('C: ')]


def first_index(lines, prefix):
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            return i
    return None


class Case(harness.RelayCase):
    """One run of mailshim against a fresh relay record."""

    def __init__(self, env, listener, args=(RCPT,), verbose=(), **keys):
        super().__init__(env, listener, args, MSG, RCPT, verbose, **keys)


# ---- TLS modes ---------------------------------------------------------------

def test_starttls_default(env):
    label = 'starttls (default tls)'
    c = Case(env, 'starttls', tls=None, helo='shim-client.example')
    unlike(open(c.config).read(), r'(?m)^tls\b',
           f'{label}: the config has no tls key')
    if not c.delivered(label):
        return
    m = c.msg
    is_(m.tls, True, f'{label}: the message came over TLS')
    ok(m.tls_version in ('TLSv1.2', 'TLSv1.3'),
       f'{label}: TLS 1.2 or later ({m.tls_version})')
    is_((m.auth_mech, m.auth_user), ('PLAIN', 'AppKey'),
        f'{label}: AUTH PLAIN as AppKey')
    is_(harness.commands(c.sess.verbs), STARTTLS_VERBS,
        f'{label}: EHLO, STARTTLS, EHLO, then AUTH')
    is_(c.sess.helos, ['shim-client.example', 'shim-client.example'],
        f'{label}: EHLO uses the helo key, before and after STARTTLS')
    is_(m.helo, 'shim-client.example', f'{label}: record.helo')
    # SASL-IR: the initial response is on the AUTH line itself, and the
    # relay answers 235 at once (no empty 334 round trip).
    lines = c.sess.transcript
    i = first_index(lines, 'C: AUTH')
    is_(lines[i] if i is not None else None,
        'C: AUTH PLAIN ' + plain_token('AppKey', 'SecretKey'),
        f'{label}: AUTH PLAIN carries the initial response (SASL-IR)')
    is_(lines[i + 1] if i is not None and i + 1 < len(lines) else None,
        'S: 235 2.7.0 Authentication successful',
        f'{label}: ... answered 235 directly')


def test_starttls_authbefore(env):
    label = 'starttls_authbefore'
    c = Case(env, 'starttls_authbefore')
    if not c.delivered(label):
        return
    is_((c.msg.tls, c.msg.auth_user), (True, 'AppKey'),
        f'{label}: over TLS, authenticated as AppKey')
    lines = client_lines(c.sess)
    tls_at = first_index(lines, 'C: STARTTLS')
    auth_at = first_index(lines, 'C: AUTH')
    ok(tls_at is not None and auth_at is not None and tls_at < auth_at,
       f'{label}: AUTH offered before TLS, but sent only after STARTTLS')
    is_([t for t in lines[:tls_at or 0] if t.upper().startswith('C: AUTH')],
        [], f'{label}: no AUTH line before STARTTLS')
    is_(harness.commands(c.sess.verbs), STARTTLS_VERBS, f'{label}: the commands in order')


def test_implicit_tls(env):
    label = 'tls = tls'
    c = Case(env, 'tls', tls='tls')
    if not c.delivered(label):
        return
    is_((c.msg.tls, c.msg.auth_mech, c.msg.auth_user),
        (True, 'PLAIN', 'AppKey'), f'{label}: over TLS, AUTH PLAIN')
    is_(harness.commands(c.sess.verbs), DIRECT_VERBS, f'{label}: no STARTTLS on a TLS port')


def test_no_tls(env):
    label = 'tls = none'
    c = Case(env, 'plain', tls='none')
    if not c.delivered(label):
        return
    is_((c.msg.tls, c.msg.tls_version, c.msg.auth_user),
        (False, None, 'AppKey'), f'{label}: plain text, as configured')
    is_(harness.commands(c.sess.verbs), DIRECT_VERBS, f'{label}: the commands in order')


# ---- AUTH mechanisms and NHN credentials ----------------------------------

def test_auth_login(env):
    label = 'auth = login'
    c = Case(env, 'starttls', auth='login')
    if not c.delivered(label):
        return
    is_((c.msg.auth_mech, c.msg.auth_user), ('LOGIN', 'AppKey'),
        f'{label}: AUTH LOGIN as AppKey')
    is_(harness.commands(c.sess.verbs), STARTTLS_VERBS, f'{label}: STARTTLS before AUTH')
    is_(c.sess.auth_attempts, [('LOGIN', 'AppKey', True)],
        f'{label}: one LOGIN attempt')


def test_nhn_credentials(env):
    cases = [
        # (keys, the SASL user the relay must see)
        (dict(username=None, password=None, appkey='AppKey',
              secretkey='SecretKey'), 'AppKey'),
        (dict(username=None, password=None, appkey='AppKey',
              secretkey='SecretKey', mail_type='auth'), 'AppKey#auth'),
        (dict(mail_type='ad'), 'AppKey#ad'),
        (dict(username=None, password=None, appkey='AppKey',
              secretkey='SecretKey', mail_type='normal'), 'AppKey#normal'),
        (dict(mail_type='auth', auth='login'), 'AppKey#auth'),
    ]
    for keys, user in cases:
        shown = ', '.join(f'{k}' + ('' if v is None else f'={v}')
                          for k, v in keys.items() if v is not None)
        label = f'NHN {shown}'
        c = Case(env, 'starttls', **keys)
        if c.delivered(label):
            is_(c.msg.auth_user, user, f'{label}: authenticated as {user}')
            is_([a[1] for a in c.sess.auth_attempts], [user],
                f'{label}: one AUTH attempt, as {user}')


def test_hostile_secrets(env):
    secret = 'p@ss#w;rd "x"'
    pwfile = env.write_file('secret.txt', secret + '\n')
    label = 'password_file with # ; " @'
    c = Case(env, 'starttls', username='user@example.com', password=None,
             password_file=pwfile)
    if c.delivered(label):
        is_(c.msg.auth_user, 'user@example.com',
            f'{label}: authenticated with the secret as written')

    label = "password in single quotes with # ; \" @"
    c = Case(env, 'starttls', username='user@example.com',
             password="'" + secret + "'")
    if c.delivered(label):
        is_(c.msg.auth_user, 'user@example.com',
            f'{label}: authenticated with the secret as written')

    label = 'password in double quotes with # ; = and edge spaces'
    user = 'quoted@example.com'
    c = Case(env, 'starttls', username=user,
             password='"' + EXTRA_USERS[user] + '"')
    if c.delivered(label):
        is_(c.msg.auth_user, user, f'{label}: authenticated, spaces kept')

    label = 'unquoted password with #'
    c = Case(env, 'starttls', username='user@example.com',
             password='p@ss#w;rd')
    path = c.config
    line = open(path).read().splitlines().index('password = p@ss#w;rd') + 1
    is_(c.rc, 78, f'{label}: exit 78')
    is_(c.err, f"mailshim: {path}:{line}: the value of 'password' is cut at "
        "'#': put the value in double quotes\n",
        f'{label}: refused, naming the line, not the secret')
    is_(c.connections, 0, f'{label}: the relay was not contacted')


def test_provider_nhncloud(env):
    label = 'provider = nhncloud'
    c = Case(env, 'starttls', provider='nhncloud', tls=None,
             username=None, password=None, appkey='AppKey',
             secretkey='SecretKey', mail_type='auth')
    text = open(c.config).read()
    unlike(text, r'(?m)^(tls|auth) =', f'{label}: neither tls nor auth set')
    if not c.delivered(label):
        return
    is_((c.msg.tls, c.msg.auth_mech, c.msg.auth_user),
        (True, 'PLAIN', 'AppKey#auth'),
        f'{label}: preset STARTTLS and AUTH PLAIN, as AppKey#auth')
    is_(harness.commands(c.sess.verbs), STARTTLS_VERBS, f'{label}: STARTTLS before AUTH')


# ---- refusals ------------------------------------------------------------

def test_unverified(env):
    for listener, why in (
            # libcurl's own text differs across versions (7.88: "SSL
            # certificate problem: ...", 8.21: "SSL certificate OpenSSL
            # verify result: ..."; 8.x says "ipv4 address" for "host name")
            ('starttls_badcert', r'SSL certificate [^\n]*local issuer[^\n]*'),
            ('tls_badcert', r'SSL certificate [^\n]*local issuer[^\n]*'),
            ('starttls_wrongname',
             r"SSL: no alternative certificate subject name matches "
             r"target (?:host name|ipv4 address) '127\.0\.0\.1'")):
        tls = 'tls' if listener.startswith('tls') else 'starttls'
        label = f'{listener} (tls = {tls})'
        c = Case(env, listener)
        is_(c.rc, 78, f'{label}: exit 78 (EX_CONFIG)')
        like(c.err, rf'\Amailshim: TLS certificate of relay 127\.0\.0\.1:'
             rf'{c.port} not verified: {why} '
             r'\(check host and ca_file\)\n\Z',
             f'{label}: one line naming the relay')
        is_(c.connections, 1, f'{label}: the relay was contacted once')
        c.nothing_delivered(label)
        c.no_auth_sent(label)

    label = 'tls_verify = no, starttls_badcert'
    c = Case(env, 'starttls_badcert', tls_verify='no')
    if c.delivered(label):
        is_((c.msg.tls, c.msg.auth_user), (True, 'AppKey'),
            f'{label}: delivered over TLS')


def test_no_starttls(env):
    label = 'nostarttls, tls = starttls'
    c = Case(env, 'nostarttls', tls='starttls')
    is_(c.rc, 78, f'{label}: exit 78')
    is_(c.err, f'mailshim: relay 127.0.0.1:{c.port} does not offer '
        'STARTTLS; not sending in clear text (tls = starttls)\n',
        f'{label}: the message')
    is_(c.connections, 1, f'{label}: the relay was contacted once')
    is_([v for v in c.sess.verbs if v not in ('EHLO', 'QUIT')], [],
        f'{label}: nothing but EHLO (and QUIT) sent in clear')
    c.nothing_delivered(label)
    c.no_auth_sent(label)


def test_no_auth_offered(env):
    label = 'noauth_tls with credentials'
    c = Case(env, 'noauth_tls')
    is_(c.rc, 78, f'{label}: exit 78')
    is_(c.err, f'mailshim: relay 127.0.0.1:{c.port} does not offer AUTH '
        'PLAIN; not sending without authentication\n',
        f'{label}: the message')
    is_(c.sess.verbs[:3] if c.sess else None, ['EHLO', 'STARTTLS', 'EHLO'],
        f'{label}: decided on the EHLO after STARTTLS')
    c.nothing_delivered(label)
    c.no_auth_sent(label)


class FakeServer(harness.ScriptedServer):
    """A server for dialogues the relay cannot play.

    mode 'auth_before_tls_only': offers STARTTLS and AUTH PLAIN LOGIN in
    clear text, but no AUTH once TLS is up.  mode 'helo_only': answers EHLO
    with 502 (an RFC 821 server), so the client falls back to HELO, which
    announces nothing.  Either way AUTH is refused 502 and MAIL 530 (it
    needs an AUTH the client could not make).
    """

    greeting = '220 fake.test ESMTP'

    def __init__(self, relay, mode):
        self.relay = relay
        self.mode = mode
        self.tls = False
        super().__init__()

    def handle(self, verb, line):
        if verb == 'EHLO' and self.mode == 'helo_only':
            self.say('502 5.5.2 Error: command not recognized')
        elif verb == 'EHLO' and not self.tls:
            self.say('250-fake.test', '250-STARTTLS', '250 AUTH PLAIN LOGIN')
        elif verb == 'EHLO':
            self.say('250-fake.test', '250 8BITMIME')
        elif verb == 'HELO':
            self.say('250 fake.test')
        elif verb == 'STARTTLS' and not self.tls:
            self.say('220 2.0.0 go ahead')
            self.start_tls(self.relay.server_cert, self.relay.server_key)
            self.tls = True
        elif verb == 'MAIL':
            self.say('530 5.7.0 Authentication required')
        elif verb == 'QUIT':
            self.say('221 2.0.0 bye')
            return False
        else:
            self.say('502 5.5.1 not here')
        return True


def test_auth_only_before_tls(env):
    """The EHLO that counts is the one after STARTTLS: AUTH advertised only
    in clear text must not make mailshim go on without authenticating."""
    label = 'AUTH offered only before STARTTLS'
    fake = FakeServer(env.relay, 'auth_before_tls_only')
    try:
        env.config_for('starttls', port=fake.port)
        r = env.run([RCPT], input=MSG, timeout=20)
    finally:
        fake.close()
    verbs = fake.verbs
    is_(verbs[:3], ['EHLO', 'STARTTLS', 'EHLO'],
        f'{label}: STARTTLS done, EHLO again')
    is_(r.rc, 78, f'{label}: exit 78')
    is_(r.err, f'mailshim: relay 127.0.0.1:{fake.port} does not offer AUTH '
        'PLAIN; not sending without authentication\n',
        f'{label}: the message')
    is_([v for v in verbs if v in ('MAIL', 'RCPT', 'DATA')], [],
        f'{label}: no MAIL sent unauthenticated')


def test_helo_only(env):
    """A server that does not know EHLO cannot offer AUTH: with credentials
    configured, mailshim must stop, not fall back to HELO and send the mail
    unauthenticated."""
    label = 'HELO-only server, credentials configured'
    fake = FakeServer(env.relay, 'helo_only')
    try:
        env.config_for('plain', port=fake.port)
        r = env.run([RCPT], input=MSG, timeout=20)
    finally:
        fake.close()
    is_(fake.verbs[:1], ['EHLO'], f'{label}: EHLO tried')
    is_(r.rc, 78, f'{label}: exit 78')
    like(r.err, rf'\Amailshim: relay 127\.0\.0\.1:{fake.port} [^\n]*'
         r'\bAUTH\b[^\n]*\n\Z',
         f'{label}: one line naming the relay and the missing AUTH')
    is_([v for v in fake.verbs if v in ('MAIL', 'RCPT', 'DATA')], [],
        f'{label}: no MAIL sent unauthenticated')


# ---- -v and secrets ------------------------------------------------------

def check_no_secret(label, result, user, password):
    text = result.out.decode('utf-8', 'backslashreplace') + result.err
    leaks = [s for s in secret_forms(user, password) if s in text]
    is_(leaks, [], f'{label}: the secret appears nowhere in stdout/stderr')


def test_verbose(env):
    for mech, flag in (('plain', '-v'), ('login', '-v'), ('plain', '-vv')):
        label = f'{flag} with AUTH {mech.upper()}'
        c = Case(env, 'starttls', verbose=[flag], auth=mech)
        is_(c.rc, 0, f'{label}: exit 0')
        is_(len(c.messages), 1, f'{label}: delivered')
        is_(c.result.out, b'', f'{label}: nothing on stdout')
        lines = c.err.splitlines()
        for want in ('<-- 220 relay.test mailshim-test-relay',
                     '--> EHLO client.test',
                     '<-- 250-relay.test',
                     '--> STARTTLS',
                     '<-- 220 Ready to start TLS',
                     '<-- 250-AUTH LOGIN PLAIN',
                     '<-- 235 2.7.0 Authentication successful',
                     f'--> RCPT TO:<{RCPT}>',
                     '--> DATA'):
            ok(want in lines, f'{label}: stderr has the line {want!r}')
        like(c.err, r'(?m)^--> MAIL FROM:<[^>\n]*>$',
             f'{label}: stderr has the MAIL command')
        like(c.err, r'(?m)^--> AUTH.*credentials hidden',
             f'{label}: the AUTH line is shown hidden')
        # The secret was on the wire (so the check below means something)...
        wire = client_lines(c.sess)
        if mech == 'plain':
            ok('C: AUTH PLAIN ' + plain_token('AppKey', 'SecretKey') in wire,
               f'{label}: the relay got the PLAIN token')
        else:
            ok('C: ' + b64('SecretKey') in wire,
               f'{label}: the relay got the LOGIN password')
        # ...but not on stdout or stderr.
        check_no_secret(label, c.result, 'AppKey', 'SecretKey')

    for mech in ('plain', 'login'):
        for flag in ([], ['-v']):
            label = f'wrong password, AUTH {mech.upper()}' + \
                (' -v' if flag else '')
            c = Case(env, 'starttls', verbose=flag, auth=mech,
                     password='Wr0ngSecret')
            is_(c.rc, 77, f'{label}: exit 77 (EX_NOPERM)')
            want = ("mailshim: relay refused authentication as 'AppKey' "
                    f"(AUTH {mech.upper()}): 535 5.7.8 Authentication "
                    "credentials invalid")
            if flag:
                is_(c.err.splitlines()[-1:], [want],
                    f'{label}: the error is the last line')
            else:
                is_(c.err, want + '\n', f'{label}: the one-line error')
            is_(c.sess.auth_attempts if c.sess else None,
                [(mech.upper(), 'AppKey', False)],
                f'{label}: the wrong secret reached the relay once')
            c.nothing_delivered(label)
            check_no_secret(label, c.result, 'AppKey', 'Wr0ngSecret')

    label = '-v with mail_type = auth'
    c = Case(env, 'starttls', verbose=['-v'], mail_type='auth')
    is_((c.rc, len(c.messages)), (0, 1), f'{label}: delivered')
    check_no_secret(label, c.result, 'AppKey#auth', 'SecretKey')


def test():
    with harness.Env(users=EXTRA_USERS) as env:
        test_starttls_default(env)
        test_starttls_authbefore(env)
        test_implicit_tls(env)
        test_no_tls(env)
        test_auth_login(env)
        test_nhn_credentials(env)
        test_hostile_secrets(env)
        test_provider_nhncloud(env)
        test_unverified(env)
        test_no_starttls(env)
        test_no_auth_offered(env)
        test_auth_only_before_tls(env)
        test_helo_only(env)
        test_verbose(env)
        env.relay.wait_idle()
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
