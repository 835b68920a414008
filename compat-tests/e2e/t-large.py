#!/usr/bin/python3
"""End-to-end: a 200 MiB message, and memory that does not grow with it.

mailshim spools the body to a file and streams it to libcurl, so its peak
resident set should be about the same for 1 MiB and for 200 MiB.  The
message is generated streamed into a temporary file (lines of 998 octets,
the RFC 5321 maximum, LF-terminated; some start with "." or are "." or "..",
to exercise dot-stuffing) and given as stdin with -t -i.  The expected
normalised body (CRLF line ends, dots as written) is hashed while it is
generated; the relay must receive exactly those bytes after mailshim's
header section.

The child's peak RSS comes from os.wait4() (ru_maxrss, KiB), taken by a
small launcher process (see LAUNCHER).  Under MAILSHIM_TEST_WRAPPER
(valgrind...) it is the wrapper's.
"""

import hashlib
import json
import os
import pwd
import re
import shlex
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

MiB = 1024 * 1024
BIG = 200 * MiB          # normalised body size (about: whole lines)
SMALL = 1 * MiB
RSS_SLACK_KIB = 8 * 1024
LINE = 998               # octets before the line ending
RELAY_LIMIT = 256 * MiB  # what the relay advertises as SIZE and accepts
RUN_TIMEOUT = 300
ME = f'{pwd.getpwuid(os.getuid()).pw_name}@example.net'  # no -f: the user

HEADERS = (b'From: Big Sender <big@example.org>\n'
           b'To: bulk@example.com\n'
           b'Subject: a large message\n'
           b'MIME-Version: 1.0\n'
           b'Content-Type: text/plain; charset=us-ascii\n'
           b'\n')
# What the relay must see before the body: the headers, CRLF, and the Date
# and Message-ID mailshim adds (TZ=UTC).
HEADER_OUT = re.compile(
    re.escape(HEADERS[:-1].replace(b'\n', b'\r\n'))
    + rb'Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [1-9]\d? '
      rb'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} '
      rb'\d\d:\d\d:\d\d \+0000\r\n'
      rb'Message-ID: <[^<>@\s]+@example\.net>\r\n\Z')

# 4 KiB of printable filler: each line is a slice of it after its number.
_FILLER = bytes(33 + (i * 7919 + (i >> 5) * 31) % 94 for i in range(4096))
_FILLER = _FILLER.replace(b'.', b'-') * 2


def body_line(i: int) -> bytes:
    """Line i of the body, LINE octets, no line ending."""
    if i % 10007 == 5:
        return b'.'              # a lone dot: stays, -i is given
    if i % 10007 == 6:
        return b'..'
    head = b'%s%08d ' % (b'.' if i % 97 == 1 else b'', i)
    off = (i * 131) % 4096
    return head + _FILLER[off:off + LINE - len(head)]


