#!/usr/bin/python3
"""End-to-end: mailshim --check [account].

The check connects to the relay exactly as a send would (TLS mode,
verification, pin, AUTH) but sends no mail: the relay's session shows
only EHLO, STARTTLS, AUTH and QUIT, and no message.  Its report (stdout,
one "label: value" line per step) is compared line by line with what the
relay sent (greeting, EHLO capabilities, the reply to AUTH) and with the
relay's certificate as openssl reads it.  Each common failure ends the
report with "check: failed: ..." and one exact "hint: ..." line, with the
exit status a send would get; -v never shows the secret.
"""

import base64
import datetime
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok, unlike  # noqa: E402

WRONG_PIN = 'sha256//' + base64.b64encode(b'\x00' * 32).decode('ascii')
CHECK_VERBS = {
    'starttls': ['EHLO', 'STARTTLS', 'EHLO', 'AUTH', 'QUIT'],
    'tls': ['EHLO', 'AUTH', 'QUIT'],
    'none': ['EHLO', 'AUTH', 'QUIT'],
}


# ---- what the relay's certificates say, as openssl reads them ---------------

def openssl_x509(cert, *args):
    return subprocess.run(['openssl', 'x509', '-in', cert, '-noout', *args],
                          check=True, capture_output=True,
                          text=True).stdout.strip()


def cert_lines(cert):
    """The report's three certificate lines for cert, from openssl."""
    subject = openssl_x509(cert, '-subject', '-nameopt', 'oneline,-space_eq')
    issuer = openssl_x509(cert, '-issuer', '-nameopt', 'oneline,-space_eq')
    end = openssl_x509(cert, '-enddate').split('=', 1)[1]
    when = datetime.datetime.strptime(end, '%b %d %H:%M:%S %Y %Z')
    return ['certificate: subject ' + subject.split('=', 1)[1],
            'certificate: issuer ' + issuer.split('=', 1)[1],
            'certificate: expires ' + when.strftime('%Y-%m-%d %H:%M:%S GMT')]


def b64(text):
    return base64.b64encode(text.encode()).decode('ascii')


# ---- what the relay sent, from its transcript -------------------------------

def server_reply(transcript, after):
    """The reply lines (without 'S: ') that follow the last client line
    starting with after; the greeting when after is None."""
    start = 0
    if after is not None:
        idx = [i for i, t in enumerate(transcript) if t.startswith(after)]
        if not idx:
            return []
        start = idx[-1] + 1
    lines = []
    for t in transcript[start:]:
        if not t.startswith('S: '):
            break
        lines.append(t[3:])
    return lines


def joined(reply):
    """A multi-line reply the way the report shows it: the first line
    whole, then the text of the others."""
    return ' '.join([reply[0]] + [r[4:] for r in reply[1:]]) if reply else ''


def auth_final(transcript):
    """The relay's last reply to AUTH: past any 334 challenges."""
    idx = [i for i, t in enumerate(transcript) if t.startswith('C: AUTH')]
    for t in transcript[idx[-1] + 1:] if idx else []:
        if t.startswith('S: ') and not t.startswith('S: 334'):
            return t[3:]
    return ''


def capabilities(reply):
    """The EHLO reply's capabilities: every line but the first."""
    return ' '.join(r[4:] for r in reply[1:])


# ---- running the check ------------------------------------------------------

