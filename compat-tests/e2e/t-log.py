#!/usr/bin/python3
"""The log (mailshim(8), LOGGING): one line per message and attempt, to a
file and to syslog.

Each line is parsed whole by a strict pattern of the documented format
(the timestamp, "mailshim[PID]: ", then every field in its order), and its
values are checked against what the relay saw: the queue id, the account,
host, port, tls, auth and user, the envelope, mailsize against the bytes
the relay received, smtpstatus and smtpmsg against the reply the relay
sent, the outcome and the exit code.  Outcomes: sent (direct), queued (the
relay down; delivery = queue), deferred and sent by a queue run (the same
id as the queued line), bounced (550 at RCPT, 554 after DATA; in a queue
run, one line per group of recipients that fared alike, and the lifetime
over), failed (a wrong password: 535, exit 77; an unverified
certificate), and -bs transactions.  The password is in no line.

Then the file itself: a log that cannot be written (a directory, a
symbolic link, a FIFO, /dev/null, a missing directory, a directory the
caller may not write to) is one line on stderr, once per process, and
changes neither the exit status nor the delivery; a new file is 0600
whatever the umask (0 and 0277), an existing one keeps its mode; 20
senders whose relay answers them at the same moment write 20 whole lines
of over 10 kB each.

Last, syslog, as syslog(3) really sends it: mailshim runs in a private
mount namespace whose /dev is a tmpfs with /dev/log bind-mounted to a
datagram socket this test reads.  The priority (mail.info <22>,
mail.notice <21>, mail.err <19>, local3.info <158>, daemon.info <30>), the
ident with the pid, the same fields as the file; syslog goes on when the
file is broken; syslog = off sends nothing.  Neither the files nor the
datagrams hold the password.
"""

import calendar
import importlib.util
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

ID_RE = r'[0-9a-f]{12}\.[0-9a-f]{12}'
FIELDS = ('id', 'account', 'host', 'port', 'tls', 'auth', 'user', 'from',
          'recipients', 'mailsize', 'smtpstatus', 'smtpmsg', 'outcome',
          'exitcode', 'elapsed_ms', 'errormsg')
# a value: '-', or as it is (printable ASCII but ' " \), or single-quoted
# with \' \\ \xNN escapes
VALUE = (r"(?:-|[!#-&(-\[\]-~]+|"
         r"'(?:[^'\\\x00-\x1f\x7f]|\\['\\]|\\x[0-9a-f]{2})*')")
FIELDS_RE = ' '.join(f'{k}=({VALUE})' for k in FIELDS)
TIMESTAMP = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d'
LINE_RE = re.compile(rf'({TIMESTAMP}) mailshim\[(\d+)\]: ({FIELDS_RE})')
QUEUED_RE = re.compile(rf'\Amailshim: queued as ({ID_RE}): (.+)\n\Z')
PASSWORD = 'SecretKey'          # config_for()'s password

# t-queue.py's helpers (edit_qfile)
_spec = importlib.util.spec_from_file_location(
    't_queue', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            't-queue.py'))
tq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tq)


def unquote(v):
    """A field's value as it was before the log quoted it; None for '-'."""
    if v == '-':
        return None
    if not v.startswith("'"):
        return v
    return re.sub(r"\\(['\\])|\\x([0-9a-f]{2})",
                  lambda m: m.group(1) or chr(int(m.group(2), 16)),
                  v[1:-1])


class Line:
    """One log line, parsed by LINE_RE: the whole line or an error."""

    def __init__(self, text):
        self.text = text
        m = LINE_RE.fullmatch(text)
        if not m:
            raise ValueError(f'not a log line: {text!r}')
        self.when, self.pid, self.fields_text = m.group(1, 2, 3)
        self.pid = int(self.pid)
        self.f = {k: unquote(v) for k, v in zip(FIELDS, m.groups()[3:])}
        self.raw = dict(zip(FIELDS, m.groups()[3:]))

    def __getitem__(self, key):
        return self.f[key]

    def __repr__(self):
        return f'Line({self.text!r})'


def read_log(path):
    """The lines of the log file (all of them must parse); [] if none."""
    if not os.path.exists(path):
        return []
    with open(path, 'rb') as f:
        data = f.read()
    ok(data == b'' or data.endswith(b'\n'), f'{path} ends with a newline')
    return [Line(t) for t in data.decode('utf-8').split('\n')[:-1]]


class Log:
    """The test's log file: new_lines() gives what was added since."""

    def __init__(self, env, name='mail.log'):
        self.path = env.path(name)
        self.seen = 0

    def new_lines(self):
        lines = read_log(self.path)
        new, self.seen = lines[self.seen:], len(lines)
        return new


