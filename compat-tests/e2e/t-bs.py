"""sendmail -bs: SMTP with the caller on standard input and output.

Every case drives the real binary as a subprocess over pipes, as a client
library does: it writes commands, reads the replies line by line (each
read has a deadline, so that a hang fails instead of blocking the suite),
and checks every reply that matters, the exit status, and what the relay
received (envelope and exact bytes).

1. Symfony Mailer's dialogue (SendmailTransport with -bs drives its
   SmtpTransport: HELO [127.0.0.1], MAIL/RCPT/DATA, its dot-stuffing, RSET
   after an error, NOOP before the next message, QUIT after 100 messages):
   a refused recipient gives a 5xx at the final dot with the relay's text,
   and 100 messages arrive each exactly once over one relay connection.
2. The EHLO reply, exactly (Laravel's "sendmail -bs -i"; -i changes
   nothing in SMTP: dots are still unstuffed).
3. Pipelining: replies in order for commands sent in one write.
4. Dot-unstuffing, bare LF line ends, the headers mailshim adds, Bcc.
5. Truthful final replies: relay down (queued), on_tempfail = fail, the
   relay's 5xx, 4xx after DATA, delivery = queue and background, a queue
   that cannot be written, auth and malformed messages; several accounts
   (match_from, from_policy) and the connection kept per account.
6. Hostile input: long lines, NUL bytes, binary, commands out of order,
   garbage, end of input inside and after a transaction, lower case,
   max_message_size (SIZE= at MAIL and the data itself), too many errors.
7. A client that closes its end of standard output: the process exits.
"""

import collections
import os
import re
import select
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

DEADLINE = 15                   # seconds for any one reply or exit
ID_RE = r'[0-9a-f]{12}\.[0-9a-f]{12}'
QUEUED_RE = re.compile(rf'\A250 2\.0\.0 Ok: queued as ({ID_RE})\Z')
HOST = 'example.net'            # config_for()'s local_domain
GREETING = f'220 {HOST} ESMTP mailshim'
DATE_RE = (rb'(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} '
           rb'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} '
           rb'\d\d:\d\d:\d\d [+-]\d{4}')
MSGID_RE = rb'<[^<>@\s]+@' + re.escape(HOST.encode()) + rb'>'
# RFC 2034: with ENHANCEDSTATUSCODES offered, every reply but the
# greeting and the HELO/EHLO reply starts its text with one
ENH = r'[245]\.\d{1,3}\.\d{1,3}'


# ---- a client ---------------------------------------------------------------

