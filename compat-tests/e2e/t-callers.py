#!/usr/bin/python3
"""End-to-end: the programs that call sendmail, replayed exactly.

Each case is one real caller (see /work/shared/CALLERS.md and the callers'
own source): the argv it passes, word for word (through /bin/sh -c when the
caller uses popen() or a shell), and the bytes it writes on stdin, with its
own line endings and headers.  The relay checks what mailshim made of it: the
envelope sender, the recipients, and the message byte for byte (a regex only
for the Date: and Message-ID: headers mailshim adds).

Every case runs three ways: stdin a pipe, stdin a regular file, and with
stdout and stderr closed (as anacron, GNU mail and daemons start it).

The program is run as "sendmail" (a symlink to MAILSHIM_BIN) with no -C: the
config comes from MAILSHIM_CONFIG, so argv is exactly the caller's.

Where callers differ from one MTA to another, the expected behaviour is
Postfix's: without -i a lone "." line ends the input and nothing else is
unstuffed ("..x" stays "..x"); Bcc: is removed; -t adds the header
recipients to those of the command line; a line over 998 octets is not
refused but broken with CRLF SPACE (what Postfix's SMTP client does).
Headers pass unchanged (Postfix would qualify "root" in To:/From: with
@myorigin; mailshim leaves header addresses alone).
"""

import os
import pwd
import re
import shlex
import subprocess
import sys

sys.path.insert(0, os.environ['MAILSHIM_TESTLIB'])
import harness  # noqa: E402
from harness import diag, is_, like, ok  # noqa: E402

DOMAIN = 'example.net'             # config_for()'s local_domain
USER = pwd.getpwuid(os.getuid()).pw_name
ME = f'{USER}@{DOMAIN}'            # the sender when no -f is given

# What mailshim adds when the caller did not write them (TZ=UTC).
DATE = re.compile(
    rb'Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [1-9]\d? '
    rb'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} '
    rb'\d\d:\d\d:\d\d \+0000\r\n')
MSGID = re.compile(rb'Message-ID: <[^<>@\s]+@example\.net>\r\n')

MODES = ('pipe', 'file', 'closed')


def crlf_lines(*lines: bytes) -> bytes:
    """The expected form: each line ended by CRLF."""
    return b''.join(line + b'\r\n' for line in lines)


class Case:
    """One caller.

    argv: the arguments after the program name (exec form), or shell: the
    command line handed to /bin/sh -c, with {sendmail} for the program.
    want: the message the relay must record, a list of parts: bytes (exact)
    and compiled patterns (DATE, MSGID); or a function (tag, data) that
    checks it.
    """

    def __init__(self, name, stdin, sender, rcpts, want, argv=None,
                 shell=None):
        assert (argv is None) != (shell is None)
        self.name, self.stdin = name, stdin
        self.sender, self.rcpts, self.want = sender, rcpts, want
        self.argv, self.shell = argv, shell


# ---- the callers ----------------------------------------------------------

