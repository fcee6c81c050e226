#!/usr/bin/env python3
"""A tiny authoritative DNS server for tests, on loopback only (python3 stdlib).

    dns_server.py [--listen 127.0.0.1:0] [--ttl SECONDS] [--record NAME=ADDR[,ADDR...]]...
                  [--delay NAME=MS]... [--servfail NAME]... [--nodata NAME]...
                  [--port-file PATH] [--query-log PATH]

Serves UDP and TCP on one port (port 0: a port free for both). After binding it
prints the port as the first line of stdout and writes it to --port-file.

Answers: A gets the IPv4 addresses of NAME, AAAA the IPv6 ones, any other type
NODATA. A known name without an address of the asked type: NOERROR, empty answer
(NODATA). Unknown name: NXDOMAIN. `--record NAME=` (no address) or `--servfail NAME`:
SERVFAIL. `--nodata NAME`: known name with no address at all. Names are compared
case-insensitively, trailing dot ignored; --record may repeat for one name.
`--delay NAME=MS` holds that name's answers back. `--query-log PATH` appends one
line per query, "NAME TYPE" (name lower-cased, no trailing dot; TYPE is A, AAAA or
TYPE<n>). UDP answers over 512 bytes are truncated (TC) so clients retry on TCP.
Malformed packets are ignored. SIGTERM/SIGINT end it cleanly.
"""

import argparse
import ipaddress
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1
RCODE_NOERROR = 0
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
UDP_LIMIT = 512
TCP_IDLE_SECONDS = 10
MAX_WORKERS = 256  # concurrent answering threads; more queries than this wait for a slot


def norm(name):
    name = name.strip().lower()
    return name[:-1] if name.endswith(".") else name


class Zone:
    def __init__(self, ttl):
        self.ttl = ttl
        self.v4 = {}  # name -> [bytes]
        self.v6 = {}
        self.known = set()
        self.servfail = set()
        self.delay_ms = {}

    def add_record(self, spec):
        name, sep, addrs = spec.partition("=")
        if not sep or not norm(name):
            raise ValueError("--record wants NAME=ADDR[,ADDR...], got %r" % spec)
        name = norm(name)
        self.known.add(name)
        addrs = [a.strip() for a in addrs.split(",") if a.strip()]
        if not addrs:
            self.servfail.add(name)
            return
        for text in addrs:
            ip = ipaddress.ip_address(text)  # raises ValueError on junk
            table = self.v4 if ip.version == 4 else self.v6
            table.setdefault(name, []).append(ip.packed)

    def add_delay(self, spec):
        name, sep, ms = spec.partition("=")
        if not sep or not norm(name):
            raise ValueError("--delay wants NAME=MS, got %r" % spec)
        self.delay_ms[norm(name)] = max(0, int(ms))

    def answer(self, name, qtype):
        """Returns (rcode, [rdata bytes])."""
        if name in self.servfail:
            return RCODE_SERVFAIL, []
        if name not in self.known:
            return RCODE_NXDOMAIN, []
        if qtype == TYPE_A:
            return RCODE_NOERROR, self.v4.get(name, [])
        if qtype == TYPE_AAAA:
            return RCODE_NOERROR, self.v6.get(name, [])
        return RCODE_NOERROR, []


def parse_query(packet):
    """Returns (id, flags, qname, qtype, qclass, question bytes) or None if malformed."""
    if len(packet) < 12:
        return None
    qid, flags, qdcount, _an, _ns, _ar = struct.unpack("!HHHHHH", packet[:12])
    if flags & 0x8000 or qdcount != 1:  # a response, or not exactly one question
        return None
    pos = 12
    labels = []
    total = 0
    while True:
        if pos >= len(packet):
            return None
        n = packet[pos]
        pos += 1
        if n == 0:
            break
        if n > 63 or pos + n > len(packet):  # compression pointers have no place in a question
            return None
        total += n + 1
        if total > 255:
            return None
        try:
            labels.append(packet[pos:pos + n].decode("ascii"))
        except UnicodeDecodeError:
            return None
        pos += n
    if pos + 4 > len(packet):
        return None
    qtype, qclass = struct.unpack("!HH", packet[pos:pos + 4])
    question = packet[12:pos + 4]
    return qid, flags, norm(".".join(labels)), qtype, qclass, question


def build_response(zone, query, over_udp):
    qid, qflags, name, qtype, qclass, question = query
    opcode = (qflags >> 11) & 0xF
    rd = qflags & 0x0100
    if opcode != 0 or qclass != CLASS_IN:
        rcode, rdatas = 4, []  # NOTIMP
    else:
        rcode, rdatas = zone.answer(name, qtype)
    answers = b""
    for rdata in rdatas:
        rtype = TYPE_A if len(rdata) == 4 else TYPE_AAAA
        answers += struct.pack("!HHHIH", 0xC00C, rtype, CLASS_IN, zone.ttl, len(rdata)) + rdata
    flags = 0x8000 | (opcode << 11) | 0x0400 | rd | 0x0080 | rcode  # QR, AA, RD echoed, RA
    ancount = len(rdatas)
    if over_udp and 12 + len(question) + len(answers) > UDP_LIMIT:
        flags |= 0x0200  # TC: the client asks again over TCP
        answers, ancount = b"", 0
    return struct.pack("!HHHHHH", qid, flags, 1, ancount, 0, 0) + question + answers


