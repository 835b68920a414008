#!/usr/bin/python3
"""End-to-end: cron, cronie, anacron and systemd-cron, the real programs,
mail their jobs' output through mailshim.

The programs are Debian's binaries, unpacked by compat-tests/callers-fetch
and never installed (cron and cronie conflict, cron Recommends a mail
transport agent, anacron's maintainer scripts would start it on the host):
  - cron (Debian's 3.0pl1), anacron and systemd-cron as Debian 12 ships
    them;
  - cronie, which Debian 12 lacks, from Debian 13 (trixie), run with
    trixie's dynamic loader and C library (libc6/trixie, also unpacked:
    its crond needs glibc 2.38) and the host's other libraries;
  - of systemd-cron, mail_on_failure (cron-failure@.service's program, a
    Python script), with systemctl replaced by a script that answers its
    three questions (User, Environment, status): systemd-cron's jobs are
    systemd timers and units, which need systemd as init.

Each program runs in its own private mount, UTS and PID namespaces
(killing the namespace's init ends all it started), where:
  - the host name is host1.example.net;
  - /run and /var/spool are empty tmpfs (pid files, reboot markers, the
    crontab spool /var/spool/cron/crontabs, the one both crons read), as
    are /etc/cron.d and /etc/cron.{hourly,daily,weekly,monthly,yearly}
    where they exist, and /etc/crontab and /etc/anacrontab, where they
    exist, are an empty file: the host's crontabs are never read, and none
    of the host's files is written;
  - /etc/pam.d shows the package's own PAM file (cron, cronie) over the
    host's, and /usr/sbin a wrapper as sendmail (the mailer path compiled
    into all four), both read-only overlays.
The wrapper (a Python script) records its argv, its uid, what its stdin,
stdout and stderr are and the bytes on its stdin, then runs a copy of the
built mailshim with -C and the program's own config on the same stdin
(rewound if a file, a new pipe if a pipe) and records its exit status.

The cron daemons read one crontab, that of mshcron (an unprivileged system
user, created if missing and left), with two jobs: one mailed to its owner
(MAILTO unset: the bare "mshcron", which mailshim qualifies with
local_domain) and one with MAILTO=a@example.org,b@example.org.  Each job
prints UTF-8, a line that is a lone ".", a line after it, and a line on
stderr.  Cron runs jobs at minute boundaries: the daemons start together,
and each is killed once its two mails are in (within about 60 s).  anacron
runs as root, as Debian runs it, one job at once (-d -f -n with an
anacrontab and a spool directory of the test's) and exits.

Checked for every mail: the wrapper was called once per job with the argv
of /work/shared/CALLERS.md (systemd-cron 1.15 writes -B8BITMIME glued), as
the user the program runs jobs as, and mailshim exited 0; the relay got
each job's output once, with the envelope (sender, recipients) and every
byte as expected: the headers the program wrote, the Date: and Message-ID:
mailshim adds, the job's output with CRLF; with -i (cron, cronie,
systemd-cron) the lone "." is an ordinary line, without it (anacron) it
ends the message, as mailshim(8) says.  And independently: the message is
what the program wrote on mailshim's stdin, line ends made CRLF, mailshim's
headers added, cut at a lone "." without -i.

stdout, stderr, stdin: the program, not its caller, decides what mailshim's
are, so each runs three times: its own stdout and stderr a file (as under
systemd, which gives the journal), /dev/null (as an init script's
start-stop-daemon, or anacron's own fork to the background, leaves them)
and closed.  What mailshim gets (checked):
  - cron and cronie: stdin a pipe; stdout and stderr the daemon's own;
  - anacron: stdin the job's output as a regular file (deleted); stdout
    and stderr anacron's own (-d; without it anacron makes them /dev/null);
  - mail_on_failure: stdin a pipe, stdout and stderr its own.
So stdin is a file for anacron only: the others always write to a pipe.
With their stdout and stderr closed, Debian cron and anacron break their
own jobs, the descriptors they open taking the free numbers 1 and 2: the
job's writes fail (Debian cron mails the shell's "I/O error" lines), and
anacron mails its own -d log lines instead of the job's output.  Their
mail is then checked against what they wrote; cronie's and
mail_on_failure's against the job's output, as in the other modes.
docs/COMPAT.md has one row per program (the argv of the job mailed to its
owner), through harness.compat_row.

Needs root (namespaces, the user).  A package that cannot be fetched is a
failure, not a skip.
"""

