#!/usr/bin/python3
"""End-to-end: the setgid install (configure --with-setgid-group) against
a local user who wants the relay's password.

The test builds mailshim again with the options of the build under test
plus --with-setgid-group, a prefix, a sysconfdir and a queue directory in
a temporary directory, writes the system config there (0600 root:root)
and runs make install: the install hooks must leave the binary setgid
(2755), the queue root:GROUP 2770 and the config root:GROUP 0640.  Then a
user who is not in the group (the "thief") tries, each attempt a case:

- to read the config, the queue, another user's queued message, or plant a
  symbolic link in the queue;
- -C and $MAILSHIM_CONFIG naming the system config (privilege is given up
  first: refused), -C with a config of their own whose password_file is
  the system's secret file;
- the sendmail flags an attacker would try to point the connection or a
  log elsewhere (-X, -O, -o..., -h, -p, -d...): the message still goes to
  the configured relay, a trap listener sees nothing, no file appears;
- the environment: SSLKEYLOGFILE, *_proxy, OPENSSL_CONF (first shown to
  break TLS for the same user running a copy of the binary without the
  setgid bit, so this case can fail);
- /proc/PID/mem, /proc/PID/environ and ptrace on a running mailshim;
- -v: the output never holds the secret or its base64 forms.

password_command in the system config runs with mailshim's group given
up: an account [cmd] (chosen with -f x@cmd.example) logs in with what a
script prints, its real, effective, saved and filesystem group IDs, its
open descriptors and the bytes on its standard input; the relay takes it
only as 'gid=G,G,G,G fds=0,1,2,3 stdin=0' (G the thief's group) although
the thief gives mailshim an extra descriptor and the message on a file as
standard input (the control: the script run so, with egid GROUP, shows
all three).

And the queue serves every user: the thief and a second user queue with
umask 077 (files are 0660, group GROUP), the thief's -qf delivers both,
and root's -qf delivers a message a user queued.

Needs root (to create the users and the group, to install setgid); the
users and the group are removed at the end.
"""

import base64
import grp
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from relay import DEFAULT_USERS  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

GROUP = 'mshtest'
THIEF = 'mshthief'
VICTIM = 'mshvictim'
SECRET = 'SecretKey'
# what password_command's script prints: its group IDs, descriptors and
# standard input.  sh -p: dash would otherwise set its effective group
# back to the real one itself, hiding what mailshim gave it.
PROBE_SCRIPT = '''#!/bin/sh -p
gid=$(awk '/^Gid:/ {print $2","$3","$4","$5}' /proc/self/status)
fds=$(ls /proc/self/fd | sort -n | paste -sd, -)
stdin=$(wc -c < /dev/stdin)
echo "gid=$gid fds=$fds stdin=$stdin"
'''
RCPT = 'ok@example.org'


def msg(tag):
    return f'Subject: {tag}\n\nbody of {tag}\n'.encode()


# ---- users, group, install -----------------------------------------------

class Accounts:
    """The group and the two users, created if missing and removed at the
    end if this test created them."""

    def __init__(self):
        self.made_users = []
        self.made_group = False

    def __enter__(self):
        try:
            grp.getgrnam(GROUP)
        except KeyError:
            subprocess.run(['groupadd', '--system', GROUP], check=True)
            self.made_group = True
        for user in (THIEF, VICTIM):
            try:
                pwd.getpwnam(user)
            except KeyError:
                subprocess.run(['useradd', '--system', '--no-create-home',
                                '--user-group', '--shell',
                                '/usr/sbin/nologin', user], check=True)
                self.made_users.append(user)
        return self

    def __exit__(self, *exc):
        for user in self.made_users:
            subprocess.run(['userdel', user], capture_output=True)
        if self.made_group:
            subprocess.run(['groupdel', GROUP], capture_output=True)


