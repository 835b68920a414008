#!/usr/bin/python3
"""End-to-end: DSN (-N, -R, -V) and BODY=8BITMIME as ESMTP parameters.

mailshim passes them to the relay only when its libcurl can (8.16.0 and
later: before, the text would land inside the address's angle brackets)
and the relay offers the extension (DSN, 8BITMIME); otherwise they are
accepted and left out.  The libcurl in use is read from the third line of
`mailshim --version`, and each case asserts what that libcurl must do, on
what the relay received: the envelope, every parameter, the message, and
how many connections it took (a relay that lacks an extension costs one
connection that stops after EHLO, before AUTH and MAIL, and nothing else).

First, the relay's own handling of the parameters (smtplib against the dsn
listeners), so that the mailshim cases rest on a relay that is known to
record them and to refuse what a relay without DSN refuses.
"""

import os
import re
import smtplib
import ssl
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok, unlike  # noqa: E402
from relay import xtext_decode  # noqa: E402

MSG = b'Subject: dsn test\n\nbody line\n'
MSG_WIRE_BODY = b'\r\nbody line\r\n'
MSG_8BIT = 'Subject: 8-bit\n\nla r\u00e9union est \u00e0 15 h\n'.encode()
SENDER = 'jane@example.org'
RCPTS = ['bob@example.com', 'carol@example.org']
DSN_ARGS = ['-N', 'success,failure', '-R', 'hdrs']
# -V with the characters xtext must encode: '+', '=', and '<' '>' (which
# libcurl would take for the end of the address)
ENVID = 'Q+1=2<3>x'
ENVID_XTEXT = 'Q+2B1+3D2+3C3+3Ex'
ALL_ARGS = DSN_ARGS + ['-V', ENVID, '-B8BITMIME']
DIRECT = ['EHLO', 'AUTH', 'MAIL', 'RCPT', 'RCPT', 'DATA']


# ---- the relay --------------------------------------------------------------

def connect(env, listener, tls=False):
    s = smtplib.SMTP('127.0.0.1', env.ports[listener], timeout=10)
    s.ehlo('client.test')
    if tls:
        ctx = ssl.create_default_context(cafile=env.relay.ca_file)
        s.starttls(context=ctx)
        s.ehlo('client.test')
    return s


