#!/usr/bin/python3
"""The modes and flags that are not about a message's bytes: newaliases
(-bi, -I, argv[0]), -n, flags that must never write a file (-X, -D), the
notes -v prints for ignored flags, refusals, and queue stand-ins."""
import os
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import is_, ok  # noqa: E402

MSG = b'Subject: modes\n\nbody\n'
RCPT = 'rcpt@example.org'


run_as = harness.run_as


def test_newaliases(env):
    aliases = env.write_aliases('# ok\nroot: admin@example.com\n'
                                'ops: a@example.com,\n  b@example.com\n')
    for how, run in (('newaliases', lambda a: run_as(env, 'newaliases', a)),
                     ('-bi', lambda a: run_as(env, 'sendmail', ['-bi'] + a)),
                     ('-I', lambda a: run_as(env, 'sendmail', ['-I'] + a))):
        is_(run([]), (0, '', ''), f'{how}: a good aliases file: exit 0, '
            'silent')
    env.write_aliases('root: admin@example.com\nthis line has no colon\n'
                      '  \nnotarget:\n')
    is_(run_as(env, 'newaliases', []),
        (0, '', 'mailshim: warning: %s:2: expected \'name: target, ...\'\n'
         'mailshim: warning: %s:4: alias \'notarget\' has no target\n'
         % (aliases, aliases)),
        'newaliases: each bad line a warning, exit 0 (package scripts '
        'run it)')
    # a file the configuration names must exist
    env.config_for('starttls', aliases=env.path('missing-aliases'))
    code, out, err = run_as(env, 'newaliases', [])
    is_((code, out, err), (78, '', "mailshim: cannot read aliases file '%s':"
        " No such file or directory\n" % env.path('missing-aliases')),
        'newaliases: a configured file that is missing: 78')
    env.config_for('starttls')


def test_no_aliases(env):
    env.write_aliases('root: admin@example.com\n')
    r = env.run(['-bv', 'root'])
    is_((r.rc, r.out.decode().splitlines()[1:]), (0, ['admin@example.com']),
        'without -n, root goes through the aliases')
    r = env.run(['-bv', '-n', 'root'])
    is_((r.rc, r.out.decode().splitlines()[1:]), (0, ['root@example.net']),
        '-n: no alias expansion, only the local domain')
    m = harness.delivered(env, ['-n', '-f', 'me@example.org', 'root'], MSG,
                          '-n delivery')
    is_(m and m.rcpt_tos, ['root@example.net'], '-n: RCPT TO unexpanded')
    env.write_aliases('')


def test_never_writes(env):
    """-X and -D name files sendmail would write; mailshim never does (the
    -X of CVE-2016-10033 wrote a PHP file into the web root)."""
    target = env.path('shell.php')
    for args in (['-X', target], ['-X' + target], ['-D', target],
                 ['-oQ/tmp', '-X', target, '-OQueueDirectory=/tmp']):
        m = harness.delivered(env, args + ['-f', 'a@example.org', RCPT],
                              MSG, 'flags ' + ' '.join(args))
        ok(m is not None and not os.path.exists(target),
           f'{args[0]}: delivered, and no file was written')


def test_notes(env):
    """Ignored flags are silent, and each named under -v."""
    args = ['-X', '/nonexistent/log', '-oem', '-G', '-h', '5', '-L', 'tag',
            '-Am', '-U', '-odi', '-O', 'Timeout=1', '-f', 'a@example.org',
            RCPT]
    r, msgs, _ = harness.submit(env, args, MSG)
    is_((r.rc, r.err, len(msgs)), (0, '', 1),
        'ignored flags: delivered, nothing on stderr without -v')
    r, msgs, _ = harness.submit(env, ['-v'] + args, MSG)
    notes = [x for x in r.err.splitlines() if x.startswith('mailshim: note')]
    is_(notes, ['mailshim: note: -X /nonexistent/log: ignored, no log file '
                'is written',
                'mailshim: note: -oem: ignored',
                'mailshim: note: -G: ignored',
                'mailshim: note: -h 5: ignored',
                'mailshim: note: -L tag: ignored',
                'mailshim: note: -A m: ignored',
                'mailshim: note: -U: ignored',
                'mailshim: note: -O Timeout=1: ignored'],
        '-v: one note for each ignored flag, in order')
    is_((r.rc, len(msgs)), (0, 1), '-v: still delivered')


def test_refusals(env):
    for flag, why in (
            ('-bd', 'mailshim: -bd is not supported: mailshim sends mail to '
             'a relay and runs no daemon\n'),
            ('-bt', 'mailshim: -bt is not supported: mailshim has no '
             'address test mode, host status or ARPANET mode\n'),
            ('-k', "mailshim: unknown option '-k'\n")):
        r, msgs, sessions = harness.submit(env, [flag], MSG)
        is_(r.rc, 64, f'{flag}: exit 64')
        is_(r.err.split('usage:')[0], why, f'{flag}: the reason')
        is_((len(msgs), len(sessions)), (0, 0), f'{flag}: nothing sent')


def test_queue_standins(env):
    for args in (['-q'], ['-q30m'], ['-qIabc'], ['-qRexample.org']):
        r, msgs, sessions = harness.submit(env, args, b'')
        is_((r.rc, r.out, r.err, len(sessions)), (0, b'', '', 0),
            f'{args[0]}: an empty queue, nothing to run: exit 0')
    for how in ('mailq', '-bp', '-bP'):
        if how == 'mailq':
            code, out, err = run_as(env, 'mailq', [])
        else:
            code, out, err = run_as(env, 'sendmail', [how])
        is_((code, out, err), (0, 'Mail queue is empty\n', ''),
            f'{how}: Mail queue is empty')


def main():
    with harness.Env() as env:
        env.config_for('starttls')
        test_newaliases(env)
        test_no_aliases(env)
        test_never_writes(env)
        test_notes(env)
        test_refusals(env)
        test_queue_standins(env)
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')
    harness.done()


harness.main(main)