import email
import email.policy
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, ok  # noqa: E402

USER = 'mshcron'
HOSTNAME = 'host1.example.net'
SHORT_HOST = HOSTNAME.split('.')[0]
DOMAIN = 'example.net'             # config_for()'s local_domain
MAILTO = 'a@example.org,b@example.org'
FETCH = os.path.join(os.environ['MAILSHIM_TESTLIB'], 'callers-fetch')
PACKAGES = ('cron', 'anacron', 'systemd-cron', 'cronie/trixie',
            'libc6/trixie')
MODES = ('file', 'null', 'closed')
# How long the cron daemons may take to mail both jobs: to the next minute
# boundary, and a few seconds for the jobs and mailshim.
CRON_DEADLINE = 75

# What mailshim adds after the program's headers: Date: (in the zone the
# program passes on, if any) and Message-ID: in local_domain.
DATE = rb'Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [1-3]?\d ' \
       rb'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} ' \
       rb'\d\d:\d\d:\d\d [+-]\d{4}'
MSGID = rb'Message-ID: <[^<>@\s]+@example\.net>'

JOB = '''#!/bin/sh
# a job of t-cron.py: its output is what the daemon mails
echo "$1: job ran as $(id -un)"
echo 'Grüße aus der Crontab – 日本語'
echo .
echo "$1: after the lone dot"
echo "$1: on stderr" >&2
'''


def job_lines(tag, user):
    """What JOB prints (its stdout and stderr are one pipe or file)."""
    return [f'{tag}: job ran as {user}',
            'Grüße aus der Crontab – 日本語', '.',
            f'{tag}: after the lone dot', f'{tag}: on stderr']


# Run inside the new namespaces as root: $1 the program's directory (its
# overlay ov/, an empty file, maybe a crontab), $2 the package's PAM
# directory or "", $3 the mode (null, closed: its stdout and stderr
# /dev/null, closed); then the program and its arguments.
NS_SCRIPT = r'''
set -e
dir=$1 pam=$2 mode=$3
shift 3
hostname @HOSTNAME@
mount -t tmpfs -o mode=0755 mailshim-test /run
mount -t tmpfs -o mode=0755 mailshim-test /var/spool
for d in /etc/cron.d /etc/cron.hourly /etc/cron.daily /etc/cron.weekly \
    /etc/cron.monthly /etc/cron.yearly; do
	[ ! -d "$d" ] || mount -t tmpfs -o mode=0755 mailshim-test "$d"
done
for f in /etc/crontab /etc/anacrontab; do
	[ ! -e "$f" ] || mount --bind "$dir/empty" "$f"
done
mkdir -p /var/spool/cron/crontabs
chmod 1730 /var/spool/cron/crontabs
if [ -f "$dir/crontab" ]; then
	install -o @USER@ -g @USER@ -m 0600 "$dir/crontab" \
	    /var/spool/cron/crontabs/@USER@
fi
mount -t overlay mailshim-test -o "lowerdir=$dir/ov:/usr/sbin" /usr/sbin
[ -z "$pam" ] ||
    mount -t overlay mailshim-test -o "lowerdir=$pam:/etc/pam.d" /etc/pam.d
case $mode in
null) exec >/dev/null 2>&1 ;;
closed) exec >&- 2>&- ;;
esac
"$@"
'''.replace('@HOSTNAME@', HOSTNAME).replace('@USER@', USER)

