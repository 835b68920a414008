#!/usr/bin/python3
"""End-to-end: who gets the message.

Each case runs mailshim against the test relay's STARTTLS listener and
checks the RCPT TO list the relay recorded (order and exact set), and for
-t the message bytes (Bcc must not be in them).  Then the aliases file, and
last the injection attempts: an address carrying CR/LF, NUL or stray angle
brackets must be refused with exit 65 and one line on stderr before
mailshim ever connects, so the relay must record no session at all.

Every run passes -f, so that the envelope sender never depends on the
aliases file or on who runs the test.
"""

import os
import re
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

LOCAL_DOMAIN = 'example.net'          # config_for()'s local_domain
SENDER = 'sender@example.org'
MSG = b'Subject: rcpt\n\nbody\n'


# ---- helpers ---------------------------------------------------------------

def submit(env, args, data=MSG):
    """Run mailshim -f SENDER args (see harness.submit)."""
    return harness.submit(env, ['-f', SENDER] + args, data)


def recipients(env, args, want, name, data=MSG):
    """Pass if mailshim exits 0 and the relay got one message from SENDER
    to exactly want, in that order.  Returns the message or None."""
    r, msgs, _ = submit(env, args, data)
    if not ok(r.rc == 0 and r.err == '' and len(msgs) == 1,
              f'{name}: exit 0, no stderr, one message'):
        diag(r.describe())
        diag(f'messages: {len(msgs)}')
        return None
    m = msgs[0]
    is_((m.mail_from, m.rcpt_tos), (SENDER, want), f'{name}: recipients')
    return m


def refused(env, args, rc, err, name, data=MSG):
    """harness.refused, for mailshim -f SENDER args."""
    harness.refused(env, ['-f', SENDER] + args, data, rc, err, name)


def headers_of(m):
    return m.data.split(b'\r\n\r\n', 1)[0] + b'\r\n' if m else b''


# ---- the command line ------------------------------------------------------

def test_command_line(env):
    recipients(env, ['a@example.com'], ['a@example.com'], 'one recipient')
    recipients(env, ['c@example.com', 'a@example.com', 'b@example.org'],
               ['c@example.com', 'a@example.com', 'b@example.org'],
               'several, in the order given')
    # cron passes MAILTO as one argument
    recipients(env, ['a@example.com,b@example.org'],
               ['a@example.com', 'b@example.org'], 'a@x,b@y in one argument')
    recipients(env, ['a@example.com, b@example.org ,c@example.com'],
               ['a@example.com', 'b@example.org', 'c@example.com'],
               'a list with spaces in one argument')
    recipients(env, ['Ann Example <ann@example.com>'], ['ann@example.com'],
               'Name <addr>')
    recipients(env, ['"Example, Ann" <ann@example.com>, bob@example.org'],
               ['ann@example.com', 'bob@example.org'],
               'quoted name with a comma, then another address')
    recipients(env, ['root', 'www-data'],
               [f'root@{LOCAL_DOMAIN}', f'www-data@{LOCAL_DOMAIN}'],
               'bare names get local_domain')
    recipients(env, ['a@example.com', 'b@example.org', 'a@example.com',
                     'a@EXAMPLE.com', 'b@Example.Org'],
               ['a@example.com', 'b@example.org'],
               'duplicates (also in domain case) sent once, first kept')
    recipients(env, ['a@example.com,a@example.com', 'root',
                     f'root@{LOCAL_DOMAIN}'],
               ['a@example.com', f'root@{LOCAL_DOMAIN}'],
               'duplicates within one argument and after qualification')
    recipients(env, ['--', 'a@example.com'], ['a@example.com'],
               '-- before the recipients')
    recipients(env, ['-i', '--', '-dash@example.com'], ['-dash@example.com'],
               'after --, an argument starting with - is a recipient')


# ---- -t --------------------------------------------------------------------

