#!/usr/bin/python3
"""End-to-end: the limits on mailshim's input (mailshim(8), LIMITS).

For each limit, a case exactly at it is accepted and delivered (what the
relay received is checked: the envelope recipients, and the bytes where
that is cheap), and a case one over it is refused with its exact line on
stderr and its exit status, before anything leaves: the relay saw no
connection, and no queue file was written.  Each refusal is run twice,
with delivery = direct (a message let through would reach the relay) and
with delivery = queue (it would land in the queue; a control shows that
an accepted one does).

1. Recipients: 1000 per message, after aliases and duplicates, from the
   command line (64 over it), from -t (65), from both (65 once the
   headers add to them); an alias fanning out to 1001; aliases naming
   aliases ten times over, sixteen deep (cut after 10000 addresses).
2. max_message_size: a message of exactly N bytes as sent (CRLF line
   endings: LF input counts two bytes a line) is delivered byte for byte,
   N + 1 is refused with 65; from stdin and through -bs (552).  A 50 MiB
   input over the limit: reading stops just past it (the offset of the
   file given as stdin shows how much was read).
3. The header section: 1 MiB in all, 64 KiB a physical line, at the limit
   and one byte over; an address of 998 octets and one of 999.
4. -bs: 1000 RCPTs then 452, a command line of 1000 octets then 500,
   100 errors in a row then 421.  (The 300 s idle timeout is left to the
   unit test t-smtp-stdio, which runs it at 1 s.)
5. Bounded memory: 50 MiB of header fields and no empty line is refused
   with 65 after reading little more than 1 MiB, and mailshim's peak RSS
   is within a few MiB of a run that fails on its first line.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

LISTENER = 'plain'
MiB = 1024 * 1024
RCPT_MAX = 1000
ALIAS_MAX = 10 * RCPT_MAX
HEADER_MAX = MiB
HEADER_LINE_MAX = 64 * 1024
ADDR_MAX = 998
READ_CHUNK = 64 * 1024      # mailshim's read(2) size: how far it may overshoot
RSS_SLACK_KIB = 8 * 1024
TOO_MANY = 'mailshim: too many recipients: more than 1000\n'
SENDER = 'sender@example.org'
QUEUED_RE = re.compile(r'\A250 2\.0\.0 Ok: queued as [0-9a-f.]+\Z')


def rcpts(n, start=0, domain='example.com'):
    return [f'r{i:05d}@{domain}' for i in range(start, start + n)]


def complete_headers(extra=b'', to=b'someone@example.com'):
    """A header section that needs nothing added (From, Date, Message-ID):
    what the relay receives is then exactly the input."""
    return (b'From: Sender <sender@example.org>\r\n' +
            (b'To: ' + to + b'\r\n' if to else b'') +
            b'Date: Mon, 3 Nov 2025 10:00:00 +0000\r\n'
            b'Message-ID: <limits.1@example.org>\r\n'
            b'Subject: limits\r\n' + extra)


def body_of(size):
    """CRLF body lines of up to 80 octets, size bytes in all (size >= 2)."""
    out, n = [], 0
    while size - n > 82:
        out.append(b'b' * 78 + b'\r\n')
        n += 80
    out.append(b'c' * (size - n - 2) + b'\r\n')
    return b''.join(out)


def message_of(size, extra=b'', to=b'someone@example.com'):
    """A complete message of exactly size bytes, CRLF throughout."""
    head = complete_headers(extra, to) + b'\r\n'
    return head + body_of(size - len(head))


def queue_files(env):
    out = []
    for root, _, files in os.walk(env.queue_dir):
        out += [os.path.relpath(os.path.join(root, f), env.queue_dir)
                for f in files]
    return sorted(out)


def clear_queue(env):
    shutil.rmtree(env.queue_dir, ignore_errors=True)


def configure(env, **keys):
    keys.setdefault('delivery', 'direct')
    keys.setdefault('on_tempfail', 'queue')
    return env.config_for(LISTENER, **keys)


def run(env, args, data, **keys):
    """Run mailshim with a fresh relay record and queue; return (result,
    messages, connections to the listener)."""
    clear_queue(env)
    configure(env, **keys)
    env.relay.reset()
    r = env.run(args, input=data)
    env.relay.wait_idle()
    return r, env.relay.messages, env.relay.connections[LISTENER]


def delivered(env, label, args, data, **keys):
    """Exit 0, nothing on stderr, one message; returns it (or None)."""
    r, msgs, _ = run(env, args, data, **keys)
    good = is_((r.rc, r.err, len(msgs)), (0, '', 1),
               f'{label}: exit 0, nothing on stderr, one message')
    if not good:
        diag(r.describe()[:3000])
    return msgs[0] if msgs else None


def refused(env, label, args, data, rc, err, **keys):
    """Refused with rc and exactly err on stderr, both with delivery =
    direct and with delivery = queue: no connection, no message, no queue
    file."""
    for delivery in ('direct', 'queue'):
        r, msgs, conns = run(env, args, data, delivery=delivery, **keys)
        name = f'{label} (delivery = {delivery})'
        is_(r.rc, rc, f'{name}: exit {rc}')
        is_(r.err, err, f'{name}: stderr')
        is_((conns, len(msgs), queue_files(env)), (0, 0, []),
            f'{name}: no connection to the relay, no queue file')


# ---- 1. recipients ----------------------------------------------------------

def test_queue_control(env):
    """The queue check can see a file: an accepted message with delivery =
    queue leaves one."""
    r, msgs, conns = run(env, rcpts(RCPT_MAX), message_of(300),
                         delivery='queue')
    files = queue_files(env)
    is_((r.rc, r.err, conns, len(msgs)), (0, '', 0, 0),
        'control: delivery = queue, 1000 recipients: exit 0, not sent')
    is_(len([f for f in files if f.startswith('q/')]), 1,
        'control: ... and one file in q/')
    clear_queue(env)


def test_recipients_argv(env):
    want = rcpts(RCPT_MAX)
    m = delivered(env, 'argv, 1000 recipients', ['-i'] + want,
                  message_of(300))
    is_(m and m.rcpt_tos, want, 'argv, 1000 recipients: all of them, '
        'in order')
    # the same 1000 again, the domain in upper case: the same addresses
    dup = want + rcpts(RCPT_MAX, domain='EXAMPLE.COM')
    m = delivered(env, 'argv, 2000 arguments, 1000 different', ['-i'] + dup,
                  message_of(300))
    is_(m and m.rcpt_tos, want, 'argv, duplicates: counted once')
    refused(env, 'argv, 1001 recipients', ['-i'] + rcpts(RCPT_MAX + 1),
            message_of(300), 64, TOO_MANY)
    # with -t, but the command line alone is over it: still the caller's
    head = b'To: ' + b', '.join(a.encode() for a in rcpts(5, 5000)) + \
        b'\r\n'
    refused(env, 'argv, 1001 recipients, with -t', ['-t', '-i'] +
            rcpts(RCPT_MAX + 1), message_of(300, head), 64, TOO_MANY)


def header_list(name, addrs):
    """A header field naming addrs, folded one address a line."""
    return name.encode() + b': ' + b',\r\n '.join(
        a.encode() for a in addrs) + b'\r\n'


def test_recipients_headers(env):
    want = rcpts(RCPT_MAX)
    head = header_list('Cc', want[:500]) + header_list('Bcc', want[500:])
    m = delivered(env, '-t, 1000 recipients in Cc: and Bcc:', ['-t', '-i'],
                  message_of(40000, head, to=None))
    is_(m and m.rcpt_tos, want, '-t, 1000 recipients: all of them')
    ok(m and b'Bcc' not in m.data, '-t, 1000 recipients: Bcc: removed')
    head += header_list('To', rcpts(1, RCPT_MAX))
    refused(env, '-t, 1001 recipients', ['-t', '-i'],
            message_of(40000, head, to=None), 65, TOO_MANY)
    # the same thousand named twice over
    head = header_list('To', want) + header_list('Cc', want[::-1])
    m = delivered(env, '-t, each of 1000 named twice', ['-t', '-i'],
                  message_of(60000, head, to=None))
    is_(m and m.rcpt_tos, want, '-t, duplicates: counted once')


def test_recipients_both(env):
    want = rcpts(RCPT_MAX)
    m = delivered(env, 'argv 600 + -t 400', ['-t', '-i'] + want[:600],
                  message_of(20000, header_list('To', want[600:]), to=None))
    is_(m and m.rcpt_tos, want, 'argv 600 + -t 400: all of them')
    # the headers bring the 1001st: the message's fault
    head = header_list('To', want[600:] + rcpts(1, RCPT_MAX))
    refused(env, 'argv 600 + -t 401', ['-t', '-i'] + want[:600],
            message_of(20000, head, to=None), 65, TOO_MANY)
    # overlapping: 600 + 600 with 200 in common
    m = delivered(env, 'argv 600 + -t 600, 200 of them the same',
                  ['-t', '-i'] + want[:600],
                  message_of(30000, header_list('To', want[400:]), to=None))
    is_(m and m.rcpt_tos, want, 'argv + -t, overlapping: 1000 recipients')


def test_aliases(env):
    want = rcpts(RCPT_MAX)
    over = rcpts(RCPT_MAX + 1)
    # the same targets once more through a second alias: duplicates
    lines = ['team: ' + ',\n  '.join(want),
             'crowd: ' + ', '.join(over),
             'again: team, ' + ', '.join(want[::-1])]
    # ten aliases of ten aliases of ... sixteen deep: 10^15 addresses,
    # all one
    for k in range(15):
        lines.append(f'l{k}: ' + ', '.join([f'l{k + 1}'] * 10))
    lines.append('l15: deep@example.com')
    # the same, three deep: 1110 addresses, within the limit
    for k in range(3):
        lines.append(f'm{k}: ' + ', '.join([f'm{k + 1}'] * 10))
    lines.append('m3: shallow@example.com')
    env.write_aliases('\n'.join(lines) + '\n')
    m = delivered(env, 'alias of 1000', ['-i', 'team'], message_of(300))
    is_(m and m.rcpt_tos, want, 'alias of 1000: all of them')
    m = delivered(env, 'alias of an alias and the same 1000 again',
                  ['-i', 'again'], message_of(300))
    is_(m and m.rcpt_tos, want, 'alias with duplicates: 1000')
    refused(env, 'alias of 1001', ['-i', 'crowd'], message_of(300), 64,
            TOO_MANY)
    refused(env, 'alias of 1000 and one more on the command line',
            ['-i', 'team', 'one.more@example.com'], message_of(300), 64,
            TOO_MANY)
    refused(env, 'alias of 1001 named in To: with -t', ['-t', '-i'],
            message_of(300, to=b'crowd'), 65, TOO_MANY)
    m = delivered(env, 'aliases of aliases, 1110 addresses, one distinct',
                  ['-i', 'm0'], message_of(300))
    is_(m and m.rcpt_tos, ['shallow@example.com'],
        'aliases of aliases within the limit: the one address')
    refused(env, 'aliases of aliases, 10^15 addresses', ['-i', 'l0'],
            message_of(300), 64,
            "mailshim: too many recipients: aliases expand 'l0' to more "
            f"than {ALIAS_MAX} addresses\n")
    env.write_aliases('')


def test_recipients(env):
    test_queue_control(env)
    test_recipients_argv(env)
    test_recipients_headers(env)
    test_recipients_both(env)
    test_aliases(env)


# ---- 2. max_message_size ----------------------------------------------------

SIZE = 10000
TOO_LARGE = (f'mailshim: message too large: more than {SIZE} bytes '
             '(max_message_size)\n')


def test_size_stdin(env):
    exact = message_of(SIZE)
    assert len(exact) == SIZE
    m = delivered(env, f'max_message_size = {SIZE}, {SIZE} bytes',
                  ['-i', 'r@example.com'], exact, max_message_size=SIZE)
    is_(m and m.data, exact, f'{SIZE} bytes: delivered byte for byte')
    over = message_of(SIZE + 1)
    refused(env, f'max_message_size = {SIZE}, {SIZE + 1} bytes',
            ['-i', 'r@example.com'], over, 65, TOO_LARGE,
            max_message_size=SIZE)
    # control: without the key, no limit
    m = delivered(env, f'no max_message_size, {SIZE + 1} bytes',
                  ['-i', 'r@example.com'], over)
    is_(m and m.data, over, 'no max_message_size: byte for byte')
    # LF input is counted as sent: each line ending two bytes
    lf = exact.replace(b'\r\n', b'\n')
    ok(len(lf) < SIZE - 100, f'LF input: {len(lf)} bytes in, {SIZE} sent')
    m = delivered(env, f'{len(lf)} bytes of LF input, {SIZE} as sent',
                  ['-i', 'r@example.com'], lf, max_message_size=SIZE)
    is_(m and m.data, exact, 'LF input at the limit: delivered, in CRLF')
    lf_over = over.replace(b'\r\n', b'\n')
    refused(env, f'{len(lf_over)} bytes of LF input, {SIZE + 1} as sent',
            ['-i', 'r@example.com'], lf_over, 65, TOO_LARGE,
            max_message_size=SIZE)
    # with a unit, and the headers mailshim adds do not count
    bare = message_of(1024, to=b'r@example.com')
    bare = re.sub(rb'(?m)^(Date|Message-ID): [^\r]*\r\n', b'', bare)
    bare += b'x' * (1024 - len(bare) - 2) + b'\r\n'
    assert len(bare) == 1024
    m = delivered(env, 'max_message_size = 1k, 1024 bytes without Date: '
                  'or Message-ID:', ['-i', '-t'], bare,
                  max_message_size='1k')
    ok(m and len(m.data) > 1024 and m.data.endswith(bare[-200:]),
       '1k: delivered, with Date: and Message-ID: added past 1024 bytes')
    refused(env, 'max_message_size = 1k, 1025 bytes', ['-i', '-t'],
            bare[:-2] + b'x\r\n', 65,
            'mailshim: message too large: more than 1024 bytes '
            '(max_message_size)\n', max_message_size='1k')


def run_with_file(env, args, path, launcher_report=None):
    """Run mailshim with stdin from the file at path; return (exit status,
    stderr, bytes of the file read, peak RSS in KiB or None).  With
    launcher_report, a small interpreter spawns it and reports its
    rusage (see t-large.py: ru_maxrss is kept across exec)."""
    binary = os.environ['MAILSHIM_BIN']
    command = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) + \
        [binary, '-C', env.last_config] + args
    child_env = env.child_env()
    # AddressSanitizer's quarantine holds freed blocks: not mailshim's
    child_env['ASAN_OPTIONS'] = ':'.join(
        x for x in (child_env.get('ASAN_OPTIONS'), 'quarantine_size_mb=0')
        if x)
    if launcher_report:
        command = [sys.executable, '-I', '-S', '-c', LAUNCHER,
                   launcher_report] + command
    with open(path, 'rb') as f:
        p = subprocess.run(command, stdin=f, capture_output=True,
                           timeout=120, env=child_env, cwd=env.dir)
        consumed = os.lseek(f.fileno(), 0, os.SEEK_CUR)
    rc, rss = p.returncode, None
    if launcher_report:
        with open(launcher_report) as f:
            usage = json.load(f)
        rc, rss = usage['status'], usage['maxrss']
    return rc, p.stderr.decode('utf-8', 'backslashreplace'), consumed, rss


# ru_maxrss of the spawned program, from a fresh, small interpreter
LAUNCHER = r"""
import json, os, sys
report, argv = sys.argv[1], sys.argv[2:]
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(report, 'w') as f:
    json.dump({'status': os.waitstatus_to_exitcode(status),
               'maxrss': usage.ru_maxrss}, f)
