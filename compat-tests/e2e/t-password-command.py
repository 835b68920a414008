#!/usr/bin/python3
"""End-to-end: password_command, the relay's password printed by a command.

- The command is split into words by mailshim itself, without a shell:
  quotes work ('se cret' is one word), and $HOME, ~ and * reach the command
  as they are written (each first shown to mean something to a shell).
  The relay, over STARTTLS, takes exactly the first line printed as the
  AUTH PLAIN password; -v never shows it.
- Each failure (no such command, an exit status, a signal, the timeout, no
  password, a NUL byte, a first line too long) is one exact line on
  stderr, exit 78, and the relay never contacted; what the command printed
  is never quoted.
- It runs only when a connection is to be opened: not for -bv, mailq,
  newaliases, --version, delivery = queue or -odq (a command that leaves a
  file behind when it runs shows it; the control shows the file appears
  when it does run); once for a -bs session sending two messages; once per
  queue run.  A queue run whose command fails leaves the account's
  messages queued, and a later run delivers them once the command works.
- That the command runs with mailshim's group given up, without the
  caller's descriptors or standard input, is checked against a real
  setgid install in t-setgid.py.
"""

import base64
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, ok, unlike  # noqa: E402

MSG = b'Subject: password_command\n\nbody line\n'
RCPT = 'rcpt@example.org'
PREFIX = 'mailshim: password_command for [test]: '

# What the relay accepts; each case logs in as its own user, so that the
# password the command printed is checked exactly.
USERS = {
    'pc-quote': 'se cret',
    'pc-literal': '$HOME ~ *',
    'pc-bs': 'pw-bs',
    'pc-queue': 'pw-queue',
}


def b64(text):
    return base64.b64encode(text.encode()).decode()


def script(env, name, body, shell='#!/bin/sh'):
    """An executable shell script in the test directory; its path."""
    return env.write_file(name, shell + '\n' + body, 0o755)


def lines(path):
    try:
        with open(path) as f:
            return len(f.readlines())
    except FileNotFoundError:
        return 0


def queued(env):
    q = os.path.join(env.queue_dir, 'q')
    return sorted(os.listdir(q)) if os.path.isdir(q) else []


def case(env, label, user, command, verbose=(), **keys):
    """Deliver MSG with password_command; pass if the relay took it over
    STARTTLS with the password USERS[user].  Returns the RelayCase."""
    c = harness.RelayCase(env, 'starttls', [RCPT], MSG, RCPT, verbose,
                          username=user, password=None,
                          password_command=command, **keys)
    if c.delivered(label):
        is_([(a[0], a[1], a[2]) for s in c.sessions for a in s.auth_attempts],
            [('PLAIN', user, True)],
            f'{label}: AUTH PLAIN with the printed password, accepted')
        is_(c.msg.tls, True, f'{label}: over TLS')
        is_(c.sess.verbs[:3], ['EHLO', 'STARTTLS', 'EHLO'],
            f'{label}: STARTTLS before AUTH')
    return c


# ---- words, quotes, no shell -------------------------------------------------

def test_quoting(env):
    case(env, 'quotes', 'pc-quote', "/usr/bin/printf '%s\\n' 'se cret'")

    # the control: a shell would expand every word of this command
    shell = subprocess.run(['/bin/sh', '-c', '/bin/echo $HOME ~ *'],
                           capture_output=True, text=True, cwd=env.dir,
                           env=env.child_env())
    ok(shell.stdout.strip() not in ('', USERS['pc-literal']),
       'control: a shell expands $HOME ~ * (%r)' % shell.stdout.strip())
    case(env, 'no expansion', 'pc-literal', '/bin/echo $HOME ~ *')

    c = harness.RelayCase(env, 'starttls', [RCPT], MSG, RCPT, ['-v'],
                          username='pc-quote', password=None,
                          password_command="/usr/bin/printf '%s\\n' "
                          "'se cret'")
    is_((c.rc, len(c.messages)), (0, 1), '-v: delivered')
    ok('--> AUTH (credentials hidden)' in c.err,
       '-v: the dialogue is shown, AUTH hidden')
    for form in ('se cret', b64('se cret'), b64('\0pc-quote\0se cret')):
        unlike(c.err, re.escape(form), f'-v: no {form!r} on stderr')


# ---- failures ----------------------------------------------------------------

FAILURES = [
    ('no such command', 'nosuch-command-for-mailshim', {},
     "cannot run 'nosuch-command-for-mailshim': No such file or directory"),
    ('a directory', '/', {}, "cannot run '/': Permission denied"),
    ('exit status', "\"/bin/sh -c 'echo S3cretOut; exit 3'\"", {},
     'exited with status 3'),
    ('signal', "/bin/sh -c 'echo S3cretOut && kill -9 $$'", {},
     'killed by signal 9'),
    ('timeout', 'sleep 30', {'timeout': 1}, 'timed out after 1 s'),
    ('no output', '/bin/true', {}, 'printed no password'),
    ('an empty first line', "/usr/bin/printf '\\nS3cretOut\\n'", {},
     'printed no password'),
    ('a NUL byte', "/usr/bin/printf 'S3cret\\0Out\\n'", {},
     'printed a NUL byte'),
    ('too long', "/usr/bin/printf 'S3cretOut%05000d\\n' 0", {},
     'printed a first line longer than 4096 bytes'),
]


def test_failures(env):
    for label, command, keys, why in FAILURES:
        env.config_for('starttls', username='AppKey', password=None,
                       password_command=command, **keys)
        harness.refused(env, [RCPT], MSG, 78, PREFIX + why + '\n', label)