def write_message(path: str, body_size: int):
    """Write the input (LF line ends) to path; return (number of body
    bytes the relay must get, their SHA-256 hex digest, input size)."""
    digest = hashlib.sha256()
    n_lines = -(-body_size // (LINE + 2))
    want_len = 0
    written = 0
    with open(path, 'wb') as f:
        f.write(HEADERS)
        written += len(HEADERS)
        i = 0
        while i < n_lines:
            lines = [body_line(k) for k in range(i, min(i + 1024, n_lines))]
            i += len(lines)
            chunk_in = b'\n'.join(lines) + b'\n'
            chunk_out = b'\r\n'.join(lines) + b'\r\n'
            f.write(chunk_in)
            digest.update(chunk_out)
            written += len(chunk_in)
            want_len += len(chunk_out)
    return want_len, digest.hexdigest(), written


# The launcher between this process and mailshim.  ru_maxrss is kept across
# execve(), and a child made by fork() or vfork() starts from its parent's
# memory: run from this process (the relay holds the 200 MiB it received),
# mailshim would "peak" at this process's size.  So a fresh, small
# interpreter spawns it and reports its rusage; mailshim's figure then has
# the launcher's own high-water mark as a floor, reported too.
LAUNCHER = r"""
import json, os, sys
report, argv = sys.argv[1], sys.argv[2:]
with open('/proc/self/status') as f:
    floor = [int(l.split()[1]) for l in f if l.startswith('VmHWM:')][0]
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(report, 'w') as f:
    json.dump({'status': os.waitstatus_to_exitcode(status),
               'maxrss': usage.ru_maxrss, 'floor': floor}, f)
"""


def measured_env(env):
    """The child's environment.  Under AddressSanitizer, freed blocks wait
    in a quarantine of up to 256 MiB before they are reused; OpenSSL frees
    a buffer per TLS record, so a long transfer fills it and RSS grows
    with the message for the sanitizer's sake alone.  Turn it off for the
    runs that measure memory (a no-op in a normal build)."""
    e = env.child_env()
    e['ASAN_OPTIONS'] = ':'.join(
        x for x in (e.get('ASAN_OPTIONS'), 'quarantine_size_mb=0') if x)
    return e


def run_measured(env, args, stdin_path):
    """Run mailshim with stdin from a file; return (Result, its peak RSS
    in KiB, the launcher's own in KiB, seconds)."""
    binary = os.environ.get('MAILSHIM_BIN')
    if not binary or not os.access(binary, os.X_OK):
        raise RuntimeError(f'MAILSHIM_BIN={binary!r} is not an executable '
                           'file')
    command = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) \
        + [binary, '-C', env.last_config] + args
    report = env.path('rusage.json')
    t0 = time.monotonic()
    with open(stdin_path, 'rb') as fin:
        proc = subprocess.Popen(
            [sys.executable, '-I', '-S', '-c', LAUNCHER, report] + command,
            stdin=fin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=measured_env(env), cwd=env.dir, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            timed_out = True
    seconds = time.monotonic() - t0
    try:
        with open(report) as f:
            usage = json.load(f)
        os.unlink(report)
    except (OSError, ValueError):
        usage = {'status': None, 'maxrss': 0, 'floor': 0}
    rc = None if timed_out or proc.returncode else usage['status']
    err = err.decode('utf-8', 'backslashreplace')
    if proc.returncode and not timed_out:
        err += f'\n(the launcher exited with status {proc.returncode})'
    return (harness.Result(command, rc, out, err, timed_out),
            usage['maxrss'], usage['floor'], seconds)


def send_and_check(env, label, body_size):
    """Send a message of about body_size bytes; check what arrived.
    Returns mailshim's peak RSS and the launcher's (KiB)."""
    path = env.path(f'{label}.eml')
    t0 = time.monotonic()
    want_len, want_sha, in_size = write_message(path, body_size)
    diag(f'{label}: generated {in_size} bytes of input in '
         f'{time.monotonic() - t0:.1f} s')
    try:
        r, rss, floor, seconds = run_measured(env, ['-t', '-i'], path)
    finally:
        os.unlink(path)
    diag(f'{label}: mailshim ran {seconds:.1f} s, peak RSS {rss} KiB '
         f'(its launcher: {floor} KiB)')
    if not is_(r.rc, 0, f'{label}: exit status 0'):
        diag(r.describe())
    is_((r.out, r.err), (b'', ''), f'{label}: nothing on stdout or stderr')
    msgs = env.relay.wait_for(1, timeout=10 if r.rc == 0 else 0.5)
    env.relay.wait_idle()
    is_(len(msgs), 1, f'{label}: the relay got exactly one message')
    msg = msgs[0] if msgs else None
    is_(msg and (msg.mail_from, msg.rcpt_tos), (ME, ['bulk@example.com']),
        f'{label}: envelope sender and recipient')
    data = msg.data if msg else b''
    del msgs, msg
    end = data.find(b'\r\n\r\n')
    ok(end > 0, f'{label}: a header section')
    header = data[:end + 2]
    like(header, HEADER_OUT, f'{label}: the header section, Date and '
         'Message-ID added')
    body = memoryview(data)[end + 4:]
    is_(len(data) - len(header) - 2, want_len,
        f'{label}: size of what follows the header section')
    is_(hashlib.sha256(body).hexdigest(), want_sha,
        f'{label}: SHA-256 of what follows the header section')
    body.release()
    del data, body
    env.relay.reset()
    return rss, floor


def test():
    t0 = time.monotonic()
    with harness.Env(listeners=['starttls'],
                     data_size_limit=RELAY_LIMIT) as env:
        env.config_for('starttls')
        small, floor = send_and_check(env, '1 MiB', SMALL)
        big, _ = send_and_check(env, '200 MiB', BIG)
        diag(f'peak RSS: {small} KiB for 1 MiB, {big} KiB for 200 MiB '
             f'(difference {big - small} KiB, limit {RSS_SLACK_KIB} KiB)')
        ok(small > floor, 'the 1 MiB figure is mailshim\'s own, above the '
           'launcher\'s high-water mark')
        ok(big - small < RSS_SLACK_KIB,
           'peak RSS for 200 MiB is within 8 MiB of that for 1 MiB')
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')
    diag(f'total run time {time.monotonic() - t0:.1f} s')


harness.main(test)
