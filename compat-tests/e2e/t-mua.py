#!/usr/bin/python3
"""End-to-end: git send-email and the mail clients, the real programs.

git send-email, bsd-mailx, GNU mailutils mail, s-nail and NeoMutt, as
Debian 12 ships them, send mail through mailshim to the test relay; the
relay's record (envelope and bytes) and each program's exit status are
checked.  git-email (with libmailtools-perl, which it needs), s-nail and
neomutt are installed packages (the CI installs them); bsd-mailx (it
Depends on a mail transport agent) and mailutils (it Recommends one) are
unpacked by compat-tests/callers-fetch, their libraries installed.

Each program runs as on a real host:
  - as an ordinary user (mshcaller, created if missing), whose own are
    mailshim's config and queue;
  - in private mount and UTS namespaces, where the host name is
    host1.example.net and /usr/sbin/sendmail and /usr/lib/sendmail are a
    wrapper (bound over the file if the host has one, else put in front of
    the directory by a read-only overlay: nothing on the host changes);
  - the wrapper records the argv it got (one file per call), what its
    stdin, stdout and stderr are, then runs the built mailshim (a copy the
    user can reach) with -C and the test's config, and records mailshim's
    exit status.  The recorded argv, "sendmail" for the path, is the
    command line of docs/COMPAT.md.
The programs that take a path (git --smtp-server, s-nail's mta, NeoMutt's
$sendmail) run with the wrapper's own path too.

Every program runs with its stdin a pipe, a regular file, and with its
stdout and stderr closed; but git send-email reads no stdin (the patches are
files): it runs with stdout and stderr closed, and with its default
/usr/sbin/sendmail.  Each also gets a message the relay refuses at the dot:
mailshim exits 69 and the program must fail and say so.

What the programs do (checked here): bsd-mailx runs "sendmail -i -t" with
Cc: and Bcc: in the header (Debian's /etc/mail.rc sets "dot", but a lone
"." ends the message only at a terminal); GNU mail closes the child's stdout
and stderr and gives "-f user@hostname"; s-nail, NeoMutt and bsd-mailx hand
mailshim a temporary file as stdin; s-nail sends quoted-printable by
default; NeoMutt's $sendmail without -oi lets a lone "." end the message,
as sendmail would.
"""

import glob
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
from harness import diag, is_, like, ok, unlike  # noqa: E402

USER = 'mshcaller'
HOSTNAME = 'host1.example.net'
DOMAIN = 'example.net'           # config_for()'s local_domain
ME = f'{USER}@{DOMAIN}'          # mailshim's sender when none is given
FETCH = os.path.join(os.environ['MAILSHIM_TESTLIB'], 'callers-fetch')
MODES = ('pipe', 'file', 'closed')
# a recipient the relay accepts, then refuses the message for at the dot
REFUSED = 'datafail554@example.com'
# what mailshim says then, as a regex
REFUSED_ERR = re.escape('mailshim: relay refused the message: 554 5.7.1 '
                        'message refused\n')

# What programs add (TZ=UTC); mailshim's own Message-ID ends in DOMAIN.
DATE = rb'Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3]?\d ' \
       rb'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} ' \
       rb'\d\d:\d\d:\d\d \+0000'
SHIM_MSGID = rb'Message-ID: <[^<>@\s]+@example\.net>'


# ---- the user, the namespace, the wrapper --------------------------------

def ensure_user():
    """The unprivileged user the programs run as: created if missing (and
    left: other tests may use it too); a parallel useradd is waited for."""
    for _ in range(50):
        try:
            return pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(['useradd', '--system', '--no-create-home',
                            '--user-group', '--shell', '/usr/sbin/nologin',
                            USER], capture_output=True)
        try:
            return pwd.getpwnam(USER)
        except KeyError:
            time.sleep(0.2)
    raise RuntimeError(f'cannot create the user {USER}')


# Run inside the new namespaces, as root: $1 host name, $2 wrapper, $3 the
# directory holding the wrapper as "sendmail", $4 uid, $5 gid, $6 mode;
# then the program and its arguments.
NS_SCRIPT = r'''
set -e
hostname "$1"
wrapper=$2 ovdir=$3 uid=$4 gid=$5 mode=$6
shift 6
for path in /usr/sbin/sendmail /usr/lib/sendmail; do
	if [ -e "$path" ]; then
		mount --bind "$wrapper" "$path"
	else
		mount -t overlay mailshim-test -o "lowerdir=$ovdir:${path%/*}" \
		    "${path%/*}"
	fi
done
# a host's own /etc/mail.rc (bsd-mailx installed) is read by GNU mailutils
# too: its "set dot" would end messages at a lone "."; the tests bring
# their own rc files
[ ! -e /etc/mail.rc ] || mount --bind /dev/null /etc/mail.rc
[ "$mode" != closed ] || exec >&- 2>&-
exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$@"
'''