def php_cases():
    # ext/standard/mail.c, PHP 8: "To: %s" line_sep "Subject: %s" line_sep
    # headers line_sep line_sep message line_sep; line_sep is CRLF, or LF
    # with mail.mixed_lf_and_crlf.  Headers given as an array are joined
    # with CRLF; the message passes through as the script wrote it (LF).
    body = (b'Hello Alice,\n\nyour order has shipped.\n.\n'
            b'..and the dots stay.\n-- \nShop\n')
    body_out = crlf_lines(b'Hello Alice,', b'', b'your order has shipped.',
                          b'.', b'..and the dots stay.', b'-- ', b'Shop', b'')
    hdrs = [b'From: Shop <shop@example.com>',
            b'Reply-To: support@example.com',
            b'Cc: carol@example.org',
            b'Bcc: audit@example.net',
            b'MIME-Version: 1.0',
            b'Content-Type: text/plain; charset=UTF-8',
            b'X-Mailer: PHP/8.2.29']
    to_line = b'To: alice@example.com, Bob <bob@example.org>'
    subj = b'Subject: Order #1234 confirmed'
    rcpts = ['alice@example.com', 'bob@example.org', 'carol@example.org',
             'audit@example.net']
    kept = [to_line, subj] + [h for h in hdrs if not h.startswith(b'Bcc')]
    yield Case(
        'PHP 8 mail(), CRLF, no 5th parameter',
        shell='{sendmail} -t -i',
        stdin=to_line + b'\r\n' + subj + b'\r\n' + b'\r\n'.join(hdrs)
        + b'\r\n' + b'\r\n' + body + b'\r\n',
        sender=ME, rcpts=rcpts,
        want=[crlf_lines(*kept), DATE, MSGID, b'\r\n', body_out])

    # mail.mixed_lf_and_crlf = On: every separator PHP writes is LF.
    yield Case(
        'PHP 8 mail(), mail.mixed_lf_and_crlf, -f',
        shell='{sendmail} -t -i -fshop@example.com',
        stdin=to_line + b'\n' + subj + b'\n' + b'\n'.join(hdrs) + b'\n'
        + b'\n' + body + b'\n',
        sender='shop@example.com', rcpts=rcpts,
        want=[crlf_lines(*kept), DATE, MSGID, b'\r\n', body_out])

    # A script that passes its headers as a string joined with "\n" (PHP 5
    # habits) to PHP 8, which writes its own lines with CRLF: mixed line
    # endings in one header section.  UTF-8 subject as an encoded word,
    # 8-bit UTF-8 in a display name and in the body; the 5th parameter.
    subj8 = b'Subject: =?UTF-8?B?SWhyZSBCZXN0ZWxsdW5nIOKAkyBHcsO8w59l?='
    user_hdrs = ('From: Webmaster <webmaster@example.com>\n'
                 'Cc: Dörte <doerte@example.org>\n'
                 'Bcc: hidden@example.net\n'
                 'MIME-Version: 1.0\n'
                 'Content-Type: text/plain; charset=UTF-8\n'
                 'Content-Transfer-Encoding: 8bit').encode()
    body8 = 'Grüße aus Köln!\n한국어 본문입니다.\r\nZeile drei\n'.encode()
    yield Case(
        'PHP 8 mail(), LF user headers in CRLF, UTF-8, -f',
        shell='{sendmail} -t -i -fwebmaster@example.com',
        stdin=b'To: kunde@example.org\r\n' + subj8 + b'\r\n' + user_hdrs
        + b'\r\n' + b'\r\n' + body8 + b'\r\n',
        sender='webmaster@example.com',
        rcpts=['kunde@example.org', 'doerte@example.org',
               'hidden@example.net'],
        want=[crlf_lines(b'To: kunde@example.org', subj8,
                         b'From: Webmaster <webmaster@example.com>',
                         'Cc: Dörte <doerte@example.org>'.encode(),
                         b'MIME-Version: 1.0',
                         b'Content-Type: text/plain; charset=UTF-8',
                         b'Content-Transfer-Encoding: 8bit'),
              DATE, MSGID, b'\r\n',
              crlf_lines('Grüße aus Köln!'.encode(),
                         '한국어 본문입니다.'.encode(), b'Zeile drei', b'')])


def php_long_line_case():
    # A PHP script that builds an HTML body on one line, as many do, longer
    # than the 998 octets RFC 5321 allows on the wire.  PHP passes it as it
    # is.  Postfix takes it, and its SMTP client breaks the line when
    # relaying (smtp_line_length_limit = 998) by inserting CRLF SPACE; so
    # what must arrive: no line over 998 octets, and the message as written
    # once every inserted CRLF SPACE is taken out.
    hdrs = [b'To: alice@example.com', b'Subject: Newsletter',
            b'From: News <news@example.com>', b'MIME-Version: 1.0',
            b'Content-Type: text/html; charset=UTF-8']
    html = (b'<html><body><p>' + b'Lorem ipsum dolor sit amet, consectetur '
            b'adipiscing elit. ' * 55 + b'</p></body></html>')
    assert len(html) > 3 * 998
    want = [crlf_lines(*hdrs), DATE, MSGID, b'\r\n', html + b'\r\n\r\n']

    def verify(tag, data):
        longest = max(len(line) for line in data.split(b'\r\n'))
        if not ok(longest <= 998, f'{tag}: no line over 998 octets'):
            diag(f'longest line: {longest} octets')
        like(data.replace(b'\r\n ', b''), want_pattern(want),
             f'{tag}: the message, once CRLF SPACE is taken out')
    return Case(
        'PHP 8 mail(), an HTML body on one line of 3000+ octets',
        shell='{sendmail} -t -i',
        stdin=b'\r\n'.join(hdrs) + b'\r\n\r\n' + html + b'\n\r\n',
        sender=ME, rcpts=['alice@example.com'], want=verify)