def test_extract(env):
    data = (b'To: to@example.com\n'
            b'Cc: cc1@example.com, Cc Two <cc2@example.org>\n'
            b'Subject: t\n'
            b'Bcc: bcc@example.net\n'
            b'\nbody\n')
    m = recipients(env, ['-t'], ['to@example.com', 'cc1@example.com',
                                 'cc2@example.org', 'bcc@example.net'],
                   '-t: To, Cc, Bcc', data)
    is_(headers_of(m).split(b'\r\nFrom: ')[0] + b'\r\n',
        b'To: to@example.com\r\n'
        b'Cc: cc1@example.com, Cc Two <cc2@example.org>\r\nSubject: t\r\n',
        '-t: Bcc removed from the bytes, To and Cc kept')
    ok(m and b'bcc@example.net' not in m.data,
       '-t: the Bcc address appears nowhere in the message')

    recipients(env, ['-t'], ['a@example.com', 'b@example.com',
                             'c@example.com'], '-t: To folded over 3 lines',
               b'To: a@example.com,\n b@example.com,\r\n\tc@example.com\n'
               b'Subject: f\n\nb\n')
    recipients(env, ['-t'], ['a@example.com', 'b@example.org',
                             'z@example.com'], '-t: a group',
               b'To: Team: a@example.com, B <b@example.org>;, z@example.com'
               b'\n\nb\n')
    m = recipients(env, ['-t'], ['hidden@example.com'],
                   '-t: undisclosed-recipients:; plus Bcc',
                   b'To: undisclosed-recipients:;\n'
                   b'Bcc: hidden@example.com\nSubject: u\n\nb\n')
    like(headers_of(m), rb'\ATo: undisclosed-recipients:;\r\nSubject: u\r\n'
                        rb'From: ', '-t: empty group kept, Bcc removed')

    m = recipients(env, ['-t'], ['"john doe"@example.com',
                                 '"a\\"b"@example.com'],
                   '-t: quoted local parts',
                   b'To: "john doe"@example.com, "a\\"b"@example.com\n\nb\n')
    if m:
        sess = env.relay.session(m.session_id)
        rcpt_lines = [t for t in sess.transcript if t.startswith('C: RCPT')]
        is_(rcpt_lines, ['C: RCPT TO:<"john doe"@example.com>',
                         'C: RCPT TO:<"a\\"b"@example.com>'],
            '-t: RCPT carries the quotes on the wire')

    recipients(env, ['-t'], ['a@example.com', 'b@example.com',
                             'c@example.com'], '-t: comments',
               b'To: a@example.com (Ann (the boss)), (old) b@example.com,\n'
               b' Cee (x) <c@example.com (y)>\n\nb\n')
    recipients(env, ['-t'], ['jose@example.com', 'kim@example.org'],
               '-t: RFC 2047 encoded display names',
               b'To: =?UTF-8?B?Sm9zw6k=?= <jose@example.com>,\n'
               b' =?UTF-8?Q?Kim_=EA=B9=80?= <kim@example.org>\n\nb\n')
    recipients(env, ['-t'], ['a@example.com', 'b@example.com',
                             'c@example.com'], '-t: several To headers',
               b'To: a@example.com\nSubject: s\nTo: b@example.com\n'
               b'to: c@example.com\n\nb\n')
    # Only the header section counts.
    recipients(env, ['-t'], ['a@example.com'], '-t: To: in the body ignored',
               b'To: a@example.com\n\nTo: body@example.com\n')

    # Postfix: with -t, the arguments are recipients too.
    recipients(env, ['-t', 'arg@example.com'], ['arg@example.com',
                                                'a@example.com'],
               '-t plus an argument: both',
               b'To: a@example.com\n\nb\n')
    recipients(env, ['-t', 'a@example.com', 'root'],
               ['a@example.com', f'root@{LOCAL_DOMAIN}', 'c@example.com'],
               '-t plus arguments: duplicates sent once',
               b'To: A <a@example.com>, root\nCc: c@example.com\n\nb\n')

    refused(env, ['-t'], 64,
            'mailshim: no recipients: none on the command line and none in '
            'To:, Cc: or Bcc:\n', '-t, no recipient anywhere',
            b'Subject: nobody\nX-To: x@example.com\n\nTo: body@example.com\n')
    refused(env, ['-t'], 64,
            'mailshim: no recipients: none on the command line and none in '
            'To:, Cc: or Bcc:\n', '-t, only an empty group',
            b'To: undisclosed-recipients:;\n\nb\n')
    refused(env, [], 64,
            'mailshim: no recipients given (use -t to read them from the '
            'headers)\n', 'no recipients, no -t',
            b'To: a@example.com\n\nb\n')


# ---- aliases ---------------------------------------------------------------

