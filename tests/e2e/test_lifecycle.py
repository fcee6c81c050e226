"""End-to-end: reload on SIGHUP, graceful SIGTERM/SIGINT, limits, config errors, the CLI.
Each test starts its own sluice (stopped in cleanup)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import E2E, SLOW, SLUICE, Raw, Sluice, clean_env, curl, wait_for

CONFIG = """
listeners:
  - name: main
    tcp: 127.0.0.1:0
    policy: p
  - name: sock
    unix: {dir}/main.sock
    policy: p
policies:
  p:
    default: deny
    allow: [ALLOW, "127.0.0.1"]
resolver:
  servers: ["127.0.0.1:DNSPORT"]
limits:
  drain_timeout_ms: DRAIN
  header_timeout_ms: HEADER
EXTRA
log:
  path: "{log}"
"""


def run(*args, stdin=None):
    return subprocess.run([SLUICE] + list(args), capture_output=True, text=True, input=stdin,
                          timeout=30 * SLOW, env=clean_env())


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def unix_refused(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(1)
    try:
        s.connect(path)
        return False
    except OSError:
        return True
    finally:
        s.close()


class LifecycleTest(E2E):
    def config(self, allow="allowed.test, echo.test", drain=10000, header=10000, extra=""):
        return (CONFIG.replace("ALLOW", allow).replace("DNSPORT", str(self.dns.port))
                .replace("DRAIN", str(drain)).replace("HEADER", str(header)).replace("EXTRA\n", extra))

    def start(self, **kw):
        s = self.start_sluice_for_test(self.config(**kw))
        return s, s.tcp_port("main")

    def url(self, host, path="/hello"):
        return "http://%s:%d%s" % (host, self.up.port, path)

    def open_tunnel(self, port):
        t = Raw(port)
        self.addCleanup(t.close)
        t.send(b"CONNECT echo.test:%d HTTP/1.1\r\n\r\n" % self.echo.port)
        self.assertEqual(t.read_head()[0], 200)
        return t

    def roundtrip(self, t, data):
        t.send(data)
        self.assertEqual(t.read_exact(len(data)), data)

    # --- SIGHUP -----------------------------------------------------------------

    def test_sighup_with_a_broken_file_keeps_the_old_config(self):
        s, port = self.start()
        self.assertEqual(curl(port, self.url("allowed.test")).status, 200)
        with open(s.config_path, "w") as f:
            f.write("listeners:\n  - name: main\n    tcp: [unclosed\n")
        s.signal(signal.SIGHUP)
        event = s.wait_log(lambda e: e["event"] == "reload")[-1]
        self.assertIs(event["ok"], False)
        self.assertIn(s.config_path + ":", event["error"])
        wait_for(lambda: "reload failed" in s.read_stderr(), what="reload failure on stderr")
        self.assertRegex(s.read_stderr(), r"(?m)^" + s.config_path + r":\d+:\d+: ")
        self.assertEqual(curl(port, self.url("allowed.test", "/hello?after-bad-reload")).status, 200)
        r = curl(port, self.url("other.test"))
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "not-in-allowlist"))
        self.assertIsNone(s.proc.poll())
        # a later good reload still works
        s.write_config(self.config(allow="other.test"))
        s.signal(signal.SIGHUP)
        events = s.wait_log(lambda e: e["event"] == "reload", count=2)
        self.assertIs(events[1]["ok"], True, events)
        self.assertEqual(curl(port, self.url("other.test")).status, 200)

    def test_sighup_with_a_semantically_bad_file_keeps_the_old_config(self):
        s, port = self.start()
        s.write_config(self.config(allow='"a.*.b"'))  # parses as YAML, fails as a pattern
        s.signal(signal.SIGHUP)
        event = s.wait_log(lambda e: e["event"] == "reload")[-1]
        self.assertIs(event["ok"], False)
        self.assertIn("bad pattern", event["error"])
        self.assertEqual(curl(port, self.url("allowed.test")).status, 200)

    def test_sighup_with_a_good_file_changes_policy_for_new_connections(self):
        s, port = self.start()
        held = Raw(port)  # a connection accepted under the old config keeps it
        self.addCleanup(held.close)
        self.assertEqual(curl(port, self.url("other.test")).status, 403)
        s.write_config(self.config(allow="other.test"))
        s.signal(signal.SIGHUP)
        event = s.wait_log(lambda e: e["event"] == "reload")[-1]
        self.assertIs(event["ok"], True, event)
        wait_for(lambda: "sluice: reloaded" in s.read_stderr(), what="reload message")
        self.assertEqual(curl(port, self.url("other.test", "/hello?after-reload")).status, 200)
        r = curl(port, self.url("allowed.test", "/hello?removed"))
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "not-in-allowlist"))
        self.assertEqual(self.seen("/hello?removed"), [])
        # the unix listener follows the new policy too
        with Raw(s.unix_path("sock")) as c:
            c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("other.test", "/hello?unix-reload").encode())
            self.assertEqual(c.read_response()[0], 200)
        held.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test").encode())
        self.assertEqual(held.read_response()[0], 200)

    def test_sighup_that_changes_listeners_is_refused(self):
        s, port = self.start()
        with open(s.config_path) as f:
            text = f.read()
        s.write_config(text.replace("name: main", "name: renamed"))
        s.signal(signal.SIGHUP)
        event = s.wait_log(lambda e: e["event"] == "reload")[-1]
        self.assertIs(event["ok"], False)
        self.assertIn("restart", event["error"])
        self.assertEqual(curl(port, self.url("allowed.test")).status, 200)

    # --- SIGTERM / SIGINT ----------------------------------------------------------

    def _graceful_stop(self, sig, name):
        s, port = self.start(drain=20000)
        sock_path = s.unix_path("sock")
        t = self.open_tunnel(port)
        client = t.local_address()
        sent = b"before-signal"
        self.roundtrip(t, sent)
        s.signal(sig)
        wait_for(lambda: "%s received, draining" % name in s.read_stderr(), what="drain message")
        wait_for(lambda: refused(port), what="tcp listener closed")
        wait_for(lambda: unix_refused(sock_path), what="unix listener closed")
        self.assertIsNone(s.proc.poll(), "exited while a tunnel was open")
        # The tunnel opened before the signal still works, in both directions.
        for i in range(3):
            chunk = b"during-drain-%d-" % i + os.urandom(20000)
            self.roundtrip(t, chunk)
            sent += chunk
        t.shutdown_write()
        self.assertEqual(t.read_to_eof(), b"")
        t.close()
        started = time.monotonic()
        self.assertEqual(s.wait_exit(15), 0, s.read_stderr())
        # it left as soon as the last connection was done, not at the 20 s drain deadline
        self.assertLess(time.monotonic() - started, 8 * SLOW)
        self.assertIn("sluice: stopped", s.read_stderr())
        conn = [e["conn"] for e in s.log() if e["event"] == "decision" and e.get("client") == client]
        self.assertEqual(len(conn), 1)
        close = [e for e in s.log() if e["event"] == "close" and e["conn"] == conn[0]]
        self.assertEqual(len(close), 1, "the drained tunnel's close line is in the log")
        self.assertEqual((close[0]["bytes_up"], close[0]["bytes_down"]), (len(sent), len(sent)))
        self.assertEqual(close[0]["cause"], "client-eof")

    def test_sigterm_drains_open_tunnels_and_refuses_new_connections(self):
        self._graceful_stop(signal.SIGTERM, "SIGTERM")

    def test_sigint_drains_like_sigterm(self):
        self._graceful_stop(signal.SIGINT, "SIGINT")

    def test_sigterm_cuts_tunnels_at_the_drain_deadline(self):
        s, port = self.start(drain=300)
        t = self.open_tunnel(port)
        started = time.monotonic()
        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait_exit(15), 0, s.read_stderr())
        self.assertLess(time.monotonic() - started, 5 * SLOW)
        self.assertTrue(t.closed_by_peer())

    def test_sigterm_closes_idle_keep_alive_connections(self):
        s, port = self.start()
        c = Raw(port)
        self.addCleanup(c.close)
        c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test").encode())
        self.assertEqual(c.read_response()[:3:2], (200, b"hello\n"))
        started = time.monotonic()
        s.signal(signal.SIGTERM)
        self.assertTrue(c.closed_by_peer(timeout=5))
        self.assertEqual(s.wait_exit(15), 0)
        self.assertLess(time.monotonic() - started, 5 * SLOW)

    # --- limits ---------------------------------------------------------------------

    def test_each_named_wait_has_its_own_timeout(self):
        # Short keep-alive, tunnel and response waits; the rest long: each closes only its own case.
        ms = int(400 * SLOW)
        s, port = self.start(extra="  keepalive_timeout_ms: %d\n  tunnel_idle_timeout_ms: %d\n"
                                   "  response_timeout_ms: %d\n  request_body_timeout_ms: %d\n  idle_timeout_ms: 600000\n"
                                   % (ms, ms, ms, ms))
        # Keep-alive: after a response, a connection that sends nothing more is closed.
        with Raw(port) as c:
            c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test", "/hello?ka").encode())
            self.assertEqual(c.read_response()[0], 200)
            started = time.monotonic()
            self.assertTrue(c.closed_by_peer(10))
            self.assertGreater(time.monotonic() - started, 0.3 * SLOW)
            client = c.local_address()
        close = s.wait_log(lambda e: e["event"] == "close" and e.get("client") == client, what="keep-alive close")[0]
        self.assertEqual(close["cause"], "idle-timeout")
        # Tunnel: a silent CONNECT tunnel is closed.
        t = self.open_tunnel(port)
        self.assertTrue(t.closed_by_peer(10))
        # Response: an upstream that never answers (the sink waits for a FIN sluice never sends): 504.
        with Raw(port) as c:
            c.send(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % self.sink.port)
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (504, "upstream-timeout"))
        # Request body: a client that stops half way through its body is cut.
        with Raw(port) as c:
            c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"
                   % self.url("allowed.test", "/echo?stalled").encode())
            self.assertTrue(c.closed_by_peer(10))
            client = c.local_address()
        close = s.wait_log(lambda e: e["event"] == "close" and e.get("client") == client, what="stalled body")[0]
        self.assertEqual(close["cause"], "idle-timeout")

    def test_header_timeout_is_408(self):
        s, port = self.start(header=300)
        with Raw(port) as c:
            c.send(b"GET http://allowed.test:%d/hello?slow HTTP/1.1\r\nHost: allo" % self.up.port)
            started = time.monotonic()
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (408, "header-timeout"))
            self.assertLess(time.monotonic() - started, 5 * SLOW)
        self.assertEqual(self.seen("/hello?slow"), [])
        # A client that says nothing at all is closed by the sniffer, with a close line.
        with Raw(port) as c:
            client = c.local_address()
            self.assertTrue(c.closed_by_peer(5))
        close = s.wait_log(lambda e: e["event"] == "close" and e.get("client") == client, what="sniffer close")[0]
        self.assertEqual((close["cause"], close["requests"]), ("header-timeout", 0))


class CliTest(E2E):
    def tempdir(self):
        d = tempfile.mkdtemp(prefix="sluice-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def write(self, text):
        d = self.tempdir()
        path = os.path.join(d, "bad.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_version_and_help(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^sluice \d+\.\d+\.\d+")
        for args in (["--help"], ["help"], ["serve", "--help"], ["check", "--help"], ["run", "--help"],
                     ["ctl", "--help"], ["connect", "-h"], ["bench", "--help"]):
            r = run(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("usage: sluice", r.stdout)
        self.assertIn("--config", run("serve", "--help").stdout)
        self.assertIn("-- CMD [ARGS...]", run("run", "--help").stdout)
        for command in ("run", "serve", "check", "ctl", "connect", "bench"):
            self.assertRegex(run("--help").stdout, r"(?m)^  %s +\S" % command)
        r = run()
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertIn("usage: sluice", r.stderr)

    def test_config_errors_exit_2_with_file_line_column(self):
        cases = [
            ("listeners:\n  - name: a\n    tcp: 127.0.0.1:3128\n    polcy: x\n", ":4:5: unknown key 'polcy'"),
            ("listeners:\n  - name: a\n    tcp: 127.0.0.1:3128\npolicies:\n  default:\n    allow: [\"a.*.b\"]\n",
             ":6:13: bad pattern"),
            ("listeners:\n  - name: a\n    tcp: nowhere\n", ":3:10: tcp must be"),
            ("listeners:\n  - name: a\n    tcp: 127.0.0.1:1\n  - name: a\n    tcp: 127.0.0.1:2\n",
             ":4:11: duplicate listener name"),
            ("listeners: [\n", ":"),
        ]
        for text, want in cases:
            path = self.write(text)
            for argv in (["serve", "--config", path], ["check", "--config", path]):
                r = run(*argv)
                self.assertEqual(r.returncode, 2, (argv, r.stderr))
                self.assertIn(path + want, r.stderr, argv)
                self.assertRegex(r.stderr, r"(?m)^" + path + r":\d+:\d+: \S")
        r = run("serve", "--config", "/nonexistent/sluice.yaml")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/sluice.yaml: cannot read", r.stderr)

    def test_flag_errors_are_one_line(self):
        for argv, want in ((["serve"], "no listener"), (["serve", "--listen", "nowhere"], "--listen nowhere"),
                           (["serve", "--listen", "127.0.0.1:1", "--allow", "*"], "bad pattern"),
                           (["serve", "--bogus"], "unknown option --bogus"), (["frobnicate"], "unknown command"),
                           (["serve", "--config"], "--config"), (["serve", "stray"], "unexpected argument stray"),
                           (["run", "echo", "hi"], "put the command after --"), (["check"], "--config FILE is required"),
                           (["serve", "--workers", "-1", "--listen", "127.0.0.1:1"], "--workers must be")):
            r = run(*argv)
            self.assertEqual(r.returncode, 2, argv)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(want, r.stderr)

    def test_check_prints_verdict_and_rule(self):
        path = self.write("""