# ---- when it runs ----------------------------------------------------------------

def test_not_run(env):
    mark = env.path('ran')
    env.config_for('starttls', username='AppKey', password=None,
                   password_command=f'/usr/bin/touch {mark}')

    # the control: delivering runs it (touch prints no password)
    harness.refused(env, [RCPT], MSG, 78, PREFIX + 'printed no password\n',
                    'control: delivery runs it')
    ok(os.path.exists(mark), 'control: it left its file')
    os.unlink(mark)

    for label, args in (('-bv', ['-bv', RCPT]), ('-bp', ['-bp']),
                        ('mailq', None), ('-bi', ['-bi']),
                        ('newaliases', None), ('--version', ['--version']),
                        ('-odq', ['-odq', RCPT])):
        before = len(queued(env))
        env.relay.reset()
        if args is None:
            rc, _, err = harness.run_as(env, label, [])
        else:
            r = env.run(args, input=MSG)
            rc, err = r.rc, r.err
        env.relay.wait_idle()
        is_((rc, err), (0, ''), f'{label}: exit 0, nothing on stderr')
        ok(not os.path.exists(mark), f'{label}: the command did not run')
        is_(env.relay.sessions, [], f'{label}: no connection')
        if label == '-odq':
            is_(len(queued(env)), before + 1, '-odq: the message is queued')

    env.config_for('starttls', username='AppKey', password=None,
                   password_command=f'/usr/bin/touch {mark}',
                   delivery='queue')
    before = len(queued(env))
    r, msgs, sessions = harness.submit(env, [RCPT], MSG)
    is_((r.rc, r.err), (0, ''), 'delivery = queue: exit 0, nothing on stderr')
    ok(not os.path.exists(mark), 'delivery = queue: the command did not run')
    is_((len(queued(env)), sessions), (before + 1, []),
        'delivery = queue: queued, no connection')
    shutil.rmtree(env.queue_dir)


def bs_session(n):
    """A -bs dialogue sending n messages, in one write."""
    out = 'EHLO client.test\r\n'
    for i in range(n):
        out += (f'MAIL FROM:<sender@example.net>\r\nRCPT TO:<r{i}@example.org>'
                f'\r\nDATA\r\nSubject: bs {i}\r\n\r\nbody {i}\r\n.\r\n')
    return (out + 'QUIT\r\n').encode()


def test_bs_once(env):
    runs = env.path('bs-runs')
    cmd = script(env, 'bs-pass', f'echo run >> {runs}\necho pw-bs\n')
    env.config_for('starttls', username='pc-bs', password=None,
                   password_command=cmd)
    r, msgs, sessions = harness.submit(env, ['-bs'], bs_session(2))
    replies = r.out.decode(errors='replace').split('\r\n')
    is_(len([x for x in replies if x.startswith('250 2.0.0 Ok: queued as')]),
        2, '-bs: both messages taken')
    is_(sorted(m.rcpt_tos[0] for m in msgs),
        ['r0@example.org', 'r1@example.org'], '-bs: the relay has both')
    is_([a for s in sessions for a in s.auth_attempts],
        [('PLAIN', 'pc-bs', True)], '-bs: one login, accepted')
    is_(lines(runs), 1, '-bs: two messages, the command ran once')

    # the control: two processes run it twice
    for i in range(2):
        harness.delivered(env, [RCPT], MSG, f'control: process {i + 1}')
    is_(lines(runs), 3, 'control: one run per process')


def test_queue(env):
    runs = env.path('q-runs')
    broken = env.path('broken')
    cmd = script(env, 'q-pass',
                 f'echo run >> {runs}\n'
                 f'if [ -e {broken} ]; then echo S3cretOut; exit 1; fi\n'
                 'echo pw-queue\n')
    env.config_for('starttls', username='pc-queue', password=None,
                   password_command=cmd, delivery='queue')
    for i in range(2):
        r = env.run([f'q{i}@example.org'], input=MSG)
        is_((r.rc, r.err), (0, ''), f'queue: message {i + 1} queued')
    is_((len(queued(env)), lines(runs)), (2, 0),
        'queue: two queued, the command not run')

    env.write_file('broken', '')
    r, msgs, sessions = harness.submit(env, ['-qf'], b'')
    is_(r.err, PREFIX + 'exited with status 1\n',
        '-qf, the command failing: its one line')
    is_((msgs, sessions), ([], []), '-qf, the command failing: no connection')
    is_(len(queued(env)), 2, '-qf, the command failing: both still queued')
    is_(lines(runs), 1, '-qf, the command failing: it ran once')
    diag(f'-qf with the command failing exits {r.rc}')

    os.unlink(broken)
    r, msgs, sessions = harness.submit(env, ['-qf'], b'')
    is_((r.rc, r.err), (0, ''), '-qf, the command working: exit 0, silent')
    is_(sorted(m.rcpt_tos[0] for m in msgs),
        ['q0@example.org', 'q1@example.org'],
        '-qf, the command working: both delivered')
    ok(all(a == ('PLAIN', 'pc-queue', True)
           for s in sessions for a in s.auth_attempts) and sessions,
       '-qf, the command working: logged in with its password')
    is_(queued(env), [], '-qf, the command working: the queue is empty')
    is_(lines(runs), 2, '-qf, the command working: one more run')
    shutil.rmtree(env.queue_dir)


def test():
    with harness.Env(users=USERS) as env:
        test_quoting(env)
        test_failures(env)
        test_not_run(env)
        test_bs_once(env)
        test_queue(env)


harness.main(test)