def final_reply(m):
    """The reply the relay sent to the final dot of message m."""
    return f'250 2.0.0 Ok: queued as {m.seq:04d}'


def check_line(label, line, want, pid=None):
    """Check every field of want (None: '-') and the common ones."""
    got = {k: line[k] for k in want}
    is_(got, want, f'{label}: the fields')
    like(line['id'] or '', rf'\A{ID_RE}\Z', f'{label}: id is a queue id')
    like(line['elapsed_ms'] or '', r'\A\d+\Z', f'{label}: elapsed_ms')
    like(line.when, r'\+00:00\Z', f'{label}: timestamp in UTC (TZ=UTC)')
    t = time.strptime(line.when[:19], '%Y-%m-%dT%H:%M:%S')
    ok(abs(calendar.timegm(t) - time.time()) < 120,
       f'{label}: timestamp is now')
    if pid is not None:
        is_(line.pid, pid, f'{label}: mailshim[PID] is the process')


def base(env, listener='starttls', user='AppKey'):
    """The fields every line of the test account has."""
    return {'account': 'test', 'host': '127.0.0.1',
            'port': str(env.ports[listener]),
            'tls': harness.LISTENERS[listener].tls,
            'auth': 'plain' if user else 'none', 'user': user}


def msg(tag):
    return (f'Subject: {tag}\nX-Tag: {tag}\n\nbody of {tag}\n'
            f'.a line starting with a dot\n').encode()


def run_popen(env, args, data=b''):
    """env.run(), keeping the pid (for mailshim[PID])."""
    cmd = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) + \
        [os.environ['MAILSHIM_BIN'], '-C', env.last_config] + args
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env.child_env(),
                         cwd=env.dir)
    out, err = p.communicate(data, timeout=60)
    return p.pid, p.returncode, out, err.decode()


# ---- every outcome, in the file ---------------------------------------------

def test_direct(env, log):
    # sent
    env.relay.reset()
    env.config_for('starttls', logfile=log.path, syslog='off')
    pid, rc, _, err = run_popen(env, ['-f', 'joe@example.com',
                                      'a@example.com', 'b@example.com'],
                                msg('sent'))
    is_((rc, err), (0, ''), 'sent: exit 0, nothing on stderr')
    env.relay.wait_idle()
    [m] = env.relay.messages or [None]
    lines = log.new_lines()
    is_(len(lines), 1, 'sent: one line')
    if lines and m:
        check_line('sent', lines[0], dict(
            base(env), **{'from': 'joe@example.com',
                          'recipients': 'a@example.com,b@example.com',
                          'mailsize': str(len(m.data)),
                          'smtpstatus': '250',
                          'smtpmsg': final_reply(m),
                          'outcome': 'sent', 'exitcode': 'EX_OK',
                          'errormsg': None}), pid)
        is_(lines[0].raw['smtpmsg'], f"'{final_reply(m)}'",
            'sent: smtpmsg is single-quoted')

    # bounced: 550 to RCPT
    env.relay.reset()
    pid, rc, _, err = run_popen(env, ['-f', 'joe@example.com',
                                      'reject550@example.com'], msg('b1'))
    is_(rc, 67, 'bounced at RCPT: exit 67 (EX_NOUSER)')
    env.relay.wait_idle()
    rej = env.relay.rejected
    lines = log.new_lines()
    is_(len(lines), 1, 'bounced at RCPT: one line')
    if lines and rej:
        check_line('bounced at RCPT', lines[0], dict(
            base(env), **{'from': 'joe@example.com',
                          'recipients': 'reject550@example.com',
                          'smtpstatus': '550', 'smtpmsg': rej[0].reply,
                          'outcome': 'bounced', 'exitcode': 'EX_NOUSER',
                          'errormsg': err.strip()[len('mailshim: '):]}),
            pid)
        is_(rej[0].reply, '550 5.1.1 <reject550@example.com>: Recipient '
            'address rejected: User unknown', 'the relay said 550')

    # bounced: 554 after DATA; mailsize is what the relay was sent
    env.relay.reset()
    pid, rc, _, err = run_popen(env, ['datafail554@example.com'], msg('b2'))
    is_(rc, 69, 'bounced after DATA: exit 69 (EX_UNAVAILABLE)')
    env.relay.wait_idle()
    rej = env.relay.rejected
    lines = log.new_lines()
    is_(len(lines), 1, 'bounced after DATA: one line')
    if lines and rej:
        check_line('bounced after DATA', lines[0], dict(
            base(env), **{'from': 'root@example.net',
                          'recipients': 'datafail554@example.com',
                          'mailsize': str(len(rej[0].data)),
                          'smtpstatus': '554', 'smtpmsg': rej[0].reply,
                          'outcome': 'bounced',
                          'exitcode': 'EX_UNAVAILABLE'}), pid)
        is_(rej[0].reply, '554 5.7.1 message refused', 'the relay said 554')

    # failed: the relay refuses the password
    env.relay.reset()
    env.config_for('starttls', logfile=log.path, syslog='off',
                   password='WrongPassword')
    pid, rc, _, err = run_popen(env, ['a@example.com'], msg('f1'))
    is_(rc, 77, 'failed (535): exit 77')
    env.relay.wait_idle()
    said = [t[3:] for s in env.relay.sessions for t in s.transcript
            if t.startswith('S: 535')]
    lines = log.new_lines()
    is_(len(lines), 1, 'failed (535): one line')
    if lines and said:
        check_line('failed (535)', lines[0], dict(
            base(env), **{'recipients': 'a@example.com',
                          'smtpstatus': '535', 'smtpmsg': said[0],
                          'outcome': 'failed', 'exitcode': 'EX_NOPERM',
                          'errormsg': err.strip()[len('mailshim: '):]}),
            pid)
    ok(b'WrongPassword' not in open(log.path, 'rb').read(),
       'failed (535): the wrong password is not in the log')

    # failed: the certificate is not verified (no reply decided it)
    env.config_for('starttls_badcert', logfile=log.path, syslog='off')
    pid, rc, _, err = run_popen(env, ['a@example.com'], msg('f2'))
    is_(rc, 78, 'failed (certificate): exit 78')
    lines = log.new_lines()
    is_(len(lines), 1, 'failed (certificate): one line')
    if lines:
        check_line('failed (certificate)', lines[0], dict(
            base(env, 'starttls_badcert'),
            **{'smtpstatus': None, 'smtpmsg': None, 'outcome': 'failed',
               'exitcode': 'EX_CONFIG',
               'errormsg': err.strip()[len('mailshim: '):]}), pid)


