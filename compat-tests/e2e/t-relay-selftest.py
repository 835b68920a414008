#!/usr/bin/python3
"""Self-test of the test relay (relay.py) and of harness.py.

mailshim is not needed: Python's smtplib is the client.  This proves that
the relay offers what each listener promises, records exactly what was sent,
injects its faults, and that the harness's TAP and Env helpers work.
"""

import base64
import json
import os
import signal
import smtplib
import ssl
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok, unlike  # noqa: E402

HOST = '127.0.0.1'
RELAY_PY = os.path.join(os.environ['MAILSHIM_TESTLIB'], 'relay.py')


# ---- helpers ---------------------------------------------------------------

def connect(relay, listener, tls_context=None, **kw):
    """An smtplib client to a listener, after EHLO client.test."""
    if LISTENER_TLS[listener] == 'tls':
        s = smtplib.SMTP_SSL(HOST, relay.ports[listener], timeout=10,
                             local_hostname='client.test',
                             context=tls_context, **kw)
    else:
        s = smtplib.SMTP(HOST, relay.ports[listener], timeout=10,
                         local_hostname='client.test', **kw)
    s.ehlo()
    return s


def read(path, mode='r'):
    with open(path, mode) as f:
        return f.read()


def verify_context(cafile):
    """A client context that verifies the chain and the host name."""
    return ssl.create_default_context(cafile=cafile)


def send_raw(s, mail_from, rcpts, wire):
    """MAIL, RCPTs, then DATA with wire sent exactly as given (it must be
    dot-stuffed and end with CRLF.CRLF).  Returns the final (code, msg)."""
    code, msg = s.mail(mail_from)
    assert code == 250, (code, msg)
    for rcpt in rcpts:
        code, msg = s.rcpt(rcpt)
        assert code == 250, (code, msg)
    s.putcmd('data')
    code, msg = s.getreply()
    assert code == 354, (code, msg)
    s.send(wire)
    return s.getreply()


def login_plain(s, user, password):
    s.user, s.password = user, password
    return s.auth('PLAIN', s.auth_plain)


def login_login(s, user, password):
    s.user, s.password = user, password
    # No initial response: the username too answers a challenge.
    return s.auth('LOGIN', s.auth_login, initial_response_ok=False)


LISTENER_TLS = {name: spec.tls for name, spec in harness.LISTENERS.items()}


# ---- the tests -------------------------------------------------------------

def test_plain(relay):
    """Plain text, AUTH PLAIN in clear, exact bytes."""
    relay.reset()
    s = connect(relay, 'plain')
    ok(s.has_extn('auth'), 'plain: AUTH offered in clear')
    ok(not s.has_extn('starttls'), 'plain: no STARTTLS')
    is_(s.mail('a@example.com')[0], 530, 'plain: MAIL before AUTH gets 530')
    is_(login_plain(s, 'AppKey', 'SecretKey')[0], 235, 'plain: AUTH PLAIN')
    wire = (b'From: a@example.com\r\nSubject: dots\r\n\r\n'
            b'..x\r\n'                 # a stuffed dot
            b'..\r\n'                  # a line that is just a dot
            b'bare\nLF and bare\rCR\r\n'
            b'trailing space \r\n'
            b'\r\n.\r\n')
    code, _ = send_raw(s, 'a@example.com',
                       ['z@example.org', 'b@example.org'], wire)
    is_(code, 250, 'plain: message accepted')
    s.quit()
    msgs = relay.wait_for(1)
    is_(len(msgs), 1, 'plain: one message recorded')
    m = msgs[0]
    is_(m.data, b'From: a@example.com\r\nSubject: dots\r\n\r\n'
                b'.x\r\n.\r\nbare\nLF and bare\rCR\r\ntrailing space \r\n'
                b'\r\n',
        'plain: data exactly as sent, unstuffed, line ends untouched')
    is_(m['data'], m.data, 'records read as keys too')
    is_(m.mail_from, 'a@example.com', 'plain: mail_from')
    is_(m.rcpt_tos, ['z@example.org', 'b@example.org'],
        'plain: rcpt_tos in order')
    is_(m.rcpt_options, [[], []], 'plain: one rcpt_options list per rcpt')
    is_(m.mail_options, [], 'plain: no MAIL options')
    is_(m.helo, 'client.test', 'plain: helo')
    is_((m.tls, m.tls_version), (False, None), 'plain: not encrypted')
    is_((m.auth_mech, m.auth_user), ('PLAIN', 'AppKey'), 'plain: auth')
    is_(m.listener, 'plain', 'plain: listener')
    is_(m.email['Subject'], 'dots', 'Message.email parses the data')
    relay.wait_idle()
    sess = relay.session(m.session_id)
    is_(sess.verbs, ['EHLO', 'MAIL', 'AUTH', 'MAIL', 'RCPT', 'RCPT', 'DATA',
                     'QUIT'], 'plain: verbs in order')
    ok(sess.closed and not sess.dropped, 'plain: session closed normally')
    is_(sess.errors, [], 'plain: no relay errors')


