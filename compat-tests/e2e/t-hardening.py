#!/usr/bin/python3
"""End-to-end: the secret file modes and the process hardening of
mailshim(8)'s SECURITY section.

- A config holding a secret (or a password_file) readable by others is
  refused with 78, the fix in the message, and the relay never contacted;
  group-readable (0640) is the intended setup and is accepted.
- A running mailshim (-bs waits for input) has no core file size limit
  left (/proc/PID/limits) and, run as another user, is not dumpable: the
  kernel then gives its /proc/PID files to root instead of that user.
- A privileged copy (setgid nogroup, run by root, so egid != gid) drops
  SSLKEYLOGFILE and TMPDIR from its environment (each first shown to be
  honoured by the unprivileged binary, so these cases can fail), still
  honours -C, and gives its group up for good for -C and $MAILSHIM_CONFIG
  (the Gid line of /proc/PID/status).

The /proc and privilege cases need root (to chown, to run as nobody) and
run the binary without MAILSHIM_TEST_WRAPPER, whose process would be the
one inspected; they are skipped otherwise.
"""

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, ok  # noqa: E402

MSG = b'Subject: hardening\n\nbody line\n'
RCPT = 'ok@example.org'


def refusal(path):
    return (f'mailshim: {path}: holds a secret and is readable by others: '
            f'run chmod o-r {path}\n')


def test_modes(env):
    cfg = env.config_for('starttls')
    os.chmod(cfg, 0o644)
    harness.refused(env, [RCPT], MSG, 78, refusal(cfg),
                    'config with a password at 0644')
    os.chmod(cfg, 0o604)
    harness.refused(env, [RCPT], MSG, 78, refusal(cfg),
                    'config with a password at 0604')
    os.chmod(cfg, 0o640)
    harness.delivered(env, [RCPT], MSG, 'config with a password at 0640')
    os.chmod(cfg, 0o600)
    harness.delivered(env, [RCPT], MSG, 'config with a password at 0600')

    # no secret in the config: its mode is the admin's business
    env.config_for('noauth_tls', name='nosecret.ini', username=None,
                   password=None)
    os.chmod(env.last_config, 0o644)
    harness.delivered(env, [RCPT], MSG, 'config without a secret at 0644')

    pw = env.write_file('pw', 'SecretKey\n', 0o644)
    env.config_for('starttls', name='pwfile.ini', password=None,
                   password_file=pw)
    os.chmod(env.last_config, 0o644)
    harness.refused(env, [RCPT], MSG, 78, refusal(pw),
                    'password_file at 0644')
    os.chmod(pw, 0o640)
    harness.delivered(env, [RCPT], MSG,
                      'password_file at 0640, its config at 0644')


def start_bs(argv, env, preexec_fn=None):
    """Start mailshim -bs; return the process once it has greeted."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env,
                         preexec_fn=preexec_fn)
    greeting = p.stdout.readline()
    if not greeting.startswith(b'220'):
        p.kill()
        out, err = p.communicate()
        diag(f'{argv}: no greeting: {greeting!r} {err!r}')
        return None
    return p


def stop_bs(p):
    p.stdin.write(b'QUIT\r\n')
    p.stdin.close()
    p.stdout.read()
    p.wait(timeout=10)


def proc_text(p, name):
    with open(f'/proc/{p.pid}/{name}') as f:
        return f.read()


def test_core_limit(env, binary):
    import resource

    def unlimited():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                  resource.RLIM_INFINITY))
    cfg = env.config_for('starttls')
    p = start_bs([binary, '-C', cfg, '-bs'], env.child_env(), unlimited)
    if not ok(p is not None, 'core limit: -bs started'):
        return
    limits = [line for line in proc_text(p, 'limits').splitlines()
              if line.startswith('Max core file size')]
    ok(len(limits) == 1 and limits[0].split()[4:6] == ['0', '0'],
       'core limit: soft and hard 0, though started unlimited')
    if not limits or limits[0].split()[4:6] != ['0', '0']:
        diag(f'{limits}')
    stop_bs(p)


def test_not_dumpable(binary):
    """Run as nobody: a dumpable process's /proc files belong to nobody,
    a non-dumpable one's to root."""
    nobody = pwd.getpwnam('nobody')
    d = tempfile.mkdtemp(prefix='mailshim-nobody-')
    try:
        os.chmod(d, 0o755)
        cfg = os.path.join(d, 'mailshim.ini')
        with open(cfg, 'w') as f:
            f.write('[relay]\nhost = 127.0.0.1\nport = 25\n')
        os.chown(cfg, nobody.pw_uid, nobody.pw_gid)
        env = {'PATH': '/usr/bin:/bin', 'HOME': d, 'LC_ALL': 'C.UTF-8'}
        setpriv = ['setpriv', f'--reuid={nobody.pw_uid}',
                   f'--regid={nobody.pw_gid}', '--clear-groups']

        # the control: any program run so is dumpable, its files nobody's
        p = subprocess.Popen(setpriv + ['sleep', '30'], env=env)
        try:
            time.sleep(0.3)
            is_(os.stat(f'/proc/{p.pid}/status').st_uid, nobody.pw_uid,
                'dumpable: the control (sleep) owns its /proc files')
        finally:
            p.kill()
            p.wait()

        p = start_bs(setpriv + [binary, '-C', cfg, '-bs'], env)
        if not ok(p is not None, 'dumpable: -bs started as nobody'):
            return
        is_(os.stat(f'/proc/{p.pid}/status').st_uid, 0,
            'dumpable: mailshim is not (its /proc files are root\'s)')
        stop_bs(p)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def privileged_copy(env, binary):
    """A setgid nogroup copy of the binary: run by root, egid != gid."""
    copy = env.path('mailshim-setgid')
    shutil.copy(binary, copy)
    os.chown(copy, 0, grp.getgrnam('nogroup').gr_gid)
    os.chmod(copy, 0o2755)
    return copy


