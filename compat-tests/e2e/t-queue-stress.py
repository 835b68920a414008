#!/usr/bin/python3
"""The queue under concurrency and kill -9 (mailshim(8), THE QUEUE: "A
crash or kill -9 at any moment leaves either no queue file or a complete
one"; "any number of runners and senders can work at once and no message
is delivered twice").

The assertion every time: each message whose sender exited 0 arrives at
the relay exactly once, once the relay is healthy and queue runs have run.
A duplicate is allowed only when a runner was killed between the relay's
250 and the removal of the queue file; they are counted against the kills.

  - 100 concurrent senders (delivery = queue) with 3 runners looping -q
    and a -bp loop at the same time: no duplicate at all, no damaged file.
  - senders killed at random points (queue only; direct to a relay that is
    down, so they queue; direct to a slow relay): no partial file in q/,
    leftovers in tmp/ only from killed senders.
  - runners killed at random points against a relay that holds its 250
    back: duplicates <= kills (times queue_concurrency).

The helpers (the switchable relay, the queue file parser) are t-queue.py's.
"""

import collections
import importlib.util
import os
import random
import shlex
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, ok  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    't_queue', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            't-queue.py'))
tq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tq)


def command(config, args):
    return shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) + \
        [os.environ['MAILSHIM_BIN'], '-C', config] + list(args)


class Proc:
    """mailshim started in the background; stdin from a file, stderr to a
    file, so that a kill leaves no pipe to drain."""

    def __init__(self, env, config, args, msg=b'', name='p'):
        self.inp = env.path(f'in-{name}')
        self.errp = env.path(f'err-{name}')
        with open(self.inp, 'wb') as f:
            f.write(msg)
        with open(self.inp, 'rb') as stdin, open(self.errp, 'wb') as err:
            self.p = subprocess.Popen(command(config, args), stdin=stdin,
                                      stdout=subprocess.DEVNULL, stderr=err,
                                      env=env.child_env(), cwd=env.dir)
        self.started = time.monotonic()

    def kill_after(self, delay):
        def kill():
            try:
                self.p.kill()
            except OSError:
                pass
        t = threading.Timer(delay, kill)
        t.start()
        return t

    def wait(self):
        rc = self.p.wait(60)
        with open(self.errp, 'rb') as f:
            self.err = f.read().decode('utf-8', 'backslashreplace')
        os.unlink(self.inp)
        os.unlink(self.errp)
        self.rc = rc
        return rc


def timed_run(env, config, args, msg=b''):
    t = time.monotonic()
    r = env.run(args, input=msg, config=config)
    return time.monotonic() - t, r


def drain(env, config, q, args=('-q',), runs=5):
    """Queue runs until q/ is empty (at most runs)."""
    for _ in range(runs):
        r = env.run(list(args), config=config)
        if r.rc != 0 or r.err:
            diag(r.describe())
        if not q.names():
            return True
    return False


def parse_all(q, area='q'):
    """Parse every file in area as a complete queue file: ({id: QFile},
    what did not parse)."""
    out, bad = {}, []
    for name in q.names(area):
        try:
            out[name] = tq.read_qfile(q.path(name, area))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            bad.append(f'{area}/{name}: {e}')
    return out, bad


# ---- 100 senders, 3 runners -----------------------------------------------

def test_concurrent(env, sw):
    q = tq.Q(env, sw, 'concurrent')
    cfg = q.relay_cfg('starttls', delivery='queue',
                      name='concurrent.ini')
    env.relay.reset()
    n = 100
    senders_done = threading.Event()
    runs = collections.Counter()
    bad = []

    def loop(args):
        while True:
            last = senders_done.is_set()
            r = env.run(args, config=cfg)
            runs[args[0]] += 1
            if r.rc != 0 or r.err:
                bad.append(r.describe())
            if last:
                return

    threads = [threading.Thread(target=loop, args=(['-q'],))
               for _ in range(3)]
    threads.append(threading.Thread(target=loop, args=(['-bp'],)))
    for t in threads:
        t.start()
    procs = [Proc(env, cfg, ['-f', 'me@example.net', f'c{i}@example.org'],
                  tq.make_msg(f'conc-{i:03d}'), f'c{i}')
             for i in range(n)]
    for p in procs:
        p.wait()
    senders_done.set()
    for t in threads:
        t.join(120)
    diag(f'concurrent: {runs["-q"]} runs of -q and {runs["-bp"]} of -bp '
         'while the senders ran')
    is_([(p.rc, p.err) for p in procs if (p.rc, p.err) != (0, '')], [],
        'concurrent: all 100 senders exit 0, silent')
    is_(bad, [], 'concurrent: every -q and -bp exits 0, silent (no damaged '
        'or half-written file seen)')
    drained = drain(env, cfg, q)
    env.relay.wait_idle()
    counts = tq.tag_counts(env.relay.messages)
    want = {f'conc-{i:03d}': 1 for i in range(n)}
    is_({t: c for t, c in counts.items() if want.get(t) != c}, {},
        'concurrent: each message arrived exactly once, no duplicate')
    is_(len(counts), n, 'concurrent: nothing else arrived')
    ok(drained, 'concurrent: the queue drained')
    is_((q.names(), q.names('tmp'), q.names('failed')), ([], [], []),
        'concurrent: q/, tmp/ and failed/ are empty')


