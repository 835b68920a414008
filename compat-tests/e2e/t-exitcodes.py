#!/usr/bin/python3
"""End-to-end: mailshim's exit status and error message for each outcome.

One case per sysexits(3) code mailshim uses, each checking the status, the
exact stderr line (a strict regex where it holds a port or libcurl's
text) and what the relay received: nothing, for a failure.  Then: a
refused recipient among several delivers to none; MAILSHIM_CONFIG against
-C; and a run with stdout and stderr closed.
"""

import os
import re
import shlex
import socket
import subprocess
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

MSG = b'Subject: exit codes\n\nbody line\n'
RCPT = 'ok@example.org'


def line_of(path, text):
    """The 1-based number of the line of path that is exactly text."""
    return open(path).read().splitlines().index(text) + 1


closed_port = harness.closed_port


class Case:
    """Run mailshim once, with a fresh relay record."""

    def __init__(self, env, args, config=None, env_extra=None, input=MSG,
                 timeout=30):
        env.relay.reset()
        self.result = env.run(args, input=input, config=config,
                              env_extra=env_extra, timeout=timeout)
        env.relay.wait_idle()
        self.messages = env.relay.messages
        self.rejected = env.relay.rejected
        self.sessions = env.relay.sessions
        self.connections = sum(env.relay.connections.values())

    def check(self, label, rc, err):
        """Exit status rc and stderr err: a str is the exact text, a
        compiled regex must match all of it."""
        good = is_(self.result.rc, rc, f'{label}: exit {rc}')
        if isinstance(err, re.Pattern):
            good &= like(self.result.err, err, f'{label}: the message')
        else:
            good &= is_(self.result.err, err, f'{label}: the message')
        good &= is_(self.result.out, b'', f'{label}: nothing on stdout')
        if not good:
            diag(self.result.describe())
        return good

    def nothing_received(self, label, contacted=True):
        """No message accepted; contacted=False: no connection at all."""
        is_(self.messages, [], f'{label}: the relay accepted no message')
        if not contacted:
            is_(self.connections, 0, f'{label}: the relay was not contacted')

    def rejection(self, label, stage, address, reply):
        is_([(r.stage, r.address, r.reply) for r in self.rejected],
            [(stage, address, reply)],
            f'{label}: the relay refused it at {stage}')


def rx(pattern):
    """A regex for the whole of stderr: one line."""
    return re.compile(r'\A' + pattern + r'\n\Z')