def phpmailer_case():
    # PHPMailer 6: sprintf('%s -oi -f%s -t', sendmail_path,
    # escapeshellarg($sender)), through sh: -t and -i twice; LF; the Bcc:
    # header is present.
    return Case(
        'PHPMailer 6 (duplicated -t -i -oi)',
        shell="{sendmail} -t -i -oi -f'noreply@example.com' -t",
        stdin=b'Date: Sat, 22 Nov 2025 16:00:00 +0000\n'
              b'To: Alice <alice@example.com>\n'
              b'From: App <noreply@example.com>\n'
              b'Bcc: archive@example.net\n'
              b'Subject: Password reset\n'
              b'Message-ID: <K2uX9pQ@app.example.com>\n'
              b'X-Mailer: PHPMailer 6.9.1 (https://github.com/PHPMailer/'
              b'PHPMailer)\n'
              b'MIME-Version: 1.0\n'
              b'Content-Type: text/plain; charset=us-ascii\n'
              b'\n'
              b'Use this code: 123456\n',
        sender='noreply@example.com',
        rcpts=['alice@example.com', 'archive@example.net'],
        want=[crlf_lines(b'Date: Sat, 22 Nov 2025 16:00:00 +0000',
                         b'To: Alice <alice@example.com>',
                         b'From: App <noreply@example.com>',
                         b'Subject: Password reset',
                         b'Message-ID: <K2uX9pQ@app.example.com>',
                         b'X-Mailer: PHPMailer 6.9.1 (https://github.com/'
                         b'PHPMailer/PHPMailer)',
                         b'MIME-Version: 1.0',
                         b'Content-Type: text/plain; charset=us-ascii',
                         b'', b'Use this code: 123456')])


def symfony_case():
    # Symfony Mailer's SendmailTransport in -t mode: sendmail_path with -t
    # removed, the recipients passed (quoted by escapeshellarg), through sh;
    # LF; -i given, so Symfony does not stuff dots itself.
    hdrs = [b'From: App <app@example.com>', b'To: user@example.org',
            b'Subject: Welcome', b'Message-ID: <3f1e9a7c@example.com>',
            b'MIME-Version: 1.0', b'Date: Sat, 22 Nov 2025 16:30:00 +0000',
            b'Content-Type: text/plain; charset=utf-8',
            b'Content-Transfer-Encoding: quoted-printable']
    out = [b'Welcome aboard!', b'.', b'..config is in ~/.app', b'']
    return Case(
        'Symfony Mailer, -t mode (-i -f\'from\' \'to\')',
        shell="{sendmail} -i -f'app@example.com' 'user@example.org'",
        stdin=b'\n'.join(hdrs) + b'\n\n' + b'\n'.join(out) + b'\n',
        sender='app@example.com', rcpts=['user@example.org'],
        want=[crlf_lines(*hdrs) + b'\r\n' + crlf_lines(*out)])


CRON_ENV = [b'X-Cron-Env: <SHELL=/bin/sh>',
            b'X-Cron-Env: <HOME=/root>',
            b'X-Cron-Env: <PATH=/usr/bin:/bin>',
            b'X-Cron-Env: <LOGNAME=root>',
            b'X-Cron-Env: <USER=root>']


def cronie_case(name, user, mailto, rcpts):
    # cronie src/do_command.c: MAILFMT "%s -FCronDaemon -i -odi -oem -oi -t
    # -f %s" split into argv (no shell); headers with LF; MAIL_DATE on.
    hdrs = [f'From: "(Cron Daemon)" <{user}>'.encode(),
                b'To: ' + mailto.encode(),
            f'Subject: Cron <{user}@host1> /usr/local/bin/backup '
            '--quiet'.encode(),
            b'Date: Sat, 22 Nov 2025 16:00:01 +0000 (UTC)',
            b'MIME-Version: 1.0',
            b'Content-Type: text/plain; charset=UTF-8',
            b'Auto-Submitted: auto-generated',
            b'Precedence: bulk'] + CRON_ENV
    out = [b'backup: 3 files changed', b'.', b'..', b'done']
    return Case(
        name,
        argv=['-FCronDaemon', '-i', '-odi', '-oem', '-oi', '-t', '-f', user],
        stdin=b'\n'.join(hdrs) + b'\n\n' + b'\n'.join(out) + b'\n',
        sender=f'{user}@{DOMAIN}', rcpts=rcpts,
        want=[crlf_lines(*hdrs), MSGID, b'\r\n', crlf_lines(*out)])


