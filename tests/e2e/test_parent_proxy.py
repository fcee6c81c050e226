"""End-to-end: parent proxies (`upstream_proxy:`). The tests' own HTTP CONNECT parent with
Basic auth (tests/tools/parent_proxy.py), Debian's microsocks as a SOCKS5 parent with
username/password, and a python socks5h parent. Allowed traffic reaches the origin through
the parent (its log shows it), denied traffic never reaches it, bypass patterns go direct,
and a parent that is down, refuses, wants other credentials or is slow gives its status."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import E2E, SLUICE, clean_env, curl, free_port, kill_process, wait_for, SLOW

import parent_proxy

SECRET = "parent-pw-7f3a9c"
WRONG = "wrong-pw-b41d2e"

CONFIG = """
listeners:
  - {name: http, tcp: 127.0.0.1:0, policy: via_http}
  - {name: httpwrong, tcp: 127.0.0.1:0, policy: via_http_wrong}
  - {name: down, tcp: 127.0.0.1:0, policy: via_down}
  - {name: refuse, tcp: 127.0.0.1:0, policy: via_refuse}
  - {name: slow, tcp: 127.0.0.1:0, policy: via_slow}
  - {name: socks5, tcp: 127.0.0.1:0, policy: via_socks5}
  - {name: socks5wrong, tcp: 127.0.0.1:0, policy: via_socks5_wrong}
  - {name: socks5h, tcp: 127.0.0.1:0, policy: via_socks5h}
  - {name: open, tcp: 127.0.0.1:0, policy: open_http}
  - {name: eager, tcp: 127.0.0.1:0, policy: via_eager}
upstream_proxy: http://127.0.0.1:DOWNPORT
policies:
  via_http:
    allow: [allowed.test, sub.allowed.test, "127.0.0.1"]
    upstream_proxy:
      url: http://127.0.0.1:HTTPPORT
      username: corp
      password: {env: SLUICE_TEST_PARENT_PW}
      bypass: [sub.allowed.test]
  via_http_wrong:
    allow: [allowed.test]
    upstream_proxy: "http://corp:WRONG@127.0.0.1:HTTPPORT"
  via_down:
    allow: [allowed.test]
  via_refuse:
    allow: [allowed.test]
    upstream_proxy: http://127.0.0.1:REFUSEPORT
  via_slow:
    allow: [allowed.test]
    upstream_proxy: http://127.0.0.1:SLOWPORT
  via_socks5:
    allow: [allowed.test, "127.0.0.1"]
    upstream_proxy: {url: "socks5://127.0.0.1:MSPORT", username: corp, password: {file: parent.pw}}
  via_socks5_wrong:
    allow: [allowed.test, "127.0.0.1"]
    upstream_proxy: "socks5://corp:WRONG@127.0.0.1:MSPORT"
  via_socks5h:
    allow: [allowed.test]
    upstream_proxy: socks5h://127.0.0.1:S5HPORT
  via_eager:
    allow: [echo.test]
    upstream_proxy: http://127.0.0.1:EAGERPORT
  open_http:
    default: allow
    upstream_proxy: {url: "http://127.0.0.1:HTTPPORT", username: corp, password: {env: SLUICE_TEST_PARENT_PW}}
resolver:
  servers: ["127.0.0.1:DNSPORT"]
  timeout_ms: 2000
limits:
  connect_timeout_ms: CONNECTMS
log:
  path: "{log}"