WRAPPER = '''#!/bin/sh
# How it was called, one file per call; then mailshim, and its exit status.
# First what its stdin, stdout and stderr are, seen from a child process
# (a redirection here would change them, or take a closed one's number).
id=$(date +%s%N).$$
/bin/sh -c 'exec >"$2" 2>/dev/null
for fd in 0 1 2; do readlink "/proc/$1/fd/$fd" || echo closed; done' \
    fds $$ {rec}/$id.fds
rec={rec}/$id
printf '%s\\0' "$0" "$@" >"$rec.argv"
{prefix}{mailshim} -C {config} "$@"
rc=$?
echo $rc >"$rec.rc"
exit $rc
'''


class Call:
    def __init__(self, argv, rc, fds):
        self.path = argv[0]        # how the program named the wrapper
        self.args = argv[1:]
        self.rc = rc               # mailshim's exit status (text)
        # what mailshim's stdin, stdout and stderr were
        self.fds = tuple(harness.fd_kind(t) for t in fds)

    def command(self):
        """The command line as docs/COMPAT.md shows it."""
        return shlex.join(['sendmail'] + self.args)


class Workspace:
    """The user's directory: home, mailshim's copy, config, queue, the
    wrapper and its records."""

    def __init__(self, env):
        self.env = env
        self.pw = ensure_user()
        os.chmod(env.dir, 0o711)
        self.dir = env.path('mua')
        for sub in ('', 'home', 'bin', 'ov', 'rec', 'queue', 'work'):
            d = os.path.join(self.dir, sub)
            os.makedirs(d, exist_ok=True)
            os.chown(d, self.pw.pw_uid, self.pw.pw_gid)
            os.chmod(d, 0o700)
        os.chmod(self.dir, 0o711)
        self.home = os.path.join(self.dir, 'home')
        self.work = os.path.join(self.dir, 'work')
        self.rec = os.path.join(self.dir, 'rec')
        # the built binary, where the user can run it whatever the build
        # directory's modes
        self.mailshim = os.path.join(self.dir, 'bin', 'mailshim')
        shutil.copy(os.environ['MAILSHIM_BIN'], self.mailshim)
        os.chmod(self.mailshim, 0o755)
        ca = os.path.join(self.dir, 'ca.pem')
        shutil.copy(env.relay.ca_file, ca)
        os.chmod(ca, 0o644)
        self.config = env.config_for(
            'starttls', name='mua/mailshim.ini', ca_file=ca,
            queue_dir=os.path.join(self.dir, 'queue'))
        os.chown(self.config, self.pw.pw_uid, self.pw.pw_gid)
        prefix = os.environ.get('MAILSHIM_TEST_WRAPPER', '')
        self.wrapper = os.path.join(self.dir, 'bin', 'sendmail')
        text = WRAPPER.format(
            rec=shlex.quote(self.rec), mailshim=shlex.quote(self.mailshim),
            config=shlex.quote(self.config),
            prefix=(prefix + ' ') if prefix else '')
        for path in (self.wrapper, os.path.join(self.dir, 'ov', 'sendmail')):
            with open(path, 'w') as f:
                f.write(text)
            os.chmod(path, 0o755)
        os.chmod(os.path.join(self.dir, 'bin'), 0o755)
        os.chmod(os.path.join(self.dir, 'ov'), 0o755)

    def write(self, name, content, mode=0o644):
        """A file of the user's, in work/."""
        path = os.path.join(self.work, name)
        with open(path, 'wb') as f:
            f.write(content.encode() if isinstance(content, str)
                    else content)
        os.chown(path, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(path, mode)
        return path

    def child_env(self, extra=None):
        env = {k: os.environ[k] for k in harness._PASSED_ON
               if k in os.environ}
        env.update(PATH='/usr/bin:/bin', HOME=self.home, USER=USER,
                   LOGNAME=USER, LC_ALL='C.UTF-8', TZ='UTC')
        env.update(extra or {})
        return env

    def run(self, argv, stdin=b'', mode='pipe', extra_env=None,
            timeout=30, fresh=True):
        """Run argv as the user in the namespace: mode 'pipe' (stdin a pipe
        of stdin), 'file' (stdin a regular file holding stdin) or 'closed'
        (stdout and stderr closed, stdin a pipe).  fresh: forget the
        wrapper's calls and the relay's record first."""
        if fresh:
            self.clear()
        command = ['unshare', '--mount', '--uts', '--propagation',
                   'private', '--', '/bin/sh', '-c', NS_SCRIPT, 'ns',
                   HOSTNAME, self.wrapper, os.path.join(self.dir, 'ov'),
                   str(self.pw.pw_uid), str(self.pw.pw_gid), mode] + argv
        stdin_file = None
        if mode == 'file':
            stdin_file = open(self.write('stdin', stdin), 'rb')
        try:
            proc = subprocess.Popen(
                command, stdin=stdin_file or subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=self.child_env(extra_env), cwd=self.work)
            try:
                out, err = proc.communicate(
                    None if stdin_file else stdin, timeout=timeout)
                rc, timed_out = proc.returncode, False
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                rc, timed_out = None, True
        finally:
            if stdin_file:
                stdin_file.close()
        return harness.Result(command, rc, out,
                              err.decode('utf-8', 'backslashreplace'),
                              timed_out)

    def clear(self):
        for f in os.listdir(self.rec):
            os.unlink(os.path.join(self.rec, f))
        self.env.relay.reset()

    def calls(self, n, timeout=10):
        """The wrapper's calls, in order, once n of them have finished (or
        at timeout: what there is)."""
        deadline = time.monotonic() + timeout
        while (len(glob.glob(os.path.join(self.rec, '*.rc'))) < n
               and time.monotonic() < deadline):
            time.sleep(0.05)
        calls = []
        for path in sorted(glob.glob(os.path.join(self.rec, '*.argv'))):
            with open(path, 'rb') as f:
                argv = f.read().decode().split('\0')[:-1]
            try:
                with open(path[:-5] + '.rc') as f:
                    rc = f.read().strip()
                with open(path[:-5] + '.fds') as f:
                    fds = f.read().splitlines()
            except FileNotFoundError:
                rc, fds = None, []
            calls.append(Call(argv, rc, fds))
        return calls


# ---- checks -----------------------------------------------------------------

def exited(tag, r, mode, quiet=True):
    """The program exits 0, and (quiet) says nothing, where its stdout and
    stderr are open; a program that talks must say nothing on stderr."""
    good = is_(r.rc, 0, f'{tag}: the program exits 0')
    if mode != 'closed':
        if quiet:
            good &= is_(r.out, b'', f'{tag}: nothing on stdout')
        good &= is_(r.err, '', f'{tag}: nothing on stderr')
    if not good:
        diag(r.describe())
    return good


def outputs(mode):
    """mailshim's stdout and stderr where the program passes its own on:
    the test's pipes, or closed."""
    return ('closed', 'closed') if mode == 'closed' else ('pipe', 'pipe')


def called(tag, calls, path, args, fds):
    """One wrapper call per entry of args, by path (the wrapper's own, or
    /usr/sbin/sendmail: the wrapper in the namespace), mailshim exiting 0
    each time, with fds its stdin, stdout and stderr (pipe, file, closed,
    null)."""
    is_([c.args for c in calls], args, f'{tag}: the argv mailshim got')
    is_([c.path for c in calls], [path] * len(args),
        f'{tag}: the program ran ' +
        ('/usr/sbin/sendmail' if path.startswith('/usr/')
         else 'the path it was given'))
    is_([c.rc for c in calls], ['0'] * len(args), f'{tag}: mailshim exits 0')
    is_([c.fds for c in calls], [fds] * len(args),
        f"{tag}: mailshim's stdin, stdout, stderr: {', '.join(fds)}")


def crlf(text) -> bytes:
    """text (str or bytes, LF lines) with CRLF line ends."""
    data = text.encode() if isinstance(text, str) else text
    return data.replace(b'\n', b'\r\n')


class Regex(bytes):
    """A body given as a regular expression (it may refer to the headers'
    named groups)."""


def message_is(tag, data, header_res, body):
    """data must be exactly the headers (one regex each, in order), a blank
    line and body (bytes, exact; or a Regex)."""
    pat = b'^' + b''.join(h + b'\r\n' for h in header_res) + b'\r\n' + \
        (bytes(body) if isinstance(body, Regex) else re.escape(body)) + \
        b'\\Z'
    if not ok(re.search(pat, data, re.S), f'{tag}: the message, exactly'):
        diag('got:\n' + data.decode('utf-8', 'backslashreplace'))
        diag('expected headers:\n' + b'\n'.join(header_res).decode())
    unlike(data, rb'(?<!\r)\n|\r(?!\n)', f'{tag}: every line ends in CRLF')


def envelope(tag, msgs, n, sender, rcpts):
    is_(len(msgs), n, f'{tag}: the relay got {n} message(s)')
    is_([m.mail_from for m in msgs], [sender] * len(msgs),
        f'{tag}: MAIL FROM')
    is_([m.rcpt_tos for m in msgs], [rcpts] * len(msgs), f'{tag}: RCPT TO')


def wait_messages(env, n, r):
    msgs = env.relay.wait_for(n, timeout=10 if r.rc == 0 else 1)
    env.relay.wait_idle()
    return msgs


def refused_run(ws, tag, argv, stdin, want_rc, want_err, rcpt_args):
    """A message the relay refuses at the dot: mailshim's failure must
    reach the program, which exits want_rc and says want_err (a regex)."""
    tag = f'{tag}, refused by the relay'
    r = ws.run(argv, stdin)
    is_(r.rc, want_rc, f'{tag}: the program exits {want_rc}')
    like(r.err, want_err, f'{tag}: stderr')
    is_([(c.args, c.rc) for c in ws.calls(1)], [(rcpt_args, '69')],
        f'{tag}: one call, mailshim exits 69 (EX_UNAVAILABLE)')
    ws.env.relay.wait_idle()
    is_(ws.env.relay.messages, [], f'{tag}: nothing delivered')


def fetched(package):
    """The directory callers-fetch unpacked package into, and its version
    (None, None if it failed)."""
    p = subprocess.run([FETCH, package], capture_output=True, text=True)
    if not ok(p.returncode == 0 and p.stdout.strip(),
              f'callers-fetch {package}'):
        diag(f'exit {p.returncode}\n{p.stderr}')
        return None, None
    root = p.stdout.strip().splitlines()[-1]
    v = subprocess.run(['dpkg-deb', '-f', root + '.deb', 'Version'],
                       capture_output=True, text=True)
    return root, v.stdout.strip()


def installed(package, program):
    """The program of an installed package: a failure if it is missing."""
    version = harness.package_version(package)
    ok(version and os.access(program, os.X_OK),
       f'{package} is installed ({program})')
    return version is not None and os.access(program, os.X_OK)


# ---- git send-email -------------------------------------------------------

GIT_IDENT = {'GIT_AUTHOR_DATE': '2025-11-22T16:00:00Z',
             'GIT_COMMITTER_DATE': '2025-11-22T16:00:00Z'}
# The commit messages: lines that start with a dot, and one that is a dot.
GIT_COMMITS = [
    ('doc: list the dotfiles',
     'Lines that start with a dot, and one that is only a dot:\n'
     '.gitignore is sorted\n.\n..two dots\n.\n',
     {'dotfiles.txt': '.gitignore\n.mailmap\n.\n..\n.x\n'}),
    ('doc: one more dotfile',
     'Grüße: 8-bit UTF-8 in the log message.\n',
     {'dotfiles.txt': '.gitignore\n.mailmap\n.\n..\n.x\n.editorconfig\n'}),
]


def git(ws, args):
    """Run git as the user (in work/); its stdout."""
    r = ws.run(['git'] + args, extra_env=dict(GIT_IDENT), fresh=False)
    if r.rc != 0:
        raise RuntimeError(f'git {args}: {r.describe()}')
    return r.out.decode()


def make_repo(ws):
    """A repository with a base commit and the two of GIT_COMMITS; returns
    its path and the two patch files."""
    repo = os.path.join(ws.work, 'repo')
    # the user's identity, for the commits git am makes
    with open(os.path.join(ws.home, '.gitconfig'), 'w') as f:
        f.write('[user]\n\tname = Mail Shim Caller\n'
                '\temail = mshcaller@example.net\n')
    os.chown(os.path.join(ws.home, '.gitconfig'), ws.pw.pw_uid, ws.pw.pw_gid)
    git(ws, ['init', '-q', '-b', 'main', repo])
    for key, value in (('user.name', 'A U Thor'),
                       ('user.email', 'author@example.org')):
        git(ws, ['-C', repo, 'config', key, value])
    ws.write('repo/README', 'base\n')
    git(ws, ['-C', repo, 'add', 'README'])
    git(ws, ['-C', repo, 'commit', '-q', '-m', 'base'])
    for subject, body, files in GIT_COMMITS:
        for name, text in files.items():
            ws.write(f'repo/{name}', text)
        git(ws, ['-C', repo, 'add', '.'])
        git(ws, ['-C', repo, 'commit', '-q', '-m', subject, '-m', body])
    git(ws, ['-C', repo, 'format-patch', '-q', '-o',
             os.path.join(ws.work, 'patches'), 'HEAD~2'])
    patches = sorted(glob.glob(os.path.join(ws.work, 'patches', '*.patch')))
    return repo, patches


def git_am(ws, repo, msgs, tag):
    """Apply the relay's messages with git am on the base commit in a new
    repository: same tree, same commits (author, message) as sent."""
    n = len(glob.glob(os.path.join(ws.work, 'am*')))
    other = os.path.join(ws.work, f'am{n}')
    git(ws, ['clone', '-q', repo, other])
    git(ws, ['-C', other, 'reset', '-q', '--hard', 'HEAD~2'])
    files = [ws.write(f'am{n}-{i}.eml', m.data) for i, m in enumerate(msgs)]
    r = ws.run(['git', '-C', other, 'am', '-q'] + files,
               extra_env=dict(GIT_IDENT), fresh=False)
    if not is_(r.rc, 0, f'{tag}: git am applies the relay\'s messages'):
        diag(r.describe())
        return
    # (the author date is the mail's Date:, the time git send-email ran)
    fmt = ['log', '--format=%an <%ae>%n%B%n--', 'HEAD~2..HEAD']
    is_(git(ws, ['-C', other] + fmt), git(ws, ['-C', repo] + fmt),
        f'{tag}: the same commits (author, whole message)')
    is_(git(ws, ['-C', other, 'rev-parse', 'HEAD^{tree}']),
        git(ws, ['-C', repo, 'rev-parse', 'HEAD^{tree}']),
        f'{tag}: the same tree')


def test_git(env, ws):
    caller = harness.CompatRow('git send-email', 'git-email')
    if not installed('git-email', '/usr/lib/git-core/git-send-email'):
        return caller.end()
    repo, patches = make_repo(ws)
    is_(len(patches), 2, 'git format-patch: a series of 2 patches')
    bodies = []
    for p in patches:
        with open(p, 'rb') as f:
            bodies.append(f.read().split(b'\n\n', 1)[1])
    ok(b'\n.\n' in bodies[0] and b'\n.gitignore' in bodies[0],
       'git format-patch: the first patch has a lone "." line and lines '
       'starting with "."')
    to, cc, bcc = 'maintainer@example.org', 'list@example.org', \
        'secret@example.net'
    sender = 'bounces@example.org'
    # the author is Cc'd too, as git send-email does by default
    rcpts = [to, cc, 'author@example.org', bcc]
    args = ['-f', sender, '-i'] + rcpts

    def send_argv(with_server=True, recipients=(to, cc, bcc)):
        return ['git', '-C', repo, 'send-email'] + (
            [f'--smtp-server={ws.wrapper}'] if with_server else []) + [
            f'--to={recipients[0]}', f'--cc={recipients[1]}',
            f'--bcc={recipients[2]}', f'--envelope-sender={sender}',
            '--confirm=never', '--no-chain-reply-to'] + patches

    runs = (('--smtp-server=wrapper', 'pipe', True),
            ('--smtp-server=wrapper, stdout and stderr closed', 'closed',
             True),
            ('the default /usr/sbin/sendmail', 'pipe', False))
    for label, mode, with_server in runs:
        tag = f'git send-email, {label}'
        r = ws.run(send_argv(with_server), mode=mode)
        exited(tag, r, mode, quiet=False)
        calls = ws.calls(2)
        # git opens /dev/null where stdout and stderr are closed
        called(tag, calls,
               ws.wrapper if with_server else '/usr/sbin/sendmail',
               [args, args], ('pipe',) + (
                   ('null', 'null') if mode == 'closed' else outputs(mode)))
        if calls:
            caller.command = calls[0].command()
        msgs = wait_messages(env, 2, r)
        envelope(tag, msgs, 2, sender, rcpts)
        for i, m in enumerate(msgs[:2]):
            ptag = f'{tag}, patch {i + 1}'
            message_is(ptag, m.data, [
                rb'From: A U Thor <author@example\.org>',
                rb'To: maintainer@example\.org',
                rb'Cc: list@example\.org,',
                rb'\tA U Thor <author@example\.org>',
                rb'Subject: \[PATCH ' + str(i + 1).encode() + rb'/2\] ' +
                re.escape(GIT_COMMITS[i][0].encode()),
                DATE,
                rb'Message-Id: <(\d+\.\d+-' + str(i + 1).encode() +
                rb'-author@example\.org)>',
                rb'X-Mailer: git-send-email [\d.]+'] + (
                    [rb'In-Reply-To: <[^>]+>', rb'References: <[^>]+>',
                     rb'MIME-Version: 1\.0',
                     rb'Content-Type: text/plain; charset=UTF-8']
                    if i else [rb'MIME-Version: 1\.0']) + [
                rb'Content-Transfer-Encoding: 8bit'], crlf(bodies[i]))
            unlike(m.data, rb'(?im)^bcc:', f'{ptag}: no Bcc header')
            if i == 0:
                like(m.data, rb'\r\n\.gitignore is sorted\r\n\.\r\n'
                     rb'\.\.two dots\r\n\.\r\n',
                     f'{ptag}: the dot lines intact')
        if len(msgs) == 2:
            first = re.search(rb'Message-Id: (<[^>]+>)', msgs[0].data)
            first = re.escape(first.group(1)) if first else b'(none)'
            like(msgs[1].data, rb'In-Reply-To: ' + first +
                 rb'\r\nReferences: ' + first + rb'\r\n',
                 f'{tag}: patch 2 answers patch 1')
            git_am(ws, repo, msgs, tag)

    # a refused message: mailshim's error, then git send-email stops
    refused_run(ws, 'git send-email', send_argv(True, (REFUSED, cc, bcc)),
                b'', 69, r'\A' + REFUSED_ERR +
                r'Died at \S+/git-send-email line \d+\.\n\Z',
                ['-f', sender, '-i', REFUSED, cc, 'author@example.org', bcc])
    caller.end()


# ---- the mail clients -----------------------------------------------------

def sent(ws, tag, argv, stdin, mode, path, args, sender, rcpts, headers,
         body, extra_env=None, fds=None):
    """Run a mail client that sends one message; check its exit status,
    the wrapper's call, the envelope and the message.  fds: what mailshim's
    stdin, stdout and stderr must be, by default a file (the client's
    copy of the message) and outputs(mode).  Returns the call."""
    r = ws.run(argv, stdin, mode, extra_env)
    exited(tag, r, mode)
    calls = ws.calls(1)
    called(tag, calls, path, [args], fds or ('file',) + outputs(mode))
    msgs = wait_messages(ws.env, 1, r)
    envelope(tag, msgs, 1, sender, rcpts)
    if msgs:
        message_is(tag, msgs[0].data, headers, body)
        unlike(msgs[0].data, rb'(?im)^bcc:', f'{tag}: no Bcc header')
    return calls[0] if calls else None


TO, CC, BCC = 'alice@example.com', 'bob@example.org', 'carol@example.net'
# a body with the lines sendmail and SMTP treat apart: a lone dot, lines
# starting with dots; and 8-bit UTF-8
BODY = ('Grüße aus Köln,\n/dev/sda1  91% full\n.\n.hidden\n..two dots\n'
        'the end\n')


def test_bsd_mailx(env, ws):
    root, version = fetched('bsd-mailx')
    caller = harness.CompatRow('bsd-mailx mail', 'bsd-mailx', version)
    if root is None:
        return caller.end()
    mailx = os.path.join(root, 'usr', 'bin', 'bsd-mailx')
    # the package's /etc/mail.rc ("set ask askcc append dot save crt"),
    # which cannot be installed, read as the user's
    rc_env = {'MAILRC': os.path.join(root, 'etc', 'mail.rc')}
    argv = [mailx, '-s', 'disk report', '-c', CC, '-b', BCC, TO]
    # first a control: the file MAILRC names is read (with "set record" a
    # copy of each message is saved where it says)
    record = os.path.join(ws.home, 'sent-copy')
    with open(rc_env['MAILRC']) as f:
        rc_text = f.read()
    rc_env_record = {'MAILRC': ws.write('mail.rc', rc_text +
                                        f'set record={record}\n')}
    r = ws.run(argv, BODY.encode(), 'pipe', rc_env_record)
    ws.calls(1)
    wait_messages(env, 1, r)
    saved = b''
    if os.path.exists(record):
        with open(record, 'rb') as f:
            saved = f.read()
    ok(r.rc == 0 and BODY.encode() in saved,
       'bsd-mailx: the file MAILRC names is read (control: set record)')
    for mode in MODES:
        call = sent(ws, f'bsd-mailx -s -c -b [{mode}]', argv,
                    BODY.encode(), mode, '/usr/sbin/sendmail', ['-i', '-t'],
                    ME, [TO, CC, BCC], [
                        rb'To: alice@example\.com',
                        rb'Subject: disk report',
                        rb'Cc: bob@example\.org',
                        rb'MIME-Version: 1\.0',
                        rb'Content-Type: text/plain; charset="UTF-8"',
                        rb'Content-Transfer-Encoding: 8bit',
                        rb'From: ' + ME.encode(), DATE, SHIM_MSGID],
                    crlf(BODY), rc_env)
        if call:
            caller.command = call.command()
    refused_run(ws, 'bsd-mailx', [mailx, '-s', 'x', REFUSED], BODY.encode(),
                1, r'\A' + REFUSED_ERR + r"Can't send mail: sendmail process "
                r'failed with error code 69\n\Z',
                ['-i', '-t'])
    caller.end()


def test_mailutils(env, ws):
    root, version = fetched('mailutils')
    caller = harness.CompatRow('GNU mailutils mail', 'mailutils', version)
    if root is None:
        return caller.end()
    mail = os.path.join(root, 'usr', 'bin', 'mail.mailutils')
    argv = [mail, '-s', 'Leave request', '-a', 'X-Header: v', '-a',
            f'Cc: {CC}', '-a', f'Bcc: {BCC}', TO]
    sender = f'{USER}@{HOSTNAME}'
    for mode in MODES:
        call = sent(ws, f'mailutils mail -s -a [{mode}]', argv,
                    BODY.encode(), mode, '/usr/sbin/sendmail',
                    ['-oi', '-f', sender, '-t'], sender, [TO, CC, BCC], [
                        rb'Subject: Leave request',
                        rb'X-Header: v',
                        rb'Cc: <bob@example\.org>',
                        rb'To: <alice@example\.com>',
                        rb'User-Agent: mail \(GNU Mailutils [\d.]+\)',
                        DATE, rb'From: ' + sender.encode(), SHIM_MSGID],
                    crlf(BODY),
                    # a pipe; mailutils closes the child's stdout and stderr
                    fds=('pipe', 'closed', 'closed'))
        if call:
            caller.command = call.command()
    refused_run(ws, 'mailutils mail', [mail, '-s', 'x', REFUSED],
                BODY.encode(), 1,
                # mailutils closes the child's stderr: mailshim's line is lost
                r'\Amail\.mailutils: cannot send message: Process exited '
                r'with a non-zero status\n\Z', ['-oi', '-f', sender, '-t'])
    caller.end()


# s-nail's default Content-Transfer-Encoding is quoted-printable: BODY so
S_NAIL_QP = ('Gr=C3=BC=C3=9Fe aus K=C3=B6ln,\n/dev/sda1  91% full\n=2E\n'
             '.hidden\n..two dots\nthe end\n')


def test_s_nail(env, ws):
    caller = harness.CompatRow('s-nail', 's-nail')
    if not installed('s-nail', '/usr/bin/s-nail'):
        return caller.end()
    sender = 'jane@example.org'
    args = ['-i', '-f', sender, '--', TO, CC, BCC]
    # as Debian sets it up (/usr/sbin/sendmail, quoted-printable), then
    # with mta set to the wrapper and 8-bit bodies
    for opts, label, cte, body in (
            ([], 'the default mta', b'quoted-printable', S_NAIL_QP),
            (['-S', f'mta={ws.wrapper}', '-S', 'mime-encoding=8bit'],
             '-S mta=wrapper -S mime-encoding=8bit', b'8bit', BODY)):
        argv = ['s-nail'] + opts + ['-s', 'Quarterly numbers', '-r', sender,
                                    '-c', CC, '-b', BCC, TO]
        for mode in MODES:
            tag = f's-nail -s -r -c -b, {label} [{mode}]'
            call = sent(ws, tag, argv, BODY.encode(), mode,
                        ws.wrapper if opts else '/usr/sbin/sendmail',
                        args, sender, [TO, CC, BCC], [
                            DATE,
                            rb'From: jane@example\.org',
                            rb'To: alice@example\.com',
                            rb'Cc: bob@example\.org',
                            rb'Subject: Quarterly numbers',
                            rb'Message-ID: <[^<>\s]+@example\.org>',
                            rb'User-Agent: s-nail v[\d.]+',
                            rb'MIME-Version: 1\.0',
                            rb'Content-Type: text/plain; charset=utf-8',
                            rb'Content-Transfer-Encoding: ' + cte],
                        crlf(body))
            if call and not opts:
                caller.command = call.command()
    refused_run(ws, 's-nail', ['s-nail', '-s', 'x', REFUSED], BODY.encode(),
                4, r'\A' + REFUSED_ERR +
                r's-nail: \.\.\. message not sent\n\Z',
                ['-i', '--', REFUSED])
    caller.end()


MUTTRC = """\
set use_envelope_from=yes
set from="Jane Doe <jane@example.org>"
set use_8bitmime=yes
set send_charset="utf-8"
"""


def test_neomutt(env, ws):
    caller = harness.CompatRow('NeoMutt', 'neomutt')
    if not installed('neomutt', '/usr/bin/neomutt'):
        return caller.end()
    # $sendmail with the flags of NeoMutt's default, and the default itself
    muttrc = ws.write('muttrc',
                      MUTTRC + f'set sendmail="{ws.wrapper} -oem -oi"\n')
    default_rc = ws.write('muttrc-default', MUTTRC)
    attachment = ws.write('report.txt', 'attached: 42\n.\n')
    sender = 'jane@example.org'
    subject = 'Réunion à 15 h'
    headers = [DATE,
               rb'From: Jane Doe <jane@example\.org>',
               rb'To: alice@example\.com',
               rb'Cc: bob@example\.org',
               rb'Subject: =\?utf-8\?B\?UsOpdW5pb24gw6A=\?= 15 h',
               rb'Message-ID: <[^<>\s]+@host1\.example\.net>',
               rb'MIME-Version: 1\.0']
    text_part = [rb'Content-Type: text/plain; charset=utf-8',
                 rb'Content-Disposition: inline',
                 rb'Content-Transfer-Encoding: 8bit']

    def argv(rc, attach=False):
        return ['neomutt', '-F', rc, '-s', subject, '-b', BCC, '-c', CC] + \
            (['-a', attachment] if attach else []) + ['--', TO]

    flags = ['-oem', '-oi', '-B8BITMIME', '-f', sender, '--', TO, CC, BCC]
    for mode in MODES:
        sent(ws, f'neomutt -F muttrc -s -b -c [{mode}]', argv(muttrc),
             BODY.encode(), mode, ws.wrapper, flags, sender, [TO, CC, BCC],
             headers + text_part, crlf(BODY))
    # as Debian sets it up: $sendmail "/usr/sbin/sendmail -oem -oi"
    call = sent(ws, 'neomutt, the default $sendmail', argv(default_rc),
                BODY.encode(), 'file', '/usr/sbin/sendmail', flags, sender,
                [TO, CC, BCC], headers + text_part, crlf(BODY))
    if call:
        caller.command = call.command()
    # an attachment: multipart/mixed
    sent(ws, 'neomutt -a file --', argv(muttrc, True), BODY.encode(),
         'file', ws.wrapper, flags, sender, [TO, CC, BCC],
         headers + [rb'Content-Type: multipart/mixed; '
                    rb'boundary="(?P<b>[0-9A-Za-z]{8,})"',
                    rb'Content-Disposition: inline',
                    rb'Content-Transfer-Encoding: 8bit'],
         Regex(rb'\r\n--(?P=b)\r\n' + b''.join(
             h + rb'\r\n' for h in text_part) + rb'\r\n' +
             re.escape(crlf(BODY)) + rb'\r\n--(?P=b)\r\n'
             rb'Content-Type: text/plain; charset=utf-8\r\n'
             rb'Content-Disposition: attachment; filename="report\.txt"'
             rb'\r\n\r\n' + re.escape(crlf('attached: 42\n.\n')) +
             rb'\r\n--(?P=b)--\r\n'))
    # $sendmail without -oi: NeoMutt does not stuff dots, so, as with
    # sendmail itself, the lone "." line ends the message
    nodot = ws.write('muttrc-no-oi', MUTTRC + f'set sendmail="{ws.wrapper}"\n')
    sent(ws, 'neomutt, $sendmail without -oi', argv(nodot), BODY.encode(),
         'pipe', ws.wrapper, flags[2:], sender, [TO, CC, BCC],
         headers + text_part, crlf(BODY.split('\n.\n')[0] + '\n'))
    refused_run(ws, 'neomutt', ['neomutt', '-F', muttrc, '-s', 'x', REFUSED],
                BODY.encode(), 1, r'\A' + REFUSED_ERR + r'Error sending '
                r'message, child exited 69 \(Service unavailable\.\)\n\Z',
                ['-oem', '-oi', '-B8BITMIME', '-f', sender, '--', REFUSED])
    caller.end()


CALLERS = (test_git, test_bsd_mailx, test_mailutils, test_s_nail,
           test_neomutt)


def test():
    with harness.Env(listeners=['starttls']) as env:
        ws = Workspace(env)
        for fn in CALLERS:
            fn(env, ws)
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
