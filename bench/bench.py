#!/usr/bin/python3
"""Benchmark mailshim against msmtp and the curl command-line tool (the
floor of what libcurl can do), side by side in one run, on 127.0.0.1 only.

Scenarios (the issue's numbering; --only 1,3 picks some):
  1  a 2 KB message, -t, 4 recipients, no TLS, to Postfix's smtp-sink:
     wall time per message
  2  a 50 MB message to smtp-sink: wall time, CPU time, peak RSS; and peak
     RSS at 1 MB and 200 MB
  3  STARTTLS + AUTH PLAIN to the test relay through latency_proxy.py
     (10 ms each way): wall time and round trips per message (counted at
     the proxy)
  4  1,000 distinct messages queued (mailshim -odq), then flushed by one
     `mailshim -q` through the same proxy, against msmtp sending them one
     by one
  5  caller-visible time (start to exit and EOF on stdout and stderr) of
     delivery = background and of -odb, at 10 ms and 100 ms; mailshim's
     direct delivery at the same latencies for context

Clients run interleaved, run by run, so that drift in the machine's load
hits them all alike.  Every client must exit 0, and in scenarios 3-5 the
relay must have received every message.  Prints a header line (date,
machine, versions), one Markdown table (min / median / max, the target
and whether it is met, judged on medians) and the ratios of medians;
--json FILE dumps every raw sample.
"""
import argparse
import json
import os
import platform
import queue
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = '/usr/bin/python3'
CLIENTS = ('mailshim', 'msmtp', 'curl')
SENDER = 'bench@example.net'
RCPTS = ['r1@example.org', 'r2@example.org', 'r3@example.org',
         'r4@example.org']
USER, PASSWORD = 'AppKey', 'SecretKey'     # the test relay's account
HELO = 'client.test'


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- servers

