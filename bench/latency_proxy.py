#!/usr/bin/python3
"""A loopback TCP proxy that adds a fixed delay each way and counts round
trips, for mailshim's benchmarks.

    latency_proxy.py --listen PORT --to PORT [--delay-ms 10]

Listens on 127.0.0.1:PORT (0: any free port) and forwards every
connection to 127.0.0.1:--to.  Each chunk of bytes, and the end of the
stream, is passed on --delay-ms after it arrived, in order, in both
directions: the path behaves like a link with that one-way latency (the
bandwidth is loopback's).

Round trips are counted per connection at the proxy: a round trip is a
flight of bytes from the client (however many chunks) that begins after
the server last spoke, i.e. each time the client starts talking again
after hearing the server.  For SMTP that is one per command the client
had to wait for (greeting, EHLO, STARTTLS, each TLS handshake flight, AUTH,
MAIL, RCPT, DATA, the message, QUIT), and fewer when it pipelines.

Prints "listening PORT" once ready, then one line per closed connection:
    conn N rounds=R up=BYTES down=BYTES ms=DURATION
(flushed at once), and runs until SIGTERM or SIGINT.  Only 127.0.0.1.
"""

import argparse
import asyncio
import collections
import signal
import sys
import time

HOST = '127.0.0.1'


class Conn:
    count = 0

    def __init__(self):
        Conn.count += 1
        self.n = Conn.count
        self.rounds = 0
        self.last = 'server'   # the greeting is not a round trip
        self.up = self.down = 0
        self.t0 = time.monotonic()


async def pump(reader, writer, delay, conn, upward):
    """Copy reader to writer, each chunk delay seconds after it came."""
    queue = collections.deque()
    ready = asyncio.Event()

    async def send():
        while True:
            while not queue:
                ready.clear()
                await ready.wait()
            due, data = queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    if writer.can_write_eof():
                        writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                return

    sender = asyncio.ensure_future(send())
    try:
        while True:
            try:
                data = await reader.read(65536)
            except OSError:
                data = b''
            now = time.monotonic()
            if data:
                if upward:
                    conn.up += len(data)
                    if conn.last == 'server':
                        conn.rounds += 1
                    conn.last = 'client'
                else:
                    conn.down += len(data)
                    conn.last = 'server'
            queue.append((now + delay, data or None))
            ready.set()
            if not data:
                break
        await sender
    finally:
        sender.cancel()


async def handle(client_r, client_w, target, delay):
    conn = Conn()
    try:
        server_r, server_w = await asyncio.open_connection(HOST, target)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pump(client_r, server_w, delay, conn, True),
                         pump(server_r, client_w, delay, conn, False))
    for w in (client_w, server_w):
        w.close()
    ms = (time.monotonic() - conn.t0) * 1000
    print('conn %d rounds=%d up=%d down=%d ms=%.1f'
          % (conn.n, conn.rounds, conn.up, conn.down, ms), flush=True)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--listen', type=int, default=0)
    ap.add_argument('--to', type=int, required=True)
    ap.add_argument('--delay-ms', type=float, default=10.0)
    a = ap.parse_args()
    delay = a.delay_ms / 1000

    server = await asyncio.start_server(
        lambda r, w: handle(r, w, a.to, delay), HOST, a.listen, backlog=1024)
    print('listening %d' % server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except BrokenPipeError:
        sys.exit(0)