def test_smtplib_sendmail(relay):
    """smtplib's own sendmail (SIZE option, its dot-stuffing)."""
    relay.reset()
    s = connect(relay, 'plain')
    s.login('AppKey', 'SecretKey')
    s.sendmail('a@example.com', ['b@example.org'],
               b'Subject: s\r\n\r\n.leading dot\r\n')
    s.quit()
    [m] = relay.wait_for(1)
    is_(m.data, b'Subject: s\r\n\r\n.leading dot\r\n',
        'sendmail: smtplib stuffs, the relay unstuffs')
    like(' '.join(m.mail_options), r'^SIZE=\d+$', 'sendmail: SIZE recorded')


def test_starttls(relay):
    relay.reset()
    s = connect(relay, 'starttls')
    ok(s.has_extn('starttls'), 'starttls: STARTTLS offered')
    ok(not s.has_extn('auth'), 'starttls: no AUTH before TLS')
    code, msg = s.docmd('AUTH', 'PLAIN ' + base64.b64encode(
        b'\0AppKey\0SecretKey').decode())
    is_(code, 538, 'starttls: AUTH before TLS refused')
    s.starttls(context=verify_context(relay.ca_file))
    s.ehlo()
    ok(s.has_extn('auth'), 'starttls: AUTH offered after TLS')
    like(s.esmtp_features.get('auth', ''), r'PLAIN', 'starttls: PLAIN')
    like(s.esmtp_features.get('auth', ''), r'LOGIN', 'starttls: LOGIN')
    is_(login_login(s, 'AppKey#auth', 'SecretKey')[0], 235,
        'starttls: AUTH LOGIN')
    code, _ = send_raw(s, 'a@example.com', ['b@example.org'],
                       b'Subject: t\r\n\r\nhi\r\n.\r\n')
    is_(code, 250, 'starttls: accepted')
    s.quit()
    [m] = relay.wait_for(1)
    ok(m.tls, 'starttls: tls recorded')
    like(m.tls_version or '', r'^TLSv1\.[23]$', 'starttls: tls_version')
    is_((m.auth_mech, m.auth_user), ('LOGIN', 'AppKey#auth'),
        'starttls: auth mech and user with #type')
    relay.wait_idle()
    sess = relay.session(m.session_id)
    is_(sess.verbs, ['EHLO', 'AUTH', 'STARTTLS', 'EHLO', 'AUTH', 'MAIL',
                     'RCPT', 'DATA', 'QUIT'], 'starttls: verbs in order')
    is_(sess.helos, ['client.test', 'client.test'], 'starttls: two EHLOs')
    b64 = lambda t: base64.b64encode(t).decode()  # noqa: E731
    i = sess.transcript.index('C: AUTH LOGIN')
    is_(sess.transcript[i:i + 5],
        ['C: AUTH LOGIN', 'S: 334 ' + b64(b'Username:'),
         'C: ' + b64(b'AppKey#auth'), 'S: 334 ' + b64(b'Password:'),
         'C: ' + b64(b'SecretKey')],
        'starttls: transcript keeps the AUTH exchange')
    ok('C: [18 bytes of message data]' in sess.transcript,
       'starttls: transcript sums up the message')
    is_(sess.auth_attempts, [('LOGIN', 'AppKey#auth', True)],
        'starttls: auth_attempts')


def test_starttls_authbefore(relay):
    s = connect(relay, 'starttls_authbefore')
    ok(s.has_extn('starttls') and s.has_extn('auth'),
       'starttls_authbefore: STARTTLS and AUTH both before TLS')
    s.starttls(context=verify_context(relay.ca_file))
    s.ehlo()
    ok(s.has_extn('auth'), 'starttls_authbefore: AUTH after TLS too')
    s.quit()