class Bs:
    """mailshim -bs as a subprocess, read and written like a client."""

    def __init__(self, env, args=(), config=None):
        cmd = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) + [
            os.environ['MAILSHIM_BIN'], '-C', config or env.last_config,
            '-bs'] + list(args)
        self.errf = tempfile.TemporaryFile(dir=env.dir)
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.errf,
                                  env=env.child_env(), cwd=env.dir)
        self.buf = b''
        self.eof = False
        self.broken = False       # a write found stdin closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdin, self.p.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        self.errf.close()

    def send(self, data) -> bool:
        """Write data (str or bytes) at once.  Keep it under the pipe's
        capacity (64 KiB): a write never blocks then."""
        if isinstance(data, str):
            data = data.encode()
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
            return True
        except (BrokenPipeError, ValueError):
            self.broken = True
            return False

    def line(self, timeout=DEADLINE):
        """The next reply line without its CRLF; a line without the CR
        gets ' [bare LF]' appended (so that it matches nothing expected);
        None at the end of output or the deadline."""
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b'\n' not in self.buf and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                diag(f'no reply within {timeout} s (pending {self.buf!r})')
                return None
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if chunk:
                    self.buf += chunk
                else:
                    self.eof = True
        if b'\n' not in self.buf:
            return None
        raw, _, self.buf = self.buf.partition(b'\n')
        text = raw.decode('utf-8', 'backslashreplace')
        return text[:-1] if text.endswith('\r') else text + ' [bare LF]'

    def reply(self, timeout=DEADLINE):
        """A whole reply, its lines joined with '\\n'; None if nothing
        came (a reply cut short ends with '\\n[EOF]')."""
        lines = []
        while True:
            line = self.line(timeout)
            if line is None:
                return '\n'.join(lines + ['[EOF]']) if lines else None
            lines.append(line)
            if len(line) < 4 or line[3] != '-':
                return '\n'.join(lines)

    def cmd(self, text):
        self.send(text.encode('utf-8', 'surrogateescape') + b'\r\n'
                  if isinstance(text, str) else text + b'\r\n')
        return self.reply()

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass

    def wait(self, timeout=DEADLINE):
        """The exit status; None (and the process killed) past timeout."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            diag(f'mailshim -bs still running after {timeout} s: killed')
            self.p.kill()
            self.p.wait()
            return None

    def finish(self, timeout=DEADLINE):
        """Close stdin, wait; returns (exit status, output left)."""
        self.close_stdin()
        rc = self.wait(timeout)
        rest = []
        while True:
            line = self.line(1)
            if line is None:
                break
            rest.append(line)
        return rc, rest

    @property
    def err(self):
        self.errf.seek(0)
        return self.errf.read().decode('utf-8', 'backslashreplace')


def transaction(bs, sender, rcpts, data, stuffed=False, end=b'.\r\n'):
    """MAIL, RCPT..., DATA, the data (dot-stuffed here unless stuffed),
    end: the list of replies."""
    replies = [bs.cmd(f'MAIL FROM:<{sender}>')]
    replies += [bs.cmd(f'RCPT TO:<{r}>') for r in rcpts]
    replies.append(bs.cmd('DATA'))
    if not stuffed:
        data = re.sub(rb'(?m)^\.', b'..', data)
    bs.send(data + end)
    replies.append(bs.reply())
    return replies


def ok_replies(n_rcpt):
    return ['250 2.1.0 Ok'] + ['250 2.1.5 Ok'] * n_rcpt + \
        ['354 End data with <CR><LF>.<CR><LF>']


def queued_id(reply):
    m = QUEUED_RE.match(reply or '')
    return m.group(1) if m else None


def read_queue(qdir):
    """id -> (fields, rcpts, message) of every file in qdir/q."""
    out = {}
    area = os.path.join(qdir, 'q')
    for name in sorted(os.listdir(area)) if os.path.isdir(area) else []:
        try:
            with open(os.path.join(area, name), 'rb') as f:
                head, _, message = f.read().partition(b'\n\n')
        except FileNotFoundError:
            continue    # delivered (removed) since listdir: not queued
        fields, rcpts = {}, []
        for line in head.decode('utf-8', 'replace').split('\n')[1:]:
            key, _, value = line.partition(': ')
            if key == 'rcpt':
                rcpts.append(value)
            else:
                fields[key] = value
        out[name] = (fields, rcpts, message)
    return out


def settle(env):
    """Wait until the relay has seen every connection close."""
    ok(env.relay.wait_idle(DEADLINE), 'the relay saw mailshim hang up')


def envelope(m):
    return (m.mail_from, m.rcpt_tos)


# ---- 1. Symfony Mailer ------------------------------------------------------

class Unexpected(Exception):
    pass


class Symfony:
    """What Symfony Mailer's SmtpTransport does over "sendmail -bs"
    (symfony/mailer Transport/Smtp/SmtpTransport.php): HELO with its
    local address, MAIL/RCPT/DATA each waiting for its reply, the message
    with "\\r\\n." replaced by "\\r\\n..", then "\\r\\n.\\r\\n"; RSET after
    a failure, and a NOOP before the next message (lastMessageTime was
    reset); QUIT, then both pipes closed."""

    def __init__(self, bs):
        self.bs = bs
        self.ping = False      # not started: the first message has none
        self.log = []          # (command, reply)

    def execute(self, command, codes):
        self.bs.send(command)
        reply = self.bs.reply()
        self.log.append((command.decode().strip(), reply))
        if reply is None or not reply[:3].isdigit() or \
                int(reply[:3]) not in codes:
            raise Unexpected(reply)
        return reply

    def start(self):
        greeting = self.bs.reply()
        self.log.append(('', greeting))
        if greeting is None or not greeting.startswith('220'):
            raise Unexpected(greeting)
        return self.execute(b'HELO [127.0.0.1]\r\n', [250])

    def send(self, sender, rcpts, message):
        """Returns the final reply (250) or raises Unexpected after RSET."""
        self.log = []
        try:
            if self.ping:
                self.execute(b'NOOP\r\n', [250])
            self.execute(f'MAIL FROM:<{sender}>\r\n'.encode(), [250])
            for r in rcpts:
                self.execute(f'RCPT TO:<{r}>\r\n'.encode(), [250, 251, 252])
            self.execute(b'DATA\r\n', [354])
            self.bs.send(message.replace(b'\r\n.', b'\r\n..'))
            reply = self.execute(b'\r\n.\r\n', [250])
            self.ping = False
            return reply
        except Unexpected:
            self.ping = True
            try:
                self.execute(b'RSET\r\n', [250])
            except Unexpected:
                pass
            raise

    def stop(self):
        try:
            self.execute(b'QUIT\r\n', [221])
        except Unexpected:
            pass
        self.bs.close_stdin()
        self.bs.p.stdout.close()
        return self.bs.wait()


def symfony_message(i, to):
    """A message as Symfony Mime renders it: CRLF, Date and Message-ID
    included, no CRLF after the last line; a body line with a dot."""
    return (f'From: App <app@example.com>\r\nTo: {to}\r\n'
            f'Subject: Symfony {i}\r\n'
            f'Message-ID: <{i:04d}.symfony@example.com>\r\n'
            'MIME-Version: 1.0\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n'
            'Content-Type: text/plain; charset=utf-8\r\n'
            'Content-Transfer-Encoding: quoted-printable\r\n\r\n'
            f'Hello {i}\r\n.a line with a leading dot\r\n..two\r\n'
            'last line').encode()


def test_symfony(env):
    env.config_for('starttls')
    env.relay.reset()
    with Bs(env) as bs:
        sf = Symfony(bs)
        try:
            is_(sf.start(), f'250 {HOST}', 'symfony: HELO [127.0.0.1]')
        except Unexpected as e:
            ok(False, f'symfony: greeting and HELO ({e})')
        is_(sf.log[0], ('', GREETING), 'symfony: the 220 greeting')

        m1 = symfony_message(1, 'one@example.com')
        try:
            like(sf.send('app@example.com', ['one@example.com'], m1),
                 QUEUED_RE, 'symfony: message 1 accepted')
        except Unexpected as e:
            ok(False, f'symfony: message 1 accepted ({e})')
        is_([r for _, r in sf.log[:3]], ok_replies(1),
            'symfony: message 1: MAIL, RCPT, DATA')

        bad = symfony_message(2, 'reject550@example.com')
        try:
            sf.send('app@example.com', ['reject550@example.com'], bad)
            ok(False, 'symfony: a recipient the relay refuses: a 5xx at '
               'the final dot')
        except Unexpected as e:
            like(str(e), rf'\A550 {ENH} .*<reject550@example\.com>: '
                 r'Recipient address rejected: User unknown\Z',
                 "symfony: the relay's 550 at RCPT: the final reply is a "
                 "550 with an enhanced code and the relay's text")
        is_(sf.log[:3], [('MAIL FROM:<app@example.com>', '250 2.1.0 Ok'),
                         ('RCPT TO:<reject550@example.com>', '250 2.1.5 Ok'),
                         ('DATA', '354 End data with <CR><LF>.<CR><LF>')],
            'symfony: MAIL, RCPT and DATA of the refused one were taken')
        is_(sf.log[4:], [('RSET', '250 2.0.0 Ok')],
            'symfony: RSET after the error: 250')

        m3 = symfony_message(3, 'three@example.com')
        try:
            like(sf.send('app@example.com', ['three@example.com'], m3),
                 QUEUED_RE, 'symfony: the next message is accepted')
        except Unexpected as e:
            ok(False, f'symfony: the next message is accepted ({e})')
        is_(sf.log[0], ('NOOP', '250 2.0.0 Ok'),
            'symfony: the NOOP ping before it: 250')
        rc = sf.stop()
        is_(sf.log[-1], ('QUIT', '221 2.0.0 Bye'), 'symfony: QUIT: 221')
        is_(rc, 0, 'symfony: exit 0')
        is_(bs.err, '', 'symfony: nothing on stderr (Symfony never reads '
            'it)')
    settle(env)
    msgs = env.relay.messages
    is_([(envelope(m), m.data) for m in msgs],
        [(('app@example.com', ['one@example.com']), m1 + b'\r\n'),
         (('app@example.com', ['three@example.com']), m3 + b'\r\n')],
        'symfony: the relay got messages 1 and 3, byte for byte, and not '
        'the refused one')
    is_([(r.stage, r.address) for r in env.relay.rejected],
        [('RCPT', 'reject550@example.com')],
        'symfony: the refused one reached the relay once, at RCPT')


def test_symfony_100(env):
    """Symfony's restart threshold: 100 messages, then QUIT."""
    env.config_for('starttls')
    env.relay.reset()
    replies, sent = [], {}
    with Bs(env) as bs:
        sf = Symfony(bs)
        try:
            sf.start()
            for i in range(1, 101):
                to = f'rcpt{i}@example.com'
                sent[f'Symfony {i}'] = (to, symfony_message(i, to))
                replies.append(sf.send('app@example.com', [to],
                                       sent[f'Symfony {i}'][1]))
        except Unexpected as e:
            diag(f'after {len(replies)} messages: {e}; log {sf.log}')
        ids = [queued_id(r) for r in replies]
        ok(len(replies) == 100 and all(ids),
           '100 messages: each "250 2.0.0 Ok: queued as <id>"')
        is_(len(set(ids)), 100, '100 messages: 100 different ids')
        rc = sf.stop()
        is_((sf.log[-1], rc), (('QUIT', '221 2.0.0 Bye'), 0),
            '100 messages: QUIT 221, exit 0')
        is_(bs.err, '', '100 messages: nothing on stderr')
    settle(env)
    msgs = env.relay.messages
    got = collections.Counter(subject(m) for m in msgs)
    is_((sorted(set(sent) - set(got)),
         {s: n for s, n in got.items() if n != 1 or s not in sent}),
        ([], {}), '100 messages: each arrived exactly once: none missing, '
        'none twice, none unknown')
    want = {s: ([to], data + b'\r\n') for s, (to, data) in sent.items()}
    bad = [m.seq for m in msgs
           if (m.rcpt_tos, m.data) != want.get(subject(m))]
    is_(bad, [], '100 messages: envelopes and bytes as sent')
    is_((len({m.session_id for m in msgs}), len(env.relay.sessions)),
        (1, 1), '100 messages: over one relay connection')