def queue_files(env):
    q = os.path.join(env.queue_dir, 'q')
    return sorted(os.listdir(q)) if os.path.isdir(q) else []


def test_queue(env, log):
    down = harness.closed_port()

    # queued: the relay is down; the id is the queue file's
    env.config_for('starttls', port=down, logfile=log.path, syslog='off')
    pid, rc, _, err = run_popen(env, ['-f', 'q@example.com',
                                      'a@example.com'], msg('q1'))
    m = QUEUED_RE.match(err)
    ok(rc == 0 and m, 'queued (relay down): exit 0, "queued as"')
    qid = m.group(1) if m else None
    is_(queue_files(env), [qid], 'queued (relay down): the queue file')
    lines = log.new_lines()
    is_(len(lines), 1, 'queued (relay down): one line')
    size = None
    if lines and qid:
        with open(os.path.join(env.queue_dir, 'q', qid), 'rb') as f:
            size = len(f.read().partition(b'\n\n')[2])
        check_line('queued (relay down)', lines[0], dict(
            base(env), **{'id': qid, 'port': str(down),
                          'from': 'q@example.com',
                          'recipients': 'a@example.com',
                          'mailsize': str(size), 'smtpstatus': None,
                          'smtpmsg': None, 'outcome': 'queued',
                          'exitcode': 'EX_OK', 'errormsg': m.group(2)}),
            pid)

    # deferred: a queue run, the relay still down
    pid, rc, _, err = run_popen(env, ['-qf'])
    is_((rc, err), (0, ''), 'deferred: -qf exit 0')
    lines = log.new_lines()
    is_(len(lines), 1, 'deferred: one line')
    if lines and qid:
        check_line('deferred', lines[0], dict(
            base(env), **{'id': qid, 'port': str(down),
                          'from': 'q@example.com',
                          'recipients': 'a@example.com',
                          'mailsize': str(size), 'smtpstatus': None,
                          'outcome': 'deferred', 'exitcode': 'EX_TEMPFAIL'}),
            pid)
        like(lines[0]['errormsg'] or '', rf'127\.0\.0\.1:{down}',
             'deferred: errormsg says why')

    # sent by a queue run: the same id
    env.relay.reset()
    env.config_for('starttls', logfile=log.path, syslog='off')
    pid, rc, _, err = run_popen(env, ['-qf'])
    is_((rc, err), (0, ''), 'sent by a queue run: -qf exit 0')
    env.relay.wait_idle()
    msgs = env.relay.messages
    lines = log.new_lines()
    is_(len(lines), 1, 'sent by a queue run: one line')
    if lines and msgs:
        check_line('sent by a queue run', lines[0], dict(
            base(env), **{'id': qid, 'from': 'q@example.com',
                          'recipients': 'a@example.com',
                          'mailsize': str(len(msgs[0].data)),
                          'smtpstatus': '250',
                          'smtpmsg': final_reply(msgs[0]),
                          'outcome': 'sent', 'exitcode': 'EX_OK',
                          'errormsg': None}), pid)
        is_(len(msgs[0].data), size, 'mailsize: the queued bytes were sent')

    # delivery = queue: queued at once, no relay involved
    env.config_for('starttls', logfile=log.path, syslog='off',
                   delivery='queue')
    pid, rc, _, err = run_popen(env, ['-f', 'dq@example.com',
                                      'x@example.com'], msg('dq'))
    is_((rc, err), (0, ''), 'delivery = queue: exit 0, nothing said')
    files = queue_files(env)
    lines = log.new_lines()
    is_(len(lines), 1, 'delivery = queue: one line')
    if lines:
        check_line('delivery = queue', lines[0], dict(
            base(env), **{'id': files[0] if len(files) == 1 else files,
                          'from': 'dq@example.com',
                          'recipients': 'x@example.com',
                          'smtpstatus': None, 'smtpmsg': None,
                          'outcome': 'queued', 'exitcode': 'EX_OK',
                          'errormsg': None}), pid)

    # a queue run where recipients fare differently: one line per group,
    # then the failure notice's own line
    env.relay.reset()
    pid, rc, _, err = run_popen(env, ['-f', 'pq@example.com',
                                      'ok1@example.com', 'temp451@x.example',
                                      'reject550@example.com',
                                      'ok2@example.com'], msg('partial'))
    env.config_for('starttls', logfile=log.path, syslog='off')
    [qid2] = [f for f in queue_files(env) if f not in files] or [None]
    log.new_lines()
    pid, rc, _, err = run_popen(env, ['-qI' + str(qid2)])
    is_((rc, err), (0, ''), 'partial: -qI exit 0')
    env.relay.wait_idle()
    msgs, rej = env.relay.messages, env.relay.rejected
    lines = log.new_lines()
    is_([(x['id'], x['outcome'], x['recipients']) for x in lines],
        [(qid2, 'sent', 'ok1@example.com,ok2@example.com'),
         (qid2, 'deferred', 'temp451@x.example'),
         (qid2, 'bounced', 'reject550@example.com'),
         (lines[3]['id'] if len(lines) > 3 else None, 'queued',
          'pq@example.com')],
        'partial: sent, deferred, bounced (in the order of their first '
        'recipient), then the notice queued')
    replies = {r.address: r.reply for r in rej}
    if len(lines) == 4 and msgs:
        check_line('partial: sent', lines[0], dict(
            base(env), **{'mailsize': str(len(msgs[0].data)),
                          'smtpstatus': '250',
                          'smtpmsg': final_reply(msgs[0]),
                          'exitcode': 'EX_OK', 'errormsg': None}), pid)
        check_line('partial: deferred', lines[1], dict(
            base(env), **{'smtpstatus': '451',
                          'smtpmsg': replies.get('temp451@x.example'),
                          'exitcode': 'EX_TEMPFAIL',
                          'errormsg': replies.get('temp451@x.example')}), pid)
        check_line('partial: bounced', lines[2], dict(
            base(env), **{'smtpstatus': '550',
                          'smtpmsg': replies.get('reject550@example.com'),
                          'exitcode': 'EX_NOUSER'}), pid)
        check_line('partial: the notice', lines[3], dict(
            base(env), **{'from': '<>', 'smtpstatus': None,
                          'outcome': 'queued', 'exitcode': 'EX_OK',
                          'errormsg': f'failure notice for {qid2}'}), pid)
        ok(lines[3]['id'] != qid2, 'partial: the notice has an id of its '
           'own')

    # the lifetime is over: what is left bounces, with the reason
    path = os.path.join(env.queue_dir, 'q', qid2)
    tq.edit_qfile(path, created=int(time.time()) - 7 * 86400)
    env.config_for('starttls', port=down, logfile=log.path, syslog='off')
    pid, rc, _, err = run_popen(env, ['-qI' + qid2])
    is_((rc, err), (0, ''), 'lifetime over: -qI exit 0')
    lines = log.new_lines()
    is_([(x['id'], x['outcome'], x['recipients']) for x in lines][:1],
        [(qid2, 'bounced', 'temp451@x.example')],
        'lifetime over: the recipient left bounces')
    if lines:
        check_line('lifetime over', lines[0], dict(
            base(env), **{'port': str(down), 'smtpstatus': None,
                          'exitcode': 'EX_TEMPFAIL'}), pid)
        like(lines[0]['errormsg'] or '',
             r'\Anot delivered in 5d \(queue_lifetime\): cannot connect',
             'lifetime over: errormsg')
    # leave no queue behind for the next tests
    for f in queue_files(env):
        os.unlink(os.path.join(env.queue_dir, 'q', f))