def test_implicit_tls(relay):
    relay.reset()
    s = connect(relay, 'tls', tls_context=verify_context(relay.ca_file))
    ok(s.has_extn('auth'), 'tls: AUTH offered')
    ok(not s.has_extn('starttls'), 'tls: no STARTTLS inside TLS')
    is_(login_plain(s, 'AppKey#auth', 'SecretKey')[0], 235, 'tls: AUTH PLAIN')
    s.sendmail('a@example.com', ['b@example.org'], b'Subject: x\r\n\r\nx\r\n')
    s.quit()
    [m] = relay.wait_for(1)
    ok(m.tls and m.tls_version, 'tls: encrypted from the start')
    is_((m.auth_mech, m.auth_user), ('PLAIN', 'AppKey#auth'), 'tls: auth')


def test_auth(relay):
    s = connect(relay, 'plain')
    code, msg = s.docmd('AUTH', 'PLAIN ' + base64.b64encode(
        b'\0AppKey\0wrong').decode())
    is_(code, 535, 'auth: a wrong password gets 535')
    like(msg, rb'^5\.7\.8', 'auth: 5.7.8')
    code, _ = login_plain(s, 'user@example.com', 'p@ss#w;rd "x"')
    is_(code, 235, 'auth: the secret with ini-hostile characters')
    s.quit()
    for user in ('AppKey', 'AppKey#normal', 'AppKey#ad'):
        s = connect(relay, 'plain')
        is_(login_login(s, user, 'SecretKey')[0], 235, f'auth: {user}')
        s.quit()


def test_extra_users():
    with harness.Relay(users={'extra': 'pw'}, listeners=['plain']) as r:
        is_(list(r.ports), ['plain'], 'listeners= opens only those')
        s = connect(r, 'plain')
        is_(login_plain(s, 'extra', 'pw')[0], 235, 'users= adds a user')
        s.quit()


def test_no_auth_listeners(relay):
    relay.reset()
    s = connect(relay, 'noauth_tls')
    ok(s.has_extn('starttls'), 'noauth_tls: STARTTLS offered')
    s.starttls(context=verify_context(relay.ca_file))
    s.ehlo()
    ok(not s.has_extn('auth'), 'noauth_tls: no AUTH even after TLS')
    is_(s.docmd('AUTH', 'PLAIN')[0], 502, 'noauth_tls: AUTH is 502')
    s.sendmail('a@example.com', ['b@example.org'], b'x\r\n')
    s.quit()
    s = connect(relay, 'plain_noauth')
    ok(not s.has_extn('auth') and not s.has_extn('starttls'),
       'plain_noauth: neither AUTH nor STARTTLS')
    s.sendmail('a@example.com', ['b@example.org'], b'y\r\n')
    s.quit()
    msgs = relay.wait_for(2)
    is_([(m.listener, m.tls, m.auth_user) for m in msgs],
        [('noauth_tls', True, None), ('plain_noauth', False, None)],
        'no-AUTH listeners accept mail without AUTH')
    s = connect(relay, 'nostarttls')
    ok(s.has_extn('auth') and not s.has_extn('starttls'),
       'nostarttls: AUTH but no STARTTLS')
    s.quit()


def test_bad_certificates(relay):
    good = verify_context(relay.ca_file)
    for listener in ('starttls_badcert', 'starttls_wrongname'):
        s = connect(relay, listener)
        try:
            s.starttls(context=good)
            failed = None
        except ssl.SSLCertVerificationError as e:
            failed = e
        ok(failed is not None, f'{listener}: verification fails')
        diag(f'{listener}: {failed}')
        s.close()
    try:
        connect(relay, 'tls_badcert', tls_context=good).quit()
        failed = None
    except ssl.SSLCertVerificationError as e:
        failed = e
    ok(failed is not None, 'tls_badcert: verification fails')
    # The certificates are otherwise fine.
    s = connect(relay, 'tls_badcert',
                tls_context=verify_context(relay.bad_ca_file))
    ok(True, 'tls_badcert: verifies with bad_ca_file')
    s.quit()
    lax = verify_context(relay.ca_file)
    lax.check_hostname = False
    s = connect(relay, 'starttls_wrongname')
    s.starttls(context=lax)
    ok(True, 'starttls_wrongname: chain verifies, only the name is wrong')
    s.quit()
    relay.wait_idle()
    sess = relay.last_session('starttls_badcert')
    ok(sess.tls_error, 'starttls_badcert: the failed handshake is recorded')
    first = [x for x in relay.sessions if x.listener == 'tls_badcert'][0]
    ok(not first.established and not first.tls and first.verbs == [],
       'tls_badcert: the failed connection is recorded, never established')


