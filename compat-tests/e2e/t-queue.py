#!/usr/bin/python3
"""The queue (mailshim(8), THE QUEUE): what is queued and how, queue runs,
and that no message is ever lost.

Every fault the relay can inject at submission (relay down, 421 greeting,
451 at MAIL, at RCPT and after DATA, the connection lost during DATA, an
interrupted TLS handshake) gives exit 0 and one line "mailshim: queued as
<id>: <reason>", and a queue file whose envelope and message bytes are
checked; once the relay is healthy and a queue run has run, each message
arrives exactly once, byte for byte as its queue file holds it.  The same
faults during a queue run keep the message, with the backoff of
runner_backoff (60 s after the first failure, doubling, at most 1 hour).
Then: on_tempfail = fail, -q and the next attempt, -qf, -qI/-qR/-qS,
per-recipient outcomes and failure notices, queue_lifetime, the delivery
modes (-odq, -odb, -odi), the listing (-bp, mailq), a full disk
(RLIMIT_FSIZE) and a queue directory that cannot be made, the file format's
versioning, and certificate failures (not queued: exit 78).  Last, trust
and modes: files a run leaves alone (another user's, a second hard link, a
symbolic link, writable by others), a queue directory writable by others
(exit 78), and the modes of what mailshim makes under any umask, private
(0700/0600) or shared (2770/0660).

The kills (-9 of senders and runners) and the concurrency test (100
senders, 3 runners) are in t-queue-stress.py, which imports the helpers of
this file.
"""

import collections
import os
import re
import resource
import shlex
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

ID_RE = r'[0-9a-f]{12}\.[0-9a-f]{12}'
# the one line a queued message gets on stderr
QUEUED_RE = re.compile(rf'\Amailshim: queued as ({ID_RE}): (.+)\n\Z')


def backoff(attempts):
    """The wait after the attempts-th failed attempt (mailshim(8)): 1 minute
    after the first, doubling, at most 1 hour."""
    s = 60
    for _ in range(attempts - 1):
        s = min(s * 2, 3600)
    return s


closed_port = harness.closed_port


def make_msg(tag, extra=''):
    """A message identified by its Subject (tag): a line starting with a dot
    (stuffed on the wire, not in the queue file) and an empty line in the
    body."""
    return (f'Subject: {tag}\nX-Queue-Test: {tag}\n{extra}\n'
            f'body of {tag}\n.a line starting with a dot\n\nlast line\n'
            ).encode()


def subject(data):
    m = re.search(rb'^Subject: (\S+)\r?$', data, re.M)
    return m.group(1).decode() if m else None


def tag_counts(messages):
    """Subject -> how many times the relay accepted it."""
    return collections.Counter(subject(m.data) for m in messages)


# ---- queue files -----------------------------------------------------------

class QFile:
    """A queue file, parsed by its documented format (mailshim(8)): text up
    to the first empty line, then the message as it is sent."""

    REQUIRED = ('id', 'created', 'account', 'sender', 'attempts',
                'last-attempt', 'next-attempt')

    def __init__(self, data: bytes, name=None):
        head, sep, self.message = data.partition(b'\n\n')
        if not sep:
            raise ValueError('no empty line after the envelope')
        lines = head.decode('utf-8').split('\n')
        m = re.fullmatch(r'MAILSHIM-QUEUE (\d+)', lines[0])
        if not m:
            raise ValueError(f'first line {lines[0]!r}')
        self.version = int(m.group(1))
        self.fields = {}
        self.rcpt, self.failed = [], []
        for line in lines[1:]:
            key, sep, value = line.partition(': ')
            if not sep or not re.fullmatch(r'[a-z-]+', key):
                raise ValueError(f'envelope line {line!r}')
            if key in ('rcpt', 'failed'):
                getattr(self, key).append(value)
            else:
                self.fields[key] = value
        missing = [k for k in self.REQUIRED if k not in self.fields]
        if missing:
            raise ValueError(f'missing {missing}')
        if name is not None and self.fields['id'] != name:
            raise ValueError(f'id {self.fields["id"]} in file {name}')
        if not self.message.endswith(b'\r\n'):
            raise ValueError('the message does not end with CRLF')
        self.id = self.fields['id']
        self.sender = self.fields['sender']
        self.created = int(self.fields['created'])
        self.attempts = int(self.fields['attempts'])
        self.last_attempt = int(self.fields['last-attempt'])
        self.next_attempt = int(self.fields['next-attempt'])
        self.last_error = self.fields.get('last-error')
        self.notice = self.fields.get('notice') == 'yes'

    def __repr__(self):
        return (f'QFile({self.id}, sender={self.sender!r}, rcpt={self.rcpt}, '
                f'failed={self.failed}, fields={self.fields})')


def read_qfile(path):
    with open(path, 'rb') as f:
        return QFile(f.read(), os.path.basename(path))


def edit_qfile(path, first_line=None, add=(), **fields):
    """Change envelope fields (created=..., next_attempt=...) of a queue
    file while no runner works on it, atomically, as a runner would."""
    with open(path, 'rb') as f:
        head, _, message = f.read().partition(b'\n\n')
    lines = head.decode().split('\n')
    if first_line is not None:
        lines[0] = first_line
    for key, value in fields.items():
        key = key.replace('_', '-')
        new = f'{key}: {value}'
        for i, line in enumerate(lines):
            if line.startswith(key + ': '):
                lines[i] = new
                break
        else:
            lines.append(new)
    lines += list(add)
    tmp = os.path.join(os.path.dirname(os.path.dirname(path)),
                       'edit-' + os.path.basename(path))
    with open(tmp, 'wb') as f:
        f.write('\n'.join(lines).encode() + b'\n\n' + message)
    os.replace(tmp, path)


# ---- a relay whose health changes at run time -------------------------------

class SwitchMessage:
    def __init__(self, mail_from, rcpt_tos, data):
        self.mail_from, self.rcpt_tos, self.data = mail_from, rcpt_tos, data
        self.received = time.time()


