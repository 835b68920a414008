#!/usr/bin/python3
"""End-to-end: PHP itself sends mail through mailshim.

The real PHP (php8.2-cli) and the real libraries Debian 12 ships
(libphp-phpmailer, php-symfony-mailer, php-swiftmailer) run as www-data,
the user a web server runs PHP as, with a config only that user can read.
PHP is given a "sendmail" wrapper (its name must contain "sendmail" for
PHPMailer): a shell script that records the arguments it gets (the
command line mailshim receives, as the caller built it), what its stdin,
stdout and stderr are, and mailshim's exit status, around MAILSHIM_BIN
-C CONFIG "$@".  The relay checks the envelope and the bytes of every
message; the PHP side reports what the caller saw (mail()'s return value,
the library's result, its SMTP transcript, exit statuses) in a JSON file,
since its stdout may be closed.

Callers:
- mail() with sendmail_path = "sendmail -t -i" (php -d): plain; the 5th
  argument -f (escapeshellcmd'd by PHP); Cc and Bcc headers;
  mail.mixed_lf_and_crlf On (PHP writes LF) and Off (CRLF), each shown
  first with the same call into a capture program; UTF-8 subjects (raw,
  and mb_encode_mimeheader) and body; a lone "." line.  Controls: a config
  www-data cannot read, and a recipient the relay refuses, make mail()
  return false (so that "returns true" can fail).
- PHPMailer 6 (libphp-phpmailer): isSendmail(), which appends
  "-oi -fSENDER -t" to the ini path (duplicated flags); To, Cc, Bcc (the
  Bcc: header is in what it writes), an attachment, UTF-8, LF.
- PHPMailer 7: not in Debian 12; its command line "sendmail -fSENDER -i
  -t" run by proc_open() from PHP, with a message PHPMailer 6 builds (LF,
  Bcc: present).
- Symfony Mailer 5.4 (php-symfony-mailer): SendmailTransport in -t mode
  (it drops -t, adds -f'FROM' -- 'RCPT'..., writes LF, removes Bcc:), and
  in -bs mode, whose SmtpTransport speaks HELO [127.0.0.1] (never EHLO),
  MAIL/RCPT/DATA, stuffs dots, reads the final 250, sends RSET after a
  failed message and NOOP before the next one, QUIT at the end; the same
  with "-bs -i", the command Laravel 9+ gives SendmailTransport.
- SwiftMailer 6.3 (php-swiftmailer) with "sendmail -bs", driven as Laravel
  8 (Debian 12's php-illuminate-mail) does: a session per message.

Modes, in the test names: how the standard descriptors are set up.
- pipe: PHP's stdout and stderr are pipes to this test, which must stay
  empty; mail(), popen() and proc_open() without those descriptors hand
  them on to mailshim.
- closed: the script fclose()s STDOUT and STDERR first (as one that
  detaches does), so that mailshim starts with them closed.
- files: PHP's stdout and stderr are files (a daemon's log), which mailshim
  inherits; they must stay empty.
- started-closed: PHP is started with stdout and stderr closed.  PHP then
  opens its script on descriptor 1, so mailshim's stdout is that file,
  read-only, and its stderr closed.
- file: mailshim's stdin is a regular file: proc_open() with a file in
  its descriptor spec (the PHPMailer 7 command line).  mail() and
  PHPMailer 6 (popen) always give sendmail a pipe.
Symfony's and SwiftMailer's transports always give the program three
pipes of their own: there the modes vary PHP's descriptors only.
"""

import base64
import email
import email.policy
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

PHP = '/usr/bin/php'
PHPMAILER = '/usr/share/php/libphp-phpmailer/autoload.php'
SYMFONY = '/usr/share/php/Symfony/Component/Mailer/autoload.php'
SWIFT = '/usr/share/php/Swift/autoload.php'
USER = 'www-data'
DOMAIN = 'example.net'             # config_for()'s local_domain
ME = f'{USER}@{DOMAIN}'            # the sender when no -f is given

DATE = re.compile(
    rb'Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [1-9]\d? '
    rb'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} '
    rb'\d\d:\d\d:\d\d \+0000\r\n')
MSGID = re.compile(rb'Message-ID: <[^<>@\s]+@example\.net>\r\n')
ID_RE = r'[0-9a-f]{12}\.[0-9a-f]{12}'
MODES = ('pipe', 'closed', 'files', 'started-closed')