class Check:
    """mailshim [-v] --check [args] against a fresh relay record."""

    def __init__(self, env, listener=None, args=(), verbose=False,
                 config=None, **keys):
        env.relay.reset()
        if config is None:
            config = env.config_for(listener, **keys)
        self.config = config
        self.port = env.ports.get(listener) if listener else None
        argv = (['-v'] if verbose else []) + ['--check'] + list(args)
        self.result = env.run(argv, config=config)
        env.relay.wait_idle()
        self.rc = self.result.rc
        self.out = self.result.out.decode('utf-8', 'backslashreplace')
        self.lines = self.out.splitlines()
        self.err = self.result.err
        self.messages = env.relay.messages
        self.rejected = env.relay.rejected
        self.sessions = env.relay.sessions
        mine = [s for s in self.sessions if s.listener == listener]
        self.sess = mine[-1] if mine else None

    def describe(self):
        text = self.result.describe()
        for s in self.sessions:
            text += f'\nsession on {s.listener}:\n  ' + \
                '\n  '.join(s.transcript)
        return text

    def report_is(self, label, want):
        """The report, line by line: a str is exact, a compiled regex
        must match the whole line."""
        good = is_(len(self.lines), len(want), f'{label}: {len(want)} lines')
        for i, (got, w) in enumerate(zip(self.lines, want)):
            if hasattr(w, 'pattern'):
                good &= ok(w.fullmatch(got) is not None,
                           f'{label}: line {i + 1} matches {w.pattern!r}')
            else:
                good &= is_(got, w, f'{label}: line {i + 1}')
        if not good:
            diag(self.describe())
        return good

    def ends_with(self, label, rc, failed, hint):
        """Exit rc; the last two lines are check: failed (exact, or a
        regex for the part after 'check: failed: ') and the exact hint."""
        good = is_(self.rc, rc, f'{label}: exit {rc}')
        tail = self.lines[-2:] if len(self.lines) >= 2 else self.lines
        last = tail[0] if len(tail) == 2 else ''
        if hasattr(failed, 'pattern'):
            good &= like(last, r'\Acheck: failed: ' + failed.pattern + r'\Z',
                         f'{label}: check: failed line')
        else:
            good &= is_(last, 'check: failed: ' + failed,
                        f'{label}: check: failed line')
        good &= is_(tail[-1] if tail else '', 'hint: ' + hint,
                    f'{label}: the hint')
        if not good:
            diag(self.describe())
        return good

    def nothing_sent(self, label):
        """No MAIL, RCPT or DATA on any connection, no message, no
        refusal recorded."""
        verbs = [v for s in self.sessions for v in s.verbs]
        is_([v for v in verbs if v in ('MAIL', 'RCPT', 'DATA', 'BDAT')], [],
            f'{label}: no MAIL, RCPT or DATA sent')
        is_((self.messages, self.rejected), ([], []),
            f'{label}: no message, no transaction')

    def no_auth_sent(self, label):
        is_([a for s in self.sessions for a in s.auth_attempts], [],
            f'{label}: no credentials sent')


def head(env, c, tls, user='AppKey'):
    """The report's first lines for the [test] account of config_for."""
    return [f'config: {c.config}, account [test]',
            f'relay: 127.0.0.1 port {c.port}, tls = {tls}']


def connect_line(port, timed=True):
    ms = r' \(\d+ ms\)' if timed else r'(?: \(\d+ ms\))?'
    return re.compile(rf'connect: 127\.0\.0\.1 port {port}: ok{ms}')


def good_report(env, c, tls, cert, mech='PLAIN', user='AppKey',
                verify='ok'):
    """The whole report of a check that passes, from what the relay sent
    and recorded."""
    t = c.sess.transcript if c.sess else []
    want = head(env, c, tls) + [
        connect_line(c.port),
        'banner: ' + joined(server_reply(t, None)),
        'ehlo: ' + capabilities(server_reply(t, 'C: EHLO'))]
    if tls == 'none':
        want.append('tls: none (tls = none: the password goes in clear '
                    'text)')
    else:
        want.append(re.compile(re.escape(f'tls: {c.sess.tls_version}, ')
                               + r'[A-Z0-9_-]+'))
        want += cert_lines(cert)
        want.append('verify: ' + verify)
    want += [f'auth: {mech} as {user}: ' + auth_final(t),
             'check: ok, nothing was sent']
    return want


# ---- each TLS mode passes ---------------------------------------------------

