#!/usr/bin/python3
"""Queue runs over several connections at once (queue_concurrency).

`sendmail -q` delivers the due messages of each account over connections of
that account, each reused for one message after the other, with at most
queue_concurrency connections open at once.  The relay's 'slow' listener
takes 100 ms over each message, so that connections that are open together
can be seen to overlap in the relay's own record of when each began and
ended.  Nothing here measures time otherwise.
"""

import os
import re
import socket
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

MESSAGES = 24


def body(tag):
    return (f'From: app@shop.example\nTo: rcpt@example.com\n'
            f'Subject: {tag}\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n'
            f'Message-ID: <{tag}@shop.example>\n\n{tag}\n').encode()


def enqueue(env, label, tags, senders=None):
    """Queue one message per tag (delivery = queue), from the sender of the
    same place in senders (default: app@shop.example): each exits 0."""
    bad = []
    for i, tag in enumerate(tags):
        sender = senders[i] if senders else 'app@shop.example'
        r = env.run(['-i', '-f', sender, 'rcpt@example.com'],
                    input=body(tag))
        if r.rc != 0 or r.err:
            bad.append(r)
    ok(not bad, f'{label}: {len(tags)} messages queued')
    for r in bad[:3]:
        diag(r.describe())


def run_queue(env, label):
    """-q once against a fresh relay record; returns (messages, sessions
    that carried something)."""
    env.relay.reset()
    r = env.run(['-q'], timeout=60)
    env.relay.wait_idle(15)
    if not is_((r.rc, r.err), (0, ''), f'{label}: -q exits 0, silently'):
        diag(r.describe())
    left = env.run(['-bp'])
    is_(left.out, b'Mail queue is empty\n', f'{label}: the queue is empty')
    sessions = [s for s in env.relay.sessions if s.established]
    return env.relay.messages, sessions


def most_open(sessions):
    """The most connections the relay had open at one moment, from its own
    timestamps (a connection that ended as another began: not both)."""
    events = []
    for s in sessions:
        events.append((s.started, 1))
        events.append((s.ended if s.ended is not None else float('inf'), -1))
    events.sort(key=lambda e: (e[0], e[1]))
    now = best = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def each_once(msgs, tags, label):
    subjects = sorted(m.email['Subject'] for m in msgs)
    is_(subjects, sorted(tags), f'{label}: every message exactly once')


def per_session(msgs):
    """session id -> the messages it carried"""
    by = {}
    for m in msgs:
        by.setdefault(m.session_id, []).append(m)
    return by


# ---- one account -----------------------------------------------------------

def test_three(env):
    label = 'queue_concurrency = 3'
    env.config_for('slow', delivery='queue', queue_concurrency=3)
    tags = [f'three-{i:02d}' for i in range(MESSAGES)]
    enqueue(env, label, tags)
    msgs, sessions = run_queue(env, label)
    each_once(msgs, tags, label)
    is_(len(sessions), 3, f'{label}: 3 connections in all')
    peak = most_open(sessions)
    ok(peak <= 3, f'{label}: at most 3 connections open at once')
    ok(peak >= 2, f'{label}: at least 2 open at once (in parallel)')
    diag(f'{label}: at most {peak} open at once; messages per connection: '
         f'{[s.messages for s in sessions]}')
    ok(all(s.messages > 1 for s in sessions),
       f'{label}: each connection carried several messages')
    is_(sum(s.messages for s in sessions), MESSAGES,
        f'{label}: the connections carried the {MESSAGES} messages')
    is_(sorted({(s.auth_user, tuple(harness.commands(s.verbs)).count('AUTH'))
                for s in sessions}), [('AppKey', 1)],
        f'{label}: each connection authenticated once, as the account')