# The PHP side: one script, the case in argv[1], its parameters in the
# JSON file argv[2]; what the caller saw goes to the JSON file argv[3].
DRIVER = r'''<?php
use PHPMailer\PHPMailer\PHPMailer;
use Symfony\Component\Mailer\Transport\SendmailTransport;
use Symfony\Component\Mime\Address;
use Symfony\Component\Mime\Email;

[, $case, $params, $out] = $argv;
$p = json_decode(file_get_contents($params), true, 512, JSON_THROW_ON_ERROR);
$r = [];
if ($p['close_stdio']) {
    // as a script that detaches does: sendmail starts without them
    fclose(STDOUT);
    fclose(STDERR);
}

function report(array $r): void
{
    global $out;
    file_put_contents($out, json_encode($r, JSON_THROW_ON_ERROR));
}

// PHPMailer 6 as an application sets it up for sendmail.
function phpmailer(array $p): PHPMailer
{
    require_once '/usr/share/php/libphp-phpmailer/autoload.php';
    $m = new PHPMailer(true);
    $m->isSendmail();
    $m->CharSet = PHPMailer::CHARSET_UTF8;
    $m->setFrom($p['from'], $p['from_name']);
    foreach ($p['to'] as $a) $m->addAddress($a[0], $a[1]);
    foreach ($p['cc'] as $a) $m->addCC($a[0], $a[1]);
    foreach ($p['bcc'] as $a) $m->addBCC($a[0], $a[1]);
    $m->Subject = $p['subject'];
    $m->Body = $p['body'];
    $m->addAttachment($p['attachment'], 'report.bin');
    return $m;
}

function symfony_email(array $m): Email
{
    require_once '/usr/share/php/Symfony/Component/Mailer/autoload.php';
    $e = (new Email())->from(new Address($m['from'], $m['from_name']))
        ->subject($m['subject'])->text($m['body']);
    foreach ($m['to'] as $a) $e->addTo($a);
    foreach ($m['cc'] as $a) $e->addCc($a);
    foreach ($m['bcc'] as $a) $e->addBcc($a);
    if (isset($m['attachment']))
        $e->attach(base64_decode($m['attachment']), 'data.bin',
                   'application/octet-stream');
    return $e;
}

switch ($case) {
case 'mail':
    $subject = $p['subject'];
    if ($p['mime_subject'])
        $subject = mb_encode_mimeheader($subject, 'UTF-8', 'B', "\r\n");
    $r['subject'] = $subject;
    $r['returned'] = $p['params'] === null
        ? mail($p['to'], $subject, $p['message'], $p['headers'])
        : mail($p['to'], $subject, $p['message'], $p['headers'],
               $p['params']);
    break;

case 'phpmailer6':
    $m = phpmailer($p);
    $r['sendmail'] = $m->Sendmail;
    try {
        $r['returned'] = $m->send();
    } catch (Exception $e) {
        $r['returned'] = false;
        $r['error'] = $e->getMessage();
    }
    $r['message'] = base64_encode($m->getSentMIMEMessage());
    break;

case 'phpmailer7':
    // PHPMailer 7's sendmail command (CALLERS.md): the path, then
    // -f<sender> -i -t, no ini flags appended; the message as PHPMailer 6
    // builds it (LF, Bcc: included).
    $m = phpmailer($p);
    $m->preSend();
    $msg = $m->getSentMIMEMessage();
    $r['message'] = base64_encode($msg);
    $cmd = sprintf('%s -f%s -i -t', escapeshellcmd($p['sendmail']),
                   $m->Sender);
    if ($p['stdin_file'] !== null) {
        file_put_contents($p['stdin_file'], $msg);
        $spec = [0 => ['file', $p['stdin_file'], 'r']];
    } else {
        $spec = [0 => ['pipe', 'r']];
    }
    $proc = proc_open($cmd, $spec, $pipes);
    if ($p['stdin_file'] === null) {
        fwrite($pipes[0], $msg);
        fclose($pipes[0]);
    }
    $r['status'] = proc_close($proc);
    $r['returned'] = $r['status'] === 0;
    break;

case 'symfony':
    // One transport, the messages in turn: what each send() gave.
    require_once '/usr/share/php/Symfony/Component/Mailer/autoload.php';
    $t = new SendmailTransport($p['command']);
    $stream = null;
    $prop = new ReflectionProperty(SendmailTransport::class, 'transport');
    $prop->setAccessible(true);
    if ($smtp = $prop->getValue($t))
        $stream = $smtp->getStream();   // to read the QUIT at the end
    unset($smtp, $prop);
    $r['sends'] = [];
    foreach ($p['messages'] as $m) {
        $s = ['sent' => false];
        try {
            $sent = $t->send(symfony_email($m));
            $s['sent'] = true;
            $s['message'] = base64_encode($sent->toString());
            $s['debug'] = $sent->getDebug();
        } catch (Exception $e) {
            $s['error'] = $e->getMessage();
            $s['code'] = $e->getCode();
            $s['debug'] = method_exists($e, 'getDebug') ? $e->getDebug() : '';
        }
        $r['sends'][] = $s;
    }
    unset($t);                          // the destructor sends QUIT
    $r['end'] = $stream ? $stream->getDebug() : '';
    break;

case 'swift':
    // SwiftMailer as Laravel 8 (Debian's php-illuminate-mail) drives it:
    // Mailer::sendSwiftMessage() sends, then forceReconnection() stops the
    // transport, so that each message is a "sendmail -bs" of its own.
    require_once '/usr/share/php/Swift/autoload.php';
    $t = new Swift_SendmailTransport($p['command']);
    $mailer = new Swift_Mailer($t);
    $log = new Swift_Plugins_Loggers_ArrayLogger();
    $mailer->registerPlugin(new Swift_Plugins_LoggerPlugin($log));
    $r['sends'] = [];
    foreach ($p['messages'] as $m) {
        $msg = (new Swift_Message($m['subject']))
            ->setFrom([$m['from'] => $m['from_name']])
            ->setTo($m['to'])->setCc($m['cc'])->setBcc($m['bcc'])
            ->setBody($m['body'], 'text/plain', 'utf-8');
        if (isset($m['attachment']))
            $msg->attach(new Swift_Attachment(base64_decode($m['attachment']),
                                              'data.bin',
                                              'application/octet-stream'));
        // what it streams: the message less Bcc: (send() takes it out)
        $bcc = $msg->getBcc();
        $msg->setBcc([]);
        $s = ['sent' => false, 'message' => base64_encode($msg->toString())];
        $msg->setBcc($bcc);
        try {
            $failed = [];
            $s['count'] = $mailer->send($msg, $failed);
            $s['sent'] = true;
        } catch (Swift_TransportException $e) {
            $s['error'] = $e->getMessage();
            $s['code'] = $e->getCode();
        } finally {
            $t->stop();
        }
        $s['log'] = $log->dump();
        $log->clear();
        $r['sends'][] = $s;
    }
    break;
}
report($r);
'''

WRAPPER = '''#!/bin/sh
# what PHP runs as sendmail: record the arguments, run mailshim, record
# its exit status
rec={records}/$(date +%s%N).$$
printf '%s\\0' "$@" > "$rec.argv"
# what stdin, stdout and stderr are, seen from a child: any redirection
# or pipe in this shell could take a closed descriptor's place
/bin/sh -c 'for fd in 0 1 2; do readlink "/proc/$1/fd/$fd" || echo closed
done > "$2" 2>/dev/null' sh $$ "$rec.fds"
{program} -C {config} "$@"
rc=$?
echo $rc > "$rec.rc"
exit $rc
'''


class Tally:
    """Whether every test since it was made passed: a caller's result
    in docs/COMPAT.md."""

    def __init__(self):
        self.failed = harness._failed

    def passed(self):
        return harness._failed == self.failed


def crlf_lines(*lines) -> bytes:
    return b''.join((x.encode() if isinstance(x, str) else x) + b'\r\n'
                    for x in lines)