class SwitchRelay:
    """A plain-text SMTP relay on 127.0.0.1 (no TLS, no AUTH: configure
    tls = none without credentials), one thread per connection, that takes
    any address, and whose health a test changes between runs: fault is
    None (healthy) or one of FAULTS, read when a connection starts.
    delay_250 holds the reply to the final dot back that long, the message
    being already accepted (recorded): the window in which a client killed
    makes a duplicate.  The test relay's faults are tied to listeners and
    addresses; this one can fail a message, then take it."""

    FAULTS = ('greet421', 'mail451', 'rcpt451', 'data451', 'dropdata',
              'starttls_drop')
    REPLIES = {
        'greet421': '421 4.3.2 switch.test closing',
        'mail451': '451 4.3.0 switch: sender deferred',
        'rcpt451': '451 4.2.0 switch: recipient deferred',
        'data451': '451 4.3.0 switch: message deferred',
    }

    def __init__(self):
        self.fault = None
        self.delay_250 = 0.0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._messages = []
        self._active = 0
        self.connections = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(('127.0.0.1', 0))
        self._sock.listen(256)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._active += 1
            threading.Thread(target=self._session, args=(conn, self.fault),
                             daemon=True).start()

    def _session(self, conn, fault):
        conn.settimeout(30)
        f = conn.makefile('rwb')
        hard = False

        def say(*lines):
            f.write(b''.join(x.encode() + b'\r\n' for x in lines))
            f.flush()

        try:
            if fault == 'greet421':
                say(self.REPLIES[fault])
                return
            say('220 switch.test ESMTP')
            sender, rcpts = None, []
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.rstrip(b'\r\n').decode('utf-8', 'replace')
                verb = cmd.split(' ', 1)[0].upper()
                addr = re.search(r'<([^>]*)>', cmd)
                if verb == 'EHLO':
                    say('250-switch.test',
                        *(['250-STARTTLS'] if fault == 'starttls_drop'
                          else []), '250 8BITMIME')
                elif verb == 'HELO':
                    say('250 switch.test')
                elif verb == 'STARTTLS' and fault == 'starttls_drop':
                    # agree, then close instead of the handshake
                    say('220 2.0.0 ready to start TLS')
                    return
                elif verb == 'MAIL':
                    if fault == 'mail451':
                        say(self.REPLIES[fault])
                        continue
                    sender, rcpts = addr.group(1) if addr else '', []
                    say('250 2.1.0 ok')
                elif verb == 'RCPT':
                    if fault == 'rcpt451':
                        say(self.REPLIES[fault])
                        continue
                    rcpts.append(addr.group(1) if addr else '')
                    say('250 2.1.5 ok')
                elif verb == 'DATA':
                    if sender is None or not rcpts:
                        say('503 5.5.1 no valid recipients')
                        continue
                    say('354 go ahead')
                    if fault == 'dropdata':
                        f.readline()      # the first line of the message
                        hard = True       # then a reset, no reply
                        return
                    data = b''
                    while True:
                        chunk = f.readline()
                        if not chunk:
                            return
                        if chunk == b'.\r\n':
                            break
                        data += chunk[1:] if chunk.startswith(b'.') \
                            else chunk
                    if fault == 'data451':
                        say(self.REPLIES[fault])
                    else:
                        with self._lock:
                            self._messages.append(
                                SwitchMessage(sender, rcpts, data))
                            self._changed.notify_all()
                        if self.delay_250:
                            time.sleep(self.delay_250)
                        say('250 2.0.0 accepted')
                    sender, rcpts = None, []
                elif verb in ('RSET', 'NOOP'):
                    if verb == 'RSET':
                        sender, rcpts = None, []
                    say('250 2.0.0 ok')
                elif verb == 'QUIT':
                    say('221 2.0.0 bye')
                    return
                else:
                    say('502 5.5.2 not implemented')
        except (OSError, ValueError):
            pass          # a client killed, or gone: the kill tests do that
        finally:
            try:
                f.close()
            except OSError:
                pass
            try:
                if hard:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack('ii', 1, 0))
                else:
                    conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
            with self._lock:
                self._active -= 1
                self._changed.notify_all()

    @property
    def messages(self):
        with self._lock:
            return list(self._messages)

    def reset(self):
        with self._lock:
            self._messages.clear()

    def wait_for(self, pred, timeout):
        """Wait until pred(messages) or timeout; return the messages."""
        with self._changed:
            self._changed.wait_for(lambda: pred(self._messages), timeout)
            return list(self._messages)

    def wait_idle(self, timeout=10):
        with self._changed:
            return self._changed.wait_for(lambda: self._active == 0, timeout)

    def stop(self):
        self._sock.close()


# ---- one queue directory per test ---------------------------------------

class Q:
    """A test's own queue directory, and configurations pointing at it."""

    def __init__(self, env, sw, name):
        self.env, self.sw = env, sw
        self.dir = env.path('queue-' + name)
        sw.reset()
        sw.fault = None
        sw.delay_250 = 0.0
        env.relay.reset()

    def relay_cfg(self, listener='starttls', **keys):
        """The test relay's listener."""
        keys.setdefault('queue_dir', self.dir)
        return self.env.config_for(listener, **keys)

    def switch_cfg(self, **keys):
        """The switchable relay (plain text, no AUTH)."""
        keys.setdefault('port', self.sw.port)
        keys.setdefault('queue_dir', self.dir)
        return self.env.config_for('plain_noauth', username=None,
                                   password=None, **keys)

    def down_cfg(self, **keys):
        """A relay that cannot be reached: a closed port."""
        return self.switch_cfg(port=closed_port(), **keys)

    def names(self, area='q'):
        path = os.path.join(self.dir, area)
        return sorted(os.listdir(path)) if os.path.isdir(path) else []

    def path(self, qid, area='q'):
        return os.path.join(self.dir, area, qid)

    def files(self, area='q'):
        """id -> QFile of every file in area (a file that does not parse
        is a failed test and is left out)."""
        out = {}
        for name in self.names(area):
            try:
                out[name] = read_qfile(self.path(name, area))
            except (ValueError, UnicodeDecodeError) as e:
                ok(False, f'{area}/{name} parses: {e}')
        return out

    def get(self, qid, area='q'):
        try:
            return read_qfile(self.path(qid, area))
        except (OSError, ValueError) as e:
            diag(f'{area}/{qid}: {e}')
            return None


def run(env, args, msg=b'', **kw):
    return env.run(args, input=msg, **kw)


def check_queued(label, r, reason=None):
    """Exit 0 and exactly one stderr line 'mailshim: queued as <id>:
    <reason>'; returns (id, reason) or (None, None)."""
    m = QUEUED_RE.match(r.err)
    good = is_(r.rc, 0, f'{label}: exit 0') & ok(
        m, f'{label}: one line on stderr: queued as <id>: <reason>')
    if m and reason is not None:
        good &= like(m.group(2), reason, f'{label}: the reason')
    if not good:
        diag(r.describe())
    return (m.group(1), m.group(2)) if m else (None, None)


def check_file(label, q, qid, sender, rcpt, msg_tag, attempts, error=None):
    """The queue file of a message just queued: its envelope and message."""
    f = q.get(qid)
    if not ok(f is not None, f'{label}: q/{qid} exists and parses'):
        return None
    is_((f.version, f.fields['account'], f.sender, f.rcpt, f.failed,
         f.attempts),
        (1, 'test', sender, rcpt, [], attempts),
        f'{label}: envelope: version, account, sender, rcpt, attempts')
    if attempts:
        is_((f.last_error, f.next_attempt - f.last_attempt), (error, 60),
            f'{label}: last-error is the reason; next attempt 60 s later')
    else:
        is_((f.last_error, f.last_attempt, f.next_attempt), (None, 0,
            f.created), f'{label}: never tried; due at once')
    ok(abs(f.created - time.time()) < 300, f'{label}: created is now')
    like(f.message, rb'\ASubject: ' + msg_tag.encode() + rb'\r\n',
         f'{label}: the message follows the empty line, headers first')
    ok(f.message.endswith(b'\r\n\r\nbody of ' + msg_tag.encode() +
                          b'\r\n.a line starting with a dot\r\n\r\n'
                          b'last line\r\n'),
       f'{label}: the body, in CRLF, unstuffed')
    return f


def check_arrived_once(label, messages, files):
    """Each queue file's message arrived exactly once, as the file holds it
    (envelope and bytes), and nothing else arrived."""
    by_tag = {}
    for m in messages:
        by_tag.setdefault(subject(m.data), []).append(m)
    want = {subject(f.message): f for f in files}
    for tag, f in sorted(want.items()):
        got = by_tag.get(tag, [])
        if not is_(len(got), 1, f'{label}: {tag} arrived exactly once'):
            continue
        m = got[0]
        is_((m.mail_from, m.rcpt_tos), (f.sender, f.rcpt),
            f'{label}: {tag}: the envelope of its queue file')
        ok(m.data == f.message,
           f'{label}: {tag}: the bytes of its queue file')
    is_(sorted(t for t in by_tag if t not in want), [],
        f'{label}: nothing else arrived')


