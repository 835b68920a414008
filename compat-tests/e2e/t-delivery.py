#!/usr/bin/python3
"""End-to-end: what the relay receives, byte for byte.

Each case runs mailshim the way a caller would (arguments, a message on
standard input) against the test relay's STARTTLS listener and checks what
the relay recorded: the envelope sender, the recipients, and the message
data.  The relay records the data dot-unstuffed with its line ends as they
came over the wire, so what it holds is exactly what the caller meant, after
mailshim's documented edits (CRLF line ends; From/Date/Message-ID added when
missing; Bcc removed).

Where mailshim adds Date: and Message-ID:, their values are checked with a
regular expression and everything else exactly.
"""

import os
import pwd
import re
import shlex
import subprocess
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

LOCAL_DOMAIN = 'example.net'          # config_for()'s local_domain
LOGIN = pwd.getpwuid(os.getuid()).pw_name
DEFAULT_SENDER = f'{LOGIN}@{LOCAL_DOMAIN}'
RCPT = 'rcpt@example.org'

# The harness runs mailshim with TZ=UTC, so the zone is always +0000.
DATE_RE = (rb'(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [1-9][0-9]? '
           rb'(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) '
           rb'[0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-6][0-9] \+0000')
MSGID_RE = rb'<[0-9]{14}\.[0-9a-f]{24}@' + re.escape(LOCAL_DOMAIN.encode()) \
    + rb'>'

# The commands of one clean submission over STARTTLS with AUTH.
CLEAN_VERBS = ['EHLO', 'STARTTLS', 'EHLO', 'AUTH', 'MAIL', 'RCPT', 'DATA']


# ---- helpers ---------------------------------------------------------------

submit = harness.submit
delivered = harness.delivered
refused = harness.refused


def added(before: bytes, from_value: bytes, body: bytes) -> bytes:
    """A regex for a message whose original headers were `before`, to which
    mailshim appended From (exactly from_value), Date and Message-ID."""
    return (re.escape(before) + rb'From: ' + re.escape(from_value) +
            rb'\r\nDate: ' + DATE_RE + rb'\r\nMessage-ID: ' + MSGID_RE +
            rb'\r\n\r\n' + re.escape(body))


def data_matches(m, regex: bytes, name):
    """The whole of m.data matches regex."""
    got = m.data if m else None
    passed = ok(got is not None and re.fullmatch(regex, got, re.S),
                f'{name}: message bytes')
    if not passed:
        diag(f'     got: {got!r}\n  regex: {regex!r}')


def body_of(m):
    """The bytes after the header section."""
    return m.data.split(b'\r\n\r\n', 1)[1] if m else None


def only_crlf(data: bytes) -> bool:
    """Every CR is followed by LF and every LF preceded by CR."""
    return re.search(rb'\r(?!\n)|(?<!\r)\n', data) is None


def check_envelope(m, sender, rcpts, name):
    is_((m.mail_from, m.rcpt_tos) if m else None, (sender, rcpts),
        f'{name}: envelope')


# ---- line endings ----------------------------------------------------------

