#!/usr/bin/python3
"""A real SMTP relay for mailshim's end-to-end tests, built on aiosmtpd.

The relay listens on several ports of 127.0.0.1 at once, each a "listener"
with its own behaviour (plain text, STARTTLS, implicit TLS, a bad
certificate, no AUTH, a 421 greeting, DSN offered...; see LISTENERS).  It records every
message it accepts, byte for byte, every transaction it refuses, and every
connection (the commands in order, a transcript, TLS and AUTH state), so a
test can check exactly what the client did on the wire.

Faults are injected through magic addresses (see RCPT_FAULTS, SENDER_FAULTS
and DATA_FAULTS): the local part decides, case-insensitively, whatever the
domain.

As a module (the relay runs in a background thread of the test process):

    with Relay() as relay:
        port = relay.ports['starttls']
        ...  # run a client against 127.0.0.1:port, trusting relay.ca_file
        [msg] = relay.wait_for(1)
        assert msg.rcpt_tos == ['someone@example.com']

As a program (for shell scripts):

    /usr/bin/python3 relay.py --dir DIR [--listeners starttls,tls,plain]

writes DIR/relay.json once it listens, DIR/msg-NNNN.json and .eml for each
message it accepts, DIR/rejected.jsonl and DIR/sessions.jsonl as it goes, and
runs until SIGTERM/SIGINT or --max-seconds.

Only the standard library, aiosmtpd (python3-aiosmtpd, 1.4) and the openssl
command are used.  Nothing binds or connects anywhere but 127.0.0.1.
"""

import argparse
import asyncio
import base64
import copy
import dataclasses
import email
import email.policy
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from aiosmtpd.smtp import (DATA_SIZE_DEFAULT, MISSING, SMTP, AuthResult,
                           Envelope, Session, TLSSetupException, syntax)

HOST = '127.0.0.1'
SERVER_NAME = 'relay.test'        # what the relay calls itself (220, EHLO)
IDENT = 'mailshim-test-relay'     # the rest of the 220 greeting

# aiosmtpd warns (warnings.warn, on every connection) when AUTH is required
# without requiring TLS.  That is on purpose here: the 'plain' listener exists
# to check that mailshim refuses to send a password in clear.
warnings.filterwarnings(
    'ignore', message='Requiring AUTH while not requiring TLS')

# Credentials the relay accepts: user -> password.  The AppKey#type users are
# how NHN Cloud's relay spells the account's mail type in the SASL user name.
DEFAULT_USERS = {
    'AppKey': 'SecretKey',
    'AppKey#normal': 'SecretKey',
    'AppKey#auth': 'SecretKey',
    'AppKey#ad': 'SecretKey',
    # A secret with the characters ini files like to mangle.
    'user@example.com': 'p@ss#w;rd "x"',
}


# ---- listeners -------------------------------------------------------------

@dataclass(frozen=True)
class ListenerSpec:
    """How one listener behaves.

    tls is what a client has to do: 'none' (plain text, no STARTTLS
    offered), 'starttls' (STARTTLS offered) or 'tls' (implicit TLS: the
    listening socket itself is TLS).  It is also the value of mailshim.ini's
    tls key for this listener.  cert names the certificate presented:
    'good' (localhost, signed by ca_file), 'bad' (localhost, signed by the
    untrusted bad_ca_file) or 'wrongname' (wrong.example, signed by ca_file).

    ESMTP parameters: every listener takes SIZE and BODY (BODY=7BIT or
    8BITMIME, as aiosmtpd does) on MAIL and answers any other parameter
    with 555, as a relay without those extensions does.  A dsn listener
    offers DSN (RFC 3461) and takes RET and ENVID on MAIL, NOTIFY and ORCPT
    on RCPT, checking their syntax (501 for a bad value or a repeated
    parameter).  eightbitmime=False: 8BITMIME is not offered and BODY= is
    refused with 555 too.

    data_delay is how long (seconds) the relay thinks before it answers
    the final dot: transactions take that long, so that a client's
    connections can be seen to overlap (SessionRecord.started, .ended).
    """
    name: str
    tls: str
    cert: Optional[str] = None
    auth: bool = True              # AUTH offered, and required for MAIL
    auth_before_tls: bool = False  # AUTH advertised before STARTTLS too
    greet_421: bool = False        # answer 421 to every connection and close
    dsn: bool = False              # DSN offered (after STARTTLS, if any)
    eightbitmime: bool = True      # 8BITMIME offered
    data_delay: float = 0.0        # seconds before the reply to the dot
    tls12_max: bool = False        # TLS 1.2 at most (no TLS 1.3)