# ---- the tests -----------------------------------------------------------

SUBMIT_FAULTS = [
    # (label, how the relay fails, sender, recipient, reason regex)
    ('relay down', 'down', 'me@example.net', 'ok@example.org',
     r'\Acannot connect to relay 127\.0\.0\.1:\d+: '),
    ('421 greeting', 'greet421', 'me@example.net', 'ok@example.org',
     r'421 4\.3\.2 service not available'),
    ('451 at MAIL', 'starttls', 'tempfrom@example.net', 'ok@example.org',
     r'451 4\.3\.0 sender temporarily rejected'),
    ('451 at RCPT', 'starttls', 'me@example.net', 'temp451@example.org',
     r'451 4\.3\.0 <temp451@example\.org>: temporarily unavailable'),
    ('451 after DATA', 'starttls', 'me@example.net',
     'datafail451@example.org', r'451 4\.3\.0 try again later'),
    ('connection lost in DATA', 'starttls', 'me@example.net',
     'dropconn@example.org',
     r'\Aconnection to relay 127\.0\.0\.1:\d+ failed: '),
    ('TLS handshake interrupted', 'starttls_drop', 'me@example.net',
     'ok@example.org', r'\ATLS handshake with relay 127\.0\.0\.1:\d+ failed'),
]


def fault_cfg(q, how, **keys):
    if how == 'down':
        return q.down_cfg(**keys)
    if how == 'starttls_drop':
        q.sw.fault = 'starttls_drop'
        return q.switch_cfg(tls='starttls', **keys)
    return q.relay_cfg(how, **keys)


def test_submit_faults(env, sw):
    """Faults at submission: queued (exit 0, one line), the file checked;
    with on_tempfail = fail: 75 and nothing queued; then the relay healthy
    and -qf: each arrives exactly once, as its queue file holds it."""
    q = Q(env, sw, 'submit')
    files = []
    for n, (label, how, sender, rcpt, reason) in enumerate(SUBMIT_FAULTS):
        tag = f'submit-{n}'
        fault_cfg(q, how)
        env.relay.reset()
        r = run(env, ['-f', sender, rcpt], make_msg(tag))
        qid, why = check_queued(label, r, reason)
        if qid:
            f = check_file(label, q, qid, sender, [rcpt], tag, 1, why)
            if f:
                files.append(f)
        env.relay.wait_idle()
        is_(env.relay.messages, [], f'{label}: the relay accepted nothing')
        is_(q.names('tmp'), [], f'{label}: nothing left in tmp/')

        before = q.names()
        fault_cfg(q, how, on_tempfail='fail')
        r = run(env, ['-f', sender, rcpt], make_msg(tag + '-fail'))
        is_(r.rc, 75, f'{label}, on_tempfail = fail: exit 75')
        like(r.err, r'\Amailshim: (?!queued)[^\n]+\n\Z',
             f'{label}, on_tempfail = fail: one line, not "queued"')
        is_((q.names(), q.names('tmp')), (before, []),
            f'{label}, on_tempfail = fail: nothing queued')
        sw.fault = None

    # the relay healthy: one forced run delivers everything, once
    q.switch_cfg()
    sw.reset()
    r = run(env, ['-qf'])
    is_(r.rc, 0, 'healthy relay: -qf exits 0')
    check_arrived_once('submit faults, then -qf', sw.messages, files)
    is_((q.names(), q.names('failed'), q.names('tmp')), ([], [], []),
        'submit faults, then -qf: the queue is empty')
    r = run(env, ['-qf'])
    is_((r.rc, len(sw.messages)), (0, len(files)),
        'another -qf: nothing is sent again')


RUN_FAULTS = [
    # (label, fault, reason regex for last-error)
    ('relay down', 'down', r'\Acannot connect to relay 127\.0\.0\.1:\d+: '),
    ('421 greeting', 'greet421', r'421 4\.3\.2 switch\.test closing'),
    ('451 at MAIL', 'mail451', r'451 4\.3\.0 switch: sender deferred'),
    ('451 at RCPT', 'rcpt451', r'451 4\.2\.0 switch: recipient deferred'),
    ('451 after DATA', 'data451', r'451 4\.3\.0 switch: message deferred'),
    ('connection lost in DATA', 'dropdata',
     r'\Aconnection to relay 127\.0\.0\.1:\d+ failed: '),
    ('TLS handshake interrupted', 'starttls_drop',
     r'\ATLS handshake with relay 127\.0\.0\.1:\d+ failed'),
]


def test_run_faults(env, sw):
    """One message through every fault in forced queue runs: kept each
    time, attempts counted, the backoff doubling (runner_backoff), -q
    leaves it while it is not due; healthy and due: delivered once."""
    q = Q(env, sw, 'runs')
    q.switch_cfg()
    r = run(env, ['-odq', '-f', 'me@example.net', 'walk@example.org'],
            make_msg('walk'))
    is_((r.rc, r.err, len(q.names())), (0, '', 1), '-odq: queued, silent')
    [qid] = q.names() or [None]
    orig = q.get(qid) if qid else None
    if not orig:
        return
    for n, (label, fault, reason) in enumerate(RUN_FAULTS, 1):
        if fault == 'down':
            q.down_cfg()
        elif fault == 'starttls_drop':
            q.switch_cfg(tls='starttls')
        else:
            q.switch_cfg()
        sw.fault = None if fault == 'down' else fault
        conns = sw.connections
        r = run(env, ['-qf'])
        sw.fault = None
        sw.wait_idle()
        f = q.get(qid)
        is_(r.rc, 0, f'run, {label}: -qf exits 0')
        is_(sw.messages, [], f'run, {label}: nothing accepted')
        if fault != 'down':
            ok(sw.connections > conns, f'run, {label}: the relay was tried')
        if not ok(f is not None, f'run, {label}: still in q/'):
            diag(r.describe())
            return
        is_((f.attempts, f.next_attempt - f.last_attempt),
            (n, backoff(n)),
            f'run, {label}: attempt {n}, next one {backoff(n)} s later')
        like(f.last_error or '', reason, f'run, {label}: last-error')
        is_((f.sender, f.rcpt, f.failed, f.message, f.created),
            (orig.sender, orig.rcpt, [], orig.message, orig.created),
            f'run, {label}: envelope and message unchanged')
        is_(q.names(), [qid], f'run, {label}: no other file in q/')
        if n == 1:
            # not due: a plain -q leaves it alone, the relay healthy or not
            q.switch_cfg()
            conns = sw.connections
            before = open(q.path(qid), 'rb').read()
            r = run(env, ['-q'])
            is_((r.rc, sw.connections, len(sw.messages)), (0, conns, 0),
                '-q: a message not due is not tried')
            ok(open(q.path(qid), 'rb').read() == before,
               '-q: its file is unchanged')

    # healthy, but not due yet: -q waits; due: -q delivers
    q.switch_cfg()
    conns = sw.connections
    r = run(env, ['-q'])
    is_((r.rc, sw.connections, q.names()), (0, conns, [qid]),
        'healthy, not due: -q does not try it')
    edit_qfile(q.path(qid), next_attempt=int(time.time()) - 1)
    r = run(env, ['-q'])
    is_(r.rc, 0, 'due: -q exits 0')
    check_arrived_once('due: -q', sw.messages, [orig])
    is_((q.names(), q.names('failed')), ([], []), 'due: -q: queue empty')
    sw.reset()

    # the cap holds whatever the count
    q.down_cfg()
    r = run(env, ['-f', 'me@example.net', 'cap@example.org'],
            make_msg('cap'))
    qid, _ = check_queued('cap', r)
    if qid:
        edit_qfile(q.path(qid), attempts=20)
        run(env, ['-qf'])
        f = q.get(qid)
        is_(f and (f.attempts, f.next_attempt - f.last_attempt), (21, 3600),
            'after 21 attempts: the next one an hour later')
        q.switch_cfg()
        run(env, ['-qf'])
        is_((tag_counts(sw.messages), q.names()),
            ({'cap': 1}, []), 'cap: delivered once by -qf')
    sw.reset()

    # the relay unreachable: the account's other messages wait their turn
    q.switch_cfg(queue_concurrency=1)
    for tag in ('wait-1', 'wait-2', 'wait-3'):
        run(env, ['-odq', '-f', 'me@example.net', tag + '@example.org'],
            make_msg(tag))
    ids = q.names()
    q.down_cfg(queue_concurrency=1)
    run(env, ['-qf'])
    tries = [q.get(i).attempts for i in ids if q.get(i)]
    is_(sorted(tries), [0, 0, 1], 'relay down (queue_concurrency = 1): one '
        'message tried, the others wait for the next run')
    tried = [i for i in ids if q.get(i) and q.get(i).attempts]
    q.switch_cfg()
    run(env, ['-q'])
    is_((sum(tag_counts(sw.messages).values()), q.names()), (2, tried),
        'relay healthy, -q: the two that waited are sent, the one tried '
        'waits for its next attempt')
    run(env, ['-qf'])
    is_((sorted(tag_counts(sw.messages).items()), q.names()),
        ([('wait-1', 1), ('wait-2', 1), ('wait-3', 1)], []),
        'then -qf: the third; each exactly once')
    sw.reset()


