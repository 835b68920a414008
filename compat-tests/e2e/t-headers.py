#!/usr/bin/python3
"""End-to-end: headers that decide the envelope, and the account.

- Resent- blocks (RFC 5322 3.6.6): with -t, the most recent block (the
  first run of Resent- fields from the top) names the recipients; every
  Resent-Bcc: is removed.
- match_from: the envelope sender chooses the account, here two NHN Cloud
  style accounts that differ by mail_type, so the relay's AUTH user
  (AppKey#normal or AppKey#ad) shows which one was used.
- from_policy: keep, envelope, rewrite.
- Injection attempts that reach these paths: each refused with 65 (78 for
  the config file) before mailshim connects, so the relay records no
  session at all.

Every message below carries Date: and Message-ID:, so that mailshim adds
nothing but what is under test and the received bytes are compared whole.
"""

import os
import re
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok, unlike  # noqa: E402

LOCAL_DOMAIN = 'example.net'          # config_for()'s local_domain
SENDER = 'sender@example.org'
FIXED = b'Date: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <t@example.org>\n'
EVIL = 'RCPT TO:<evil@attacker.example>'


# ---- helpers ---------------------------------------------------------------

def crlf(data: bytes) -> bytes:
    """data with LF line ends made CRLF, as mailshim sends them."""
    return data.replace(b'\n', b'\r\n')


def sent(env, args, data, name, auth_user='AppKey'):
    """Run mailshim; pass if it exited 0 without stderr and the relay
    accepted one message, authenticated as auth_user.  Returns it, or None
    on failure."""
    r, msgs, _ = harness.submit(env, args, data)
    if not ok(r.rc == 0 and r.err == '' and len(msgs) == 1,
              f'{name}: exit 0, no stderr, one message'):
        diag(r.describe())
        diag(f'messages: {len(msgs)}')
        return None
    is_(msgs[0].auth_user, auth_user, f'{name}: AUTH as {auth_user}')
    return msgs[0]


def check(m, mail_from, rcpts, data, name):
    """The envelope and the bytes of m (None: a failure already counted)."""
    is_((m.mail_from, m.rcpt_tos) if m else None, (mail_from, rcpts),
        f'{name}: envelope')
    is_(m.data if m else None, data, f'{name}: the bytes')


def account(name, port, ca_file, **keys):
    """An account section pointing at the relay's STARTTLS listener."""
    lines = {'host': '127.0.0.1', 'port': port, 'tls': 'starttls',
             'username': 'AppKey', 'password': 'SecretKey',
             'ca_file': ca_file, 'helo': 'client.test', 'timeout': 10}
    lines.update(keys)
    return f'[{name}]\n' + ''.join(f'{k} = {v}\n' for k, v in lines.items())


# ---- Resent- ---------------------------------------------------------------

