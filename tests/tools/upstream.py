#!/usr/bin/env python3
"""Loopback origin servers for end-to-end tests (stdlib only).

HttpUpstream: a threaded HTTP/1.1 keep-alive origin.
  /hello                      200 "hello\\n"
  /big?n=BYTES                Content-Length body of deterministic bytes (pattern())
  /chunked?n=BYTES&chunk=N    the same bytes, Transfer-Encoding: chunked
  /echo                       JSON: method, target, headers, body length and sha256
  /close                      "bye\\n" with Connection: close
  /http10                     an HTTP/1.0 response delimited by closing the connection
Every request is recorded in .requests (target, headers) so tests can assert
what the upstream saw, or that it saw nothing.

EchoServer: raw TCP echo with half-close (after the client's FIN it closes its side).

CLI: upstream.py [--listen 127.0.0.1:0] prints the port on the first line of stdout.
"""
import argparse
import hashlib
import json
import socket
import threading
import urllib.parse


def pattern(n, offset=0):
    """Deterministic bytes whose value depends on the offset, so a lost or moved byte shows."""
    block = bytes((i * 7 + (i >> 8) * 13) & 0xFF for i in range(65536))
    out = bytearray()
    pos = offset
    while len(out) < n:
        start = pos % 65536
        take = min(65536 - start, n - len(out))
        out += block[start : start + take]
        pos += take
    return bytes(out)


def pattern_sha256(n):
    return hashlib.sha256(pattern(n)).hexdigest()


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read_until(self, marker, limit=1 << 20):
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise ValueError("head too large")
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ValueError("short body")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class _Server:
    def __init__(self, host="127.0.0.1", port=0):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            with conn:
                self.handle(conn)
        except (OSError, ValueError):
            pass

    def close(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass


class HttpUpstream(_Server):
    def __init__(self, host="127.0.0.1", port=0):
        self.requests = []
        super().__init__(host, port)

    def handle(self, sock):
        conn = _Conn(sock)
        while True:
            head = conn.read_until(b"\r\n\r\n")
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = []
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(":")
                    headers.append([k, v.strip()])
            hmap = {k.lower(): v for k, v in headers}
            body = b""
            if hmap.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size_line = conn.read_until(b"\r\n")
                    size = int(size_line.split(b";")[0], 16)
                    if size == 0:
                        conn.read_until(b"\r\n")
                        break
                    body += conn.read_exact(size)
                    conn.read_exact(2)
            elif "content-length" in hmap:
                body = conn.read_exact(int(hmap["content-length"]))
            with self._lock:
                self.requests.append({"method": method, "target": target, "version": version, "headers": headers})
            keep = self.respond(sock, method, target, headers, body)
            if not keep or version == "HTTP/1.0" or hmap.get("connection", "").lower() == "close":
                return

    def respond(self, sock, method, target, headers, body):
        url = urllib.parse.urlsplit(target)
        q = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        send_body = method != "HEAD"
        if path == "/hello":
            payload = b"hello\n"
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(payload)
                         + (payload if send_body else b""))
            return True
        if path == "/big":
            n = int(q.get("n", "1000"))
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            if send_body:
                sock.sendall(pattern(n))
            return True
        if path == "/chunked":
            n, chunk = int(q.get("n", "1000")), int(q.get("chunk", "4096"))
            sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            data = pattern(n)
            for i in range(0, n, chunk):
                piece = data[i : i + chunk]
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
            return True
        if path == "/echo":
            payload = json.dumps({
                "method": method, "target": target, "headers": headers,
                "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
            }).encode()
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
                         + payload)
            return True
        if path == "/close":
            sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbye\n")
            return False
        if path == "/http10":
            sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close\n")
            return False
        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return True


class EchoServer(_Server):
    """Echoes bytes; on the client's FIN, sends what remains and closes (half-close)."""

    def __init__(self, host="127.0.0.1", port=0):
        self.received = bytearray()
        super().__init__(host, port)

    def handle(self, sock):
        while True:
            data = sock.recv(65536)
            if not data:
                sock.shutdown(socket.SHUT_WR)
                return
            with self._lock:
                self.received += data
            sock.sendall(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = HttpUpstream(host.strip("[]"), int(port))
    print(server.port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