def test_relay(env):
    extensions = {}
    for name in ('dsn', 'dsn_7bit', 'plain'):
        s = connect(env, name)
        extensions[name] = (s.has_extn('dsn'), s.has_extn('8bitmime'))
        s.quit()
    s = connect(env, 'dsn_starttls')
    before = s.has_extn('dsn')
    s.close()
    s = connect(env, 'dsn_starttls', tls=True)
    extensions['dsn_starttls'] = (before, s.has_extn('dsn'))
    s.quit()
    is_(extensions, {'dsn': (True, True), 'dsn_7bit': (True, False),
                     'plain': (False, True), 'dsn_starttls': (False, True)},
        'relay: DSN and 8BITMIME offered by the listeners that say so '
        '(dsn_starttls: DSN only after STARTTLS)')

    env.relay.reset()
    s = connect(env, 'dsn')
    s.login('AppKey', 'SecretKey')
    replies = [
        s.mail('a@example.com', ['RET=hdrs', f'ENVID={ENVID_XTEXT}',
                                 'BODY=8BITMIME', 'SIZE=40'])[0],
        s.rcpt('b@example.org', ['NOTIFY=SUCCESS,DELAY',
                                 'ORCPT=rfc822;b@example.org'])[0],
        s.rcpt('c@example.org')[0],
        s.data(b'Subject: x\r\n\r\nbody\r\n')[0]]
    s.quit()
    is_(replies, [250, 250, 250, 250], 'relay dsn: the parameters accepted')
    msgs = env.relay.wait_for(1)
    is_([(m.mail_options, m.rcpt_options) for m in msgs],
        [(['RET=hdrs', f'ENVID={ENVID_XTEXT}', 'BODY=8BITMIME', 'SIZE=40'],
          [['NOTIFY=SUCCESS,DELAY', 'ORCPT=rfc822;b@example.org'], []])],
        'relay dsn: every parameter recorded in order, DSN values as sent')
    is_(xtext_decode(ENVID_XTEXT), ENVID, 'relay: xtext_decode')

    bad = [('MAIL', 'ENVID=a=b'), ('MAIL', 'ENVID=a+2b'), ('MAIL', 'RET=ALL'),
           ('MAIL', 'RET'), ('MAIL', 'ENVID=' + 'x' * 101),
           ('MAIL', 'RET=FULL RET=HDRS'), ('RCPT', 'NOTIFY=NEVER,SUCCESS'),
           ('RCPT', 'NOTIFY=SUCCESS,SUCCESS'), ('RCPT', 'NOTIFY=SOMETIMES'),
           ('RCPT', 'ORCPT=b@example.org')]
    got = []
    for verb, param in bad:
        s = connect(env, 'dsn')
        s.login('AppKey', 'SecretKey')
        if verb == 'MAIL':
            code = s.mail('a@example.com', param.split())[0]
        else:
            s.mail('a@example.com')
            code = s.rcpt('b@example.org', param.split())[0]
        got.append((verb, param, code))
        s.quit()
    is_(got, [(v, p, 501) for v, p in bad],
        'relay dsn: malformed DSN parameters refused with 501')

    got = []
    for name, verb, param in (('plain', 'MAIL', 'RET=HDRS'),
                              ('plain', 'MAIL', 'ENVID=x'),
                              ('plain', 'RCPT', 'NOTIFY=NEVER'),
                              ('dsn_7bit', 'MAIL', 'BODY=8BITMIME')):
        s = connect(env, name)
        s.login('AppKey', 'SecretKey')
        if verb == 'MAIL':
            code = s.mail('a@example.com', [param])[0]
        else:
            s.mail('a@example.com')
            code = s.rcpt('b@example.org', [param])[0]
        got.append((name, param, code))
        s.quit()
    is_(got, [('plain', 'RET=HDRS', 555), ('plain', 'ENVID=x', 555),
              ('plain', 'NOTIFY=NEVER', 555), ('dsn_7bit', 'BODY=8BITMIME',
                                               555)],
        'relay: a parameter whose extension is not offered is refused')


# ---- which libcurl ----------------------------------------------------------

def libcurl_params(env):
    """(libcurl version tuple, does --version say it sends parameters)."""
    r = env.run(['--version'], config=False)
    lines = r.out.decode('utf-8', 'replace').splitlines()
    ok(r.rc == 0 and len(lines) >= 3, '--version: exit 0')
    m = re.search(r'libcurl/([0-9]+)\.([0-9]+)\.([0-9]+)',
                  lines[1] if len(lines) > 1 else '')
    version = tuple(int(x) for x in m.groups()) if m else None
    line = ([x for x in lines if x.startswith('ESMTP parameters:')]
            or [''])[0]
    dotted = '.'.join(map(str, version or ()))
    want = (f'ESMTP parameters: yes (libcurl {dotted})'
            if version and version >= (8, 16, 0) else
            f'ESMTP parameters: no (needs libcurl 8.16, this is {dotted})')
    if not is_(line, want, '--version: the ESMTP parameters line, as the '
               'libcurl of the second line can or cannot send them'):
        diag(r.describe())
    params = line.startswith('ESMTP parameters: yes')
    diag(f'libcurl {dotted}: ESMTP parameters '
         f'{"sent" if params else "left out"}')
    return version, params


# ---- running mailshim -------------------------------------------------------