def test_resent(env):
    env.config_for('starttls')
    # One block on top: it names the recipients, not To/Cc/Bcc.
    head = (b'Resent-From: fwd@example.org\n'
            b'Resent-Date: Tue, 2 Jan 2024 00:00:00 +0000\n'
            b'Resent-To: r1@example.com, R Two <r2@example.com>\n'
            b'resent-cc: rc@example.com\n'
            b'Resent-Bcc: rb@example.com\n'
            b'Resent-Message-ID: <r1@example.org>\n'
            b'From: orig@example.org\n'
            b'To: to@example.com\n'
            b'Cc: cc@example.com\n'
            b'Bcc: bcc@example.com\n'
            b'Subject: one block\n' + FIXED)
    m = sent(env, ['-f', SENDER, '-t'], head + b'\nbody\n', 'one block')
    check(m, SENDER, ['r1@example.com', 'r2@example.com', 'rc@example.com',
                      'rb@example.com'],
          crlf(head.replace(b'Resent-Bcc: rb@example.com\n', b'')
               .replace(b'Bcc: bcc@example.com\n', b'') + b'\nbody\n'),
          'one block: its Resent-To/Cc/Bcc, in any case; Resent-Bcc and '
          'Bcc removed')

    # Two blocks, with trace fields before each: the top one counts, and
    # the Resent-Bcc of both is removed.
    newer = (b'Received: from b.example by c.example; '
             b'Wed, 3 Jan 2024 00:00:00 +0000\n'
             b'Resent-Date: Wed, 3 Jan 2024 00:00:00 +0000\n'
             b'Resent-From: second@example.org\n'
             b'Resent-To: new@example.com\n'
             b'Resent-Bcc: newbcc@example.com\n')
    older = (b'Received: from a.example by b.example; '
             b'Tue, 2 Jan 2024 00:00:00 +0000\n'
             b'Resent-Date: Tue, 2 Jan 2024 00:00:00 +0000\n'
             b'Resent-From: first@example.org\n'
             b'Resent-To: old@example.com\n'
             b'Resent-Cc: oldcc@example.com\n'
             b'Resent-Bcc: oldbcc@example.com\n')
    rest = (b'From: orig@example.org\nTo: to@example.com\n'
            b'Subject: two blocks\n' + FIXED)
    m = sent(env, ['-f', SENDER, '-t'], newer + older + rest + b'\nbody\n',
             'two blocks')
    check(m, SENDER, ['new@example.com', 'newbcc@example.com'],
          crlf(newer.replace(b'Resent-Bcc: newbcc@example.com\n', b'') +
               older.replace(b'Resent-Bcc: oldbcc@example.com\n', b'') +
               rest + b'\nbody\n'),
          'two blocks: the most recent one; every Resent-Bcc removed')
    ok(m and b'bcc@example.com' not in m.data,
       'two blocks: no Resent-Bcc address anywhere in the message')

    # The top block names nobody (a bounce-style resend: only From and
    # Date): To/Cc/Bcc, not an older block's Resent-To.
    top = (b'Resent-From: third@example.org\n'
           b'Resent-Date: Thu, 4 Jan 2024 00:00:00 +0000\n')
    rest = (b'From: orig@example.org\nTo: to@example.com\n'
            b'Cc: cc@example.com\nBcc: bcc@example.com\n'
            b'Subject: no recipients in the block\n' + FIXED)
    m = sent(env, ['-f', SENDER, '-t'], top + older + rest + b'\nbody\n',
             'block without Resent-To/Cc/Bcc')
    check(m, SENDER, ['to@example.com', 'cc@example.com', 'bcc@example.com'],
          crlf(top + older.replace(b'Resent-Bcc: oldbcc@example.com\n', b'')
               + rest.replace(b'Bcc: bcc@example.com\n', b'') + b'\nbody\n'),
          'block without Resent-To/Cc/Bcc: To, Cc, Bcc; Resent-Bcc and Bcc '
          'removed')

    # Any other field ends a block: its Resent-To belongs to no block on
    # top, so To: gives the recipients.
    head = (b'Resent-From: fwd@example.org\nX-Mailer: y\n'
            b'Resent-To: late@example.com\nFrom: orig@example.org\n'
            b'To: to@example.com\n'
            b'Subject: split\n' + FIXED)
    m = sent(env, ['-f', SENDER, '-t'], head + b'\nbody\n',
             'a field between Resent- fields')
    check(m, SENDER, ['to@example.com'], crlf(head + b'\nbody\n'),
          'a field between Resent- fields ends the block')

    # Command-line recipients add to the block's (Postfix semantics).
    head = (b'Resent-To: r1@example.com\nResent-Bcc: rb@example.com\n'
            b'From: orig@example.org\nTo: to@example.com\nSubject: args\n' +
            FIXED)
    m = sent(env, ['-f', SENDER, '-t', 'arg@example.com', 'r1@example.com'],
             head + b'\nbody\n', 'Resent- plus arguments')
    check(m, SENDER, ['arg@example.com', 'r1@example.com', 'rb@example.com'],
          crlf(head.replace(b'Resent-Bcc: rb@example.com\n', b'') +
               b'\nbody\n'), 'Resent- plus arguments: both, each once')

    # Without -t the headers name no one, and Resent-Bcc still goes.
    m = sent(env, ['-f', SENDER, 'arg@example.com'], head + b'\nbody\n',
             'Resent- without -t')
    check(m, SENDER, ['arg@example.com'],
          crlf(head.replace(b'Resent-Bcc: rb@example.com\n', b'') +
               b'\nbody\n'), 'Resent- without -t: the arguments only')

    # A block that names an empty group: nobody, and the message says where
    # mailshim looked.
    harness.refused(env, ['-f', SENDER, '-t'],
                    b'Resent-To: undisclosed-recipients:;\n'
                    b'To: to@example.com\n\nbody\n', 64,
                    'mailshim: no recipients: none on the command line and '
                    'none in Resent-To:, Resent-Cc: or Resent-Bcc:\n',
                    'Resent-To: an empty group')

    # -v tells where the recipients came from.
    r, msgs, _ = harness.submit(env, ['-v', '-f', SENDER, '-t'],
                                b'Resent-To: r1@example.com\n'
                                b'To: to@example.com\n' + FIXED + b'\nb\n')
    like(r.err, r'(?m)^mailshim: note: -t: recipients from the most recent '
         r'Resent- block, not from To:, Cc:, Bcc:$', '-v: a note says so')
    is_([m.rcpt_tos for m in msgs], [['r1@example.com']],
        '-v: the same recipients')