# /usr/sbin/sendmail in the namespaces.  Nothing is opened before the
# descriptors are read; what Python opens later is close-on-exec.
WRAPPER = '''#!/usr/bin/python3 -I
# /usr/sbin/sendmail for t-cron.py: records how it was called and its
# input, runs mailshim on the same input, records its exit status.
import os
fds = []
for n in (0, 1, 2):
    try:
        fds.append(os.readlink(f'/proc/self/fd/{{n}}'))
    except OSError:
        fds.append('closed')
import json, stat, subprocess, sys, tempfile
fd, rec = tempfile.mkstemp(dir={rec!r}, prefix='call.')
os.close(fd)
data, start = b'', None
if fds[0] != 'closed':
    if stat.S_ISREG(os.fstat(0).st_mode):
        start = os.lseek(0, 0, os.SEEK_CUR)
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        data += chunk
with open(rec + '.stdin', 'wb') as f:
    f.write(data)
command = {prefix!r} + [{mailshim!r}, '-C', {config!r}] + sys.argv[1:]
env = dict(os.environ, **{sanitizers!r})
if start is not None:
    os.lseek(0, start, os.SEEK_SET)
    rc = subprocess.call(command, env=env)
else:
    r, w = os.pipe()
    child = subprocess.Popen(command, stdin=r, env=env)
    os.close(r)
    try:
        os.write(w, data)
    except BrokenPipeError:
        pass
    os.close(w)
    rc = child.wait()
with open(rec + '.tmp', 'w') as f:
    json.dump(dict(argv=sys.argv[1:], uid=os.getuid(), fds=fds, rc=rc), f)
os.rename(rec + '.tmp', rec + '.json')
sys.exit(rc if rc >= 0 else 128 - rc)
'''

# systemctl for mail_on_failure: `show UNIT --property=User`,
# `show UNIT --property=Environment` and `status UNIT` (3: not running).
SYSTEMCTL = '''#!/bin/sh
# systemctl for t-cron.py: what a failed unit of systemd-cron's shows
case "$1 $3" in
"show --property=User") echo "User=@USER@" ;;
"show --property=Environment") echo "Environment=" ;;
"status ")
	cat "$(dirname "$0")/status"
	exit 3
	;;
*)
	echo "systemctl (t-cron.py): unexpected: $*" >&2
	exit 1
	;;
esac
'''.replace('@USER@', USER)
STATUS = '''\u00d7 {UNIT} - [Cron] "0 3 * * * /usr/local/bin/backup"
     Loaded: loaded (/run/systemd/generator/{UNIT}; generated)
     Active: failed (Result: exit-code) since Sun 2025-11-23 03:00:02 UTC
    Process: 4242 ExecStart=/usr/local/bin/backup (code=exited, status=1)
   Main PID: 4242 (code=exited, status=1/FAILURE)

Nov 23 03:00:01 host1 backup[4242]: Sicherung gestartet \u2013 Grüße
Nov 23 03:00:02 host1 backup[4242]: .
Nov 23 03:00:02 host1 systemd[1]: {UNIT}: Failed with result 'exit-code'.
'''


def unit(p):
    """The failed unit mail_on_failure reports on, one per mode (short: a
    Subject: over 78 characters would be folded)."""
    return f'cron-{USER}-backup-{MODES.index(p.mode)}.service'


ANACRONTAB = '''# t-cron.py: Debian's /etc/anacrontab, with one job
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
HOME=/root
LOGNAME=root

1\t5\t{name}\t{job} {name}-default
'''


# ---- the user, the packages, the programs' directories ----------------------

def ensure_user():
    """The crontab's owner: created if missing, and left for the next run
    (a parallel useradd is waited for)."""
    for _ in range(50):
        try:
            return pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(['useradd', '--system', '--no-create-home',
                            '--home-dir', '/', '--user-group', '--shell',
                            '/usr/sbin/nologin', USER], capture_output=True)
        try:
            return pwd.getpwnam(USER)
        except KeyError:
            time.sleep(0.2)
    raise RuntimeError(f'cannot create the user {USER}')