LISTENERS: Dict[str, ListenerSpec] = {s.name: s for s in (
    ListenerSpec('plain', 'none', auth_before_tls=True),
    ListenerSpec('starttls', 'starttls', 'good'),
    ListenerSpec('starttls_authbefore', 'starttls', 'good',
                 auth_before_tls=True),
    ListenerSpec('tls', 'tls', 'good'),
    ListenerSpec('starttls_badcert', 'starttls', 'bad'),
    ListenerSpec('tls_badcert', 'tls', 'bad'),
    ListenerSpec('starttls_wrongname', 'starttls', 'wrongname'),
    ListenerSpec('nostarttls', 'none', auth_before_tls=True),
    ListenerSpec('noauth_tls', 'starttls', 'good', auth=False),
    ListenerSpec('plain_noauth', 'none', auth=False),
    ListenerSpec('greet421', 'none', auth=False, greet_421=True),
    ListenerSpec('dsn', 'none', auth_before_tls=True, dsn=True),
    ListenerSpec('dsn_7bit', 'none', auth_before_tls=True, dsn=True,
                 eightbitmime=False),
    # DSN in the EHLO after STARTTLS only
    ListenerSpec('dsn_starttls', 'starttls', 'good', dsn=True),
    # like plain, but each message takes 100 ms: connections overlap
    ListenerSpec('slow', 'none', auth_before_tls=True, data_delay=0.1),
    # like starttls, but the handshake cannot reach TLS 1.3
    ListenerSpec('tls12only', 'starttls', 'good', tls12_max=True),
)}


# ---- fault injection -------------------------------------------------------

# Replies to RCPT TO:<local@any.domain>, by lower-cased local part; {addr} is
# the address as given.
RCPT_FAULTS = {
    'reject550':
        '550 5.1.1 <{addr}>: Recipient address rejected: User unknown',
    'temp451': '451 4.3.0 <{addr}>: temporarily unavailable',
    'reject553': '553 5.1.3 bad address syntax',
}
# Replies to MAIL FROM:<local@any.domain>.
SENDER_FAULTS = {
    'tempfrom': '451 4.3.0 sender temporarily rejected',
    'rejectfrom': '553 5.7.1 sender not allowed',
}
# Recipients that are accepted, but make the end of DATA fail with this reply.
DATA_FAULTS = {
    'datafail554': '554 5.7.1 message refused',
    'datafail451': '451 4.3.0 try again later',
}
# A recipient that is accepted, but makes the relay drop the connection
# (a TCP reset, no reply) once the client has started sending DATA.
DROP_CONNECTION = 'dropconn'

GREETING_421 = '421 4.3.2 service not available'

# The DSN parameters (RFC 3461) a dsn listener takes, by command.
DSN_PARAMS = {'MAIL': ('RET', 'ENVID'), 'RCPT': ('NOTIFY', 'ORCPT')}


# RFC 3461 4: xtext, one or more of: '!'..'~' but '+' and '=', or '+' and
# two upper-case hex digits.
_XTEXT = re.compile(r'(?:[!-*,-<>-~]|\+[0-9A-F]{2})+')


def xtext_decode(text: str) -> str:
    """The text an xtext (RFC 3461 4) stands for."""
    return re.sub(r'\+([0-9A-F]{2})', lambda m: chr(int(m.group(1), 16)),
                  text)


def dsn_param_error(key: str, value: Optional[str]) -> Optional[str]:
    """What is wrong with DSN parameter key=value (RFC 3461 4.1-4.4);
    None if nothing.  value is None for a parameter without '='."""
    if not value:
        return f'{key} needs a value'
    if key == 'RET':
        if value.upper() not in ('FULL', 'HDRS'):
            return 'RET takes FULL or HDRS'
    elif key == 'NOTIFY':
        words = value.upper().split(',')
        if words != ['NEVER'] and (
                len(set(words)) != len(words) or
                not set(words) <= {'SUCCESS', 'FAILURE', 'DELAY'}):
            return 'NOTIFY takes NEVER or SUCCESS, FAILURE, DELAY'
    elif key == 'ENVID':
        if not _XTEXT.fullmatch(value) or len(xtext_decode(value)) > 100:
            return 'ENVID takes xtext of at most 100 characters'
    elif key == 'ORCPT':
        kind, semi, addr = value.partition(';')
        if not semi or not re.fullmatch(r'[A-Za-z0-9-]+', kind) or \
                not _XTEXT.fullmatch(addr):
            return 'ORCPT takes addr-type;xtext'
    return None


def local_part(address: str) -> str:
    """The lower-cased local part of address (all of it if there is no @)."""
    return address.rpartition('@')[0].lower() if '@' in address \
        else address.lower()


# ---- records ---------------------------------------------------------------

class _Record:
    """Records can be read as attributes or as keys: m.data or m['data']."""

    def __getitem__(self, key):
        return getattr(self, key)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Message(_Record):
    """A message the relay accepted (replied 250 to the final dot)."""
    seq: int                  # 1, 2, ... over the relay's life (msg-0001)
    listener: str
    session_id: int           # the connection it came over
    helo: Optional[str]       # the EHLO/HELO name in force
    tls: bool                 # was the session encrypted when MAIL was sent
    tls_version: Optional[str]  # e.g. 'TLSv1.3', None without TLS
    auth_mech: Optional[str]  # 'PLAIN', 'LOGIN' or None
    auth_user: Optional[str]  # the authenticated name, e.g. 'AppKey#auth'
    mail_from: str            # '' for the null sender MAIL FROM:<>
    # MAIL's parameters in the order sent, e.g. ['SIZE=123', 'BODY=8BITMIME'],
    # in upper case; the values of DSN parameters (dsn listeners) as sent,
    # e.g. 'ENVID=Id+2Bx' (the keyword in upper case)
    mail_options: List[str]
    rcpt_tos: List[str]       # in the order given
    rcpt_options: List[List[str]]  # one list per recipient, the same way
    data: bytes               # as received, dot-unstuffed, line ends untouched
    received: float           # time.time()

    @property
    def email(self) -> email.message.EmailMessage:
        """data parsed with the standard library's email package."""
        return email.message_from_bytes(self.data, policy=email.policy.default)

    def to_json(self) -> dict:
        """All fields but data, plus data_b64 (data in base64)."""
        d = self.to_dict()
        d['data_b64'] = base64.b64encode(d.pop('data')).decode('ascii')
        return d