class Run:
    """Run mailshim once against a listener, with a fresh relay record."""

    def __init__(self, env, listener, args, data=MSG, rcpts=RCPTS, **keys):
        env.config_for(listener, **keys)
        self.port = env.ports[listener]
        env.relay.reset()
        self.r = env.run(args + ['-f', SENDER] + rcpts, input=data)
        env.relay.wait_idle()
        self.msgs = env.relay.messages
        self.sessions = env.relay.sessions
        self.verbs = [harness.commands(s.verbs) for s in self.sessions]

    def delivered(self, label, err=''):
        """Exit 0, stderr err (exact, or a compiled regex), exactly one
        message with the right envelope."""
        good = is_(self.r.rc, 0, f'{label}: exit 0')
        if hasattr(err, 'pattern'):
            good &= like(self.r.err, err, f'{label}: stderr')
        else:
            good &= is_(self.r.err, err, f'{label}: stderr')
        good &= is_([(m.mail_from, m.rcpt_tos) for m in self.msgs],
                    [(SENDER, RCPTS)],
                    f'{label}: one message, the envelope exactly right')
        if not good:
            diag(self.r.describe())
        return good

    @property
    def params(self):
        """(MAIL parameters, RCPT parameters) of the one message."""
        return ((self.msgs[0].mail_options, self.msgs[0].rcpt_options)
                if len(self.msgs) == 1 else None)


def no_params(run, label):
    is_(run.params, ([], [[] for _ in RCPTS]),
        f'{label}: no parameter on MAIL or RCPT')


# ---- libcurl < 8.16: accepted and left out ----------------------------------

def test_without_params(env):
    label = 'old libcurl, dsn relay, -N -R -V -B8BITMIME'
    c = Run(env, 'dsn', ALL_ARGS)
    if c.delivered(label):
        no_params(c, label)
        ok(c.msgs[0].data.endswith(MSG_WIRE_BODY), f'{label}: the message')
    is_(c.verbs, [DIRECT], f'{label}: one connection')

    label = 'old libcurl, -v'
    c = Run(env, 'dsn', ALL_ARGS + ['-v'])
    c.delivered(label, re.compile(
        r'(?m)^mailshim: note: NOTIFY, RET, ENVID and BODY=8BITMIME not '
        r'sent: libcurl [0-9.]+ cannot pass ESMTP parameters '
        r'\(needs 8\.16\)$'))
    no_params(c, label)
    unlike(c.r.err, r'(?i)--> (MAIL|RCPT) .*(NOTIFY|RET|ENVID|BODY)=',
           f'{label}: no parameter in the dialogue')

    label = 'old libcurl, starttls relay (no DSN), -N -R'
    c = Run(env, 'starttls', DSN_ARGS)
    if c.delivered(label):
        no_params(c, label)
    is_(c.verbs, [['EHLO', 'STARTTLS'] + DIRECT], f'{label}: one connection')

    label = 'old libcurl, 8-bit message'
    c = Run(env, 'dsn', [], data=MSG_8BIT)
    if c.delivered(label):
        no_params(c, label)


# ---- libcurl >= 8.16: passed on when offered --------------------------------