"""


def big_file(env, name, head, line, size):
    """head, then line over and over up to size bytes."""
    path = env.path(name)
    with open(path, 'wb') as f:
        f.write(head)
        n = len(head)
        chunk = line * (MiB // len(line))
        while n < size:
            f.write(chunk)
            n += len(chunk)
    return path


def test_size_reading_stops(env):
    """50 MiB on stdin, max_message_size = 1M: reading stops just past the
    limit, whatever follows."""
    limit = MiB
    path = big_file(env, 'big-body', complete_headers() + b'\r\n',
                    b'z' * 78 + b'\n', 50 * MiB)
    for delivery in ('direct', 'queue'):
        clear_queue(env)
        configure(env, delivery=delivery, max_message_size='1M')
        env.relay.reset()
        rc, err, consumed, _ = run_with_file(env, ['-i', 'r@example.com'],
                                             path)
        env.relay.wait_idle()
        name = f'50 MiB, max_message_size = 1M (delivery = {delivery})'
        is_((rc, err), (65, f'mailshim: message too large: more than '
                        f'{limit} bytes (max_message_size)\n'),
            f'{name}: exit 65, stderr')
        ok(limit * 78 // 80 <= consumed <= limit + READ_CHUNK,
           f'{name}: read {consumed} bytes of the input, no more than the '
           'limit and one read')
        is_((env.relay.connections[LISTENER], queue_files(env)), (0, []),
            f'{name}: no connection, no queue file')
    os.unlink(path)


def bs_session(env, script, **keys):
    """mailshim -bs fed script (bytes) at once, pipelined: returns (exit
    status, the replies (each a list of lines), stderr)."""
    clear_queue(env)
    configure(env, **keys)
    env.relay.reset()
    command = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) + \
        [os.environ['MAILSHIM_BIN'], '-C', env.last_config, '-bs']
    p = subprocess.run(command, input=script, capture_output=True,
                       timeout=60, env=env.child_env(), cwd=env.dir)
    env.relay.wait_idle()
    replies, cur = [], []
    for line in p.stdout.decode('utf-8', 'backslashreplace').split('\r\n'):
        if not line:
            continue
        cur.append(line)
        if len(line) < 4 or line[3] != '-':
            replies.append(cur)
            cur = []
    return p.returncode, replies, p.stderr.decode('utf-8', 'replace')


def bs_transaction(rcpt_list, data):
    dot = re.sub(rb'(?m)^\.', b'..', data)
    return (b'MAIL FROM:<' + SENDER.encode() + b'>\r\n' +
            b''.join(b'RCPT TO:<' + r.encode() + b'>\r\n'
                     for r in rcpt_list) +
            b'DATA\r\n' + dot + b'.\r\n')


def finals(replies):
    """The replies to the end of each message: those after a 354."""
    return [replies[i + 1][0] for i, r in enumerate(replies[:-1])
            if r[0].startswith('354 ')]


def test_size_bs(env):
    exact, over = message_of(SIZE), message_of(SIZE + 1)
    script = (b'EHLO client.test\r\n' +
              bs_transaction(['r@example.com'], exact) +
              bs_transaction(['r@example.com'], over) + b'QUIT\r\n')
    rc, replies, err = bs_session(env, script, max_message_size=SIZE)
    is_((rc, err), (0, ''), '-bs size: exit 0, nothing on stderr')
    ok(replies and f'250-SIZE {SIZE}' in replies[1],
       f'-bs size: EHLO offers SIZE {SIZE}')
    got = finals(replies)
    is_(len(got), 2, '-bs size: two final replies')
    like(got[0] if got else '', QUEUED_RE, f'-bs: {SIZE} bytes: 250')
    is_(got[1:], ['552 5.3.4 Message size exceeds fixed limit'],
        f'-bs: {SIZE + 1} bytes: 552')
    msgs = env.relay.messages
    is_([m.data for m in msgs], [exact],
        f'-bs: the relay got the {SIZE} bytes, byte for byte, and only them')
    is_(queue_files(env), [], '-bs size: no queue file')


# ---- 3. the header section --------------------------------------------------

def filled_header(total, extra=b''):
    """A complete header section of exactly total bytes (the header
    fields with their CRLFs, without the empty line after them), filled
    with lines of 1000 octets (998 and CRLF: none is folded)."""
    head = complete_headers(extra)
    lines, n, i = [], len(head), 0
    while total - n > 0:
        size = min(1000, total - n)
        if 0 < total - n - size < 20:
            size -= 20          # leave room for a last line of its own
        prefix = b'X-Fill-%06d: ' % i
        lines.append(prefix + b'f' * (size - len(prefix) - 2) + b'\r\n')
        n += size
        i += 1
    out = head + b''.join(lines)
    assert len(out) == total, (len(out), total)
    return out


def test_header_section(env):
    exact = filled_header(HEADER_MAX) + b'\r\nbody\r\n'
    m = delivered(env, 'a header section of exactly 1 MiB',
                  ['-i', 'r@example.com'], exact)
    is_(m and m.data, exact, '1 MiB of header: delivered byte for byte')
    over = filled_header(HEADER_MAX + 1) + b'\r\nbody\r\n'
    refused(env, 'a header section of 1 MiB and one byte',
            ['-i', 'r@example.com'], over, 65,
            f'mailshim: header section too large (more than {HEADER_MAX} '
            'bytes)\n')


def long_line(total):
    """One physical header line of exactly total octets (no line ending),
    words of 64 octets: folded before white space, it unfolds as it was."""
    line = b'X-Long:'
    while len(line) < total:
        line += b' ' + b'w' * min(63, total - len(line) - 1)
    assert len(line) == total
    return line


def unfold(data):
    return re.sub(rb'\r\n(?=[ \t])', b'', data)


def test_header_line(env):
    line = long_line(HEADER_LINE_MAX)
    m = delivered(env, 'a header line of 64 KiB', ['-i', 'r@example.com'],
                  complete_headers(line + b'\r\n') + b'\r\nbody\r\n')
    data = m.data if m else b''
    ok(data and max(len(x) for x in data.split(b'\r\n')) <= 998,
       '64 KiB line: folded to lines of at most 998 octets')
    ok(line + b'\r\n' in unfold(data), '64 KiB line: unfolded, as it was')
    refused(env, 'a header line of 64 KiB and one byte',
            ['-i', 'r@example.com'],
            complete_headers(long_line(HEADER_LINE_MAX + 1) + b'\r\n') +
            b'\r\nbody\r\n', 65,
            f'mailshim: header line too long (more than {HEADER_LINE_MAX} '
            'bytes)\n')
    # a line ending cuts the count: the next line starts from zero
    two = line + b'\r\n ' + b'v' * (HEADER_LINE_MAX - 1) + b'\r\n'
    delivered(env, 'a field of two lines of 64 KiB', ['-i', 'r@example.com'],
              complete_headers(two) + b'\r\nbody\r\n')


def address_of(size):
    """An address of exactly size octets: a local part of 64 and domain
    labels of up to 63."""
    local = b'l' * 64
    labels = []
    left = size - len(local) - 1 - len(b'.example')
    while left > 0:
        n = min(63, left - (1 if labels else 0))
        if labels:
            left -= 1
        labels.append(b'd' * n)
        left -= n
    addr = local + b'@' + b'.'.join(labels) + b'.example'
    assert len(addr) == size, (len(addr), size)
    return addr.decode()


def test_address(env):
    """The longest address: 998 octets (an RFC 5322 line).  RFC 5321's
    limits are tighter (a path of 256 octets) but they are the relay's to
    enforce, and the test relay enforces them: the address at the limit
    is shown accepted with -bv, which sends nothing."""
    good, bad = address_of(ADDR_MAX), address_of(ADDR_MAX + 1)
    configure(env)
    r = env.run(['-bv', '-f', SENDER, good])
    is_((r.rc, r.out.decode(), r.err), (0, f'{SENDER}\n{good}\n', ''),
        f'an address of {ADDR_MAX} octets: -bv takes it')
    r = env.run(['-bv', '-f', SENDER, bad])
    is_(r.rc, 65, f'an address of {ADDR_MAX + 1} octets: -bv refuses it')
    # the message quotes the first 200 octets
    refused(env, f'an address of {ADDR_MAX + 1} octets', ['-i', bad],
            message_of(300), 65,
            f"mailshim: command-line recipient: invalid address "
            f"'{bad[:200]}...': too long\n")


# ---- 4. -bs -----------------------------------------------------------------

def test_bs(env):
    want = rcpts(RCPT_MAX)
    script = (b'EHLO client.test\r\n' +
              bs_transaction(want + rcpts(2, RCPT_MAX), message_of(300)) +
              b'QUIT\r\n')
    rc, replies, err = bs_session(env, script)
    is_((rc, err), (0, ''), '-bs 1002 RCPTs: exit 0, nothing on stderr')
    rcpt_replies = [r[0] for r in replies[3:3 + RCPT_MAX + 2]]
    is_(rcpt_replies, ['250 2.1.5 Ok'] * RCPT_MAX +
        ['452 4.5.3 Error: too many recipients'] * 2,
        '-bs: 1000 RCPTs 250, then 452')
    like(''.join(finals(replies)), QUEUED_RE,
         '-bs: the message is accepted')
    msgs = env.relay.messages
    is_([m.rcpt_tos for m in msgs], [want], '-bs: delivered to the 1000')

    # an alias fanning out past the limit: refused at the final dot
    env.write_aliases('crowd: ' + ', '.join(rcpts(RCPT_MAX + 1)) + '\n')
    script = (b'HELO client.test\r\n' +
              bs_transaction(['crowd'], message_of(300)) + b'QUIT\r\n')
    rc, replies, err = bs_session(env, script)
    env.write_aliases('')
    is_((rc, err, finals(replies)),
        (0, '', ['554 5.6.0 too many recipients: more than 1000']),
        '-bs: an alias of 1001: 554 at the final dot')
    is_((env.relay.connections[LISTENER], queue_files(env)), (0, []),
        '-bs: an alias of 1001: no connection, no queue file')

    # command lines: 1000 octets with the CRLF, then 1001
    script = (b'NOOP ' + b'x' * 993 + b'\r\n' + b'NOOP ' + b'x' * 994 +
              b'\r\nQUIT\r\n')
    rc, replies, err = bs_session(env, script)
    is_(([r[0] for r in replies[1:]], rc),
        (['250 2.0.0 Ok', '500 5.5.2 Line too long', '221 2.0.0 Bye'], 0),
        '-bs: a command of 1000 octets: 250; 1001: 500')

    # 99 errors, a good command, 100 errors: 421 at the 100th
    script = b'bogus\r\n' * 99 + b'NOOP\r\n' + b'bogus\r\n' * 100 + \
        b'NOOP\r\n'
    rc, replies, err = bs_session(env, script)
    bogus = '500 5.5.1 Error: command not recognized'
    is_(([r[0] for r in replies[1:]], rc),
        ([bogus] * 99 + ['250 2.0.0 Ok'] + [bogus] * 100 +
         ['421 4.7.0 example.net Error: too many errors'], 76),
        '-bs: 99 errors, NOOP, 100 errors: the 100th is followed by 421 '
        'and the end (exit 76)')


# ---- 5. memory --------------------------------------------------------------

def test_memory(env):
    """50 MiB of header fields and no empty line: refused with 65 after
    little more than 1 MiB, in about the memory of a run refused at its
    first line."""
    configure(env)
    tiny = env.write_file('nul', b'Subject: a NUL \0 byte\n')
    rc, err, _, base = run_with_file(env, ['-i', 'r@example.com'], tiny,
                                     env.path('rusage.json'))
    is_((rc, err), (65, 'mailshim: the header section contains a NUL '
                    'byte\n'), 'memory baseline: refused at once')
    path = big_file(env, 'big-header', b'',
                    b'X-Filler: ' + b'h' * 68 + b'\n', 50 * MiB)
    env.relay.reset()
    clear_queue(env)
    rc, err, consumed, rss = run_with_file(
        env, ['-i', 'r@example.com'], path, env.path('rusage.json'))
    env.relay.wait_idle()
    os.unlink(path)
    diag(f'peak RSS: {rss} KiB for 50 MiB of header fields, {base} KiB '
         'for a run refused at its first line')
    is_((rc, err), (65, f'mailshim: header section too large (more than '
                    f'{HEADER_MAX} bytes)\n'),
        '50 MiB header section: exit 65, stderr')
    ok(HEADER_MAX <= consumed <= HEADER_MAX + 2 * READ_CHUNK,
       f'50 MiB header section: read {consumed} bytes, about 1 MiB')
    ok(base and rss and rss - base < RSS_SLACK_KIB,
       f'50 MiB header section: peak RSS within {RSS_SLACK_KIB} KiB of '
       'the baseline')
    is_((env.relay.connections[LISTENER], queue_files(env)), (0, []),
        '50 MiB header section: no connection, no queue file')


def main():
    with harness.Env(listeners=[LISTENER], line_length_limit=4096) as env:
        test_recipients(env)
        test_size_stdin(env)
        test_size_reading_stops(env)
        test_size_bs(env)
        test_header_section(env)
        test_header_line(env)
        test_address(env)
        test_bs(env)
        test_memory(env)
        is_(env.relay.errors, [], 'the relay saw no errors')


harness.main(main)