def test_select(env, sw):
    """-qR, -qS and -qI choose messages, due or not; -q alone takes none
    that is not due."""
    q = Q(env, sw, 'select')
    q.down_cfg()
    spec = [('sel-a', 'alice@a.example', 'x1@x.example'),
            ('sel-b', 'bob@b.example', 'y1@y.example'),
            ('sel-c', 'carol@c.example', 'z1@z.example'),
            ('sel-d', 'bob@b.example', 'x2@x.example')]
    ids = {}
    for tag, sender, rcpt in spec:
        r = run(env, ['-f', sender, rcpt], make_msg(tag))
        ids[tag], _ = check_queued(f'select: {tag}', r)
    q.switch_cfg()
    conns = sw.connections
    run(env, ['-q'])
    run(env, ['-qSnobody'])
    run(env, ['-qRnowhere.example'])
    is_((sw.connections, len(q.names())), (conns, 4),
        'select: -q (none due), -qSnobody, -qRnowhere.example: nothing')
    for args, want in ((['-qRx.example'], {'sel-a', 'sel-d'}),
                       (['-qSbob'], {'sel-b'}),
                       (['-qI' + (ids['sel-c'] or 'x')[:-1]], {'sel-c'})):
        sw.reset()
        r = run(env, args)
        is_((r.rc, set(tag_counts(sw.messages))), (0, want),
            f'select: {args[0]} delivers exactly {sorted(want)}')
    is_(q.names(), [], 'select: the queue is empty')


def test_per_recipient(env, sw):
    """In a queue run each recipient has its own fate; failure notices."""
    q = Q(env, sw, 'rcpt')
    q.relay_cfg()
    env.relay.reset()
    sender = 'sender@example.org'
    r = run(env, ['-odq', '-f', sender, 'ok@example.org',
                  'temp451@example.org', 'reject550@example.org'],
            make_msg('mixed', 'Message-ID: <mixed.1@example.org>\n'))
    [qid] = q.names() or [None]
    orig = q.get(qid) if qid else None
    if not ok(r.rc == 0 and orig, 'mixed: queued by -odq'):
        return
    run(env, ['-q'])
    env.relay.wait_idle()
    msgs = env.relay.messages
    is_([(m.rcpt_tos, subject(m.data)) for m in msgs],
        [(['ok@example.org'], 'mixed')], 'mixed: the relay got it for ok@ '
        'only')
    ok(msgs and msgs[0].data == orig.message,
       'mixed: as the queue file holds it')
    files = q.files()
    f = files.pop(qid, None)
    reply550 = ('550 5.1.1 <reject550@example.org>: Recipient address '
                'rejected: User unknown')
    is_(f and (f.rcpt, f.failed, f.attempts),
        (['temp451@example.org'], ['reject550@example.org ' + reply550], 1),
        'mixed: temp451 waits, reject550 failed with the reply')
    like(f and f.last_error, r'451 4\.3\.0 <temp451@example\.org>',
         'mixed: last-error is the 451')
    notices = list(files.values())
    is_([(n.sender, n.rcpt, n.notice) for n in notices],
        [('', [sender], True)],
        'mixed: a failure notice queued, null sender, to the sender')

    env.relay.reset()
    run(env, ['-q'])
    env.relay.wait_idle()
    msgs = env.relay.messages
    is_([(m.mail_from, m.rcpt_tos) for m in msgs], [('', [sender])],
        'mixed: the next -q sends the notice, MAIL FROM:<>, to the sender '
        '(and does not retry temp451, not due)')
    body = msgs[0].data if msgs else b''
    for what, text in (('the recipient and the reply',
                        b'reject550@example.org ' + reply550.encode()),
                       ('the original Subject', b'\r\nSubject: mixed\r\n'),
                       ('the original Message-ID',
                        b'\r\nMessage-ID: <mixed.1@example.org>\r\n'),
                       ('the queue id', qid.encode())):
        ok(text in body, f'notice: holds {what}')
    ok(b'body of mixed' not in body, 'notice: not the original body')
    is_(q.names(), [qid], 'mixed: the notice is gone from q/, temp451 waits')

    # past queue_lifetime (2h here): what is left fails, file to failed/
    q.relay_cfg(queue_lifetime='2h')
    edit_qfile(q.path(qid), created=int(time.time()) - 3600)
    env.relay.reset()
    run(env, ['-qf'])
    f = q.get(qid)
    is_(f and (f.rcpt, f.attempts), (['temp451@example.org'], 2),
        'lifetime 2h, 1 hour old: still waiting after -qf')
    edit_qfile(q.path(qid), created=int(time.time()) - 3 * 3600)
    run(env, ['-qf'])
    env.relay.wait_idle()
    is_(env.relay.messages, [], 'expired: nothing delivered')
    ok(qid not in q.names(), 'expired: no longer in q/')
    f = q.get(qid, 'failed')
    is_(f and f.rcpt, [], 'expired: in failed/, no recipient left')
    is_(f and [x.split(' ', 1)[0] for x in f.failed],
        ['reject550@example.org', 'temp451@example.org'],
        'expired: both failed: lines')
    ok(f and f.message == orig.message, 'expired: the message kept whole')
    env.relay.reset()
    run(env, ['-q'])
    env.relay.wait_idle()
    msgs = env.relay.messages
    is_([(m.mail_from, m.rcpt_tos) for m in msgs], [('', [sender])],
        'expired: a notice sent to the sender')
    ok(msgs and b'temp451@example.org' in msgs[0].data,
       'expired: the notice names the expired recipient')
    is_(q.names(), [], 'expired: q/ is empty')

    # the default lifetime is 5 days
    q.relay_cfg()
    run(env, ['-odq', '-f', sender, 'temp451@example.org'], make_msg('old'))
    [qid] = q.names() or ['x']
    edit_qfile(q.path(qid), created=int(time.time()) - 4 * 86400)
    run(env, ['-qf'])
    ok(qid in q.names(), 'default lifetime: 4 days old still waits')
    edit_qfile(q.path(qid), created=int(time.time()) - 5 * 86400 - 60)
    run(env, ['-qf'])
    ok(qid not in q.names() and q.get(qid, 'failed'),
       'default lifetime: 5 days old fails, to failed/')
    env.relay.reset()
    run(env, ['-q'])
    is_(q.names(), [], 'default lifetime: its notice sent')

    # no recipient left at once: ok@ delivered, reject550@ failed
    env.relay.reset()
    run(env, ['-odq', '-f', sender, 'ok@example.org',
              'reject550@example.org'], make_msg('okfail'))
    [qid] = q.names() or ['x']
    run(env, ['-q'])
    f = q.get(qid, 'failed')
    is_(f and (f.rcpt, len(f.failed)), ([], 1),
        'ok + reject550: moved to failed/ with its failed: line')
    ok(qid not in q.names(), 'ok + reject550: gone from q/')
    run(env, ['-q'])
    env.relay.wait_idle()
    is_(sorted((m.mail_from, tuple(m.rcpt_tos)) for m in env.relay.messages),
        [('', (sender,)), (sender, ('ok@example.org',))],
        'ok + reject550: delivered to ok@, then the notice to the sender')
    is_(q.names(), [], 'ok + reject550: q/ empty')

    # the null sender: the notice goes to postmaster (aliases, local_domain)
    for aliases, want in (('', 'postmaster@example.net'),
                          ('postmaster: pm@example.com\n',
                           'pm@example.com')):
        env.write_aliases(aliases)
        env.relay.reset()
        run(env, ['-odq', '-f', '<>', 'reject550@example.org'],
            make_msg('bounce'))
        run(env, ['-q'])
        run(env, ['-q'])
        env.relay.wait_idle()
        is_([(m.mail_from, m.rcpt_tos) for m in env.relay.messages],
            [('', [want])], f'null sender: the notice goes to {want}')
        is_(q.names(), [], f'null sender ({want}): q/ empty')
    env.write_aliases('')

    # a notice that fails makes no further notice
    env.relay.reset()
    before = set(q.names('failed'))
    bad = 'reject550@example.org'
    run(env, ['-odq', '-f', bad, bad], make_msg('loop'))
    for _ in range(3):
        run(env, ['-q'])
    env.relay.wait_idle()
    new = {i: q.get(i, 'failed') for i in set(q.names('failed')) - before}
    is_(sorted((f.sender, f.notice) for f in new.values() if f),
        [('', True), (bad, False)],
        'failing notice: the message and its notice in failed/, no third')
    is_((q.names(), env.relay.messages), ([], []),
        'failing notice: nothing in q/, nothing delivered')