def want_pattern(parts) -> bytes:
    return b'^' + b''.join(p.pattern if isinstance(p, re.Pattern)
                           else re.escape(p) for p in parts) + b'\\Z'


def to_crlf(data: bytes) -> bytes:
    return data.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')


def without_header(data: bytes, name: bytes) -> bytes:
    """data less the header field name (and its continuation lines)."""
    head, sep, body = data.partition(b'\n\n')
    out, skip = [], False
    for line in head.split(b'\n'):
        if line[:1] in (b' ', b'\t') and skip:
            continue
        skip = line.lower().startswith(name.lower() + b':')
        if not skip:
            out.append(line)
    return b'\n'.join(out) + sep + body


class Php:
    """PHP as www-data, with the sendmail wrapper and a config of its own,
    in DIR/php (www-data's, 0700)."""

    def __init__(self, env):
        self.env = env
        self.pw = pwd.getpwnam(USER)
        os.chmod(env.dir, 0o711)
        self.dir = env.path('php')
        self.records = os.path.join(self.dir, 'records')
        for d in (self.dir, self.records, os.path.join(self.dir, 'bin'),
                  os.path.join(self.dir, 'queue')):
            os.makedirs(d, exist_ok=True)
            os.chown(d, self.pw.pw_uid, self.pw.pw_gid)
            os.chmod(d, 0o700)
        ca = os.path.join(self.dir, 'ca.pem')
        shutil.copyfile(env.relay.ca_file, ca)
        os.chmod(ca, 0o644)
        self.log = os.path.join(self.dir, 'mail.log')
        self.config = self.write_config(ca_file=ca)
        self.sendmail = os.path.join(self.dir, 'bin', 'sendmail')
        program = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', '')) \
            + [os.path.abspath(os.environ['MAILSHIM_BIN'])]
        with open(self.sendmail, 'w') as f:
            f.write(WRAPPER.format(records=shlex.quote(self.records),
                                   program=shlex.join(program),
                                   config=shlex.quote(self.config)))
        os.chmod(self.sendmail, 0o755)
        self.driver = os.path.join(self.dir, 'driver.php')
        with open(self.driver, 'w') as f:
            f.write(DRIVER)
        os.chmod(self.driver, 0o644)

    def write_config(self, **keys):
        """The config, 0600 www-data's."""
        path = self.env.config_for(
            'starttls', name='php/mailshim.ini',
            queue_dir=os.path.join(self.dir, 'queue'), logfile=self.log,
            syslog='off', **keys)
        os.chown(path, self.pw.pw_uid, self.pw.pw_gid)
        return path

    def file(self, name, data: bytes, mode=0o644) -> str:
        path = os.path.join(self.dir, name)
        with open(path, 'wb') as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def calls(self):
        """The wrapper's calls so far: [(argv, exit status or None)]."""
        names = sorted(n[:-5] for n in os.listdir(self.records)
                       if n.endswith('.argv'))
        calls = []
        for n in names:
            with open(os.path.join(self.records, n + '.argv'), 'rb') as f:
                argv = f.read().split(b'\0')[:-1]
            try:
                with open(os.path.join(self.records, n + '.rc')) as f:
                    rc = int(f.read())
            except (OSError, ValueError):
                rc = None
            calls.append(([a.decode('utf-8', 'backslashreplace')
                           for a in argv], rc))
        return calls

    def command(self):
        """The last call's command line, the program written as
        "sendmail" (for docs/COMPAT.md)."""
        calls = self.calls()
        return shlex.join(['sendmail'] + calls[-1][0]) if calls \
            else '(mailshim did not run)'

    def fds(self):
        """What stdin, stdout and stderr were in each call: 'pipe',
        'closed' or a path."""
        names = sorted(n for n in os.listdir(self.records)
                       if n.endswith('.fds'))
        calls = []
        for n in names:
            with open(os.path.join(self.records, n)) as f:
                calls.append([re.sub(r'\Apipe:\[\d+\]\Z', 'pipe', x)
                              for x in f.read().splitlines()])
        return calls

    def reset(self):
        for n in os.listdir(self.records):
            os.unlink(os.path.join(self.records, n))
        self.env.relay.reset()

    def run(self, case, params, mode='pipe', ini=(), sendmail_path=None):
        """Run the driver's case as www-data, its standard descriptors as
        mode says (see MODES); returns (exit status, stdout, stderr, what
        it reported or None)."""
        self.reset()
        params = dict(params, close_stdio=mode == 'closed')
        pfile = self.file('params.json', json.dumps(params).encode())
        out = os.path.join(self.dir, 'result.json')
        if os.path.exists(out):
            os.unlink(out)
        if sendmail_path is None:
            sendmail_path = f'{self.sendmail} -t -i'
        cmd = ['setpriv', f'--reuid={self.pw.pw_uid}',
               f'--regid={self.pw.pw_gid}', '--init-groups', PHP,
               '-d', f'sendmail_path={sendmail_path}',
               '-d', 'display_errors=stderr', '-d', 'error_reporting=-1']
        for setting in ini:
            cmd += ['-d', setting]
        cmd += [self.driver, case, pfile, out]
        if mode == 'started-closed':
            cmd = ['/bin/sh', '-c', 'exec 1>&- 2>&-; exec "$0" "$@"'] + cmd
        outputs = {}
        if mode == 'files':
            for name in ('stdout', 'stderr'):
                outputs[name] = open(os.path.join(self.dir, name), 'w+b')
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                               stdout=outputs.get('stdout', subprocess.PIPE),
                               stderr=outputs.get('stderr', subprocess.PIPE),
                               timeout=60, env=self.env.child_env(),
                               cwd=self.dir)
            stdout, stderr = p.stdout or b'', p.stderr or b''
            for name, f in outputs.items():
                f.seek(0)
                if name == 'stdout':
                    stdout = f.read()
                else:
                    stderr = f.read()
        finally:
            for f in outputs.values():
                f.close()
        self.env.relay.wait_idle()
        result = None
        if os.path.exists(out):
            with open(out) as f:
                result = json.load(f)
        return (p.returncode, stdout.decode('utf-8', 'replace'),
                stderr.decode('utf-8', 'replace'), result)

    def ran(self, tag, run, mode, want_argv, returned=True,
            library_pipes=False):
        """The PHP side: PHP exits 0 and prints nothing, the caller's
        result is returned; mailshim ran once with want_argv, its standard
        descriptors as mode says, and exited 0.  Returns what the driver
        reported."""
        rc, out, err, result = run
        good = is_(rc, 0, f'{tag}: php exits 0')
        if mode != 'started-closed':
            good &= is_((out, err), ('', ''),
                        f'{tag}: nothing on PHP\'s stdout or stderr')
        good &= is_(result and result.get('returned'), returned,
                    f'{tag}: the caller\'s result is {returned}')
        good &= is_(self.calls(), [(want_argv, 0)],
                    f'{tag}: mailshim ran once, as "sendmail '
                    f'{shlex.join(want_argv)}", and exited 0')
        good &= self.descriptors(tag, mode, library_pipes)
        if not good:
            diag(f'php stdout: {out!r}\nphp stderr: {err!r}\n'
                 f'result: {result!r}')
        return result or {}

    def descriptors(self, tag, mode, library_pipes=False, calls=1):
        """mailshim's stdin, stdout and stderr were what mode says; a
        library that gives the program pipes of its own: always pipes."""
        fds = self.fds()
        stdin = os.path.join(self.dir, 'message.eml') if mode == 'file' \
            else 'pipe'
        if library_pipes:
            want = ['pipe', 'pipe', 'pipe']
        elif mode == 'closed':
            want = [stdin, 'closed', 'closed']
        elif mode == 'files':
            want = [stdin] + [os.path.join(self.dir, n)
                              for n in ('stdout', 'stderr')]
        elif mode == 'started-closed':
            # PHP opened its script on the lowest free descriptor, 1 (read
            # only): mailshim's stdout is that file, its stderr closed
            want = [stdin, self.driver, 'closed']
        else:
            want = [stdin, 'pipe', 'pipe']
        return is_(fds, [want] * calls,
                   f'{tag}: mailshim\'s stdin, stdout, stderr: '
                   f'{", ".join(os.path.basename(x) for x in want)}')


