"""Helpers for end-to-end tests: start the real sluice binary against loopback
servers of our own (HTTP origin, TCP echo, DNS), talk to it with curl and with
raw sockets, read its decision log. Everything listens on 127.0.0.1 only."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")
sys.path.insert(0, TOOLS)

import upstream  # noqa: E402

SLUICE = os.environ.get("SLUICE_BIN", os.path.join(HERE, "..", "..", "build", "sluice"))
DNS_SERVER = os.path.join(TOOLS, "dns_server.py")


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class Dns:
    """The test's own DNS server on loopback; names map to addresses."""

    def __init__(self, records, ttl=60, extra=()):
        args = [sys.executable, DNS_SERVER, "--listen", "127.0.0.1:0", "--ttl", str(ttl)]
        for name, addrs in records.items():
            args += ["--record", "%s=%s" % (name, ",".join(addrs))]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)


class Sluice:
    """A running `sluice serve` with a YAML config written into a temp dir."""

    def __init__(self, config_text=None, args=None, workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="sluice-e2e-")
        self.config_path = os.path.join(self.dir, "sluice.yaml")
        self.log_path = os.path.join(self.dir, "decisions.jsonl")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        if config_text is not None:
            self.write_config(config_text)
            argv = [SLUICE, "serve", "--config", self.config_path, "--workers", "2"]
        else:
            argv = [SLUICE, "serve"] + list(args)
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.stderr)
        wait_for(lambda: "sluice: ready" in self.read_stderr() or self.proc.poll() is not None,
                 timeout=20, what="sluice ready")
        if self.proc.poll() is not None:
            raise AssertionError("sluice exited %s: %s" % (self.proc.returncode, self.read_stderr()))
        self.listeners = {}
        for line in self.read_stderr().splitlines():
            if line.startswith("sluice: listening "):
                _, _, name, _, addr = line.split(" ", 4)
                self.listeners[name] = addr

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text.replace("{dir}", self.dir).replace("{log}", self.log_path))

    def read_stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def tcp_port(self, name):
        addr = self.listeners[name]
        assert addr.startswith("tcp:"), addr
        return int(addr.rsplit(":", 1)[1])

    def unix_path(self, name):
        addr = self.listeners[name]
        assert addr.startswith("unix:"), addr
        return addr[5:]

    def log(self):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def wait_log(self, pred, what="log line", timeout=10):
        return wait_for(lambda: [e for e in self.log() if pred(e)], timeout=timeout, what=what)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return self.proc.returncode


def curl(proxy_port, url, tunnel=False, extra=(), timeout=20):
    """Runs curl through the proxy; returns (status, headers dict lower-case, body bytes)."""
    with tempfile.TemporaryDirectory() as d:
        body, heads = os.path.join(d, "body"), os.path.join(d, "heads")
        args = ["curl", "-sS", "--noproxy", "", "-x", "http://127.0.0.1:%d" % proxy_port,
                "-o", body, "-D", heads, "-w", "%{http_code} %{http_connect}", "--max-time", str(timeout)]
        if tunnel:
            args.append("-p")
        args += list(extra) + [url]
        out = subprocess.run(args, capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
        headers = {}
        if os.path.exists(heads):
            with open(heads, "rb") as f:
                for line in f.read().decode("latin-1").split("\r\n"):
                    if ":" in line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
        data = b""
        if os.path.exists(body):
            with open(body, "rb") as f:
                data = f.read()
        code, _, connect_code = (out.stdout or "0 0").partition(" ")
        # A refused CONNECT leaves http_code at 0; the proxy's status is http_connect.
        status = int(code) if int(code) else int(connect_code or 0)
        return status, headers, data


class Raw:
    """A raw client connection to a listener (tcp port or unix path)."""

    def __init__(self, where, timeout=10):
        if isinstance(where, int):
            self.sock = socket.create_connection(("127.0.0.1", where), timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            self.sock.connect(where)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_head(self):
        """Reads one response head; returns (status, headers dict lower-case)."""
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed before a response head: %r" % self.buf)
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def read_exact(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("short read: %d of %d" % (len(self.buf), n))
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self):
        status, headers = self.read_head()
        body = self.read_exact(int(headers.get("content-length", "0")))
        return status, headers, body

    def read_to_eof(self):
        while True:
            data = self.sock.recv(65536)
            if not data:
                out, self.buf = self.buf, b""
                return out
            self.buf += data

    def closed_by_peer(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class E2E(unittest.TestCase):
    """Base class: a loopback origin, a TCP echo and a DNS server for test names."""

    @classmethod
    def setUpClass(cls):
        cls.up = upstream.HttpUpstream()
        cls.echo = upstream.EchoServer()
        cls.dns = Dns({
            "allowed.test": ["127.0.0.1"],
            "denied.allowed.test": ["127.0.0.1"],
            "other.test": ["127.0.0.1"],
            "x.wild.test": ["127.0.0.1"],
            "wild.test": ["127.0.0.1"],
            "echo.test": ["127.0.0.1"],
            "closed.test": ["127.0.0.1"],
        })

    @classmethod
    def tearDownClass(cls):
        cls.up.close()
        cls.echo.close()
        cls.dns.close()

    def seen(self, path_prefix):
        """Requests the origin saw whose target starts with path_prefix."""
        return [r for r in self.up.requests if r["target"].startswith(path_prefix)]
