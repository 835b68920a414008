#!/usr/bin/python3
"""Benchmark mailshim against msmtp and the curl command-line tool (the
floor of what libcurl can do), side by side in one run, against one relay:
the test relay (aiosmtpd) on 127.0.0.1, plain SMTP without AUTH, so that
what is measured is the client.

Scenarios (each client runs them in turn, interleaved, so that drift in
the machine's load hits them all alike):
  small  a 2 KB message, -t, 4 recipients: wall time per message
  large  a 50 MB message: wall time, CPU time, peak RSS

Prints a table with min / median / max and the ratios of medians.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'compat-tests'))
from relay import Relay  # noqa: E402

RCPTS = ['r1@example.org', 'r2@example.org', 'r3@example.org',
         'r4@example.org']
SENDER = 'bench@example.net'


def small_message():
    head = ('From: Bench <%s>\nTo: %s, %s\nCc: %s\nBcc: %s\n'
            'Subject: benchmark\nDate: Sun, 22 Nov 2026 12:00:00 +0000\n'
            'Message-ID: <bench@example.net>\n\n' % (SENDER, *RCPTS))
    line = 'The quick brown fox jumps over the lazy dog. 0123456789\n'
    body = line * ((2048 - len(head)) // len(line) + 1)
    return (head + body).encode()[:2048].rsplit(b'\n', 1)[0] + b'\n'


def write_large(path, size):
    line = (b'x' * 76) + b'\n'
    with open(path, 'wb') as f:
        f.write(b'From: %s\nTo: %s\nSubject: large\n\n' %
                (SENDER.encode(), RCPTS[0].encode()))
        n = 0
        while n < size:
            f.write(line * 1024)
            n += len(line) * 1024


def crlf_copy(src, dst):
    """curl's tool sends the file as is: give it CRLF, as SMTP wants."""
    with open(src, 'rb') as i, open(dst, 'wb') as o:
        while True:
            chunk = i.read(1 << 20)
            if not chunk:
                break
            o.write(chunk.replace(b'\n', b'\r\n'))


class Clients:
    def __init__(self, tmp, mailshim, port):
        self.tmp = tmp
        self.mailshim = os.path.abspath(mailshim)
        self.port = port
        self.ms_conf = os.path.join(tmp, 'mailshim.ini')
        with open(self.ms_conf, 'w') as f:
            f.write('[mailshim]\nlocal_domain = example.net\naliases = '
                    '/dev/null\n\n[bench]\nhost = 127.0.0.1\nport = %d\n'
                    'tls = none\nhelo = client.test\n' % port)
        self.msmtprc = os.path.join(tmp, 'msmtprc')
        with open(self.msmtprc, 'w') as f:
            f.write('account bench\nhost 127.0.0.1\nport %d\ntls off\n'
                    'auth off\nfrom %s\ndomain client.test\n'
                    'account default : bench\n' % (port, SENDER))
        os.chmod(self.msmtprc, 0o600)

    def argv(self, name, scenario, msg_path):
        if name == 'mailshim':
            if scenario == 'small':
                return [self.mailshim, '-C', self.ms_conf, '-t', '-i']
            return [self.mailshim, '-C', self.ms_conf, '-i', '-f', SENDER,
                    RCPTS[0]]
        if name == 'msmtp':
            if scenario == 'small':
                return ['msmtp', '-C', self.msmtprc, '-t']
            return ['msmtp', '-C', self.msmtprc, '-f', SENDER, RCPTS[0]]
        rcpts = RCPTS if scenario == 'small' else RCPTS[:1]
        argv = ['curl', '-sS', '--url',
                'smtp://127.0.0.1:%d/client.test' % self.port,
                '--mail-from', SENDER, '--upload-file', msg_path + '.crlf']
        for r in rcpts:
            argv += ['--mail-rcpt', r]
        return argv


def run_once(argv, stdin_path):
    """(wall seconds, cpu seconds) of one run."""
    with open(stdin_path, 'rb') as stdin:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    err = p.stderr.read()
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit('bench: %s failed: %s' % (argv[0], err.decode()))
    return wall, ru.ru_utime + ru.ru_stime


# Peak RSS needs a small launcher: a child's ru_maxrss starts from its
# parent's high-water mark (vfork, then exec keeps it), and this process
# holds the relay and its messages.  The launcher forks and reports the
# child's ru_maxrss in KiB; its own start-up stays out of the wall times.
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
        r = subprocess.run(['/usr/bin/python3', '-I', '-S', '-c', LAUNCHER]
                           + argv, stdin=stdin, capture_output=True)
    if r.returncode != 0:
        sys.exit('bench: %s failed: %s' % (argv[0], r.stderr.decode()))
    return int(r.stdout)


def stats(xs):
    return min(xs), statistics.median(xs), max(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--mailshim', required=True)
    ap.add_argument('--small-runs', type=int, default=40)
    ap.add_argument('--large-runs', type=int, default=3)
    ap.add_argument('--large-mb', type=int, default=50)
    a = ap.parse_args()
    clients = ['mailshim', 'msmtp', 'curl']
    for c in ('msmtp', 'curl'):
        if not shutil.which(c):
            sys.exit('bench: %s is not installed (bench/run installs it)' % c)

    tmp = tempfile.mkdtemp(prefix='mailshim-bench.')
    relay = Relay(workdir=os.path.join(tmp, 'relay'),
                  listeners=['plain_noauth'], data_size_limit=None)
    relay.start()
    try:
        cl = Clients(tmp, a.mailshim, relay.ports['plain_noauth'])
        small = os.path.join(tmp, 'small.eml')
        with open(small, 'wb') as f:
            f.write(small_message())
        crlf_copy(small, small + '.crlf')
        large = os.path.join(tmp, 'large.eml')
        write_large(large, a.large_mb << 20)
        crlf_copy(large, large + '.crlf')

        results, rss = {}, {}
        for scenario, path, runs in (('small', small, a.small_runs),
                                     ('large', large, a.large_runs)):
            for c in clients:    # warm up caches and the relay
                run_once(cl.argv(c, scenario, path), path)
            for _ in range(runs):
                for c in clients:
                    r = run_once(cl.argv(c, scenario, path), path)
                    results.setdefault((scenario, c), []).append(r)
                relay.reset()
            for c in clients:
                rss[(scenario, c)] = peak_rss(cl.argv(c, scenario, path),
                                              path)
                relay.reset()
        report(results, rss, a, clients)
    finally:
        relay.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def report(results, rss, a, clients):
    print('mailshim vs msmtp vs curl, loopback relay (aiosmtpd), no TLS')
    print('%-8s %-9s %-26s %-26s %s' % ('scenario', 'client',
          'wall ms min/median/max', 'cpu ms min/median/max', 'peak RSS KiB'))
    for scenario in ('small', 'large'):
        for c in clients:
            rs = results[(scenario, c)]
            w = stats([r[0] * 1000 for r in rs])
            u = stats([r[1] * 1000 for r in rs])
            m = rss[(scenario, c)]
            print('%-8s %-9s %7.1f %7.1f %7.1f      %7.1f %7.1f %7.1f      %d'
                  % (scenario, c, *w, *u, m))
    print()
    for scenario in ('small', 'large'):
        med = {c: statistics.median(r[0] for r in results[(scenario, c)])
               for c in clients}
        print('%s: mailshim/msmtp %.2f, mailshim/curl %.2f (median wall '
              'time; %s runs each)' % (scenario, med['mailshim'] / med['msmtp'],
                                      med['mailshim'] / med['curl'],
                                      a.small_runs if scenario == 'small'
                                      else a.large_runs))


if __name__ == '__main__':
    main()
