#!/usr/bin/python3
"""The queue runner's packaging: packaging/systemd/mailshim-queue.service
runs `mailshim -q`, mailshim-queue.timer starts it every minute, and
packaging/cron.d/mailshim does the same on systems without systemd (and
nothing on systemd hosts).  The units pass `systemd-analyze verify`, with
@sbindir@ and @queuedir@ substituted as make does (with configure's
defaults)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness
from harness import ok, is_, like, unlike, diag

TOP = os.path.dirname(os.environ['MAILSHIM_TESTLIB'].rstrip('/'))
SERVICE = 'packaging/systemd/mailshim-queue.service'
TIMER = 'packaging/systemd/mailshim-queue.timer'
CRON = 'packaging/cron.d/mailshim'
SBINDIR = '/usr/sbin'
QUEUEDIR = '/var/spool/mailshim'


def read(rel):
    path = os.path.join(TOP, rel)
    if not os.path.isfile(path):
        harness.bail_out(f'{rel} is missing (is it in EXTRA_DIST?)')
    with open(path, encoding='utf-8') as f:
        return f.read()


def substitute(text, sbindir=SBINDIR):
    return text.replace('@sbindir@', sbindir).replace('@queuedir@', QUEUEDIR)


def parse_unit(text):
    """A unit file as {section: [(key, value), ...]}: comments, blank lines
    and backslash continuations as systemd reads them."""
    sections = {}
    current = None
    logical = ''
    for raw in text.splitlines():
        line = logical + raw.strip() if logical else raw.strip()
        logical = ''
        if not line or line[0] in '#;':
            continue
        if line.endswith('\\'):
            logical = line[:-1] + ' '
            continue
        m = re.fullmatch(r'\[([^\]]+)\]', line)
        if m:
            current = sections.setdefault(m.group(1), [])
            continue
        key, sep, value = line.partition('=')
        if current is None or not sep:
            raise ValueError(f'not a unit file line: {raw!r}')
        current.append((key.strip(), value.strip()))
    return sections


def values(unit, section, key):
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit, section, key):
    """The last setting of key, as systemd takes it (None: not set)."""
    found = values(unit, section, key)
    return found[-1] if found else None


_SPAN_UNITS = {
    'us': 1e-6, 'usec': 1e-6, 'ms': 1e-3, 'msec': 1e-3,
    's': 1, 'sec': 1, 'second': 1, 'seconds': 1,
    'm': 60, 'min': 60, 'minute': 60, 'minutes': 60,
    'h': 3600, 'hr': 3600, 'hour': 3600, 'hours': 3600,
    'd': 86400, 'day': 86400, 'days': 86400,
}


def timespan(text):
    """A systemd time span ("1min", "60", "1min 30s") in seconds; None if
    it is not one."""
    if text is None:
        return None
    text = text.strip()
    if re.fullmatch(r'\d+(\.\d+)?', text):
        return float(text)
    total = 0.0
    parts = re.findall(r'\s*(\d+(?:\.\d+)?)\s*([a-z]+)', text)
    if not parts or ''.join(n + u for n, u in parts) != re.sub(r'\s', '', text):
        return None
    for number, unit in parts:
        if unit not in _SPAN_UNITS:
            return None
        total += float(number) * _SPAN_UNITS[unit]
    return total


CRON_FIELD = re.compile(
    r'(\*|\d+(-\d+)?|[a-z]{3})(/\d+)?(,(\*|\d+(-\d+)?|[a-z]{3})(/\d+)?)*',
    re.I)


def cron_jobs(text):
    """The job lines of a cron.d file (no comments, blanks or VAR=value)."""
    jobs, env = [], {}
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith('#'):
            continue
        m = re.fullmatch(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)', s)
        if m:
            env[m.group(1)] = m.group(2)
            continue
        jobs.append(s)
    return jobs, env


def test_service(text):
    unit = parse_unit(substitute(text))
    is_(value(unit, 'Service', 'Type'), 'oneshot', 'service: Type=oneshot')
    is_(values(unit, 'Service', 'ExecStart'), [SBINDIR + '/mailshim -q'],
        'service: ExecStart runs mailshim -q from sbindir, once')
    is_(value(unit, 'Service', 'ProtectSystem'), 'strict',
        'service: ProtectSystem=strict')
    rw = ' '.join(values(unit, 'Service', 'ReadWritePaths')).split()
    ok('/var/spool/mailshim' in [p.lstrip('-') for p in rw],
       'service: the queue (/var/spool/mailshim) is writable')
    is_(value(unit, 'Service', 'PrivateTmp'), 'yes', 'service: PrivateTmp')
    is_(value(unit, 'Service', 'ProtectHome'), 'yes', 'service: ProtectHome')
    # the relay is on the network, found through DNS
    ok(value(unit, 'Service', 'PrivateNetwork') in (None, 'no', 'false'),
       'service: no PrivateNetwork')
    ok(not values(unit, 'Service', 'IPAddressDeny'),
       'service: no IPAddressDeny')
    families = value(unit, 'Service', 'RestrictAddressFamilies')
    ok(families is None or
       {'AF_UNIX', 'AF_INET', 'AF_INET6'} <= set(families.split()),
       'service: AF_UNIX, AF_INET and AF_INET6 allowed')
    ok('Install' not in unit,
       'service: no [Install]: the timer starts it, it is not enabled')


def test_timer(text):
    unit = parse_unit(substitute(text))
    is_(timespan(value(unit, 'Timer', 'OnBootSec')), 60.0,
        'timer: first run a minute after boot')
    is_(timespan(value(unit, 'Timer', 'OnUnitActiveSec')), 60.0,
        'timer: then every minute')
    accuracy = timespan(value(unit, 'Timer', 'AccuracySec'))
    ok(accuracy is not None and accuracy <= 10,
       f'timer: AccuracySec set, at most 10s (got {accuracy})')
    ok(value(unit, 'Timer', 'Unit') in (None, 'mailshim-queue.service'),
       'timer: starts mailshim-queue.service')
    wanted = ' '.join(values(unit, 'Install', 'WantedBy')).split()
    ok('timers.target' in wanted, 'timer: WantedBy=timers.target')


def test_cron(text):
    ok(text.endswith('\n'), 'cron: the last line ends with a newline')
    jobs, env = cron_jobs(substitute(text))
    is_(env.get('SHELL'), '/bin/sh', 'cron: SHELL=/bin/sh')
    like(env.get('PATH', ''), r'(^|:)/usr/sbin(:|$)', 'cron: PATH set')
    if not is_(len(jobs), 1, 'cron: one job'):
        return
    fields = jobs[0].split(None, 6)
    if not is_(len(fields), 7, 'cron: 5 time fields, a user, a command'):
        return
    times, user, command = fields[:5], fields[5], fields[6]
    ok(all(CRON_FIELD.fullmatch(f) for f in times),
       'cron: the time fields are valid')
    is_(times, ['*'] * 5, 'cron: every minute')
    is_(user, 'root', 'cron: runs as root')
    unlike(command, r'%', 'cron: no % (cron would make it a newline)')
    like(command, r'(^|\s)' + re.escape(SBINDIR + '/mailshim') + r' -q(\s|$)',
         'cron: runs mailshim -q from sbindir')
    like(command, r'\[ ! -d /run/systemd/system \] &&',
         'cron: guarded by /run/systemd/system')
    like(command, r'\[ -x ' + re.escape(SBINDIR + '/mailshim') + r' \] &&',
         'cron: guarded by mailshim being installed')
    r = subprocess.run(['/bin/sh', '-n', '-c', command], capture_output=True,
                       text=True)
    ok(r.returncode == 0 and r.stderr == '', 'cron: sh -n accepts it')
    if r.stderr:
        diag(r.stderr)

    # Run the job with stand-ins for mailshim and logger: with no systemd
    # (a /run/systemd/system that does not exist) it runs the queue; on a
    # systemd host (one that does) it does nothing.
    with tempfile.TemporaryDirectory(prefix='mailshim-pkg-') as tmp:
        sbin = os.path.join(tmp, 'sbin')
        os.mkdir(sbin)
        calls = os.path.join(tmp, 'calls')
        logged = os.path.join(tmp, 'logged')
        stub(os.path.join(sbin, 'mailshim'),
             f'echo "mailshim $*" >> {calls}\n'
             'echo "mailshim: a note for the log" >&2\n')
        stub(os.path.join(sbin, 'logger'),
             f'echo "logger $*" >> {calls}\ncat >> {logged}\n')
        job = cron_jobs(substitute(text, sbin))[0][0].split(None, 6)[6]
        systemd = os.path.join(tmp, 'run-systemd-system')
        job = job.replace('/run/systemd/system', systemd)
        cron_env = {'PATH': sbin + ':' + env.get('PATH', '/usr/bin:/bin'),
                    'HOME': tmp}

        r = subprocess.run(['/bin/sh', '-c', job], capture_output=True,
                           text=True, env=cron_env, timeout=30)
        got = slurp(calls)
        ok(r.returncode == 0 and 'mailshim -q\n' in got,
           'cron: without systemd the job runs mailshim -q')
        if r.returncode or 'mailshim -q\n' not in got:
            diag(f'rc={r.returncode} calls={got!r} stderr={r.stderr!r}')
        is_(r.stdout + r.stderr, '', 'cron: nothing for cron to mail')
        like(slurp(logged), r'a note for the log',
             "cron: mailshim's output goes to the log")

        if os.path.exists(calls):
            os.remove(calls)
        os.mkdir(systemd)
        r = subprocess.run(['/bin/sh', '-c', job], capture_output=True,
                           text=True, env=cron_env, timeout=30)
        is_((slurp(calls), r.stdout + r.stderr), ('', ''),
            'cron: on a systemd host the job does nothing, silently')


def stub(path, body):
    with open(path, 'w') as f:
        f.write('#!/bin/sh\n' + body)
    os.chmod(path, 0o755)


def slurp(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ''


def test_verify(service, timer):
    analyze = shutil.which('systemd-analyze')
    if analyze is None:
        harness.bail_out('systemd-analyze is missing: install the systemd '
                         'package (apt-get install systemd) to check the '
                         'units')
    if shutil.which('man') is None:
        harness.bail_out('man (package man-db) is needed: systemd-analyze '
                         'verify checks the units\' Documentation= pages')
    with tempfile.TemporaryDirectory(prefix='mailshim-pkg-') as tmp:
        # verify checks that ExecStart's program exists and that the
        # Documentation= man pages open: an sbindir with a stand-in
        # mailshim, and a MANPATH with doc/'s pages
        sbin = os.path.join(tmp, 'sbin')
        os.mkdir(sbin)
        stub(os.path.join(sbin, 'mailshim'), 'exit 0\n')
        for page in os.listdir(os.path.join(TOP, 'doc')):
            m = re.fullmatch(r'.+\.([1-8])', page)
            if m:
                mandir = os.path.join(tmp, 'man', 'man' + m.group(1))
                os.makedirs(mandir, exist_ok=True)
                shutil.copy(os.path.join(TOP, 'doc', page), mandir)
        units = os.path.join(tmp, 'units')
        os.mkdir(units)
        paths = []
        for name, text in (('mailshim-queue.service', service),
                           ('mailshim-queue.timer', timer)):
            path = os.path.join(units, name)
            with open(path, 'w') as f:
                f.write(substitute(text, sbin))
            paths.append(path)
        r = subprocess.run([analyze, 'verify'] + paths, capture_output=True,
                           text=True, timeout=120,
                           env=dict(os.environ, MANPATH=os.path.join(tmp, 'man'),
                                    SYSTEMD_LOG_COLOR='0'))
        is_(r.returncode, 0, 'systemd-analyze verify exits 0')
        ours = [line for line in r.stderr.splitlines()
                if 'mailshim' in line or tmp in line]
        is_(ours, [], 'systemd-analyze verify: no complaint about the units')
        if r.stderr or r.returncode:
            diag(f'systemd-analyze verify, rc={r.returncode}:\n'
                 f'{r.stdout}{r.stderr}')


def test():
    service, timer, cron = read(SERVICE), read(TIMER), read(CRON)
    for name, text in ((SERVICE, service), (CRON, cron)):
        like(text, r'@sbindir@/mailshim', f'{name}: names @sbindir@/mailshim')
    like(service, r'(?m)^ReadWritePaths=-@queuedir@$',
         f'{SERVICE}: the queue is configure\'s (@queuedir@)')
    for name, text in ((SERVICE, service), (TIMER, timer), (CRON, cron)):
        unlike(substitute(text), r'@[A-Za-z_]+@',
               f'{name}: no other @token@ left to substitute')
    test_service(service)
    test_timer(timer)
    test_cron(cron)
    test_verify(service, timer)


harness.main(test)