def ends_at_exit(env, args, msg):
    """Run mailshim as PHP's proc_open or Symfony's Process would, reading
    its stdout and stderr to their end.  Returns its exit status and what
    each pipe gave at the moment it exited, without waiting: b'' is the
    end, None means some process (a background runner) still held it, so
    the caller would still be waiting."""
    p = subprocess.Popen(env.command(args), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env.child_env(),
                         cwd=env.dir)
    p.stdin.write(msg)
    p.stdin.close()
    rc = p.wait(timeout=30)
    ends = []
    for f in (p.stdout, p.stderr):
        os.set_blocking(f.fileno(), False)
        try:
            ends.append(os.read(f.fileno(), 65536))
        except BlockingIOError:
            ends.append(None)
        f.close()
    return rc, ends


def test_delivery_modes(env, sw):
    """delivery = queue and -odq/-odd only queue; -odi overrides it;
    delivery = background and -odb deliver without -q."""
    q = Q(env, sw, 'modes')
    n = 0
    for label, keys, args in (('delivery = queue', {'delivery': 'queue'}, []),
                              ('-odq', {}, ['-odq']),
                              ('-odd', {}, ['-odd'])):
        n += 1
        tag = f'mode-{n}'
        q.switch_cfg(**keys)
        conns = sw.connections
        r = run(env, args + ['-f', 'me@example.net', 'to@example.org'],
                make_msg(tag))
        is_((r.rc, r.err, r.out), (0, '', b''), f'{label}: exit 0, silent')
        is_(sw.connections, conns, f'{label}: the relay not contacted')
        files = list(q.files().values())
        if not is_(len(files), 1, f'{label}: one queue file'):
            continue
        check_file(label, q, files[0].id, 'me@example.net',
                   ['to@example.org'], tag, 0)
        r = run(env, ['-q'])
        check_arrived_once(f'{label}, then -q', sw.messages, files)
        is_(q.names(), [], f'{label}, then -q: queue empty')
        sw.reset()

    q.switch_cfg(delivery='queue')
    r = run(env, ['-odi', '-f', 'me@example.net', 'to@example.org'],
            make_msg('odi'))
    is_((r.rc, r.err, dict(tag_counts(sw.messages)), q.names()),
        (0, '', {'odi': 1}, []),
        '-odi over delivery = queue: delivered at once, nothing queued')
    sw.reset()

    for label, keys, args in (('delivery = background',
                               {'delivery': 'background'}, []),
                              ('-odb', {}, ['-odb'])):
        tag = 'bg-' + str(len(args))
        q.switch_cfg(**keys)
        is_(ends_at_exit(env, args + ['-f', 'me@example.net',
                                      'to@example.org'], make_msg(tag)),
            (0, [b'', b'']), f'{label}: exit 0, and stdout and stderr at '
            'their end when it exits (the runner holds neither)')
        got = sw.wait_for(lambda ms: ms, 15)
        is_(dict(tag_counts(got)), {tag: 1},
            f'{label}: delivered without -q')
        deadline = time.time() + 15
        while q.names() and time.time() < deadline:
            time.sleep(0.05)
        is_((q.names(), q.names('tmp')), ([], []),
            f'{label}: and removed from the queue')
        sw.reset()

    # -odb with the relay down: queued, the runner tries once, it waits
    q.down_cfg()
    r = run(env, ['-odb', '-f', 'me@example.net', 'to@example.org'],
            make_msg('bg-down'))
    is_((r.rc, r.err), (0, ''), '-odb, relay down: exit 0, silent')
    [qid] = q.names() or ['x']
    deadline = time.time() + 15
    while time.time() < deadline:
        f = q.get(qid)
        if not f or f.attempts:
            break
        time.sleep(0.05)
    is_(f and (f.attempts, f.next_attempt - f.last_attempt), (1, 60),
        '-odb, relay down: the background runner tried once; kept')
    q.switch_cfg()
    run(env, ['-qf'])
    is_((dict(tag_counts(sw.messages)), q.names()), ({'bg-down': 1}, []),
        '-odb, relay down, then -qf: delivered once')
    sw.reset()