@dataclass
class Rejection(_Record):
    """A transaction the relay refused through a magic address."""
    listener: str
    session_id: int
    stage: str                # 'MAIL', 'RCPT' or 'DATA'
    command: Optional[str]    # the command line, e.g. 'RCPT TO:<temp451@x>'
    address: Optional[str]    # the magic address
    reply: Optional[str]      # the reply sent; None when the relay hung up
    data: Optional[bytes] = None  # for DATA: the message it refused
    received: float = 0.0

    def to_json(self) -> dict:
        d = self.to_dict()
        data = d.pop('data')
        d['data_b64'] = None if data is None \
            else base64.b64encode(data).decode('ascii')
        return d


@dataclass
class SessionRecord(_Record):
    """One connection.

    verbs is the list of command verbs in the order received ('EHLO',
    'STARTTLS', 'EHLO', 'AUTH', 'MAIL', 'RCPT', 'DATA', 'QUIT'...): not the
    AUTH continuation lines, nor the message.  transcript has every line:
    'C: ' for what the client sent (AUTH payloads included; the message body
    appears as one 'C: [N bytes of message data]' line), 'S: ' for the
    relay's replies.
    """
    session_id: int
    listener: str
    peer: Optional[Tuple] = None
    established: bool = False   # False: e.g. the implicit-TLS handshake failed
    helos: List[str] = field(default_factory=list)
    tls: bool = False           # encrypted now (or when it closed)
    tls_version: Optional[str] = None
    tls_error: Optional[str] = None  # why a STARTTLS handshake failed
    auth_mech: Optional[str] = None  # of the last successful AUTH
    auth_user: Optional[str] = None
    auth_attempts: List[Tuple[str, str, bool]] = field(default_factory=list)
    verbs: List[str] = field(default_factory=list)
    transcript: List[str] = field(default_factory=list)
    messages: int = 0           # messages accepted on this connection
    rejections: int = 0
    dropped: bool = False       # the relay hung up on purpose (dropconn)
    closed: bool = False
    errors: List[str] = field(default_factory=list)
    started: float = 0.0
    ended: Optional[float] = None

    @property
    def helo(self) -> Optional[str]:
        """The last EHLO/HELO name the client gave."""
        return self.helos[-1] if self.helos else None

    def to_json(self) -> dict:
        return self.to_dict()


# ---- the SMTP server -------------------------------------------------------

class _RelaySession(Session):
    """aiosmtpd's per-SMTP-session state, plus the mechanism of the AUTH.

    Beware: aiosmtpd makes a new Session after STARTTLS (RFC 3207 says to
    forget everything), so this is reset there; SessionRecord is not.
    """

    def __init__(self, loop):
        super().__init__(loop)
        self.auth_mech = None
        self.auth_user = None


class _RelayEnvelope(Envelope):
    """aiosmtpd's transaction state, plus what the relay needs to remember."""

    def __init__(self):
        super().__init__()
        self.rcpt_options_list = []  # aiosmtpd's rcpt_options is flattened
        self.tls = False
        self.tls_version = None
        self.data_fault = None       # (address, reply) for the end of DATA
        self.drop_connection = False