def test_line_endings(env):
    m = delivered(env, [RCPT], b'Subject: lf\nX-A: 1\n\nline one\nline two\n',
                  'LF input')
    if m:
        check_envelope(m, DEFAULT_SENDER, [RCPT], 'LF input')
        data_matches(m, added(b'Subject: lf\r\nX-A: 1\r\n',
                              DEFAULT_SENDER.encode(),
                              b'line one\r\nline two\r\n'),
                     'LF input: strict CRLF out')

    # CRLF already: nothing doubled.
    m = delivered(env, [RCPT], b'Subject: crlf\r\n\r\nl1\r\nl2\r\n',
                  'CRLF input')
    data_matches(m, added(b'Subject: crlf\r\n', DEFAULT_SENDER.encode(),
                          b'l1\r\nl2\r\n'), 'CRLF input: unchanged ends')

    # Every kind of line end in one message, headers included; a lone CR is
    # a line end too (never passed on bare: the smuggling pattern).
    m = delivered(env, [RCPT],
                  b'Subject: mixed\r\nX-B: 2\nX-C: 3\r\rA\r\nB\nC\rD\r\n',
                  'mixed line ends')
    data_matches(m, added(b'Subject: mixed\r\nX-B: 2\r\nX-C: 3\r\n',
                          DEFAULT_SENDER.encode(), b'A\r\nB\r\nC\r\nD\r\n'),
                 'mixed LF/CRLF/lone CR: all CRLF')
    ok(m and only_crlf(m.data), 'mixed line ends: no bare CR or LF left')

    m = delivered(env, [RCPT], b'Subject: nonl\n\nfirst\nlast line',
                  'no final newline')
    data_matches(m, added(b'Subject: nonl\r\n', DEFAULT_SENDER.encode(),
                          b'first\r\nlast line\r\n'),
                 'no final newline: the last line gets CRLF')

    m = delivered(env, [RCPT], b'Subject: only', 'headers only, no newline')
    data_matches(m, added(b'Subject: only\r\n', DEFAULT_SENDER.encode(),
                          b''), 'headers only, no newline: empty body')

    # 8-bit: UTF-8 text plus every byte 0x01-0xff but CR and LF (no NUL).
    binary = bytes(b for b in range(1, 256) if b not in (10, 13))
    text = 'Grüße, 你好, 안녕하세요 ✓ — café'.encode('utf-8')
    body = text + b'\n' + binary + b'\n\ttabbed \x1b[0m\n'
    m = delivered(env, [RCPT], b'Subject: 8bit\n\n' + body, '8-bit body')
    is_(body_of(m), text + b'\r\n' + binary + b'\r\n\ttabbed \x1b[0m\r\n',
        '8-bit body: every byte passes unchanged')


# ---- the lone dot ----------------------------------------------------------

DOTS_IN = b'Subject: dots\n\nbefore\n.\nafter\n'


def test_lone_dot(env):
    # Without -i, a line "." ends the input: the rest is not sent, exit 0.
    m = delivered(env, [RCPT], DOTS_IN, 'lone dot, no -i')
    data_matches(m, added(b'Subject: dots\r\n', DEFAULT_SENDER.encode(),
                          b'before\r\n'), 'lone dot, no -i: input ends there')

    m = delivered(env, [RCPT],
                  b'Subject: dots\r\n\r\nbefore\r\n.\r\nafter\r\n',
                  'lone dot CRLF, no -i')
    is_(body_of(m), b'before\r\n', 'lone dot CRLF, no -i: input ends there')

    # In the header section too.
    m = delivered(env, [RCPT], b'Subject: early\n.\nX-Not: sent\n\nnot sent\n',
                  'lone dot in headers, no -i')
    data_matches(m, added(b'Subject: early\r\n', DEFAULT_SENDER.encode(),
                          b''), 'lone dot in headers, no -i: input ends')

    for flag in ('-i', '-oi'):
        m = delivered(env, [flag, RCPT], DOTS_IN, f'lone dot with {flag}')
        is_(body_of(m), b'before\r\n.\r\nafter\r\n',
            f'lone dot with {flag}: delivered intact')

    # A final "." without a newline.
    m = delivered(env, ['-i', RCPT], b'Subject: d\n\nend\n.', 'final dot, -i')
    is_(body_of(m), b'end\r\n.\r\n', 'final dot, -i: kept')
    m = delivered(env, [RCPT], b'Subject: d\n\nend\n.', 'final dot, no -i')
    is_(body_of(m), b'end\r\n', 'final dot, no -i: it ends the input')

    # Lines that start with a dot but are not a lone dot are never eaten
    # nor unstuffed by mailshim; the relay unstuffs what libcurl stuffed, so
    # the record must equal the input.
    dotty = b'..\n.x\n. \n...\n.\t\nz\n'
    want = b'..\r\n.x\r\n. \r\n...\r\n.\t\r\nz\r\n'
    m = delivered(env, [RCPT], b'Subject: dotty\n\n' + dotty,
                  'dot lines, no -i')
    is_(body_of(m), want, 'dot lines, no -i: "..", ".x", ". " exact')
    m = delivered(env, ['-i', RCPT], b'Subject: dotty\n\n' + dotty,
                  'dot lines, -i')
    is_(body_of(m), want, 'dot lines, -i: "..", ".x", ". " exact')