def test_one(env):
    label = 'queue_concurrency = 1'
    env.config_for('slow', delivery='queue', queue_concurrency=1)
    tags = [f'one-{i:02d}' for i in range(MESSAGES)]
    enqueue(env, label, tags)
    msgs, sessions = run_queue(env, label)
    each_once(msgs, tags, label)
    is_([s.messages for s in sessions], [MESSAGES],
        f'{label}: one connection carried all {MESSAGES}')
    verbs = harness.commands(sessions[0].verbs) if sessions else []
    is_((verbs.count('EHLO'), verbs.count('AUTH'), verbs.count('MAIL')),
        (1, 1, MESSAGES), f'{label}: EHLO and AUTH once, MAIL each time')
    is_([m.email['Subject'] for m in msgs], sorted(tags),
        f'{label}: in the order they were queued')


# ---- the relay down ----------------------------------------------------------

def attempts(env):
    """The attempts: field of every queued message, in id order."""
    q = os.path.join(env.queue_dir, 'q')
    found = []
    for name in sorted(os.listdir(q)):
        with open(os.path.join(q, name), 'rb') as f:
            head = f.read().split(b'\n\n', 1)[0].decode()
        found += [int(v) for k, _, v in (x.partition(': ')
                                         for x in head.splitlines())
                  if k == 'attempts']
    return found


def test_unreachable(env):
    """When a lane finds the relay down, the account's other lanes stop
    after the message they are on: the rest wait, untried."""
    label = 'relay down, queue_concurrency = 3'
    tags = [f'down-{i:02d}' for i in range(MESSAGES)]
    # bound, never listening: connections are refused, and the port is
    # nobody else's while the test runs
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        env.config_for('slow', port=s.getsockname()[1], delivery='queue',
                       queue_concurrency=3)
        enqueue(env, label, tags)
        r = env.run(['-v', '-q'], timeout=60)
    is_(r.rc, 0, f'{label}: -q exits 0')
    # Each lane is a thread: the first refusal stops the account, and the
    # lanes that took a message before it was seen try theirs.  How many
    # did depends on the scheduler, but never more than one per lane, and
    # every line must agree on the number.
    m = re.search(r'(?m)^mailshim: queue run: 0 delivered, (\d+) deferred, '
                  r'0 failed, 0 busy$', r.err)
    tried = int(m.group(1)) if m else 0
    ok(1 <= tried <= 3, f'{label}: one to three tried (one per lane at '
       f'most), each deferred: {tried}')
    like(r.err, r'(?m)^mailshim: relay of account \[test\] unreachable: '
         rf'{MESSAGES - tried} more message\(s\) wait$',
         f'{label}: -v says the others wait')
    is_(sorted(attempts(env)), [0] * (MESSAGES - tried) + [1] * tried,
        f'{label}: the others untried')
    # the relay back: the next run delivers them all (the deferred ones
    # are not due yet: -qf)
    env.config_for('slow', delivery='queue', queue_concurrency=3)
    env.relay.reset()
    r = env.run(['-qf'], timeout=60)
    env.relay.wait_idle(15)
    is_((r.rc, r.err), (0, ''), f'{label}, then up: -qf exits 0, silently')
    each_once(env.relay.messages, tags, f'{label}, then up')


# ---- failure notices -------------------------------------------------------