class _RelaySMTP(SMTP):
    """aiosmtpd's SMTP protocol, one instance per connection, that also
    records the session and implements the connection-level faults."""

    # aiosmtpd 1.4 sends "User Name\0" and "Password\0" (with a NUL byte);
    # use the customary challenges instead.
    AuthLoginUsernameChallenge = 'Username:'
    AuthLoginPasswordChallenge = 'Password:'

    def __init__(self, relay: 'Relay', spec: ListenerSpec, handler, **kwargs):
        # Created by the listening server's protocol factory for each
        # accepted connection (for implicit TLS: before the handshake).
        self.relay = relay
        self.spec = spec
        self.record = relay._new_session(spec.name)
        self._in_auth = False         # reading AUTH continuation lines
        self._in_data = False         # reading the message
        self._data_bytes = 0
        self._last_command = None
        super().__init__(handler, **kwargs)

    # -- state that aiosmtpd keeps in its own objects

    def _create_session(self):
        return _RelaySession(self.loop)

    def _create_envelope(self):
        return _RelayEnvelope()

    def tls_state(self) -> Tuple[bool, Optional[str]]:
        """(encrypted?, TLS version) of the connection now.  Works for both
        STARTTLS and implicit TLS (aiosmtpd only knows about the former)."""
        transport = self.transport
        sslobj = transport.get_extra_info('ssl_object') if transport else None
        return (sslobj is not None, sslobj.version() if sslobj else None)

    # -- connection life cycle

    def connection_made(self, transport):
        # Called once per connection, and once more after a STARTTLS
        # handshake (with the TLS transport).
        first = self._original_transport is None
        super().connection_made(transport)
        tls, version = self.tls_state()
        with self.relay._lock:
            if first:
                self.record.peer = transport.get_extra_info('peername')
                self.record.established = True
            self.record.tls, self.record.tls_version = tls, version

    def connection_lost(self, error):
        super().connection_lost(error)
        self.relay._session_closed(self.record)

    async def _handle_client(self):
        if self.spec.greet_421:
            await self.push(GREETING_421)
            self.transport.close()
            return
        await super()._handle_client()

    async def handle_exception(self, error):
        # Errors while handling a command: aiosmtpd would log them with a
        # traceback (and, for a failed STARTTLS handshake, close silently).
        # Record them instead.
        if isinstance(error, TLSSetupException):
            cause = error.__cause__ or error
            with self.relay._lock:
                self.record.tls_error = f'{type(cause).__name__}: {cause}'
        else:
            self.relay._note_error(
                self.record, ''.join(traceback.format_exception(error)))
        return f'500 Error: ({type(error).__name__}) {error}'

    # -- the transcript

    async def push(self, status):
        text = status.decode('utf-8', 'backslashreplace') \
            if isinstance(status, bytes) else status
        self._note('S: ' + text)
        await super().push(status)

    def _client_connected_cb(self, reader, writer):
        super()._client_connected_cb(reader, writer)
        # Everything the client sends is read with reader.readuntil()
        # (readline() calls it too): watch what it returns.
        readuntil = reader.readuntil

        async def observed_readuntil(separator=b'\n'):
            line = await readuntil(separator)
            self._observe(line)
            return line
        reader.readuntil = observed_readuntil

    def _observe(self, line: bytes):
        """Note a line the client sent: a command, an AUTH continuation
        line or a line of the message."""
        if self._in_data:
            if line == b'.\r\n':
                self._note(f'C: [{self._data_bytes} bytes of message data]')
                self._note('C: .')
                self._data_bytes = 0
            else:
                self._data_bytes += len(line)
            return
        text = line.rstrip(b'\r\n').decode('utf-8', 'backslashreplace')
        if self._in_auth:
            self._note('C: ' + text)
            return
        self._last_command = text
        verb = text.split(' ', 1)[0].upper()
        with self.relay._lock:
            self.record.transcript.append('C: ' + text)
            self.record.verbs.append(verb)

    def _note(self, entry: str):
        with self.relay._lock:
            self.record.transcript.append(entry)

    # -- ESMTP parameters

    def _split_params(self, verb: str, keyword: str, arg: Optional[str]):
        """For MAIL (keyword 'FROM:') and RCPT ('TO:') on a listener with
        its own parameters (dsn, or no 8BITMIME): (arg for aiosmtpd, without
        the DSN parameters it does not know; every parameter as recorded,
        in the order sent, or None to leave all to aiosmtpd; a reply that
        refuses the command, or None).  A command aiosmtpd refuses anyway
        is left to it."""
        spec = self.spec
        if (not spec.dsn and spec.eightbitmime) or arg is None:
            return arg, None, None
        rest = self._strip_command_keyword(keyword, arg)
        if rest is None:
            return arg, None, None
        address, params = self._getaddr(rest)
        if not address or params is None:
            return arg, None, None
        kept, recorded, seen = [], [], set()
        for param in params.split():
            key, eq, value = param.partition('=')
            key = key.upper()
            if verb == 'MAIL' and key == 'BODY' and not spec.eightbitmime:
                return arg, None, ('555 5.5.4 BODY not supported: '
                                   '8BITMIME not offered')
            if spec.dsn and key in DSN_PARAMS[verb]:
                if key in seen:
                    return arg, None, f'501 5.5.4 {key} given twice'
                seen.add(key)
                error = dsn_param_error(key, value if eq else None)
                if error:
                    return arg, None, f'501 5.5.4 {error}'
                recorded.append(f'{key}={value}')
            else:
                kept.append(param)
                recorded.append(param.upper())
        head = rest[:len(rest) - len(params)].rstrip()
        return ' '.join([keyword + head] + kept), recorded, None

    @syntax('MAIL FROM: <address>', extended=' [SP <mail-parameters>]')
    async def smtp_MAIL(self, arg):
        arg, recorded, refusal = self._split_params('MAIL', 'FROM:', arg)
        if refusal:
            await self.push(refusal)
            return
        await super().smtp_MAIL(arg)
        if recorded is not None and self.envelope.mail_from:
            self.envelope.mail_options[:] = recorded

    @syntax('RCPT TO: <address>', extended=' [SP <mail-parameters>]')
    async def smtp_RCPT(self, arg):
        arg, recorded, refusal = self._split_params('RCPT', 'TO:', arg)
        if refusal:
            await self.push(refusal)
            return
        before = len(self.envelope.rcpt_tos)
        await super().smtp_RCPT(arg)
        if recorded is not None and len(self.envelope.rcpt_tos) > before:
            self.envelope.rcpt_options_list[-1] = recorded

    # -- commands

    async def smtp_AUTH(self, arg):
        if not self.spec.auth:
            await self.push('502 5.5.1 AUTH not supported')
            return
        self._in_auth = True
        try:
            await super().smtp_AUTH(arg)
        finally:
            self._in_auth = False

    async def smtp_DATA(self, arg):
        if self.envelope.drop_connection and not arg:
            await self._drop_during_data()
            return
        self._in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False

    async def _drop_during_data(self):
        """Say 354, wait for the first bytes of the message, then reset the
        connection without a reply."""
        await self.push('354 End data with <CR><LF>.<CR><LF>')
        try:
            first = await asyncio.wait_for(self._reader.read(1), 10)
        except asyncio.TimeoutError:
            first = b''
        self._note(f'C: [{len(first)} bytes of message data, then the relay '
                   'dropped the connection]')
        self.relay._add_rejection(self, 'DATA', DROP_CONNECTION, None)
        with self.relay._lock:
            self.record.dropped = True
        # SO_LINGER 0: close() sends a TCP RST rather than a FIN.
        sock = self.transport.get_extra_info('socket')
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack('ii', 1, 0))
        self.transport.abort()
        # End this connection's command loop now: otherwise it would go on
        # to parse the rest of the message, already buffered, as commands.
        # (aiosmtpd itself ends it this way when the connection is lost.)
        raise asyncio.CancelledError()