# ---- SMTP smuggling --------------------------------------------------------

SMUGGLED = (b'MAIL FROM:<evil@attacker.example>\r\n'
            b'RCPT TO:<victim@example.org>\r\nDATA\r\n'
            b'From: ceo@example.org\r\n\r\nsmuggled\r\n')


def smuggling_case(env, args, tail, want, name):
    """Send a message whose body holds tail; the relay must get exactly one
    message, on one connection with one MAIL and one RCPT, whose body is
    want (all CRLF)."""
    r, msgs, sessions = submit(env, args + [RCPT],
                               b'Subject: smuggle\n\n' + tail)
    is_((r.rc, r.err, len(msgs)), (0, '', 1), f'{name}: one message, exit 0')
    is_([harness.commands(s.verbs) for s in sessions], [CLEAN_VERBS],
        f'{name}: one clean transaction, nothing became a command')
    if msgs:
        m = msgs[0]
        check_envelope(m, DEFAULT_SENDER, [RCPT], name)
        is_(body_of(m), want, f'{name}: body delivered whole')
        ok(only_crlf(m.data), f'{name}: every line ends CRLF')


def test_smuggling(env):
    # With -i (how PHP's mail() and most MUAs call sendmail), no end-of-data
    # pattern may end the message or reach the relay as such.
    smuggling_case(env, ['-i'], b'A\n.\nB\n', b'A\r\n.\r\nB\r\n',
                   'smuggling LF.LF, -i')
    smuggling_case(env, ['-i'], b'A\r.\rB\n', b'A\r\n.\r\nB\r\n',
                   'smuggling CR.CR, -i')
    smuggling_case(env, ['-i'], b'A\n.\r\nB\n', b'A\r\n.\r\nB\r\n',
                   'smuggling LF.CRLF, -i')
    smuggling_case(env, ['-i'], b'A\r\n.\n' + SMUGGLED,
                   b'A\r\n.\r\n' + SMUGGLED,
                   'smuggling CRLF.LF MAIL FROM, -i')
    smuggling_case(env, ['-i'], b'A\r.\r' + SMUGGLED.replace(b'\r\n', b'\r'),
                   b'A\r\n.\r\n' + SMUGGLED,
                   'smuggling CR.CR MAIL FROM (lone CRs), -i')
    # Without -i, a real line "." ends the input (sendmail's rule): what
    # follows is dropped, and still never becomes a command.
    smuggling_case(env, [], b'A\r\n.\n' + SMUGGLED, b'A\r\n',
                   'smuggling CRLF.LF MAIL FROM, no -i: input ends')
    # Without -i, only a real line "." (after LF or CRLF) is sendmail's end
    # of input.  A dot between lone CRs is not a line to sendmail or Postfix
    # (both split lines at LF only), so it must not end the message either:
    # mailshim turns the lone CRs into CRLF, and the dot line must go out
    # stuffed, not cut the message short.
    smuggling_case(env, [], b'A\r.\rB\n', b'A\r\n.\r\nB\r\n',
                   'smuggling CR.CR, no -i (Postfix: not an end)')
    smuggling_case(env, [], b'A\n.\rB\n', b'A\r\n.\r\nB\r\n',
                   'smuggling LF.CR, no -i (Postfix: not an end)')


# ---- headers ---------------------------------------------------------------