ALIASES = """\
# the usual: root to a person and a list
root: admin@example.com, ops
ops: o1@example.com
# a loop
loopa: loopb
loopb: loopa
MixedCase: mixed@example.com
cmdonly: |/usr/local/bin/handler
cmdand: "|/bin/cat", files@example.com, /var/mail/x
self: self, other@example.com
long: l1@example.com,
  l2@example.com,
\tl3@example.com
"""


def test_aliases(env):
    env.write_aliases(ALIASES)
    recipients(env, ['root'], ['admin@example.com', 'o1@example.com'],
               'alias, recursive (root -> admin, ops -> o1)')
    # A loop is cut where a name comes back: it then means itself.
    # loopa -> loopb -> loopa: loopa@local_domain; the same from loopb.
    recipients(env, ['loopa'], [f'loopa@{LOCAL_DOMAIN}'],
               'alias loop a->b->a ends as a@local_domain')
    recipients(env, ['loopb'], [f'loopb@{LOCAL_DOMAIN}'],
               'alias loop b->a->b ends as b@local_domain')
    recipients(env, ['ROOT', 'mixedcase', 'MIXEDCASE'],
               ['admin@example.com', 'o1@example.com', 'mixed@example.com'],
               'alias names match without case')
    recipients(env, ['cmdonly'], [f'cmdonly@{LOCAL_DOMAIN}'],
               '|command as the only target: name@local_domain')
    recipients(env, ['cmdand'], ['files@example.com'],
               '|command and /file targets skipped, the address kept')
    recipients(env, ['self'], [f'self@{LOCAL_DOMAIN}', 'other@example.com'],
               'alias naming itself: itself plus the others')
    recipients(env, ['long'], ['l1@example.com', 'l2@example.com',
                               'l3@example.com'], 'continuation lines')
    recipients(env, ['root@elsewhere.example', f'root@{LOCAL_DOMAIN}'],
               ['root@elsewhere.example', f'root@{LOCAL_DOMAIN}'],
               'addresses with a domain are never expanded')
    recipients(env, ['o1@example.com', 'root', 'admin@example.com'],
               ['o1@example.com', 'admin@example.com'],
               'alias results and direct addresses deduplicated')
    recipients(env, ['-t'], ['admin@example.com', 'o1@example.com',
                             'x@example.com'], '-t: bare names in To aliased',
               b'To: Admin <root>, x@example.com\n\nb\n')
    env.write_aliases('')


# ---- injection -------------------------------------------------------------

ONE_LINE = re.compile(r'\Amailshim: [^\n]+\n\Z')