run_as = harness.run_as


def parse_listing(text):
    """The blocks of -bp: a list of dicts, and the last line."""
    lines = text.split('\n')
    blocks = []
    if not lines or not lines[0].startswith('-Queue ID-'):
        return None, text
    i = 1
    while i < len(lines) and lines[i] and not lines[i].startswith('--'):
        m = re.fullmatch(rf'({ID_RE})\s+(\d+)\s+(\d{{4}}-\d\d-\d\d '
                         r'\d\d:\d\d:\d\d)\s+(\d+)\s+(\S+)', lines[i])
        a = re.fullmatch(r'\s+age (\d+d\d\dh\d\dm)(?:, last error: (.*))?',
                         lines[i + 1] if i + 1 < len(lines) else '')
        if not m or not a:
            return None, text
        b = dict(id=m.group(1), size=int(m.group(2)), arrival=m.group(3),
                 tries=int(m.group(4)), sender=m.group(5), age=a.group(1),
                 error=a.group(2), rcpts=[])
        i += 2
        while i < len(lines) and lines[i].startswith(' '):
            b['rcpts'].append(lines[i].strip())
            i += 1
        blocks.append(b)
        if i < len(lines) and lines[i] == '':
            i += 1
    return blocks, '\n'.join(lines[i:])


def test_listing(env, sw):
    q = Q(env, sw, 'list')
    q.switch_cfg()
    code, out, err = run_as(env, 'mailq', [])
    is_((code, out, err), (0, 'Mail queue is empty\n', ''),
        'mailq, nothing queued: Mail queue is empty')
    with open('/dev/full', 'wb') as full:
        p = subprocess.run(env.command(['-bp']), stdout=full,
                           stderr=subprocess.PIPE,
                           env=env.child_env(), cwd=env.dir)
    is_((p.returncode, p.stderr.decode()),
        (74, 'mailshim: cannot write the listing: No space left on '
         'device\n'), '-bp to a full device: exit 74 (EX_IOERR), and why')
    q.down_cfg()
    r = run(env, ['-f', 'pat@example.org', 'r1@example.org',
                  'r2@example.org'], make_msg('list-1'))
    p_id, why = check_queued('listing: first', r)
    r = run(env, ['-odq', '-f', '<>', 'r3@example.org'], make_msg('list-2'))
    ids = q.names()
    if not is_(len(ids), 2, 'listing: two messages queued'):
        return
    age = 2 * 86400 + 3 * 3600 + 4 * 60
    edit_qfile(q.path(p_id), created=int(time.time()) - age - 20)
    files = q.files()
    r = run(env, ['-bp'])
    is_((r.rc, r.err), (0, ''), '-bp: exit 0, silent')
    blocks, rest = parse_listing(r.out.decode())
    if not ok(blocks is not None, '-bp: the listing parses'):
        diag(r.out.decode())
        return
    want = []
    for qid in ids:
        f = files[qid]
        want.append(dict(
            id=qid, size=len(f.message),
            arrival=time.strftime('%Y-%m-%d %H:%M:%S',
                                  time.gmtime(f.created)),
            tries=f.attempts, sender=f.sender or '<>',
            age='2d03h04m' if qid == p_id else '0d00h00m',
            error=f.last_error, rcpts=f.rcpt))
    is_(blocks, want, '-bp: one block per message: id, size, arrival, '
        'tries, sender (<> for the null one), age, last error, recipients')
    total = sum(len(f.message) for f in files.values())
    is_(rest, f'-- {(total + 1023) // 1024} Kbytes in 2 Requests.\n',
        '-bp: the total')
    code, out, err = run_as(env, 'mailq', [])
    is_((code, out, err), (0, r.out.decode(), ''), 'mailq: the same listing')
    q.switch_cfg()
    run(env, ['-qf'])
    r = run(env, ['-bp'])
    is_((r.rc, r.out, r.err), (0, b'Mail queue is empty\n', ''),
        '-bp after -qf: Mail queue is empty')
    sw.reset()


def test_format(env, sw):
    """ESMTP fields are kept; unknown fields are ignored; a higher version
    is refused (and the file kept)."""
    q = Q(env, sw, 'format')
    q.relay_cfg()
    env.relay.reset()
    msg = 'Subject: eight\n\nh\u00e9llo\n'.encode()
    r = run(env, ['-odq', '-N', 'success,failure', '-R', 'hdrs', '-V',
                  'env-1', '-f', 'me@example.net', 'ok@example.org'], msg)
    [f] = list(q.files().values()) or [None]
    is_(f and {k: v.upper() for k, v in f.fields.items()
               if k in ('notify', 'ret', 'envid', 'body')},
        {'notify': 'SUCCESS,FAILURE', 'ret': 'HDRS', 'envid': 'ENV-1',
         'body': '8BITMIME'}, '-N -R -V, 8-bit body: the ESMTP fields kept')
    run(env, ['-q'])
    env.relay.wait_idle()
    is_([m.data for m in env.relay.messages], [f and f.message],
        '8-bit message: delivered as queued')

    for label, kw, delivered in (
            ('an unknown field', dict(add=['x-later-version: yes']), True),
            ('version 2', dict(first_line='MAILSHIM-QUEUE 2'), False)):
        env.relay.reset()
        run(env, ['-odq', 'ok@example.org'], make_msg('fmt'))
        [qid] = q.names() or ['x']
        edit_qfile(q.path(qid), **kw)
        r = run(env, ['-q'])
        env.relay.wait_idle()
        is_(len(env.relay.messages), int(delivered),
            f'{label}: ' + ('delivered' if delivered else 'not delivered'))
        if not delivered:
            like(r.err, r'version 2', f'{label}: -q says why')
            is_(q.names(), [qid], f'{label}: the file is kept')
            os.unlink(q.path(qid))


def test_tls_config(env, sw):
    """A certificate that fails verification is a configuration error (78,
    mailshim(8) EXIT STATUS), not a temporary failure: it would fail the
    same way in every queue run, so nothing is queued and the caller hears
    of it at once."""
    q = Q(env, sw, 'tls')
    for listener in ('tls_badcert', 'starttls_badcert'):
        q.relay_cfg(listener)
        r = run(env, ['ok@example.org'], make_msg('badcert'))
        is_(r.rc, 78, f'{listener}: exit 78')
        like(r.err, r'\Amailshim: TLS certificate [^\n]*not verified[^\n]*\n'
             r'\Z', f'{listener}: one line')
        is_(q.names(), [], f'{listener}: nothing queued')


def fsize_run(env, args, msg, limit, spool, keys_cfg):
    cmd = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) + \
        [os.environ['MAILSHIM_BIN'], '-C', keys_cfg] + args

    def limit_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run(cmd, input=msg, capture_output=True, timeout=30,
                          env=env.child_env({'TMPDIR': spool}),
                          cwd=env.dir, preexec_fn=limit_size)