def test_added_headers(env):
    m1 = delivered(env, [RCPT], b'Subject: add\n\nbody\n', 'headers added')
    data_matches(m1, added(b'Subject: add\r\n', DEFAULT_SENDER.encode(),
                           b'body\r\n'),
                 'missing From, Date, Message-ID added after the others')
    m2 = delivered(env, [RCPT], b'Subject: add\n\nbody\n', 'headers added 2')
    if m1 and m2:
        ids = [re.search(rb'\r\nMessage-ID: (<[^>]*>)', m.data).group(1)
               for m in (m1, m2)]
        ok(ids[0] != ids[1], 'two messages get different Message-IDs')

    m = delivered(env, [RCPT], b'hello\nworld\n', 'no header at all')
    data_matches(m, added(b'', DEFAULT_SENDER.encode(),
                          b'hello\r\nworld\r\n'),
                 'no header at all: three added, then the empty line')

    m = delivered(env, [RCPT], b'', 'empty input')
    data_matches(m, added(b'', DEFAULT_SENDER.encode(), b''),
                 'empty input: only the added headers')

    original = (b'From: Alice <alice@example.org>\r\n'
                b'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n'
                b'Message-ID: <keep.me@example.org>\r\n'
                b'Subject: keep\r\n\r\nbody\r\n')
    m = delivered(env, [RCPT], original, 'existing headers')
    is_(m and m.data, original, 'existing From, Date, Message-ID untouched')

    # Other spellings of the names count as present.
    original = (b'FROM: a@example.org\r\nDATE: Mon, 1 Jan 2024 00:00:00 '
                b'+0000\r\nMessage-Id: <x@y>\r\n\r\nb\r\n')
    m = delivered(env, [RCPT], original, 'existing headers, other case')
    is_(m and m.data, original, 'header names matched without case')


def test_full_name(env):
    cases = [
        ('Cron Daemon', b'Cron Daemon <%s>'),
        # specials make it a quoted-string, with " and \ escaped
        ('Smith, John', b'"Smith, John" <%s>'),
        ('J. "Q" Smith\\x', b'"J. \\"Q\\" Smith\\\\x" <%s>'),
        ('José', b'=?UTF-8?B?Sm9zw6k=?= <%s>'),
    ]
    for name, want in cases:
        m = delivered(env, ['-F', name, RCPT], b'Subject: f\n\nb\n',
                      f'-F {name!r}')
        data_matches(m, added(b'Subject: f\r\n',
                              want % DEFAULT_SENDER.encode(), b'b\r\n'),
                     f'-F {name!r}: From header')
        if m:
            frm = m.email['From'].addresses[0]
            is_((frm.display_name, frm.addr_spec), (name, DEFAULT_SENDER),
                f'-F {name!r}: a mail reader sees the name and address')

    # A longer UTF-8 name (a real monitoring job's) must still make valid
    # RFC 2047 encoded-words: at most 75 characters each (RFC 2047 s. 2).
    name = 'Système de surveillance du serveur de production'
    m = delivered(env, ['-F', name, RCPT], b'Subject: f\n\nb\n',
                  '-F long UTF-8 name')
    if m:
        line = re.search(rb'\r\nFrom: (.*?)\r\n(?! )', m.data, re.S).group(1)
        words = re.findall(rb'=\?[^?]+\?[BbQq]\?[^?]*\?=', line)
        if not ok(words and all(len(w) <= 75 for w in words),
                  '-F long UTF-8 name: encoded-words of at most 75 '
                  'characters'):
            diag(f'From: {line!r}')
        is_(m.email['From'].addresses[0].display_name, name,
            '-F long UTF-8 name: decodes back to the name')

    # A control character would inject a header.
    refused(env, ['-F', 'x\r\nBcc: evil@attacker.example', RCPT],
            b'Subject: f\n\nb\n', 65,
            'mailshim: invalid full name (-F): it contains a control '
            'character\n', '-F with CRLF')