def subject(m):
    match = re.search(rb'^Subject: (.*)\r$', m.data, re.M)
    return match.group(1).decode() if match else None


# ---- 2. EHLO ----------------------------------------------------------------

EHLO_TAIL = ['250-PIPELINING', '250-8BITMIME', None,
             '250-ENHANCEDSTATUSCODES', '250 SMTPUTF8']


def ehlo_lines(size):
    lines = [f'250-{HOST}'] + EHLO_TAIL
    lines[3] = size
    return '\n'.join(lines)


def test_ehlo(env):
    # Laravel's mail.sendmail default: "/usr/sbin/sendmail -bs -i"
    env.config_for('starttls', max_message_size='10M')
    env.relay.reset()
    with Bs(env, ['-i']) as bs:
        is_(bs.reply(), GREETING, 'laravel -bs -i: greeting')
        is_(bs.cmd('EHLO laravel.test'), ehlo_lines('250-SIZE 10485760'),
            'laravel: EHLO lists exactly PIPELINING, 8BITMIME, SIZE '
            '10485760 (max_message_size = 10M), ENHANCEDSTATUSCODES, '
            'SMTPUTF8')
        data = (b'From: app@example.com\r\nTo: to@example.com\r\n'
                b'Subject: laravel\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n'
                b'Message-ID: <l@example.com>\r\n\r\n.dot\r\nend\r\n')
        replies = transaction(bs, 'app@example.com', ['to@example.com'],
                              data)
        is_(replies[:-1], ok_replies(1), 'laravel: MAIL, RCPT, DATA')
        like(replies[-1], QUEUED_RE, 'laravel: accepted')
        is_(bs.cmd('QUIT'), '221 2.0.0 Bye', 'laravel: QUIT')
        is_(bs.finish(), (0, []), 'laravel: exit 0, nothing more said')
    settle(env)
    is_([m.data for m in env.relay.messages], [data],
        'laravel: -i leaves SMTP alone: "..dot" arrives as ".dot"')

    env.config_for('starttls')
    with Bs(env) as bs:
        bs.reply()
        is_(bs.cmd('EHLO x'), ehlo_lines('250-SIZE'),
            'EHLO without max_message_size: SIZE with no limit')
        is_(bs.cmd('EHLO again.test'), ehlo_lines('250-SIZE'),
            'a second EHLO: the same reply')
        is_(bs.cmd('HELO old.test'), f'250 {HOST}', 'HELO: one line')
        is_(bs.cmd('QUIT'), '221 2.0.0 Bye', 'QUIT')
        is_(bs.finish()[0], 0, 'exit 0')