def test_modes(env):
    relay = env.relay
    for listener, tls in (('starttls', 'starttls'), ('tls', 'tls'),
                          ('plain', 'none')):
        label = f'--check, tls = {tls}'
        c = Check(env, listener, tls=tls)
        if not ok(c.sess is not None, f'{label}: the relay saw the check'):
            diag(c.describe())
            continue
        is_(c.rc, 0, f'{label}: exit 0')
        is_(c.err, '', f'{label}: nothing on stderr')
        c.report_is(label, good_report(env, c, tls, relay.server_cert))
        is_(c.sess.verbs, CHECK_VERBS[tls],
            f'{label}: the relay saw {" ".join(CHECK_VERBS[tls])} only')
        c.nothing_sent(label)
        is_((c.sess.auth_mech, c.sess.auth_user), ('PLAIN', 'AppKey'),
            f'{label}: authenticated as AppKey')
        is_(server_reply(c.sess.transcript, 'C: QUIT'), ['221 Bye'],
            f'{label}: QUIT answered: a clean goodbye')
        if tls != 'none':
            is_(c.sess.tls, True, f'{label}: the session was encrypted')

    # the banner and EHLO lines are the relay's, not a constant: a relay
    # with other capabilities (dsn_starttls: DSN once TLS is up) shows them
    label = '--check, dsn_starttls'
    c = Check(env, 'dsn_starttls', tls='starttls')
    is_(c.rc, 0, f'{label}: exit 0')
    like(c.out, r'(?m)^ehlo: .*\bDSN\b', f'{label}: the ehlo line has DSN')
    if c.sess:
        c.report_is(label, good_report(env, c, 'starttls', relay.server_cert))


def test_auth_variants(env):
    relay = env.relay
    label = '--check, auth = login, mail_type = auth'
    c = Check(env, 'starttls', auth='login', mail_type='auth')
    is_(c.rc, 0, f'{label}: exit 0')
    if c.sess:
        c.report_is(label, good_report(env, c, 'starttls', relay.server_cert,
                                       mech='LOGIN', user='AppKey#auth'))
        is_((c.sess.auth_mech, c.sess.auth_user), ('LOGIN', 'AppKey#auth'),
            f'{label}: the relay authenticated AppKey#auth with LOGIN')
    c.nothing_sent(label)

    label = '--check, tls_verify = no, untrusted certificate'
    c = Check(env, 'starttls_badcert', tls_verify='no')
    is_(c.rc, 0, f'{label}: exit 0')
    if c.sess:
        c.report_is(label, good_report(env, c, 'starttls',
                                       relay.bad_server_cert,
                                       verify='off (tls_verify = no)'))
    c.nothing_sent(label)

    label = '--check, tls_pin of the relay'
    pin = harness.tls_pin_of(relay.server_cert)
    c = Check(env, 'tls', tls='tls', tls_pin=pin)
    is_(c.rc, 0, f'{label}: exit 0')
    if c.sess:
        c.report_is(label, good_report(env, c, 'tls', relay.server_cert,
                                       verify='ok, pinned key matches'))

    label = '--check, auth = none'
    c = Check(env, 'plain_noauth', tls='none', auth='none', username=None,
              password=None)
    is_(c.rc, 0, f'{label}: exit 0')
    if c.sess:
        t = c.sess.transcript
        c.report_is(label, head(env, c, 'none') + [
            connect_line(c.port),
            'banner: ' + joined(server_reply(t, None)),
            'ehlo: ' + capabilities(server_reply(t, 'C: EHLO')),
            'tls: none (tls = none)',
            'auth: none (auth = none)',
            'check: ok, nothing was sent'])
        is_(c.sess.verbs, ['EHLO', 'QUIT'], f'{label}: EHLO and QUIT only')
    c.nothing_sent(label)


# ---- the wrong port for the TLS mode -----------------------------------------