def test_injection(env):
    evil = 'RCPT TO:<evil@attacker.example>'
    cases = [
        (['a@example.com\r\n' + evil],
         "mailshim: command-line recipient: invalid address "
         "'a@example.com\\r\\nRCPT TO:<evil@attacker.example>': "
         "control character\n", 'argument with CRLF RCPT TO'),
        (['a@example.com\n' + evil],
         "mailshim: command-line recipient: invalid address "
         "'a@example.com\\nRCPT TO:<evil@attacker.example>': "
         "control character\n", 'argument with LF RCPT TO'),
        (['a@example.com\r' + evil],
         "mailshim: command-line recipient: invalid address "
         "'a@example.com\\rRCPT TO:<evil@attacker.example>': "
         "control character\n", 'argument with CR RCPT TO'),
        (['a@example.com\r\nDATA'],
         "mailshim: command-line recipient: invalid address "
         "'a@example.com\\r\\nDATA': control character\n",
         'argument with CRLF DATA'),
        # CRLF + space is folding, legal in a header: it must still not
        # let a second "address" through
        (['a@example.com\r\n ' + evil],
         "mailshim: command-line recipient: invalid address "
         "'a@example.com\\r\\n RCPT TO:<evil@attacker.example>': "
         "unexpected 'RCPT' after address\n", 'argument with folded RCPT TO'),
        (['a@example.com>'],
         "mailshim: command-line recipient: invalid address "
         "'a@example.com>': unbalanced '>'\n", 'argument with stray >'),
        (['<a@example.com'],
         "mailshim: command-line recipient: invalid address "
         "'<a@example.com': unbalanced '<'\n", 'argument with stray <'),
        (['a@example.com>, <evil@attacker.example'],
         "mailshim: command-line recipient: invalid address "
         "'a@example.com>, <evil@attacker.example': unbalanced '>'\n",
         'argument closing and reopening the brackets'),
        (['"x>"@example.com'],
         "mailshim: command-line recipient: invalid address "
         "'\"x>\"@example.com': angle bracket\n",
         'argument with > in a quoted local part'),
        # a good recipient first: nothing at all may be sent
        (['good@example.com', 'a@example.com\r\n' + evil],
         "mailshim: command-line recipient: invalid address "
         "'a@example.com\\r\\nRCPT TO:<evil@attacker.example>': "
         "control character\n", 'good recipient, then an injection'),
    ]
    for args, err, name in cases:
        refused(env, args, 65, err, name)

    # In a To: header with -t.  A CRLF followed by a space folds the field,
    # so the text stays in To: and must be refused.
    header_cases = [
        (b'To: a@example.com\r\n ' + evil.encode() + b'\r\n',
         "mailshim: To: header: invalid address 'a@example.com\\r\\n "
         "RCPT TO:<evil@attacker.example>': unexpected 'RCPT' after "
         "address\n", 'To: folded CRLF RCPT TO'),
        (b'To: a@example.com\n\tDATA\n',
         "mailshim: To: header: invalid address 'a@example.com\\r\\n\\tDATA': "
         "unexpected 'DATA' after address\n", 'To: folded LF DATA'),
        (b'To: <a@example.com\n',
         "mailshim: To: header: invalid address '<a@example.com': "
         "unbalanced '<'\n", 'To: stray <'),
        (b'Cc: a@example.com>\n',
         "mailshim: Cc: header: invalid address 'a@example.com>': "
         "unbalanced '>'\n", 'Cc: stray >'),
        # NUL: the exact wording is the program's choice, one line it is
        (b'To: a@example.com\x00' + evil.encode() + b'\n', ONE_LINE,
         'To: with NUL RCPT TO'),
        (b'To: a@example.com, b\x00@example.com\n', ONE_LINE,
         'To: with NUL in an address'),
    ]
    for head, err, name in header_cases:
        refused(env, ['-t'], 65, err, name,
                data=b'Subject: inj\n' + head + b'\nbody\n')

    # A CR or LF not followed by white space ends the header field, and the
    # line after it is no header: the header section ends there (as in
    # Postfix).  The text becomes body, never an RCPT.
    for eol in (b'\r\n', b'\n', b'\r'):
        name = f'To: then {eol!r} RCPT TO at column 0'
        m = recipients(env, ['-t'], ['a@example.com'], name,
                       b'To: a@example.com' + eol + evil.encode() + eol +
                       b'Cc: c@example.com\n\nbody\n')
        if m:
            like(m.data, rb'\r\n\r\nRCPT TO:<evil@attacker\.example>\r\n'
                         rb'Cc: c@example\.com\r\n\r\nbody\r\n\Z',
                 f'{name}: the line and what follows are body')
            verbs = env.relay.session(m.session_id).verbs
            is_(verbs.count('RCPT'), 1, f'{name}: one RCPT command')

    # The sender.
    for sender, err, name in [
        ('a@example.com\r\nRCPT TO:<evil@attacker.example>',
         "mailshim: invalid sender in -f: invalid address 'a@example.com"
         "\\r\\nRCPT TO:<evil@attacker.example>': control character\n",
         '-f with CRLF RCPT TO'),
        ('a@example.com\nDATA',
         "mailshim: invalid sender in -f: invalid address "
         "'a@example.com\\nDATA': control character\n", '-f with LF DATA'),
        ('a@example.com>',
         "mailshim: invalid sender in -f: invalid address "
         "'a@example.com>': unbalanced '>'\n", '-f with stray >'),
    ]:
        env.relay.reset()
        r = env.run(['-f', sender, 'ok@example.com'], input=MSG)
        env.relay.wait_idle()
        is_((r.rc, r.err), (65, err), f'{name}: exit 65, stderr')
        is_([s.verbs for s in env.relay.sessions], [],
            f'{name}: no connection, no transaction')


def test():
    with harness.Env() as env:
        env.config_for('starttls')
        test_command_line(env)
        test_extract(env)
        test_aliases(env)
        test_injection(env)
        env.relay.wait_idle()
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