def test_bs(env, log):
    """-bs: a line per transaction, the id the 250 names."""
    env.relay.reset()
    env.config_for('starttls', logfile=log.path, syslog='off')
    dialogue = (b'EHLO client.test\r\n'
                b'MAIL FROM:<bs@example.com>\r\nRCPT TO:<a@example.com>\r\n'
                b'DATA\r\nSubject: bs1\r\n\r\nhello\r\n..dot\r\n.\r\n'
                b'MAIL FROM:<bs@example.com>\r\n'
                b'RCPT TO:<reject550@example.com>\r\n'
                b'DATA\r\nSubject: bs2\r\n\r\nhello\r\n.\r\n'
                b'QUIT\r\n')
    pid, rc, out, err = run_popen(env, ['-bs'], dialogue)
    is_((rc, err), (0, ''), '-bs: exit 0, nothing on stderr')
    ids = re.findall(rf'250 2\.0\.0 Ok: queued as ({ID_RE})', out.decode())
    is_(len(ids), 1, '-bs: one 250 with an id')
    env.relay.wait_idle()
    msgs, rej = env.relay.messages, env.relay.rejected
    lines = log.new_lines()
    is_([x['outcome'] for x in lines], ['sent', 'bounced'],
        '-bs: two lines, sent and bounced')
    if len(lines) == 2 and msgs and rej and ids:
        check_line('-bs: sent', lines[0], dict(
            base(env), **{'id': ids[0], 'from': 'bs@example.com',
                          'recipients': 'a@example.com',
                          'mailsize': str(len(msgs[0].data)),
                          'smtpstatus': '250',
                          'smtpmsg': final_reply(msgs[0]),
                          'exitcode': 'EX_OK'}), pid)
        check_line('-bs: bounced', lines[1], dict(
            base(env), **{'from': 'bs@example.com',
                          'recipients': 'reject550@example.com',
                          'smtpstatus': '550', 'smtpmsg': rej[0].reply,
                          'exitcode': 'EX_NOUSER'}), pid)
        ok(lines[1]['id'] != ids[0], '-bs: each message has its own id')