def test_bcc_removed(env):
    head = (b'To: to@example.org\n'
            b'Bcc: hidden@example.org,\n  also.hidden@example.org\n'
            b'Subject: bcc\n'
            b'bcc: lower@example.org\n'
            b'Resent-Bcc: resent@example.org\n'
            b'X-After: kept\n'
            b'BCC:\n')
    m = delivered(env, [RCPT], head + b'\nbody\n', 'Bcc removal')
    data_matches(m, added(b'To: to@example.org\r\nSubject: bcc\r\n'
                          b'X-After: kept\r\n', DEFAULT_SENDER.encode(),
                          b'body\r\n'),
                 'Bcc (folded, several, any case, empty) and Resent-Bcc '
                 'removed, the rest kept in order')
    # Without -t, the header recipients are not the envelope's.
    check_envelope(m, DEFAULT_SENDER, [RCPT], 'Bcc removal, no -t')
    # "Bcc" inside another header or the body is not a Bcc header.
    m = delivered(env, [RCPT], b'X-Note: Bcc: stays\n\nBcc: in body\n',
                  'Bcc look-alikes')
    data_matches(m, added(b'X-Note: Bcc: stays\r\n', DEFAULT_SENDER.encode(),
                          b'Bcc: in body\r\n'), 'Bcc look-alikes kept')


def test_mbox_and_folding(env):
    m = delivered(env, [RCPT], b'From someone@example.org Mon Jan  1 00:00:00'
                  b' 2024\nSubject: mbox\n\nFrom the body\n', 'mbox From_')
    data_matches(m, added(b'Subject: mbox\r\n', DEFAULT_SENDER.encode(),
                          b'From the body\r\n'),
                 'mbox "From " first line dropped, body "From" kept')

    folded = (b'Subject: a subject that is\r\n  folded\tacross\r\n'
              b'\tthree lines \r\n'
              b'X-Empty:\r\n'
              b'X-Spaced :  value  \r\n'
              b'References: <a@example.org>\r\n <b@example.org>\r\n')
    m = delivered(env, [RCPT], folded + b'\r\nb\r\n', 'folding')
    data_matches(m, added(folded, DEFAULT_SENDER.encode(), b'b\r\n'),
                 'header folding and white space preserved byte for byte')
    m = delivered(env, [RCPT], folded.replace(b'\r\n', b'\n') + b'\nb\n',
                  'folding, LF input')
    data_matches(m, added(folded, DEFAULT_SENDER.encode(), b'b\r\n'),
                 'folding with LF input: same bytes, CRLF')


def test_nul_in_header(env):
    # A NUL in a header must not cut the field and glue the next one onto
    # it ("Subject: aX-Next: y").  Sent as is (8-bit transparency), or
    # refused with 65; never mangled.
    r, msgs, _ = submit(env, [RCPT], b'Subject: a\x00b\nX-Next: y\n\nbody\n')
    if r.rc == 0 and len(msgs) == 1:
        like(msgs[0].data, rb'\ASubject: a\x00b\r\nX-Next: y\r\nFrom: ',
             'NUL in a header: the header kept whole, the next one intact')
    else:
        is_((r.rc, len(msgs)), (65, 0),
            'NUL in a header: refused with 65 if not sent whole')
        like(r.err, r'\Amailshim: [^\n]+\n\Z', 'NUL in a header: one line')


# ---- envelope sender -------------------------------------------------------