def arrived(env, tag, sender, rcpts, want):
    """The relay got one message from sender to rcpts (any order), with
    exactly the bytes want: bytes, or a list of bytes and patterns."""
    msgs = env.relay.messages
    good = is_(len(msgs), 1, f'{tag}: the relay got one message')
    m = msgs[0] if msgs else None
    good &= is_(m and m.mail_from, sender, f'{tag}: envelope sender')
    good &= is_(m and sorted(m.rcpt_tos), sorted(rcpts),
                f'{tag}: envelope recipients')
    data = m.data if m else b''
    if isinstance(want, bytes):
        good &= is_(data, want, f'{tag}: the message, byte for byte')
    else:
        good &= like(data, want_pattern(want),
                     f'{tag}: the message, byte for byte (the Date: and '
                     'Message-ID: mailshim adds aside)')
    good &= ok(m is not None and b'\n' not in data.replace(b'\r\n', b''),
               f'{tag}: CRLF line ends only')
    good &= ok(m is not None and not re.search(rb'(?im)^bcc:', data),
               f'{tag}: no Bcc: header delivered')
    return data if good else None


# ---- mail() -----------------------------------------------------------------

BODY = ('Hello Alice,\n\nyour order #1234 has shipped.\n-- \nShop')
BODY_OUT = crlf_lines('Hello Alice,', '', 'your order #1234 has shipped.',
                      '-- ', 'Shop')


U8_HEADERS = ['From: Webmaster <webmaster@example.org>', 'MIME-Version: 1.0',
              'Content-Type: text/plain; charset=UTF-8',
              'Content-Transfer-Encoding: 8bit']
U8_BODY = 'Grüße aus Köln!\n한국어 본문입니다.\nZeile drei'
U8_BODY_OUT = crlf_lines('Grüße aus Köln!', '한국어 본문입니다.', 'Zeile drei')