def recipients_of(raw):
    """The addresses of a recipients value: split at the commas, then
    unescaped (a comma inside an address is \\x2c)."""
    inner = raw[1:-1] if raw.startswith("'") else raw
    return [unquote("'" + a + "'") for a in inner.split(',')]


def test_quoting(env, log):
    """Values outside the plain set are quoted; a comma inside an address
    cannot be taken for a separator."""
    env.relay.reset()
    env.config_for('starttls', logfile=log.path, syslog='off')
    rcpts = ['"a b,c\'d"@example.com', 'plain@example.com']
    pid, rc, _, err = run_popen(env, ['-f', 'q@example.com'] + rcpts,
                                msg('quote'))
    is_((rc, err), (0, ''), 'quoting: exit 0')
    env.relay.wait_idle()
    is_([m.rcpt_tos for m in env.relay.messages], [rcpts],
        'quoting: the relay got both recipients')
    lines = log.new_lines()
    if is_(len(lines), 1, 'quoting: one line'):
        is_(lines[0].raw['recipients'],
            "'\"a b\\x2cc\\'d\"@example.com,plain@example.com'",
            'quoting: recipients quoted, the inner comma as \\x2c')
        is_(recipients_of(lines[0].raw['recipients']), rcpts,
            'quoting: the addresses parse back')
        is_(lines[0].raw['from'], 'q@example.com', 'quoting: plain value '
            'as it is')


# ---- the file ---------------------------------------------------------------