def cronie_cases():
    yield cronie_case('cronie, MAILTO unset (To: root)', 'root', 'root',
                      [f'root@{DOMAIN}'])
    yield cronie_case('cronie, MAILTO=a@x,b@y, user www-data', 'www-data',
                      'ops@example.com,dev@example.org',
                      ['ops@example.com', 'dev@example.org'])


def debian_cron_cases():
    # Debian cron 3.0pl1: MAILARGS "%s -FCronDaemon -i -B8BITMIME -oem %s",
    # the recipient an argument (MAILTO as it is, commas and all), no -f;
    # From: root (Cron Daemon); 8-bit UTF-8 output.
    def case(name, mailto, rcpts):
        hdrs = [b'From: root (Cron Daemon)',
                b'To: ' + mailto.encode(),
                b'Subject: Cron <root@host1> test -x /usr/sbin/anacron || '
                b'run-parts --report /etc/cron.daily',
                b'MIME-Version: 1.0',
                b'Content-Type: text/plain; charset=UTF-8',
                b'Content-Transfer-Encoding: 8bit'] + CRON_ENV[:4]
        out = [b'/etc/cron.daily/logrotate:',
               'error: Fehler beim Öffnen von /var/log/app.log: Keine '
               'Berechtigung'.encode(),
               b'run-parts: /etc/cron.daily/logrotate exited with return '
               b'code 1']
        return Case(
            name, argv=['-FCronDaemon', '-i', '-B8BITMIME', '-oem', mailto],
            stdin=b'\n'.join(hdrs) + b'\n\n' + b'\n'.join(out) + b'\n',
            sender=ME, rcpts=rcpts,
            want=[crlf_lines(*hdrs), DATE, MSGID, b'\r\n', crlf_lines(*out)])
    yield case('Debian cron, root', 'root', [f'root@{DOMAIN}'])
    yield case('Debian cron, MAILTO=a@x,b@y as one argument',
               'ops@example.com,dev@example.org',
               ['ops@example.com', 'dev@example.org'])


def systemd_cron_case():
    hdrs = [b'From: root (systemd-cron)', b'To: root',
            b'Subject: [host1] job cron-daily-apt failed',
            b'Content-Type: text/plain; charset=UTF-8']
    out = [b'apt: 0 upgraded', b'.', b'end']
    return Case(
        'systemd-cron (-B 8BITMIME separate)',
        argv=['-i', '-B', '8BITMIME', 'root'],
        stdin=b'\n'.join(hdrs) + b'\n\n' + b'\n'.join(out) + b'\n',
        sender=ME, rcpts=[f'root@{DOMAIN}'],
        want=[crlf_lines(*hdrs), DATE, MSGID, b'\r\n', crlf_lines(*out)])


def anacron_case():
    # anacron runjob.c: execl(SENDMAIL, SENDMAIL, "-FAnacron", "-odi",
    # mailto); stdin its temp file; no -i, so a lone "." ends the message
    # there (and "..x" before it is not unstuffed, as with Postfix).
    hdrs = [b'From: Anacron <root>', b'To: root', b'MIME-Version: 1.0',
            b'Content-Type: text/plain; charset="UTF-8"',
            b"Subject: Anacron job 'cron.daily' on host1"]
    out = [b'/etc/cron.daily/dpkg:', b'..config kept as it is', b'.',
           b'this line comes after the lone dot', b'and so does this']
    return Case(
        'anacron (no -i: a lone "." ends the input)',
        argv=['-FAnacron', '-odi', 'root'],
        stdin=b'\n'.join(hdrs) + b'\n\n' + b'\n'.join(out) + b'\n',
        sender=ME, rcpts=[f'root@{DOMAIN}'],
        want=[crlf_lines(*hdrs), DATE, MSGID, b'\r\n',
              crlf_lines(b'/etc/cron.daily/dpkg:',
                         b'..config kept as it is')])