def mail_cases():
    """(name, params, ini, sender, rcpts, want, argv)."""
    base = dict(to='alice@example.com', subject='Your order',
                message=BODY, headers=[], params=None, mime_subject=False)
    yield ('plain', base, (), ME, ['alice@example.com'],
           [crlf_lines('To: alice@example.com', 'Subject: Your order',
                       f'From: {ME}'), DATE, MSGID, b'\r\n', BODY_OUT],
           ['-t', '-i'])

    # the 5th argument: PHP appends it to sendmail_path, escapeshellcmd'd
    yield ('5th argument -f',
           dict(base, headers={'From': 'Shop <shop@example.org>'},
                params='-fsender@example.org'),
           (), 'sender@example.org', ['alice@example.com'],
           [crlf_lines('To: alice@example.com', 'Subject: Your order',
                       'From: Shop <shop@example.org>'), DATE, MSGID,
            b'\r\n', BODY_OUT],
           ['-t', '-i', '-fsender@example.org'])

    hdrs = ['From: Shop <shop@example.org>', 'Reply-To: help@example.org',
            'Cc: Carol <carol@example.org>, dave@example.org',
            'Bcc: audit@example.net', 'X-Mailer: PHP/8.2']
    yield ('Cc and Bcc headers',
           dict(base, to='alice@example.com, Bob <bob@example.com>',
                headers='\r\n'.join(hdrs), params='-fshop@example.org'),
           (), 'shop@example.org',
           ['alice@example.com', 'bob@example.com', 'carol@example.org',
            'dave@example.org', 'audit@example.net'],
           [crlf_lines('To: alice@example.com, Bob <bob@example.com>',
                       'Subject: Your order',
                       *[h for h in hdrs if not h.startswith('Bcc')]),
            DATE, MSGID, b'\r\n', BODY_OUT],
           ['-t', '-i', '-fshop@example.org'])

    # mail.mixed_lf_and_crlf: On, PHP ends its own lines with LF (the
    # script's headers and body have LF too); Off, all CRLF.
    lines = ['From: Shop <shop@example.org>', 'MIME-Version: 1.0',
             'Content-Type: text/plain; charset=us-ascii']
    want = [crlf_lines('To: alice@example.com', 'Subject: Line ends',
                       *lines), DATE, MSGID, b'\r\n', BODY_OUT]
    yield ('mail.mixed_lf_and_crlf=On, all LF',
           dict(base, subject='Line ends', headers='\n'.join(lines)),
           ('mail.mixed_lf_and_crlf=On',), ME, ['alice@example.com'],
           want, ['-t', '-i'])
    yield ('mail.mixed_lf_and_crlf=Off, all CRLF',
           dict(base, subject='Line ends', headers='\r\n'.join(lines),
                message=BODY.replace('\n', '\r\n')),
           ('mail.mixed_lf_and_crlf=Off',), ME, ['alice@example.com'],
           want, ['-t', '-i'])

    # UTF-8: a raw subject (8-bit in a header), and one encoded by
    # mb_encode_mimeheader (checked against what PHP reports); the body.
    subject = 'Ihre Bestellung – Grüße aus Köln'
    # (headers as an array this time: name => value)
    u8_array = dict(h.split(': ', 1) for h in U8_HEADERS)
    yield ('UTF-8 raw subject and body',
           dict(base, to='kunde@example.org', subject=subject,
                headers=u8_array, message=U8_BODY),
           (), ME, ['kunde@example.org'],
           [crlf_lines('To: kunde@example.org', f'Subject: {subject}',
                       *U8_HEADERS), DATE, MSGID, b'\r\n', U8_BODY_OUT],
           ['-t', '-i'])
    yield ('UTF-8 mb_encode_mimeheader subject',
           dict(base, to='kunde@example.org', subject=subject,
                headers=u8_array, message=U8_BODY, mime_subject=True),
           (), ME, ['kunde@example.org'],
           None,                 # filled in from what PHP encoded
           ['-t', '-i'])

    # -i: a lone "." line is a line of the body, not its end
    yield ('a lone "." line',
           dict(base, message='first\n.\nafter the dot\n..two dots\n.'),
           (), ME, ['alice@example.com'],
           [crlf_lines('To: alice@example.com', 'Subject: Your order',
                       f'From: {ME}'), DATE, MSGID, b'\r\n',
            crlf_lines('first', '.', 'after the dot', '..two dots', '.')],
           ['-t', '-i'])


def mime_subject_want(result):
    """The message of the mb_encode_mimeheader case, with the subject PHP
    encoded (folded with CRLF SPACE if long)."""
    subject = to_crlf(result.get('subject', '').encode())
    return [crlf_lines('To: kunde@example.org', b'Subject: ' + subject,
                       *U8_HEADERS), DATE, MSGID, b'\r\n', U8_BODY_OUT]


def capture(php, name, params, ini):
    """Control: the same mail() call into a capture program ("cat > FILE")
    instead of mailshim: the bytes PHP writes."""
    path = os.path.join(php.dir, 'captured')
    if os.path.exists(path):
        os.unlink(path)
    rc, out, err, result = php.run('mail', params, ini=ini,
                                   sendmail_path=f'cat > {path}')
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError:
        diag(f'{name}: nothing captured: {rc} {out!r} {err!r} {result!r}')
        return b''


def test_mail(env, php):
    tally = Tally()
    row = '(mailshim did not run)'
    for name, params, ini, sender, rcpts, want, argv in mail_cases():
        if name.startswith('mail.mixed'):
            raw = capture(php, name, params, ini)
            lf = 'On' in ini[0]
            ok(raw and (b'\r' not in raw if lf else
                        b'\n' not in raw.replace(b'\r\n', b'')),
               f'mail() {name}: control: PHP writes '
               f'{"LF" if lf else "CRLF"} line ends')
        for mode in MODES:
            tag = f'mail() {name} [{mode}]'
            result = php.ran(tag, php.run('mail', params, mode, ini), mode,
                             argv)
            expected = want
            if want is None:
                like(result.get('subject'),
                     r'\A[ -~\r\n]*=\?UTF-8\?B\?[ -~\r\n]+\Z',
                     f'{tag}: control: mb_encode_mimeheader gave an '
                     'encoded word, ASCII only')
                expected = mime_subject_want(result)
            data = arrived(env, tag, sender, rcpts, expected)
            if name == '5th argument -f':
                row = php.command()      # the row shows the 5th argument
            if name.startswith('UTF-8') and data is not None:
                got = email.message_from_bytes(data,
                                               policy=email.policy.default)
                is_((str(got['subject']),
                     got.get_content().replace('\r\n', '\n')),
                    (params['subject'], params['message'] + '\n'),
                    f'{tag}: subject and body decode to the UTF-8 written')
    harness.compat_row('PHP mail()', 'php8.2-cli', row, tally.passed())


def test_mail_controls(env, php):
    # A config www-data cannot read (root's, 0600): mailshim says why on
    # PHP's stderr, mail() returns false, nothing is sent.
    params = dict(to='alice@example.com', subject='x', message='x',
                  headers=[], params=None, mime_subject=False)
    os.chown(php.config, 0, 0)
    try:
        rc, out, err, result = php.run('mail', params)
    finally:
        os.chown(php.config, php.pw.pw_uid, php.pw.pw_gid)
    is_(result and result.get('returned'), False,
        'mail() control, config not readable by www-data: returns false')
    like(err, r"\Amailshim: cannot read config '[^']+/php/mailshim\.ini': "
         r"Permission denied\n\Z",
         'mail() control, config not readable: one line on PHP\'s stderr')
    calls = php.calls()
    is_([c[1] for c in calls], [78],
        'mail() control, config not readable: mailshim exits 78 '
        '(EX_CONFIG)')
    is_(env.relay.messages, [], 'mail() control: nothing delivered')

    # The relay refuses the only recipient: mail() returns false.
    rc, out, err, result = php.run(
        'mail', dict(params, to='reject550@example.com'))
    is_(result and result.get('returned'), False,
        'mail() control, recipient refused by the relay: returns false')
    is_([c[1] for c in php.calls()], [67],
        'mail() control, recipient refused: mailshim exits 67 (EX_NOUSER)')
    is_(env.relay.messages, [],
        'mail() control, recipient refused: nothing delivered')
    like(err, r'\Amailshim: .*reject550@example\.com.*\n\Z',
         'mail() control, recipient refused: one line on PHP\'s stderr')