def test_unwritable(env):
    env.relay.reset()
    d = env.path('a-directory')
    os.mkdir(d)
    target = env.write_file('target.log', '')
    link = env.path('link.log')
    os.symlink(target, link)
    # a FIFO: never waited on, whether a reader holds it open or not
    fifo = env.path('fifo.log')
    os.mkfifo(fifo)
    held = env.path('held-fifo.log')
    os.mkfifo(held)
    reader = os.open(held, os.O_RDONLY | os.O_NONBLOCK)
    cases = [(d, 'Is a directory'),
             (link, 'Too many levels of symbolic links'),
             (fifo, 'No such device or address'),
             (held, 'not a regular file'),
             ('/dev/null', 'not a regular file'),
             (env.path('no/such/dir.log'), 'No such file or directory')]
    for path, why in cases:
        env.relay.reset()
        env.config_for('starttls', logfile=path, syslog='off')
        r = env.run(['a@example.com'], input=msg('unwritable'), timeout=20)
        env.relay.wait_idle()
        is_((r.rc, r.err),
            (0, f"mailshim: cannot write logfile '{path}': {why}\n"),
            f'{why}: exit 0, one line on stderr')
        is_(len(env.relay.messages), 1, f'{why}: delivered all the same')
    is_(os.path.getsize(target), 0, 'the symbolic link was not followed')
    try:
        leaked = os.read(reader, 100)
    except BlockingIOError:
        leaked = b''
    os.close(reader)
    is_(leaked, b'', 'nothing was written into the FIFO')

    # a directory the caller may not write to: mailshim run as nobody,
    # with a configuration of its own in a directory it can read
    env.relay.reset()
    nobody = 65534
    home = env.path('nobody')
    os.mkdir(home, 0o755)
    logdir = os.path.join(home, 'logs')
    os.mkdir(logdir, 0o755)                 # root's: nobody cannot write
    ca = os.path.join(home, 'ca.pem')
    shutil.copy(env.relay.ca_file, ca)
    os.chmod(ca, 0o644)
    os.chmod(env.dir, 0o711)
    saved = env.last_config
    env.config_for('starttls', name='nobody.ini', ca_file=ca,
                   logfile=os.path.join(logdir, 'mail.log'), syslog='off')
    cfg = os.path.join(home, 'mailshim.ini')
    shutil.move(env.last_config, cfg)
    os.chown(cfg, 0, nobody)
    os.chmod(cfg, 0o640)
    cmd = ['setpriv', f'--reuid={nobody}', f'--regid={nobody}',
           '--clear-groups'] + \
        shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) + \
        [os.environ['MAILSHIM_BIN'], '-C', cfg, 'a@example.com']
    p = subprocess.run(cmd, input=msg('nobody'), capture_output=True,
                       env=env.child_env(), cwd=home, timeout=60)
    env.relay.wait_idle()
    os.chmod(env.dir, 0o700)
    env.last_config = saved
    want = f"mailshim: cannot write logfile '{logdir}/mail.log': " \
        'Permission denied\n'
    is_((p.returncode, p.stderr.decode()), (0, want),
        'Permission denied: exit 0, one line on stderr')
    is_(len(env.relay.messages), 1, 'Permission denied: delivered all the '
        'same')
    is_(os.listdir(logdir), [], 'Permission denied: no file made')

    # said once per process: a queue run of three messages
    env.config_for('starttls', logfile=d, syslog='off', delivery='queue')
    for i in range(3):
        r = env.run(['a@example.com'], input=msg(f'q{i}'))
    is_(r.rc, 0, 'delivery = queue with a bad logfile: exit 0')
    env.relay.reset()
    env.config_for('starttls', logfile=d, syslog='off')
    r = env.run(['-q'])
    env.relay.wait_idle()
    is_((r.rc, r.err),
        (0, f"mailshim: cannot write logfile '{d}': Is a directory\n"),
        'a queue run of three: the error said once, exit 0')
    is_(len(env.relay.messages), 3, 'a queue run of three: all delivered')


def test_modes(env):
    for mask, label in ((0, 'umask 0'), (0o277, 'umask 0277')):
        path = env.path(f'new-{mask:o}.log')
        env.config_for('starttls', logfile=path, syslog='off')
        old = os.umask(mask)
        try:
            r = env.run(['a@example.com'], input=msg('mode'))
        finally:
            os.umask(old)
        is_(r.rc, 0, f'{label}: exit 0')
        mode = stat.S_IMODE(os.stat(path).st_mode) \
            if os.path.exists(path) else None
        is_(mode, 0o600, f'{label}: a new log file is 0600')
        is_(len(read_log(path)), 1, f'{label}: one line in it')
    # an existing file keeps its mode (the administrator's choice)
    path = env.write_file('shared.log', '', 0o640)
    env.config_for('starttls', logfile=path, syslog='off')
    r = env.run(['a@example.com'], input=msg('mode'))
    is_((r.rc, stat.S_IMODE(os.stat(path).st_mode), len(read_log(path))),
        (0, 0o640, 1), 'an existing log file keeps its mode 0640')