def test_notices(env):
    """A refusal makes the run write a failure notice while the other lanes
    are sending: every lane's message must still go whole, and every notice
    be queued.  (A notice once closed fd 0, whatever file it then was.)"""
    label = 'a refusal on every message, queue_concurrency = 4'
    env.config_for('slow', delivery='queue', queue_concurrency=4)
    tags = [f'notice-{i:02d}' for i in range(MESSAGES)]
    bad = []
    for tag in tags:
        r = env.run(['-i', '-f', 'app@shop.example', 'rcpt@example.com',
                     'reject550@example.com'], input=body(tag))
        if r.rc != 0 or r.err:
            bad.append(r)
    ok(not bad, f'{label}: {MESSAGES} messages queued')
    env.relay.reset()
    r = env.run(['-q'], timeout=60)
    env.relay.wait_idle(15)
    is_((r.rc, r.err), (0, ''), f'{label}: -q exits 0, silently')
    msgs = env.relay.messages
    each_once(msgs, tags, label)
    is_(sorted({tuple(m.rcpt_tos) for m in msgs}), [('rcpt@example.com',)],
        f'{label}: each to the recipient the relay took')
    broken = [m.email['Subject'] for m in msgs
              if not m.data.endswith(b'\r\n\r\n%s\r\n'
                                     % m.email['Subject'].encode())]
    is_(broken, [], f'{label}: each message whole, its body last')
    is_(len(attempts(env)), MESSAGES, f'{label}: {MESSAGES} notices queued')
    env.relay.reset()
    r = env.run(['-qf'], timeout=60)
    env.relay.wait_idle(15)
    is_((r.rc, r.err), (0, ''), f'{label}: the notices\' run exits 0')
    about = sorted(
        (re.findall(rb'(?m)^Subject: (notice-\d+)\r$', m.data) or [b'?'])[0]
        .decode() for m in env.relay.messages
        if m.email['Subject'] == 'Undelivered Mail Returned to Sender')
    is_(about, tags, f'{label}: one notice for each message, to its sender')


# ---- two accounts ----------------------------------------------------------

def two_accounts(env, concurrency):
    """[ad] and [normal]: the same relay, told apart by mail_type (so by
    the AUTH user name), chosen by the sender."""
    port = env.relay.ports['slow']

    def account(name, mail_type, match):
        return (f'[{name}]\nhost = 127.0.0.1\nport = {port}\ntls = none\n'
                f'allow_plaintext_auth = yes\n'
                f'username = AppKey\npassword = SecretKey\n'
                f'mail_type = {mail_type}\nmatch_from = {match}\n'
                f'helo = client.test\ntimeout = 10\n')
    env.write_config(
        '[mailshim]\nlocal_domain = example.net\n'
        f'aliases = {env.aliases_path}\nqueue_dir = {env.queue_dir}\n'
        f'delivery = queue\nqueue_concurrency = {concurrency}\n'
        'account = normal\n\n' +
        account('ad', 'ad', '*@ad.shop.example') + '\n' +
        account('normal', 'normal', '*@shop.example'), 'two.ini')


def test_two_accounts(env):
    label = 'two accounts, queue_concurrency = 4'
    two_accounts(env, 4)
    senders = {'AppKey#ad': 'news@ad.shop.example',
               'AppKey#normal': 'app@shop.example'}
    tags = {user: [f'{user[7:]}-{i:02d}' for i in range(MESSAGES // 2)]
            for user in senders}
    # interleaved: the queue's order does not group them by account
    order = [(tags[user][i], sender) for i in range(MESSAGES // 2)
             for user, sender in senders.items()]
    enqueue(env, label, [t for t, _ in order], [s for _, s in order])
    msgs, sessions = run_queue(env, label)
    each_once(msgs, tags['AppKey#ad'] + tags['AppKey#normal'], label)
    ok(most_open(sessions) <= 4, f'{label}: at most 4 open at once')
    is_(sorted(s.auth_user for s in sessions),
        ['AppKey#ad', 'AppKey#ad', 'AppKey#normal', 'AppKey#normal'],
        f'{label}: two connections per account')
    user_of = {s.session_id: s.auth_user for s in sessions}
    mixed = []
    for sid, carried in per_session(msgs).items():
        users = {m.auth_user for m in carried}
        accounts = {u for u, snd in senders.items()
                    for m in carried if m.mail_from == snd}
        if users != {user_of.get(sid)} or accounts != users:
            mixed.append((sid, user_of.get(sid), sorted(users),
                          sorted(accounts)))
    is_(mixed, [], f'{label}: no connection carried another account\'s '
        'message')
    for user in senders:
        got = sorted(m.email['Subject'] for m in msgs if m.auth_user == user)
        is_(got, tags[user], f'{label}: {user}: its messages, over its own '
            'connections')


def test():
    with harness.Env(listeners=['slow']) as env:
        test_three(env)
        test_one(env)
        test_unreachable(env)
        test_notices(env)
        test_two_accounts(env)
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