def test_relay_outcomes(env):
    starttls = env.ports['starttls']

    label = '0 success'
    env.config_for('starttls')
    c = Case(env, [RCPT])
    c.check(label, 0, '')
    is_([m.rcpt_tos for m in c.messages], [[RCPT]],
        f'{label}: one message, to {RCPT}')
    is_(c.messages[0].data.endswith(b'\r\n\r\nbody line\r\n')
        if c.messages else None, True, f'{label}: the body arrived')

    # exit 75 is what on_tempfail = fail gives; by default the message is
    # queued and the exit status is 0 (t-queue.py)
    label = '75 connection refused'
    port = closed_port()
    env.config_for('starttls', port=port, on_tempfail='fail')
    c = Case(env, [RCPT])
    c.check(label, 75, rx(
        rf'mailshim: cannot connect to relay 127\.0\.0\.1:{port}: '
        # libcurl 8.21 writes 127.0.0.1:PORT where older ones write port PORT
        rf'Failed to connect to 127\.0\.0\.1(?: port |:){port} after \d+ ms: '
        r"(Couldn't connect to server|Could not connect to server|"
        r"Connection refused)"))
    c.nothing_received(label, contacted=False)

    label = '75 greeting 421'
    env.config_for('greet421', on_tempfail='fail')
    c = Case(env, [RCPT])
    c.check(label, 75, f'mailshim: relay 127.0.0.1:{env.ports["greet421"]} '
            'deferred the connection: 421 4.3.2 service not available\n')
    is_(env.relay.connections['greet421'], 1,
        f'{label}: the relay was contacted once')
    c.nothing_received(label)

    label = '75 temp451 at RCPT'
    env.config_for('starttls', on_tempfail='fail')
    c = Case(env, ['temp451@example.org'])
    c.check(label, 75, 'mailshim: relay deferred recipient '
            '<temp451@example.org>: 451 4.3.0 <temp451@example.org>: '
            'temporarily unavailable\n')
    c.nothing_received(label)
    c.rejection(label, 'RCPT', 'temp451@example.org',
                '451 4.3.0 <temp451@example.org>: temporarily unavailable')

    label = '75 tempfrom at MAIL'
    c = Case(env, ['-f', 'tempfrom@example.net', RCPT])
    c.check(label, 75, 'mailshim: relay deferred the sender: 451 4.3.0 '
            'sender temporarily rejected\n')
    c.nothing_received(label)
    c.rejection(label, 'MAIL', 'tempfrom@example.net',
                '451 4.3.0 sender temporarily rejected')

    label = '75 datafail451 after DATA'
    c = Case(env, ['datafail451@example.org'])
    c.check(label, 75, 'mailshim: relay deferred the message: 451 4.3.0 '
            'try again later\n')
    c.nothing_received(label)
    c.rejection(label, 'DATA', 'datafail451@example.org',
                '451 4.3.0 try again later')

    label = '75 connection lost during DATA'
    c = Case(env, ['dropconn@example.org'])
    c.check(label, 75, rx(
        rf'mailshim: connection to relay 127\.0\.0\.1:{starttls} failed: '
        r'(Recv|Send) failure: (Connection reset by peer|Broken pipe)'))
    c.nothing_received(label)
    c.rejection(label, 'DATA', 'dropconn', None)

    label = '75 timeout (a server that never greets)'
    silent = socket.socket()
    silent.bind(('127.0.0.1', 0))
    silent.listen(4)        # the kernel accepts; nobody ever says 220
    port = silent.getsockname()[1]
    try:
        env.config_for('starttls', port=port, timeout=1,
                       on_tempfail='fail')
        c = Case(env, [RCPT], timeout=15)
    finally:
        silent.close()
    is_(c.result.timed_out, False, f'{label}: mailshim gave up by itself')
    c.check(label, 75, rx(
        rf'mailshim: relay 127\.0\.0\.1:{port} timed out: '
        r'(server response timeout|Operation timed out[^\n]*)'))
    c.nothing_received(label, contacted=False)

    label = '77 wrong password'
    env.config_for('starttls', password='NotTheSecret')
    c = Case(env, [RCPT])
    c.check(label, 77, "mailshim: relay refused authentication as 'AppKey' "
            "(AUTH PLAIN): 535 5.7.8 Authentication credentials invalid\n")
    c.nothing_received(label)
    is_([s.verbs for s in c.sessions],
        [['EHLO', 'STARTTLS', 'EHLO', 'AUTH']],
        f'{label}: stopped after AUTH, no MAIL')

    env.config_for('starttls')
    label = '67 reject550 at RCPT'
    c = Case(env, ['reject550@example.org'])
    c.check(label, 67, 'mailshim: relay refused recipient '
            '<reject550@example.org>: 550 5.1.1 <reject550@example.org>: '
            'Recipient address rejected: User unknown\n')
    c.nothing_received(label)
    c.rejection(label, 'RCPT', 'reject550@example.org',
                '550 5.1.1 <reject550@example.org>: Recipient address '
                'rejected: User unknown')

    label = '69 rejectfrom at MAIL'
    c = Case(env, ['-f', 'rejectfrom@example.net', RCPT])
    c.check(label, 69, 'mailshim: relay refused the sender: 553 5.7.1 '
            'sender not allowed\n')
    c.nothing_received(label)
    c.rejection(label, 'MAIL', 'rejectfrom@example.net',
                '553 5.7.1 sender not allowed')

    label = '69 datafail554 after DATA'
    c = Case(env, ['datafail554@example.org'])
    c.check(label, 69, 'mailshim: relay refused the message: 554 5.7.1 '
            'message refused\n')
    c.nothing_received(label)
    c.rejection(label, 'DATA', 'datafail554@example.org',
                '554 5.7.1 message refused')

    label = '67 one of three recipients refused'
    c = Case(env, ['first@example.org', 'reject550@example.org',
                   'third@example.org'])
    c.check(label, 67, 'mailshim: relay refused recipient '
            '<reject550@example.org>: 550 5.1.1 <reject550@example.org>: '
            'Recipient address rejected: User unknown\n')
    c.nothing_received(label)
    ok(all('DATA' not in s.verbs for s in c.sessions) and c.sessions,
       f'{label}: no DATA: the others got nothing either')


