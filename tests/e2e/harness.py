"""Helpers for end-to-end tests: start the real sluice binary against loopback
servers of our own (HTTP origin, TCP echo/sink, DNS), talk to it with curl and with
raw sockets, read its decision log.

Workplace rule: everything here listens on and connects to loopback only, and DNS
goes only to the test's own server. Every wait is bounded by a deadline, every
process we start is killed in a cleanup, even when a test fails."""
import hashlib
import json
import re
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.normpath(os.path.join(HERE, "..", "tools"))
sys.path.insert(0, TOOLS)

import upstream  # noqa: E402

SLUICE = os.environ.get("SLUICE_BIN", os.path.normpath(os.path.join(HERE, "..", "..", "build", "sluice")))
DNS_SERVER = os.path.join(TOOLS, "dns_server.py")
UPSTREAM = os.path.join(TOOLS, "upstream.py")
# Sanitizer builds are several times slower; scale the generous waits, never the fixed ones.
def _is_sanitized(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SLOW = 3.0 if os.environ.get("SLUICE_SLOW") or _is_sanitized(SLUICE) else 1.0


def wait_for(pred, timeout=10.0, what="condition", interval=0.02):
    """Polls pred() until it returns something truthy; fails after timeout seconds."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout * SLOW, what))
        time.sleep(interval)


def free_port():
    """A loopback TCP port nobody listens on (bound, then released)."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def has_ipv6_loopback():
    """Whether ::1 can be bound here (some CI containers have no IPv6 loopback)."""
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def _read_port_line(proc, what, timeout=10.0):
    """Reads the first stdout line (the port) of a helper process, with a deadline."""
    deadline = time.monotonic() + timeout * SLOW
    line = b""
    fd = proc.stdout.fileno()
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            break
        r, _, _ = select.select([fd], [], [], min(left, 0.2))
        if r:
            ch = os.read(fd, 1)
            if not ch:
                break
            line += ch
    try:
        return int(line)
    except ValueError:
        raise AssertionError("%s did not print its port (got %r, exit %s)" % (what, line, proc.poll()))


def _descendants(root):
    """root and every process below it, from /proc (ppid links)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
                parent[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parent.items() if pp == p]
    return out


def _read(path, limit=300):
    try:
        with open(path, "rb") as f:
            return f.read(limit).replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError as e:
        return "(%s)" % e.strerror


def process_snapshot(root):
    """What every process under root is doing: for a test that timed out, the one clue
    that survives the kill (state and kernel wait channel per thread, and gdb's stacks
    of the sluice processes when gdb is installed)."""
    lines = []
    for pid in _descendants(root):
        lines.append("pid %d: %s" % (pid, _read("/proc/%d/cmdline" % pid)))
        try:
            tids = sorted(os.listdir("/proc/%d/task" % pid), key=int)
        except OSError:
            continue
        for tid in tids:
            t = "/proc/%d/task/%s" % (pid, tid)
            state = _read(t + "/stat").rsplit(")", 1)[-1].split()[:1]
            lines.append("  tid %s %s wchan=%s" % (tid, "".join(state), _read(t + "/wchan")))
        if "sluice" in _read("/proc/%d/comm" % pid) and shutil.which("gdb"):
            try:
                bt = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 20"],
                                    capture_output=True, text=True, timeout=30).stdout
                lines += ["    " + x for x in bt.splitlines() if x.startswith(("#", "Thread"))]
            except subprocess.TimeoutExpired:
                lines.append("    (gdb timed out)")
    return "\n".join(lines)


def run_bounded(argv, timeout, input=None, capture_output=True, **kw):
    """subprocess.run with capture_output and a timeout that, when it expires, fails the
    test with what the command printed so far and a snapshot of its processes (instead
    of a bare TimeoutExpired that says nothing about where it hung)."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    if input is not None:
        kw["stdin"] = subprocess.PIPE
    with subprocess.Popen(argv, **kw) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            snapshot = process_snapshot(proc.pid)
            proc.kill()
            if kw.get("start_new_session"):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            out, err = proc.communicate()
            raise AssertionError("%s timed out after %ss\nstdout so far: %r\nstderr so far: %r\nprocesses:\n%s" %
                                 (argv, timeout, out, err, snapshot)) from None
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def daemon_config(dns_port, deny=()):
    """A `sluice serve` for `sluice run --daemon` tests: a control socket, a decision log, and the
    policy "jails" (allowed.test and 127.0.0.1, minus DENY) for the sandboxes it makes."""
    deny_line = "    deny: [%s]\n" % ", ".join('"%s"' % d for d in deny) if deny else ""
    return ("listeners:\n  - name: main\n    tcp: 127.0.0.1:0\npolicies:\n  jails:\n"
            "    allow: [allowed.test, \"127.0.0.1\"]\n" + deny_line +
            "resolver:\n  servers: [\"127.0.0.1:%d\"]\ncontrol:\n  unix: \"{dir}/control.sock\"\n"
            "log:\n  path: \"{log}\"\n" % dns_port)


def make_sluice_ca(directory):
    """`sluice ca init DIRECTORY` (a new inspection CA); returns the path of its certificate."""
    subprocess.run([SLUICE, "ca", "init", directory], check=True, capture_output=True, timeout=30)
    return os.path.join(directory, "ca.crt")


def kill_process(proc, timeout=5.0):
    """SIGTERM, then SIGKILL after timeout; always reaps. Safe to call twice."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for f in (proc.stdout, proc.stderr, proc.stdin):
        if f:
            f.close()
    return proc.returncode


class Dns:
    """The test's own DNS server (tests/tools/dns_server.py) on loopback; names map to addresses."""

    def __init__(self, records, ttl=60, extra=()):
        args = [sys.executable, DNS_SERVER, "--listen", "127.0.0.1:0", "--ttl", str(ttl)]
        for name, addrs in records.items():
            args += ["--record", "%s=%s" % (name, ",".join(addrs))]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            self.port = _read_port_line(self.proc, "dns_server.py")
        except BaseException:
            self.close()
            raise

    def close(self):
        kill_process(self.proc)


class UpstreamProcess:
    """tests/tools/upstream.py as a separate process (for when the origin must outlive us or be killed)."""

    def __init__(self, mode="http"):
        self.proc = subprocess.Popen([sys.executable, UPSTREAM, "--listen", "127.0.0.1:0", "--mode", mode],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            self.port = _read_port_line(self.proc, "upstream.py")
        except BaseException:
            self.close()
            raise

    def close(self):
        kill_process(self.proc)


class Sluice:
    """A running `sluice serve`: a YAML config (or flags), stdout and stderr captured to files
    in a temp dir; waits for `sluice: ready` and parses the `sluice: listening` lines.

    In config text, {dir} becomes the temp dir and {log} the decision log path.
    `files` (name -> text) are written into the temp dir first, e.g. rule scripts; `env` adds
    variables to sluice's environment; `extra_args` follow the config's (e.g. --loop-probe-ms)."""

    def __init__(self, config_text=None, args=None, workers=2, ready_timeout=20.0, preexec=None, files=None,
                 env=None, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="sluice-e2e-")
        for name, text in (files or {}).items():
            self.write_file(name, text)
        self.config_path = os.path.join(self.dir, "sluice.yaml")
        self.log_path = os.path.join(self.dir, "decisions.jsonl")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        self.stdout_path = os.path.join(self.dir, "stdout.txt")
        if config_text is not None:
            self.write_config(config_text)
            argv = [SLUICE, "serve", "--config", self.config_path]
        else:
            argv = [SLUICE, "serve"] + list(args)
        if workers:
            argv += ["--workers", str(workers)]
        argv += list(extra_args)
        self.argv = argv
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        child_env = clean_env()
        child_env.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=self._stdout, stderr=self._stderr, stdin=subprocess.DEVNULL,
                                     env=child_env, preexec_fn=preexec)
        try:
            wait_for(lambda: "sluice: ready" in self.read_stderr() or self.proc.poll() is not None,
                     timeout=ready_timeout, what="sluice ready")
            if self.proc.poll() is not None:
                raise AssertionError("sluice exited %s before ready: %s" % (self.proc.returncode, self.read_stderr()))
            self.listeners = {}
            for line in self.read_stderr().splitlines():
                if line.startswith("sluice: listening "):
                    _, _, name, _, addr = line.split(" ", 4)
                    self.listeners[name] = addr
        except BaseException:
            self.kill()
            raise

    def write_file(self, name, text):
        """Writes a file in the temp dir atomically (a reload never reads half of it)."""
        path = os.path.join(self.dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return path

    def write_config(self, text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text.replace("{dir}", self.dir).replace("{log}", self.log_path))
        os.replace(tmp, self.config_path)  # atomic: a reload never reads half a file

    def read_stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def read_stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tcp_port(self, name):
        addr = self.listeners[name]
        assert addr.startswith("tcp:"), addr
        return int(addr.rsplit(":", 1)[1])

    def unix_path(self, name):
        addr = self.listeners[name]
        assert addr.startswith("unix:"), addr
        return addr[5:]

    def log(self, path=None):
        """Every complete JSON line of the decision log so far (a torn last line is skipped)."""
        path = path or self.log_path
        if not os.path.exists(path):
            return []
        with open(path, "rb") as f:
            data = f.read()
        out = []
        for line in data.split(b"\n")[:-1]:  # only newline-terminated lines are complete
            if line.strip():
                out.append(json.loads(line))
        return out

    def wait_log(self, pred, what="log line", timeout=10, count=1, since=0):
        """Waits until at least `count` log entries from line `since` on match pred; returns all
        matching entries. `since` is a len(self.log()) taken before the traffic in question."""
        return wait_for(lambda: (lambda m: m if len(m) >= count else None)([e for e in self.log()[since:] if pred(e)]),
                        timeout=timeout, what=what)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=15):
        return self.proc.wait(timeout * SLOW)

    def _close_files(self):
        for f in (self._stdout, self._stderr):
            if not f.closed:
                f.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_files()

    def stop(self, timeout=15):
        """SIGTERM and wait (SIGKILL after timeout); returns the exit status. Idempotent."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_files()
        return self.proc.returncode

    # A predicate on one sanitizer report (its text up to the next report); True drops it.
    benign_report = None

    def cleanup(self):
        """Stops sluice; fails (keeping the temp dir) when it did not exit 0 or a sanitizer spoke.
        Safe to call twice (a test may stop sluice itself, then its cleanup runs)."""
        if getattr(self, "_cleaned", False):
            return
        self._cleaned = True
        rc = self.stop()
        err = self.read_stderr()
        if self.benign_report:
            blocks = re.split(r"(?m)^(?=\S+: runtime error: )", err)
            err = "".join(b for b in blocks
                          if not (" runtime error: " in b and "ERROR:" not in b and self.benign_report(b)))
        bad = [m for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:") if m in err]
        if rc != 0 or bad:
            raise AssertionError("sluice exited %s%s; stderr in %s:\n%s" % (
                rc, " with " + ", ".join(bad) if bad else "", self.stderr_path, err[-4000:]))
        shutil.rmtree(self.dir, ignore_errors=True)


def clean_env():
    """The environment for child processes: no proxy variables that could steer curl or sluice."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return env


class CurlResult:
    """status, headers (dict, lower-case names), body, plus curl's exit code, stderr and the
    local port it used. Unpacks as (status, headers, body)."""

    def __init__(self, status, headers, body, exit_code, stderr, local_port):
        self.status, self.headers, self.body = status, headers, body
        self.exit_code, self.stderr, self.local_port = exit_code, stderr, local_port

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return "CurlResult(status=%r, exit=%r, stderr=%r, headers=%r)" % (
            self.status, self.exit_code, self.stderr, self.headers)


def curl(proxy_port, url, tunnel=False, extra=(), timeout=20):
    """Runs curl through the proxy on 127.0.0.1:proxy_port; returns a CurlResult.

    tunnel=True uses CONNECT (-p). The status is the origin's status, or, when the proxy
    refused the CONNECT, the proxy's status (curl's http_connect)."""
    timeout = int(timeout * SLOW)
    with tempfile.TemporaryDirectory(prefix="sluice-curl-") as d:
        body, heads = os.path.join(d, "body"), os.path.join(d, "heads")
        args = ["curl", "-sS", "--noproxy", "", "-x", "http://127.0.0.1:%d" % proxy_port,
                "-o", body, "-D", heads, "-w", "%{http_code} %{http_connect} %{local_port}",
                "--max-time", str(timeout)]
        if tunnel:
            args.append("-p")
        args += list(extra) + [url]
        out = subprocess.run(args, capture_output=True, text=True, env=clean_env(), timeout=timeout + 10)
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
        fields = (out.stdout or "0 0 0").split()
        code, connect_code = int(fields[0]), int(fields[1]) if len(fields) > 1 else 0
        local_port = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0
        # A refused CONNECT leaves http_code at 0; the proxy's status is http_connect.
        status = code if code else connect_code
        return CurlResult(status, headers, data, out.returncode, out.stderr, local_port)


_used_local_ports = set()


def _fresh_local_port_socket():
    """A TCP socket bound to a local port no earlier Raw of this process had. Tests find sluice's
    log lines for a connection by its client address; a reused port would match an older line."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        if port not in _used_local_ports:
            _used_local_ports.add(port)
            return s
        s.close()
    raise RuntimeError("no unused local port after 200 tries")


class Raw:
    """A raw client connection to a listener: a TCP port on 127.0.0.1, or a unix socket path."""

    def __init__(self, where, timeout=10):
        if isinstance(where, int):
            self.sock = _fresh_local_port_socket()
            self.sock.settimeout(timeout * SLOW)
            self.sock.connect(("127.0.0.1", where))
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout * SLOW)
            self.sock.connect(where)
        self.buf = b""
        self.consumed = 0  # bytes handed to the caller so far (heads, bodies, framing)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def local_address(self):
        """"IP:PORT" of our end (how sluice logs a TCP client)."""
        host, port = self.sock.getsockname()[:2]
        return "%s:%d" % (host, port)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self):
        """Reads one response head; returns (status, headers dict lower-case)."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise AssertionError("response head too large")
            if not self._fill():
                raise EOFError("closed before a response head: %r" % self.buf)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.consumed += len(head) + 4
        lines = head.decode("latin-1").split("\r\n")
        self.last_status_line = lines[0]
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("short read: %d of %d" % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        self.consumed += n
        return out

    def read_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("closed inside a line")
        line, _, self.buf = self.buf.partition(b"\r\n")
        self.consumed += len(line) + 2
        return line

    def read_chunked(self):
        body = bytearray()
        for _ in range(1 << 20):
            size = int(self.read_line().split(b";")[0], 16)
            if size == 0:
                while self.read_line() != b"":
                    pass
                return bytes(body)
            body += self.read_exact(size)
            if self.read_exact(2) != b"\r\n":
                raise AssertionError("bad chunk terminator")
        raise AssertionError("too many chunks")

    def read_response(self, head_request=False):
        """Reads one full response (Content-Length, chunked, or to EOF); skips 1xx.
        Returns (status, headers, body)."""
        for _ in range(10):
            status, headers = self.read_head()
            if not (100 <= status < 200):
                break
        if head_request or status in (204, 304):
            return status, headers, b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, headers, self.read_chunked()
        if "content-length" in headers:
            return status, headers, self.read_exact(int(headers["content-length"]))
        return status, headers, self.read_to_eof()

    def read_to_eof(self):
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        self.consumed += len(out)
        return out

    def closed_by_peer(self, timeout=5):
        """True when the peer closes (EOF or reset) within timeout without sending more bytes."""
        if self.buf:
            return False
        self.sock.settimeout(timeout * SLOW)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        self.sock.close()


class Background:
    """Runs fn(*args) in a thread; .result() joins with a deadline and re-raises errors."""

    def __init__(self, fn, *args):
        self._out = None
        self._err = None
        self._t = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._t.start()

    def _run(self, fn, args):
        try:
            self._out = fn(*args)
        except BaseException as e:  # noqa: B902 - handed back to the test thread
            self._err = e

    def result(self, timeout=30):
        self._t.join(timeout * SLOW)
        if self._t.is_alive():
            raise AssertionError("background task still running after %ss" % timeout)
        if self._err:
            raise self._err
        return self._out


# The names the test DNS server knows; all point at loopback. Unknown names: NXDOMAIN.
DNS_RECORDS = {
    "allowed.test": ["127.0.0.1"],
    "denied.allowed.test": ["127.0.0.1"],
    "sub.allowed.test": ["127.0.0.1"],
    "other.test": ["127.0.0.1"],
    "x.wild.test": ["127.0.0.1"],
    "deep.x.wild.test": ["127.0.0.1"],
    "wild.test": ["127.0.0.1"],
    "echo.test": ["127.0.0.1"],
    "closed.test": ["127.0.0.1"],
}


class E2E(unittest.TestCase):
    """Base class: a loopback origin, TCP echo, sink and source servers, and a DNS server for the test names.
    Class cleanups run even when setUpClass fails half way."""

    @classmethod
    def setUpClass(cls):
        if not os.access(SLUICE, os.X_OK):
            raise AssertionError("SLUICE_BIN %r is not an executable; build sluice first" % SLUICE)
        cls.up = upstream.HttpUpstream()
        cls.addClassCleanup(cls.up.close)
        cls.echo = upstream.EchoServer()
        cls.addClassCleanup(cls.echo.close)
        cls.sink = upstream.SinkServer()
        cls.addClassCleanup(cls.sink.close)
        cls.source = upstream.SourceServer()
        cls.addClassCleanup(cls.source.close)
        cls.dns = Dns(DNS_RECORDS)
        cls.addClassCleanup(cls.dns.close)

    @classmethod
    def start_sluice(cls, config_text=None, **kw):
        """Starts sluice for the whole class, stopped in a class cleanup."""
        s = Sluice(config_text, **kw)
        cls.addClassCleanup(s.cleanup)
        return s

    @classmethod
    def class_tempdir(cls, prefix):
        """A directory for the whole class, removed in a class cleanup."""
        d = tempfile.mkdtemp(prefix=prefix)
        cls.addClassCleanup(shutil.rmtree, d, True)
        return d

    @classmethod
    def https_upstream(cls, certs, name):
        """An HTTPS origin on loopback serving certs/NAME.crt, closed in a class cleanup."""
        up = upstream.HttpsUpstream(os.path.join(certs, name + ".crt"), os.path.join(certs, name + ".key"))
        cls.addClassCleanup(up.close)
        return up

    def start_sluice_for_test(self, config_text=None, **kw):
        """Starts sluice for one test, stopped in the test's cleanup."""
        s = Sluice(config_text, **kw)
        self.addCleanup(s.cleanup)
        return s

    def seen(self, path_prefix):
        """Requests the origin saw whose target starts with path_prefix."""
        return self.up.seen(path_prefix)


class Control:
    """The control API of a running sluice (its unix socket): one connection per request.

    request() returns (status, body): the body parsed as JSON when it is JSON, else text."""

    def __init__(self, path, timeout=10):
        self.path = path
        self.timeout = timeout * SLOW

    def raw(self, data, read_timeout=None):
        """Sends raw bytes, returns everything sluice answers until it closes."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(read_timeout or self.timeout)
        try:
            s.connect(self.path)
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        finally:
            s.close()

    def request(self, method, path, body=None, headers=()):
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        head = "%s %s HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n" % (method, path)
        for h in headers:
            head += h + "\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        data = self.raw(head.encode() + b"\r\n" + (body or b""))
        status, headers, payload = parse_response(data)
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload.decode("utf-8", "replace")

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None):
        return self.request("POST", path, body if body is not None else {})

    def pending(self):
        status, body = self.get("/v1/pending")
        assert status == 200, (status, body)
        return body["pending"]

    def wait_pending(self, count=1, timeout=10):
        return wait_for(lambda: (lambda p: p if len(p) >= count else None)(self.pending()), timeout=timeout,
                        what="%d pending question(s)" % count)

    def metrics(self):
        """GET /v1/metrics as {'name{labels}': value}."""
        status, text = self.get("/v1/metrics")
        assert status == 200, (status, text)
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def events(self):
        return EventReader(self.path)


def parse_response(data):
    """(status, headers lower-case, body) of one whole HTTP response (Content-Length or to EOF)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1.1 "):
        raise AssertionError("not an HTTP response: %r" % data[:200])
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return status, headers, body


class EventReader:
    """A reader of GET /v1/events: next(pred) returns the next event (a dict) matching pred."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout * SLOW)
        self.sock.connect(path)
        self.sock.sendall(b"GET /v1/events HTTP/1.1\r\nHost: sluice\r\n\r\n")
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("event stream closed before its head: %r" % self.buf)
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.seen = []

    def next(self, pred=lambda e: True, timeout=10, what="event"):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            while b"\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\n")
                e = json.loads(line)
                self.seen.append(e)
                if pred(e):
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s; saw %r" % (what, self.seen[-5:]))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError("event stream closed while waiting for %s; saw %r" % (what, self.seen[-5:]))
            self.buf += chunk

    def close(self):
        self.sock.close()