def fetch():
    """{package: (directory, version)} from callers-fetch; bails out (a
    failure) if it fails."""
    p = subprocess.run([FETCH] + list(PACKAGES), capture_output=True,
                       text=True)
    dirs = p.stdout.split()
    if p.returncode != 0 or len(dirs) != len(PACKAGES):
        harness.bail_out(f'callers-fetch {" ".join(PACKAGES)} failed',
                         f'exit {p.returncode}\n{p.stderr}')
    found = {}
    for package, root in zip(PACKAGES, dirs):
        v = subprocess.run(['dpkg-deb', '-f', root + '.deb', 'Version'],
                           capture_output=True, text=True, check=True)
        found[package.split('/')[0]] = (root, v.stdout.strip())
    return found


class Call:
    """One run of the wrapper."""

    def __init__(self, path):
        with open(path) as f:
            rec = json.load(f)
        with open(path[:-len('.json')] + '.stdin', 'rb') as f:
            self.stdin = f.read()
        self.args, self.uid, self.rc = rec['argv'], rec['uid'], rec['rc']
        self.raw_fds = rec['fds']
        self.fds = tuple(harness.fd_kind(t) for t in rec['fds'])


class Program:
    """One program in one mode: its directory (wrapper overlay, records,
    config, queue, crontab...) and, once started, its namespace."""

    def __init__(self, env, name, mode, pw, shared, pam=None):
        self.env, self.mode, self.pw, self.pam = env, mode, pw, pam
        self.name = name if mode == 'file' else f'{name}-{mode}'
        self.dir = env.path(self.name)
        self.rec = os.path.join(self.dir, 'rec')
        self.output = os.path.join(self.dir, 'output')
        self.proc = None
        for sub in ('', 'ov', 'rec', 'queue', 'spool'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        for sub in ('rec', 'queue'):
            os.chown(os.path.join(self.dir, sub), pw.pw_uid, pw.pw_gid)
            os.chmod(os.path.join(self.dir, sub), 0o700)
        self.write('empty', '')
        self.config = env.config_for(
            'starttls', name=f'{self.name}/mailshim.ini', ca_file=shared.ca,
            queue_dir=os.path.join(self.dir, 'queue'))
        os.chown(self.config, pw.pw_uid, pw.pw_gid)
        sanitizers = {k: os.environ[k] for k in harness._PASSED_ON
                      if k != 'PATH' and k in os.environ}
        self.write('ov/sendmail', WRAPPER.format(
            rec=self.rec, mailshim=shared.mailshim, config=self.config,
            prefix=shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')),
            sanitizers=sanitizers), 0o755)

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.dir, name)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def start(self, argv, env):
        """Start argv in new namespaces; its stdout and stderr the file
        output (NS_SCRIPT makes them /dev/null or closed in those modes)."""
        command = ['unshare', '--mount', '--uts', '--pid', '--fork',
                   '--kill-child', '--mount-proc', '--propagation',
                   'private', '--', '/bin/sh', '-c', NS_SCRIPT, 'ns',
                   self.dir, self.pam or '', self.mode] + argv
        with open(self.output, 'wb') as out:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=env, cwd='/')

    def run(self, argv, env, timeout=30):
        """Run a program that ends by itself; its exit status (None if it
        had to be killed)."""
        self.start(argv, env)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return None

    def stop(self):
        """Kill the namespace: SIGKILL to unshare kills its child
        (--kill-child), the namespace's init, and so all in it."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def calls(self):
        """The wrapper's finished calls, in no particular order."""
        return [Call(os.path.join(self.rec, f))
                for f in sorted(os.listdir(self.rec)) if f.endswith('.json')]

    def said(self):
        with open(self.output, 'rb') as f:
            return f.read().decode('utf-8', 'backslashreplace')


def daemon_env(extra=None):
    """The environment a service manager gives a daemon."""
    env = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:'
                   '/sbin:/bin', 'LANG': 'C.UTF-8', 'TZ': 'UTC'}
    env.update(extra or {})
    return env


# ---- checks -----------------------------------------------------------------