class HeloOnlyServer(harness.ScriptedServer):
    """An RFC 821 server: EHLO is 502, so a client falls back to HELO; then
    it accepts one message without AUTH."""

    greeting = '220 old.test SMTP'

    def handle(self, verb, line):
        if verb == 'EHLO':
            self.say('502 5.5.2 Error: command not recognized')
        elif verb in ('HELO', 'MAIL', 'RCPT'):
            self.say('250 OK')
        elif verb == 'DATA':
            self.say('354 go ahead')
            self.read_data()
            self.say('250 2.0.0 queued')
        elif verb == 'QUIT':
            self.say('221 bye')
            return False
        else:
            self.say('502 5.5.1 not here')
        return True


def test_helo_fallback(env):
    """A relay that only speaks HELO (no AUTH configured): the message is
    accepted with 250, so the outcome is success, whatever EHLO got."""
    label = '0 success after the HELO fallback'
    server = HeloOnlyServer()
    try:
        env.config_for('plain_noauth', port=server.port, username=None,
                       password=None)
        c = Case(env, [RCPT])
    finally:
        server.close()
    is_([v.split(' ', 1)[0].upper() for v in server.commands],
        ['EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA', 'QUIT'],
        f'{label}: EHLO refused, HELO, then the transaction')
    is_(len(server.data), 1, f'{label}: the server accepted the message')
    c.check(label, 0, '')


def test_local_failures(env):
    path = env.config_for('starttls')

    label = '64 no recipients'
    c = Case(env, [])
    c.check(label, 64, 'mailshim: no recipients given (use -t to read them '
            'from the headers)\n')
    c.nothing_received(label, contacted=False)

    label = '64 unknown flag'
    c = Case(env, ['-Q', RCPT])
    is_(c.result.rc, 64, f'{label}: exit 64')
    lines = c.result.err.splitlines()
    is_(lines[:1], ["mailshim: unknown option '-Q'"],
        f'{label}: the first line names the flag')
    like(lines[1] if len(lines) > 1 else '', r'^usage: sendmail ',
         f'{label}: then the usage')
    c.nothing_received(label, contacted=False)

    label = '65 malformed address'
    c = Case(env, ['a@@example.org'])
    c.check(label, 65, "mailshim: command-line recipient: invalid address "
            "'a@@example.org': unexpected '@' in domain\n")
    c.nothing_received(label, contacted=False)

    label = '78 missing config file'
    missing = env.path('no-such.ini')
    c = Case(env, [RCPT], config=missing)
    c.check(label, 78, f"mailshim: cannot read config '{missing}': "
            "No such file or directory\n")
    c.nothing_received(label, contacted=False)

    label = '78 unknown key'
    path = env.config_for('starttls', hots='relay.example')
    n = line_of(path, 'hots = relay.example')
    c = Case(env, [RCPT])
    c.check(label, 78, f"mailshim: {path}:{n}: unknown key 'hots' in "
            "[test]\n")
    c.nothing_received(label, contacted=False)

    label = '78 several accounts, no default'
    text = open(env.config_for('starttls')).read()
    path = env.write_config(text + '\n[other]\nhost = 127.0.0.1\n')
    c = Case(env, [RCPT])
    c.check(label, 78, f"mailshim: {path}: several accounts and no default: "
            "set 'account' in [mailshim]\n")
    c.nothing_received(label, contacted=False)

    label = '78 bad port'
    path = env.config_for('starttls', port='65536')
    n = line_of(path, 'port = 65536')
    c = Case(env, [RCPT])
    c.check(label, 78, f"mailshim: {path}:{n}: bad value for 'port' in "
            "[test]: expected a number from 1 to 65535 (got '65536')\n")
    c.nothing_received(label, contacted=False)