def git_send_email_case():
    # git-send-email.perl: @sendmail_parameters = ('-i', @recipients),
    # '-f', $raw_from unshifted; exec without a shell; "$header\n$message"
    # with LF; To, Cc and Bcc all on argv, no Bcc: header.
    patch = (b'.gitignore and .mailmap were missing from the list.\n'
             b'.\n'
             b'..\n'
             b'...three dots\n'
             b'\n'
             b'Signed-off-by: A U Thor <author@example.org>\n'
             b'---\n'
             b' .gitignore | 1 +\n'
             b' 1 file changed, 1 insertion(+)\n'
             b'\n'
             b'diff --git a/.gitignore b/.gitignore\n'
             b'index 1234567..89abcde 100644\n'
             b'--- a/.gitignore\n'
             b'+++ b/.gitignore\n'
             b'@@ -1,2 +1,3 @@\n'
             b' *.o\n'
             b'+.libs\n'
             b' .deps\n'
             b'-- \n'
             b'2.39.5\n'
             b'\n')
    header = (b'From: A U Thor <author@example.org>\n'
              b'To: maintainer@example.org\n'
              b'Cc: list@example.org,\n'
              b'\treviewer@example.org\n'
              b'Subject: [PATCH v2 1/1] doc: fix the dotfiles list\n'
              b'Date: Sat, 22 Nov 2025 16:00:00 +0000\n'
              b'Message-Id: <20251122160000.4711-1-author@example.org>\n'
              b'X-Mailer: git-send-email 2.39.5\n'
              b'MIME-Version: 1.0\n'
              b'Content-Transfer-Encoding: 8bit\n')
    return Case(
        'git send-email (dot lines in the patch, Bcc only on argv)',
        argv=['-f', 'author@example.org', '-i', 'maintainer@example.org',
              'list@example.org', 'reviewer@example.org',
              'secret-bcc@example.net'],
        stdin=header + b'\n' + patch,
        sender='author@example.org',
        rcpts=['maintainer@example.org', 'list@example.org',
               'reviewer@example.org', 'secret-bcc@example.net'],
        want=[header.replace(b'\n', b'\r\n') + b'\r\n'
              + patch.replace(b'\n', b'\r\n')])


def mailutils_case():
    # GNU mailutils mail: sendmail -oi -f root@host -t; closes stdout and
    # stderr in the child (the "closed" mode is its own).
    hdrs = [b'To: alice@example.com', b'Subject: Leave request',
            b'From: root@host1.example.net',
            b'Content-Type: text/plain; charset=UTF-8',
            b'Content-Transfer-Encoding: 8bit',
            b'X-Mailer: mail (GNU Mailutils 3.15)']
    return Case(
        'GNU mailutils mail (-oi -f root@host -t)',
        argv=['-oi', '-f', 'root@host1.example.net', '-t'],
        stdin=b'\n'.join(hdrs) + b'\n\nPlease approve.\n',
        sender='root@host1.example.net', rcpts=['alice@example.com'],
        want=[crlf_lines(*hdrs), DATE, MSGID, b'\r\n',
              b'Please approve.\r\n'])


def mdadm_case():
    # mdadm Monitor.c: popen("/usr/lib/sendmail -t -f<from>"), i.e. through
    # /bin/sh; From: mdadm monitoring <root> (a bare name in a header is
    # not a recipient); MAILADDR root.
    hdrs = [b'From: mdadm monitoring <root>', b'To: root',
            b'Subject: DegradedArray event on /dev/md0:host1']
    out = [b'This is an automatically generated mail message from mdadm',
           b'running on host1', b'',
           b'A DegradedArray event had been detected on md device '
           b'/dev/md0.', b'',
           b'Faithfully yours, etc.', b'',
           b'P.S. The /proc/mdstat file currently contains the following:',
           b'',
           b'Personalities : [raid1] [linear] [multipath] [raid0] [raid6] '
           b'[raid5] [raid4] [raid10] ',
           b'md0 : active raid1 sda1[0]',
           b'      976630464 blocks super 1.2 [2/1] [U_]',
           b'      ',
           b'unused devices: <none>']
    return Case(
        'mdadm (-t -f<from> glued, through sh)',
        shell='{sendmail} -t -fraid-alerts@example.com',
        stdin=b'\n'.join(hdrs) + b'\n\n' + b'\n'.join(out) + b'\n',
        sender='raid-alerts@example.com', rcpts=[f'root@{DOMAIN}'],
        want=[crlf_lines(*hdrs), DATE, MSGID, b'\r\n', crlf_lines(*out)])