# ---- 3. pipelining ----------------------------------------------------------

def test_pipelining(env):
    env.config_for('starttls')
    env.relay.reset()
    data = (b'From: p@example.com\r\nTo: r1@example.com\r\nSubject: pipe\r\n'
            b'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n'
            b'Message-ID: <p@example.com>\r\n\r\npipelined\r\n')
    with Bs(env) as bs:
        bs.send(b'EHLO pipe.test\r\nMAIL FROM:<p@example.com>\r\n'
                b'RCPT TO:<r1@example.com>\r\nRCPT TO:<not an address>\r\n'
                b'RCPT TO:<r2@example.com>\r\nDATA\r\n')
        got = [bs.reply() for _ in range(7)]
        is_(got, [GREETING, ehlo_lines('250-SIZE'), '250 2.1.0 Ok',
                  '250 2.1.5 Ok', '501 5.1.3 Bad recipient address syntax',
                  '250 2.1.5 Ok', '354 End data with <CR><LF>.<CR><LF>'],
            'pipelining: EHLO, MAIL, RCPT x3 (one bad), DATA in one write: '
            'the replies in order')
        bs.send(data + b'.\r\nQUIT\r\n')
        final, bye = bs.reply(), bs.reply()
        like(final, QUEUED_RE, 'pipelining: the data, "." and QUIT in one '
             'write: accepted')
        is_(bye, '221 2.0.0 Bye', 'pipelining: then 221')
        is_(bs.finish(), (0, []), 'pipelining: exit 0')
    settle(env)
    is_([(envelope(m), m.data) for m in env.relay.messages],
        [(('p@example.com', ['r1@example.com', 'r2@example.com']), data)],
        'pipelining: delivered to both good recipients, bytes as sent')

    # a whole transaction and the next one, data included, in one write
    env.relay.reset()
    with Bs(env) as bs:
        one = b'Subject: a\r\n\r\nA\r\n'
        two = b'Subject: b\r\n\r\nB\r\n'
        bs.send(b'HELO x\r\nMAIL FROM:<p@example.com>\r\n'
                b'RCPT TO:<a@example.com>\r\nDATA\r\n' + one + b'.\r\nRSET\r\n'
                b'MAIL FROM:<p@example.com>\r\nRCPT TO:<b@example.com>\r\n'
                b'DATA\r\n' + two + b'.\r\nQUIT\r\n')
        got = [bs.reply() for _ in range(12)]
        ok(queued_id(got[5]) and queued_id(got[10]),
           'pipelining everything: both messages accepted')
        is_(got[:5] + got[6:10] + got[11:],
            [GREETING, f'250 {HOST}'] + ok_replies(1) + ['250 2.0.0 Ok'] +
            ok_replies(1) + ['221 2.0.0 Bye'],
            'pipelining everything: every other reply, in order')
        is_(bs.finish(), (0, []), 'pipelining everything: exit 0')
    settle(env)
    is_([m.rcpt_tos for m in env.relay.messages],
        [['a@example.com'], ['b@example.com']],
        'pipelining everything: two messages, in order')


# ---- 4. dots, line ends, headers --------------------------------------------

def test_bytes(env):
    env.config_for('starttls')
    env.relay.reset()
    # as the client sends it: stuffed, CRLF and bare LF mixed, a folded Bcc
    wire = (b'From: Sender <s@example.com>\r\nTo: r@example.com\n'
            b'Bcc: hidden@example.com,\r\n other@example.com\r\n'
            b'Subject: dots\n\r\n'
            b'..x\r\n..\r\n...\n..y z\nplain\n\n.... four\r\nend\n')
    with Bs(env) as bs:
        bs.reply()
        bs.cmd('EHLO x')
        replies = transaction(bs, 's@example.com', ['r@example.com'], wire,
                              stuffed=True, end=b'.\n')
        is_(replies[:-1], ok_replies(1), 'bytes: MAIL, RCPT, DATA')
        like(replies[-1], QUEUED_RE, 'bytes: ".\\n" (bare LF) ends the data')
        is_(bs.cmd('QUIT'), '221 2.0.0 Bye', 'bytes: QUIT')
        is_(bs.finish(), (0, []), 'bytes: exit 0')
    settle(env)
    msgs = env.relay.messages
    if not is_(len(msgs), 1, 'bytes: one message'):
        return
    is_(envelope(msgs[0]), ('s@example.com', ['r@example.com']),
        'bytes: the envelope; Bcc is no recipient without -t')
    want = (re.escape(b'From: Sender <s@example.com>\r\nTo: r@example.com\r\n'
                      b'Subject: dots\r\nDate: ') + DATE_RE +
            re.escape(b'\r\nMessage-ID: ') + MSGID_RE +
            re.escape(b'\r\n\r\n.x\r\n.\r\n..\r\n.y z\r\nplain\r\n\r\n'
                      b'... four\r\nend\r\n'))
    ok(re.fullmatch(want, msgs[0].data),
       'bytes: unstuffed, CRLF everywhere, Bcc gone, Date and Message-ID '
       'added, nothing else changed')
    if not re.fullmatch(want, msgs[0].data):
        diag(f'got {msgs[0].data!r}')