# ---- PHPMailer --------------------------------------------------------------

ATTACHMENT = bytes(range(256)) * 3 + b'\r\n.\r\n\n.\n'


def phpmailer_params(php, tag):
    return dict(
        **{'from': 'noreply@example.org'},
        from_name='Shop – Bestellung',
        to=[['alice@example.com', 'Alice Ärger'], ['bob@example.com', '']],
        cc=[['carol@example.org', 'Carol']],
        bcc=[['audit@example.net', '']],
        subject=f'Passwort zurücksetzen ({tag})',
        body='Hallo Alice,\n.\n..zwei Punkte\nIhr Code: 123456 – grüß Gott\n',
        attachment=php.file('report.bin', ATTACHMENT),
        sendmail=php.sendmail, stdin_file=None)


PHPMAILER_RCPTS = ['alice@example.com', 'bob@example.com',
                   'carol@example.org', 'audit@example.net']


def check_phpmailer(tag, params, result, data):
    """PHPMailer wrote LF and a Bcc: header (so that the CRLF and no Bcc:
    of arrived() mean something); what arrived decodes to what the script
    gave."""
    written = base64.b64decode(result.get('message', ''))
    ok(b'\r' not in written and re.search(rb'(?m)^Bcc: audit@example\.net$',
                                          written),
       f'{tag}: control: PHPMailer writes LF line ends and a Bcc: header')
    if data is None:
        return
    got = email.message_from_bytes(data, policy=email.policy.default)
    body = got.get_body(('plain',))
    parts = [p for p in got.iter_attachments()]
    is_((str(got['subject']), str(got['to']), str(got['cc']),
         body and body.get_content().replace('\r\n', '\n')),
        (params['subject'],
         'Alice Ärger <alice@example.com>, bob@example.com',
         'Carol <carol@example.org>', params['body']),
        f'{tag}: subject, To, Cc and text decode to what the script gave')
    is_([(p.get_filename(), p.get_content()) for p in parts],
        [('report.bin', ATTACHMENT)], f'{tag}: the attachment, intact')


def test_phpmailer6(env, php):
    tally = Tally()
    for mode in MODES:
        tag = f'PHPMailer 6 [{mode}]'
        params = phpmailer_params(php, mode)
        argv = ['-t', '-i', '-oi', '-fnoreply@example.org', '-t']
        result = php.ran(tag, php.run('phpmailer6', params, mode), mode,
                         argv)
        is_(result.get('sendmail'), f'{php.sendmail} -t -i',
            f'{tag}: isSendmail() took the ini sendmail_path')
        data = arrived(env, tag, 'noreply@example.org', PHPMAILER_RCPTS,
                       to_crlf(without_header(base64.b64decode(
                           result.get('message', '')), b'Bcc')))
        check_phpmailer(tag, params, result, data)
    harness.compat_row('PHPMailer 6', 'libphp-phpmailer', php.command(),
                       tally.passed())


def test_phpmailer7(env, php):
    tally = Tally()
    for mode in MODES + ('file',):
        tag = f'PHPMailer 7 command line [{mode}]'
        params = phpmailer_params(php, mode)
        if mode == 'file':
            params['stdin_file'] = os.path.join(php.dir, 'message.eml')
        argv = ['-fnoreply@example.org', '-i', '-t']
        result = php.ran(tag, php.run('phpmailer7', params,
                                      'pipe' if mode == 'file' else mode),
                         mode, argv)
        is_(result.get('status'), 0,
            f'{tag}: proc_close() gives exit status 0')
        data = arrived(env, tag, 'noreply@example.org', PHPMAILER_RCPTS,
                       to_crlf(without_header(base64.b64decode(
                           result.get('message', '')), b'Bcc')))
        check_phpmailer(tag, params, result, data)
    harness.compat_row('PHPMailer 7 (its command line, from PHP)',
                       'php8.2-cli', php.command(), tally.passed())


# ---- Symfony Mailer ---------------------------------------------------------

def symfony_message(tag, to, cc=(), bcc=(), attachment=None):
    m = dict(from_name='Äpp Mailer', subject=f'Willkommen – {tag}',
             body=f'Hallo {tag},\n.\n..config liegt in ~/.app\nGrüße\n',
             to=list(to), cc=list(cc), bcc=list(bcc))
    m['from'] = 'app@example.com'
    if attachment is not None:
        m['attachment'] = base64.b64encode(attachment).decode()
    return m


def test_symfony_t(env, php):
    tally = Tally()
    for mode in MODES:
        tag = f'Symfony Mailer -t [{mode}]'
        m = symfony_message(tag, ['user@example.org'],
                            ['carol@example.org'], ['hidden@example.net'],
                            ATTACHMENT)
        run = php.run('symfony', dict(command=f'{php.sendmail} -t -i',
                                      messages=[m]), mode)
        rc, out, err, result = run
        sends = (result or {}).get('sends') or [{}]
        argv = ['-i', '-fapp@example.com', '--', 'user@example.org',
                'carol@example.org', 'hidden@example.net']
        good = is_(rc, 0, f'{tag}: php exits 0')
        if mode != 'started-closed':
            good &= is_((out, err), ('', ''),
                        f'{tag}: nothing on PHP\'s stdout or stderr')
        good &= is_(sends[0].get('sent'), True,
                    f'{tag}: send() returns a SentMessage')
        good &= is_(php.calls(), [(argv, 0)],
                    f'{tag}: mailshim ran as "sendmail '
                    f'{shlex.join(argv)}" and exited 0')
        good &= php.descriptors(tag, mode, library_pipes=True)
        if not good:
            diag(f'{run!r}')
        sent = base64.b64decode(sends[0].get('message', ''))
        ok(sent.endswith(b'\r\n') and b'Bcc' not in sent,
           f'{tag}: control: Symfony\'s message ends with CRLF and has no '
           'Bcc:')
        data = arrived(env, tag, 'app@example.com',
                       ['user@example.org', 'carol@example.org',
                        'hidden@example.net'], sent)
        if data is not None:
            got = email.message_from_bytes(data,
                                           policy=email.policy.default)
            is_((str(got['subject']), got.get_body(('plain',))
                 .get_content().replace('\r\n', '\n'),
                 [p.get_content() for p in got.iter_attachments()]),
                (m['subject'], m['body'], [ATTACHMENT]),
                f'{tag}: subject, text and attachment decode intact')
    harness.compat_row('Symfony Mailer -t', 'php-symfony-mailer',
                       php.command(), tally.passed())