def test_wrong_port(env):
    label = 'tls = tls on a STARTTLS port'
    c = Check(env, 'starttls', tls='tls')
    c.ends_with(label, 75, re.compile(
        rf'TLS handshake with relay 127\.0\.0\.1:{c.port} failed: .*'),
        f'port {c.port} does not start with TLS: it may be a STARTTLS '
        'port; set tls = starttls for it, or port = 465 for tls = tls')
    c.report_is(label, head(env, c, 'tls') + [
        connect_line(c.port, timed=False), c.lines[-2] if c.lines else '',
        c.lines[-1] if c.lines else ''])
    c.nothing_sent(label)
    c.no_auth_sent(label)

    label = 'tls = starttls on an implicit-TLS port'
    c = Check(env, 'tls', tls='starttls', timeout=2)
    c.ends_with(label, 75, re.compile(
        rf'relay 127\.0\.0\.1:{c.port} timed out: .*'),
        f'port {c.port} sent no greeting: it may expect TLS at once '
        '(implicit TLS); set tls = tls for it, or port = 587 for '
        'tls = starttls')
    c.report_is(label, head(env, c, 'starttls') + [
        connect_line(c.port, timed=False), c.lines[-2] if c.lines else '',
        c.lines[-1] if c.lines else ''])
    c.nothing_sent(label)
    c.no_auth_sent(label)


# ---- the certificate ----------------------------------------------------------

def test_certificate(env):
    relay = env.relay
    for listener, tls in (('starttls_badcert', 'starttls'),
                          ('tls_badcert', 'tls')):
        label = f'untrusted CA ({listener})'
        c = Check(env, listener, tls=tls)
        c.ends_with(label, 78, re.compile(
            rf'TLS certificate of relay 127\.0\.0\.1:{c.port} not '
            r'verified: .* \(check host and ca_file\)'),
            "the relay's certificate is not signed by a CA this host "
            'trusts (unable to get local issuer certificate): set ca_file '
            'to the certificate of the CA that signed it, or check that '
            'host = 127.0.0.1 names the relay')
        # libcurl 8.21 shows the certificate it refused, 7.88 does not
        shown = [x for x in c.lines if x.startswith('certificate: ')]
        ok(shown in ([], cert_lines(relay.bad_server_cert)),
           f'{label}: certificate lines, if any, are the untrusted one\'s')
        unlike(c.out, r'(?m)^(tls|verify|auth): ',
               f'{label}: no tls, verify or auth line')
        c.nothing_sent(label)
        c.no_auth_sent(label)

    label = 'certificate for another name'
    c = Check(env, 'starttls_wrongname')
    c.ends_with(label, 78, re.compile(
        rf'TLS certificate of relay 127\.0\.0\.1:{c.port} not verified: '
        r'.* \(check host and ca_file\)'),
        "the relay's certificate is for wrong.example, not 127.0.0.1: set "
        'host to a name it is for')
    ok(set(cert_lines(relay.wrongname_cert)) <= set(c.lines),
       f'{label}: the report shows the certificate it was given')
    c.nothing_sent(label)
    c.no_auth_sent(label)

    label = 'tls_pin mismatch'
    c = Check(env, 'starttls', tls_pin=WRONG_PIN)
    pin = harness.tls_pin_of(relay.server_cert)
    c.ends_with(label, 78,
                f'TLS public key of relay 127.0.0.1:{c.port} does not match '
                'tls_pin',
                f"the relay's public key is {pin}: if "
                'it changed on purpose (ask its operator), set tls_pin to '
                'that')
    c.nothing_sent(label)
    c.no_auth_sent(label)

    label = 'tls_min_version = 1.3 against a TLS 1.2 relay'
    c = Check(env, 'tls12only', tls_min_version='1.3')
    c.ends_with(label, 75, re.compile(
        rf'TLS handshake with relay 127\.0\.0\.1:{c.port} failed: .*'),
        'the relay may not offer TLS 1.3: set tls_min_version = 1.2')
    c.nothing_sent(label)
    c.no_auth_sent(label)


# ---- STARTTLS and AUTH not offered --------------------------------------------