def build_options():
    """configure's options of the build under test, without the paths this
    test sets itself, and without the sanitizers: LeakSanitizer stops the
    process with ptrace, which the kernel refuses in a setgid process run
    by its user, and ASan cannot even read its options (from
    /proc/self/environ, root's in a non-dumpable process).  The rest of the
    suite runs under them."""
    builddir = os.path.dirname(os.path.dirname(os.environ['MAILSHIM_BIN']))
    p = subprocess.run([os.path.join(builddir, 'config.status'), '--config'],
                       capture_output=True, text=True, check=True)
    drop = ('--srcdir', '--prefix', '--exec-prefix', '--sbindir',
            '--sysconfdir', '--with-queue-dir', '--with-setgid-group',
            '--cache-file', '-C', '--enable-sanitizers')
    return [a for a in shlex.split(p.stdout)
            if not a.startswith(drop)]


def install(root, config_text):
    """Configure, build and install a setgid copy under root; returns the
    installed binary, or None (with diagnostics)."""
    srcdir = os.path.dirname(os.environ['MAILSHIM_TESTLIB'])
    build = os.path.join(root, 'build')
    os.makedirs(build)
    os.makedirs(os.path.join(root, 'etc'))
    cfg = os.path.join(root, 'etc', 'mailshim.ini')
    fd = os.open(cfg, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(config_text)
    steps = [
        [os.path.join(srcdir, 'configure'), '-q'] + build_options() + [
            f'--prefix={root}/usr', f'--sysconfdir={root}/etc',
            f'--with-queue-dir={root}/spool',
            f'--with-setgid-group={GROUP}'],
        ['make', '-j8', 'sendmail/mailshim'],
        ['make', 'install'],
    ]
    for argv in steps:
        p = subprocess.run(argv, cwd=build, capture_output=True, text=True)
        if p.returncode != 0:
            diag(f'{argv[0]}: exit {p.returncode}\n{p.stdout[-3000:]}'
                 f'\n{p.stderr[-3000:]}')
            return None
    return os.path.join(root, 'usr', 'sbin', 'mailshim')


def open_up(path, top):
    """Let other users traverse every directory from top down to path."""
    d = path if os.path.isdir(path) else os.path.dirname(path)
    while True:
        os.chmod(d, os.stat(d).st_mode | 0o711)
        if d == top or d == '/':
            break
        d = os.path.dirname(d)


# ---- running as a user ----------------------------------------------------

class User:
    def __init__(self, name, root):
        self.pw = pwd.getpwnam(name)
        self.name = name
        self.home = os.path.join(root, 'home', name)
        os.makedirs(self.home)
        os.chown(self.home, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(self.home, 0o700)

    def argv(self, argv):
        return ['setpriv', f'--reuid={self.pw.pw_uid}',
                f'--regid={self.pw.pw_gid}', '--init-groups', '--'] + argv

    def env(self, extra=None):
        env = {k: os.environ[k] for k in harness._PASSED_ON
               if k in os.environ}
        env.update(PATH='/usr/bin:/bin', HOME=self.home, USER=self.name,
                   LOGNAME=self.name, LC_ALL='C.UTF-8', TZ='UTC')
        env.update(extra or {})
        return env

    def run(self, argv, input=b'', extra=None, umask=0o022, timeout=30):
        p = subprocess.run(self.argv(argv), input=input, capture_output=True,
                           env=self.env(extra), cwd=self.home,
                           timeout=timeout,
                           preexec_fn=lambda: os.umask(umask))
        return p.returncode, p.stdout.decode(errors='replace'), \
            p.stderr.decode(errors='replace')

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.home, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chown(path, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(path, mode)
        return path


class Trap:
    """A listener that records every connection and what was sent on it,
    answering nothing: where an attacker would like the mail to go."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(2)
            data = b''
            try:
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            conn.close()
            self.received.append(data)

    def close(self):
        self.stop = True
        self.sock.close()


def secret_forms():
    """The secret as it could leak: plain, and in AUTH PLAIN/LOGIN base64."""
    forms = [SECRET, base64.b64encode(SECRET.encode()).decode(),
             base64.b64encode(f'\0AppKey\0{SECRET}'.encode()).decode()]
    return forms


# ---- the cases ----------------------------------------------------------

def test_layout(root, binary):
    st = os.stat(binary)
    gid = grp.getgrnam(GROUP).gr_gid
    is_((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, gid, 0o2755),
        'install: the binary is root:GROUP 2755')
    for area in ('', 'tmp', 'q', 'failed'):
        d = os.path.join(root, 'spool', area)
        st = os.stat(d)
        is_((st.st_gid, stat.S_IMODE(st.st_mode)), (gid, 0o2770),
            f'install: queue {area or "directory"} is GROUP 2770')
    st = os.stat(os.path.join(root, 'etc', 'mailshim.ini'))
    is_((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, gid, 0o640),
        'install: the config (was root:root 0600) is root:GROUP 0640')


def sent(env, run, label):
    """run() a send; pass if it exited 0 and the relay took one message,
    authenticated as AppKey (so the secret was read)."""
    env.relay.reset()
    rc, out, err = run()
    env.relay.wait_idle()
    msgs = env.relay.messages
    good = ok(rc == 0 and len(msgs) == 1 and msgs[0].auth_user == 'AppKey',
              f'{label}: delivered, authenticated with the secret')
    if not good:
        diag(f'exit {rc}, stderr {err!r}, '
             f'{[(m.auth_user, m.rcpt_tos) for m in msgs]}')
    return rc, out, err, msgs


def test_reading(root, thief):
    cfg = os.path.join(root, 'etc', 'mailshim.ini')
    for label, argv in (
            ('read the config', ['cat', cfg]),
            ('list the queue', ['ls', os.path.join(root, 'spool', 'q')]),
            ('plant a symlink in the queue',
             ['ln', '-s', cfg, os.path.join(root, 'spool', 'q', 'x')]),
            ('read the secret file', ['cat', os.path.join(root, 'etc',
                                                          'secret')])):
        rc, out, err = thief.run(argv)
        ok(rc != 0 and 'Permission denied' in err and SECRET not in out,
           f'thief: cannot {label}')


def test_config_choice(env, root, binary, thief, trap):
    cfg = os.path.join(root, 'etc', 'mailshim.ini')
    env.relay.reset()
    rc, out, err = thief.run([binary, '-C', cfg, RCPT], msg('c'))
    is_((rc, err), (78, f"mailshim: cannot read config '{cfg}': "
                        'Permission denied\n'),
        'thief -C the system config: privilege given up first, refused')
    rc, out, err = thief.run([binary, RCPT], msg('c'),
                             {'MAILSHIM_CONFIG': cfg})
    is_((rc, err), (78, f"mailshim: cannot read config '{cfg}': "
                        'Permission denied\n'),
        'thief $MAILSHIM_CONFIG=the system config: refused')
    secret = os.path.join(root, 'etc', 'secret')
    own = thief.write('own.ini', f'[evil]\nhost = 127.0.0.1\n'
                      f'port = {trap.port}\ntls = none\n'
                      f'allow_plaintext_auth = yes\nusername = AppKey\n'
                      f'password_file = {secret}\n')
    rc, out, err = thief.run([binary, '-C', own, RCPT], msg('c'))
    is_((rc, err), (78, f"mailshim: {own}:7: cannot read password_file "
                        f"'{secret}': Permission denied\n"),
        'thief -C own config with the system password_file: refused')
    env.relay.wait_idle()
    is_((env.relay.connections, trap.received),
        ({n: 0 for n in env.relay.connections}, []),
        'config choice: no connection to the relay or the trap')


def test_flags(env, root, binary, thief, trap):
    log = os.path.join(thief.home, 'xlog')
    aliases = thief.write('aliases', f'{RCPT.split("@")[0]}: evil@trap\n')
    hostport = f'127.0.0.1:{trap.port}'
    cases = [
        ['-X', log], [f'-X{log}'],
        [f'-oHost={hostport}'], ['-O', f'SmartHost=[127.0.0.1]:{trap.port}'],
        [f'-oS{hostport}'], [f'-oA{aliases}'], [f'-oQ{thief.home}'],
        ['-h', '127.0.0.1'], ['-p', f'smtp:{hostport}'], ['-d0-99.127'],
        ['-L', 'evil'], ['-A', 'c'], [f'-Mr{hostport}'], ['-G'], ['-U'],
        ['-oem'], ['-odi'], ['-B8BITMIME'],
    ]
    for flags in cases:
        label = 'thief ' + ' '.join(flags)
        rc, out, err, msgs = sent(
            env, lambda: thief.run([binary] + flags + [RCPT], msg('f')),
            label)
        if msgs:
            is_(msgs[0].rcpt_tos, [RCPT], f'{label}: to the recipient')
    ok(not os.path.exists(log), 'flags: -X wrote no file')
    is_(trap.received, [], 'flags: the trap saw no connection')


def test_environment(env, root, binary, thief, trap):
    keylog = os.path.join(thief.home, 'keys')
    proxy = f'socks5h://127.0.0.1:{trap.port}'
    sent(env, lambda: thief.run([binary, RCPT], msg('e'),
                                {'SSLKEYLOGFILE': keylog}),
         'thief SSLKEYLOGFILE')
    ok(not os.path.exists(keylog), 'SSLKEYLOGFILE: no TLS keys written')
    sent(env, lambda: thief.run([binary, RCPT], msg('e'), {
        'all_proxy': proxy, 'ALL_PROXY': proxy, 'smtp_proxy': proxy,
        'SMTP_PROXY': proxy, 'https_proxy': proxy, 'no_proxy': ''}),
        'thief *_proxy')
    is_(trap.received, [], '*_proxy: the trap saw no connection')

    # OPENSSL_CONF: leaves no cipher the relay shares.  The control: the
    # binary without the setgid bit, run by the thief with a copy of the
    # config of their own, fails with it.
    bad = thief.write('openssl.cnf', (
        'openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\n'
        'system_default = sys\n[sys]\nCipherString = aNULL\n'
        'Ciphersuites = TLS_AES_128_CCM_8_SHA256\n'), 0o644)
    with open(os.path.join(root, 'etc', 'mailshim.ini')) as f:
        copy = thief.write('copy.ini', f.read())
    plain = os.path.join(thief.home, 'mailshim-plain')
    shutil.copy(os.environ['MAILSHIM_BIN'], plain)
    os.chmod(plain, 0o755)
    env.relay.reset()
    rc, out, err = thief.run([plain, '-C', copy, '-odi', '-oeq', RCPT],
                             msg('e'), {'OPENSSL_CONF': bad})
    env.relay.wait_idle()
    ok(rc != 0 and env.relay.messages == [],
       'OPENSSL_CONF: the control (not setgid) cannot do TLS with it')
    like(err, r'TLS|SSL|handshake|cipher',
         'OPENSSL_CONF: the control failed in the TLS handshake')
    sent(env, lambda: thief.run([binary, RCPT], msg('e'),
                                {'OPENSSL_CONF': bad}),
         'thief OPENSSL_CONF (setgid: removed)')


PROBE = r'''
import ctypes, errno, os, sys
pid = int(sys.argv[1])
for name in ('mem', 'environ'):
    try:
        open(f'/proc/{pid}/{name}', 'rb').read(1)
        print(name, 'read')
    except OSError as e:
        print(name, errno.errorcode[e.errno])
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
print('ptrace', 'attached' if r == 0 else errno.errorcode[ctypes.get_errno()])
'''


def test_process(root, binary, thief):
    p = subprocess.Popen(thief.argv([binary, '-bs']), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=thief.env(), cwd=thief.home)
    greeting = p.stdout.readline()
    if not ok(greeting.startswith(b'220'), 'process: -bs greets'):
        p.kill()
        diag(repr(p.communicate()))
        return
    rc, out, err = thief.run(['/usr/bin/python3', '-c', PROBE, str(p.pid)])
    is_(out, 'mem EACCES\nenviron EACCES\nptrace EPERM\n',
        'process: the thief cannot read its memory or environment, '
        'nor ptrace it')
    p.stdin.write(b'QUIT\r\n')
    p.stdin.close()
    p.stdout.read()
    p.wait(timeout=10)


def test_verbose(env, binary, thief):
    rc, out, err, msgs = sent(
        env, lambda: thief.run([binary, '-v', RCPT], msg('v')), 'thief -v')
    leaks = [f for f in secret_forms() if f in out or f in err]
    is_(leaks, [], '-v: no form of the secret in the output')
    ok('AUTH' in err, '-v: the dialogue is shown (so the check means '
       'something)')


def queue_files(root):
    q = os.path.join(root, 'spool', 'q')
    return sorted(os.path.join(q, n) for n in os.listdir(q))


def test_queue(env, root, binary, thief, victim, good_cfg, down_cfg):
    cfg = os.path.join(root, 'etc', 'mailshim.ini')
    gid = grp.getgrnam(GROUP).gr_gid

    def set_config(text):
        with open(cfg, 'w') as f:
            f.write(text)

    set_config(down_cfg)
    for user in (thief, victim):
        rc, out, err = user.run([binary, RCPT], msg(f'q-{user.name}'),
                                umask=0o077)
        like(err, r'\Amailshim: queued as [0-9a-f.]+: ',
             f'queue: {user.name} (umask 077), relay down: queued')
        is_(rc, 0, f'queue: {user.name}: exit 0')
    files = queue_files(root)
    modes = sorted((os.stat(f).st_uid, os.stat(f).st_gid,
                    stat.S_IMODE(os.stat(f).st_mode)) for f in files)
    is_(modes, sorted([(thief.pw.pw_uid, gid, 0o660),
                       (victim.pw.pw_uid, gid, 0o660)]),
        'queue: each file its sender\'s, group GROUP, 0660 despite umask 077')
    victim_file = [f for f in files
                   if os.stat(f).st_uid == victim.pw.pw_uid]
    if victim_file:
        rc, out, err = thief.run(['cat', victim_file[0]])
        ok(rc != 0 and 'body of' not in out,
           'queue: the thief cannot read the other user\'s message')

    set_config(good_cfg)
    env.relay.reset()
    rc, out, err = thief.run([binary, '-qf'])
    env.relay.wait_idle()
    got = sorted((m.email['Subject'], m.auth_user) for m in env.relay.messages)
    is_((rc, got), (0, [(f'q-{THIEF}', 'AppKey'), (f'q-{VICTIM}', 'AppKey')]),
        'queue: the thief\'s -qf delivers both users\' messages')
    is_(queue_files(root), [], 'queue: empty after the run')

    # root's run (the systemd timer) takes what a user queued
    set_config(down_cfg)
    victim.run([binary, RCPT], msg('q-root'), umask=0o077)
    set_config(good_cfg)
    env.relay.reset()
    p = subprocess.run([binary, '-qf'], capture_output=True,
                       env=thief.env({'HOME': root}), timeout=30)
    env.relay.wait_idle()
    is_((p.returncode, [m.email['Subject'] for m in env.relay.messages]),
        (0, ['q-root']), 'queue: root\'s -qf delivers a user\'s message')


def test_password_command(env, root, binary, thief):
    gid = grp.getgrnam(GROUP).gr_gid
    script = os.path.join(root, 'bin', 'probe')
    data = msg('pc')
    msgfile = thief.write('message', data.decode(), 0o644)
    extra = open(msgfile, 'rb')
    try:
        with open(msgfile, 'rb') as stdin:
            p = subprocess.run(
                ['setpriv', f'--reuid={thief.pw.pw_uid}',
                 f'--rgid={thief.pw.pw_gid}', f'--egid={gid}',
                 '--init-groups', '--', script],
                stdin=stdin, capture_output=True, text=True,
                pass_fds=[extra.fileno()], env=thief.env())
        ok(f',{gid},' in p.stdout and
           f',{extra.fileno()}' in p.stdout and
           p.stdout.endswith(f'stdin={len(data)}\n'),
           'password_command: the control shows egid, an extra descriptor '
           'and stdin')
        if not p.stdout.endswith(f'stdin={len(data)}\n'):
            diag(repr(p))
        env.relay.reset()
        with open(msgfile, 'rb') as stdin:
            p = subprocess.run(
                thief.argv([binary, '-f', 'x@cmd.example', RCPT]),
                stdin=stdin, capture_output=True, env=thief.env(),
                cwd=thief.home, pass_fds=[extra.fileno()], timeout=30)
    finally:
        extra.close()
    env.relay.wait_idle()
    is_((p.returncode, p.stderr, len(env.relay.messages)), (0, b'', 1),
        'password_command: the thief\'s message went through [cmd]')
    is_([a for sess in env.relay.sessions for a in sess.auth_attempts],
        [('PLAIN', 'pc-priv', True)],
        'password_command: ran with the caller\'s group everywhere, fds '
        '0-2 only, empty stdin')


def test():
    if os.geteuid() != 0:
        ok(False, 'needs root: to create users and a group, and install '
           'setgid')
        return
    with Accounts():
        g = pwd.getpwnam(THIEF).pw_gid
        users = dict(DEFAULT_USERS)
        users['pc-priv'] = f'gid={g},{g},{g},{g} fds=0,1,2,3 stdin=0'
        with harness.Env(users=users) as env:
            root = tempfile.mkdtemp(prefix='mailshim-setgid-')
            trap = Trap()
            try:
                run_all(env, root, trap)
            finally:
                trap.close()
                if os.environ.get('MAILSHIM_KEEP_TMP'):
                    diag(f'keeping {root}')
                else:
                    shutil.rmtree(root, ignore_errors=True)


def run_all(env, root, trap):
    os.chmod(root, 0o755)
    # the relay's CA must be readable by the users' mailshim
    open_up(env.relay.ca_file, env.dir)
    os.chmod(env.relay.ca_file, 0o644)
    good_cfg = open(env.config_for('starttls', queue_dir=None,
                                   account='test')).read()
    os.makedirs(os.path.join(root, 'bin'))
    script = os.path.join(root, 'bin', 'probe')
    with open(script, 'w') as f:
        f.write(PROBE_SCRIPT)
    os.chmod(script, 0o755)
    good_cfg += ('\n[cmd]\nhost = 127.0.0.1\n'
                 f'port = {env.ports["starttls"]}\n'
                 f'ca_file = {env.relay.ca_file}\nusername = pc-priv\n'
                 f'password_command = {script}\n'
                 'match_from = *@cmd.example\n')
    down_cfg = good_cfg.replace(f'port = {env.ports["starttls"]}\n',
                                f'port = {harness.closed_port()}\n')
    binary = install(root, good_cfg)
    if not ok(binary is not None, 'install: configure, make, make install'):
        return
    gid = grp.getgrnam(GROUP).gr_gid
    secret = os.path.join(root, 'etc', 'secret')
    with open(secret, 'w') as f:
        f.write(SECRET + '\n')
    os.chown(secret, 0, gid)
    os.chmod(secret, 0o640)
    thief = User(THIEF, root)
    victim = User(VICTIM, root)
    os.chmod(os.path.join(root, 'home'), 0o755)

    test_layout(root, binary)
    test_reading(root, thief)
    sent(env, lambda: thief.run([binary, RCPT], msg('plain')),
         'thief sends as anyone may')
    test_config_choice(env, root, binary, thief, trap)
    test_flags(env, root, binary, thief, trap)
    test_environment(env, root, binary, thief, trap)
    test_process(root, binary, thief)
    test_verbose(env, binary, thief)
    test_password_command(env, root, binary, thief)
    test_queue(env, root, binary, thief, victim, good_cfg, down_cfg)


harness.main(test)
