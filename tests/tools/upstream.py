#!/usr/bin/env python3
"""Loopback origin servers for end-to-end tests (python3 stdlib only).

HttpUpstream: a threaded HTTP/1.1 keep-alive origin.
  /hello                      200 "hello\\n"
  /big?n=BYTES                Content-Length body of n deterministic bytes (pattern())
  /chunked?n=BYTES&chunk=N    the same bytes, Transfer-Encoding: chunked, chunks of N
  /echo                       JSON: method, target (exactly as received), headers
                              (ordered [name, value] list), body_len, body_sha256;
                              request bodies may be Content-Length or chunked
  /slow?ms=MS&n=BYTES         like /big, the response sent after MS milliseconds
  /close                      "bye\\n" with Connection: close, then the server closes
  /upgrade                    101 to the "echo" protocol, then echoes every byte
  /http10                     an HTTP/1.0 response delimited by closing the connection
  anything else               404
A request with "Expect: 100-continue" and a body gets "100 Continue" first, like real
origins. Every request is recorded in .requests as soon as its head is read (method, target,
version, headers, conn = the upstream connection number; body_len once read), so
tests can assert what the upstream saw, or that it saw nothing.

EchoServer: raw TCP echo with half-close: after the client's FIN it sends what is
left and closes its side. .received holds every byte it got.
SinkServer: reads until the client's FIN, then answers "LEN SHA256\\n" and closes.
SourceServer: sends pattern(n) for n given as "n\\n" by the client, then half-closes and
records what the client still sends until its FIN (reverse half-close).

CLI: upstream.py [--listen 127.0.0.1:0] [--mode http|echo|sink|source]
prints the port on the first line of stdout, then serves until killed.
"""
import argparse
import functools
import hashlib
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse

_BLOCK_SIZE = 65536
# A value that depends on the offset (mod 65536, and differently mod 256 for each 256-byte
# stretch), so a dropped, duplicated or moved byte changes the hash.
_BLOCK = bytes((i * 7 + (i >> 8) * 13) & 0xFF for i in range(_BLOCK_SIZE))


def pattern(n, offset=0):
    """n deterministic bytes starting at stream offset `offset`."""
    out = bytearray()
    pos = offset
    while len(out) < n:
        start = pos % _BLOCK_SIZE
        take = min(_BLOCK_SIZE - start, n - len(out))
        out += _BLOCK[start:start + take]
        pos += take
    return bytes(out)


def pattern_pieces(n, piece=1 << 18):
    """pattern(n) as a sequence of pieces (for streaming without holding n bytes)."""
    off = 0
    while off < n:
        take = min(piece, n - off)
        yield pattern(take, off)
        off += take


@functools.lru_cache(maxsize=64)
def pattern_sha256(n):
    h = hashlib.sha256()
    for p in pattern_pieces(n):
        h.update(p)
    return h.hexdigest()


