#!/usr/bin/env python3
"""A parent ("corporate") HTTP proxy for end-to-end tests (python3 stdlib only).

HttpParent(user=None, password=None, hosts=None, mode="normal"):
  CONNECT host:port  -> "200 Connection established", then bytes both ways
  GET http://host/.. -> the request forwarded in origin-form, the response relayed
                        (one request per connection: it answers with Connection: close)
  Basic auth: with user/password set, a request without the right
  Proxy-Authorization gets 407.
  mode "slow": reads the request and never answers; mode "refuse": answers 403;
  mode "eager": the 200 to a CONNECT and the first bytes of the tunnel
  ("SSH-2.0-eager-parent\r\n", as a server that speaks first) leave in one write.
Socks5hParent(hosts=None): a SOCKS5 parent (no auth) that takes names (socks5h).

Names are resolved only through `hosts` ({name: "127.0.0.1"}); IP literals must be
loopback. So a parent never reaches beyond the machine, and never asks real DNS.
.log records each request as it arrives: dicts with method, target and auth
(the Proxy-Authorization value or None), so tests assert what the parent saw.
"""
import base64
import ipaddress
import socket
import struct
import threading


def _pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _splice(a, b):
    t = threading.Thread(target=_pump, args=(b, a), daemon=True)
    t.start()
    _pump(a, b)
    t.join(30)
    for s in (a, b):
        try:
            s.close()
        except OSError:
            pass


class _Server:
    def __init__(self, hosts):
        self.hosts = dict(hosts or {})
        self.log = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def address(self, host):
        host = self.hosts.get(host.lower(), host)
        addr = ipaddress.ip_address(host.strip("[]"))  # ValueError for an unknown name
        if not addr.is_loopback:
            raise ValueError("not loopback")
        return str(addr)

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            conn.settimeout(30)
            self.handle(conn)
        except (OSError, ValueError):
            try:
                conn.close()
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class HttpParent(_Server):
    def __init__(self, user=None, password=None, hosts=None, mode="normal"):
        self.want = None
        if user is not None:
            self.want = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        self.mode = mode
        super().__init__(hosts)

    def handle(self, conn):
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(1)  # one byte at a time: nothing past the head is taken
            if not data:
                return conn.close()
            head += data
            if len(head) > 65536:
                return conn.close()
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [l.split(":", 1) for l in lines[1:] if l]
        auth = next((v.strip() for k, v in headers if k.strip().lower() == "proxy-authorization"), None)
        self.log.append({"method": method, "target": target, "auth": auth})
        if self.mode == "slow":
            conn.recv(1)  # until sluice gives up
            return conn.close()
        if self.mode == "refuse":
            conn.sendall(b"HTTP/1.1 403 Forbidden by corporate policy\r\nContent-Length: 0\r\n\r\n")
            return conn.close()
        if self.want is not None and auth != self.want:
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"parent\"\r\nContent-Length: 0\r\n\r\n")
            return conn.close()
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            try:
                up = socket.create_connection((self.address(host), int(port)), timeout=10)
            except (OSError, ValueError):
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return conn.close()
            greeting = b"SSH-2.0-eager-parent\r\n" if self.mode == "eager" else b""
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n" + greeting)
            return _splice(conn, up)
        if not target.startswith("http://"):
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return conn.close()
        rest = target[len("http://"):]
        authority, _, path = rest.partition("/")
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
        up = socket.create_connection((self.address(host), int(port)), timeout=10)
        kept = [(k, v) for k, v in headers
                if k.strip().lower() not in ("proxy-authorization", "connection", "proxy-connection")]
        out = "%s /%s HTTP/1.1\r\n" % (method, path) + "".join("%s:%s\r\n" % (k, v) for k, v in kept)
        up.sendall((out + "Connection: close\r\n\r\n").encode("latin-1"))
        _splice(conn, up)


class Socks5hParent(_Server):
    def handle(self, conn):
        def exact(n):
            b = b""
            while len(b) < n:
                d = conn.recv(n - len(b))
                if not d:
                    raise OSError("eof")
                b += d
            return b
        ver, n = exact(2)
        exact(n)
        conn.sendall(b"\x05\x00")
        _, cmd, _, atyp = exact(4)
        if atyp == 3:
            host = exact(exact(1)[0]).decode()
        elif atyp == 1:
            host = socket.inet_ntop(socket.AF_INET, exact(4))
        else:
            host = socket.inet_ntop(socket.AF_INET6, exact(16))
        port = struct.unpack(">H", exact(2))[0]
        self.log.append({"method": "SOCKS5", "target": "%s:%d" % (host, port), "auth": None})
        try:
            up = socket.create_connection((self.address(host), port), timeout=10)
        except (OSError, ValueError):
            conn.sendall(b"\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00")
            return conn.close()
        conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
        _splice(conn, up)