class BarrierRelay:
    """A plain-text SMTP server on 127.0.0.1 (no TLS, no AUTH) that holds
    the reply to each final dot until n messages are in, then answers them
    all at once: n mailshim processes then write their log lines at the
    same moment."""

    def __init__(self, n):
        self.barrier = threading.Barrier(n, timeout=60)
        self.messages = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,),
                             daemon=True).start()

    def _session(self, conn):
        conn.settimeout(60)
        f = conn.makefile('rwb')

        def say(line):
            f.write(line.encode() + b'\r\n')
            f.flush()
        try:
            say('220 barrier.test ESMTP')
            rcpts = []
            for line in f:
                verb = line[:4].decode().upper()
                if verb == 'EHLO':
                    say('250 barrier.test')
                elif verb == 'RCPT':
                    rcpts.append(line)
                    say('250 2.1.5 ok')
                elif verb == 'DATA':
                    say('354 go ahead')
                    size = 0
                    for chunk in f:
                        if chunk == b'.\r\n':
                            break
                        size += len(chunk)
                    with self.lock:
                        self.messages.append((len(rcpts), size))
                    self.barrier.wait()
                    say('250 2.0.0 accepted together')
                elif verb == 'QUIT':
                    say('221 2.0.0 bye')
                    return
                else:
                    say('250 2.0.0 ok')
        except (OSError, threading.BrokenBarrierError):
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def test_concurrency(env):
    """20 senders whose relay answers them all at the same moment, each
    line longer than a stdio buffer: every line whole."""
    n = 20
    relay = BarrierRelay(n)
    path = env.path('busy.log')
    if os.path.exists(path):
        os.unlink(path)
    env.config_for('plain_noauth', port=relay.port, username=None,
                   password=None, logfile=path, syslog='off')
    results = [None] * n

    def send(i):
        rcpts = [f'sender{i:02d}-recipient{k:02d}-' + 'x' * 80 +
                 '@example.com' for k in range(100)]
        results[i] = env.run(rcpts, input=msg(f'c{i}'), timeout=120)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    relay.close()
    is_([(r.rc, r.err) for r in results], [(0, '')] * n,
        f'{n} senders: all exit 0, nothing on stderr')
    is_(len(relay.messages), n, f'{n} senders: the relay took {n} messages '
        'and answered them together')
    with open(path, 'rb') as f:
        raw = f.read().decode().split('\n')
    is_(raw[-1], '', 'the file ends with a newline')
    good = [t for t in raw[:-1] if LINE_RE.fullmatch(t)]
    is_((len(raw) - 1, len(good)), (n, n),
        f'{n} senders: exactly {n} lines, each well-formed')
    senders = sorted(Line(t)['recipients'][:8] for t in good)
    is_(senders, sorted(f'sender{i:02d}' for i in range(n)),
        f'{n} senders: one line each')
    ok(all(len(t) > 10000 for t in good), 'each line is over 10000 bytes')


# ---- syslog -----------------------------------------------------------------

# Run "$@" with /dev a tmpfs of this mount namespace holding the devices a
# process needs and, as /dev/log, the test's socket.
NS_SCRIPT = r'''
set -e
dev=$1; sock=$2; shift 2
mount -t tmpfs -o mode=0755 test-dev "$dev"
for n in null zero full random urandom; do
    touch "$dev/$n"; mount --bind "/dev/$n" "$dev/$n"
done
ln -s /proc/self/fd "$dev/fd"
ln -s /proc/self/fd/0 "$dev/stdin"
ln -s /proc/self/fd/1 "$dev/stdout"
ln -s /proc/self/fd/2 "$dev/stderr"
touch "$dev/log"; mount --bind "$sock" "$dev/log"
mount --rbind "$dev" /dev
exec "$@"
'''


class Syslog:
    """A datagram socket standing for /dev/log."""

    def __init__(self, env):
        self.env = env
        self.path = env.path('devlog.sock')
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.dev = env.path('dev')
        os.makedirs(self.dev, exist_ok=True)

    def run(self, args, data=b''):
        """Run mailshim in a mount namespace where /dev/log is the socket;
        (pid, exit status, stderr, the datagrams it sent)."""
        cmd = ['unshare', '--mount', '--propagation', 'private', '/bin/sh',
               '-c', NS_SCRIPT, 'sh', self.dev, self.path] + \
            shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) + \
            [os.environ['MAILSHIM_BIN'], '-C', self.env.last_config] + args
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.env.child_env(), cwd=self.env.dir)
        out, err = p.communicate(data, timeout=60)
        # datagrams are queued on the socket once syslog() has returned
        got = []
        self.sock.setblocking(False)
        while True:
            try:
                got.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                break
        return p.pid, p.returncode, err.decode(), got


SYSLOG_RE = re.compile(r'<(\d+)>(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d )?'
                       r'mailshim\[(\d+)\]: (.*)', re.S)