class _Handler:
    """aiosmtpd handler hooks, shared by all the relay's connections.

    Each hook gets the connection's _RelaySMTP as server.  A hook that
    returns MISSING lets aiosmtpd do what it does by default.
    """

    def __init__(self, relay: 'Relay'):
        self.relay = relay

    async def handle_HELO(self, server, session, envelope, hostname):
        with self.relay._lock:
            server.record.helos.append(hostname)
        return MISSING

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        # With this hook, aiosmtpd leaves setting host_name to us.
        session.host_name = hostname
        with self.relay._lock:
            server.record.helos.append(hostname)
        if not server.spec.auth:
            # aiosmtpd always advertises AUTH once TLS is up.
            responses = [r for r in responses
                         if not r[4:].upper().startswith('AUTH')]
        if not server.spec.eightbitmime:
            responses = [r for r in responses if r[4:].upper() != '8BITMIME']
        if server.spec.dsn and (server.spec.tls != 'starttls' or
                                server.tls_state()[0]):
            responses.insert(len(responses) - 1, '250-DSN')
        return responses

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        reply = SENDER_FAULTS.get(local_part(address))
        if reply:
            self.relay._add_rejection(server, 'MAIL', address, reply)
            return reply
        envelope.tls, envelope.tls_version = server.tls_state()
        return MISSING   # aiosmtpd sets mail_from and mail_options

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        local = local_part(address)
        template = RCPT_FAULTS.get(local)
        if template:
            reply = template.format(addr=address)
            self.relay._add_rejection(server, 'RCPT', address, reply)
            return reply
        if local in DATA_FAULTS and envelope.data_fault is None:
            envelope.data_fault = (address, DATA_FAULTS[local])
        if local == DROP_CONNECTION:
            envelope.drop_connection = True
        envelope.rcpt_options_list.append(list(rcpt_options))
        return MISSING   # aiosmtpd appends to rcpt_tos

    async def handle_DATA(self, server, session, envelope):
        if server.spec.data_delay:
            await asyncio.sleep(server.spec.data_delay)
        if envelope.data_fault:
            address, reply = envelope.data_fault
            self.relay._add_rejection(server, 'DATA', address, reply,
                                      data=envelope.original_content)
            return reply
        msg = self.relay._add_message(server, session, envelope)
        return f'250 2.0.0 Ok: queued as {msg.seq:04d}'