def test_with_params(env):
    label = 'dsn relay, -N -R -V -B8BITMIME'
    c = Run(env, 'dsn', ALL_ARGS)
    if c.delivered(label):
        is_(c.params, (['RET=HDRS', f'ENVID={ENVID_XTEXT}', 'BODY=8BITMIME'],
                       [['NOTIFY=SUCCESS,FAILURE']] * 2),
            f'{label}: RET, ENVID (xtext) and BODY on MAIL, NOTIFY on each '
            'RCPT, keywords in upper case')
        is_(xtext_decode(c.params[0][1][len('ENVID='):]), ENVID,
            f'{label}: ENVID decodes to the -V value')
        ok(c.msgs[0].data.endswith(MSG_WIRE_BODY), f'{label}: the message')
    is_(c.verbs, [DIRECT], f'{label}: one connection')

    label = 'dsn relay, -N never'
    c = Run(env, 'dsn', ['-N', 'never'])
    if c.delivered(label):
        is_(c.params, ([], [['NOTIFY=NEVER']] * 2),
            f'{label}: NOTIFY=NEVER on each RCPT and nothing on MAIL')

    label = 'dsn relay, -V only, -B7BIT'
    c = Run(env, 'dsn', ['-V', 'plain.id-1', '-B7BIT'])
    if c.delivered(label):
        is_(c.params, (['ENVID=plain.id-1'], [[], []]),
            f'{label}: ENVID alone')

    label = 'dsn relay, 8-bit message without -B'
    c = Run(env, 'dsn', [], data=MSG_8BIT)
    if c.delivered(label):
        is_(c.params, (['BODY=8BITMIME'], [[], []]),
            f'{label}: BODY=8BITMIME, as Postfix sends it')

    label = 'dsn relay, 8-bit message with -B7BIT'
    c = Run(env, 'dsn', ['-B7BIT'], data=MSG_8BIT)
    if c.delivered(label):
        is_(c.params, (['BODY=8BITMIME'], [[], []]),
            f'{label}: BODY=8BITMIME: the bytes win over the flag')

    label = 'dsn relay, no flags'
    c = Run(env, 'dsn', [])
    if c.delivered(label):
        no_params(c, label)
    is_(c.verbs, [DIRECT], f'{label}: one connection')

    label = 'dsn_starttls relay (DSN after STARTTLS), -N -R'
    c = Run(env, 'dsn_starttls', DSN_ARGS)
    if c.delivered(label):
        is_(c.params, (['RET=HDRS'], [['NOTIFY=SUCCESS,FAILURE']] * 2),
            f'{label}: DSN parameters sent')
    is_(c.verbs, [['EHLO', 'STARTTLS'] + DIRECT],
        f'{label}: decided on the EHLO after STARTTLS: one connection')

    # A relay without an extension: the first connection stops after EHLO,
    # before AUTH and MAIL; the second sends what the relay offers.
    label = 'plain relay (8BITMIME, no DSN), -N -R -V -B8BITMIME'
    c = Run(env, 'plain', ALL_ARGS)
    if c.delivered(label):
        is_(c.params, (['BODY=8BITMIME'], [[], []]),
            f'{label}: BODY kept, DSN parameters left out')
    is_(c.verbs, [['EHLO'], DIRECT],
        f'{label}: a first connection that stops after EHLO, then one '
        'that sends it')
    is_([s.messages for s in c.sessions], [0, 1],
        f'{label}: delivered once, over the second connection')

    label = 'plain relay, -v'
    c = Run(env, 'plain', ALL_ARGS + ['-v'])
    c.delivered(label, re.compile(
        r'(?m)^mailshim: note: NOTIFY, RET and ENVID not sent: relay '
        rf'127\.0\.0\.1:{c.port} does not offer DSN$'))

    label = 'starttls relay (no DSN), -N -R'
    c = Run(env, 'starttls', DSN_ARGS)
    if c.delivered(label):
        no_params(c, label)
    is_(c.verbs, [['EHLO', 'STARTTLS', 'EHLO'],
                  ['EHLO', 'STARTTLS', 'EHLO', 'AUTH', 'MAIL', 'RCPT', 'RCPT',
                   'DATA']],
        f'{label}: stopped after the EHLO after STARTTLS, then sent')

    label = 'dsn_7bit relay (DSN, no 8BITMIME), -N -B8BITMIME'
    c = Run(env, 'dsn_7bit', ['-N', 'delay', '-B8BITMIME'])
    if c.delivered(label):
        is_(c.params, ([], [['NOTIFY=DELAY']] * 2),
            f'{label}: NOTIFY kept, BODY left out')
    is_(c.verbs, [['EHLO'], DIRECT], f'{label}: two connections')

    label = 'plain_noauth relay, no credentials, -R full'
    c = Run(env, 'plain_noauth', ['-R', 'full'], username=None,
            password=None)
    if c.delivered(label):
        no_params(c, label)
    is_(c.verbs, [['EHLO'], ['EHLO', 'MAIL', 'RCPT', 'RCPT', 'DATA']],
        f'{label}: two connections, no AUTH')

    # An error on the second connection is the one reported.
    label = 'plain relay, -N, a refused recipient'
    c = Run(env, 'plain', ['-N', 'failure'],
            rcpts=['reject550@example.org'])
    is_(c.r.rc, 67, f'{label}: exit 67')
    is_(c.r.err, 'mailshim: relay refused recipient <reject550@example.org>: '
        '550 5.1.1 <reject550@example.org>: Recipient address rejected: '
        'User unknown\n', f'{label}: the relay\'s refusal, nothing else')
    is_([r.command for r in env.relay.rejected],
        ['RCPT TO:<reject550@example.org>'],
        f'{label}: refused once, RCPT without NOTIFY')
    is_(c.verbs, [['EHLO'], ['EHLO', 'AUTH', 'MAIL', 'RCPT']],
        f'{label}: two connections')


