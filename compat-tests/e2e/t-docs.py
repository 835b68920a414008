#!/usr/bin/python3
"""The documentation matches the code: the manual pages render without
warnings, every config key the loader knows is documented with its default
in mailshim.ini(5) and the README, and the example configurations load."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness
from harness import ok, is_, like

TOP = os.path.dirname(os.environ['MAILSHIM_TESTLIB'].rstrip('/'))


def read(rel):
    with open(os.path.join(TOP, rel), encoding='utf-8') as f:
        return f.read()


def config_keys():
    """The key table of cfg/keys.c: rows like { "port", S_ACCOUNT, ... }."""
    return re.findall(r'^\s*\{ "([a-z_]+)", S_(?:GLOBAL|ACCOUNT),',
                      read('cfg/keys.c'), re.M)


def test_installed_pages():
    """make install puts the pages where man finds them: mailshim(8),
    mailshim.ini(5), and sendmail(8), mailq(1), newaliases(8) showing
    mailshim(8); each renders without warnings."""
    import tempfile
    builddir = os.path.dirname(os.path.dirname(os.environ['MAILSHIM_BIN']))
    dest = tempfile.mkdtemp(prefix='mailshim-man-')
    try:
        r = subprocess.run(['make', '-C', builddir, 'install-man',
                            f'DESTDIR={dest}'], capture_output=True,
                           text=True)
        if not is_(r.returncode, 0, 'make install-man: exit 0'):
            harness.diag(r.stdout[-2000:] + r.stderr[-2000:])
            return
        mandirs = [os.path.join(d, 'man') for d, subdirs, _ in os.walk(dest)
                   if os.path.basename(d) == 'share' and 'man' in subdirs]
        if not is_(len(mandirs), 1, 'make install-man: one man directory'):
            return

        def page(section, name):
            r = subprocess.run(['man', '--warnings', '-E', 'UTF-8',
                                '-M', mandirs[0], section, name],
                               capture_output=True, text=True,
                               env=dict(os.environ, MANWIDTH='80',
                                        MAN_KEEP_FORMATTING='0'))
            is_((r.returncode, r.stderr), (0, ''),
                f'installed {name}({section}): renders without warnings')
            return re.sub(r'.\x08', '', r.stdout)  # overstrikes: bold
        main = page('8', 'mailshim')
        ok('SYNOPSIS' in main and 'SECURITY' in main,
           'installed mailshim(8): the whole page')
        ok('max_message_size' in page('5', 'mailshim.ini'),
           'installed mailshim.ini(5): the keys')
        for section, name in (('8', 'sendmail'), ('1', 'mailq'),
                              ('8', 'newaliases')):
            is_(page(section, name), main,
                f'installed {name}({section}) is mailshim(8)')
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def test(env):
    if not shutil.which('man'):
        harness.bail_out('man (package man-db) is needed to check the '
                         'manual pages')
    for page in ('doc/mailshim.8', 'doc/mailshim.ini.5'):
        r = subprocess.run(['man', '--warnings', '-E', 'UTF-8', '-l',
                            os.path.join(TOP, page)],
                           capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH='80',
                                    MAN_KEEP_FORMATTING='0'))
        is_(r.returncode, 0, page + ': man renders it')
        is_(r.stderr, '', page + ': no warnings')
        ok(len(r.stdout) > 2000, page + ': has content')

    test_installed_pages()

    # every flag the sendmail compatibility issue names has a row in
    # mailshim(8)'s table, with its behaviour
    r = subprocess.run(['man', '-l', os.path.join(TOP, 'doc/mailshim.8')],
                       capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH='200'))
    table = r.stdout.split('Flag ', 1)[-1].split('Any other flag', 1)[0]
    rows = {}
    for line in table.splitlines():
        m = re.match(r'\s+(-\S.*?)\s{2,}(honoured|ignored|refused)\s', line)
        if m:
            for flag in re.split(r',\s*', m.group(1)):
                rows[flag.split(' ')[0].split('[')[0]] = m.group(2)
    for flag in ('-t -i -oi -f -r -F -v -N -R -V -B -C -G -L -U -X -O -h '
                 '-n -m -e -M -A -d -D -I -bm -bs -bp -bP -bi -bv -bd -bD '
                 '-bl -bt -bh -bH -ba -q -p --version --help --check').split():
        # a row is the flag itself, or the flag and a placeholder for its
        # glued value (-dx, -Mxv, -ox)
        ok(any(k == flag or (k.startswith(flag) and
                             k[len(flag):] in ('x', 'xv'))
               for k in rows),
           'mailshim(8) table has a row for %s' % flag)
    is_(rows.get('-bs'), 'honoured', 'the table says -bs is served')
    is_(rows.get('-X'), 'ignored', 'the table says -X is ignored')

    keys = config_keys()
    ok(len(keys) >= 18, 'found the key table in keys.c (%d keys)' % len(keys))
    page = read('doc/mailshim.ini.5')
    readme = read('README.md')
    for k in keys:
        # each key is a .TP tag (bold) in the page and a row in the README
        like(page, r'\.(?:TP\n\.)?B[IR]?\s+%s\b' % re.escape(k),
             'mailshim.ini(5) documents %s' % k)
        like(readme, r'\| `%s`' % re.escape(k) + r'|/ `%s`' % re.escape(k),
             'README table lists %s' % k)
    like(page, r'Default: 60', 'timeout default documented')

    # the examples load, and resolve the way their comments say
    aliases = env.write_file('empty-aliases', '')
    ex = read('packaging/examples/nhncloud.ini')
    text = ex.replace('[mailshim]\n', '[mailshim]\naliases = %s\n' % aliases)
    path = env.write_config(text, name='nhn.ini')
    r = env.run(['-bv', 'root', 'a@example.org'], config=path)
    is_(r.rc, 0, 'nhncloud.ini example loads')
    is_(r.out.decode(), 'noreply@shop.example.com\nroot@shop.example.com\n'
        'a@example.org\n', 'nhncloud.ini example: sender and recipients')

    secret = env.write_file('secret', 'S3cret\n')
    text = read('packaging/examples/relay.ini').replace(
        '/etc/mailshim.secret', secret).replace(
        '; aliases = /etc/aliases', 'aliases = %s' % aliases)
    path = env.write_config(text, name='relay.ini')
    r = env.run(['-bv', '-f', 'web1', 'ops'], config=path)
    is_(r.rc, 0, 'relay.ini example loads')
    is_(r.out.decode(), 'web1@example.com\nops@example.com\n',
        'relay.ini example: sender and recipients')
    is_(r.err, '', 'relay.ini example: nothing on stderr')


def main():
    with harness.Env() as env:
        test(env)
    harness.done()


harness.main(main)
