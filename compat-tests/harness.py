"""TAP helpers and a test environment for mailshim's end-to-end tests.

A test is a Python file run by automake's TAP driver as
`/usr/bin/python3 t-something.py`, with MAILSHIM_BIN (the built
sendmail/mailshim) and MAILSHIM_TESTLIB (this directory) in its environment:

    import os, sys
    sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
    import harness
    from harness import ok, is_, like

    def test():
        with harness.Env() as env:
            cfg = env.config_for('starttls')
            r = env.run(['-i', 'rcpt@example.com'], input=b'Subject: x\\n\\nhi\\n')
            is_(r.rc, 0, 'mailshim exits 0')
            msgs = env.relay.wait_for(1)
            is_([m.rcpt_tos for m in msgs], [['rcpt@example.com']],
                'one message, to the recipient')

    harness.main(test)

main() prints the plan at the end and exits 1 if a test failed; an
exception escaping the test prints "Bail out!" with the traceback.  A
missing dependency (aiosmtpd, the openssl command) is a bail-out too, never
a skip.
"""

import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import traceback

# ---- TAP -------------------------------------------------------------------

_count = 0
_failed = 0


def _emit(line: str):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def diag(text) -> None:
    """Print text as TAP diagnostics: every line prefixed with '# '."""
    for line in str(text).splitlines() or ['']:
        _emit('# ' + line)


def bail_out(reason: str, details: str = '') -> None:
    """Abort the whole test file: a failure, as TAP means it."""
    if details:
        diag(details)
    _emit('Bail out! ' + ' '.join(reason.split()))
    sys.exit(1)


def ok(cond, name: str = '') -> bool:
    """One test: passes if cond is true.  Returns bool(cond)."""
    global _count, _failed
    _count += 1
    passed = bool(cond)
    if not passed:
        _failed += 1
    # A name must fit on one line, and a '#' in it would start a directive.
    name = ' '.join(str(name).split()).replace('#', '\\#')
    _emit(f'{"ok" if passed else "not ok"} {_count}' +
          (f' - {name}' if name else ''))
    if not passed:
        frame = sys._getframe(1)
        while frame and frame.f_code.co_filename == __file__:
            frame = frame.f_back
        if frame:
            where = os.path.basename(frame.f_code.co_filename)
            diag(f'  Failed test at {where} line {frame.f_lineno}.')
    return passed


def is_(got, want, name: str = '') -> bool:
    """Passes if got == want; on failure prints both (repr)."""
    passed = ok(got == want, name)
    if not passed:
        diag(f'       got: {got!r}\n  expected: {want!r}')
    return passed


def isnt(got, unwanted, name: str = '') -> bool:
    """Passes if got != unwanted."""
    passed = ok(got != unwanted, name)
    if not passed:
        diag(f'       got: {got!r}\n  expected anything else')
    return passed


def _match(text, regex):
    """re.search(regex, text), text converted to the pattern's kind: bytes
    patterns see bytes (str encoded as UTF-8), str patterns see str (bytes
    decoded as UTF-8).  Returns (match, the text searched)."""
    pattern = getattr(regex, 'pattern', regex)
    if text is None:
        text = ''
    if isinstance(pattern, bytes):
        if isinstance(text, str):
            text = text.encode('utf-8', 'surrogateescape')
        text = bytes(text)
    elif isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode('utf-8', 'backslashreplace')
    else:
        text = str(text)
    return re.search(regex, text), text


def like(text, regex, name: str = '') -> bool:
    """Passes if regex (str, bytes or compiled) is found in text (str or
    bytes) by re.search."""
    match, text = _match(text, regex)
    passed = ok(match is not None, name)
    if not passed:
        pattern = getattr(regex, 'pattern', regex)
        diag(f'                  {text!r}\n'
             f'  does not match: {pattern!r}')
    return passed


def unlike(text, regex, name: str = '') -> bool:
    """Passes if regex is NOT found in text."""
    match, text = _match(text, regex)
    passed = ok(match is None, name)
    if not passed:
        pattern = getattr(regex, 'pattern', regex)
        diag(f'                  {text!r}\n'
             f'         matches: {pattern!r}')
    return passed


def done() -> None:
    """Print the plan (1..N) and exit: 1 if any test failed, else 0."""
    _emit(f'1..{_count}')
    if _failed:
        diag(f'Looks like you failed {_failed} test(s) of {_count}.')
    sys.exit(1 if _failed else 0)