def test_faults(relay):
    relay.reset()
    s = connect(relay, 'plain')
    login_plain(s, 'AppKey', 'SecretKey')
    is_(s.mail('tempfrom@example.com'),
        (451, b'4.3.0 sender temporarily rejected'), 'MAIL tempfrom: 451')
    is_(s.mail('RejectFrom@x.test'),
        (553, b'5.7.1 sender not allowed'), 'MAIL rejectfrom: 553')
    is_(s.mail('a@example.com')[0], 250, 'MAIL a good sender after those')
    is_(s.rcpt('Reject550@Example.COM'),
        (550, b'5.1.1 <Reject550@Example.COM>: Recipient address rejected:'
              b' User unknown'), 'RCPT reject550: 550, case-insensitive')
    is_(s.rcpt('temp451@example.org'),
        (451, b'4.3.0 <temp451@example.org>: temporarily unavailable'),
        'RCPT temp451: 451')
    is_(s.rcpt('reject553@example.org'), (553, b'5.1.3 bad address syntax'),
        'RCPT reject553: 553')
    s.rset()
    for rcpt, want in (('datafail554@example.org',
                        (554, b'5.7.1 message refused')),
                       ('datafail451@example.org',
                        (451, b'4.3.0 try again later'))):
        got = send_raw(s, 'a@example.com', ['ok@example.org', rcpt],
                       b'Subject: f\r\n\r\nx\r\n.\r\n')
        is_(got, want, f'{rcpt}: reply to the end of DATA')
    s.quit()
    is_(relay.messages, [], 'no fault message was recorded as accepted')
    rej = relay.rejected
    is_([(r.stage, r.reply.split()[0]) for r in rej],
        [('MAIL', '451'), ('MAIL', '553'), ('RCPT', '550'), ('RCPT', '451'),
         ('RCPT', '553'), ('DATA', '554'), ('DATA', '451')],
        'rejections recorded in order')
    is_(rej[2].command, 'rcpt TO:<Reject550@Example.COM>',
        'a rejection keeps the command line')
    is_(rej[5].data, b'Subject: f\r\n\r\nx\r\n',
        'a DATA rejection keeps the refused message')

    # dropconn: the relay hangs up while the client sends the message.
    s = connect(relay, 'plain')
    login_plain(s, 'AppKey', 'SecretKey')
    try:
        send_raw(s, 'a@example.com', ['dropconn@example.org'],
                 b'Subject: d\r\n\r\n' + b'x' * 78 + b'\r\n' * 2000
                 + b'.\r\n')
        dropped = None
    except (smtplib.SMTPServerDisconnected, OSError) as e:
        dropped = e
    ok(dropped is not None, 'dropconn: the client sees the connection go')
    diag(f'dropconn: {dropped!r}')
    s.close()
    relay.wait_idle()
    sess = relay.last_session('plain')
    ok(sess.dropped and sess.closed, 'dropconn: session recorded as dropped')
    is_(sess.verbs[-1], 'DATA', 'dropconn: nothing read after DATA')
    is_((relay.rejected[-1].stage, relay.rejected[-1].reply), ('DATA', None),
        'dropconn: recorded as a rejection without reply')
    is_(relay.messages, [], 'dropconn: no message accepted')


def test_greet421(relay):
    before = relay.connections['greet421']
    try:
        smtplib.SMTP(HOST, relay.ports['greet421'], timeout=10)
        got = None
    except smtplib.SMTPConnectError as e:
        got = (e.smtp_code, e.smtp_error)
    is_(got, (421, b'4.3.2 service not available'), 'greet421: 421 greeting')
    is_(relay.connections['greet421'], before + 1,
        'greet421: connection counted')