# ---- 5. truthful final replies ----------------------------------------------

def one_message(env, sender='s@example.com', rcpts=('r@example.com',),
                data=None, args=(), config=None):
    """One session with one transaction: (replies, exit status, stderr)."""
    data = data or b'Subject: one\r\n\r\nbody\r\n'
    with Bs(env, args, config) as bs:
        bs.reply()
        bs.cmd('EHLO x')
        replies = transaction(bs, sender, list(rcpts), data)
        replies.append(bs.cmd('QUIT'))
        rc, rest = bs.finish()
        return replies, (rc, rest), bs.err


def check_final(label, replies, status, err, final):
    """MAIL, RCPT, DATA taken; the final reply (exact or a regex); QUIT;
    exit 0; silence.  Returns the final reply."""
    n = len(replies) - 4
    is_(replies[:n + 2], ok_replies(n), f'{label}: MAIL, RCPT, DATA')
    if hasattr(final, 'pattern'):
        like(replies[-2], final, f'{label}: the final reply')
    else:
        is_(replies[-2], final, f'{label}: the final reply')
    is_((replies[-1], status, err), ('221 2.0.0 Bye', (0, []), ''),
        f'{label}: QUIT 221, exit 0, nothing on stderr')
    return replies[-2]


def test_relay_down(env):
    env.relay.reset()
    port = harness.closed_port()
    env.config_for('starttls', port=port)
    data = b'Subject: down\r\n\r\n.dot\r\nbody\r\n'
    replies, st, err = one_message(env, data=data)
    qid = queued_id(check_final('relay down', replies, st, err, QUEUED_RE))
    queue = read_queue(env.queue_dir)
    ok(qid in queue, f'relay down: {env.queue_dir}/q/<the id> exists')
    is_(list(queue), [qid], 'relay down: the one file in the queue')
    if qid in queue:
        fields, rcpts, message = queue[qid]
        is_((fields.get('sender'), rcpts, fields.get('attempts')),
            ('s@example.com', ['r@example.com'], '1'),
            'relay down: the queue file: sender, recipient, one attempt')
        like(fields.get('last-error', ''), rf'127\.0\.0\.1:{port}',
             'relay down: the queue file says why')
        like(message, rb'(?s)\ASubject: down\r\n.*\r\n\r\n\.dot\r\nbody\r\n\Z',
             'relay down: the message, unstuffed, in the queue file')
    # the relay is back: a forced queue run delivers it, once
    env.config_for('starttls')
    r = env.run(['-qf'])
    is_((r.rc, r.err), (0, ''), 'relay back: -qf exit 0')
    settle(env)
    msgs = env.relay.messages
    is_([(envelope(m), m.data) for m in msgs],
        [(('s@example.com', ['r@example.com']), queue[qid][2])]
        if qid in queue else [], 'relay back: delivered once, as queued')
    is_(read_queue(env.queue_dir), {}, 'relay back: the queue is empty')

    # on_tempfail = fail: 451, nothing queued
    env.config_for('starttls', port=port, on_tempfail='fail')
    replies, st, err = one_message(env)
    check_final('on_tempfail = fail', replies, st, err,
                re.compile(rf'\A451 4\.\d+\.\d+ .*127\.0\.0\.1:{port}'))
    is_(read_queue(env.queue_dir), {}, 'on_tempfail = fail: nothing queued')

    # relay down and the queue cannot be written: 451, never 250
    blocker = env.write_file('not-a-dir', 'x')
    env.config_for('starttls', port=port,
                   queue_dir=os.path.join(blocker, 'queue'))
    replies, st, err = one_message(env)
    check_final('relay down, queue unwritable', replies, st, err,
                re.compile(r'\A451 4\.\d+\.\d+ .*not queued'))


def test_relay_replies(env):
    env.config_for('starttls')
    cases = [
        # (label, sender, rcpt, the final reply)
        ('relay 553 at MAIL', 'rejectfrom@example.com', 'r@example.com',
         re.compile(rf'\A553 {ENH} .*553 5\.7\.1 sender not allowed\Z')),
        ('relay 554 after DATA', 's@example.com', 'datafail554@example.com',
         re.compile(rf'\A554 {ENH} .*554 5\.7\.1 message refused\Z')),
    ]
    for label, sender, rcpt, final in cases:
        env.relay.reset()
        replies, st, err = one_message(env, sender, [rcpt])
        check_final(label, replies, st, err, final)
        settle(env)
        is_((len(env.relay.messages), read_queue(env.queue_dir)), (0, {}),
            f'{label}: not delivered, not queued')

    for label, rcpt in (('relay 451 after DATA', 'datafail451@example.com'),
                        ('relay 451 at RCPT', 'temp451@example.com')):
        env.relay.reset()
        replies, st, err = one_message(env, rcpts=[rcpt])
        qid = queued_id(check_final(label, replies, st, err, QUEUED_RE))
        settle(env)
        queue = read_queue(env.queue_dir)
        is_((len(env.relay.messages), list(queue)), (0, [qid]),
            f'{label}: not delivered; queued under the id of the reply')
        if qid in queue:
            is_(queue[qid][1], [rcpt], f'{label}: the queued recipient')
            os.unlink(os.path.join(env.queue_dir, 'q', qid))

    # a configuration problem (the relay refuses the credentials): 451
    env.relay.reset()
    env.config_for('starttls', password='wrong')
    replies, st, err = one_message(env)
    check_final('bad credentials', replies, st, err,
                re.compile(r'\A451 4\.3\.5 .*535'))
    settle(env)
    is_((len(env.relay.messages), read_queue(env.queue_dir)), (0, {}),
        'bad credentials: not delivered, not queued')

    # a malformed message: 554 5.6.0, and the session goes on
    env.config_for('starttls')
    env.relay.reset()
    with Bs(env) as bs:
        bs.reply()
        bs.cmd('EHLO x')
        replies = transaction(bs, 's@example.com', ['r@example.com'],
                              b'Subject: nul\r\nX-Bad: a\0b\r\n\r\nbody\r\n')
        like(replies[-1], r'\A554 5\.6\.0 .*NUL',
             'a NUL byte in the header section: 554 5.6.0')
        replies = transaction(bs, 's@example.com', ['r@example.com'],
                              b'Subject: fine\r\n\r\nbody\r\n')
        like(replies[-1], QUEUED_RE, 'the next message: accepted')
        is_((bs.cmd('QUIT'), bs.finish()), ('221 2.0.0 Bye', (0, [])),
            'malformed: QUIT, exit 0')
    settle(env)
    is_([subject(m) for m in env.relay.messages], ['fine'],
        'malformed: only the good one reached the relay')