def transcript(debug):
    """Symfony's debug text as (command, reply) pairs: '> X' lines are
    what it wrote (the data is not logged), '< X' what it read."""
    pairs = []
    for line in debug.splitlines():
        line = line.rstrip('\r')
        if line.startswith('> '):
            pairs.append([line[2:], None])
        elif line.startswith('< '):
            if pairs and pairs[-1][1] is None:
                pairs[-1][1] = line[2:]
            else:
                pairs.append(['', line[2:]])
    return [tuple(p) for p in pairs]


OK_MAIL = ('MAIL FROM:<app@example.com>', '250 2.1.0 Ok')
OK_DATA = ('DATA', '354 End data with <CR><LF>.<CR><LF>')


def rcpt_ok(*rcpts):
    return [(f'RCPT TO:<{r}>', '250 2.1.5 Ok') for r in rcpts]


def test_symfony_bs(env, php, caller, command, argv):
    tally = Tally()
    for mode in MODES:
        tag = f'{caller} [{mode}]'
        m1 = symfony_message(f'{tag} 1', ['user@example.org'],
                             ['carol@example.org'], ['hidden@example.net'],
                             ATTACHMENT)
        m2 = symfony_message(f'{tag} 2', ['reject550@example.com'])
        m3 = symfony_message(f'{tag} 3', ['dave@example.org'])
        run = php.run('symfony', dict(command=f'{php.sendmail} {command}',
                                      messages=[m1, m2, m3]), mode)
        rc, out, err, result = run
        result = result or {}
        sends = (result.get('sends') or []) + [{}] * 3
        good = is_(rc, 0, f'{tag}: php exits 0')
        if mode != 'started-closed':
            good &= is_((out, err), ('', ''),
                        f'{tag}: nothing on PHP\'s stdout or stderr')
        good &= is_([s.get('sent') for s in sends[:3]], [True, False, True],
                    f'{tag}: messages 1 and 3 sent, 2 throws')
        good &= is_(php.calls(), [(argv, 0)],
                    f'{tag}: one mailshim for the three messages, as '
                    f'"sendmail {shlex.join(argv)}"; after QUIT it exits 0')
        good &= php.descriptors(tag, mode, library_pipes=True)
        if not good:
            diag(f'{run!r}')

        t1 = transcript(sends[0].get('debug', ''))
        queued = re.fullmatch(rf'250 2\.0\.0 Ok: queued as ({ID_RE})',
                              t1[-1][1] if t1 and t1[-1][1] else '')
        is_(t1[:-1], [('', '220 example.net ESMTP mailshim'),
                      ('HELO [127.0.0.1]', '250 example.net'),
                      OK_MAIL] + rcpt_ok('user@example.org',
                                         'carol@example.org',
                                         'hidden@example.net')
            + [OK_DATA],
            f'{tag}: message 1: 220 greeting, HELO (Symfony never '
            'says EHLO), MAIL, RCPT x3, DATA')
        ok(t1 and t1[-1][0] == '.' and queued,
           f'{tag}: message 1: the final dot: "250 2.0.0 Ok: queued as ID"')
        if not queued:
            diag(f'transcript: {t1!r}')
        if queued:
            with open(php.log) as f:
                log = f.read()
            like(log, rf'id={queued.group(1)} .* '
                 r'recipients=user@example\.org,carol@example\.org,'
                 r'hidden@example\.net .*outcome=sent',
                 f'{tag}: the id Symfony read is the one mailshim '
                 'logged for it')

        t2 = transcript(sends[1].get('debug', ''))
        is_((sends[1].get('code'), t2[:-1]),
            (550, [OK_MAIL] + rcpt_ok('reject550@example.com')
             + [OK_DATA]),
            f'{tag}: message 2: MAIL, RCPT, DATA taken; Symfony\'s '
            'exception has the code 550')
        like(t2[-1][1] if t2 and t2[-1][0] == '.' else '',
             r'\A550 5\.1\.1 .*<reject550@example\.com>: '
             r'Recipient address rejected: User unknown\Z',
             f'{tag}: message 2: the final dot gets a 550 with the '
             'relay\'s text')
        t3 = transcript(sends[2].get('debug', ''))
        is_(t3[:4], [('RSET', '250 2.0.0 Ok'),
                     ('NOOP', '250 2.0.0 Ok'), OK_MAIL,
                     rcpt_ok('dave@example.org')[0]],
            f'{tag}: message 3: after the error RSET, then the '
            'NOOP ping, on the same session')
        like(t3[-1][1] if t3 and t3[-1][1] else '',
             rf'\A250 2\.0\.0 Ok: queued as {ID_RE}\Z',
             f'{tag}: message 3 accepted')
        is_(transcript(result.get('end', '')),
            [('QUIT', '221 2.0.0 Bye')],
            f'{tag}: the transport\'s destructor: QUIT, 221')

        # Symfony's rendering ends with CRLF and it then sends CRLF.CRLF:
        # the relay gets one more CRLF, as any SMTP server would
        msgs = env.relay.messages
        want = [('app@example.com',
                 ['user@example.org', 'carol@example.org',
                  'hidden@example.net'],
                 base64.b64decode(sends[0].get('message', '')) + b'\r\n'),
                ('app@example.com', ['dave@example.org'],
                 base64.b64decode(sends[2].get('message', '')) + b'\r\n')]
        is_([(x.mail_from, x.rcpt_tos, x.data) for x in msgs], want,
            f'{tag}: the relay got messages 1 and 3, each byte for '
            'byte as Symfony rendered it, and not message 2')
        ok(msgs and all(b'\n' not in x.data.replace(b'\r\n', b'') and
                        b'\nBcc' not in x.data and
                        re.search(rb'(?m)^\.\r\n\.\.config', x.data)
                        for x in msgs),
           f'{tag}: CRLF only, no Bcc:, the "." and ".." lines unstuffed '
           'back')
        is_([(r.stage, r.address) for r in env.relay.rejected],
            [('RCPT', 'reject550@example.com')],
            f'{tag}: message 2 was refused by the relay at RCPT')
    harness.compat_row(caller, 'php-symfony-mailer', php.command(),
                       tally.passed())