"""

HOSTS = {"echo.test": "127.0.0.1", "allowed.test": "127.0.0.1", "sub.allowed.test": "127.0.0.1", "other.test": "127.0.0.1"}


class ParentProxyTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.http_parent = parent_proxy.HttpParent("corp", SECRET, HOSTS)
        cls.addClassCleanup(cls.http_parent.close)
        cls.refusing = parent_proxy.HttpParent(hosts=HOSTS, mode="refuse")
        cls.addClassCleanup(cls.refusing.close)
        cls.slow = parent_proxy.HttpParent(hosts=HOSTS, mode="slow")
        cls.addClassCleanup(cls.slow.close)
        cls.eager = parent_proxy.HttpParent(hosts=HOSTS, mode="eager")
        cls.addClassCleanup(cls.eager.close)
        cls.socks5h = parent_proxy.Socks5hParent(HOSTS)
        cls.addClassCleanup(cls.socks5h.close)
        cls.ms_dir = tempfile.mkdtemp(prefix="sluice-microsocks-")
        cls.addClassCleanup(shutil.rmtree, cls.ms_dir, True)
        cls.ms_log = os.path.join(cls.ms_dir, "microsocks.log")
        cls.ms_port = free_port()
        with open(cls.ms_log, "wb") as out:
            # stdbuf: microsocks logs with stdio, block-buffered into a file otherwise.
            cls.microsocks = subprocess.Popen(
                ["stdbuf", "-oL", "microsocks", "-i", "127.0.0.1", "-p", str(cls.ms_port), "-u", "corp", "-P", SECRET],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        cls.addClassCleanup(kill_process, cls.microsocks)
        wait_for(lambda: cls._listening(cls.ms_port), what="microsocks listening")
        config = CONFIG
        for key, value in (("DOWNPORT", free_port()), ("HTTPPORT", cls.http_parent.port),
                           ("REFUSEPORT", cls.refusing.port), ("SLOWPORT", cls.slow.port), ("MSPORT", cls.ms_port),
                           ("S5HPORT", cls.socks5h.port), ("EAGERPORT", cls.eager.port), ("DNSPORT", cls.dns.port), ("WRONG", WRONG),
                           ("CONNECTMS", int(1500 * SLOW))):
            config = config.replace(key, str(value))
        cls.sluice = cls.start_sluice(config, files={"parent.pw": SECRET + "\n"},
                                      env={"SLUICE_TEST_PARENT_PW": SECRET})

    @staticmethod
    def _listening(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def url(self, host, tag):
        return "http://%s:%d/hello?%s" % (host, self.up.port, tag)

    def via(self, listener, host, tag, tunnel=True):
        return curl(self.sluice.tcp_port(listener), self.url(host, tag), tunnel=tunnel)

    def decision(self, local_port):
        client = "127.0.0.1:%d" % local_port
        return self.sluice.wait_log(lambda e: e["event"] == "decision" and e.get("client") == client,
                                    what="decision of " + client)[0]

    def parent_saw(self, parent, needle):
        return [e for e in parent.log if needle in e["target"]]

    # --- traffic through the parent ---------------------------------------------

    def test_connect_goes_through_the_http_parent_with_basic_auth(self):
        r = self.via("http", "allowed.test", "p-connect")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"hello\n")
        seen = self.parent_saw(self.http_parent, "allowed.test:%d" % self.up.port)
        self.assertTrue(any(e["method"] == "CONNECT" and e["auth"] for e in seen), self.http_parent.log)
        self.assertEqual(len(self.seen("/hello?p-connect")), 1)
        # The decision names the parent it went through, never its credentials.
        d = self.decision(r.local_port)
        self.assertEqual(d.get("parent"), "http://127.0.0.1:%d" % self.http_parent.port, d)
        self.assertNotIn(SECRET, json.dumps(d))

    def test_plain_http_goes_to_the_http_parent_in_absolute_form(self):
        r = self.via("http", "allowed.test", "p-plain", tunnel=False)
        self.assertEqual(r.status, 200, r)
        target = "http://allowed.test:%d/hello?p-plain" % self.up.port
        seen = [e for e in self.http_parent.log if e["target"] == target]
        self.assertEqual([e["method"] for e in seen], ["GET"], self.http_parent.log)
        self.assertTrue(seen[0]["auth"].startswith("Basic "))
        # The origin gets origin-form from the parent, as from sluice directly.
        self.assertEqual(self.seen("/hello?p-plain")[0]["target"], "/hello?p-plain")

    def test_socks5_clients_are_carried_by_connect_too(self):
        port = self.sluice.tcp_port("http")
        out = subprocess.run(["curl", "-sS", "--noproxy", "", "--socks5-hostname", "127.0.0.1:%d" % port,
                              "--max-time", str(int(20 * SLOW)), self.url("allowed.test", "p-socks-client")],
                             capture_output=True, env=clean_env(), timeout=60 * SLOW)
        self.assertEqual((out.returncode, out.stdout), (0, b"hello\n"), out.stderr)
        seen = self.parent_saw(self.http_parent, "allowed.test:%d" % self.up.port)
        self.assertTrue(seen)
        self.assertEqual(len(self.seen("/hello?p-socks-client")), 1)

    def test_denied_traffic_never_reaches_the_parent(self):
        before = len(self.http_parent.log)
        r = self.via("http", "other.test", "p-denied")
        self.assertEqual((r.status, r.headers.get("x-sluice-reason")), (403, "not-in-allowlist"), r)
        r = self.via("http", "other.test", "p-denied", tunnel=False)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.parent_saw(self.http_parent, "other.test"), [])
        self.assertEqual(self.seen("/hello?p-denied"), [])
        self.assertGreaterEqual(len(self.http_parent.log), before)

    def test_bypass_patterns_go_direct(self):
        r = self.via("http", "sub.allowed.test", "p-bypass")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.parent_saw(self.http_parent, "sub.allowed.test"), [])
        self.assertEqual(len(self.seen("/hello?p-bypass")), 1)
        self.assertEqual(self.decision(r.local_port)["addr"], "127.0.0.1:%d" % self.up.port)
        self.assertNotIn("parent", self.decision(r.local_port))

    def test_http_parent_resolves_names_and_private_literals_are_still_checked(self):
        # default: allow, so only the resolved-address check stands between the client and 10/8.
        r = self.via("open", "10.11.12.13", "p-private")
        self.assertEqual((r.status, r.headers.get("x-sluice-reason")), (403, "resolved-address-denied"), r)
        self.assertEqual(self.parent_saw(self.http_parent, "10.11.12.13"), [])
        # A name goes to the parent unresolved: sluice asks its DNS nothing for it.
        r = self.via("open", "other.test", "p-name")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(self.parent_saw(self.http_parent, "other.test:%d" % self.up.port))
        self.assertNotIn("dns_ms", self.decision(r.local_port))

    def test_bytes_the_parent_sends_right_after_its_reply_reach_the_client(self):
        # sluice reads the parent's reply head and not one byte more, so a server that speaks
        # first (ssh) loses nothing even when both arrive in one segment.
        with socket.create_connection(("127.0.0.1", self.sluice.tcp_port("eager")), timeout=10 * SLOW) as c:
            c.sendall(b"CONNECT echo.test:%d HTTP/1.1\r\nHost: echo.test\r\n\r\n" % self.echo.port)
            got = b""
            want = b"SSH-2.0-eager-parent\r\n"
            while not got.endswith(want) and len(got) < 4096:
                data = c.recv(4096)
                if not data:
                    break
                got += data
            self.assertTrue(got.startswith(b"HTTP/1.1 200"), got)
            self.assertTrue(got.endswith(b"\r\n\r\n" + want), got)
            c.sendall(b"ping")
            self.assertEqual(c.recv(4), b"ping")  # and the tunnel goes on to the origin

    def test_socks5_parent_gets_the_address_sluice_resolved(self):
        r = self.via("socks5", "allowed.test", "p-socks5")
        self.assertEqual(r.status, 200, r)
        wanted = "connected to 127.0.0.1:%d" % self.up.port
        wait_for(lambda: wanted in open(self.ms_log).read(), what="microsocks log line")
        self.assertIn("dns_ms", self.decision(r.local_port))

    def test_socks5h_parent_gets_the_name(self):
        r = self.via("socks5h", "allowed.test", "p-socks5h", tunnel=False)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([e["target"] for e in self.socks5h.log if "allowed.test" in e["target"]],
                         ["allowed.test:%d" % self.up.port])

    def test_run_takes_the_parent_from_its_environment_only_when_asked(self):
        env = {"PATH": os.environ["PATH"], "HOME": self.ms_dir,
               "HTTPS_PROXY": "http://corp:%s@127.0.0.1:%d" % (SECRET, self.http_parent.port)}
        for flag, tag in ((["--upstream-proxy-from-env"], "p-run-env"), ([], "p-run-direct")):
            argv = [os.path.abspath(SLUICE), "run", "--dns-server", "127.0.0.1:%d" % self.dns.port, "--allow", "allowed.test",
                    "--allow", "127.0.0.1"] + flag + ["--", "curl", "-sS", self.url("allowed.test", tag)]
            r = subprocess.run(argv, cwd=self.ms_dir, capture_output=True, env=env, timeout=60 * SLOW)
            self.assertEqual((r.returncode, r.stdout), (0, b"hello\n"), r.stderr)
            self.assertNotIn(SECRET.encode(), r.stderr)
        self.assertTrue(self.parent_saw(self.http_parent, "/hello?p-run-env"))
        self.assertEqual(self.parent_saw(self.http_parent, "/hello?p-run-direct"), [])
        self.assertEqual(len(self.seen("/hello?p-run-direct")), 1)

    def test_run_reads_no_proxy_as_the_parents_bypass(self):
        env = {"PATH": os.environ["PATH"], "HOME": self.ms_dir, "NO_PROXY": "other.test,.allowed.test",
               "HTTPS_PROXY": "http://corp:%s@127.0.0.1:%d" % (SECRET, self.http_parent.port)}
        argv = [os.path.abspath(SLUICE), "run", "--dns-server", "127.0.0.1:%d" % self.dns.port, "--allow", "allowed.test",
                "--allow", "127.0.0.1", "--upstream-proxy-from-env", "--", "curl", "-sS", self.url("allowed.test", "p-run-noproxy")]
        r = subprocess.run(argv, cwd=self.ms_dir, capture_output=True, env=env, timeout=60 * SLOW)
        self.assertEqual((r.returncode, r.stdout), (0, b"hello\n"), r.stderr)
        self.assertEqual(self.parent_saw(self.http_parent, "/hello?p-run-noproxy"), [])
        self.assertEqual(len(self.seen("/hello?p-run-noproxy")), 1)
        # "*" would mean "never the parent": a contradiction with the flag, said before anything runs.
        env["NO_PROXY"] = "*"
        r = subprocess.run(argv, cwd=self.ms_dir, capture_output=True, env=env, timeout=60 * SLOW)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"NO_PROXY=*", r.stderr)
        self.assertNotIn(SECRET.encode(), r.stderr)

    # --- parent failures ----------------------------------------------------------

    def test_wrong_password_is_502_upstream_proxy_auth(self):
        for listener in ("httpwrong", "socks5wrong"):
            for tunnel in (True, False):
                r = self.via(listener, "allowed.test", "p-wrong", tunnel=tunnel)
                self.assertEqual((r.status, r.headers.get("x-sluice-reason")), (502, "upstream-proxy-auth"),
                                 (listener, tunnel, r))
        self.assertEqual(self.seen("/hello?p-wrong"), [])

    def test_parent_down_is_502_upstream_proxy_failed(self):
        for tunnel in (True, False):
            r = self.via("down", "allowed.test", "p-down", tunnel=tunnel)
            self.assertEqual((r.status, r.headers.get("x-sluice-reason")), (502, "upstream-proxy-failed"), r)
        self.assertIn(b"cannot connect to the upstream proxy", r.body)  # curl keeps only a plain reply's body

    def test_parent_refusal_is_502_with_the_parents_status(self):
        r = self.via("refuse", "allowed.test", "p-refuse")
        self.assertEqual((r.status, r.headers.get("x-sluice-reason")), (502, "upstream-proxy-failed"), r)
        with socket.create_connection(("127.0.0.1", self.sluice.tcp_port("refuse")), timeout=10 * SLOW) as c:
            c.sendall(b"CONNECT allowed.test:%d HTTP/1.1\r\nHost: allowed.test\r\n\r\n" % self.up.port)
            reply = b""
            while True:
                data = c.recv(4096)
                if not data:
                    break
                reply += data
        self.assertTrue(reply.startswith(b"HTTP/1.1 502"), reply)
        self.assertIn(b"403 Forbidden by corporate policy", reply)

    def test_slow_parent_is_504_and_never_a_hang(self):
        t0 = time.monotonic()
        r = self.via("slow", "allowed.test", "p-slow")
        took = time.monotonic() - t0
        self.assertEqual((r.status, r.headers.get("x-sluice-reason")), (504, "upstream-proxy-timeout"), r)
        self.assertLess(took, 10 * SLOW)
        self.assertTrue(self.parent_saw(self.slow, "allowed.test"))

    def test_zz_parent_credentials_never_reach_logs_or_error_bodies(self):
        bodies = b""
        for listener in ("httpwrong", "socks5wrong", "http", "socks5", "down"):
            for tunnel in (True, False):
                r = self.via(listener, "allowed.test", "p-secret", tunnel=tunnel)
                bodies += r.body + repr(r.headers).encode()
        self.sluice.wait_log(lambda e: e["event"] == "decision", count=10)
        texts = bodies + open(self.sluice.log_path, "rb").read() + self.sluice.read_stderr().encode() + \
            self.sluice.read_stdout().encode()
        for secret in (SECRET, WRONG):
            self.assertNotIn(secret.encode(), texts)
