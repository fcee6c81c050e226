"""End-to-end: reload on SIGHUP, graceful SIGTERM, config errors, the CLI."""
import os
import signal
import socket
import subprocess
import tempfile
import time

from harness import E2E, SLUICE, Raw, Sluice, curl, wait_for

CONFIG = """
listeners:
  - name: main
    tcp: 127.0.0.1:0
    policy: p
policies:
  p:
    default: deny
    allow: [ALLOW]
resolver:
  servers: ["127.0.0.1:DNSPORT"]
limits:
  drain_timeout_ms: DRAIN
log:
  path: "{log}"
"""


def run(*args, stdin=None):
    return subprocess.run([SLUICE] + list(args), capture_output=True, text=True, input=stdin, timeout=30)


class LifecycleTest(E2E):
    def config(self, allow="allowed.test", drain=10000):
        return (CONFIG.replace("ALLOW", allow).replace("DNSPORT", str(self.dns.port))
                .replace("DRAIN", str(drain)))

    def start(self, **kw):
        s = Sluice(self.config(**kw))
        self.addCleanup(s.stop)
        return s, s.tcp_port("main")

    def url(self, host):
        return "http://%s:%d/hello" % (host, self.up.port)

    def test_sighup_with_a_broken_file_keeps_the_old_config(self):
        s, port = self.start()
        self.assertEqual(curl(port, self.url("allowed.test"))[0], 200)
        with open(s.config_path, "w") as f:
            f.write("listeners:\n  - name: main\n    tcp: [unclosed\n")
        s.signal(signal.SIGHUP)
        event = s.wait_log(lambda e: e["event"] == "reload")[-1]
        self.assertFalse(event["ok"])
        self.assertIn("sluice.yaml:", event["error"])
        wait_for(lambda: "reload failed" in s.read_stderr(), what="reload failure on stderr")
        self.assertEqual(curl(port, self.url("allowed.test"))[0], 200)
        self.assertEqual(curl(port, self.url("other.test"))[0], 403)
        self.assertIsNone(s.proc.poll())

    def test_sighup_with_a_good_file_changes_policy_for_new_connections(self):
        s, port = self.start()
        held = Raw(port)  # a connection accepted under the old config keeps it
        self.assertEqual(curl(port, self.url("other.test"))[0], 403)
        s.write_config(self.config(allow="other.test"))
        s.signal(signal.SIGHUP)
        event = s.wait_log(lambda e: e["event"] == "reload")[-1]
        self.assertTrue(event["ok"], event)
        self.assertEqual(wait_for(lambda: curl(port, self.url("other.test"))[0] == 200 or None), True)
        self.assertEqual(curl(port, self.url("allowed.test"))[0], 403)
        held.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test").encode())
        self.assertEqual(held.read_response()[0], 200)
        held.close()

    def test_sighup_that_changes_listeners_is_refused(self):
        s, port = self.start()
        with open(s.config_path) as f:
            text = f.read()
        s.write_config(text.replace("name: main", "name: renamed"))
        s.signal(signal.SIGHUP)
        event = s.wait_log(lambda e: e["event"] == "reload")[-1]
        self.assertFalse(event["ok"])
        self.assertIn("restart", event["error"])
        self.assertEqual(curl(port, self.url("allowed.test"))[0], 200)

    def test_sigterm_drains_open_tunnels_and_refuses_new_connections(self):
        s, port = self.start()
        c = Raw(port)
        c.send(b"CONNECT echo.test:%d HTTP/1.1\r\n\r\n" % self.echo.port)
        # echo.test is not allowed here: use the origin through an allowed name instead
        self.assertEqual(c.read_head()[0], 403)
        c.close()
        t = Raw(port)
        t.send(b"CONNECT allowed.test:%d HTTP/1.1\r\n\r\n" % self.up.port)
        self.assertEqual(t.read_head()[0], 200)
        s.signal(signal.SIGTERM)
        wait_for(lambda: "draining" in s.read_stderr(), what="drain message")

        def refused():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return False
            except OSError:
                return True
        wait_for(refused, what="listener closed")
        # The tunnel opened before SIGTERM still works.
        t.send(b"GET /hello HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n")
        status, _, body = t.read_response()
        self.assertEqual((status, body), (200, b"hello\n"))
        t.close()
        self.assertEqual(s.proc.wait(15), 0)
        self.assertIn("sluice: stopped", s.read_stderr())

    def test_sigterm_cuts_tunnels_at_the_drain_deadline(self):
        s, port = self.start(drain=300)
        t = Raw(port)
        t.send(b"CONNECT allowed.test:%d HTTP/1.1\r\n\r\n" % self.up.port)
        self.assertEqual(t.read_head()[0], 200)
        started = time.monotonic()
        s.signal(signal.SIGTERM)
        self.assertEqual(s.proc.wait(15), 0)
        self.assertLess(time.monotonic() - started, 10)
        self.assertTrue(t.closed_by_peer())
        t.close()


class CliTest(E2E):
    def write(self, text):
        d = tempfile.mkdtemp(prefix="sluice-cli-")
        path = os.path.join(d, "bad.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_version_and_help(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^sluice \d+\.\d+\.\d+")
        for args in (["--help"], ["serve", "--help"], ["check", "--help"]):
            r = run(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("usage:", r.stdout)

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
        r = run("serve", "--config", "/nonexistent/sluice.yaml")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/sluice.yaml: cannot read", r.stderr)

    def test_flag_errors_are_one_line(self):
        for argv, want in ((["serve"], "no listener"), (["serve", "--listen", "nowhere"], "--listen nowhere"),
                           (["serve", "--listen", "127.0.0.1:1", "--allow", "*"], "bad pattern"),
                           (["serve", "--bogus"], "unknown option --bogus"), (["frobnicate"], "unknown command")):
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
                 (["--listener", "a", "gist.github.com"], 1, 'deny gist.github.com:443: policy "p", rule "gist.github.com" (denied-by-rule)'),
                 (["--listener", "b", "anything.example:22"], 0, "default-allow"),
                 (["github.com"], 2, ""),
                 (["--listener", "zzz", "github.com"], 2, "")]
        for args, code, want in cases:
            r = run("check", "--config", path, *args)
            self.assertEqual(r.returncode, code, (args, r.stdout, r.stderr))
            self.assertIn(want, r.stdout)

    def test_quick_flags_serve_without_a_file(self):
        s = Sluice(args=["--listen", "127.0.0.1:0", "--allow", "allowed.test", "--deny", "other.test",
                         "--dns-server", "127.0.0.1:%d" % self.dns.port, "--log", "-", "--workers", "1"])
        self.addCleanup(s.stop)
        port = s.tcp_port("listener1")
        self.assertEqual(curl(port, "http://allowed.test:%d/hello" % self.up.port)[0], 200)
        status, headers, _ = curl(port, "http://other.test:%d/hello" % self.up.port)
        self.assertEqual((status, headers["x-sluice-reason"]), (403, "denied-by-rule"))