def _bail_with_traceback(exc_type, exc, tb) -> None:
    """Print the traceback as diagnostics, then "Bail out!"."""
    diag(''.join(traceback.format_exception(exc_type, exc, tb)))
    summary = traceback.format_exception_only(exc_type, exc)[-1]
    _emit('Bail out! uncaught ' + ' '.join(summary.split()))


def _excepthook(exc_type, exc, tb):
    _bail_with_traceback(exc_type, exc, tb)
    sys.stdout.flush()
    os._exit(1)


def main(fn) -> None:
    """Run fn() (the tests), then done().  An exception escaping fn is a
    bail-out with the traceback as diagnostics (exit status 1)."""
    try:
        fn()
    except SystemExit:
        raise
    except BaseException:
        _bail_with_traceback(*sys.exc_info())
        sys.exit(1)
    done()


# Exceptions outside main() bail out too.
sys.excepthook = _excepthook


# ---- dependencies ----------------------------------------------------------

def _check_dependencies():
    try:
        import aiosmtpd  # noqa: F401
    except ImportError as e:
        bail_out(f'aiosmtpd cannot be imported by {sys.executable} ({e}): '
                 'install python3-aiosmtpd and run the tests with '
                 '/usr/bin/python3')
    if shutil.which('openssl') is None:
        bail_out('the openssl command is not installed')


_check_dependencies()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay import LISTENERS, Relay  # noqa: E402,F401


# ---- running mailshim ------------------------------------------------------

class Result:
    """What a mailshim run did."""

    def __init__(self, args, rc, out: bytes, err: str, timed_out=False):
        self.args = args
        self.rc = rc              # exit status; None if it timed out;
        #                           -N if killed by signal N
        self.out = out            # stdout, bytes
        self.err = err            # stderr, text
        self.timed_out = timed_out

    def __repr__(self):
        return (f'Result(rc={self.rc!r}, timed_out={self.timed_out}, '
                f'out={self.out!r}, err={self.err!r})')

    def describe(self) -> str:
        """A multi-line account, for diag() after a failure."""
        return (f'command: {shlex.join(self.args)}\n'
                f'exit status: {self.rc!r}' +
                (' (timed out)' if self.timed_out else '') +
                f'\nstdout: {self.out!r}\nstderr:\n{self.err}')


# Passed on to mailshim from the test's environment (sanitizer settings).
_PASSED_ON = ('PATH', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS',
              'MSAN_OPTIONS', 'TSAN_OPTIONS')

# The keys of mailshim.ini's [mailshim] section; config_for() puts other
# keys in the account's section.
GLOBAL_KEYS = ('account', 'local_domain', 'aliases', 'queue_dir',
               'on_tempfail', 'delivery', 'queue_concurrency',
               'queue_lifetime', 'max_message_size', 'syslog', 'logfile')