def fail2ban_case():
    # action.d/sendmail-common.conf: mailcmd = /usr/sbin/sendmail -f
    # "<sender>" "<dest>", through sh, no -i; sender = fail2ban.
    hdrs = [b'Subject: [Fail2Ban] sshd: banned 192.0.2.77 from '
            b'host1.example.net',
            b'Date: Sat, 22 Nov 2025 16:05:00 +0000',
            b'From: Fail2Ban <fail2ban>',
            b'To: root']
    out = [b'', b'Hi,', b'', b'The IP 192.0.2.77 has just been banned by '
           b'Fail2Ban after', b'5 attempts against sshd.', b'', b'',
           b'..whois: no match for 192.0.2.77',
           b'Lines containing failures of 192.0.2.77 (max 1000)',
           b'Nov 22 16:04:58 host1 sshd[811]: Invalid user admin from '
           b'192.0.2.77 port 52222', b'',
           b'Regards,', b'', b'Fail2Ban']
    return Case(
        'fail2ban (-f fail2ban root, no -i)',
        shell='{sendmail} -f "fail2ban" "root"',
        stdin=b'\n'.join(hdrs) + b'\n\n' + b'\n'.join(out) + b'\n',
        sender=f'fail2ban@{DOMAIN}', rcpts=[f'root@{DOMAIN}'],
        want=[crlf_lines(*hdrs), MSGID, b'\r\n', crlf_lines(*out)])


def bsd_mailx_case():
    # bsd-mailx: sendmail -i rcpt...; writes To, Subject, Cc, Bcc but no
    # From, Date or Message-ID: mailshim adds them.
    hdrs = [b'To: alice@example.com', b'Subject: disk report',
            b'Cc: bob@example.org', b'Bcc: carol@example.net']
    return Case(
        'bsd-mailx (-i rcpt..., no From)',
        argv=['-i', 'alice@example.com', 'bob@example.org',
              'carol@example.net'],
        stdin=b'\n'.join(hdrs) + b'\n\n/dev/sda1  91% full\n.\n',
        sender=ME,
        rcpts=['alice@example.com', 'bob@example.org', 'carol@example.net'],
        want=[crlf_lines(*hdrs[:3]), b'From: ' + ME.encode() + b'\r\n',
              DATE, MSGID, b'\r\n', b'/dev/sda1  91% full\r\n.\r\n'])


def s_nail_case():
    # s-nail: sendmail -i [-F name] [-f addr] -- rcpt...; no From: written
    # here, so -F and -f make it.
    hdrs = [b'Date: Sat, 22 Nov 2025 16:10:00 +0000',
            b'To: bob@example.com',
            b'Subject: Quarterly numbers',
            b'Message-ID: <20251122161000.AbCdEfGh@host1.example.org>',
            b'User-Agent: s-nail v14.9.24',
            b'MIME-Version: 1.0',
            b'Content-Type: text/plain; charset=utf-8',
            b'Content-Transfer-Encoding: 8bit']
    body = 'Hi Bob,\nthe numbers: €1.2M.\n'.encode()
    return Case(
        's-nail (-i -F name -f addr -- rcpt)',
        argv=['-i', '-F', 'Jane Q. Doe', '-f', 'jane@example.org', '--',
              'bob@example.com'],
        stdin=b'\n'.join(hdrs) + b'\n\n' + body,
        sender='jane@example.org', rcpts=['bob@example.com'],
        want=[crlf_lines(*hdrs),
              b'From: "Jane Q. Doe" <jane@example.org>\r\n', b'\r\n',
              body.replace(b'\n', b'\r\n')])


def neomutt_case():
    # NeoMutt send/sendmail.c: $sendmail "-oem -oi", then -B8BITMIME,
    # -f from ($use_envelope_from), -N notify and -R ret ($dsn_notify,
    # $dsn_return: each takes a value), "--", to cc bcc; stdin a file.
    hdrs = [b'Date: Sat, 22 Nov 2025 16:20:11 +0000',
            b'From: Jane Doe <jane@example.org>',
            b'To: Bob <bob@example.com>',
            b'Cc: carol@example.org',
            b'Subject: =?utf-8?Q?R=C3=A9union?=',
            b'Message-ID: <aSDf3GkCmU2Nk1pQ@example.org>',
            b'MIME-Version: 1.0',
            b'Content-Type: text/plain; charset=utf-8',
            b'Content-Disposition: inline',
            b'Content-Transfer-Encoding: 8bit',
            b'User-Agent: NeoMutt/20220429']
    body = 'Bonjour,\nla réunion est à 15 h.\n\n-- \nJane\n'.encode()
    return Case(
        'NeoMutt (-oem -oi -B8BITMIME -f -N -R -- to cc bcc)',
        argv=['-oem', '-oi', '-B8BITMIME', '-f', 'jane@example.org', '-N',
              'failure,delay', '-R', 'hdrs', '--', 'bob@example.com',
              'carol@example.org', 'dave@example.net'],
        stdin=b'\n'.join(hdrs) + b'\n\n' + body,
        sender='jane@example.org',
        rcpts=['bob@example.com', 'carol@example.org', 'dave@example.net'],
        want=[crlf_lines(*hdrs) + b'\r\n' + body.replace(b'\n', b'\r\n')])