def type_name(qtype):
    return {TYPE_A: "A", TYPE_AAAA: "AAAA"}.get(qtype, "TYPE%d" % qtype)


class Server:
    def __init__(self, zone, host, port, query_log):
        self.zone = zone
        self.stopping = threading.Event()
        self.slots = threading.BoundedSemaphore(MAX_WORKERS)
        self.log_lock = threading.Lock()
        self.query_log = query_log
        self.udp, self.tcp = self.bind(host, port)
        self.port = self.udp.getsockname()[1]

    @staticmethod
    def bind(host, port):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        attempts = 1 if port else 50
        last_error = None
        for _ in range(attempts):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            tcp = socket.socket(family, socket.SOCK_STREAM)
            try:
                udp.bind((host, port))
                chosen = udp.getsockname()[1]
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((host, chosen))
                tcp.listen(64)
                return udp, tcp
            except OSError as e:
                last_error = e
                udp.close()
                tcp.close()
        raise OSError("cannot bind UDP and TCP on one port of %s: %s" % (host, last_error))

    def log(self, name, qtype):
        if not self.query_log:
            return
        with self.log_lock:
            with open(self.query_log, "a", encoding="ascii") as f:
                f.write("%s %s\n" % (name or ".", type_name(qtype)))
                f.flush()

    def respond(self, packet, over_udp):
        """Returns the answer bytes, or None for a packet to ignore. May sleep (--delay)."""
        query = parse_query(packet)
        if query is None:
            return None
        name, qtype = query[2], query[3]
        self.log(name, qtype)
        delay = self.zone.delay_ms.get(name, 0)
        if delay:
            self.stopping.wait(delay / 1000.0)
            if self.stopping.is_set():
                return None
        return build_response(self.zone, query, over_udp)

    def spawn(self, target, *args):
        if not self.slots.acquire(timeout=5):
            return  # overloaded: drop it, as a real server would

        def run():
            try:
                target(*args)
            except Exception:  # a test server never dies of one bad client
                pass
            finally:
                self.slots.release()

        threading.Thread(target=run, daemon=True).start()

    def serve_udp(self, packet, peer):
        answer = self.respond(packet, over_udp=True)
        if answer is not None and not self.stopping.is_set():
            self.udp.sendto(answer, peer)

    def serve_tcp(self, conn):
        with conn:
            conn.settimeout(TCP_IDLE_SECONDS)
            buf = b""
            for _ in range(1000):  # messages per connection
                while len(buf) < 2:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                (length,) = struct.unpack("!H", buf[:2])
                while len(buf) < 2 + length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                packet, buf = buf[2:2 + length], buf[2 + length:]
                answer = self.respond(packet, over_udp=False)
                if answer is None:
                    continue
                conn.sendall(struct.pack("!H", len(answer)) + answer)

    def run(self):
        while not self.stopping.is_set():
            try:
                ready, _, _ = select.select([self.udp, self.tcp], [], [], 0.2)
            except InterruptedError:
                continue
            for sock in ready:
                if sock is self.udp:
                    try:
                        packet, peer = self.udp.recvfrom(65535)
                    except OSError:
                        continue
                    self.spawn(self.serve_udp, packet, peer)
                else:
                    try:
                        conn, _ = self.tcp.accept()
                    except OSError:
                        continue
                    self.spawn(self.serve_tcp, conn)
        self.udp.close()
        self.tcp.close()


def parse_listen(text):
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError("--listen wants [v6]:PORT, got %r" % text)
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError("--listen wants HOST:PORT, got %r" % text)
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError("--listen must be a loopback address (127.0.0.0/8 or ::1), got %r" % host)
    return host, int(port)


def main(argv):
    p = argparse.ArgumentParser(description="Tiny authoritative test DNS server (loopback only).")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--ttl", type=int, default=60)
    p.add_argument("--record", action="append", default=[], metavar="NAME=ADDR[,ADDR...]")
    p.add_argument("--delay", action="append", default=[], metavar="NAME=MS")
    p.add_argument("--servfail", action="append", default=[], metavar="NAME")
    p.add_argument("--nodata", action="append", default=[], metavar="NAME")
    p.add_argument("--port-file")
    p.add_argument("--query-log")
    args = p.parse_args(argv)

    try:
        host, port = parse_listen(args.listen)
        zone = Zone(max(0, args.ttl))
        for spec in args.record:
            zone.add_record(spec)
        for spec in args.delay:
            zone.add_delay(spec)
        for name in args.servfail:
            zone.known.add(norm(name))
            zone.servfail.add(norm(name))
        for name in args.nodata:
            zone.known.add(norm(name))
        server = Server(zone, host, port, args.query_log)
    except (ValueError, OSError) as e:
        print("dns_server: %s" % e, file=sys.stderr)
        return 2

    def stop(_signum, _frame):
        server.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.port_file:
        tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % server.port)
        os.replace(tmp, args.port_file)  # readers never see a half-written file
    sys.stdout.write("%d\n" % server.port)
    sys.stdout.flush()
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