def shim_view(stdin, dot_ends):
    """A regex for what mailshim makes of stdin: line ends CRLF, Date: and
    Message-ID: added after the headers unless there, and, if dot_ends (no
    -i), the message cut before a line that is a lone "."."""
    lines = stdin.split(b'\n')
    if lines and lines[-1] == b'':
        lines.pop()
    lines = [line[:-1] if line.endswith(b'\r') else line for line in lines]
    blank = lines.index(b'') if b'' in lines else len(lines)
    head, body = lines[:blank], lines[blank + 1:]
    if dot_ends and b'.' in body:
        body = body[:body.index(b'.')]
    added = []
    if not any(h.lower().startswith(b'date:') for h in head):
        added.append(DATE)
    if not any(h.lower().startswith(b'message-id:') for h in head):
        added.append(MSGID)
    return b'^' + b''.join(re.escape(h) + b'\r\n' for h in head) + \
        b''.join(a + b'\r\n' for a in added) + b'\r\n' + \
        b''.join(re.escape(line) + b'\r\n' for line in body) + b'\\Z'


def check_message(tag, msgs, sender, rcpts, headers, body=None, call=None,
                  dot_ends=False, show_body=False):
    """One message, from sender to rcpts, exactly headers (each a str, or
    bytes: a regex), mailshim's Date: (unless the program wrote one) and
    Message-ID:, a blank line and body (lines; None: not checked here,
    shown if show_body).  With call, the message must also be what
    mailshim got on stdin (dot_ends: without -i)."""
    if not is_(len(msgs), 1, f'{tag}: the relay got it once'):
        return
    m = msgs[0]
    is_(m.mail_from, sender, f'{tag}: MAIL FROM')
    is_(sorted(m.rcpt_tos), sorted(rcpts), f'{tag}: RCPT TO')
    head = [h if isinstance(h, bytes) else re.escape(h.encode())
            for h in headers]
    if not any(h.startswith(b'Date') for h in head):
        head.append(DATE)
    pattern = b'^' + b''.join(h + b'\r\n' for h in head) + MSGID + \
        b'\r\n\r\n'
    if body is not None:
        pattern += b''.join(re.escape(line.encode()) + b'\r\n'
                            for line in body) + b'\\Z'
    if not ok(re.search(pattern, m.data),
              f'{tag}: the message, exactly' if body is not None
              else f'{tag}: the headers, exactly'):
        diag('got:\n' + m.data.decode('utf-8', 'backslashreplace'))
        diag('expected headers:\n' + '\n'.join(
            h if isinstance(h, str) else h.decode() for h in headers))
        if body is not None:
            diag('expected body:\n' + '\n'.join(body))
    elif show_body:
        diag(f'{tag}: the body:\n' + m.data.split(b'\r\n\r\n', 1)[1]
             .decode('utf-8', 'backslashreplace'))
    if call is not None and not ok(
            re.search(shim_view(call.stdin, dot_ends), m.data),
            f'{tag}: what mailshim got on stdin, as mailshim(8) says'):
        diag(f'stdin: {call.stdin!r}\nrelay: {m.data!r}')


def check_calls(tag, calls, argvs, uid, fds):
    """The wrapper's calls: argvs (a list of argv, any order), each as uid,
    with stdin, stdout, stderr fds, mailshim exiting 0."""
    good = is_(sorted(c.args for c in calls), sorted(argvs),
               f'{tag}: the argv mailshim got')
    good &= is_([c.uid for c in calls], [uid] * len(argvs),
                f'{tag}: mailshim ran as uid {uid}')
    good &= is_([c.rc for c in calls], [0] * len(argvs),
                f'{tag}: mailshim exits 0')
    good &= is_([c.fds for c in calls], [fds] * len(argvs),
                f"{tag}: mailshim's stdin, stdout, stderr: "
                f"{', '.join(fds)}")
    if not good:
        diag('\n'.join(f'{c.args} uid={c.uid} rc={c.rc} {c.raw_fds}'
                       for c in calls))


def own_fds(mode, stdin):
    """What mailshim's descriptors are when a program passes its own
    stdout and stderr on."""
    return (stdin,) + {'file': ('file', 'file'), 'null': ('null', 'null'),
                       'closed': ('closed', 'closed')}[mode]


CLAIMED = set()                    # the seq of every message looked for