def test_config_path(env):
    good = env.config_for('starttls', name='env.ini')
    missing = env.path('missing.ini')

    label = 'MAILSHIM_CONFIG without -C'
    c = Case(env, [RCPT], config=False, env_extra={'MAILSHIM_CONFIG': good})
    c.check(label, 0, '')
    is_(len(c.messages), 1, f'{label}: delivered with that config')

    label = 'MAILSHIM_CONFIG names a missing file'
    c = Case(env, [RCPT], config=False,
             env_extra={'MAILSHIM_CONFIG': missing})
    c.check(label, 78, f"mailshim: cannot read config '{missing}': "
            "No such file or directory\n")
    c.nothing_received(label, contacted=False)

    label = '-C wins over MAILSHIM_CONFIG (good -C)'
    c = Case(env, [RCPT], config=good,
             env_extra={'MAILSHIM_CONFIG': missing})
    c.check(label, 0, '')
    is_(len(c.messages), 1, f'{label}: delivered')

    label = '-C wins over MAILSHIM_CONFIG (missing -C)'
    c = Case(env, [RCPT], config=missing,
             env_extra={'MAILSHIM_CONFIG': good})
    c.check(label, 78, f"mailshim: cannot read config '{missing}': "
            "No such file or directory\n")
    c.nothing_received(label, contacted=False)


def run_closed(env, config, rcpt, stdin_path):
    """mailshim with stdout and stderr closed and stdin a regular file."""
    wrapper = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', ''))
    argv = wrapper + [os.environ['MAILSHIM_BIN'], '-C', config, rcpt]
    script = 'exec 1>&- 2>&-; exec "$@" < ' + shlex.quote(stdin_path)
    return subprocess.run(['/bin/sh', '-c', script, 'sh'] + argv,
                          env=env.child_env(), cwd=env.dir, timeout=30,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_closed_fds(env):
    body = b'Subject: closed fds\n\n' + b'line of text\n' * 200
    stdin_path = env.write_file('message.txt', body, 0o644)
    config = env.config_for('starttls')

    label = 'stdout and stderr closed'
    env.relay.reset()
    p = run_closed(env, config, RCPT, stdin_path)
    env.relay.wait_idle()
    is_(p.returncode, 0, f'{label}: exit 0')
    msgs = env.relay.messages
    is_([m.rcpt_tos for m in msgs], [[RCPT]], f'{label}: delivered')
    ok(msgs and msgs[0].data.endswith(b'\r\n\r\n' +
                                      b'line of text\r\n' * 200),
       f'{label}: the whole body, from the file on stdin')

    label = 'stdout and stderr closed, recipient refused'
    env.relay.reset()
    p = run_closed(env, config, 'reject550@example.org', stdin_path)
    env.relay.wait_idle()
    is_(p.returncode, 67, f'{label}: still exit 67')
    is_(env.relay.messages, [], f'{label}: nothing delivered')


def test():
    with harness.Env() as env:
        test_relay_outcomes(env)
        test_helo_fallback(env)
        test_local_failures(env)
        test_config_path(env)
        test_closed_fds(env)
        env.relay.wait_idle()
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