def test_syslog(env, datagrams):
    sl = Syslog(env)
    log = Log(env, 'with-syslog.log')

    def one(label, prio, outcome, args, data=msg('syslog'), **keys):
        env.relay.reset()
        env.config_for('starttls', logfile=log.path, **keys)
        pid, rc, err, got = sl.run(args, data)
        datagrams.extend(got)
        env.relay.wait_idle()
        lines = log.new_lines()
        if not is_(len(got), 1, f'{label}: one datagram'):
            diag(f'exit {rc}, stderr: {err}')
            return
        m = SYSLOG_RE.fullmatch(got[0])
        if not ok(m, f'{label}: the datagram is <PRI>... mailshim[PID]: '):
            diag(repr(got[0]))
            return
        is_(int(m.group(1)), prio, f'{label}: priority <{prio}>')
        is_(int(m.group(2)), pid, f'{label}: ident mailshim[{pid}]')
        ok(LINE_RE.fullmatch('2000-01-01T00:00:00+00:00 mailshim[1]: ' +
                             m.group(3)), f'{label}: the fields, whole')
        if is_(len(lines), 1, f'{label}: one line in the file too'):
            is_(m.group(3), lines[0].fields_text,
                f'{label}: the same fields as the file')
            is_(lines[0]['outcome'], outcome, f'{label}: outcome {outcome}')

    one('mail.info (sent)', 22, 'sent', ['a@example.com'])
    one('mail.notice (queued)', 21, 'queued', ['a@example.com'],
        delivery='queue')
    for f in queue_files(env):
        os.unlink(os.path.join(env.queue_dir, 'q', f))
    one('mail.err (failed)', 19, 'failed', ['a@example.com'],
        password='nope')
    one('mail.err (bounced)', 19, 'bounced', ['reject550@example.com'])
    one('local3.info', 158, 'sent', ['a@example.com'], syslog='local3')
    one('daemon.info', 30, 'sent', ['a@example.com'], syslog='daemon')

    # a log file that cannot be written: syslog goes on, for every line
    # of the process (a queue run of three messages)
    for f in queue_files(env):
        os.unlink(os.path.join(env.queue_dir, 'q', f))
    bad = env.path('log-is-a-dir')
    os.mkdir(bad)
    env.config_for('starttls', logfile=bad, delivery='queue', syslog='off')
    for i in range(3):
        env.run(['a@example.com'], input=msg(f'bad{i}'))
    env.relay.reset()
    env.config_for('starttls', logfile=bad)
    pid, rc, err, got = sl.run(['-q'])
    datagrams.extend(got)
    env.relay.wait_idle()
    is_((rc, err, len(env.relay.messages)),
        (0, f"mailshim: cannot write logfile '{bad}': Is a directory\n", 3),
        'logfile broken, syslog on: exit 0, said once, all delivered')
    is_([SYSLOG_RE.fullmatch(d).group(1) if SYSLOG_RE.fullmatch(d) else d
         for d in got], ['22'] * 3,
        'logfile broken, syslog on: a datagram for each of the three')

    # syslog = off: nothing, though the file has its line
    env.relay.reset()
    env.config_for('starttls', logfile=log.path, syslog='off')
    pid, rc, err, got = sl.run(['a@example.com'], msg('off'))
    is_((rc, err, got), (0, '', []), 'syslog = off: no datagram')
    is_(len(log.new_lines()), 1, 'syslog = off: the file has the line')

    # the namespace is what makes it work: without it, nothing arrives
    # here (the host has no /dev/log, or another one)
    env.config_for('starttls', logfile=log.path)
    r = env.run(['a@example.com'], input=msg('outside'))
    sl.sock.setblocking(False)
    try:
        stray = sl.sock.recv(65536)
    except BlockingIOError:
        stray = None
    is_((r.rc, stray), (0, None),
        'control: outside the namespace the socket gets nothing')
    log.new_lines()


def test_password_nowhere(env, datagrams):
    data = b''
    for name in os.listdir(env.dir):
        if name.endswith('.log') and os.path.isfile(env.path(name)):
            with open(env.path(name), 'rb') as f:
                data += f.read()
    ok(data.count(b'\n') >= 40, 'the log files hold the lines of the '
       'tests (%d)' % data.count(b'\n'))
    ok(PASSWORD.encode() not in data, 'the password is in no line of a file')
    ok(datagrams and not any(PASSWORD in d for d in datagrams),
       'the password is in no syslog datagram')


def main():
    if os.geteuid() != 0:
        harness.bail_out('t-log.py runs as root (mount namespaces for '
                         'syslog): the CI does')
    with harness.Env() as env:
        log = Log(env)
        test_direct(env, log)
        test_queue(env, log)
        test_bs(env, log)
        test_quoting(env, log)
        test_unwritable(env)
        test_modes(env)
        test_concurrency(env)
        datagrams = []
        test_syslog(env, datagrams)
        test_password_nowhere(env, datagrams)


harness.main(main)