def test_sender(env):
    msg = b'Subject: s\n\nb\n'
    for args in (['-f', 'bob@example.com'], ['-fbob@example.com'],
                 ['-r', 'bob@example.com'], ['-rbob@example.com'],
                 ['-f', 'Bob Smith <bob@example.com>'],
                 ['-f', '<bob@example.com>']):
        name = shlex.join(args)
        m = delivered(env, args + [RCPT], msg, name)
        check_envelope(m, 'bob@example.com', [RCPT], name)
        data_matches(m, added(b'Subject: s\r\n', b'bob@example.com',
                              b'b\r\n'), f'{name}: From header')

    m = delivered(env, ['-f', '<>', RCPT], msg, "-f '<>'")
    check_envelope(m, '', [RCPT], "-f '<>': the null sender")
    data_matches(m, added(b'Subject: s\r\n',
                          b'MAILER-DAEMON@' + LOCAL_DOMAIN.encode(),
                          b'b\r\n'), "-f '<>': From: MAILER-DAEMON")

    m = delivered(env, ['-f', 'www-data', RCPT], msg, '-f www-data')
    check_envelope(m, f'www-data@{LOCAL_DOMAIN}', [RCPT],
                   '-f www-data: qualified with local_domain')

    m = delivered(env, [RCPT], msg, 'default sender')
    check_envelope(m, DEFAULT_SENDER, [RCPT],
                   'no -f, no from key: login@local_domain')

    env.write_aliases(f'root: admin@example.com\n{LOGIN}: admin@example.com\n')
    m = delivered(env, ['-f', 'root', RCPT], msg, '-f root, aliased')
    check_envelope(m, 'admin@example.com', [RCPT],
                   '-f root: through the aliases')
    # The fallback is the login name at local_domain, as documented (and
    # as sendmail and Postfix do): not an alias of it.
    m = delivered(env, [RCPT], msg, 'default sender, login aliased')
    check_envelope(m, DEFAULT_SENDER, [RCPT],
                   'no -f: login@local_domain even if the login is aliased')
    env.write_aliases('')

    env.config_for('starttls', **{'from': 'noreply@example.com'})
    m = delivered(env, [RCPT], msg, 'from key')
    check_envelope(m, 'noreply@example.com', [RCPT],
                   "no -f: the account's from key")
    data_matches(m, added(b'Subject: s\r\n', b'noreply@example.com',
                          b'b\r\n'), 'from key: From header')
    m = delivered(env, ['-f', 'bob@example.com', RCPT], msg, '-f over from')
    check_envelope(m, 'bob@example.com', [RCPT], '-f wins over the from key')
    env.config_for('starttls')


# ---- transport -------------------------------------------------------------

def test_transport(env):
    env.config_for('starttls', helo='web1.shop.example')
    m = delivered(env, [RCPT], b'Subject: t\n\nb\n', 'transport')
    if m:
        is_(m.helo, 'web1.shop.example', 'EHLO name is the helo key')
        is_((m.tls, m.listener), (True, 'starttls'),
            'the message went over STARTTLS')
        like(m.tls_version or '', r'^TLSv1\.[23]$', 'TLS 1.2 or later')
        is_((m.auth_mech, m.auth_user), ('PLAIN', 'AppKey'),
            'authenticated with AUTH PLAIN as the account user')
        sess = env.relay.session(m.session_id)
        is_(harness.commands(sess.verbs), CLEAN_VERBS, 'STARTTLS before AUTH, then one '
            'transaction and QUIT')
        is_(sess.helos, ['web1.shop.example'] * 2, 'EHLO again after TLS')
    env.config_for('starttls')


# ---- other modes -----------------------------------------------------------

def test_verify(env):
    env.write_aliases('root: admin@example.com, ops\nops: o1@example.com\n')
    r, msgs, sessions = submit(env, ['-bv', '-f', 'bob@example.com', 'root',
                                     'Ann <ann@example.org>', 'www-data'],
                               b'')
    is_((r.rc, r.err), (0, ''), '-bv: exit 0, no stderr')
    is_(r.out, b'bob@example.com\nadmin@example.com\no1@example.com\n'
               b'ann@example.org\nwww-data@' + LOCAL_DOMAIN.encode() + b'\n',
        '-bv: sender, then each final recipient, one per line')
    is_(([s.verbs for s in sessions], msgs), ([], []),
        '-bv: nothing sent, no connection')
    r, _, _ = submit(env, ['-bv', '-f', '<>', 'x@example.org'], b'')
    is_(r.out, b'<>\nx@example.org\n', '-bv: the null sender shows as <>')

    # sendmail -bv verifies names only and does not collect a message
    # (mailshim(8)'s own example is "sendmail -bv root" at a terminal).
    # Proven by input that would be refused if it were read.
    r, _, sessions = submit(env, ['-bv', '-f', 'bob@example.com',
                                  'x@example.org'],
                            b'X-Long: ' + b'x' * 70000 + b'\n\n')
    is_((r.rc, r.out, r.err), (0, b'bob@example.com\nx@example.org\n', ''),
        '-bv without -t does not read standard input')
    env.write_aliases('')