class Env:
    """A temporary directory with a running Relay, for one test file.

        with harness.Env() as env:
            env.relay, env.dir, env.ports
            env.config_for('tls') ...

    users and listeners are passed to Relay.  Set MAILSHIM_KEEP_TMP=1 in
    the environment to keep the directory (its path is printed).
    """

    def __init__(self, users=None, listeners=None, **relay_kwargs):
        self._relay_args = dict(users=users, listeners=listeners,
                                **relay_kwargs)
        self.dir = None
        self.relay = None
        self.last_config = None

    def __enter__(self) -> 'Env':
        self.dir = tempfile.mkdtemp(prefix='mailshim-e2e-')
        self.aliases_path = os.path.join(self.dir, 'aliases')
        # every test's queue is its own: never the system's
        self.queue_dir = os.path.join(self.dir, 'queue')
        self.write_aliases('')
        self.relay = Relay(workdir=os.path.join(self.dir, 'relay'),
                           **self._relay_args)
        self.relay.start()
        return self

    def __exit__(self, *exc):
        if self.relay is not None:
            self.relay.stop()
        if os.environ.get('MAILSHIM_KEEP_TMP'):
            diag(f'keeping {self.dir}')
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def ports(self):
        return self.relay.ports

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def write_file(self, name: str, content, mode: int = 0o600) -> str:
        """Write content (str or bytes) to name in the temp dir."""
        path = self.path(name)
        data = content.encode() if isinstance(content, str) else content
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.chmod(path, mode)      # in case it existed with another mode
        return path

    def write_config(self, text: str, name: str = 'mailshim.ini') -> str:
        """Write a mailshim.ini (mode 0600); it becomes the default config
        of run().  Returns its path."""
        self.last_config = self.write_file(name, text, 0o600)
        return self.last_config

    def write_aliases(self, text: str) -> str:
        """Set the contents of the aliases file config_for() points at."""
        return self.write_file('aliases', text, 0o644)

    def config_for(self, listener: str, name: str = 'mailshim.ini',
                   **keys) -> str:
        """Write a standard config with one account [test] pointing at the
        relay's listener, and make it run()'s default.  Keyword arguments
        set keys (value None removes one): those of GLOBAL_KEYS in
        [mailshim], the others in [test].  Returns the path."""
        spec = LISTENERS[listener]
        glob = {'local_domain': 'example.net', 'aliases': self.aliases_path,
                'queue_dir': self.queue_dir}
        acct = {
            'host': '127.0.0.1',
            'port': self.relay.ports[listener],
            'tls': spec.tls,
            'username': 'AppKey',
            'password': 'SecretKey',
            'ca_file': self.relay.ca_file,
            'helo': 'client.test',
            'timeout': 10,
        }
        for key, value in keys.items():
            section = glob if key in GLOBAL_KEYS else acct
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
        # tls = none with credentials is refused unless said on purpose
        if (str(acct.get('tls', '')).lower() == 'none'
                and acct.get('username') is not None
                and str(acct.get('auth', 'plain')).lower() != 'none'
                and 'allow_plaintext_auth' not in keys):
            acct['allow_plaintext_auth'] = 'yes'

        def render(title, section):
            return f'[{title}]\n' + ''.join(
                f'{k} = {v}\n' for k, v in section.items())
        return self.write_config(render('mailshim', glob) + '\n' +
                                 render('test', acct), name)

    def child_env(self, env_extra=None) -> dict:
        """The environment mailshim runs with: clean and deterministic."""
        env = {k: os.environ[k] for k in _PASSED_ON if k in os.environ}
        env.setdefault('PATH', '/usr/bin:/bin')
        env.update(HOME=self.dir, LC_ALL='C.UTF-8', TZ='UTC')
        for key, value in (env_extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
        return env

    def command(self, args, config=None):
        """The argv run() uses: MAILSHIM_TEST_WRAPPER's words, MAILSHIM_BIN,
        -C config (as for run()), then args; for a test that must start
        mailshim itself (other stdin or stdout, no waiting)."""
        binary = os.environ.get('MAILSHIM_BIN')
        if not binary or not os.access(binary, os.X_OK):
            raise RuntimeError(f'MAILSHIM_BIN={binary!r} is not an '
                               'executable file')
        argv = [binary]
        if config is None:
            config = self.last_config
            if config is None:
                raise RuntimeError('run(): no config written yet '
                                   '(use config=False for none)')
        if config is not False:
            argv += ['-C', str(config)]
        argv += [str(a) for a in args]
        return shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) \
            + argv

    def run(self, args, input: bytes = b'', config=None, env_extra=None,
            timeout: float = 30) -> Result:
        """Run MAILSHIM_BIN with args, -C config first: config is a path,
        None for the last written config, False for no -C.  input is its
        stdin (bytes).  env_extra adds to (value None: removes from) the
        child's environment.  MAILSHIM_TEST_WRAPPER (e.g. "valgrind -q")
        in the test's environment is put in front of the command."""
        command = self.command(args, config)
        if isinstance(input, str):
            input = input.encode()
        proc = subprocess.Popen(command, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                env=self.child_env(env_extra), cwd=self.dir)
        try:
            out, err = proc.communicate(input, timeout=timeout)
            rc, timed_out = proc.returncode, False
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            rc, timed_out = None, True
        return Result(command, rc, out,
                      err.decode('utf-8', 'backslashreplace'), timed_out)


def tls_pin_of(cert: str) -> str:
    """The tls_pin of a certificate, computed the way the manual says."""
    out = subprocess.run(
        ['sh', '-c', 'openssl x509 -in "$1" -pubkey -noout | '
         'openssl pkey -pubin -outform der | '
         'openssl dgst -sha256 -binary | base64', 'sh', cert],
        check=True, capture_output=True)
    return 'sha256//' + out.stdout.decode('ascii').strip()


def fd_kind(target):
    """What a /proc/PID/fd link's target is: closed, null, pipe, or file (a
    regular file, deleted or not)."""
    if target in ('closed', '/dev/null'):
        return target.replace('/dev/', '')
    if target.startswith('pipe:'):
        return 'pipe'
    return 'file' if target.startswith('/') else target