def unattended_upgrades_case():
    # unattended-upgrades: Popen([SENDMAIL, "-oi", "-t"]), text written by
    # Python's email package (MIMEText, utf-8 as quoted-printable), LF.
    hdrs = [b'Content-Type: text/plain; charset="utf-8"',
            b'MIME-Version: 1.0',
            b'Content-Transfer-Encoding: quoted-printable',
            b'Subject: unattended-upgrades result for host1: SUCCESS',
            b'From: root',
            b'To: root']
    out = [b'Unattended upgrade result: All upgrades installed', b'',
           b'Packages that were upgraded:', b' libc6 libc-bin tzdata', b'',
           b'Gr=C3=B6=C3=9Fe der Downloads: 12,3 MB =E2=80=93 alles gut.',
           b'=3D=3D=3D end =3D=3D=3D']
    return Case(
        'unattended-upgrades (-oi -t, quoted-printable UTF-8)',
        argv=['-oi', '-t'],
        stdin=b'\n'.join(hdrs) + b'\n\n' + b'\n'.join(out) + b'\n',
        sender=ME, rcpts=[f'root@{DOMAIN}'],
        want=[crlf_lines(*hdrs), DATE, MSGID, b'\r\n', crlf_lines(*out)])


def logwatch_case():
    # logwatch: mailer "/usr/sbin/sendmail -t" (no -i); From: Logwatch.
    hdrs = [b'To: root', b'From: Logwatch',
            b'Subject: Logwatch for host1 (Linux)',
            b'Auto-Submitted: auto-generated', b'MIME-Version: 1.0',
            b'Content-Transfer-Encoding: 7bit',
            b'Content-Type: text/plain; charset="iso-8859-1"']
    out = [b' ',
           b' ################### Logwatch 7.8 (01/22/23) '
           b'#################### ',
           b'        Processing Initiated: Sat Nov 22 06:25:01 2025',
           b'        Date Range Processed: yesterday',
           b' ',
           b' ------------------- Disk Space Begin ------------------------ ',
           b' /dev/vda         252G   16G  80G  17% /',
           b' ...',
           b' -------------------- Disk Space End ------------------------- ',
           b' ###################### Logwatch End ######################### ']
    return Case(
        'logwatch (-t, no -i)',
        argv=['-t'],
        stdin=b'\n'.join(hdrs) + b'\n\n' + b'\n'.join(out) + b'\n',
        sender=ME, rcpts=[f'root@{DOMAIN}'],
        want=[crlf_lines(*hdrs), DATE, MSGID, b'\r\n', crlf_lines(*out)])


def all_cases():
    yield from php_cases()
    yield php_long_line_case()
    yield phpmailer_case()
    yield symfony_case()
    yield from cronie_cases()
    yield from debian_cron_cases()
    yield systemd_cron_case()
    yield anacron_case()
    yield git_send_email_case()
    yield mailutils_case()
    yield mdadm_case()
    yield fail2ban_case()
    yield bsd_mailx_case()
    yield s_nail_case()
    yield neomutt_case()
    yield unattended_upgrades_case()
    yield logwatch_case()


# ---- running and checking -------------------------------------------------

def sendmail_link(env) -> str:
    """A "sendmail" symlink to MAILSHIM_BIN: callers run it by that name."""
    binary = os.environ.get('MAILSHIM_BIN')
    if not binary or not os.access(binary, os.X_OK):
        raise RuntimeError(f'MAILSHIM_BIN={binary!r} is not an executable '
                           'file')
    link = env.path('sendmail')
    if not os.path.lexists(link):
        os.symlink(os.path.abspath(binary), link)
    return link


def command_for(env, case, mode):
    wrapper = shlex.split(os.environ.get('MAILSHIM_TEST_WRAPPER', ''))
    program = wrapper + [sendmail_link(env)]
    close = 'exec 1>&- 2>&-; ' if mode == 'closed' else ''
    if case.shell is not None:
        return ['/bin/sh', '-c',
                close + case.shell.format(sendmail=shlex.join(program))]
    if close:
        return ['/bin/sh', '-c', close + 'exec "$0" "$@"'] + program \
            + case.argv
    return program + case.argv