def test_sessions(relay):
    relay.reset()
    s = connect(relay, 'plain_noauth')
    for n in (1, 2):
        s.sendmail('a@example.com', ['b@example.org'], b'n\r\n')
    s.quit()
    s = connect(relay, 'plain_noauth')
    s.sendmail('a@example.com', ['b@example.org'], b'n\r\n')
    s.quit()
    m = relay.wait_for(3)
    is_(len(m), 3, 'sessions: three messages')
    ok(m[0].session_id == m[1].session_id, 'sessions: one connection, one id')
    is_(m[2].session_id, m[1].session_id + 1,
        'sessions: the next connection, the next id')
    is_(relay.connections['plain_noauth'], 2, 'sessions: two connections')
    relay.wait_idle()
    is_(relay.session(m[0].session_id).messages, 2,
        'sessions: messages counted per session')
    t0 = time.monotonic()
    is_(len(relay.wait_for(4, timeout=0.2)), 3,
        'wait_for returns what it has on timeout')
    ok(time.monotonic() - t0 < 2, 'wait_for honours its timeout')
    relay.reset()
    is_((relay.messages, relay.sessions, relay.rejected), ([], [], []),
        'reset clears the records')


def test_long_line(relay):
    relay.reset()
    s = connect(relay, 'plain_noauth')
    line = b'y' * 998
    code, _ = send_raw(s, 'a@example.com', ['b@example.org'],
                       b'Subject: l\r\n\r\n' + line + b'\r\n.\r\n')
    is_(code, 250, 'a 998-octet line (the RFC 5321 maximum) is accepted')
    s.quit()
    is_(relay.wait_for(1)[0].data, b'Subject: l\r\n\r\n' + line + b'\r\n',
        'the long line is recorded whole')


def test_env(env):
    path = env.config_for('tls', timeout=None, mail_type='auth',
                          local_domain='example.com')
    text = read(path)
    is_(stat.S_IMODE(os.stat(path).st_mode), 0o600, 'config_for: mode 0600')
    like(text, r'(?m)^\[mailshim\]\nlocal_domain = example\.com\n'
               r'aliases = \S+/aliases\n', 'config_for: [mailshim] section')
    like(text, rf'(?m)^port = {env.ports["tls"]}$', 'config_for: port')
    like(text, r'(?m)^tls = tls$', 'config_for: tls follows the listener')
    like(text, r'(?m)^mail_type = auth$', 'config_for: keys added')
    unlike(text, r'timeout', 'config_for: None removes a key')
    is_(env.config_for('noauth_tls').endswith('mailshim.ini'), True,
        'config_for: returns the path')
    like(read(env.last_config), r'(?m)^tls = starttls$',
         'config_for: starttls listener')

    # run(), with a stand-in for mailshim that shows what it got.
    fake = env.write_file('fake-mailshim', '#!/bin/sh\n'
                          'printf "%s|" "$@"; echo\n'
                          'echo "HOME=$HOME LC_ALL=$LC_ALL '
                          'CFG=${MAILSHIM_CONFIG-unset} X=${X-unset}"\n'
                          'cat\n'
                          'echo oops >&2; exit 3\n', 0o755)
    saved = os.environ.get('MAILSHIM_BIN')
    os.environ['MAILSHIM_BIN'] = fake
    os.environ['MAILSHIM_CONFIG'] = '/nonexistent'
    try:
        r = env.run(['-t', 'a b'], input=b'IN\n', env_extra={'X': 1})
        is_(r.rc, 3, 'run: exit status')
        is_(r.out, (f'-C|{env.last_config}|-t|a b|\n'
                    f'HOME={env.dir} LC_ALL=C.UTF-8 CFG=unset X=1\n'
                    'IN\n').encode(), 'run: args, environment, stdin')
        is_(r.err, 'oops\n', 'run: stderr as text')
        r = env.run([], config=False, env_extra={'MAILSHIM_CONFIG': '/c'})
        like(r.out, r'^\|\nHOME=\S+ LC_ALL=C\.UTF-8 CFG=/c ',
             'run: config=False, MAILSHIM_CONFIG when given')
    finally:
        del os.environ['MAILSHIM_CONFIG']
        if saved is None:
            del os.environ['MAILSHIM_BIN']
        else:
            os.environ['MAILSHIM_BIN'] = saved