def commands(verbs):
    """The commands of a session, less a final QUIT: whether the relay
    still reads QUIT once the message is accepted is libcurl's business
    (libcurl 8.21 closes without waiting for the reply), not mailshim's."""
    verbs = list(verbs)
    if verbs and verbs[-1] == 'QUIT':
        verbs.pop()
    return verbs


class ScriptedServer:
    """A one-connection SMTP server on 127.0.0.1 for the dialogues the relay
    cannot play.  A subclass answers each command in handle(verb, line),
    using say(), read_data() and start_tls(); handle() returns False to end
    the dialogue.  commands lists the client's command lines, data the
    messages read, errors what went wrong on the server's side."""

    greeting = '220 scripted.test ESMTP'

    def __init__(self):
        self.commands = []
        self.data = []
        self.errors = []
        self.conn = None
        self.file = None
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(1)
        self.listener.settimeout(15)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            self.conn, _ = self.listener.accept()
        except OSError as e:
            self.errors.append(repr(e))
            return
        self.conn.settimeout(10)
        self.file = self.conn.makefile('rwb')
        try:
            self.say(self.greeting)
            while True:
                line = self.file.readline()
                if not line:
                    return
                line = line.rstrip(b'\r\n').decode('utf-8', 'replace')
                self.commands.append(line)
                if self.handle(line.split(' ', 1)[0].upper(), line) is False:
                    return
        except (OSError, ssl.SSLError, ValueError) as e:
            self.errors.append(repr(e))
        finally:
            # the makefile() keeps the socket open: close both, and tell
            # the client at once rather than at its timeout
            try:
                self.file.close()
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.conn.close()

    def handle(self, verb, line):
        raise NotImplementedError

    def say(self, *lines):
        self.file.write(b''.join(x.encode() + b'\r\n' for x in lines))
        self.file.flush()

    def read_data(self):
        """The message after 354, up to the final dot, as received."""
        data = b''
        while True:
            chunk = self.file.readline()
            if not chunk or chunk == b'.\r\n':
                break
            data += chunk
        self.data.append(data)
        return data

    def start_tls(self, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.conn = ctx.wrap_socket(self.conn, server_side=True)
        self.file = self.conn.makefile('rwb')

    def close(self):
        self.thread.join(15)
        self.listener.close()

    @property
    def verbs(self):
        return [c.split(' ', 1)[0].upper() for c in self.commands]


def submit(env, args, data=b''):
    """Run mailshim with a fresh relay record; return (result, messages,
    sessions) once the relay has seen the client go."""
    env.relay.reset()
    r = env.run(args, input=data)
    env.relay.wait_idle()
    return r, env.relay.messages, env.relay.sessions


def delivered(env, args, data, name):
    """Run mailshim; pass if it exited 0, silently, and the relay accepted
    exactly one message.  Returns that message (None on failure)."""
    r, msgs, _ = submit(env, args, data)
    if not ok(r.rc == 0 and r.err == '' and len(msgs) == 1,
              f'{name}: exit 0, no stderr, one message'):
        diag(r.describe())
        diag(f'messages: {len(msgs)}')
        return None
    return msgs[0]


def refused(env, args, data, rc, err, name):
    """Run mailshim; pass if it exited rc with stderr err (exact text, or a
    compiled regex) and the relay saw no connection, hence no MAIL."""
    r, msgs, sessions = submit(env, args, data)
    is_(r.rc, rc, f'{name}: exit {rc}')
    if hasattr(err, 'pattern'):
        like(r.err, err, f'{name}: stderr')
    else:
        is_(r.err, err, f'{name}: stderr')
    is_(([s.verbs for s in sessions], len(msgs)), ([], 0),
        f'{name}: no connection, no transaction')


_HELD_PORTS = []


def closed_port():
    """A loopback port that refuses connections for as long as the test
    runs: bound but never listening, so that no other server (another
    test's relay) can be given it meanwhile."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    _HELD_PORTS.append(s)
    return s.getsockname()[1]


COMPAT_DOC = os.path.join(os.path.dirname(
    os.environ.get('MAILSHIM_TESTLIB', '.').rstrip('/')), 'docs', 'COMPAT.md')


def package_version(package):
    """The installed version of a Debian package, or None."""
    p = subprocess.run(['dpkg-query', '-W', '-f=${Version}', package],
                       capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 and p.stdout else None


def compat_row(caller, package, command, passed, version=None):
    """Check docs/COMPAT.md's one row for caller:
        | caller | package version | `command` | result |
    version defaults to the installed package's; command is the command
    line mailshim received; passed whether the caller's cases passed.
    With MAILSHIM_UPDATE_COMPAT=1 the row is written instead."""
    version = version or package_version(package) or 'not installed'
    cmd = command.replace('|', '\\|')
    result = 'delivered intact' if passed else 'FAILED'
    want = f'| {caller} | {package} {version} | `{cmd}` | {result} |'
    import fcntl
    with open(COMPAT_DOC, 'r+', encoding='utf-8') as f:
        # tests run in parallel: one rewrite at a time
        fcntl.flock(f, fcntl.LOCK_EX)
        lines = f.read().splitlines()
        mine = [i for i, line in enumerate(lines)
                if line.startswith(f'| {caller} |')]
        if os.environ.get('MAILSHIM_UPDATE_COMPAT') == '1':
            if mine:
                lines[mine[0]] = want
                for i in reversed(mine[1:]):
                    del lines[i]
            else:
                lines.append(want)
            f.seek(0)
            f.truncate()
            f.write('\n'.join(lines) + '\n')
            return ok(True, f'docs/COMPAT.md: row for {caller} written')
    return is_([lines[i] for i in mine], [want],
               f'docs/COMPAT.md: the row for {caller}')


class CompatRow:
    """One caller's row of docs/COMPAT.md, checked by end(): passed when
    no test failed between its creation and end(), and a command line was
    recorded (set .command to what mailshim received)."""

    def __init__(self, name, package, version=None):
        self.name, self.package, self.version = name, package, version
        self.failed_before = _failed
        self.command = None

    def end(self):
        passed = _failed == self.failed_before and self.command is not None
        return compat_row(self.name, self.package, self.command or '-',
                          passed, version=self.version)


def run_as(env, name, args):
    """Run the binary under another name (a symlink, as the mailq and
    newaliases links are) with the last config; returns (exit status,
    stdout, stderr) as text."""
    link = env.path(name)
    if not os.path.lexists(link):
        os.symlink(os.environ['MAILSHIM_BIN'], link)
    cmd = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) + \
        [link, '-C', env.last_config] + args
    p = subprocess.run(cmd, input=b'', capture_output=True, timeout=30,
                       env=env.child_env(), cwd=env.dir)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class RelayCase:
    """One run of mailshim against a fresh relay record: config_for(listener,
    **keys), then run(verbose + args) with msg on stdin; what the relay saw
    of that listener is in messages, sessions and sess (the last one)."""

    def __init__(self, env, listener, args, msg, rcpt, verbose=(), **keys):
        env.relay.reset()
        self.rcpt = rcpt
        self.config = env.config_for(listener, **keys)
        self.port = env.ports[listener]
        self.result = env.run(list(verbose) + list(args), input=msg)
        env.relay.wait_idle()
        self.messages = env.relay.messages
        self.sessions = [s for s in env.relay.sessions
                         if s.listener == listener]
        self.connections = env.relay.connections[listener]
        self.sess = self.sessions[-1] if self.sessions else None

    @property
    def rc(self):
        return self.result.rc

    @property
    def err(self):
        return self.result.err

    @property
    def msg(self):
        return self.messages[0] if self.messages else None

    def delivered(self, label) -> bool:
        """Exit 0, nothing on stderr, exactly one message to rcpt."""
        good = is_(self.rc, 0, f'{label}: exit 0')
        good &= is_(self.err, '', f'{label}: nothing on stderr')
        good &= is_([m.rcpt_tos for m in self.messages], [[self.rcpt]],
                    f'{label}: one message delivered, to {self.rcpt}')
        if not good:
            diag(self.result.describe())
            if self.sess:
                diag('\n'.join(self.sess.transcript))
        return good

    def no_auth_sent(self, label):
        """No AUTH command on any connection, no credentials checked."""
        lines = [t for s in self.sessions for t in s.transcript
                 if t.startswith('C: ')]
        is_([t for t in lines if t.upper().startswith('C: AUTH')], [],
            f'{label}: no AUTH sent to the relay')
        is_([a for s in self.sessions for a in s.auth_attempts], [],
            f'{label}: the relay saw no credentials')

    def nothing_delivered(self, label):
        is_(self.messages, [], f'{label}: nothing delivered')
        ok(all('MAIL' not in s.verbs for s in self.sessions),
           f'{label}: no MAIL command sent')