def test_delivery_modes(env):
    # delivery = queue: nothing at the relay until a queue run
    qdir = env.path('queue-q')
    env.config_for('starttls', delivery='queue', queue_dir=qdir)
    env.relay.reset()
    replies, st, err = one_message(env, data=b'Subject: later\r\n\r\nx\r\n')
    qid = queued_id(check_final('delivery = queue', replies, st, err,
                                QUEUED_RE))
    queue = read_queue(qdir)
    is_(list(queue), [qid], 'delivery = queue: queued under the id of the '
        'reply')
    is_((env.relay.sessions, env.relay.messages), ([], []),
        'delivery = queue: no connection to the relay')
    r = env.run(['-q'])
    is_((r.rc, r.err), (0, ''), 'delivery = queue: -q exit 0')
    settle(env)
    is_([(envelope(m), m.data) for m in env.relay.messages],
        [(('s@example.com', ['r@example.com']), queue[qid][2])]
        if qid in queue else [], 'delivery = queue: -q delivered it once')
    is_(read_queue(qdir), {}, 'delivery = queue: the queue is empty')

    # delivery = background: 250 at once, delivered by a detached child
    qdir = env.path('queue-b')
    env.config_for('starttls', delivery='background', queue_dir=qdir)
    env.relay.reset()
    replies, st, err = one_message(env, data=b'Subject: bg\r\n\r\nx\r\n')
    check_final('delivery = background', replies, st, err, QUEUED_RE)
    msgs = env.relay.wait_for(1, DEADLINE)
    is_([subject(m) for m in msgs], ['bg'],
        'delivery = background: delivered')
    deadline = time.monotonic() + DEADLINE
    while read_queue(qdir) and time.monotonic() < deadline:
        time.sleep(0.05)
    is_(read_queue(qdir), {}, 'delivery = background: the queue emptied')
    settle(env)


def two_accounts(env):
    port, ca = env.relay.ports['starttls'], env.relay.ca_file

    def account(name, **keys):
        lines = {'host': '127.0.0.1', 'port': port, 'tls': 'starttls',
                 'username': 'AppKey', 'password': 'SecretKey',
                 'ca_file': ca, 'helo': 'client.test', 'timeout': 10}
        lines.update(keys)
        return f'[{name}]\n' + ''.join(f'{k} = {v}\n'
                                       for k, v in lines.items())
    return env.write_config(
        f'[mailshim]\nlocal_domain = {HOST}\naliases = {env.aliases_path}\n'
        f'queue_dir = {env.queue_dir}\naccount = normal\n\n' +
        account('ad', mail_type='ad', match_from='*@ad.example',
                **{'from': 'news@ad.example', 'from_policy': 'envelope'}) +
        '\n' + account('normal', mail_type='normal'), 'two.ini')


def test_accounts(env):
    two_accounts(env)
    env.write_aliases('postmaster: admin@example.com\n')
    env.relay.reset()
    plan = [('s@example.com', ['r1@example.com']),
            ('s@example.com', ['postmaster', 'bob']),
            ('promo@ad.example', ['r3@example.com']),
            ('', ['r4@example.com'])]
    with Bs(env) as bs:
        bs.reply()
        bs.cmd('EHLO x')
        finals = [transaction(bs, s, rc, f'Subject: acct{i}\r\n\r\nx\r\n'
                              .encode())[-1]
                  for i, (s, rc) in enumerate(plan)]
        ok(all(queued_id(f) for f in finals), 'accounts: all accepted')
        is_((bs.cmd('QUIT'), bs.finish()), ('221 2.0.0 Bye', (0, [])),
            'accounts: QUIT, exit 0')
    env.write_aliases('')
    settle(env)
    msgs = env.relay.messages
    is_([(m.auth_user, m.mail_from, m.rcpt_tos) for m in msgs],
        [('AppKey#normal', 's@example.com', ['r1@example.com']),
         ('AppKey#normal', 's@example.com',
          ['admin@example.com', f'bob@{HOST}']),
         ('AppKey#ad', 'news@ad.example', ['r3@example.com']),
         ('AppKey#normal', '', ['r4@example.com'])],
        'accounts: match_from picks the account, from_policy = envelope '
        'its sender; aliases and local_domain apply; <> stays <>')
    if len(msgs) == 4:
        ok(msgs[0].session_id == msgs[1].session_id != msgs[2].session_id,
           'accounts: one connection for consecutive messages of an account, '
           'another for the other account')
        like(msgs[3].data, rb'\r\nFrom: MAILER-DAEMON@example\.net\r\n',
             'accounts: <> gets From: MAILER-DAEMON@local_domain')


# ---- 6. hostile input -------------------------------------------------------