# ---- either way -------------------------------------------------------------

def test_auth_missing_wins(env):
    """No AUTH and no DSN: the missing AUTH is the error, on the first
    connection; there is no second."""
    label = 'plain_noauth relay with credentials, -N -R'
    c = Run(env, 'plain_noauth', DSN_ARGS)
    is_(c.r.rc, 78, f'{label}: exit 78')
    is_(c.r.err, f'mailshim: relay 127.0.0.1:{c.port} does not offer AUTH '
        'PLAIN over a connection without TLS; not sending without '
        'authentication\n', f'{label}: the message')
    is_((c.verbs, len(c.msgs)), ([['EHLO']], 0),
        f'{label}: one connection, stopped after EHLO')


def test_invalid(env):
    cases = [
        (['-N', 'SOMETIMES'], "-N takes NEVER or a list of SUCCESS, FAILURE "
         "and DELAY, not 'SOMETIMES'"),
        (['-N', 'NEVER,SUCCESS'], "-N takes NEVER or a list of SUCCESS, "
         "FAILURE and DELAY, not 'NEVER,SUCCESS'"),
        (['-N', 'SUCCESS,'], "-N takes NEVER or a list of SUCCESS, FAILURE "
         "and DELAY, not 'SUCCESS,'"),
        # the value is quoted with its control characters escaped: the
        # message stays one line
        (['-N', 'SUCCESS\r\nRSET'], "-N takes NEVER or a list of SUCCESS, "
         "FAILURE and DELAY, not 'SUCCESS\\x0d\\x0aRSET'"),
        (['-R', 'ALL'], "-R takes FULL or HDRS, not 'ALL'"),
        (['-V', 'an id'], '-V takes an envelope id of 1 to 100 printable '
         'characters'),
        (['-V', 'id\r\nRSET'], '-V takes an envelope id of 1 to 100 '
         'printable characters'),
        (['-V', 'x' * 101], '-V takes an envelope id of 1 to 100 printable '
         'characters'),
        (['-B', '8BIT'], "-B takes 7BIT or 8BITMIME, not '8BIT'"),
    ]
    env.config_for('dsn')
    for args, message in cases:
        label = f'invalid {args[0]} {args[1][:12]!r}'
        env.relay.reset()
        r = env.run(args + RCPTS, input=MSG)
        env.relay.wait_idle()
        is_(r.rc, 64, f'{label}: exit 64')
        want = f'mailshim: {message}\n'
        is_(r.err[:len(want)], want, f'{label}: the message')
        like(r.err[len(want):], r'\Ausage: sendmail ',
             f'{label}: then the usage')
        is_((env.relay.connections.get('dsn'), env.relay.messages),
            (0, []), f'{label}: the relay was not contacted')


def test():
    with harness.Env() as env:
        test_relay(env)
        version, params = libcurl_params(env)
        if params:
            test_with_params(env)
        else:
            test_without_params(env)
        test_auth_missing_wins(env)
        test_invalid(env)
        is_(env.relay.errors, [], 'no errors on the relay side')


harness.main(test)