listeners:
  - {name: a, tcp: "127.0.0.1:3128", policy: p}
  - {name: b, unix: /tmp/never-bound.sock, policy: q}
policies:
  p: {allow: [github.com, "*.github.com:443"], deny: [gist.github.com]}
  q: {default: allow}
""")
        r = run("check", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK (2 listeners, 2 policies)", r.stdout)
        cases = [(["--listener", "a", "github.com"], 0, 'allow github.com:443: policy "p", rule "github.com"'),
                 (["--listener", "a", "API.GitHub.com.:443"], 0, 'rule "*.github.com:443"'),
                 (["--listener", "a", "api.github.com:80"], 1, "not-in-allowlist"),
                 (["--listener", "a", "gist.github.com"], 1,
                  'deny gist.github.com:443: policy "p", rule "gist.github.com" (denied-by-rule)'),
                 (["--listener", "b", "anything.example:22"], 0, "default-allow"),
                 # no --listener and two policies: one line per listener, exit status by the worst
                 (["github.com"], 0, 'listener a: allow github.com:443: policy "p", rule "github.com" (allowed-by-rule)\n'
                                     'listener b: allow github.com:443: policy "q", rule "default" (default-allow)\n'),
                 (["gist.github.com"], 1, 'listener a: deny gist.github.com:443: policy "p", rule "gist.github.com" '
                                          '(denied-by-rule)\nlistener b: allow gist.github.com:443'),
                 (["--listener", "zzz", "github.com"], 2, ""),
                 # a target named like a command is a target
                 (["--listener", "a", "--addr", "127.0.0.1", "serve"], 1, "deny serve:443"),
                 (["--listener=a", "github.com:443"], 0, "allow github.com:443")]
        for args, code, want in cases:
            r = run("check", "--config", path, *args)
            self.assertEqual(r.returncode, code, (args, r.stdout, r.stderr))
            self.assertIn(want, r.stdout)

    def test_quick_flags_serve_without_a_file(self):
        s = self.start_sluice_for_test(args=[
            "--listen", "127.0.0.1:0", "--allow", "allowed.test", "--allow", "x.wild.test", "--allow", "127.0.0.1", "--deny", "other.test",
            "--dns-server", "127.0.0.1:%d" % self.dns.port, "--log", "-", "--workers", "1"], workers=None)
        port = s.tcp_port("listener1")
        self.assertEqual(curl(port, "http://allowed.test:%d/hello?flags" % self.up.port).status, 200)
        self.assertEqual(curl(port, "http://x.wild.test:%d/hello?flags" % self.up.port).status, 200)
        r = curl(port, "http://other.test:%d/hello" % self.up.port)
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "denied-by-rule"))
        r = curl(port, "http://wild.test:%d/hello" % self.up.port)
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "not-in-allowlist"))

        # --log - writes the decision log to stdout
        def stdout_decisions():
            lines = [json.loads(x) for x in s.read_stdout().splitlines() if x.startswith("{")]
            found = [e for e in lines if e.get("event") == "decision"]
            return found if len(found) >= 4 else None
        decisions = wait_for(stdout_decisions, what="decisions on stdout")
        self.assertEqual([(e["host"], e["verdict"]) for e in decisions[:4]],
                         [("allowed.test", "allow"), ("x.wild.test", "allow"), ("other.test", "deny"),
                          ("wild.test", "deny")])

    def test_quick_flags_default_allow_and_unix_listener(self):
        d = self.tempdir()
        sock = os.path.join(d, "q.sock")
        s = self.start_sluice_for_test(args=[
            "--listen", "unix:" + sock, "--default", "allow", "--deny", "other.test", "--allow", "127.0.0.1",
            "--dns-server", "127.0.0.1:%d" % self.dns.port, "--log", os.path.join(d, "log.jsonl")], workers=1)
        self.assertEqual(s.unix_path("listener1"), sock)
        with Raw(sock) as c:
            c.send(b"GET http://wild.test:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n" % self.up.port)
            self.assertEqual(c.read_response()[:3:2], (200, b"hello\n"))
            c.send(b"GET http://other.test:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n" % self.up.port)
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (403, "denied-by-rule"))
        entries = wait_for(lambda: (lambda L: L if len(L) >= 2 else None)(
            [e for e in s.log(os.path.join(d, "log.jsonl")) if e["event"] == "decision"]), what="--log file")
        self.assertEqual([(e["verdict"], e["reason"]) for e in entries],
                         [("allow", "default-allow"), ("deny", "denied-by-rule")])


if __name__ == "__main__":
    unittest.main()