# ---- match_from ------------------------------------------------------------

def two_accounts(env, default=True, name='two.ini'):
    """[ad] then [normal], both NHN Cloud style, told apart by mail_type."""
    port, ca = env.relay.ports['starttls'], env.relay.ca_file
    text = ('[mailshim]\n'
            'local_domain = ad.shop.example\n'
            f'aliases = {env.aliases_path}\n' +
            f'queue_dir = {env.queue_dir}\n' +
            ('account = normal\n' if default else '') + '\n' +
            account('ad', port, ca, mail_type='ad',
                    **{'from': 'news@ad.shop.example',
                       'match_from': '*@ad.shop.example, offers@*'}) +
            '\n' +
            account('normal', port, ca, mail_type='normal',
                    **{'from': 'noreply@shop.example',
                       'match_from': '*@shop.example'}))
    return env.write_config(text, name)


def test_match_from(env):
    path = two_accounts(env)
    msg = (b'From: Orig <orig@example.org>\nTo: x@example.com\n'
           b'Subject: m\n' + FIXED + b'\nbody\n')
    cases = [
        (['-f', 'news@ad.shop.example'], 'AppKey#ad', 'news@ad.shop.example',
         'sender matches [ad]'),
        (['-f', 'x@shop.example'], 'AppKey#normal', 'x@shop.example',
         'sender matches [normal]'),
        (['-f', 'News@AD.Shop.Example'], 'AppKey#ad', 'News@AD.Shop.Example',
         'without case, the sender sent as given'),
        # [ad] comes first in the file: its second pattern wins over
        # [normal]'s *@shop.example
        (['-f', 'offers@shop.example'], 'AppKey#ad', 'offers@shop.example',
         'the second of several patterns; the first account in the file'),
        (['-f', 'x@shop.example.evil.example'], 'AppKey#normal',
         'x@shop.example.evil.example', 'a longer domain does not match: '
         'the default'),
        (['-f', 'someone@elsewhere.example'], 'AppKey#normal',
         'someone@elsewhere.example', 'no match: the default account'),
        ([], 'AppKey#normal', 'noreply@shop.example',
         'no -f: the default account and its from'),
        (['-f', '<>'], 'AppKey#normal', '', 'the null sender: the default'),
        # matched as sent: after local_domain (ad.shop.example here)
        (['-f', 'news'], 'AppKey#ad', 'news@ad.shop.example',
         'a bare -f name, qualified, then matched'),
    ]
    for args, user, mail_from, name in cases:
        m = sent(env, args + ['rcpt@example.com'], msg, name, user)
        check(m, mail_from, ['rcpt@example.com'], crlf(msg), name)

    # and after the aliases
    env.write_aliases('webmaster: offers@elsewhere.example\n')
    m = sent(env, ['-f', 'webmaster', 'rcpt@example.com'], msg,
             '-f an alias, matched as expanded', 'AppKey#ad')
    check(m, 'offers@elsewhere.example', ['rcpt@example.com'], crlf(msg),
          '-f an alias, matched as expanded')
    env.write_aliases('')

    r, msgs, _ = harness.submit(env, ['-v', '-f', 'news@ad.shop.example',
                                      'rcpt@example.com'], msg)
    like(r.err, r"(?m)^mailshim: note: account \[ad\]: sender "
         r"'news@ad\.shop\.example' matches its match_from "
         r"'\*@ad\.shop\.example'$", '-v: which account, and why')
    r, msgs, _ = harness.submit(env, ['-v', '-f', 'a@b.example',
                                      'rcpt@example.com'], msg)
    like(r.err, r"(?m)^mailshim: note: account \[normal\]: the default "
         r"account \(no match_from matches\)$", '-v: the default, and why')

    # Without a default, a sender must match.
    path = two_accounts(env, default=False, name='nodefault.ini')
    m = sent(env, ['-f', 'news@ad.shop.example', 'rcpt@example.com'], msg,
             'no default: a match still works', 'AppKey#ad')
    check(m, 'news@ad.shop.example', ['rcpt@example.com'], crlf(msg),
          'no default: a match still works')
    for args, err, name in [
        (['-f', 'x@other.example'],
         f"mailshim: {path}: no account for sender 'x@other.example': none "
         "matches and no default is set ('account' in [mailshim])\n",
         'no default, no match'),
        ([], f"mailshim: {path}: no account for a message without -f: "
         "match_from needs a sender and no default is set ('account' in "
         "[mailshim])\n", 'no default, no -f'),
        (['-f', '<>'], f"mailshim: {path}: no account for the null sender: "
         "match_from does not apply to it and no default is set ('account' "
         "in [mailshim])\n", 'no default, null sender'),
        # a sender is a string, not a pattern: '*' in it matches only '*'
        (['-f', '*@*'], f"mailshim: {path}: no account for sender '*@*': "
         "none matches and no default is set ('account' in [mailshim])\n",
         'no default, a sender made of wildcards'),
    ]:
        harness.refused(env, args + ['rcpt@example.com'], msg, 78, err, name)