def test_tap_harness():
    """The TAP helpers, in child processes."""
    def child(body):
        with tempfile.NamedTemporaryFile('w', suffix='.py',
                                         delete=False) as f:
            f.write('import os, sys\n'
                    'sys.path.insert(0, os.environ["MAILSHIM_TESTLIB"])\n'
                    'import harness\n' + body)
        try:
            return subprocess.run([sys.executable, f.name],
                                  capture_output=True, text=True, timeout=30)
        finally:
            os.unlink(f.name)
    p = child('def t():\n'
              '    harness.ok(True, "fine")\n'
              '    harness.is_("a\\nb", "a", "two\\nlines")\n'
              'harness.main(t)\n')
    is_(p.returncode, 1, 'TAP: a failure exits 1')
    like(p.stdout, r"^ok 1 - fine\nnot ok 2 - two lines\n"
                   r"#   Failed test at \S+ line 6\.\n"
                   r"#        got: 'a\\nb'\n#   expected: 'a'\n"
                   r"1\.\.2\n", 'TAP: output of a failure')
    p = child('def t():\n'
              '    harness.ok(1)\n'
              '    raise ValueError("boom")\n'
              'harness.main(t)\n')
    ok(p.returncode != 0, 'TAP: an exception exits non-zero')
    like(p.stdout, r'(?m)^# ValueError: boom$', 'TAP: traceback as diag')
    like(p.stdout, r'(?m)^Bail out! uncaught ValueError: boom$',
         'TAP: Bail out! on an exception')
    p = child('raise KeyError(1)\n')
    like(p.stdout, r'(?m)^Bail out! ', 'TAP: Bail out! outside main() too')
    ok(p.returncode != 0, 'TAP: ... and a non-zero exit')


def test_cli():
    """relay.py as a program."""
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([sys.executable, RELAY_PY, '--dir', d,
                                 '--listeners', 'starttls,plain',
                                 '--user', 'cli:pw:x'])
        try:
            info_path = os.path.join(d, 'relay.json')
            deadline = time.monotonic() + 10
            while not os.path.exists(info_path) and \
                    time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.02)
            info = json.loads(read(info_path))
            is_(sorted(info['ports']), ['plain', 'starttls'],
                'cli: relay.json lists the listeners')
            is_(info['pid'], proc.pid, 'cli: relay.json has the pid')
            s = smtplib.SMTP(HOST, info['ports']['starttls'], timeout=10)
            s.starttls(context=verify_context(info['ca_file']))
            s.login('cli', 'pw:x')
            s.sendmail('a@example.com', ['b@example.org', 'c@example.org'],
                       b'Subject: cli\r\n\r\n..dot\r\n')
            s.quit()
            eml = os.path.join(d, 'msg-0001.eml')
            deadline = time.monotonic() + 5
            while not os.path.exists(os.path.join(d, 'msg-0001.json')) and \
                    time.monotonic() < deadline:
                time.sleep(0.02)
            rec = json.loads(read(os.path.join(d, 'msg-0001.json')))
            is_((rec['rcpt_tos'], rec['tls'], rec['auth_user']),
                (['b@example.org', 'c@example.org'], True, 'cli'),
                'cli: msg-0001.json')
            is_(read(eml, 'rb'), b'Subject: cli\r\n\r\n..dot\r\n',
                'cli: msg-0001.eml holds the data (unstuffed)')
            is_(base64.b64decode(rec['data_b64']), read(eml, 'rb'),
                'cli: data_b64 in the json')
            proc.send_signal(signal.SIGTERM)
            is_(proc.wait(timeout=10), 0, 'cli: SIGTERM, clean exit')
            is_(len(read(os.path.join(d, 'sessions.jsonl')).splitlines()), 1,
                'cli: sessions.jsonl')
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, RELAY_PY, '--dir', d,
                            '--listeners', 'plain', '--max-seconds', '0.5'],
                           capture_output=True, text=True, timeout=20)
        is_(p.returncode, 0, 'cli: --max-seconds, exits by itself')
        ok(time.monotonic() - t0 < 10, 'cli: ... promptly')


def test():
    with harness.Env() as env:
        relay = env.relay
        is_(sorted(relay.ports), sorted(harness.LISTENERS),
            'every listener has a port')
        test_plain(relay)
        test_smtplib_sendmail(relay)
        test_starttls(relay)
        test_starttls_authbefore(relay)
        test_implicit_tls(relay)
        test_auth(relay)
        test_no_auth_listeners(relay)
        test_bad_certificates(relay)
        test_faults(relay)
        test_greet421(relay)
        test_sessions(relay)
        test_long_line(relay)
        test_env(env)
        relay.wait_idle()
        is_(relay.errors, [], 'the relay saw no unexpected errors')
    test_extra_users()
    test_tap_harness()
    test_cli()


harness.main(test)