def by_subject(env, subject):
    """The relay's messages whose Subject: line is subject."""
    line = f'\r\nSubject: {subject}\r\n'.encode()
    found = [m for m in env.relay.messages if line in b'\r\n' + m.data]
    CLAIMED.update(m.seq for m in found)
    return found


# ---- cron and cronie --------------------------------------------------------

class Cron:
    """A cron daemon in one mode, with the crontab of USER."""

    def __init__(self, env, kind, mode, pw, shared, pkg):
        self.kind = kind                      # 'cron' or 'cronie'
        self.p = Program(env, kind, mode, pw, shared,
                         pam=os.path.join(pkg, 'etc/pam.d'))
        self.job = shared.job
        self.running = None
        self.p.write('crontab',
                     f'# t-cron.py: one job mailed to its owner, one to '
                     f'MAILTO\n'
                     f'* * * * * {self.job} {self.p.name}-default\n'
                     f'MAILTO={MAILTO}\n'
                     f'* * * * * {self.job} {self.p.name}-mailto\n')

    def jobs(self):
        """(tag, To:, recipients) of the two jobs."""
        return [(f'{self.p.name}-default', USER, [f'{USER}@{DOMAIN}']),
                (f'{self.p.name}-mailto', MAILTO, MAILTO.split(','))]

    def subject(self, tag):
        return f'Cron <{USER}@{SHORT_HOST}> {self.job} {tag}'

    def argv(self, to):
        if self.kind == 'cron':
            # Debian cron: the recipient an argument, MAILTO as it is
            return ['-FCronDaemon', '-i', '-B8BITMIME', '-oem', to]
        # cronie: -t (recipients from To:), -f the crontab's owner
        return ['-FCronDaemon', '-i', '-odi', '-oem', '-oi', '-t', '-f', USER]

    def headers(self, tag, to):
        mailto = [f'X-Cron-Env: <MAILTO={MAILTO}>'] if to == MAILTO else []
        if self.kind == 'cron':
            return ['From: root (Cron Daemon)', f'To: {to}',
                    f'Subject: {self.subject(tag)}', 'MIME-Version: 1.0',
                    'Content-Type: text/plain; charset=UTF-8',
                    'Content-Transfer-Encoding: 8bit'] + mailto + \
                ['X-Cron-Env: <SHELL=/bin/sh>', 'X-Cron-Env: <HOME=/>',
                 'X-Cron-Env: <PATH=/usr/bin:/bin>',
                 f'X-Cron-Env: <LOGNAME={USER}>']
        return [f'From: "(Cron Daemon)" <{USER}>', f'To: {to}',
                f'Subject: {self.subject(tag)}', 'MIME-Version: 1.0',
                'Content-Type: text/plain; charset=UTF-8',
                'Content-Transfer-Encoding: 8bit',
                'Auto-Submitted: auto-generated', 'Precedence: bulk',
                'X-Cron-Env: <LANG=C.UTF-8>'] + mailto + \
            ['X-Cron-Env: <SHELL=/bin/sh>', 'X-Cron-Env: <HOME=/>',
             'X-Cron-Env: <PATH=/usr/bin:/bin:/usr/sbin:/sbin>',
             f'X-Cron-Env: <LOGNAME={USER}>', f'X-Cron-Env: <USER={USER}>']

    def stop(self):
        self.running = self.p.proc.poll() is None
        self.p.stop()

    def mailed(self, env):
        return all(by_subject(env, self.subject(tag))
                   for tag, _, _ in self.jobs()) and \
            len(self.p.calls()) >= len(self.jobs())

    def check(self, env):
        p = self.p
        if not ok(self.running,
                  f'{p.name}: the daemon ran until its mails were in'):
            diag(f'{p.name} said:\n{p.said()}')
        # with its stdout and stderr closed, Debian cron loses its jobs'
        # output (see above): what it wrote is checked
        lost = self.kind == 'cron' and p.mode == 'closed'
        for tag, to, rcpts in self.jobs():
            # the wrapper's call that had this job's mail on stdin
            subject = f'\nSubject: {self.subject(tag)}\n'.encode()
            call = next((c for c in p.calls() if subject in c.stdin), None)
            ok(call is not None, f'{tag}: the wrapper was called')
            check_message(tag, by_subject(env, self.subject(tag)),
                          f'{USER}@{DOMAIN}', rcpts, self.headers(tag, to),
                          None if lost else job_lines(tag, USER), call,
                          show_body=lost)
        check_calls(p.name, p.calls(), [self.argv(to) for _, to, _ in
                                        self.jobs()],
                    p.pw.pw_uid, own_fds(p.mode, 'pipe'))