class AuthServer(harness.ScriptedServer):
    """A relay the test relay cannot play.  'before_tls_only': STARTTLS,
    and AUTH offered in clear text but not once TLS is up.  'login_only':
    plain text, AUTH LOGIN only."""

    greeting = '220 scripted.test ESMTP'

    def __init__(self, relay, mode):
        self.relay = relay
        self.mode = mode
        self.tls = False
        super().__init__()

    def handle(self, verb, line):
        if verb == 'EHLO' and self.mode == 'login_only':
            self.say('250-scripted.test', '250 AUTH LOGIN')
        elif verb == 'EHLO' and not self.tls:
            self.say('250-scripted.test', '250-AUTH PLAIN LOGIN',
                     '250 STARTTLS')
        elif verb == 'EHLO':
            self.say('250-scripted.test', '250 SIZE 1000')
        elif verb == 'STARTTLS':
            self.say('220 go ahead')
            self.start_tls(self.relay.server_cert, self.relay.server_key)
            self.tls = True
        elif verb == 'QUIT':
            self.say('221 bye')
            return False
        else:
            self.say('502 5.5.1 not here')
        return True


def test_offers(env):
    label = 'STARTTLS not offered'
    c = Check(env, 'nostarttls', tls='starttls')
    c.ends_with(label, 78,
                f'relay 127.0.0.1:{c.port} does not offer STARTTLS; not '
                'sending in clear text (tls = starttls)',
                f'port {c.port} offers no STARTTLS: use the relay\'s '
                'submission port (587 with tls = starttls, or 465 with '
                'tls = tls)')
    c.nothing_sent(label)
    c.no_auth_sent(label)

    label = 'no AUTH after STARTTLS'
    c = Check(env, 'noauth_tls')
    c.ends_with(label, 78,
                f'relay 127.0.0.1:{c.port} does not offer AUTH PLAIN; not '
                'sending without authentication',
                f'the relay offers no AUTH on port {c.port}: if it takes '
                'mail from this host without a password, set auth = none; '
                'else check host and port')
    like(c.out, r'(?m)^verify: ok$', f'{label}: TLS was verified first')
    c.nothing_sent(label)
    c.no_auth_sent(label)
    # what the hint says works
    label = 'no AUTH after STARTTLS, auth = none'
    c = Check(env, 'noauth_tls', auth='none', username=None, password=None)
    is_(c.rc, 0, f'{label}: exit 0')
    is_(c.lines[-2:], ['auth: none (auth = none)',
                       'check: ok, nothing was sent'], f'{label}: the end')

    label = 'tls = none against a relay with AUTH only over TLS'
    c = Check(env, 'starttls', tls='none')
    c.ends_with(label, 78,
                f'relay 127.0.0.1:{c.port} does not offer AUTH PLAIN over a '
                'connection without TLS; not sending without '
                'authentication',
                'the relay offers AUTH only over TLS: set tls = starttls')
    c.nothing_sent(label)
    c.no_auth_sent(label)

    for mode, keys, failed, hint in (
            ('before_tls_only', dict(tls='starttls'),
             'relay 127.0.0.1:{port} does not offer AUTH PLAIN; not sending '
             'without authentication',
             'the relay offers AUTH only before STARTTLS, where the '
             'password would go in clear text: mailshim does not send it '
             "there; tell the relay's operator"),
            ('login_only', dict(tls='none'),
             'relay 127.0.0.1:{port} does not offer AUTH PLAIN over a '
             'connection without TLS; not sending without authentication',
             'the relay offers AUTH LOGIN: set auth = login')):
        label = f'AUTH: {mode}'
        server = AuthServer(env.relay, mode)
        try:
            config = env.config_for('starttls', port=server.port, **keys)
            c = Check(env, config=config)
        finally:
            server.close()
        c.ends_with(label, 78, failed.format(port=server.port), hint)
        is_([v for v in server.verbs if v in ('AUTH', 'MAIL', 'RCPT')], [],
            f'{label}: no AUTH, MAIL or RCPT sent')
        is_(server.errors, [], f'{label}: the server saw no error')


# ---- credentials --------------------------------------------------------------

