"""End-to-end: the credential gateway (docs/credentials.md) inside `sluice run`. The jail holds a
stand-in shaped like the real token; sluice attaches the real one only to inspected HTTPS requests
to the credential's hosts (the tests' HTTPS origin records what it got), refuses the stand-in
anywhere else (credential-misuse), and keeps real secrets out of the jail's environment, files and
logs. Secret sources env, file and command; a failing command fails closed."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from harness import E2E, SLUICE, Dns, clean_env, run_bounded

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import tls_certs  # noqa: E402
import upstream  # noqa: E402

REAL = "ghp_" + "R3alT0kenDoNotLeak" * 2  # 40 characters, like a GitHub token
FILE_SECRET = "file-secret-value-123"
COMMAND_SECRET = "sk-cmd-secret-456"

POLICY = """
policies:
  default:
    allow: [secure.test, other.test, echo.test, 127.0.0.1]
    inspect: [secure.test, other.test]
    credentials:
      - name: github
        hosts: ["secure.test"]
        secret: {env: SLUICE_TEST_GH}
        inject: "Authorization: Basic {basic:x-access-token:{secret}}"
        env: [GH_TOKEN, GITHUB_TOKEN]
      - name: api
        hosts: ["secure.test"]
        secret: {file: api.secret}
        inject: replace
        env: [API_KEY]
      - name: cmd
        hosts: ["other.test"]
        secret: {command: ["printf", "%s\\\\n", "COMMAND_SECRET"]}
        inject: "X-Api-Key: {secret}"
        env: [CMD_KEY]
tls:
  upstream_ca: [CERTS/ca.crt]