def wait_crons(env, crons, started):
    """Kill each daemon once its two mails are in (a job runs every
    minute), or at the deadline; note whether it was still running."""
    waiting = list(crons)
    while waiting and time.monotonic() - started < CRON_DEADLINE:
        for c in list(waiting):
            if c.p.proc.poll() is not None or c.mailed(env):
                waiting.remove(c)
                c.stop()
        time.sleep(0.2)
    for c in waiting:
        c.stop()
    env.relay.wait_idle()
    diag(f'the cron daemons ran {time.monotonic() - started:.1f} s')


# ---- anacron ----------------------------------------------------------------

def check_anacron(env, p, rc):
    """anacron ran its job and mailed it without -i: the lone "." ends
    the message."""
    tag = f'{p.name}-default'
    said = p.said()
    if not is_(rc, 0, f'{p.name}: anacron exits 0'):
        diag(said)
    if p.mode == 'file':
        is_([line for line in said.splitlines() if line.startswith('Job `')],
            [f"Job `{p.name}' started",
             f"Job `{p.name}' terminated (mailing output)"],
            f'{p.name}: what anacron says (-d)')
    else:
        is_(said, '', f'{p.name}: nothing in the output file')
    env.relay.wait_idle()
    calls = p.calls()
    lines = job_lines(tag, 'root')
    check_message(
        tag, by_subject(env, f"Anacron job '{p.name}' on {HOSTNAME}"),
        f'root@{DOMAIN}', [f'root@{DOMAIN}'],
        ['From: Anacron <root>', 'To: root',
         f"Subject: Anacron job '{p.name}' on {HOSTNAME}",
         'Content-Type: text/plain; charset=UTF-8'],
        # closed: anacron's log lines, not the job's output (see above)
        None if p.mode == 'closed' else lines[:lines.index('.')],
        calls[0] if calls else None, dot_ends=True,
        show_body=p.mode == 'closed')
    check_calls(p.name, calls, [['-FAnacron', '-odi', 'root']], 0,
                own_fds(p.mode, 'file'))


# ---- systemd-cron's mail_on_failure -----------------------------------------

def check_systemd_cron(env, p, rc):
    is_(rc, 0, f'{p.name}: mail_on_failure exits 0')
    is_(p.said(), '', f'{p.name}: mail_on_failure says nothing')
    env.relay.wait_idle()
    calls = p.calls()
    subject = f'[{HOSTNAME}] job {unit(p)} failed'
    msgs = by_subject(env, subject)
    check_message(
        p.name, msgs, f'{USER}@{DOMAIN}', [f'{USER}@{DOMAIN}'],
        ['Content-Type: text/plain; charset="utf-8"', 'MIME-Version: 1.0',
         'Content-Transfer-Encoding: base64', DATE,
         'From: root (systemd-cron)', f'To: {USER}', f'Subject: {subject}',
         'Auto-Submitted: auto-generated'],
        None, calls[0] if calls else None)
    if msgs:
        text = email.message_from_bytes(msgs[0].data,
                                        policy=email.policy.default)
        is_(text.get_content(), STATUS.format(UNIT=unit(p)),
            f'{p.name}: the base64 body is what systemctl status said')
    check_calls(p.name, calls, [['-i', '-B8BITMIME', USER]], p.pw.pw_uid,
                own_fds(p.mode, 'pipe'))


# ---- the test ---------------------------------------------------------------