# ---- from_policy -----------------------------------------------------------

ACCOUNT_FROM = 'noreply@shop.example'


def policy(env, value):
    env.config_for('starttls', **{'from': ACCOUNT_FROM,
                                  'from_policy': value})


def test_keep_and_envelope(env):
    head = (b'From: Caller <caller@example.org>\nTo: rcpt@example.com\n'
            b'Subject: p\n' + FIXED)
    for value, mail_from in (('keep', SENDER),
                             ('envelope', ACCOUNT_FROM)):
        policy(env, value)
        m = sent(env, ['-f', SENDER, '-t'], head + b'\nbody\n', value)
        check(m, mail_from, ['rcpt@example.com'], crlf(head + b'\nbody\n'),
              f'from_policy = {value}: headers untouched')

    # envelope: a From: mailshim adds names the caller, as with keep
    policy(env, 'envelope')
    head = b'To: rcpt@example.com\nSubject: p\n' + FIXED
    m = sent(env, ['-f', SENDER, '-t'], head + b'\nbody\n',
             'envelope, no From:')
    check(m, ACCOUNT_FROM, ['rcpt@example.com'],
          crlf(head + b'From: ' + SENDER.encode() + b'\n\nbody\n'),
          'from_policy = envelope: an added From: is the caller\'s')
    # a bounce keeps the null sender
    m = sent(env, ['-f', '<>', '-t'], head + b'\nbody\n', 'envelope, <>')
    check(m, '', ['rcpt@example.com'],
          crlf(head + b'From: MAILER-DAEMON@' + LOCAL_DOMAIN.encode() +
               b'\n\nbody\n'), 'from_policy = envelope: <> stays <>')
    r, msgs, _ = harness.submit(env, ['-v', '-f', SENDER, 'rcpt@example.com'],
                                head + b'\nbody\n')
    like(r.err, r"(?m)^mailshim: note: from_policy = envelope: sender "
         r"'sender@example\.org' sent as 'noreply@shop\.example'$",
         'from_policy = envelope: -v says so')