def test_hostile(env):
    env.config_for('starttls')
    env.relay.reset()
    data = b'Subject: lower\r\n\r\nafter the noise\r\n'
    with Bs(env) as bs:
        is_(bs.reply(), GREETING, 'hostile: greeting')
        bs.cmd('EHLO x')
        steps = [
            (b'X' * 5000, r'\A500 5\.5\.2 Line too long\Z',
             'a 5000-octet line: 500'),
            (b'NOOP', r'\A250 2\.0\.0 Ok\Z', 'then the session goes on'),
            (b'NO\0OP', r'\A500 5\.5\.2 ', 'a NUL in a command: 500'),
            (b'MAIL FROM:<a\0@example.com>', r'\A500 5\.5\.2 ',
             'a NUL in an address: 500'),
            (b'\xff\xfe\x01\x02\x1b[31m\x7f', r'\A500 5\.5\.1 ',
             'binary: 500'),
            (b'NOOP', r'\A250 2\.0\.0 Ok\Z', 'still alive'),
            (b'RCPT TO:<r@example.com>', r'\A503 5\.5\.1 ',
             'RCPT before MAIL: 503'),
            (b'DATA', r'\A503 5\.5\.1 ', 'DATA before MAIL: 503'),
            (b'MAIL FROM:<a@example.com> RCPT TO:<x@example.com>',
             r'\A(501|555) 5\.5\.\d ', 'MAIL with a RCPT glued on: 501/555'),
            (b'MAIL FROM:<a@example.com>\rRCPT TO:<x@example.com>',
             r'\A501 5\.5\.4 ', 'MAIL, a bare CR, RCPT: 501'),
            (b'RCPT TO:<x@example.com>', r'\A503 5\.5\.1 ',
             '... and no transaction was opened'),
            (b'MAIL FROM:<a@example.com> SIZE=12 FOO=bar', r'\A555 5\.5\.4 ',
             'an unknown MAIL parameter: 555'),
            (b'MAIL FROM:a@example.com', r'\A501 5\.5\.4 ',
             'MAIL without angle brackets: 501'),
            (b'MAIL FROM:<a@example.com>', r'\A250 2\.1\.0 Ok\Z', 'MAIL'),
            (b'MAIL FROM:<b@example.com>', r'\A503 5\.5\.1 ',
             'a second MAIL: 503'),
            (b'DATA', r'\A503 5\.5\.1 ', 'DATA without RCPT: 503'),
            (b'RCPT TO:<>', r'\A501 5\.1\.3 ', 'RCPT TO:<>: 501'),
            (b'RCPT TO:<r@example.com> NOTIFY=NEVER', r'\A555 5\.5\.4 ',
             'an unknown RCPT parameter: 555'),
            (b'DATA', r'\A554 5\.5\.1 ',
             'DATA when every RCPT failed: 554'),
            (b'EXPN staff', r'\A502 5\.5\.1 ', 'EXPN: 502'),
            (b'RSET', r'\A250 2\.0\.0 Ok\Z', 'RSET'),
            (b'mail from:<a@example.com>', r'\A250 2\.1\.0 Ok\Z',
             'lower case mail'),
            (b'rcpt to:<r@example.com>', r'\A250 2\.1\.5 Ok\Z',
             'lower case rcpt'),
            (b'data', r'\A354 ', 'lower case data'),
        ]
        for line, want, name in steps:
            like(bs.cmd(line), want, f'hostile: {name}')
        bs.send(data + b'.\r\n')
        like(bs.reply(), QUEUED_RE, 'hostile: the message after it all')
        is_(bs.cmd('quit'), '221 2.0.0 Bye', 'hostile: lower case quit')
        is_(bs.finish(), (0, []), 'hostile: exit 0')
        is_(bs.err, '', 'hostile: nothing on stderr')
    settle(env)
    is_([(envelope(m), m.data[:len(b'Subject: lower')])
         for m in env.relay.messages],
        [(('a@example.com', ['r@example.com']), b'Subject: lower')],
        'hostile: one message reached the relay, the good one')
    ok(env.relay.messages and
       env.relay.messages[0].data.endswith(b'\r\n\r\nafter the noise\r\n'),
       'hostile: its body intact')

    # 100 errors in a row: 421 and an end
    with Bs(env) as bs:
        bs.reply()
        bs.send(b'BOGUS\r\n' * 100 + b'NOOP\r\n')
        replies = [bs.reply() for _ in range(101)]
        is_(replies[:100], ['500 5.5.1 Error: command not recognized'] * 100,
            'too many errors: 500 each')
        is_(replies[100], f'421 4.7.0 {HOST} Error: too many errors',
            'too many errors: then, after the 100th in a row, 421')
        is_(bs.finish(), (os.EX_PROTOCOL, []),
            'too many errors: exit 76 (EX_PROTOCOL), no reply to the NOOP')