def test_cannot_queue(env, sw):
    """The queue cannot be written: never exit 0; 75 or 73, one line with
    the reason(s); nothing left behind."""
    q = Q(env, sw, 'full')
    spool = env.path('spool')
    os.makedirs(spool, exist_ok=True)
    body = ''.join(f'line {i:05d} {"x" * 40}\n' for i in range(400))
    msg = ('Subject: big\n\n' + body).encode()
    spool_need = len(body) + body.count('\n')      # the body, in CRLF
    # the spool fits, the queue file (envelope, headers, body) does not;
    # then a limit the spool does not fit either
    for limit, what in ((spool_need + 64, 'queue file too big'),
                        (1000, 'spool too big')):
        for label, cfg in (('relay down', lambda: q.down_cfg()),
                           ('delivery = queue',
                            lambda: q.switch_cfg(delivery='queue')),
                           ('-odb', lambda: q.switch_cfg(
                               delivery='background'))):
            conf = cfg()
            p = fsize_run(env, ['ok@example.org'], msg, limit, spool, conf)
            err = p.stderr.decode()
            label = f'RLIMIT_FSIZE, {what}, {label}'
            ok(p.returncode in (73, 75), f'{label}: exit 75 or 73 (got '
               f'{p.returncode})')
            like(err, r'\Amailshim: [^\n]+\n\Z', f'{label}: one line')
            if limit > 1000:
                like(err, r'File too large', f'{label}: says why')
                if 'down' in label:
                    like(err, r'cannot connect to relay',
                         f'{label}: and why it was to be queued')
            is_((q.names(), q.names('tmp'), os.listdir(spool)), ([], [], []),
                f'{label}: nothing in q/, tmp/ or the spool directory')
    # direct delivery does not need the queue
    sw.reset()
    conf = q.switch_cfg()
    p = fsize_run(env, ['-f', 'me@example.net', 'ok@example.org'], msg,
                  spool_need + 64, spool, conf)
    is_((p.returncode, p.stderr, len(sw.messages)), (0, b'', 1),
        'RLIMIT_FSIZE, relay healthy: delivered at once, exit 0')
    sw.reset()

    # a queue directory that cannot be made (its parent is a file: root
    # is not stopped by modes)
    blocker = env.write_file('not-a-dir', 'x')
    bad = os.path.join(blocker, 'queue')
    for label, cfg in (
            ('relay down', lambda: q.down_cfg(queue_dir=bad)),
            ('delivery = queue', lambda: q.switch_cfg(queue_dir=bad,
                                                      delivery='queue')),
            ('-odb', lambda: q.switch_cfg(queue_dir=bad,
                                          delivery='background'))):
        cfg()
        label = f'unwritable queue_dir, {label}'
        r = run(env, ['ok@example.org'], make_msg('nodir'))
        ok(r.rc in (73, 75), f'{label}: exit 73 or 75 (got {r.rc})')
        like(r.err, r'\Amailshim: [^\n]*not-a-dir/queue[^\n]*\n\Z',
             f'{label}: one line naming the directory')
    q.switch_cfg(queue_dir=bad)
    r = run(env, ['-f', 'me@example.net', 'ok@example.org'],
            make_msg('nodir-ok'))
    is_((r.rc, r.err, dict(tag_counts(sw.messages))), (0, '',
        {'nodir-ok': 1}), 'unwritable queue_dir, relay healthy: delivered')
    sw.reset()


# ---- modes and trust --------------------------------------------------------

def untrusted_line(path, why):
    """The line a run or a listing says of a file it leaves alone."""
    return (f"mailshim: queue file '{path}' is not trusted ({why}): left in "
            "place\n")


def world_writable_line(path):
    return (f"mailshim: queue directory '{path}' is writable by others: run "
            f"chmod o-w {path}\n")


def plant(q, src, qid, tag, where=None):
    """A copy of queue file src under the id qid (its id field too), its
    Subject changed to tag, written at where (default: q/<qid>), 0600."""
    with open(q.path(src), 'rb') as f:
        data = f.read()
    data = re.sub(rb'^id: .*$', b'id: ' + qid.encode(), data, count=1,
                  flags=re.M)
    data = re.sub(rb'^Subject: \S+', b'Subject: ' + tag.encode(), data,
                  count=1, flags=re.M)
    path = where or q.path(qid)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)
    return path


def snapshot(paths):
    """What must not change of a planted file: bytes, owner, mode, links."""
    out = {}
    for p in paths:
        try:
            st = os.lstat(p)
            with open(p, 'rb') as f:
                data = f.read()
            out[p] = (data, st.st_uid, st.st_gid, st.st_mode, st.st_nlink)
        except OSError as e:
            out[p] = str(e)         # gone: a failed test, not a crash
    return out


def test_untrusted(env, sw):
    """Files a run must not deliver: another user's, a second hard link, a
    symbolic link, writable by others.  A run, -qI and -bp say each once
    ("not trusted (...): left in place"), leave it as it is, deliver the
    rest, and exit 0, as for a damaged file."""
    q = Q(env, sw, 'trust')
    q.down_cfg()
    ids = []
    for tag in ('trust-1', 'trust-2'):
        r = run(env, ['-f', 'me@example.net', 'ok@example.org'],
                make_msg(tag))
        qid, _ = check_queued(f'untrusted: {tag}', r)
        ids.append(qid)
    if None in ids:
        return
    real = [q.get(qid) for qid in ids]
    if os.geteuid() != 0:
        ok(True, 'untrusted # SKIP needs root (chown)')
        return
    # ids after the real ones (ids sort by creation time)
    bad = {'f00000000001.000000000001': 'owner uid 65534, group 65534',
           'f00000000002.000000000002': '2 hard links',
           'f00000000003.000000000003': 'a symbolic link',
           'f00000000004.000000000004': 'writable by others'}
    names = sorted(bad)
    p_owner = plant(q, ids[0], names[0], 'planted-owner')
    os.chown(p_owner, 65534, 65534)
    p_link = plant(q, ids[0], names[1], 'planted-link')
    os.link(p_link, env.path('trust-second-name'))
    elsewhere = plant(q, ids[0], names[2], 'planted-symlink',
                      env.path('trust-elsewhere'))
    os.symlink(elsewhere, q.path(names[2]))
    p_ww = plant(q, ids[0], names[3], 'planted-writable')
    os.chmod(p_ww, 0o606)
    planted = [q.path(n) for n in names]
    before = snapshot(planted)
    want_err = ''.join(untrusted_line(q.path(n), bad[n]) for n in names)

    # -bp: the listing leaves them out, with the same lines
    r = run(env, ['-bp'])
    blocks, _ = parse_listing(r.out.decode())
    is_((r.rc, r.err), (0, want_err),
        'untrusted, -bp: exit 0, one line for each planted file')
    is_(sorted(b['id'] for b in blocks or []), sorted(ids),
        'untrusted, -bp: only the two real messages are listed')

    # -qI of a planted one: said, not delivered
    q.switch_cfg()
    sw.reset()
    conns = sw.connections
    r = run(env, ['-qI' + names[0]])
    is_((r.rc, r.err, sw.connections), (0, want_err, conns),
        'untrusted, -qI<planted id>: exit 0, the lines, no connection')

    # the relay back: the real ones arrive once, the planted ones never
    r = run(env, ['-qf'])
    is_(r.rc, 0, 'untrusted, -qf: exit 0 (as for a damaged file)')
    is_(r.err, want_err, 'untrusted, -qf: exactly one line for each '
        'planted file')
    sw.wait_idle()
    check_arrived_once('untrusted, -qf', sw.messages, real)
    is_(q.names(), names, 'untrusted, -qf: the real ones are gone, the '
        'planted ones still in q/')
    is_(snapshot(planted), before, 'untrusted, -qf: the planted files '
        'unchanged (bytes, owner, mode, links)')
    is_((q.names('failed'), q.names('tmp')), ([], []),
        'untrusted, -qf: nothing moved to failed/, nothing in tmp/')

    # every run says it again, once
    r = run(env, ['-qf'])
    is_((r.rc, r.err, len(sw.messages)), (0, want_err, 2),
        'untrusted, another -qf: exit 0, the same lines, nothing sent')

    # the control: the same planted file, made trusted, is delivered
    if os.path.exists(p_owner):
        os.chown(p_owner, 0, 0)
    r = run(env, ['-qI' + names[0]])
    sw.wait_idle()
    is_((r.rc, dict(tag_counts(sw.messages)).get('planted-owner')), (0, 1),
        'control: the file chowned back to root is delivered')
    for n in names[1:]:
        if os.path.lexists(q.path(n)):
            os.unlink(q.path(n))
    sw.reset()