def test_concurrent_partial(env, sw):
    """Runners racing over messages they partly deliver: each run delivers
    to ok-N@ (once) and rewrites the file for temp451@, which waits, while
    the other runners look at it, lock it, find it replaced."""
    q = tq.Q(env, sw, 'partial')
    cfg = q.relay_cfg('plain', name='partial.ini')
    n = 30
    for i in range(n):
        r = env.run(['-odq', '-f', 'me@example.net', f'ok-{i}@example.org',
                     'temp451@example.org'],
                    input=tq.make_msg(f'part-{i:02d}'), config=cfg)
        if r.rc != 0:
            diag(r.describe())
    env.relay.reset()
    bad = []

    def loop():
        for _ in range(4):
            r = env.run(['-qf'], config=cfg)
            if r.rc != 0 or r.err:
                bad.append(r.describe())

    threads = [threading.Thread(target=loop) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    env.relay.wait_idle()
    is_(bad, [], 'partial, 3 runners: every -qf exits 0, silent')
    got = collections.Counter((tq.subject(m.data), tuple(m.rcpt_tos))
                              for m in env.relay.messages)
    want = collections.Counter({(f'part-{i:02d}', (f'ok-{i}@example.org',)):
                                1 for i in range(n)})
    is_(got, want, 'partial, 3 runners x 4 forced runs: each message '
        'delivered to its ok-N@ exactly once, to nobody else')
    files, damaged = parse_all(q)
    is_(damaged, [], 'partial: every file in q/ parses')
    is_(sorted((f.rcpt, f.failed) for f in files.values()),
        [(['temp451@example.org'], [])] * n,
        'partial: every message still waits, for temp451@ only')
    ok(all(f.attempts >= 1 for f in files.values()),
       'partial: each was tried')
    is_((q.names('tmp'), q.names('failed')), ([], []),
        'partial: nothing in tmp/ or failed/')


# ---- kill -9 of senders --------------------------------------------------

def test_kill_senders(env, sw):
    q = tq.Q(env, sw, 'ksend')
    sw.delay_250 = 0.05
    kinds = {
        # only writes the queue
        'odq': (q.switch_cfg(name='ks-odq.ini'), ['-odq']),
        # cannot connect, then writes the queue
        'down': (q.down_cfg(name='ks-down.ini'), []),
        # delivers, slowly: killed before or after the relay's 250
        'slow': (q.switch_cfg(name='ks-slow.ini'), []),
    }
    healthy = q.switch_cfg(name='ks-healthy.ini')
    # how long a whole run takes here (ASan, a loaded machine): kills fall
    # anywhere in it, some after it
    span = {}
    for kind, (cfg, args) in kinds.items():
        t, r = timed_run(env, cfg, args + ['cal@example.org'],
                         tq.make_msg(f'ks-cal-{kind}'))
        span[kind] = t
        if r.rc != 0:
            diag(r.describe())
    diag('kill senders: a run takes ' + ', '.join(
        f'{k} {v * 1000:.0f} ms' for k, v in span.items()))
    drain(env, healthy, q, ('-qf',))
    sw.reset()

    rnd = random.Random()
    procs = []
    for batch in range(4):
        started = []
        for i in range(15):
            kind = list(kinds)[i % 3]
            cfg, args = kinds[kind]
            tag = f'ks-{batch}-{i:02d}'
            p = Proc(env, cfg, args + ['-f', 'me@example.net',
                                       f'{tag}@example.org'],
                     tq.make_msg(tag), tag)
            p.tag, p.kind = tag, kind
            if rnd.random() < 0.8:
                p.timer = p.kill_after(rnd.uniform(0, span[kind] * 1.5))
            started.append(p)
        for p in started:
            p.wait()
            if hasattr(p, 'timer'):
                p.timer.join()
        procs += started
    killed = [p for p in procs if p.rc == -9]
    done = [p for p in procs if p.rc == 0]
    diag(f'kill senders: {len(procs)} senders, {len(killed)} killed, '
         f'{len(done)} exited 0')
    is_([(p.tag, p.rc, p.err) for p in procs if p.rc not in (0, -9)], [],
        'kill senders: those not killed exit 0')
    is_([(p.tag, p.err) for p in done
         if p.err and not tq.QUEUED_RE.match(p.err)], [],
        'kill senders: exit 0 with nothing on stderr, or "queued as"')
    ok(killed and done, 'kill senders: some were killed, some finished')

    files, bad = parse_all(q)
    is_(bad, [], 'kill senders: every file in q/ is complete and parses')
    killed_tags = {p.tag for p in killed}
    # tmp/: files only killed senders can have left (empty, or complete)
    leftovers = q.names('tmp')
    stray = []
    for name in leftovers:
        with open(q.path(name, 'tmp'), 'rb') as f:
            data = f.read()
        tag = tq.subject(data)
        if data and tag not in killed_tags:
            stray.append((name, tag))
    diag(f'kill senders: {len(files)} in q/, {len(leftovers)} left in tmp/')
    ok(len(leftovers) <= len(killed), 'kill senders: no more leftovers in '
       'tmp/ than killed senders')
    is_(stray, [], 'kill senders: every leftover in tmp/ is empty or a '
        'killed sender\'s message')
    is_([f.id for f in files.values() if not f.message.endswith(
        b'\r\n\r\nbody of ' + (tq.subject(f.message) or '').encode() +
        b'\r\n.a line starting with a dot\r\n\r\nlast line\r\n')],
        [], 'kill senders: every queued message is whole')

    sw.delay_250 = 0.0
    ok(drain(env, healthy, q, ('-qf',)), 'kill senders: -qf drains q/')
    counts = tq.tag_counts(sw.messages)
    is_({p.tag: counts[p.tag] for p in done if counts[p.tag] != 1}, {},
        'kill senders: every message whose sender exited 0 arrived '
        'exactly once')
    is_({t: c for t, c in counts.items() if c > 1}, {},
        'kill senders: no message arrived twice')
    is_(sorted(t for t in counts if t not in {p.tag for p in procs}), [],
        'kill senders: nothing else arrived')
    is_((q.names(), q.names('failed')), ([], []),
        'kill senders: q/ and failed/ empty')
    sw.reset()


# ---- kill -9 of runners --------------------------------------------------

def test_kill_runners(env, sw, concurrency, n=24):
    label = f'kill runners (queue_concurrency = {concurrency})'
    q = tq.Q(env, sw, f'krun{concurrency}')
    cfg = q.switch_cfg(queue_concurrency=concurrency,
                       name=f'kr{concurrency}.ini')
    tags = [f'kr{concurrency}-{i:02d}' for i in range(n)]
    for tag in tags:
        r = env.run(['-odq', '-f', 'me@example.net', f'{tag}@example.org'],
                    input=tq.make_msg(tag), config=cfg)
        if r.rc != 0:
            diag(r.describe())
    is_(len(q.names()), n, f'{label}: {n} messages queued')
    # the reply held back long enough that a kill (within 0.3 s) finds
    # the runners at work, however many connections they open
    sw.delay_250 = 0.05 * concurrency
    rnd = random.Random()
    kills = runs = 0
    damaged = []
    for _ in range(8):
        if not q.names():
            break
        procs = [Proc(env, cfg, ['-q'], b'', f'runner{i}') for i in range(2)]
        for p in procs:
            p.timer = p.kill_after(rnd.uniform(0.0, 0.3))
        for p in procs:
            p.wait()
            p.timer.join()
            runs += 1
            kills += p.rc == -9
            if p.rc not in (0, -9) or (p.rc == 0 and p.err):
                diag(f'runner: exit {p.rc}: {p.err}')
        damaged += parse_all(q)[1]
    sw.delay_250 = 0.0
    diag(f'{label}: {runs} runners, {kills} killed, '
         f'{len(q.names())} messages left')
    ok(kills > 0, f'{label}: some runners were killed mid-run')
    is_(damaged, [], f'{label}: after each kill, every file in q/ is '
        'complete and parses')
    sw.wait_idle()
    ok(drain(env, cfg, q), f'{label}: a clean -q drains q/')
    counts = tq.tag_counts(sw.messages)
    is_([t for t in tags if counts[t] < 1], [],
        f'{label}: every message arrived')
    dups = sum(c - 1 for c in counts.values() if c > 1)
    diag(f'{label}: {dups} duplicates')
    ok(dups <= kills * concurrency, f'{label}: duplicates ({dups}) <= '
       f'killed runners ({kills}) x messages each has in flight '
       f'({concurrency})')
    is_(sorted(t for t in counts if t not in tags), [],
        f'{label}: nothing else arrived')
    ok(len(q.names('tmp')) <= kills, f'{label}: leftovers in tmp/ <= kills')
    is_((q.names(), q.names('failed')), ([], []),
        f'{label}: q/ and failed/ empty')
    sw.reset()


def main():
    with harness.Env() as env:
        sw = tq.SwitchRelay()
        try:
            test_concurrent(env, sw)
            test_concurrent_partial(env, sw)
            test_kill_senders(env, sw)
            test_kill_runners(env, sw, 1)
            test_kill_runners(env, sw, 4)
        finally:
            sw.stop()
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(main)