def test_rewrite(env):
    policy(env, 'rewrite')
    rest = b'To: rcpt@example.com\nSubject: r\n' + FIXED
    reply = b'Reply-To: caller@example.org\n'
    cases = [
        # (the From: field sent, the one wanted, extra args, Reply-To wanted)
        (b'From: Caller <caller@example.org>\n',
         b'From: Caller <noreply@shop.example>\n', [], reply,
         'a plain display name'),
        (b'From: "Doe, John \\"JD\\"" <caller@example.org>\n',
         b'From: "Doe, John \\"JD\\"" <noreply@shop.example>\n', [], reply,
         'a quoted display name, escapes kept'),
        (b'From: =?UTF-8?B?Sm9zw6k=?= Garc\xc3\xada <caller@example.org>\n',
         b'From: =?UTF-8?B?Sm9zw6k=?= Garc\xc3\xada '
         b'<noreply@shop.example>\n', [], reply,
         'an encoded word and UTF-8'),
        (b'From: caller@example.org (Caller Name)\n',
         b'From: noreply@shop.example (Caller Name)\n', [], reply,
         'the comment form'),
        (b'From: Pete (the (real) one) <caller(x)@example.org>\n',
         b'From: Pete (the (real) one) <noreply@shop.example>\n', [], reply,
         'comments in the phrase kept, in the address dropped'),
        (b'From: "Doe,\n  John" <caller@example.org>\n',
         b'From: "Doe,  John" <noreply@shop.example>\n', [], reply,
         'a folded display name, unfolded'),
        (b'From: caller@example.org\n', b'From: noreply@shop.example\n', [],
         reply, 'no display name'),
        (b'FROM: <caller@example.org>\n', b'From: noreply@shop.example\n', [],
         reply, 'an angle address, the name in another case'),
        (b'From: Ann <ann@example.org>, Bob <bob@example.org>\n',
         b'From: Ann <noreply@shop.example>\n', [],
         b'Reply-To: ann@example.org\n', 'two mailboxes: the first'),
        (b'From: "x <evil@attacker.example>" <caller@example.org>\n',
         b'From: "x <evil@attacker.example>" <noreply@shop.example>\n', [],
         reply, 'a quoted name holding an address stays a name'),
        (b'From: Web <www-data>\n', b'From: Web <noreply@shop.example>\n', [],
         b'Reply-To: www-data@example.net\n',
         'a bare name in From:, qualified in Reply-To:'),
        (b'From: Shop <noreply@SHOP.example>\n',
         b'From: Shop <noreply@shop.example>\n', [], b'',
         'From: already the account\'s: no Reply-To'),
        # no From: the -F name with the account's address; Reply-To: the
        # caller's envelope sender
        (b'', b'From: Jane Doe <noreply@shop.example>\n', ['-F', 'Jane Doe'],
         b'Reply-To: sender@example.org\n', 'no From:, -F'),
    ]
    for frm, want, args, reply_to, name in cases:
        m = sent(env, args + ['-f', SENDER, '-t'], frm + rest + b'\nbody\n',
                 name)
        # an added From: goes at the end (message_complete's place), a
        # rewritten one stays where it was
        data = (want + rest if frm else rest + want) + reply_to + b'\nbody\n'
        check(m, ACCOUNT_FROM, ['rcpt@example.com'], crlf(data),
              f'rewrite, {name}')

    # A Reply-To: of the caller's own stays, and no second one is added.
    head = (b'From: Caller <caller@example.org>\n'
            b'Reply-To: list@example.org\n' + rest)
    m = sent(env, ['-f', SENDER, '-t'], head + b'\nbody\n',
             'rewrite, Reply-To present')
    check(m, ACCOUNT_FROM, ['rcpt@example.com'],
          crlf(head.replace(b'caller@example.org>', b'noreply@shop.example>')
               + b'\nbody\n'), 'rewrite, Reply-To present: kept, no other')

    # A second From: field (against RFC 5322) goes.
    head = b'From: A <a@example.org>\n' + rest + b'From: B <b@example.org>\n'
    m = sent(env, ['-f', SENDER, '-t'], head + b'\nbody\n',
             'rewrite, two From: fields')
    check(m, ACCOUNT_FROM, ['rcpt@example.com'],
          crlf(b'From: A <noreply@shop.example>\n' + rest +
               b'Reply-To: a@example.org\n\nbody\n'),
          'rewrite, two From: fields: one left')

    # No -f, no From: the account's from everywhere, no Reply-To.
    m = sent(env, ['-t'], rest + b'\nbody\n', 'rewrite, no -f, no From:')
    check(m, ACCOUNT_FROM, ['rcpt@example.com'],
          crlf(rest + b'From: noreply@shop.example\n\nbody\n'),
          'rewrite, no -f, no From:')

    # A bounce: the envelope stays null; the header is still rewritten.
    head = b'From: MAILER-DAEMON@example.org\n' + rest
    m = sent(env, ['-f', '<>', '-t'], head + b'\nbody\n', 'rewrite, <>')
    check(m, '', ['rcpt@example.com'],
          crlf(b'From: noreply@shop.example\n' + rest +
               b'Reply-To: MAILER-DAEMON@example.org\n\nbody\n'),
          'rewrite, <>: null envelope sender, From: rewritten')