class Shared:
    """What every program's directory refers to."""

    def __init__(self, env):
        os.chmod(env.dir, 0o711)
        # the built binary and the relay's CA, where the user can read them
        self.mailshim = env.path('mailshim')
        shutil.copy(os.environ['MAILSHIM_BIN'], self.mailshim)
        os.chmod(self.mailshim, 0o755)
        self.ca = env.path('ca.pem')
        shutil.copy(env.relay.ca_file, self.ca)
        os.chmod(self.ca, 0o644)
        self.job = env.write_file('job.sh', JOB, 0o755)


def test():
    packages = fetch()
    pw = ensure_user()
    root = pwd.getpwnam('root')
    cron_pkg, cron_v = packages['cron']
    cronie_pkg, cronie_v = packages['cronie']
    libc = os.path.join(packages['libc6'][0], 'usr/lib/x86_64-linux-gnu')
    argvs = {'cron': [os.path.join(cron_pkg, 'usr/sbin/cron'), '-f'],
             'cronie': [os.path.join(libc, 'ld-linux-x86-64.so.2'),
                        '--library-path', libc,
                        os.path.join(cronie_pkg, 'usr/sbin/crond'), '-n']}
    with harness.Env(listeners=['starttls']) as env:
        shared = Shared(env)
        crons = [Cron(env, kind, mode, pw, shared, pkg)
                 for kind, pkg in (('cron', cron_pkg),
                                   ('cronie', cronie_pkg))
                 for mode in MODES]
        started = time.monotonic()
        for c in crons:
            c.p.start(argvs[c.kind], daemon_env())
        try:
            # while the crons wait for the minute: anacron, mail_on_failure
            anacron_pkg, anacron_v = packages['anacron']
            row = harness.CompatRow('anacron', 'anacron', anacron_v)
            for mode in MODES:
                p = Program(env, 'anacron', mode, root, shared)
                tab = p.write('anacrontab', ANACRONTAB.format(
                    name=p.name, job=shared.job))
                rc = p.run([os.path.join(anacron_pkg, 'usr/sbin/anacron'),
                            '-d', '-f', '-n', '-t', tab, '-S',
                            os.path.join(p.dir, 'spool')], daemon_env())
                check_anacron(env, p, rc)
                if mode == 'file' and p.calls():
                    row.command = shlex.join(['sendmail'] +
                                             p.calls()[0].args)
            row.end()

            sdc_pkg, sdc_v = packages['systemd-cron']
            row = harness.CompatRow('systemd-cron (mail_on_failure)',
                                    'systemd-cron', sdc_v)
            for mode in MODES:
                p = Program(env, 'systemd-cron', mode, pw, shared)
                os.makedirs(os.path.join(p.dir, 'bin'))
                p.write('bin/systemctl', SYSTEMCTL, 0o755)
                p.write('bin/status', STATUS.format(UNIT=unit(p)))
                rc = p.run(
                    ['setpriv', f'--reuid={pw.pw_uid}',
                     f'--regid={pw.pw_gid}', '--init-groups', '--',
                     os.path.join(sdc_pkg, 'lib/systemd-cron/mail_on_failure'),
                     unit(p)],
                    daemon_env({'PATH': os.path.join(p.dir, 'bin') +
                                ':/usr/sbin:/usr/bin:/sbin:/bin',
                                'HOME': '/', 'USER': USER,
                                'LOGNAME': USER}))
                check_systemd_cron(env, p, rc)
                if mode == 'file' and p.calls():
                    row.command = shlex.join(['sendmail'] +
                                             p.calls()[0].args)
            row.end()
        finally:
            wait_crons(env, crons, started)

        for kind, package, version, name in (
                ('cron', 'cron', cron_v, 'Debian cron'),
                ('cronie', 'cronie', cronie_v, 'cronie')):
            row = harness.CompatRow(name, package, version)
            for c in crons:
                if c.kind == kind:
                    c.check(env)
                    if c.p.mode == 'file':
                        default = [call for call in c.p.calls()
                                   if call.args == c.argv(USER)]
                        if default:
                            row.command = shlex.join(['sendmail'] +
                                                     default[0].args)
            row.end()
        is_([m.data for m in env.relay.messages if m.seq not in CLAIMED],
            [], 'the relay got no other message')
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