def test_eof(env):
    env.config_for('starttls')
    env.relay.reset()
    # end of input inside DATA
    with Bs(env) as bs:
        bs.reply()
        bs.cmd('EHLO x')
        replies = [bs.cmd('MAIL FROM:<s@example.com>'),
                   bs.cmd('RCPT TO:<r@example.com>'), bs.cmd('DATA')]
        is_(replies, ok_replies(1), 'EOF in DATA: MAIL, RCPT, DATA')
        bs.send(b'Subject: cut\r\n\r\nhalf a message\r\n')
        rc, rest = bs.finish()
        ok(rc not in (None, 0), f'EOF in DATA: a failure exit ({rc})')
        is_(rest, [], 'EOF in DATA: no reply claims anything')
    # end of input after MAIL
    with Bs(env) as bs:
        bs.reply()
        bs.cmd('EHLO x')
        bs.cmd('MAIL FROM:<s@example.com>')
        rc, rest = bs.finish()
        ok(rc not in (None, 0), f'EOF after MAIL: a failure exit ({rc})')
    settle(env)
    is_((env.relay.sessions, read_queue(env.queue_dir)), ([], {}),
        'EOF in a transaction: nothing sent, nothing queued')

    # end of input after a completed transaction, without QUIT
    with Bs(env) as bs:
        bs.reply()
        bs.cmd('HELO x')
        final = transaction(bs, 's@example.com', ['r@example.com'],
                            b'Subject: noquit\r\n\r\nx\r\n')[-1]
        like(final, QUEUED_RE, 'EOF after a transaction: it was accepted')
        is_(bs.finish(), (0, []), 'EOF after a transaction, no QUIT: exit 0')
    settle(env)
    is_([subject(m) for m in env.relay.messages], ['noquit'],
        'EOF after a transaction: delivered')


def test_size(env):
    env.config_for('starttls', max_message_size='1k')
    env.relay.reset()
    head = b'Subject: exact\r\n\r\n'
    # lines under 998 octets: mailshim breaks longer ones (mailshim(8))
    exact = head + (b'x' * 98 + b'\r\n') * 10 + b'xxxx\r\n'
    assert len(exact) == 1024
    over = b'Subject: over\r\n\r\n' + (b'y' * 98 + b'\r\n') * 30
    with Bs(env) as bs:
        bs.reply()
        is_(bs.cmd('EHLO x'), ehlo_lines('250-SIZE 1024'),
            'size: EHLO offers SIZE 1024 (max_message_size = 1k)')
        is_(bs.cmd('MAIL FROM:<s@example.com> SIZE=1025'),
            '552 5.3.4 Message size exceeds fixed limit',
            'size: SIZE=1025 at MAIL: 552')
        is_(bs.cmd('MAIL FROM:<s@example.com> SIZE=99999999999999999999'),
            '552 5.3.4 Message size exceeds fixed limit',
            'size: SIZE= of 20 digits (more than a long): 552')
        is_(bs.cmd('MAIL FROM:<s@example.com> SIZE=1x'),
            '501 5.5.4 Bad SIZE value', 'size: SIZE=1x: 501')
        is_(bs.cmd('MAIL FROM:<s@example.com> SIZE=1024'), '250 2.1.0 Ok',
            'size: SIZE=1024 at MAIL: 250')
        is_(bs.cmd('RCPT TO:<r@example.com>'), '250 2.1.5 Ok', 'size: RCPT')
        is_(bs.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>',
            'size: DATA')
        bs.send(exact + b'.\r\n')
        like(bs.reply(), QUEUED_RE, 'size: a message of exactly 1024 octets')
        replies = transaction(bs, 's@example.com', ['r@example.com'], over)
        is_(replies, ok_replies(1) +
            ['552 5.3.4 Message size exceeds fixed limit'],
            f'size: a message of {len(over)} octets (no SIZE=): 552')
        is_(bs.cmd('NOOP'), '250 2.0.0 Ok', 'size: the session goes on')
        replies = transaction(bs, 's@example.com', ['r@example.com'],
                              b'Subject: small\r\n\r\nx\r\n')
        like(replies[-1], QUEUED_RE, 'size: the next message: accepted')
        is_((bs.cmd('QUIT'), bs.finish()), ('221 2.0.0 Bye', (0, [])),
            'size: QUIT, exit 0')
    settle(env)
    msgs = env.relay.messages
    is_([subject(m) for m in msgs], ['exact', 'small'],
        'size: the one over the limit never reached the relay')
    if msgs:
        ok(msgs[0].data.endswith(b'\r\n\r\n' + exact[len(head):]),
           'size: the 1024-octet one arrived whole')


# ---- 7. a client that stops reading -----------------------------------------

def test_stdout_closed(env):
    env.config_for('starttls')
    env.relay.reset()
    # the client closes its end of stdout, then writes a transaction
    with Bs(env) as bs:
        is_(bs.reply(), GREETING, 'stdout closed: greeting')
        bs.p.stdout.close()
        bs.send(b'EHLO x\r\n')
        rc = bs.wait()
        is_(rc, os.EX_IOERR, 'stdout closed, then a command: the process '
            'exits (74, EX_IOERR), stdin still open')
        ok(not bs.send(b'MAIL FROM:<s@example.com>\r\n'
                       b'RCPT TO:<r@example.com>\r\nDATA\r\n'
                       b'Subject: gone\r\n\r\nx\r\n.\r\n'),
           'stdout closed: a transaction after that finds no reader')
    # before the greeting
    with Bs(env) as bs:
        bs.p.stdout.close()
        is_(bs.wait(), os.EX_IOERR, 'stdout closed before the greeting: '
            'exit 74')
    settle(env)
    is_(env.relay.messages, [], 'stdout closed: nothing delivered')
    # the client closes stdout and waits for the process (proc_close)
    # with stdin still open: the process must notice and go
    with Bs(env) as bs:
        bs.reply()
        bs.p.stdout.close()
        rc = bs.wait(5)
        ok(rc is not None, 'stdout closed, the client idle with stdin open: '
           f'the process exits (exit {rc})')


def main():
    with harness.Env() as env:
        test_symfony(env)
        test_symfony_100(env)
        test_ehlo(env)
        test_pipelining(env)
        test_bytes(env)
        test_relay_down(env)
        test_relay_replies(env)
        test_delivery_modes(env)
        test_accounts(env)
        test_hostile(env)
        test_eof(env)
        test_size(env)
        test_stdout_closed(env)
        is_(env.relay.errors, [], 'the relay saw no error of its own')


harness.main(main)