def test_policy_config(env):
    path = env.config_for('starttls', from_policy='rewrite')
    with open(path) as f:
        n = f.read().splitlines().index('from_policy = rewrite') + 1
    harness.refused(env, ['-f', SENDER, 'rcpt@example.com'], b'Subject: c\n\n',
                    78, f"mailshim: {path}:{n}: [test] needs 'from' for "
                    "from_policy = rewrite\n", 'rewrite without from')
    path = env.config_for('starttls', match_from='*@x.example\x01')
    with open(path) as f:
        n = f.read().splitlines().index('match_from = *@x.example\x01') + 1
    harness.refused(env, ['-f', SENDER, 'rcpt@example.com'], b'Subject: c\n\n',
                    78, f"mailshim: {path}:{n}: bad value for 'match_from' in "
                    "[test]: expected text without control characters "
                    "(got '*@x.example\x01')\n",
                    'a control character in match_from')


# ---- injection -------------------------------------------------------------

ONE_LINE = re.compile(r'\Amailshim: [^\n]+\n\Z')
FULLNAME = 'mailshim: invalid full name (-F): it contains a control ' \
    'character\n'


def test_injection(env):
    msg = b'To: rcpt@example.com\nSubject: i\n' + FIXED + b'\nbody\n'

    # -F: every line break, whichever path adds the From:
    env.config_for('starttls')
    for fullname, name in [('x\nBcc: evil@attacker.example', '-F with LF'),
                           ('x\rBcc: evil@attacker.example', '-F with CR'),
                           ('x\x7f', '-F with DEL')]:
        harness.refused(env, ['-F', fullname, '-f', SENDER, '-t'], msg, 65,
                        FULLNAME, name)
    policy(env, 'rewrite')
    harness.refused(env, ['-F', 'x\nBcc: evil@attacker.example', '-f', SENDER,
                          '-t'], msg, 65, FULLNAME, 'rewrite: -F with LF')

    # Resent- fields are parsed as strictly as To:.
    env.config_for('starttls')
    for head, err, name in [
        (b'Resent-To: a@example.com\r\n ' + EVIL.encode() + b'\r\n',
         "mailshim: Resent-To: header: invalid address 'a@example.com\\r\\n "
         "RCPT TO:<evil@attacker.example>': unexpected 'RCPT' after "
         "address\n", 'Resent-To: folded CRLF RCPT TO'),
        (b'Resent-From: f@example.org\nResent-Cc: a@example.com>\n',
         "mailshim: Resent-Cc: header: invalid address 'a@example.com>': "
         "unbalanced '>'\n", 'Resent-Cc: stray >'),
        (b'Resent-To: ok@example.com\nResent-Bcc: <a@example.com\n',
         "mailshim: Resent-Bcc: header: invalid address '<a@example.com': "
         "unbalanced '<'\n", 'Resent-Bcc: stray <, after a good Resent-To'),
        (b'Resent-To: a@example.com\x00' + EVIL.encode() + b'\n', ONE_LINE,
         'Resent-To: with NUL RCPT TO'),
    ]:
        harness.refused(env, ['-f', SENDER, '-t'], head + b'To: t@example.com'
                        b'\n\nbody\n', 65, err, name)

    # From: is parsed when rewrite needs its address.
    policy(env, 'rewrite')
    for head, err, name in [
        (b'From: a@example.org\r\n ' + EVIL.encode() + b'\r\n',
         "mailshim: From: header: invalid address 'a@example.org\\r\\n "
         "RCPT TO:<evil@attacker.example>': unexpected 'RCPT' after "
         "address\n", 'rewrite: From: folded CRLF RCPT TO'),
        (b'From: Name <a@example.org\n',
         "mailshim: From: header: invalid address 'Name <a@example.org': "
         "unbalanced '<'\n", 'rewrite: From: stray <'),
    ]:
        harness.refused(env, ['-f', SENDER, '-t'], head + msg, 65, err, name)

    # -f is checked before it chooses an account.
    two_accounts(env, default=False, name='inject.ini')
    for sender, err, name in [
        ('news@ad.shop.example\r\n' + EVIL,
         "mailshim: invalid sender in -f: invalid address "
         "'news@ad.shop.example\\r\\nRCPT TO:<evil@attacker.example>': "
         "control character\n", 'match_from: -f with CRLF RCPT TO'),
        ('news@ad.shop.example\n DATA',
         "mailshim: invalid sender in -f: invalid address "
         "'news@ad.shop.example\\n DATA': unexpected 'DATA' after address\n",
         'match_from: -f with folded LF DATA'),
        ('news@ad.shop.example>',
         "mailshim: invalid sender in -f: invalid address "
         "'news@ad.shop.example>': unbalanced '>'\n",
         'match_from: -f with a stray >'),
    ]:
        harness.refused(env, ['-f', sender, 'rcpt@example.com'], msg, 65, err,
                        name)
    # and a recipient argument, with a good -f that matches
    harness.refused(env, ['-f', 'news@ad.shop.example',
                          'a@example.com\n' + EVIL], msg, 65,
                    "mailshim: command-line recipient: invalid address "
                    "'a@example.com\\nRCPT TO:<evil@attacker.example>': "
                    "control character\n",
                    'match_from: a recipient argument with LF RCPT TO')


def test():
    with harness.Env() as env:
        test_resent(env)
        test_match_from(env)
        test_keep_and_envelope(env)
        test_rewrite(env)
        test_policy_config(env)
        test_injection(env)
        env.relay.wait_idle()
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