""".replace("COMMAND_SECRET", COMMAND_SECRET)


class GatewayTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = tempfile.mkdtemp(prefix="sluice-e2e-certs-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, True)
        tls_certs.make_ca(cls.certs)
        tls_certs.make_leaf(cls.certs, "good", ["secure.test", "other.test"])
        cls.tls_up = upstream.HttpsUpstream(os.path.join(cls.certs, "good.crt"), os.path.join(cls.certs, "good.key"))
        cls.addClassCleanup(cls.tls_up.close)
        cls.names = Dns({"secure.test": ["127.0.0.1"], "other.test": ["127.0.0.1"], "echo.test": ["127.0.0.1"]})
        cls.addClassCleanup(cls.names.close)

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="sluice-e2e-gw-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.home = os.path.join(self.work, "home")
        os.mkdir(self.home)
        with open(os.path.join(self.work, "api.secret"), "w") as f:
            f.write(FILE_SECRET + "\n")
        self.log = os.path.join(self.work, "decisions.jsonl")

    def run_jail(self, script, policy=POLICY):
        path = os.path.join(self.work, "policy.yaml")
        with open(path, "w") as f:
            f.write(policy.replace("CERTS", self.certs))
        env = clean_env()
        env.update({"HOME": self.home, "SLUICE_TEST_GH": REAL, "GITHUB_TOKEN": REAL, "ANTHROPIC_API_KEY": "sk-ant-real"})
        return run_bounded([SLUICE, "run", "--policy", path, "--dns-server", "127.0.0.1:%d" % self.names.port,
                            "--log", self.log, "--", "sh", "-c", "export ASAN_OPTIONS=detect_leaks=0; " + script],
                           cwd=self.work, capture_output=True, text=True, env=env, timeout=120)

    def run_jail_args(self, argv, policy=POLICY):
        """Runs argv in the jail (no shell)."""
        path = os.path.join(self.work, "policy.yaml")
        with open(path, "w") as f:
            f.write(policy.replace("CERTS", self.certs))
        env = clean_env()
        env.update({"HOME": self.home, "SLUICE_TEST_GH": REAL, "ASAN_OPTIONS": "detect_leaks=0"})
        return run_bounded([SLUICE, "run", "--policy", path, "--dns-server", "127.0.0.1:%d" % self.names.port,
                            "--log", self.log, "--"] + argv, cwd=self.work, capture_output=True, text=True,
                           env=env, timeout=120)

    def url(self, host, path):
        return "https://%s:%d%s" % (host, self.tls_up.port, path)

    def seen_header(self, tag, name):
        got = [r for r in self.tls_up.requests if r["target"].endswith(tag)]
        self.assertEqual(len(got), 1, tag)
        return [v for k, v in got[0]["headers"] if k.lower() == name]

    def test_the_real_secret_is_attached_only_where_it_belongs(self):
        script = ("curl -sS -o /dev/null -H \"Authorization: token $GH_TOKEN\" -H 'Cookie: a=b' %s; "
                  "curl -sS -o /dev/null -H \"X-Api: $API_KEY\" %s; "
                  "curl -sS -o /dev/null -H \"X-Api-Key: $CMD_KEY\" %s; "
                  "curl -sS -o /dev/null %s; "
                  "echo \"$GH_TOKEN $GITHUB_TOKEN ${#GH_TOKEN} ${ANTHROPIC_API_KEY:-unset} ${SLUICE_TEST_GH:-unset}\"; "
                  "cat /proc/self/environ | tr '\\0' '\\n' | grep -c -e %s -e %s -e %s || true") % (
                      self.url("secure.test", "/hello?gw-1"), self.url("secure.test", "/hello?gw-2"),
                      self.url("other.test", "/hello?gw-3"), self.url("secure.test", "/hello?gw-4"), REAL, FILE_SECRET,
                      COMMAND_SECRET)
        r = self.run_jail(script)
        self.assertEqual(r.returncode, 0, r.stderr)
        words = r.stdout.split()
        stand_in = words[0]
        self.assertEqual(words[1:], [stand_in, "40", "unset", "unset", "0"])
        self.assertTrue(stand_in.startswith("ghp_") and stand_in != REAL)
        import base64
        basic = "Basic " + base64.b64encode(b"x-access-token:" + REAL.encode()).decode()
        self.assertEqual(self.seen_header("gw-1", "authorization"), [basic])  # the jail's own was dropped
        self.assertEqual(self.seen_header("gw-1", "cookie"), [])
        self.assertEqual(self.seen_header("gw-2", "x-api"), [FILE_SECRET])  # replace: swapped where it stood
        self.assertEqual(self.seen_header("gw-3", "x-api-key"), [COMMAND_SECRET])
        self.assertEqual(self.seen_header("gw-4", "authorization"), [])  # no stand-in presented: nothing attached
        with open(self.log) as f:
            text = f.read()
        for secret in (REAL, FILE_SECRET, COMMAND_SECRET):
            self.assertNotIn(secret, text)
            self.assertNotIn(secret, r.stdout + r.stderr)
        entries = [json.loads(x) for x in text.splitlines()]
        creds = {e["url"].rsplit("?", 1)[1]: e.get("credential") for e in entries
                 if e.get("event") == "decision" and "?gw-" in e.get("url", "")}
        self.assertEqual(creds, {"gw-1": "github", "gw-2": "api", "gw-3": "cmd", "gw-4": None})

    def test_a_stand_in_anywhere_else_is_refused_and_not_replaced(self):
        plain = "http://other.test:%d/hello?mis-2" % self.up.port
        script = ("curl -sS -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' -H \"X-T: $GH_TOKEN\" %s; "
                  "curl -sS -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' -H \"X-T: $GH_TOKEN\" %s; "
                  "curl -sS -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' \"%s&t=$GH_TOKEN\"") % (
                      self.url("other.test", "/hello?mis-1"), plain, self.url("secure.test", "/hello?mis-3"))
        r = self.run_jail(script)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["403 credential-misuse"] * 3)
        self.assertEqual([x for x in self.tls_up.requests if "?mis-" in x["target"]], [])
        self.assertEqual(self.up.seen("/hello?mis-2"), [])
        with open(self.log) as f:
            entries = [json.loads(x) for x in f]
        misuse = [e for e in entries if e.get("error") == "credential-misuse"]
        self.assertEqual([e["credential"] for e in misuse], ["github"] * 3)
        self.assertIn("sluice: denied", r.stderr)

    def test_a_stand_in_in_an_opaque_tunnel_closes_it_unsent(self):
        # CONNECT and SOCKS5 to the echo server (not inspected): the first bytes carry the stand-in.
        code = ("import os, socket, sys\n"
                "port = int(sys.argv[1])\n"
                "def connect_tunnel():\n"
                "    s = socket.create_connection(('127.0.0.1', 3128))\n"
                "    s.sendall(b'CONNECT echo.test:%d HTTP/1.1\\r\\n\\r\\n' % port)\n"
                "    assert s.recv(100).startswith(b'HTTP/1.1 200'), 'no 200'\n"
                "    return s\n"
                "def socks_tunnel():\n"
                "    s = socket.create_connection(('127.0.0.1', 3128))\n"
                "    s.sendall(b'\\x05\\x01\\x00')\n"
                "    assert s.recv(2) == b'\\x05\\x00'\n"
                "    s.sendall(b'\\x05\\x01\\x00\\x03\\x09echo.test' + port.to_bytes(2, 'big'))\n"
                "    assert s.recv(10)[1] == 0\n"
                "    return s\n"
                "for make in (connect_tunnel, socks_tunnel):\n"
                "    s = make()\n"
                "    s.sendall(b'token=' + os.environ['GH_TOKEN'].encode())\n"
                "    print(make.__name__, s.recv(100) == b'')\n")
        before = len(self.echo.received)
        r = self.run_jail_args(["python3", "-c", code, str(self.echo.port)])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["connect_tunnel", "True", "socks_tunnel", "True"])
        self.assertEqual(len(self.echo.received), before)  # nothing of it reached the server
        with open(self.log) as f:
            events = [json.loads(x) for x in f if '"credential-misuse"' in x]
        self.assertEqual([(e["credential"], e["where"], e["host"]) for e in events],
                         [("github", "tunnel", "echo.test")] * 2)

    def test_a_failing_secret_command_fails_closed(self):
        r = self.run_jail("echo ran", POLICY.replace('["printf", "%s\\\\n", "' + COMMAND_SECRET + '"]', '["false"]'))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertNotIn("ran", r.stdout)
        self.assertIn("secret: command false exited with status 1", r.stderr)
