"""Per-recipient outcomes of submit.c, with and without partial delivery.

No mailshim command delivers partially yet (the queue runner will), so
this drives submit.c through compat-tests/unit/submit-driver (its path in
MAILSHIM_SUBMIT_DRIVER), which prints, after each send:

    rcpt <address> <delivered|tempfail|permfail> <code> <reply>
    status <status> <code> <message or ->

Every case checks those lines exactly and what the relay received.
"""

import os
import shlex
import socket
import subprocess
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

SENDER = 'me@example.net'
MESSAGE = b'Subject: partial\n\nhello\n'
SENT = b'Subject: partial\r\n\r\nhello\r\n'

R550 = ('550 5.1.1 <reject550@example.org>: Recipient address rejected: '
        'User unknown')
R451 = '451 4.3.0 <temp451@example.org>: temporarily unavailable'
D451 = '451 4.3.0 try again later'
D554 = '554 5.7.1 message refused'


def driver():
    path = os.environ.get('MAILSHIM_SUBMIT_DRIVER')
    if not path or not os.access(path, os.X_OK):
        harness.bail_out(f'MAILSHIM_SUBMIT_DRIVER={path!r} is not an '
                         'executable file (compat-tests/unit/submit-driver)')
    return path


def send(env, rcpts, opts=(), data=MESSAGE, config=None, sender=SENDER):
    """Run the driver; return (stdout lines, messages, sessions, rejected)
    once the relay has seen the client go."""
    env.relay.reset()
    wrapper = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', ''))
    argv = wrapper + [driver(), *opts, config or env.last_config, sender,
                      *rcpts]
    p = subprocess.run(argv, input=data, capture_output=True, timeout=60,
                       env=env.child_env())
    env.relay.wait_idle()
    if not ok(p.returncode == 0 and p.stderr == b'',
              f'driver {" ".join(opts)} {" ".join(rcpts)}: ran, silently'):
        diag(f'exit {p.returncode}, stderr {p.stderr!r}')
    return (p.stdout.decode('utf-8', 'backslashreplace').splitlines(),
            env.relay.messages, env.relay.sessions, env.relay.rejected)


def queued(msg):
    return f'250 2.0.0 Ok: queued as {msg.seq:04d}'


def txn_verbs(sessions):
    """MAIL, RCPT and DATA over all the connections, in order."""
    return [v for s in sessions for v in s.verbs
            if v in ('MAIL', 'RCPT', 'DATA')]