def test_credentials(env):
    relay = env.relay
    secret = 'Wr0ngSecret'
    label = 'bad password (535), -v'
    c = Check(env, 'starttls', verbose=True, password=secret)
    c.ends_with(label, 77,
                "relay refused authentication as 'AppKey' (AUTH PLAIN): "
                '535 5.7.8 Authentication credentials invalid',
                'check username and password: the relay does not accept '
                'them')
    token = base64.b64encode(f'\0AppKey\0{secret}'.encode()).decode()
    # control: the secret did go to the relay, in this form
    ok(c.sess is not None and f'C: AUTH PLAIN {token}' in c.sess.transcript,
       f'{label}: the relay received AUTH PLAIN with the secret')
    like(c.err, r'(?m)^--> AUTH \(credentials hidden\)$',
         f'{label}: -v shows the AUTH command, hidden')
    like(c.err, r'(?m)^<-- 535 ', f'{label}: -v shows the 535')
    for form in (secret, token, b64(secret)):
        ok(form not in c.err and form not in c.out,
           f'{label}: {form[:4]}... appears neither in -v nor the report')
    c.nothing_sent(label)
    is_([a[2] for s in c.sessions for a in s.auth_attempts], [False],
        f'{label}: one refused attempt')

    label = 'good password, -v'
    c = Check(env, 'starttls', verbose=True)
    is_(c.rc, 0, f'{label}: exit 0')
    token = base64.b64encode(b'\0AppKey\0SecretKey').decode()
    ok(c.sess is not None and f'C: AUTH PLAIN {token}' in c.sess.transcript,
       f'{label}: the relay received the secret (control)')
    for form in ('SecretKey', token, b64('SecretKey')):
        ok(form not in c.err and form not in c.out,
           f'{label}: {form[:4]}... appears neither in -v nor the report')
    like(c.err, r'(?m)^--> QUIT\n<-- 221 Bye$', f'{label}: -v shows QUIT')
    if c.sess:
        c.report_is(label, good_report(env, c, 'starttls', relay.server_cert))

    label = 'NHN Cloud, bad secretkey'
    c = Check(env, 'starttls', provider='nhncloud', mail_type='auth',
              username=None, password=None, appkey='AppKey',
              secretkey='nope')
    c.ends_with(label, 77,
                "relay refused authentication as 'AppKey#auth' (AUTH "
                'PLAIN): 535 5.7.8 Authentication credentials invalid',
                "check appkey and secretkey: they are the Email service's "
                'AppKey and SecretKey (NHN Cloud console), and mail_type '
                '(auth) must be normal, auth or ad')
    c.nothing_sent(label)

    label = 'password_command fails'
    c = Check(env, 'starttls', password=None, password_command='/bin/false')
    is_(c.rc, 78, f'{label}: exit 78')
    is_(c.lines[-1:], ['check: failed: password_command for [test]: exited '
                       'with status 1'], f'{label}: the last line')
    is_(c.sessions, [], f'{label}: no connection')


# ---- no connection ------------------------------------------------------------

def skip(name, why):
    harness._count += 1
    harness._emit(f'ok {harness._count} - {name} # SKIP {why}')


def test_unreachable(env):
    label = 'connection refused'
    port = harness.closed_port()
    c = Check(env, 'starttls', port=port)
    c.ends_with(label, 75, re.compile(
        rf'cannot connect to relay 127\.0\.0\.1:{port}: .*'),
        f'nothing takes connections on 127.0.0.1 port {port}: check host '
        'and port, and that no firewall blocks them')
    is_(len(c.lines), 4, f'{label}: config, relay, and the failure')

    label = 'greeting 421'
    c = Check(env, 'greet421', tls='starttls')
    c.ends_with(label, 75,
                f'relay 127.0.0.1:{c.port} deferred the connection: '
                '421 4.3.2 service not available',
                'the relay turned the connection away: it may be busy, or '
                'not take connections from this host')
    like(c.out, r'(?m)^banner: 421 4\.3\.2 service not available$',
         f'{label}: the banner line')

    # a name that does not resolve: in a network namespace of its own,
    # where no DNS server is reachable (nothing leaves this host)
    label = 'host does not resolve'
    if not shutil.which('unshare') or subprocess.run(
            ['unshare', '-n', 'true'], capture_output=True).returncode:
        skip(label, 'unshare -n is not available')
        return
    config = env.config_for('starttls', host='relay.example.com')
    binary = os.environ['MAILSHIM_BIN']
    p = subprocess.run(['unshare', '-n', binary, '-C', config, '--check'],
                       capture_output=True, env=env.child_env(),
                       cwd=env.dir, timeout=60)
    lines = p.stdout.decode().splitlines()
    is_(p.returncode, 75, f'{label}: exit 75')
    like(lines[-2] if len(lines) > 1 else '',
         r"\Acheck: failed: cannot resolve relay host 'relay\.example\.com'"
         r': .*\Z', f'{label}: check: failed line')
    is_(lines[-1:], ['hint: host = relay.example.com does not resolve here: '
                     "check the name, and this host's DNS"],
        f'{label}: the hint')