class Proc:
    """A server this run started: its stdout lines are read by a thread
    into a queue, its stderr goes to a file (shown when it fails).  Every
    Proc is stopped by Proc.stop_all(), whatever happened."""
    live = []

    def __init__(self, name, argv, tmp, env=None):
        self.name = name
        self.errpath = os.path.join(tmp, '%s.%d.stderr' % (name, len(
            Proc.live)))
        with open(self.errpath, 'wb') as err:
            try:
                self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=err,
                                          env=env, start_new_session=True)
            except OSError as e:
                raise BenchError('cannot start %s: %s' % (name, e))
        Proc.live.append(self)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.decode(errors='replace').rstrip('\n'))
        self.lines.put(None)          # EOF: the server is gone

    def fail(self, why):
        with open(self.errpath, 'rb') as f:
            tail = f.read()[-2000:].decode(errors='replace')
        raise BenchError('%s: %s%s' % (self.name, why,
                                       ('; its stderr:\n' + tail) if tail
                                       else ''))

    def line(self, timeout):
        """The next stdout line, or None if none came in time."""
        try:
            line = self.lines.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None
        if line is None:
            self.lines.put(None)
            self.fail('exited (status %s)' % self.p.poll())
        return line

    def check(self):
        if self.p.poll() is not None:
            self.fail('exited (status %s)' % self.p.returncode)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stdout.close()

    @classmethod
    def stop_all(cls):
        while cls.live:
            proc = cls.live.pop()
            try:
                proc.stop()
            except Exception as e:      # keep stopping the others
                print('bench: stopping %s: %s' % (proc.name, e),
                      file=sys.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Sink(Proc):
    """Postfix's smtp-sink: accepts everything, keeps nothing, fast."""

    def __init__(self, path, tmp):
        self.port = free_port()
        libdir = os.path.join(os.path.dirname(os.path.dirname(path)),
                              'lib', 'postfix')
        env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        argv = [path] + (['-u', 'nobody'] if os.geteuid() == 0 else []) + \
            ['127.0.0.1:%d' % self.port, '256']
        super().__init__('smtp-sink', argv, tmp, env)
        deadline = time.monotonic() + 10
        while True:
            self.check()
            try:
                socket.create_connection(('127.0.0.1', self.port), 1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.fail('does not accept connections on port %d'
                              % self.port)
                time.sleep(0.05)


class Relay(Proc):
    """compat-tests/relay.py as a program, with its STARTTLS + AUTH
    listener; it writes msg-NNNN.eml per message accepted."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, 'relay')
        super().__init__('relay', [
            PYTHON, os.path.join(ROOT, 'compat-tests', 'relay.py'),
            '--dir', self.dir, '--listeners', 'starttls',
            '--max-seconds', '86400'], tmp)
        info = os.path.join(self.dir, 'relay.json')
        deadline = time.monotonic() + 30
        while not os.path.exists(info):
            self.check()
            if time.monotonic() > deadline:
                self.fail('no relay.json after 30 s')
            time.sleep(0.05)
        with open(info) as f:
            info = json.load(f)
        self.port = info['ports']['starttls']
        self.ca_file = info['ca_file']

    def count(self):
        """Messages received so far: msg-NNNN.eml are numbered from 1 in
        order (probed upwards: no listing of thousands of files)."""
        n = getattr(self, '_seen', 0)
        while os.path.exists(os.path.join(self.dir, 'msg-%04d.eml'
                                          % (n + 1))):
            n += 1
        self._seen = n
        return n

    def wait_count(self, n, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            have = self.count()
            if have >= n:
                if have > n:
                    raise BenchError('%s: the relay has %d messages, '
                                     'expected %d' % (what, have, n))
                return
            self.check()
            if time.monotonic() > deadline:
                raise BenchError('%s: the relay has %d messages after %g s,'
                                 ' expected %d' % (what, have, timeout, n))
            time.sleep(0.002)


CONN_RE = re.compile(r'conn (\d+) rounds=(\d+) up=(\d+) down=(\d+) '
                     r'ms=([\d.]+)$')


class Proxy(Proc):
    """bench/latency_proxy.py: delay each way, round trips counted."""

    def __init__(self, tmp, target, delay_ms):
        self.delay = delay_ms / 1000
        super().__init__('proxy-%gms' % delay_ms, [
            PYTHON, os.path.join(HERE, 'latency_proxy.py'), '--listen', '0',
            '--to', str(target), '--delay-ms', str(delay_ms)], tmp)
        line = self.line(30)
        if not line or not line.startswith('listening '):
            self.fail('did not say "listening PORT" (%r)' % line)
        self.port = int(line.split()[1])
        self.seen = set()           # connection numbers reported

    def _conn(self, timeout):
        line = self.line(timeout)
        if line is None:
            return None
        m = CONN_RE.match(line)
        if not m:
            self.fail('unexpected line %r' % line)
        self.seen.add(int(m.group(1)))
        return {'n': int(m.group(1)), 'rounds': int(m.group(2)),
                'up': int(m.group(3)), 'down': int(m.group(4)),
                'ms': float(m.group(5))}

    def unreported(self):
        """Connections accepted (a later one was reported) but not
        reported yet: still open at the proxy."""
        return sorted(set(range(1, max(self.seen, default=0) + 1))
                      - self.seen)

    def conns(self, n, timeout=10, strict=True):
        """The next n closed connections (a client that has exited: its
        lines come up to about two delays later), then any stragglers.
        Fewer in time: BenchError, or with strict=False what came."""
        deadline = time.monotonic() + timeout + 4 * self.delay
        got = []
        while len(got) < n:
            c = self._conn(deadline - time.monotonic())
            if c is None:
                if not strict:
                    return got
                raise BenchError('%s: %d connection(s) reported after %g s, '
                                 'expected %d (unreported: %s)'
                                 % (self.name, len(got), timeout, n,
                                    self.unreported()[:10]))
            got.append(c)
        return got + self.settle(2 * self.delay + 0.02)

    def settle(self, quiet):
        """Connections reported until none for `quiet` seconds."""
        got = []
        while True:
            c = self._conn(quiet)
            if c is None:
                return got
            got.append(c)


# ---------------------------------------------------------------- clients

def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith('_proxy') and k != 'MAILSHIM_CONFIG'}
    env['LC_ALL'] = 'C'
    return env


ENV = clean_env()


def mailshim_conf(path, port, queue_dir, ca_file=None, delivery='direct'):
    """Direct delivery fails loudly (exit 75) instead of queueing."""
    os.makedirs(queue_dir, mode=0o700, exist_ok=True)
    tls = ('tls = starttls\nca_file = %s\nusername = %s\npassword = %s\n'
           'auth = plain\n' % (ca_file, USER, PASSWORD)) if ca_file else \
        'tls = none\n'
    with open(path, 'w') as f:
        f.write('[mailshim]\nlocal_domain = example.net\naliases = /dev/null'
                '\nqueue_dir = %s\ndelivery = %s\non_tempfail = %s\n\n'
                '[account]\nhost = 127.0.0.1\nport = %d\n%shelo = %s\n'
                % (queue_dir, delivery,
                   'queue' if delivery == 'background' else 'fail',
                   port, tls, HELO))
    os.chmod(path, 0o600)
    return path


def msmtprc(path, port, ca_file=None):
    tls = ('tls on\ntls_starttls on\ntls_trust_file %s\nauth plain\n'
           'user %s\npassword %s\n' % (ca_file, USER, PASSWORD)) if ca_file \
        else 'tls off\nauth off\n'
    with open(path, 'w') as f:
        f.write('account bench\nhost 127.0.0.1\nport %d\n%sfrom %s\n'
                'domain %s\naccount default : bench\n'
                % (port, tls, SENDER, HELO))
    os.chmod(path, 0o600)
    return path


def curl_argv(port, rcpts, crlf_path, ca_file=None):
    """-q first: no ~/.curlrc.  With TLS: --sasl-ir, the floor (without it
    curl needs one more round trip for AUTH)."""
    argv = ['curl', '-q', '-sS', '--url',
            'smtp://127.0.0.1:%d/%s' % (port, HELO)]
    if ca_file:
        argv += ['--ssl-reqd', '--cacert', ca_file, '--user',
                 '%s:%s' % (USER, PASSWORD), '--login-options', 'AUTH=PLAIN',
                 '--sasl-ir']
    argv += ['--mail-from', SENDER, '--upload-file', crlf_path]
    for r in rcpts:
        argv += ['--mail-rcpt', r]
    return argv


def message(n=0, rcpts=RCPTS, size=2048):
    """A message of `size` bytes with a distinct Message-ID per n: one
    recipient in To:, or (three or more) the last in Bcc:, the one before
    in Cc: and the others in To:."""
    hdr = ['From: Bench <%s>' % SENDER]
    if len(rcpts) < 3:
        hdr.append('To: %s' % ', '.join(rcpts))
    else:
        hdr += ['To: %s' % ', '.join(rcpts[:-2]), 'Cc: %s' % rcpts[-2],
                'Bcc: %s' % rcpts[-1]]
    hdr += ['Subject: benchmark %d' % n,
            'Date: Sun, 22 Nov 2026 12:00:00 +0000',
            'Message-ID: <bench.%d@example.net>' % n]
    text = '\n'.join(hdr) + '\n\n'
    line = 'The quick brown fox jumps over the lazy dog. 0123456789\n'
    text += line * ((size - len(text)) // len(line) + 1)
    return text.encode()[:size].rsplit(b'\n', 1)[0] + b'\n'


def write_message(path, data):
    """The message as a caller gives it (LF) and a CRLF copy for curl's
    tool, which sends the file as is."""
    with open(path, 'wb') as f:
        f.write(data)
    with open(path + '.crlf', 'wb') as f:
        f.write(data.replace(b'\n', b'\r\n'))
    return path


def write_large(path, size):
    line = b'x' * 76 + b'\n'
    block = line * 1024
    head = b'From: %s\nTo: %s\nSubject: large\n\n' % (SENDER.encode(),
                                                     RCPTS[0].encode())
    with open(path, 'wb') as f, open(path + '.crlf', 'wb') as g:
        f.write(head)
        g.write(head.replace(b'\n', b'\r\n'))
        for _ in range(-(-size // len(block))):
            f.write(block)
            g.write(block.replace(b'\n', b'\r\n'))
    return path


def remove_message(path):
    for p in (path, path + '.crlf'):
        os.unlink(p)


def fail_client(argv, why, err):
    raise BenchError('%s: %s%s' % (' '.join(argv[:3]), why,
                                   (': ' + err.decode(errors='replace')
                                    .strip()) if err else ''))


def spawn(argv, **kw):
    try:
        return subprocess.Popen(argv, env=ENV, **kw)
    except OSError as e:
        raise BenchError('cannot run %s: %s' % (argv[0], e))


def run(argv, stdin_path, timeout=120):
    """Run one client to its exit: (wall s, CPU s).  Exit status 0 or
    BenchError.  Its stderr goes to a file (no pipe to fill)."""
    with open(stdin_path, 'rb') as stdin, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = spawn(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            fail_client(argv, 'exit status %d' % p.returncode, err.read())
    return wall, ru.ru_utime + ru.ru_stime


def run_caller(argv, stdin_path, timeout=60):
    """What a caller such as PHP's mail() waits for: from the start to the
    exit and EOF on both stdout and stderr (a background child that kept
    them open would hold the caller).  Wall seconds; exit status 0."""
    with open(stdin_path, 'rb') as stdin:
        t0 = time.perf_counter()
        p = spawn(argv, stdin=stdin, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
        out = b''
        deadline = t0 + timeout
        with selectors.DefaultSelector() as sel:
            for f in (p.stdout, p.stderr):
                sel.register(f, selectors.EVENT_READ)
            while sel.get_map():
                left = deadline - time.perf_counter()
                if left <= 0:
                    p.kill()
                    p.wait()
                    fail_client(argv, 'stdout/stderr still open after %g s'
                                % timeout, out)
                for key, _ in sel.select(left):
                    data = os.read(key.fd, 65536)
                    if data:
                        out += data
                    else:
                        sel.unregister(key.fileobj)
        status = p.wait()
        wall = time.perf_counter() - t0
    p.stdout.close()
    p.stderr.close()
    if status != 0:
        fail_client(argv, 'exit status %d' % status, out)
    return wall


# Peak RSS needs a small launcher: a child's ru_maxrss starts from its
# parent's high-water mark (vfork, then exec keeps it), and this process
# holds the message data.  The launcher forks and reports the child's
# ru_maxrss in KiB; a fork of the launcher starts at the launcher's own
# RSS, so that is the floor of what it can report (printed in the notes).
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
print(ru.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss(argv, stdin_path):
    with open(stdin_path, 'rb') as stdin:
        r = subprocess.run([PYTHON, '-I', '-S', '-c', LAUNCHER] + argv,
                           stdin=stdin, capture_output=True, env=ENV)
    if r.returncode != 0:
        fail_client(argv, 'exit status %d' % r.returncode, r.stderr)
    return int(r.stdout)


# ---------------------------------------------------------------- results

class Results:
    """Rows of the table, ratio lines, and every raw sample."""

    def __init__(self):
        self.rows = []
        self.notes = {}
        self.raw = {}

    def row(self, scen, measure, samples, target='', met=None):
        """samples: client -> list of numbers (missing: not measured)."""
        self.rows.append((scen, measure, samples, target, met))
        self.raw.setdefault(str(scen), {})[measure] = samples

    def note(self, scen, text):
        self.notes.setdefault(scen, []).append(text)


def med(xs):
    return statistics.median(xs)


def num(x):
    if float(x).is_integer():
        return '%d' % x
    if abs(x) >= 100:
        return '%.0f' % x
    if abs(x) >= 10:
        return '%.1f' % x
    return '%.2f' % x


def cell(xs):
    if not xs:
        return '–'
    if len(xs) == 1:
        return num(xs[0])
    return '%s / %s / %s' % (num(min(xs)), num(med(xs)), num(max(xs)))


def ms(xs):
    return [x * 1000 for x in xs]


def ratio(a, b):
    return a / b if b else float('inf')


def verdict(ok):
    return '–' if ok is None else ('**yes**' if ok else '**NO**')


# ---------------------------------------------------------------- scenarios

def interleave(runs, jobs):
    """Run jobs (name -> callable returning a sample) `runs` times each,
    one of each per round, starting with a different one each round."""
    names = list(jobs)
    out = {n: [] for n in names}
    for i in range(runs):
        for k in range(len(names)):
            n = names[(i + k) % len(names)]
            out[n].append(jobs[n]())
    return out


def scenario_1(ctx, res):
    """2 KB, -t, 4 recipients, to smtp-sink, no TLS: wall per message."""
    a, sink = ctx.args, ctx.sink()
    path = write_message(os.path.join(ctx.tmp, 's1.eml'), message())
    conf = mailshim_conf(os.path.join(ctx.tmp, 's1.ini'), sink.port,
                         os.path.join(ctx.tmp, 's1.queue'))
    rc = msmtprc(os.path.join(ctx.tmp, 's1.msmtprc'), sink.port)
    argv = {'mailshim': [ctx.mailshim, '-C', conf, '-t', '-i'],
            'msmtp': ['msmtp', '-C', rc, '-t'],
            'curl': curl_argv(sink.port, RCPTS, path + '.crlf')}
    for c in CLIENTS:                       # warm up caches
        run(argv[c], path)
    walls = interleave(a.small_runs, {
        c: (lambda c=c: run(argv[c], path)[0]) for c in CLIENTS})
    sink.check()
    w = {c: ms(walls[c]) for c in CLIENTS}
    m = {c: med(w[c]) for c in CLIENTS}
    res.row(1, 'wall ms per message', w,
            '≤ curl and ≤ 0.25 × msmtp',
            m['mailshim'] <= m['curl'] and
            m['mailshim'] <= 0.25 * m['msmtp'])
    res.note(1, 'mailshim/msmtp %.2f, mailshim/curl %.2f (runs: %d each)'
             % (ratio(m['mailshim'], m['msmtp']),
                ratio(m['mailshim'], m['curl']), a.small_runs))


def scenario_2(ctx, res):
    """Large message to smtp-sink: wall, CPU, peak RSS; RSS vs size."""
    a, sink = ctx.args, ctx.sink()
    conf = mailshim_conf(os.path.join(ctx.tmp, 's2.ini'), sink.port,
                         os.path.join(ctx.tmp, 's2.queue'))
    rc = msmtprc(os.path.join(ctx.tmp, 's2.msmtprc'), sink.port)

    def argv(c, path):
        return {'mailshim': [ctx.mailshim, '-C', conf, '-i', '-f', SENDER,
                             RCPTS[0]],
                'msmtp': ['msmtp', '-C', rc, '-f', SENDER, RCPTS[0]],
                'curl': curl_argv(sink.port, RCPTS[:1], path + '.crlf')}[c]

    path = write_large(os.path.join(ctx.tmp, 's2.eml'), a.large_mb << 20)
    for c in CLIENTS:
        run(argv(c, path), path, 600)
    samples = interleave(a.large_runs, {
        c: (lambda c=c: run(argv(c, path), path, 600)) for c in CLIENTS})
    remove_message(path)
    sink.check()
    wall = {c: ms([s[0] for s in samples[c]]) for c in CLIENTS}
    cpu = {c: ms([s[1] for s in samples[c]]) for c in CLIENTS}
    rss = {}
    for mb in sorted({a.rss_small_mb, a.large_mb, a.rss_big_mb}):
        path = write_large(os.path.join(ctx.tmp, 's2-%d.eml' % mb),
                           mb << 20)
        rss[mb] = {c: [peak_rss(argv(c, path), path)] for c in CLIENTS}
        remove_message(path)
    sink.check()
    mw = {c: med(wall[c]) for c in CLIENTS}
    res.row(2, 'wall ms, %d MB' % a.large_mb, wall, '≤ 1.3 × curl',
            mw['mailshim'] <= 1.3 * mw['curl'])
    res.row(2, 'CPU ms, %d MB' % a.large_mb, cpu)
    for mb in sorted(rss):
        res.row(2, 'peak RSS KiB, %d MB' % mb, rss[mb])
    lo, hi = rss[a.rss_small_mb]['mailshim'][0], \
        rss[a.rss_big_mb]['mailshim'][0]
    grow = {c: [rss[a.rss_big_mb][c][0] - rss[a.rss_small_mb][c][0]]
            for c in CLIENTS}
    res.row(2, 'RSS growth KiB, %d MB − %d MB' % (a.rss_big_mb,
                                                   a.rss_small_mb),
            grow, '≤ 1024 KiB', hi - lo <= 1024)
    mc = {c: med(cpu[c]) for c in CLIENTS}
    res.note(2, 'wall: mailshim/msmtp %.2f, mailshim/curl %.2f; CPU: '
             'mailshim/msmtp %.2f, mailshim/curl %.2f (runs: %d each; '
             'peak RSS: one run each, launcher floor %d KiB)'
             % (ratio(mw['mailshim'], mw['msmtp']),
                ratio(mw['mailshim'], mw['curl']),
                ratio(mc['mailshim'], mc['msmtp']),
                ratio(mc['mailshim'], mc['curl']), a.large_runs,
                ctx.rss_floor()))


def scenario_3(ctx, res):
    """STARTTLS + AUTH PLAIN through the proxy: wall and round trips."""
    a, relay, proxy = ctx.args, ctx.relay(), ctx.proxy(ctx.args.delay_ms)
    path = write_message(os.path.join(ctx.tmp, 's3.eml'),
                         message(3, RCPTS[:1]))
    conf = mailshim_conf(os.path.join(ctx.tmp, 's3.ini'), proxy.port,
                         os.path.join(ctx.tmp, 's3.queue'), relay.ca_file)
    rc = msmtprc(os.path.join(ctx.tmp, 's3.msmtprc'), proxy.port,
                 relay.ca_file)
    argv = {'mailshim': [ctx.mailshim, '-C', conf, '-i', '-f', SENDER,
                         RCPTS[0]],
            'msmtp': ['msmtp', '-C', rc, '-f', SENDER, RCPTS[0]],
            'curl': curl_argv(proxy.port, RCPTS[:1], path + '.crlf',
                              relay.ca_file)}
    rounds = {c: [] for c in CLIENTS}
    conns = {c: [] for c in CLIENTS}

    def one(c, keep=True):
        before = relay.count()
        wall = run(argv[c], path)[0]
        got = proxy.conns(1)
        relay.wait_count(before + 1, 10, 'scenario 3, ' + c)
        if keep:
            rounds[c].append(sum(x['rounds'] for x in got))
            conns[c].append(len(got))
        return wall

    proxy.settle(0)
    for c in CLIENTS:
        one(c, keep=False)
    walls = interleave(a.tls_runs, {c: (lambda c=c: one(c))
                                    for c in CLIENTS})
    w = {c: ms(walls[c]) for c in CLIENTS}
    m = {c: med(w[c]) for c in CLIENTS}
    mr = {c: med(rounds[c]) for c in CLIENTS}
    res.row(3, 'wall ms per message, %g ms each way' % a.delay_ms, w)
    res.row(3, 'round trips per message', rounds, '≤ curl',
            mr['mailshim'] <= mr['curl'])
    if any(n != 1 for c in CLIENTS for n in conns[c]):
        res.row(3, 'connections per message', conns)
    res.note(3, 'wall: mailshim/msmtp %.2f, mailshim/curl %.2f; round '
             'trips: mailshim %s, msmtp %s, curl %s (runs: %d each, one '
             'recipient)' % (ratio(m['mailshim'], m['msmtp']),
                             ratio(m['mailshim'], m['curl']),
                             num(mr['mailshim']), num(mr['msmtp']),
                             num(mr['curl']), a.tls_runs))


def scenario_4(ctx, res):
    """N queued messages flushed by one `mailshim -q`, against msmtp (and
    optionally curl) sending them one by one, through the proxy."""
    a, relay, proxy = ctx.args, ctx.relay(), ctx.proxy(ctx.args.delay_ms)
    n = a.queue_messages
    qdir = os.path.join(ctx.tmp, 's4.queue')
    conf = mailshim_conf(os.path.join(ctx.tmp, 's4.ini'), proxy.port, qdir,
                         relay.ca_file)
    rc = msmtprc(os.path.join(ctx.tmp, 's4.msmtprc'), proxy.port,
                 relay.ca_file)
    mdir = os.path.join(ctx.tmp, 's4.msgs')
    os.mkdir(mdir)
    msgs = []
    for i in range(n):
        rcpt = 'q%04d@example.org' % i
        msgs.append((write_message(os.path.join(mdir, '%04d.eml' % i),
                                   message(400000 + i, [rcpt])), rcpt))
    proxy.settle(0)

    def queue_files(sub):
        d = os.path.join(qdir, sub)
        return os.listdir(d) if os.path.isdir(d) else []

    # mailshim: enqueue (not part of the target), then one timed flush
    t0 = time.perf_counter()
    for path, rcpt in msgs:
        run([ctx.mailshim, '-C', conf, '-odq', '-i', '-f', SENDER, rcpt],
            path)
    enqueue = time.perf_counter() - t0
    if len(queue_files('q')) != n:
        raise BenchError('scenario 4: %d files in the queue after %d -odq, '
                         'expected as many' % (len(queue_files('q')), n))
    if proxy.settle(0.05):
        raise BenchError('scenario 4: -odq connected to the relay')
    before = relay.count()
    flush = run([ctx.mailshim, '-C', conf, '-q'], os.devnull,
                timeout=max(600, 2 * n))[0]
    relay.wait_count(before + n, 60, 'scenario 4, mailshim -q')
    left = queue_files('q') + queue_files('failed')
    if left:
        raise BenchError('scenario 4: %d files left in the queue after -q '
                         '(%s)' % (len(left), ', '.join(left[:3])))
    got = proxy.settle(1 + 4 * proxy.delay)
    totals = {'mailshim': (flush, sum(x['rounds'] for x in got), len(got))}

    # the others, one process per message, one after the other
    others = ['msmtp'] + (['curl'] if a.queue_curl else [])
    for c in others:
        before = relay.count()
        t0 = time.perf_counter()
        for path, rcpt in msgs:
            run(['msmtp', '-C', rc, '-f', SENDER, rcpt] if c == 'msmtp'
                else curl_argv(proxy.port, [rcpt], path + '.crlf',
                               relay.ca_file), path)
        total = time.perf_counter() - t0
        relay.wait_count(before + n, 60, 'scenario 4, ' + c)
        got = proxy.conns(n, 60, strict=False)
        if len(got) < n:        # delivered (checked above), not closed
            nums = [x['n'] for x in got] or [0]
            res.note(4, '%s: the proxy reported %d of its %d connections '
                     '(#%d-#%d) within 60 s; still open: #%s' % (
                         c, len(got), n, min(nums), max(nums),
                         ', #'.join(map(str, proxy.unreported()[:10]))))
        totals[c] = (total, sum(x['rounds'] for x in got), len(got))

    def col(i, f=lambda x: x):
        return {c: [f(totals[c][i])] for c in totals}

    res.row(4, 'enqueue %d with -odq, s total (not in target)' % n,
            {'mailshim': [enqueue]})
    res.row(4, '%d messages, s total (mailshim: one -q)' % n, col(0),
            '≤ 0.1 × msmtp',
            totals['mailshim'][0] <= 0.1 * totals['msmtp'][0])
    res.row(4, 'ms per message', col(0, lambda t: t * 1000 / n))
    res.row(4, 'round trips, total', col(1))
    res.row(4, 'connections', col(2))
    res.note(4, 'mailshim -q / msmtp one by one %.3f%s; enqueueing took '
             'mailshim %.1f ms per message; %g ms each way'
             % (ratio(totals['mailshim'][0], totals['msmtp'][0]),
                ', / curl one by one %.3f' % ratio(totals['mailshim'][0],
                                                   totals['curl'][0])
                if 'curl' in totals else '',
                enqueue * 1000 / n, a.delay_ms))


def scenario_5(ctx, res):
    """Caller-visible time of background delivery at two latencies."""
    a, relay = ctx.args, ctx.relay()
    path = write_message(os.path.join(ctx.tmp, 's5.eml'),
                         message(5, RCPTS[:1]))
    direct_runs = max(1, min(5, a.bg_runs // 4))
    queues = []
    for delay in (a.delay_ms, a.slow_delay_ms):
        proxy = ctx.proxy(delay)
        proxy.settle(0)
        confs = {}
        for kind, delivery in (('bg', 'background'), ('odb', 'direct'),
                               ('direct', 'direct')):
            q = os.path.join(ctx.tmp, 's5-%g-%s.queue' % (delay, kind))
            queues.append(q)
            confs[kind] = mailshim_conf(
                os.path.join(ctx.tmp, 's5-%g-%s.ini' % (delay, kind)),
                proxy.port, q, relay.ca_file, delivery)
        argv = {'bg': [ctx.mailshim, '-C', confs['bg'], '-i', '-f', SENDER,
                       RCPTS[0]],
                'odb': [ctx.mailshim, '-C', confs['odb'], '-odb', '-i', '-f',
                        SENDER, RCPTS[0]],
                'direct': [ctx.mailshim, '-C', confs['direct'], '-i', '-f',
                           SENDER, RCPTS[0]]}
        times = {k: [] for k in argv}

        def one(kind, keep=True):
            before = relay.count()
            t = run_caller(argv[kind], path)
            # let the delivery finish before the next run: no pile-up
            relay.wait_count(before + 1, 30, 'scenario 5, %s at %g ms'
                             % (kind, delay))
            proxy.conns(1)
            if keep:
                times[kind].append(t)

        for kind in ('bg', 'odb'):          # creates the queue's dirs
            one(kind, keep=False)
        for i in range(a.bg_runs):
            one('bg')
            one('odb')
            if i < direct_runs:
                one('direct')
        mb, mo = med(times['bg']), med(times['odb'])
        res.row(5, 'caller ms, delivery = background, %g ms' % delay,
                {'mailshim': ms(times['bg'])}, '< 5 ms', mb < 0.005)
        res.row(5, 'caller ms, -odb, %g ms' % delay,
                {'mailshim': ms(times['odb'])}, '< 5 ms', mo < 0.005)
        res.row(5, 'caller ms, direct (context), %g ms' % delay,
                {'mailshim': ms(times['direct'])})
        res.note(5, 'at %g ms: background/direct %.3f, -odb/direct %.3f '
                 '(runs: %d each, direct %d)'
                 % (delay, ratio(mb, med(times['direct'])),
                    ratio(mo, med(times['direct'])), a.bg_runs,
                    direct_runs))
    # the last background runner may still be tidying up
    deadline = time.monotonic() + 10
    for q in queues:
        for sub in ('q', 'failed'):
            d = os.path.join(q, sub)
            while os.path.isdir(d) and os.listdir(d):
                if time.monotonic() > deadline:
                    raise BenchError('scenario 5: %s is not empty' % d)
                time.sleep(0.05)


SCENARIOS = {1: scenario_1, 2: scenario_2, 3: scenario_3, 4: scenario_4,
             5: scenario_5}
TITLES = {1: '1. 2 KB, -t, 4 rcpts, no TLS (smtp-sink)',
          2: '2. large message, no TLS (smtp-sink)',
          3: '3. STARTTLS + AUTH PLAIN via proxy',
          4: '4. queue flush via proxy',
          5: '5. background delivery via proxy'}


class Context:
    """The run's temporary directory and its servers, started when first
    needed and stopped (Proc.stop_all) at the end."""

    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        # a copy: a rebuild during the run cannot change (or remove) it
        self.mailshim = os.path.join(tmp, 'mailshim')
        shutil.copy2(args.mailshim, self.mailshim)
        self._sink = self._relay = None
        self._proxies = {}
        self._floor = None

    def sink(self):
        if not self._sink:
            if not self.args.smtp_sink:
                raise BenchError('scenarios 1 and 2 need --smtp-sink PATH '
                                 '(bench/run fetches it)')
            self._sink = Sink(self.args.smtp_sink, self.tmp)
        return self._sink

    def relay(self):
        if not self._relay:
            self._relay = Relay(self.tmp)
        return self._relay

    def proxy(self, delay_ms):
        if delay_ms not in self._proxies:
            self._proxies[delay_ms] = Proxy(self.tmp, self.relay().port,
                                            delay_ms)
        return self._proxies[delay_ms]

    def rss_floor(self):
        if self._floor is None:
            self._floor = peak_rss(['/bin/true'], os.devnull)
        return self._floor


# ---------------------------------------------------------------- output

def first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, env=ENV, timeout=30)
        return r.stdout.decode(errors='replace').splitlines()
    except OSError as e:
        return ['(%s: %s)' % (argv[0], e)]


def header(args, mailshim):
    cpu = '?'
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    ms_lines = first_line([mailshim, '--version'])
    try:
        from importlib.metadata import version
        aio = version('aiosmtpd')
    except Exception:
        aio = '?'
    sink = args.smtp_sink_version or '?'
    if not args.smtp_sink_version and args.smtp_sink:
        deb = os.path.dirname(os.path.dirname(os.path.dirname(
            args.smtp_sink))) + '.deb'
        if os.path.exists(deb):
            sink = (first_line(['dpkg-deb', '-f', deb, 'Version']) or
                    ['?'])[0]
    info = {
        'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
        'cpu': cpu, 'nproc': os.cpu_count(), 'kernel': platform.release(),
        'mailshim': ms_lines[0] if ms_lines else '?',
        'libcurl': ms_lines[1] if len(ms_lines) > 1 else '?',
        'msmtp': (first_line(['msmtp', '--version']) or ['?'])[0],
        'curl': (first_line(['curl', '--version']) or ['?'])[0],
        'smtp-sink': 'postfix %s' % sink, 'aiosmtpd': aio,
    }
    line = ('%(date)s; %(cpu)s, nproc %(nproc)s; %(mailshim)s (%(libcurl)s);'
            ' %(msmtp)s; %(curl)s; smtp-sink %(smtp-sink)s; aiosmtpd '
            '%(aiosmtpd)s' % info)
    return line, info


def report(res, args):
    out = ['', '| scenario | measure | mailshim | msmtp | curl | target | '
           'met? |', '|---|---|---|---|---|---|---|']
    last = None
    for scen, measure, samples, target, met in res.rows:
        out.append('| %s | %s | %s | %s | %s | %s | %s |' % (
            TITLES[scen] if scen != last else '', measure,
            *(cell(samples.get(c)) for c in CLIENTS), target or '–',
            verdict(met)))
        last = scen
    out.append('')
    out.append('Cells: min / median / max (one value: one sample); '
               '"met?" is judged on medians.')
    out.append('Ratios of medians:')
    for scen in sorted(res.notes):
        for text in res.notes[scen]:
            out.append('- %d: %s' % (scen, text))
    print('\n'.join(out))
    sys.stdout.flush()


# ---------------------------------------------------------------- main

QUICK = {'small_runs': 5, 'large_runs': 1, 'large_mb': 5, 'tls_runs': 3,
         'queue_messages': 20, 'bg_runs': 5, 'rss_big_mb': 20}
FULL = {'small_runs': 40, 'large_runs': 3, 'large_mb': 50, 'tls_runs': 10,
        'queue_messages': 1000, 'bg_runs': 20, 'rss_big_mb': 200}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.
                                 RawDescriptionHelpFormatter)
    ap.add_argument('--mailshim', required=True, help='the binary to test')
    ap.add_argument('--smtp-sink', help="Postfix's smtp-sink (scenarios 1, "
                    "2); its libraries are found in ../lib/postfix")
    ap.add_argument('--smtp-sink-version', help='for the header')
    ap.add_argument('--only', help='scenarios to run, e.g. 1,3 (default: '
                    'all)')
    ap.add_argument('--quick', action='store_true',
                    help='small counts for a smoke run (%s)' % ', '.join(
                        '%s %s' % (k, v) for k, v in QUICK.items()))
    for k, v in FULL.items():
        ap.add_argument('--' + k.replace('_', '-'), type=int,
                        help='default %d' % v)
    ap.add_argument('--rss-small-mb', type=int, default=1)
    ap.add_argument('--delay-ms', type=float, default=10,
                    help='proxy delay each way, scenarios 3-5')
    ap.add_argument('--slow-delay-ms', type=float, default=100,
                    help='the second latency of scenario 5')
    ap.add_argument('--queue-curl', action='store_true',
                    help='scenario 4: curl one by one too')
    ap.add_argument('--json', help='write every raw sample here')
    a = ap.parse_args(argv)
    for k, v in FULL.items():
        if getattr(a, k) is None:
            setattr(a, k, QUICK[k] if a.quick else v)
    try:
        a.only = sorted({int(x) for x in (a.only or '1,2,3,4,5').split(',')
                         if x.strip()})
    except ValueError:
        ap.error('--only: numbers 1-5, e.g. 1,3')
    if not a.only or not set(a.only) <= set(SCENARIOS):
        ap.error('--only: numbers 1-5, e.g. 1,3')
    return a


def main():
    a = parse_args()
    if not os.access(a.mailshim, os.X_OK):
        sys.exit('bench: %s is not an executable' % a.mailshim)
    for c in ('msmtp', 'curl'):
        if not shutil.which(c):
            sys.exit('bench: %s is not installed (bench/run installs it)' % c)
    res = Results()
    tmp = tempfile.mkdtemp(prefix='mailshim-bench.')
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, through the finally
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        ctx = Context(a, tmp)
        line, info = header(a, ctx.mailshim)
        print(line)
        sys.stdout.flush()
        for s in a.only:
            t0 = time.monotonic()
            SCENARIOS[s](ctx, res)
            print('scenario %d done in %.1f s' % (s, time.monotonic() - t0),
                  file=sys.stderr)
    except BenchError as e:
        Proc.stop_all()
        if res.rows:
            report(res, a)
        sys.exit('bench: FAILED: %s' % e)
    except KeyboardInterrupt:
        sys.exit('bench: interrupted')
    finally:
        Proc.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    report(res, a)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'header': info, 'args': vars(a),
                       'samples': res.raw,
                       'targets': [{'scenario': s, 'measure': m,
                                    'target': t, 'met': ok}
                                   for s, m, _, t, ok in res.rows if t]},
                      f, indent=1)


if __name__ == '__main__':
    main()