def test():
    with harness.Env() as env:
        env.config_for('plain')

        # -- partial: some refused, the rest delivered
        rcpts = ['ok@example.org', 'temp451@example.org',
                 'reject550@example.org']
        out, msgs, sessions, _ = send(env, rcpts)
        ok(len(msgs) == 1, 'mixed: one message')
        if msgs:
            is_(out, [
                f'rcpt ok@example.org delivered 250 {queued(msgs[0])}',
                f'rcpt temp451@example.org tempfail 451 {R451}',
                f'rcpt reject550@example.org permfail 550 {R550}',
                'status ok 0 -',
            ], 'mixed: each recipient its outcome, in order; status ok')
            is_((msgs[0].mail_from, msgs[0].rcpt_tos, msgs[0].data),
                (SENDER, ['ok@example.org'], SENT),
                'mixed: the relay got the message for ok@ only')
        is_(txn_verbs(sessions), ['MAIL', 'RCPT', 'RCPT', 'RCPT', 'DATA'],
            'mixed: every RCPT tried, then DATA')

        # -- partial: five recipients, refusals in between
        rcpts = ['a@example.org', 'reject550@example.org', 'b@example.org',
                 'temp451@example.org', 'c@example.org']
        out, msgs, _, _ = send(env, rcpts)
        ok(len(msgs) == 1, 'five: one message')
        if msgs:
            q = queued(msgs[0])
            is_(out, [
                f'rcpt a@example.org delivered 250 {q}',
                f'rcpt reject550@example.org permfail 550 {R550}',
                f'rcpt b@example.org delivered 250 {q}',
                f'rcpt temp451@example.org tempfail 451 {R451}',
                f'rcpt c@example.org delivered 250 {q}',
                'status ok 0 -',
            ], 'five: outcomes in the order of the recipients')
            is_(msgs[0].rcpt_tos,
                ['a@example.org', 'b@example.org', 'c@example.org'],
                'five: the relay got it for the three accepted')

        # -- partial: every recipient refused (libcurl fails the transfer)
        out, msgs, sessions, _ = send(
            env, ['temp451@example.org', 'reject550@example.org'])
        is_(out, [
            f'rcpt temp451@example.org tempfail 451 {R451}',
            f'rcpt reject550@example.org permfail 550 {R550}',
            'status tempfail 451 relay deferred recipient '
            f'<temp451@example.org>: {R451}',
        ], 'all refused: outcomes; status from the first refusal')
        is_((len(msgs), txn_verbs(sessions)), (0, ['MAIL', 'RCPT', 'RCPT']),
            'all refused: no DATA, no message')
        out, msgs, _, _ = send(
            env, ['reject550@example.org', 'temp451@example.org'])
        is_(out[-1], 'status rcpt 550 relay refused recipient '
            f'<reject550@example.org>: {R550}',
            'all refused, a 5xx first: status rcpt')

        # -- partial: the reply after the final dot decides the accepted
        out, msgs, _, rejected = send(
            env, ['datafail451@example.org', 'ok@example.org'])
        is_(out, [
            f'rcpt datafail451@example.org tempfail 451 {D451}',
            f'rcpt ok@example.org tempfail 451 {D451}',
            f'status tempfail 451 relay deferred the message: {D451}',
        ], '451 after the dot: every recipient tempfail with it')
        is_((len(msgs), [r.stage for r in rejected]), (0, ['DATA']),
            '451 after the dot: refused at DATA, nothing delivered')

        out, msgs, _, _ = send(env, ['datafail554@example.org',
                                     'reject550@example.org',
                                     'ok@example.org'])
        is_(out, [
            f'rcpt datafail554@example.org permfail 554 {D554}',
            f'rcpt reject550@example.org permfail 550 {R550}',
            f'rcpt ok@example.org permfail 554 {D554}',
            f'status refused 554 relay refused the message: {D554}',
        ], '554 after the dot: the accepted permfail with it, the refused '
           'keep their own reply')
        is_(len(msgs), 0, '554 after the dot: nothing delivered')

        # -- partial: the connection lost during DATA decides nothing
        out, msgs, _, _ = send(env, ['dropconn@example.org',
                                     'reject550@example.org',
                                     'ok@example.org'])
        is_(len(out), 4, 'connection lost: four lines')
        lost = r'connection to relay 127\.0\.0\.1:\d+ failed: .+'
        if len(out) == 4:
            like(out[0], r'^rcpt dropconn@example\.org tempfail 0 ' + lost +
                 '$', 'connection lost: tempfail, code 0, the error')
            is_(out[1], f'rcpt reject550@example.org permfail 550 {R550}',
                'connection lost: a refused RCPT is still permfail')
            is_(out[2].split(' ', 3)[3], out[0].split(' ', 3)[3],
                'connection lost: the other accepted one the same')
            is_(out[3], 'status tempfail 0 ' + out[0].split(' ', 4)[4],
                'connection lost: status tempfail with that message')
        is_(len(msgs), 0, 'connection lost: nothing delivered')

        # -- partial: MAIL refused decides everybody
        out, msgs, sessions, _ = send(env, ['a@example.org', 'b@example.org'],
                                      sender='tempfrom@example.net')
        is_(out, [
            'rcpt a@example.org tempfail 451 451 4.3.0 sender temporarily '
            'rejected',
            'rcpt b@example.org tempfail 451 451 4.3.0 sender temporarily '
            'rejected',
            'status tempfail 451 relay deferred the sender: 451 4.3.0 '
            'sender temporarily rejected',
        ], 'MAIL 451: every recipient tempfail with it')
        out, msgs, sessions, _ = send(env, ['a@example.org'],
                                      sender='rejectfrom@example.net')
        is_(out, [
            'rcpt a@example.org permfail 553 553 5.7.1 sender not allowed',
            'status refused 553 relay refused the sender: 553 5.7.1 sender '
            'not allowed',
        ], 'MAIL 553: permfail with it')
        is_((len(msgs), txn_verbs(sessions)), (0, ['MAIL']),
            'MAIL refused: no RCPT sent')

        # -- direct delivery (no partial): the first refusal ends it all
        rcpts = ['ok@example.org', 'reject550@example.org', 'ok2@example.org']
        out, msgs, sessions, _ = send(env, rcpts, opts=['-d'])
        overall = f'relay refused recipient <reject550@example.org>: {R550}'
        is_(out, [
            f'rcpt ok@example.org tempfail 0 {overall}',
            f'rcpt reject550@example.org permfail 550 {R550}',
            f'rcpt ok2@example.org tempfail 0 {overall}',
            f'status rcpt 550 {overall}',
        ], 'direct: the refused one permfail, the others not delivered')
        is_((len(msgs), txn_verbs(sessions)), (0, ['MAIL', 'RCPT', 'RCPT']),
            'direct: stopped at the refusal, nothing delivered')
        out, msgs, _, _ = send(env, ['ok@example.org', 'ok2@example.org'],
                               opts=['-d'])
        ok(len(msgs) == 1, 'direct, all accepted: one message')
        if msgs:
            is_(out, [
                f'rcpt ok@example.org delivered 250 {queued(msgs[0])}',
                f'rcpt ok2@example.org delivered 250 {queued(msgs[0])}',
                'status ok 0 -',
            ], 'direct, all accepted: both delivered')

        # -- one session, several messages: nothing carries over
        rcpts = ['ok@example.org', 'reject550@example.org', 'ok2@example.org']
        out, msgs, sessions, _ = send(env, rcpts, opts=['-n', '3'])
        ok(len(msgs) == 3, 'three sends: three messages')
        if len(msgs) == 3:
            want = []
            for m in msgs:
                want += [f'rcpt ok@example.org delivered 250 {queued(m)}',
                         f'rcpt reject550@example.org permfail 550 {R550}',
                         f'rcpt ok2@example.org delivered 250 {queued(m)}',
                         'status ok 0 -']
            is_(out, want, 'three sends: the same outcomes each time')
            is_([m.rcpt_tos for m in msgs],
                [['ok@example.org', 'ok2@example.org']] * 3,
                'three sends: each to the accepted two')
        is_(len(sessions), 1, 'three sends: over one connection')
        out, msgs, _, _ = send(env, ['temp451@example.org'],
                               opts=['-n', '2'])
        is_(out, [f'rcpt temp451@example.org tempfail 451 {R451}',
                  'status tempfail 451 relay deferred recipient '
                  f'<temp451@example.org>: {R451}'] * 2,
            'two refused sends: the same each time')

        # -- a raw message (a queue file's bytes) goes out as it is
        raw = (b'Subject: raw\r\nX-8bit: caf\xc3\xa9\r\n\r\n'
               b'.leading dot\r\n..two\r\n.\r\nx\r\n')
        out, msgs, _, _ = send(env, ['ok@example.org',
                                     'reject550@example.org'],
                               opts=['-R'], data=raw)
        ok(len(msgs) == 1, 'raw: one message')
        if msgs:
            is_(msgs[0].data, raw, 'raw: the relay got the bytes exactly')
            is_(out[-1], 'status ok 0 -', 'raw: status ok')

        # -- failures before any transaction: tempfail, code 0, the reason
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            closed_port = s.getsockname()[1]
        cfg = env.config_for('plain', name='closed.ini', port=closed_port)
        out, msgs, _, _ = send(env, ['a@example.org', 'b@example.org'],
                               config=cfg)
        is_(len(out), 3, 'connection refused: three lines')
        if len(out) == 3:
            like(out[2], r'^status tempfail 0 cannot connect to relay '
                 rf'127\.0\.0\.1:{closed_port}: ', 'connection refused: status')
            reason = out[2].split(' ', 3)[3]
            is_(out[:2], [f'rcpt a@example.org tempfail 0 {reason}',
                          f'rcpt b@example.org tempfail 0 {reason}'],
                'connection refused: each recipient tempfail with it')
        cfg = env.config_for('plain', name='badpw.ini', password='wrong')
        out, msgs, _, _ = send(env, ['a@example.org'], config=cfg)
        auth = ("relay refused authentication as 'AppKey' (AUTH PLAIN): "
                '535 5.7.8 Authentication credentials invalid')
        is_(out, [f'rcpt a@example.org tempfail 0 {auth}',
                  f'status auth 535 {auth}'],
            'AUTH refused: the recipient tempfail (not its fault), status auth')
        is_(len(msgs), 0, 'AUTH refused: nothing delivered')

        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