# ---- the account ----------------------------------------------------------------

def test_accounts(env):
    relay = env.relay
    text = (f'[mailshim]\naccount = one\nlocal_domain = example.net\n'
            f'aliases = {env.aliases_path}\nqueue_dir = {env.queue_dir}\n')
    for name, listener, tls in (('one', 'plain', 'none'),
                                ('two', 'tls', 'tls')):
        text += (f'\n[{name}]\nhost = 127.0.0.1\n'
                 f'port = {relay.ports[listener]}\ntls = {tls}\n'
                 'username = AppKey\npassword = SecretKey\n'
                 f'ca_file = {relay.ca_file}\nhelo = client.test\n'
                 'timeout = 10\n')
        if tls == 'none':
            text += 'allow_plaintext_auth = yes\n'
    config = env.write_config(text, name='two.ini')

    for args, name, listener in (((), 'one', 'plain'),
                                 (('two',), 'two', 'tls'),
                                 (('TWO',), 'two', 'tls')):
        label = f'--check {" ".join(args) or "(default)"}'
        c = Check(env, listener, args=args, config=config)
        is_(c.rc, 0, f'{label}: exit 0')
        is_(c.lines[:2], [f'config: {config}, account [{name}]',
                          f'relay: 127.0.0.1 port {relay.ports[listener]}, '
                          f'tls = {"none" if listener == "plain" else "tls"}'],
            f'{label}: account [{name}]')
        is_([s.listener for s in c.sessions], [listener],
            f'{label}: one connection, to {listener}')
        c.nothing_sent(label)

    label = '--check nosuch'
    c = Check(env, None, args=('nosuch',), config=config)
    is_(c.rc, 78, f'{label}: exit 78')
    is_(c.lines, [f'config: {config}',
                  f"check: failed: {config}: no account 'nosuch'",
                  'hint: the accounts are [one], [two]: name one '
                  '(mailshim --check NAME)'], f'{label}: the report')
    is_(c.sessions, [], f'{label}: no connection')

    label = 'a config that does not load'
    bad = env.write_config('[test]\nhots = x\n', name='bad.ini')
    c = Check(env, None, config=bad)
    is_(c.rc, 78, f'{label}: exit 78')
    is_(c.lines, ['check: failed: the configuration did not load (its error '
                  'is on standard error)'], f'{label}: the report')
    like(c.err, r"\Amailshim: .*bad\.ini:2: unknown key 'hots'",
         f'{label}: the error on stderr')

    label = '--check a b'
    c = Check(env, None, args=('one', 'two'), config=config)
    is_(c.rc, 64, f'{label}: exit 64')
    like(c.err, r"\Amailshim: --check takes one account name, not also "
         r"'two'\n", f'{label}: the error')
    is_(c.sessions, [], f'{label}: no connection')


def main():
    with harness.Env() as env:
        test_modes(env)
        test_auth_variants(env)
        test_wrong_port(env)
        test_certificate(env)
        test_offers(env)
        test_credentials(env)
        test_unreachable(env)
        test_accounts(env)


harness.main(main)