def linked(binary, name):
    """The path of the shared library name (e.g. 'libcurl') the binary
    runs --version with, as the dynamic linker reports loading it
    (LD_DEBUG=files): linked (libcrypto) or loaded with dlopen when first
    needed (libcurl, sendmail/curl_api.h)."""
    env = dict(os.environ, LD_DEBUG='files')
    err = subprocess.run([binary, '--version'], capture_output=True,
                         text=True, env=env).stderr
    m = re.search(rf'calling init: (\S*/{name}\.so\S*)', err)
    return m.group(1) if m else None


def test_version_libraries(out):
    """--version names the libraries the binary really runs with: each
    line checked against the library ldd resolves, asked itself."""
    import ctypes
    binary = os.environ['MAILSHIM_BIN']
    lines = out.splitlines()
    is_(len(lines), 6, '--version: six lines')
    lines += [''] * 6
    curl = ctypes.CDLL(linked(binary, 'libcurl'))
    curl.curl_version.restype = ctypes.c_char_p
    is_(lines[1], curl.curl_version().decode(),
        '--version: line 2 is the run-time libcurl\'s curl_version()')
    crypto = ctypes.CDLL(linked(binary, 'libcrypto'))
    crypto.OpenSSL_version.restype = ctypes.c_char_p
    crypto.OpenSSL_version.argtypes = [ctypes.c_int]
    like(lines[2], r'\A' + re.escape(crypto.OpenSSL_version(0).decode()) +
         r'( \(built with OpenSSL [^)]+\))?\Z',
         '--version: line 3 is the run-time OpenSSL_version()')
    pkg = subprocess.run(['dpkg-query', '-W', '-f=${Version}',
                          'libiniparser-dev'], capture_output=True,
                         text=True).stdout
    is_(lines[3], f'iniparser {pkg or "unknown"} (built with)',
        '--version: line 4, iniparser as built (Debian\'s package)')
    like(lines[4], r'\AESMTP parameters: (yes|no) ',
         '--version: line 5, ESMTP parameters (t-dsn checks the value)')
    v = re.search(r'libcurl/([0-9.]+)', lines[1])
    is_(lines[5], 'CR/LF in addresses: refused by mailshim (libcurl '
        f'{v.group(1) if v else "?"} would send them as given)',
        '--version: line 6, who refuses CR/LF in addresses')


def test_info_modes(env):
    env.relay.reset()
    r = env.run(['--version'])
    is_(r.rc, 0, '--version: exit 0')
    like(r.out, rb'\Amailshim [0-9]+\.[0-9]+', '--version: "mailshim " first')
    test_version_libraries(r.out.decode())
    r = env.run(['-bp'])
    is_((r.rc, r.out, r.err), (0, b'Mail queue is empty\n', ''),
        '-bp: Mail queue is empty')
    is_(harness.run_as(env, 'mailq', []), (0, 'Mail queue is empty\n', ''),
        'mailq: Mail queue is empty')
    env.relay.wait_idle()
    is_(env.relay.sessions, [], 'information modes never connect')


def test():
    with harness.Env() as env:
        env.config_for('starttls')
        test_line_endings(env)
        test_lone_dot(env)
        test_smuggling(env)
        test_added_headers(env)
        test_full_name(env)
        test_bcc_removed(env)
        test_mbox_and_folding(env)
        test_nul_in_header(env)
        test_sender(env)
        test_transport(env)
        test_verify(env)
        test_info_modes(env)
        env.relay.wait_idle()
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