def run_case(env, case, mode) -> harness.Result:
    command = command_for(env, case, mode)
    child_env = env.child_env({'MAILSHIM_CONFIG': env.last_config})
    stdin_file = None
    if mode == 'file':
        path = env.write_file('stdin.eml', case.stdin)
        stdin_file = open(path, 'rb')
    try:
        proc = subprocess.Popen(
            command, stdin=stdin_file or subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env,
            cwd=env.dir)
        try:
            out, err = proc.communicate(
                None if stdin_file else case.stdin, timeout=30)
            rc, timed_out = proc.returncode, False
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            rc, timed_out = None, True
    finally:
        if stdin_file:
            stdin_file.close()
    return harness.Result(command, rc, out,
                          err.decode('utf-8', 'backslashreplace'), timed_out)


def want_pattern(parts) -> bytes:
    return b'^' + b''.join(p.pattern if isinstance(p, re.Pattern)
                           else re.escape(p) for p in parts) + b'\\Z'


def check(env, case, mode, r):
    """The checks of one run; True when they all passed."""
    tag = f'{case.name} [{mode}]'
    good = []
    good.append(is_(r.rc, 0, f'{tag}: exit status 0'))
    if not good[-1]:
        diag(r.describe())
    good.append(is_((r.out, r.err), (b'', ''),
                    f'{tag}: nothing on stdout or stderr'))
    msgs = env.relay.wait_for(1, timeout=5 if r.rc == 0 else 0.5)
    env.relay.wait_idle()
    good.append(is_(len(msgs), 1, f'{tag}: the relay got one message'))
    m = msgs[0] if msgs else None
    good.append(is_(m and m.mail_from, case.sender, f'{tag}: envelope sender'))
    good.append(is_(m and sorted(m.rcpt_tos), sorted(case.rcpts),
                    f'{tag}: recipients'))
    data = m.data if m else b''
    if callable(case.want):
        case.want(tag, data)
    elif all(isinstance(p, bytes) for p in case.want):
        good.append(is_(data, b''.join(case.want),
                        f'{tag}: the message, exactly'))
    else:
        good.append(like(data, want_pattern(case.want),
                         f'{tag}: the message, exactly (added Date/'
                         'Message-ID aside)'))
    env.relay.reset()
    return all(good)


# Callers whose real programs the other test files do not run (they need a
# RAID array, a Debian archive to upgrade from, a ban, a day of logs): their
# command lines, replayed here, are their rows in docs/COMPAT.md.
REPLICA_ROWS = {
    'mdadm (-t -f<from> glued, through sh)': ('mdadm', 'mdadm'),
    'unattended-upgrades (-oi -t, quoted-printable UTF-8)':
        ('unattended-upgrades', 'unattended-upgrades'),
    'fail2ban (-f fail2ban root, no -i)': ('fail2ban', 'fail2ban'),
    'logwatch (-t, no -i)': ('logwatch', 'logwatch'),
}


def command_line(case):
    if case.shell is not None:
        return case.shell.replace('{sendmail}', 'sendmail').replace('"', '')
    return ' '.join(['sendmail'] + case.argv)


def test():
    with harness.Env(listeners=['starttls']) as env:
        env.config_for('starttls')
        cases = list(all_cases())
        names = [c.name for c in cases]
        is_(len(set(names)), len(names), 'case names are unique')
        for case in cases:
            passed = [check(env, case, mode, run_case(env, case, mode))
                      for mode in MODES]
            if case.name in REPLICA_ROWS:
                caller, package = REPLICA_ROWS[case.name]
                harness.compat_row(f'{caller} (its command line)', package,
                                   command_line(case), all(passed),
                                   version='(not run: command line replayed)')

        # cronie on a host whose /etc/aliases sends root's mail elsewhere
        # (Debian's default file plus the usual root line).  The aliases
        # expand the recipient (To: root); mailshim also takes the sender
        # given by -f through them, as t-delivery.py specifies (Postfix
        # would keep <root@local_domain>: it never aliases a sender).
        env.write_aliases('postmaster: root\nwebmaster: root\n'
                          'www-data: root\nroot: ops@example.com\n')
        for user in ('root', 'www-data'):
            case = cronie_case(f'cronie -f {user}, aliases root: ops@...',
                               user, 'root', ['ops@example.com'])
            case.sender = 'ops@example.com'
            check(env, case, 'pipe', run_case(env, case, 'pipe'))
        env.write_aliases('')
        is_(env.relay.errors, [], 'the relay saw no unexpected errors')


harness.main(test)