def run_binary(env, binary, args, env_extra=None):
    env.relay.reset()
    p = subprocess.run([binary] + args, input=MSG, capture_output=True,
                       env=env.child_env(env_extra), cwd=env.dir, timeout=30)
    env.relay.wait_idle()
    return p, env.relay.messages


def test_privileged(env, binary):
    nogroup = grp.getgrnam('nogroup').gr_gid
    copy = privileged_copy(env, binary)
    cfg = env.config_for('starttls')

    # SSLKEYLOGFILE: honoured by the unprivileged binary, not by the copy
    keylog = env.path('keylog')
    p, msgs = run_binary(env, binary, ['-C', cfg, RCPT],
                         {'SSLKEYLOGFILE': keylog})
    ok(p.returncode == 0 and len(msgs) == 1 and os.path.exists(keylog)
       and os.path.getsize(keylog) > 0,
       'SSLKEYLOGFILE: unprivileged, the TLS keys are logged')
    if os.path.exists(keylog):
        os.unlink(keylog)
    p, msgs = run_binary(env, copy, ['-C', cfg, RCPT],
                         {'SSLKEYLOGFILE': keylog})
    if not ok(p.returncode == 0 and len(msgs) == 1,
              'privileged: -C honoured, delivered'):
        diag(f'{p.returncode} {p.stderr!r}')
    ok(not os.path.exists(keylog),
       'SSLKEYLOGFILE: privileged, removed from the environment')

    # TMPDIR: where the spool goes; a missing one fails unprivileged only
    missing = env.path('no-such-dir')
    p, msgs = run_binary(env, binary, ['-C', cfg, RCPT], {'TMPDIR': missing})
    ok(p.returncode != 0 and len(msgs) == 0,
       'TMPDIR: unprivileged, honoured (a missing one fails)')
    p, msgs = run_binary(env, copy, ['-C', cfg, RCPT], {'TMPDIR': missing})
    if not ok(p.returncode == 0 and len(msgs) == 1,
              'TMPDIR: privileged, removed (/tmp used)'):
        diag(f'{p.returncode} {p.stderr!r}')

    # the group is given up for good: real, effective, saved, filesystem
    def gids(argv, env_extra=None):
        p = start_bs(argv, env.child_env(env_extra))
        if p is None:
            return None
        line = [x for x in proc_text(p, 'status').splitlines()
                if x.startswith('Gid:')]
        stop_bs(p)
        return line[0].split()[1:] if line else None
    is_(gids([copy, '-C', cfg, '-bs']), ['0', '0', '0', '0'],
        'privileged -C: setgid given up (Gid: 0 0 0 0)')
    is_(gids([copy, '-bs'], {'MAILSHIM_CONFIG': cfg}), ['0', '0', '0', '0'],
        'privileged $MAILSHIM_CONFIG: setgid given up (Gid: 0 0 0 0)')
    # the control: the copy is privileged while no config is chosen
    p = subprocess.Popen([copy, '-bs'], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env.child_env({'MAILSHIM_CONFIG': None}))
    time.sleep(0.2)
    try:
        line = [x for x in proc_text(p, 'status').splitlines()
                if x.startswith('Gid:')]
        got = line[0].split()[1:3] if line else None
    except OSError:
        got = 'exited'
    p.kill()
    p.communicate()
    if got != 'exited':
        is_(got, ['0', str(nogroup)],
            'privileged, no -C: the copy runs with egid nogroup')
    else:
        diag('control skipped: the copy exited before it was inspected')


def test():
    binary = os.environ['MAILSHIM_BIN']
    with harness.Env() as env:
        test_modes(env)
        if os.geteuid() != 0 or os.environ.get('MAILSHIM_TEST_WRAPPER'):
            ok(True, '# SKIP needs root and no MAILSHIM_TEST_WRAPPER')
            return
        test_core_limit(env, binary)
        test_not_dumpable(binary)
        test_privileged(env, binary)


harness.main(test)