class _Conn:
    """Buffered reads from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.consumed = 0  # bytes handed out so far (wire bytes of heads and bodies)

    def _fill(self):
        data = self.sock.recv(_BLOCK_SIZE)
        if not data:
            return False
        self.buf += data
        return True

    def read_until(self, marker, limit=1 << 20):
        """Bytes up to and including marker; None on EOF before any byte of it."""
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise ValueError("line or head too large")
            if not self._fill():
                if self.buf:
                    raise ValueError("EOF inside a head")
                return None
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        self.consumed += len(out)
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ValueError("short body: %d of %d" % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        self.consumed += len(out)
        return out


class _Server:
    """Threaded accept loop on a loopback socket; one thread per connection."""

    def __init__(self, host="127.0.0.1", port=0):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._lock = threading.Lock()
        self._open = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
                self._open.add(conn)
            threading.Thread(target=self._run, args=(conn, number), daemon=True).start()

    def _run(self, conn, number):
        try:
            with conn:
                conn.settimeout(60)
                self.handle(conn, number)
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._open.discard(conn)

    def handle(self, sock, number):
        raise NotImplementedError

    def close(self):
        """Stops accepting and closes every open connection."""
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._open)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HttpUpstream(_Server):
    def __init__(self, host="127.0.0.1", port=0):
        self.requests = []
        super().__init__(host, port)

    def seen(self, target_prefix):
        """Recorded requests whose target starts with target_prefix."""
        with self._lock:
            return [r for r in self.requests if r["target"].startswith(target_prefix)]

    def handle(self, sock, number):
        conn = _Conn(sock)
        while True:
            start = conn.consumed
            head = conn.read_until(b"\r\n\r\n", limit=1 << 20)
            if head is None:
                return
            lines = head[:-4].decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            method, target, version = parts
            headers = []
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers.append([k, v.strip(" \t")])
            hmap = {k.lower(): v for k, v in headers}
            record = {"method": method, "target": target, "version": version, "headers": headers,
                      "conn": number, "body_len": None, "head_len": len(head)}
            with self._lock:
                self.requests.append(record)
            h = hashlib.sha256()
            body_len = 0
            has_body = "chunked" in hmap.get("transfer-encoding", "").lower() or \
                int(hmap.get("content-length", "0") or "0") > 0
            if has_body and hmap.get("expect", "").lower() == "100-continue":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                record["sent_100"] = True
            if "chunked" in hmap.get("transfer-encoding", "").lower():
                while True:
                    size_line = conn.read_until(b"\r\n")
                    if size_line is None:
                        raise ValueError("EOF in chunked body")
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while conn.read_until(b"\r\n") not in (b"\r\n", None):
                            pass  # trailers
                        break
                    piece = conn.read_exact(size)
                    h.update(piece)
                    body_len += size
                    if conn.read_exact(2) != b"\r\n":
                        raise ValueError("bad chunk end")
            elif "content-length" in hmap:
                left = int(hmap["content-length"])
                while left:
                    piece = conn.read_exact(min(left, 1 << 20))
                    h.update(piece)
                    body_len += len(piece)
                    left -= len(piece)
            record["body_len"] = body_len
            record["body_sha256"] = h.hexdigest()
            record["wire_len"] = conn.consumed - start  # head + body as framed on the wire
            keep = self.respond(sock, method, target, headers, body_len, h.hexdigest())
            if not keep or version == "HTTP/1.0" or "close" in hmap.get("connection", "").lower():
                return

    def respond(self, sock, method, target, headers, body_len, body_sha256):
        url = urllib.parse.urlsplit(target)
        q = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        send_body = method != "HEAD"
        if path == "/hello":
            payload = b"hello\n"
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(payload)
                         + (payload if send_body else b""))
            return True
        if path in ("/big", "/slow"):
            if path == "/slow":
                time.sleep(min(int(q.get("ms", "200")), 5000) / 1000)
            n = int(q.get("n", "1000" if path == "/big" else "6"))
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % n)
            if send_body:
                for piece in pattern_pieces(n):
                    sock.sendall(piece)
            return True
        if path == "/chunked":
            n, chunk = int(q.get("n", "1000")), max(1, int(q.get("chunk", "4096")))
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            if send_body:
                out = bytearray()
                for i in range(0, n, chunk):
                    piece = pattern(min(chunk, n - i), i)
                    out += b"%x\r\n" % len(piece) + piece + b"\r\n"
                    if len(out) >= 1 << 18:
                        sock.sendall(out)
                        out = bytearray()
                sock.sendall(bytes(out) + b"0\r\n\r\n")
            return True
        if path == "/echo":
            payload = json.dumps({
                "method": method, "target": target, "headers": headers,
                "body_len": body_len, "body_sha256": body_sha256,
            }).encode()
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
                         + payload)
            return True
        if path == "/nobody":
            # 204/304 with a Content-Length and, as RFC 9110 says, no body: the length is not framing.
            status = int(q.get("status", "304"))
            sock.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, int(q.get("n", "10"))))
            return True
        if path == "/close":
            sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbye\n")
            return False
        if path == "/upgrade":
            # 101 to the "echo" protocol, then every byte back until the client's EOF.
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
            while True:
                data = sock.recv(_BLOCK_SIZE)
                if not data:
                    return False
                sock.sendall(data)
        if path == "/reset":
            # Part of a body, then a TCP reset (SO_LINGER 0): framing=close|length|chunked.
            framing = q.get("framing", "close")
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            if framing == "length":
                head += b"Content-Length: 1000\r\n"
            elif framing == "chunked":
                head += b"Transfer-Encoding: chunked\r\n"
            else:
                head += b"Connection: close\r\n"
            piece = b"partial\n"
            sock.sendall(head + b"\r\n" + (b"%x\r\n%s\r\n" % (len(piece), piece) if framing == "chunked" else piece))
            time.sleep(0.3)  # let the proxy read and relay what was sent before the reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if path == "/http10":
            sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close\n")
            return False
        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return True


class HttpsUpstream(HttpUpstream):
    """HttpUpstream behind TLS (ssl module): `cert`/`key` PEM files, ALPN http/1.1. A handshake
    that fails (the client refused the certificate) is counted in .tls_failures."""

    def __init__(self, cert, key, host="127.0.0.1", port=0):
        import ssl
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.tls_failures = 0
        self.sni = []
        self.ctx.sni_callback = lambda s, name, c: self.sni.append(name) and None
        super().__init__(host, port)

    def handle(self, sock, number):
        sock.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(sock, server_side=True)
        except OSError:
            with self._lock:
                self.tls_failures += 1
            return
        with tls:
            super().handle(tls, number)


class EchoServer(_Server):
    """Echoes bytes; on the client's FIN, sends what remains and closes (half-close)."""

    def __init__(self, host="127.0.0.1", port=0):
        self.received = bytearray()
        super().__init__(host, port)

    def handle(self, sock, number):
        while True:
            data = sock.recv(_BLOCK_SIZE)
            if not data:
                sock.shutdown(socket.SHUT_WR)
                return
            with self._lock:
                self.received += data
            sock.sendall(data)