def swift_transcript(log):
    """SwiftMailer's ArrayLogger dump as (command, reply) pairs: '>> X'
    what it wrote (the final dot is '>> CRLF.CRLF'), '<< X' what it read."""
    return transcript(log.replace('>> \r\n.\r\n', '> .\r\n')
                      .replace('>> ', '> ').replace('<< ', '< '))


def test_swift(env, php):
    """SwiftMailer 6 (php-swiftmailer): Laravel 8, the Laravel Debian 12
    ships (php-illuminate-mail 8.83), sends through it with its default
    "sendmail -bs" and stops the transport after every message."""
    tally = Tally()
    for mode in MODES:
        tag = f'SwiftMailer -bs (Laravel 8) [{mode}]'
        m1 = symfony_message(f'{tag} 1', ['user@example.org'],
                             ['carol@example.org'], ['hidden@example.net'],
                             ATTACHMENT)
        m2 = symfony_message(f'{tag} 2', ['reject550@example.com'])
        m3 = symfony_message(f'{tag} 3', ['dave@example.org'])
        # SwiftMailer 6.3 under PHP 8.2 says "Deprecated" on every use:
        # off, as in Debian's production php.ini (E_ALL & ~E_DEPRECATED)
        run = php.run('swift', dict(command=f'{php.sendmail} -bs',
                                    messages=[m1, m2, m3]), mode,
                      ini=('error_reporting=24575',))
        rc, out, err, result = run
        sends = ((result or {}).get('sends') or []) + [{}] * 3
        good = is_(rc, 0, f'{tag}: php exits 0')
        if mode != 'started-closed':
            good &= is_((out, err), ('', ''),
                        f'{tag}: nothing on PHP\'s stdout or stderr')
        good &= is_([(x.get('sent'), x.get('count'), x.get('code'))
                     for x in sends[:3]],
                    [(True, 3, None), (False, None, 550), (True, 1, None)],
                    f'{tag}: send() counts 3 and 1 recipients for messages '
                    '1 and 3, throws with the code 550 for 2')
        good &= is_(php.calls(), [(['-bs'], 0)] * 3,
                    f'{tag}: one "sendmail -bs" per message, each exits 0 '
                    'after QUIT')
        good &= php.descriptors(tag, mode, library_pipes=True, calls=3)
        if not good:
            diag(f'{run!r}')
        start = [('', '220 example.net ESMTP mailshim'),
                 ('HELO [127.0.0.1]', '250 example.net'), OK_MAIL]
        quit_ = [('QUIT', '221 2.0.0 Bye')]
        for i, rcpts, final in (
                (0, ['user@example.org', 'carol@example.org',
                     'hidden@example.net'],
                 rf'250 2\.0\.0 Ok: queued as {ID_RE}'),
                (1, ['reject550@example.com'],
                 r'550 5\.1\.1 .*<reject550@example\.com>: Recipient '
                 r'address rejected: User unknown'),
                (2, ['dave@example.org'],
                 rf'250 2\.0\.0 Ok: queued as {ID_RE}')):
            t = swift_transcript(sends[i].get('log', ''))
            is_((t[:len(start) + len(rcpts) + 1], t[-1:]),
                (start + rcpt_ok(*rcpts) + [OK_DATA], quit_),
                f'{tag}: message {i + 1}: 220, HELO [127.0.0.1] (never '
                'EHLO), MAIL, RCPT, DATA ... QUIT: 221')
            dot = t[-2] if len(t) > 1 else ('', '')
            ok(dot[0] == '.' and re.fullmatch(final, dot[1] or ''),
               f'{tag}: message {i + 1}: the final dot: {final}')
        want = [('app@example.com',
                 ['user@example.org', 'carol@example.org',
                  'hidden@example.net'],
                 base64.b64decode(sends[0].get('message', '')) + b'\r\n'),
                ('app@example.com', ['dave@example.org'],
                 base64.b64decode(sends[2].get('message', '')) + b'\r\n')]
        msgs = env.relay.messages
        is_([(x.mail_from, x.rcpt_tos, x.data) for x in msgs], want,
            f'{tag}: the relay got messages 1 and 3, each byte for byte as '
            'SwiftMailer rendered it, and not message 2')
        ok(msgs and all(b'\n' not in x.data.replace(b'\r\n', b'') and
                        b'\nBcc' not in x.data and
                        re.search(rb'(?m)^\.\r\n\.\.config', x.data)
                        for x in msgs),
           f'{tag}: CRLF only, no Bcc:, the "." and ".." lines unstuffed '
           'back')
    harness.compat_row('SwiftMailer -bs (Laravel 8)', 'php-swiftmailer',
                       php.command(), tally.passed())


def test():
    missing = [p for p in (PHP, PHPMAILER, SYMFONY, SWIFT)
               if not os.path.exists(p)]
    if missing:
        harness.bail_out(f'not installed: {", ".join(missing)} (apt-get '
                         'install php-cli php-mbstring libphp-phpmailer '
                         'php-symfony-mailer php-swiftmailer)')
    with harness.Env(listeners=['starttls']) as env:
        php = Php(env)
        test_mail(env, php)
        test_mail_controls(env, php)
        test_phpmailer6(env, php)
        test_phpmailer7(env, php)
        test_symfony_t(env, php)
        test_symfony_bs(env, php, 'Symfony Mailer -bs', '-bs', ['-bs'])
        test_symfony_bs(env, php, 'Laravel 9+ (Symfony -bs -i)', '-bs -i',
                        ['-bs', '-i'])
        test_swift(env, php)
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