def test_world_writable(env, sw):
    """A queue directory others can write is refused: 78, one line, and
    not a byte to the relay; the same for an area; chmod o-w and it
    works."""
    q = Q(env, sw, 'ww')
    q.down_cfg()
    r = run(env, ['-f', 'me@example.net', 'ok@example.org'],
            make_msg('ww-1'))
    qid, _ = check_queued('world-writable: queued', r)
    if not qid:
        return
    for label, path in (('the queue directory', q.dir),
                        ('q/', os.path.join(q.dir, 'q'))):
        mode = os.stat(path).st_mode & 0o7777
        os.chmod(path, mode | 0o002)
        line = world_writable_line(path)
        q.switch_cfg()
        conns = sw.connections
        for args in (['-qf'], ['-q'], ['-qI' + qid]):
            r = run(env, args)
            is_((r.rc, r.err, r.out), (78, line, b''),
                f'{label} o+w: {args[0]}: exit 78, exactly the line')
        time.sleep(0.2)
        is_(sw.connections, conns, f'{label} o+w: the relay saw no '
            'connection')
        r = run(env, ['-bp'])
        is_((r.rc, r.err, r.out), (78, line, b''),
            f'{label} o+w: -bp: exit 78, exactly the line')
        # enqueueing
        r = run(env, ['-odq', 'ok@example.org'], make_msg('ww-odq'))
        is_((r.rc, r.err), (78, 'mailshim: message not queued: ' +
                            line[len('mailshim: '):]),
            f'{label} o+w: -odq: exit 78, not queued, why')
        q.down_cfg()
        r = run(env, ['ok@example.org'], make_msg('ww-down'))
        is_(r.rc, 78, f'{label} o+w, relay down: exit 78')
        like(r.err, r"\Amailshim: cannot connect to relay [^\n]*; message "
             r"not queued either: " + re.escape(line[len('mailshim: '):]) +
             r'\Z', f'{label} o+w, relay down: one line, both reasons')
        is_((q.names(), q.names('tmp')), ([qid], []),
            f'{label} o+w: nothing queued, nothing in tmp/')
        os.chmod(path, mode)
    q.switch_cfg()
    r = run(env, ['-qf'])
    sw.wait_idle()
    is_((r.rc, r.err, dict(tag_counts(sw.messages)), q.names()),
        (0, '', {'ww-1': 1}, []), 'chmod o-w: -qf delivers it')
    sw.reset()


def umask_run(env, args, msg, mask, config=None):
    """run() with the umask set to mask in the child (preexec_fn)."""
    cmd = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) + \
        [os.environ['MAILSHIM_BIN'], '-C', config or env.last_config] + args
    return subprocess.run(cmd, input=msg, capture_output=True, timeout=30,
                          env=env.child_env(), cwd=env.dir,
                          preexec_fn=lambda: os.umask(mask))


def modes_of(q, qid):
    """Octal modes of the queue directory, tmp/, q/, failed/ and q/<qid>."""
    paths = [q.dir] + [os.path.join(q.dir, a) for a in ('tmp', 'q',
                                                         'failed')]
    return [oct(os.lstat(p).st_mode & 0o7777) for p in paths + [q.path(qid)]]


def test_modes(env, sw):
    """The modes of what mailshim makes do not depend on the caller's umask:
    a user's own queue 0700, its files 0600; a shared queue (its top
    directory 02770) keeps 2770 areas and 0660 files, of its group; there
    the group's files are trusted, another user's of another group not."""
    for mask in (0o077, 0o000):
        q = Q(env, sw, f'umask{mask:03o}')
        cfg = q.switch_cfg(delivery='queue')
        p = umask_run(env, ['-f', 'me@example.net', 'ok@example.org'],
                      make_msg(f'umask-{mask:03o}'), mask, cfg)
        is_((p.returncode, p.stderr), (0, b''),
            f'umask {mask:03o}: queued, silent')
        [qid] = q.names() or ['x']
        is_(os.path.exists(q.path(qid)) and modes_of(q, qid),
            ['0o700'] * 4 + ['0o600'],
            f'umask {mask:03o}: queue 0700 (tmp, q, failed too), file 0600')
        r = run(env, ['-q'])
        is_((r.rc, dict(tag_counts(sw.messages))),
            (0, {f'umask-{mask:03o}': 1}), f'umask {mask:03o}: delivered')
        sw.reset()

    if os.geteuid() != 0:
        ok(True, 'shared queue # SKIP needs root (chown)')
        return
    q = Q(env, sw, 'shared')
    os.mkdir(q.dir)
    os.chown(q.dir, 0, 4242)
    os.chmod(q.dir, 0o2770)
    cfg = q.switch_cfg(delivery='queue')
    for tag in ('shared-group', 'shared-other'):
        p = umask_run(env, ['-f', 'me@example.net', 'ok@example.org'],
                      make_msg(tag), 0o077, cfg)
        is_((p.returncode, p.stderr), (0, b''), f'{tag}: queued, silent')
    ids = q.names()
    if not is_(len(ids), 2, 'shared queue: two files'):
        return
    is_([modes_of(q, qid) for qid in ids], [['0o2770'] * 4 + ['0o660']] * 2,
        'shared queue, umask 077: areas 2770, files 0660')
    is_([os.stat(q.path(qid)).st_gid for qid in ids], [4242, 4242],
        'shared queue: the files have the queue\'s group')
    os.chown(q.path(ids[0]), 65534, 4242)
    os.chown(q.path(ids[1]), 65534, 65534)
    r = run(env, ['-qf'])
    sw.wait_idle()
    is_((r.rc, r.err), (0, untrusted_line(q.path(ids[1]),
                                          'owner uid 65534, group 65534')),
        'shared queue: another user\'s file of another group is not trusted')
    is_((dict(tag_counts(sw.messages)), q.names()),
        ({'shared-group': 1}, [ids[1]]),
        'shared queue: another user\'s file of the queue\'s group is '
        'delivered; the other left in place')
    if os.path.exists(q.path(ids[1])):
        os.unlink(q.path(ids[1]))
    sw.reset()


def main():
    with harness.Env() as env:
        sw = SwitchRelay()
        try:
            test_submit_faults(env, sw)
            test_run_faults(env, sw)
            test_select(env, sw)
            test_per_recipient(env, sw)
            test_delivery_modes(env, sw)
            test_listing(env, sw)
            test_format(env, sw)
            test_tls_config(env, sw)
            test_cannot_queue(env, sw)
            test_untrusted(env, sw)
            test_world_writable(env, sw)
            test_modes(env, sw)
        finally:
            sw.stop()
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


if __name__ == '__main__':
    harness.main(main)