class SinkServer(_Server):
    """Reads to the client's FIN, then replies "LEN SHA256\\n" and closes."""

    def __init__(self, host="127.0.0.1", port=0):
        self.results = []
        super().__init__(host, port)

    def handle(self, sock, number):
        h = hashlib.sha256()
        n = 0
        while True:
            data = sock.recv(1 << 18)
            if not data:
                break
            h.update(data)
            n += len(data)
        with self._lock:
            self.results.append((n, h.hexdigest()))
        sock.sendall(b"%d %s\n" % (n, h.hexdigest().encode()))
        sock.shutdown(socket.SHUT_WR)


class SourceServer(_Server):
    """Reads one line "N\\n", sends pattern(N) and half-closes (FIN); then keeps reading
    until the client's FIN and records what came after the line in .trailing."""

    def __init__(self, host="127.0.0.1", port=0):
        self.trailing = []
        super().__init__(host, port)

    def handle(self, sock, number):
        conn = _Conn(sock)
        line = conn.read_until(b"\n", limit=64)
        if line is None:
            return
        for piece in pattern_pieces(int(line)):
            sock.sendall(piece)
        sock.shutdown(socket.SHUT_WR)
        rest = conn.buf
        while True:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        with self._lock:
            self.trailing.append(rest)


MODES = {"http": HttpUpstream, "echo": EchoServer, "sink": SinkServer, "source": SourceServer}


def main(argv=None):
    ap = argparse.ArgumentParser(description="loopback origin for sluice tests")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT on loopback (port 0: ephemeral)")
    ap.add_argument("--mode", choices=sorted(MODES), default="http")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]")
    if host not in ("127.0.0.1", "::1") and not host.startswith("127."):
        ap.error("--listen must be a loopback address")
    server = MODES[args.mode](host, int(port))
    sys.stdout.write("%d\n" % server.port)
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    server.close()


if __name__ == "__main__":
    main()