# ---- certificates ----------------------------------------------------------

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
[wrongname_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:wrong.example
"""


class _CertMaker:
    """Throwaway CAs and certificates, made with the openssl command
    (EC P-256 keys: each takes milliseconds)."""

    def __init__(self, directory: str):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.cnf = self.path('openssl.cnf')
        with open(self.cnf, 'w') as f:
            f.write(_OPENSSL_CNF)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _openssl(self, *args: str):
        if shutil.which('openssl') is None:
            raise RuntimeError('the openssl command is not installed')
        env = dict(os.environ, OPENSSL_CONF=self.cnf)
        proc = subprocess.run(('openssl',) + args, env=env, cwd=self.dir,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise RuntimeError(f'openssl {" ".join(args)} failed:\n'
                               f'{proc.stderr}')

    _NEWKEY = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
               '-nodes')

    def ca(self, name: str, cn: str) -> Tuple[str, str]:
        """A self-signed CA: returns (cert, key) paths."""
        cert, key = self.path(name + '.pem'), self.path(name + '.key')
        self._openssl('req', '-x509', '-new', '-config', self.cnf,
                      *self._NEWKEY, '-keyout', key, '-out', cert,
                      '-subj', '/CN=' + cn, '-days', '30',
                      '-extensions', 'ca_ext')
        return cert, key

    def leaf(self, name: str, cn: str, extensions: str,
             ca: Tuple[str, str]) -> Tuple[str, str]:
        """A server certificate signed by ca: returns (cert, key) paths."""
        cert, key = self.path(name + '.pem'), self.path(name + '.key')
        csr = self.path(name + '.csr')
        self._openssl('req', '-new', '-config', self.cnf, *self._NEWKEY,
                      '-keyout', key, '-out', csr, '-subj', '/CN=' + cn)
        self._openssl('x509', '-req', '-in', csr, '-CA', ca[0],
                      '-CAkey', ca[1], '-set_serial',
                      str(secrets.randbits(63)), '-days', '30',
                      '-extfile', self.cnf, '-extensions', extensions,
                      '-out', cert)
        os.unlink(csr)
        return cert, key


# ---- the relay -------------------------------------------------------------

class Relay:
    """The test relay: listeners on 127.0.0.1 served by an asyncio loop in a
    background thread, and what they recorded.

    workdir holds the certificates; without one, a temporary directory is
    made (and removed by stop()).  users adds to, or overrides,
    DEFAULT_USERS.  listeners picks which of LISTENERS to open (default:
    all).  on_message, on_reject and on_session_closed are called (in the
    relay's thread) with each new Message, Rejection, closed SessionRecord.
    line_length_limit overrides aiosmtpd's longest accepted line (1001
    bytes with CRLF and a stuffed dot, as RFC 5321 says; a message with a
    longer line is refused with "500 Line too long").  data_size_limit is
    the SIZE the listeners advertise and the most message data they take
    (default: aiosmtpd's 32 MiB; None: no limit and no SIZE); a bigger
    message is refused with "552 Error: Too much mail data".  verbose lets
    aiosmtpd log to stderr (MAILSHIM_RELAY_DEBUG=1 in the environment does
    too).

    Reading relay.messages, .rejected, .sessions, .connections, .errors
    gives snapshots (copies), safe to use from any thread.
    """

    def __init__(self, workdir: Optional[str] = None,
                 users: Optional[Dict[str, str]] = None,
                 listeners: Optional[List[str]] = None, *,
                 on_message: Optional[Callable[[Message], None]] = None,
                 on_reject: Optional[Callable[[Rejection], None]] = None,
                 on_session_closed:
                     Optional[Callable[[SessionRecord], None]] = None,
                 line_length_limit: Optional[int] = None,
                 data_size_limit: Optional[int] = DATA_SIZE_DEFAULT,
                 verbose: bool = False):
        self.host = HOST
        self.users = dict(DEFAULT_USERS)
        self.users.update(users or {})
        names = list(listeners) if listeners else list(LISTENERS)
        unknown = [n for n in names if n not in LISTENERS]
        if unknown:
            raise ValueError(f'unknown listener(s): {", ".join(unknown)}; '
                             f'known: {", ".join(LISTENERS)}')
        self.listener_names = names
        self._workdir = workdir
        self._own_workdir = workdir is None
        self.on_message = on_message
        self.on_reject = on_reject
        self.on_session_closed = on_session_closed
        self.verbose = verbose or bool(os.environ.get('MAILSHIM_RELAY_DEBUG'))
        self.data_size_limit = data_size_limit
        self._smtp_class = _RelaySMTP
        if line_length_limit:
            self._smtp_class = type('_RelaySMTP', (_RelaySMTP,),
                                    {'line_length_limit': line_length_limit})

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._messages: List[Message] = []
        self._rejected: List[Rejection] = []
        self._sessions: List[SessionRecord] = []
        self._connections: Dict[str, int] = {n: 0 for n in names}
        self._errors: List[str] = []
        self._session_counter = 0
        self._message_counter = 0
        self._live = weakref.WeakSet()   # _RelaySMTP instances

        self.ports: Dict[str, int] = {}
        self._servers = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None

    # -- life cycle

    def __enter__(self) -> 'Relay':
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def workdir(self) -> Optional[str]:
        return self._workdir

    def start(self) -> 'Relay':
        """Make the certificates, open the listeners; return once they
        accept connections (relay.ports is then filled in)."""
        if self._thread is not None:
            raise RuntimeError('relay already started')
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix='mailshim-relay-')
        os.makedirs(self._workdir, exist_ok=True)
        self._make_certificates(os.path.join(self._workdir, 'tls'))
        if not self.verbose:
            # aiosmtpd logs a deprecation warning on every successful AUTH,
            # and tracebacks for handshakes the tests make fail on purpose.
            logging.getLogger('mail.log').setLevel(logging.CRITICAL)

        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_exception)
        ready = threading.Event()
        failure = []
        self._thread = threading.Thread(target=self._run,
                                        args=(ready, failure),
                                        name='mailshim-test-relay',
                                        daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError('the relay could not start') from failure[0]
        return self

    def stop(self):
        """Close the listeners and every connection; stop the thread."""
        if self._thread is None:
            return
        loop = self._loop
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop) \
                .result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=10)
            self._thread = None
            if self._own_workdir:
                shutil.rmtree(self._workdir, ignore_errors=True)

    def _run(self, ready: threading.Event, failure: list):
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._open_listeners())
        except BaseException as e:        # reported by start()
            failure.append(e)
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(
                asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    async def _open_listeners(self):
        contexts = {
            'good': self._server_context(self.server_cert, self.server_key),
            'bad': self._server_context(self.bad_server_cert,
                                        self.bad_server_key),
            'wrongname': self._server_context(self.wrongname_cert,
                                              self.wrongname_key),
        }
        handler = _Handler(self)
        for name in self.listener_names:
            spec = LISTENERS[name]
            ctx = contexts.get(spec.cert)
            if spec.tls12_max:
                ctx = self._server_context(self.server_cert,
                                           self.server_key)
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            kwargs = dict(
                hostname=SERVER_NAME, ident=IDENT, loop=self._loop,
                timeout=60, data_size_limit=self.data_size_limit,
                tls_context=ctx if spec.tls == 'starttls' else None,
                auth_required=spec.auth,
                # aiosmtpd does not know an implicit-TLS session is
                # encrypted: for it, AUTH must not need its STARTTLS.
                auth_require_tls=not (spec.auth_before_tls
                                      or spec.tls == 'tls'),
                authenticator=self._authenticate if spec.auth else None)

            def factory(spec=spec, kwargs=kwargs):
                proto = self._smtp_class(self, spec, handler, **kwargs)
                self._live.add(proto)
                return proto

            server = await self._loop.create_server(
                factory, HOST, 0,
                ssl=ctx if spec.tls == 'tls' else None)
            self._servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]

    async def _shutdown(self):
        for server in self._servers:
            server.close()
        for proto in list(self._live):
            transport = proto.transport
            if transport is not None and not transport.is_closing():
                transport.abort()
        for server in self._servers:
            await server.wait_closed()
        await asyncio.sleep(0)    # let connection_lost() callbacks run

    @staticmethod
    def _server_context(cert: str, key: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    def _make_certificates(self, directory: str):
        maker = _CertMaker(directory)
        good = maker.ca('ca', 'mailshim test CA')
        bad = maker.ca('bad-ca', 'mailshim untrusted test CA')
        self.ca_file, self.ca_key = good
        self.bad_ca_file, self.bad_ca_key = bad
        self.server_cert, self.server_key = maker.leaf(
            'server', 'localhost', 'server_ext', good)
        self.bad_server_cert, self.bad_server_key = maker.leaf(
            'bad-server', 'localhost', 'server_ext', bad)
        self.wrongname_cert, self.wrongname_key = maker.leaf(
            'wrongname', 'wrong.example', 'wrongname_ext', good)

    def _loop_exception(self, loop, context):
        message = context.get('message', 'error in the event loop')
        exc = context.get('exception')
        proto = context.get('protocol')
        if isinstance(proto, _RelaySMTP) and isinstance(exc, OSError):
            # A failed implicit-TLS handshake (reported only when asyncio's
            # debug mode is on): the client's doing, not an error here.
            with self._lock:
                proto.record.tls_error = f'{type(exc).__name__}: {exc}'
            return
        if exc is not None:
            message += ': ' + ''.join(traceback.format_exception(exc))
        with self._lock:
            self._errors.append(message)
        if self.verbose:
            loop.default_exception_handler(context)

    # -- called from the relay's thread by the SMTP side

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        """aiosmtpd authenticator: check a LoginPassword against users."""
        login = auth_data.login.decode('utf-8', 'surrogateescape')
        password = auth_data.password.decode('utf-8', 'surrogateescape')
        good = login in self.users and self.users[login] == password
        with self._lock:
            server.record.auth_attempts.append((mechanism, login, good))
            if good:
                server.record.auth_mech = mechanism
                server.record.auth_user = login
        if not good:
            # handled=False: aiosmtpd replies
            # "535 5.7.8 Authentication credentials invalid".
            return AuthResult(success=False, handled=False)
        session.auth_mech, session.auth_user = mechanism, login
        return AuthResult(success=True, auth_data=auth_data)

    def _new_session(self, listener: str) -> SessionRecord:
        with self._lock:
            self._session_counter += 1
            self._connections[listener] = \
                self._connections.get(listener, 0) + 1
            record = SessionRecord(session_id=self._session_counter,
                                   listener=listener, started=time.time())
            self._sessions.append(record)
            self._changed.notify_all()
        return record

    def _session_closed(self, record: SessionRecord):
        with self._lock:
            if record.closed:
                return
            record.closed = True
            record.ended = time.time()
            self._changed.notify_all()
            snapshot = copy.deepcopy(record)
        self._callback(self.on_session_closed, snapshot)

    def _add_message(self, server: _RelaySMTP, session: _RelaySession,
                     envelope: _RelayEnvelope) -> Message:
        mail_from = envelope.mail_from
        with self._lock:
            self._message_counter += 1
            msg = Message(
                seq=self._message_counter,
                listener=server.spec.name,
                session_id=server.record.session_id,
                helo=session.host_name,
                tls=envelope.tls,
                tls_version=envelope.tls_version,
                auth_mech=session.auth_mech,
                auth_user=session.auth_user,
                # aiosmtpd records MAIL FROM:<> as '<>'.
                mail_from='' if mail_from == '<>' else mail_from,
                mail_options=list(envelope.mail_options),
                rcpt_tos=list(envelope.rcpt_tos),
                rcpt_options=[list(o) for o in envelope.rcpt_options_list],
                # With decode_data=False, original_content and content are
                # the same bytes: dot-unstuffed, line ends as sent.
                data=bytes(envelope.original_content),
                received=time.time())
            self._messages.append(msg)
            server.record.messages += 1
            self._changed.notify_all()
        self._callback(self.on_message, copy.deepcopy(msg))
        return msg

    def _add_rejection(self, server: _RelaySMTP, stage: str,
                       address: Optional[str], reply: Optional[str],
                       data: Optional[bytes] = None):
        with self._lock:
            rej = Rejection(listener=server.spec.name,
                            session_id=server.record.session_id,
                            stage=stage, command=server._last_command,
                            address=address, reply=reply,
                            data=None if data is None else bytes(data),
                            received=time.time())
            self._rejected.append(rej)
            server.record.rejections += 1
            self._changed.notify_all()
        self._callback(self.on_reject, copy.deepcopy(rej))

    def _note_error(self, record: SessionRecord, text: str):
        with self._lock:
            record.errors.append(text)
            self._errors.append(f'session {record.session_id}: {text}')
        if self.verbose:
            sys.stderr.write(f'relay: session {record.session_id}: {text}\n')

    def _callback(self, fn, arg):
        if fn is None:
            return
        try:
            fn(arg)
        except Exception:
            with self._lock:
                self._errors.append('callback failed: '
                                    + traceback.format_exc())

    # -- for the tests (any thread)

    @property
    def messages(self) -> List[Message]:
        with self._lock:
            return copy.deepcopy(self._messages)

    @property
    def rejected(self) -> List[Rejection]:
        with self._lock:
            return copy.deepcopy(self._rejected)

    @property
    def sessions(self) -> List[SessionRecord]:
        with self._lock:
            return copy.deepcopy(self._sessions)

    @property
    def connections(self) -> Dict[str, int]:
        """Connections accepted so far, per listener name."""
        with self._lock:
            return dict(self._connections)

    @property
    def errors(self) -> List[str]:
        """Unexpected errors on the relay side (handler exceptions, event
        loop errors): normally empty."""
        with self._lock:
            return list(self._errors)

    def session(self, session_id: int) -> Optional[SessionRecord]:
        with self._lock:
            for record in self._sessions:
                if record.session_id == session_id:
                    return copy.deepcopy(record)
        return None

    def last_session(self, listener: Optional[str] = None) \
            -> Optional[SessionRecord]:
        """The most recent connection (to listener, if given)."""
        with self._lock:
            for record in reversed(self._sessions):
                if listener is None or record.listener == listener:
                    return copy.deepcopy(record)
        return None

    def wait_for(self, n: int, timeout: float = 5) -> List[Message]:
        """Wait until at least n messages were accepted (since the last
        reset()) or timeout seconds passed; return the messages either way
        (check the count)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._messages) >= n, timeout)
            return copy.deepcopy(self._messages)

    def wait_idle(self, timeout: float = 5) -> bool:
        """Wait until every connection is closed (the relay has seen the
        client's QUIT or hang-up).  Returns False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: all(s.closed or not s.established
                            for s in self._sessions), timeout)

    def reset(self):
        """Forget messages, rejections, sessions and connection counts (not
        errors).  Session ids and message numbers keep counting."""
        with self._lock:
            self._messages.clear()
            self._rejected.clear()
            self._sessions.clear()
            self._connections = {n: 0 for n in self.listener_names}


# ---- the command line ------------------------------------------------------

def _write_atomically(path: str, data: bytes):
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="mailshim's SMTP test relay (127.0.0.1 only)")
    parser.add_argument('--dir', required=True,
                        help='where to write relay.json, the certificates '
                             'and the messages')
    parser.add_argument('--listeners',
                        help='comma-separated listener names (default: all '
                             f'of {",".join(LISTENERS)})')
    parser.add_argument('--user', action='append', default=[],
                        metavar='NAME:PASSWORD',
                        help='accept these credentials too (repeatable)')
    parser.add_argument('--max-seconds', type=float, default=600,
                        help='exit after this long whatever happens '
                             '(default: %(default)s)')
    parser.add_argument('--verbose', '-v', action='store_true',
                        help="let aiosmtpd log to stderr")
    args = parser.parse_args(argv)

    users = {}
    for spec in args.user:
        name, sep, password = spec.partition(':')
        if not sep:
            parser.error(f'--user {spec!r}: expected NAME:PASSWORD')
        users[name] = password
    listeners = [n.strip() for n in args.listeners.split(',') if n.strip()] \
        if args.listeners else None
    unknown = [n for n in listeners or [] if n not in LISTENERS]
    if unknown:
        parser.error(f'unknown listener(s) {",".join(unknown)}; known: '
                     f'{",".join(LISTENERS)}')
    directory = os.path.abspath(args.dir)
    os.makedirs(directory, exist_ok=True)
    info_path = os.path.join(directory, 'relay.json')
    if os.path.exists(info_path):     # from an earlier run: not ours
        os.unlink(info_path)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG)
    file_lock = threading.Lock()

    def save_message(msg: Message):
        base = os.path.join(directory, f'msg-{msg.seq:04d}')
        # The .eml first: once the .json exists, both are complete.
        _write_atomically(base + '.eml', msg.data)
        _write_atomically(base + '.json', _json_bytes(msg.to_json()))

    def append_line(name: str, obj: dict):
        with file_lock, open(os.path.join(directory, name), 'a') as f:
            f.write(json.dumps(obj, sort_keys=True) + '\n')

    relay = Relay(
        workdir=directory, users=users, listeners=listeners,
        on_message=save_message,
        on_reject=lambda r: append_line('rejected.jsonl', r.to_json()),
        on_session_closed=lambda s: append_line('sessions.jsonl',
                                                s.to_json()),
        verbose=args.verbose)

    # Until now SIGTERM and SIGINT killed the process the default way (it
    # had nothing to clean up); from now on they make it stop cleanly.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    relay.start()
    try:
        _write_atomically(info_path, _json_bytes({
            'host': relay.host,
            'ports': relay.ports,
            'ca_file': relay.ca_file,
            'bad_ca_file': relay.bad_ca_file,
            'pid': os.getpid(),
        }))
        deadline = time.monotonic() + args.max_seconds
        # Short waits, so that the signal handlers get to run promptly.
        while not stop.wait(0.2):
            if time.monotonic() >= deadline:
                sys.stderr.write(f'relay: exiting after --max-seconds '
                                 f'{args.max_seconds:g}\n')
                break
    finally:
        relay.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
