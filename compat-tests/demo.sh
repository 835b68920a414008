#!/bin/sh
# demo.sh - send one message through a local demo relay, the way a PHP site
# would, and show what the relay received.  The relay is the test relay
# (aiosmtpd on 127.0.0.1) with a throwaway CA: STARTTLS, then AUTH PLAIN
# with NHN Cloud style credentials (AppKey#mailType / SecretKey).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${MAILSHIM_BIN:?set MAILSHIM_BIN to the built sendmail/mailshim}
py=${PYTHON3:-/usr/bin/python3}
dir=$(mktemp -d "${TMPDIR:-/tmp}/mailshim-demo.XXXXXX")
relay_pid=

cleanup() {
	[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"$py" "$here/relay.py" --dir "$dir" --listeners starttls --max-seconds 60 \
    >"$dir/relay.log" 2>&1 &
relay_pid=$!
i=0
while [ ! -s "$dir/relay.json" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$relay_pid" 2>/dev/null; then
		echo "demo: the relay did not start:" >&2
		cat "$dir/relay.log" >&2
		exit 1
	fi
	sleep 0.1
done
port=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ports"]["starttls"])' "$dir/relay.json")

umask 077
cat >"$dir/mailshim.ini" <<INI
; What /etc/mailshim.ini looks like for NHN Cloud Email, pointed at the
; local demo relay instead of smtp-mail.nhncloudservice.com.
[mailshim]
local_domain = shop.example

[nhncloud]
provider  = nhncloud
host      = 127.0.0.1
port      = $port
appkey    = AppKey
secretkey = SecretKey
mail_type = auth
ca_file   = $dir/tls/ca.pem
helo      = web1.shop.example
INI

echo "== mailshim.ini"
grep -v '^;' "$dir/mailshim.ini"
echo
echo "== PHP mail() runs: sendmail -t -i -f noreply@shop.example"
printf '%s\n' \
    'To: Customer <customer@example.com>' \
    'Subject: Your sign-up code' \
    'Content-Type: text/plain; charset=UTF-8' \
    '' \
    'Your code is 424242.' \
    '.a line that starts with a dot' |
    "$bin" -C "$dir/mailshim.ini" -t -i -f noreply@shop.example
echo "mailshim exit status: $?"
echo
echo "== what the relay received"
"$py" - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
m = json.load(open(d + '/msg-0001.json'))
print('EHLO        ', m['helo'])
print('TLS         ', m['tls_version'])
print('AUTH        ', m['auth_mech'], m['auth_user'])
print('MAIL FROM   ', '<%s>' % m['mail_from'])
for r in m['rcpt_tos']:
    print('RCPT TO     ', '<%s>' % r)
print('--- message (CRLF shown as \\r\\n)')
for line in open(d + '/msg-0001.eml', 'rb').read().split(b'\r\n')[:-1]:
    print(line.decode('utf-8', 'replace') + '\\r\\n')
PY
