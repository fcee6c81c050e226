"""End-to-end: the credential gateway (docs/credentials.md) inside `sluice run`. The jail holds a
stand-in shaped like the real token; sluice attaches the real one only to inspected HTTPS requests
to the credential's hosts (the tests' HTTPS origin records what it got), refuses the stand-in
anywhere else (credential-misuse), and keeps real secrets out of the jail's environment, files and
logs. Secret sources env, file and command; a failing command fails closed."""
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

from harness import E2E, SLUICE, Control, Dns, clean_env, curl, make_sluice_ca, run_bounded

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import tls_certs  # noqa: E402

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


BODY_SECRET = "sk-body-" + "B0dyS3cret" * 4  # 40 characters after the prefix: the stand-in keeps its length
BODY_POLICY = POLICY.replace("tls:\n", """      - name: body
        hosts: ["secure.test"]
        secret: {env: SLUICE_TEST_BODY}
        inject: replace
        replace_body: true
        replace_body_max_bytes: 200000
        env: [BODY_KEY]
tls:
""", 1)

# Writes a body of N bytes with the stand-in (argv[1]) at its start, across 16 KiB TLS records and
# 64 KiB reads, and at its end.
GEN_BODY = """import sys
def make_body(key, n):
    body = bytearray((b"abcdefghij" * (n // 10 + 1))[:n])
    for off in (0, 16380, 65530, 100000, n - len(key)):
        body[off:off + len(key)] = key
    return bytes(body)
if __name__ == "__main__":
    with open(sys.argv[3], "wb") as f:
        f.write(make_body(sys.argv[1].encode(), int(sys.argv[2])))
"""
exec(GEN_BODY.split("if __name__")[0])


class GatewayBase(E2E):
    """The tests' HTTPS origin (a test CA), their DNS names, a work dir per test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = cls.class_tempdir("sluice-e2e-certs-")
        tls_certs.make_ca(cls.certs)
        tls_certs.make_leaf(cls.certs, "good", ["secure.test", "other.test"])
        cls.tls_up = cls.https_upstream(cls.certs, "good")
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
        env.update({"HOME": self.home, "SLUICE_TEST_GH": REAL, "GITHUB_TOKEN": REAL, "ANTHROPIC_API_KEY": "sk-ant-real",
                    "SLUICE_TEST_BODY": BODY_SECRET})
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


class GatewayTest(GatewayBase):
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

    def test_replace_body_swaps_stand_ins_in_bodies_up_to_the_cap(self):
        # Bodies with the stand-in at the start, across TLS record and read boundaries and at the
        # end; sent with Content-Length and chunked, under and over the cap, and to another host.
        with open(os.path.join(self.work, "gen.py"), "w") as f:
            f.write(GEN_BODY)
        u = lambda tag, host="secure.test": self.url(host, "/hello?" + tag)  # noqa: E731
        post = "curl -sS -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' --data-binary @%s %s %s || true; "
        script = ("python3 gen.py \"$BODY_KEY\" 150000 small.bin; python3 gen.py \"$BODY_KEY\" 250000 big.bin; " +
                  post % ("small.bin", "", u("body-cl")) +
                  post % ("small.bin", "-H 'Transfer-Encoding: chunked'", u("body-chunked")) +
                  post % ("big.bin", "", u("body-big-cl")) +
                  post % ("big.bin", "-H 'Transfer-Encoding: chunked'", u("body-big-chunked")) +
                  post % ("small.bin", "-H 'Content-Encoding: gzip'", u("body-gzip")) +
                  post % ("small.bin", "", u("body-other", "other.test")) +
                  "echo \"$BODY_KEY\"")
        r = self.run_jail(script, BODY_POLICY)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        stand_in = lines[-1]
        self.assertTrue(stand_in.startswith("sk-body-") and len(stand_in) == len(BODY_SECRET) and stand_in != BODY_SECRET)
        self.assertEqual(lines[0:2], ["200 "] * 2, r.stderr)
        self.assertEqual(lines[2], "413 credential-body-refused")  # refused before anything was sent
        self.assertIn(lines[3], ("413 credential-body-refused", "000 "))  # cut half way
        self.assertEqual(lines[4], "413 credential-body-refused")
        self.assertEqual(lines[5], "200 ")

        def digest(key, n):
            return hashlib.sha256(make_body(key.encode(), n)).hexdigest()

        def seen(tag):
            got = [x for x in self.tls_up.requests if x["target"].endswith("?" + tag)]
            return got

        for tag in ("body-cl", "body-chunked"):
            got = seen(tag)
            self.assertEqual(len(got), 1, tag)
            self.assertEqual((got[0]["body_len"], got[0]["body_sha256"]), (150000, digest(BODY_SECRET, 150000)), tag)
        self.assertEqual(seen("body-big-cl"), [])
        self.assertEqual(seen("body-gzip"), [])
        self.assertTrue(all(x["body_len"] is None for x in seen("body-big-chunked")))  # never a whole request
        other = seen("body-other")  # not the credential's host: left as it was
        self.assertEqual(other[0]["body_sha256"], digest(stand_in, 150000))
        with open(self.log) as f:
            text = f.read()
        self.assertNotIn(BODY_SECRET, text + r.stdout + r.stderr)
        refused = [json.loads(x) for x in text.splitlines() if "credential-body-refused" in x]
        self.assertGreaterEqual(len(refused), 2)

    def test_a_failing_secret_command_fails_closed(self):
        r = self.run_jail("echo ran", POLICY.replace('["printf", "%s\\\\n", "' + COMMAND_SECRET + '"]', '["false"]'))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertNotIn("ran", r.stdout)
        self.assertIn("secret: command false exited with status 1", r.stderr)


DAEMON_CONFIG = """
listeners:
  - name: main
    tcp: 127.0.0.1:0
policies:
  default:
    allow: [secure.test, 127.0.0.1]
    inspect: [secure.test]
    credentials:
      - name: github
        hosts: ["secure.test:TLSPORT"]
        secret: {env: SLUICE_TEST_GH}
        inject: "Authorization: Basic {basic:x-access-token:{secret}}"
        env: [GH_TOKEN, GITHUB_TOKEN]
      - name: api
        hosts: ["secure.test"]
        secret: {file: "{dir}/api.secret"}
        inject: replace
        env: [API_KEY]
    git: [{host: "secure.test:TLSPORT", repos: [o/r], push: [refs/heads/agent/*]}]
tls:
  ca_cert: "{dir}/sluice-ca/ca.crt"
  ca_key: "{dir}/sluice-ca/ca.key"
  upstream_ca: [CERTS/ca.crt]
resolver:
  servers: ["127.0.0.1:DNSPORT"]
control:
  unix: "{dir}/control.sock"
log:
  path: "{log}"
"""


DAEMON_BODY_CONFIG = DAEMON_CONFIG.replace("    git: [", """      - name: body
        hosts: ["secure.test"]
        secret: {file: "{dir}/body.secret"}
        inject: replace
        replace_body: true
        env: [BODY_KEY]
    git: [""", 1)


def https_through(sock_path, host, port, ca, request):
    """One request inside a CONNECT tunnel made on a unix socket (a sandbox's), TLS checked
    against `ca`; returns the response's status line and head."""
    import ssl
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(sock_path)
    s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port, host.encode(), port))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError("tunnel closed: %r" % head)
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname=host)
    t.sendall(request)
    out = b""
    while b"\r\n\r\n" not in out:
        chunk = t.recv(4096)
        if not chunk:
            break
        out += chunk
    t.close()
    return out.split(b"\r\n\r\n")[0].decode("latin-1")


class DaemonGatewayTest(GatewayBase):
    """`sluice serve` issues the stand-ins per sandbox (POST /v1/sandboxes); `sluice run --daemon`
    exports them into the jail. A stand-in is honoured only on its own sandbox's listener."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The daemon's inspection CA, made before it starts (its config names the files).
        cls.ca_dir = os.path.join(cls.class_tempdir("sluice-e2e-gwca-"), "sluice-ca")
        make_sluice_ca(cls.ca_dir)

    def daemon(self, config=DAEMON_CONFIG, files=None):
        config = config.replace("{dir}/sluice-ca", self.ca_dir).replace("CERTS", self.certs)
        config = config.replace("DNSPORT", str(self.names.port)).replace("TLSPORT", str(self.tls_up.port))
        s = self.start_sluice_for_test(config, files=dict({"api.secret": FILE_SECRET + "\n"}, **(files or {})),
                                       env={"SLUICE_TEST_GH": REAL}, workers=1)
        return s, Control(os.path.join(s.dir, "control.sock"))

    def run_daemon_jail(self, sock, name, script, extra_env=None):
        env = clean_env()
        env.update({"HOME": self.home, "SLUICE_TEST_GH": REAL, "GITHUB_TOKEN": REAL})
        env.update(extra_env or {})
        return run_bounded([SLUICE, "run", "--daemon", sock, "--name", name, "--", "sh", "-c",
                            "export ASAN_OPTIONS=detect_leaks=0; " + script],
                           cwd=self.work, capture_output=True, text=True, env=env, timeout=120)

    def curl_main(self, s, tag, stand_in):
        return curl(s.tcp_port("main"), self.url("secure.test", "/hello?" + tag),
                    extra=["--cacert", os.path.join(self.ca_dir, "ca.crt"), "-H", "X-T: " + stand_in])

    def test_daemon_sandbox_stand_ins_are_honoured_only_on_their_own_listener(self):
        s, ctl = self.daemon()
        events = ctl.events()
        self.addCleanup(events.close)
        # A sandbox made through the API: its answer carries its stand-ins, never the secrets.
        status, made = ctl.post("/v1/sandboxes", {"name": "sa"})
        self.assertEqual(status, 201, made)
        self.assertNotIn(REAL, json.dumps(made))
        self.assertNotIn(FILE_SECRET, json.dumps(made))
        sa = {c["name"]: c["stand_in"] for c in made["credentials"]}
        self.assertEqual(sorted(sa), ["api", "github"])
        self.assertTrue(sa["github"].startswith("ghp_") and len(sa["github"]) == len(REAL))
        self.assertIn("BEGIN CERTIFICATE", made["ca"])
        status, listed = ctl.get("/v1/sandboxes")
        self.assertNotIn(sa["github"], json.dumps(listed))

        # A jail of the launcher: its stand-ins are honoured through its own sandbox; sa's are not.
        script = ("curl -sS -o /dev/null -w '%%{http_code}\\n' -H \"Authorization: token $GH_TOKEN\" %s; "
                  "curl -sS -o /dev/null -w '%%{http_code}\\n' -H \"X-Api: $API_KEY\" %s; "
                  "curl -sS -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' "
                  "-H \"Authorization: token $SA_STAND_IN\" %s; "
                  "curl -sS -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' \"%s&t=$GH_TOKEN\"; "
                  "echo \"$GH_TOKEN $GITHUB_TOKEN ${SLUICE_TEST_GH:-unset}\"; "
                  "echo \"$GIT_CONFIG_KEY_0|$GIT_CONFIG_VALUE_0\"; "
                  "cat /proc/self/environ | tr '\\0' '\\n' | grep -c -e %s -e %s || true") % (
                      self.url("secure.test", "/hello?dgw-1"), self.url("secure.test", "/hello?dgw-2"),
                      self.url("secure.test", "/hello?dgw-foreign"), self.url("secure.test", "/hello?dgw-url"), REAL,
                      FILE_SECRET)
        r = self.run_daemon_jail(os.path.join(s.dir, "control.sock"), "sb1", script,
                                 {"SA_STAND_IN": sa["github"]})
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[:4], ["200", "200", "403 credential-misuse", "403 credential-misuse"], r.stderr)
        lines = lines[:3] + lines[4:]
        gh, gh2, unset = lines[3].split()
        self.assertEqual((gh2, unset), (gh, "unset"))
        self.assertTrue(gh.startswith("ghp_") and gh not in (REAL, sa["github"]))
        self.assertEqual(lines[4], "http.https://secure.test:%d/.extraHeader|Authorization: Basic %s" % (
            self.tls_up.port, base64.b64encode(b"x-access-token:" + gh.encode()).decode()))
        self.assertEqual(lines[5], "0")  # no real secret in the jail's environment
        basic = "Basic " + base64.b64encode(b"x-access-token:" + REAL.encode()).decode()
        self.assertEqual(self.seen_header("dgw-1", "authorization"), [basic])
        self.assertEqual(self.seen_header("dgw-2", "x-api"), [FILE_SECRET])
        self.assertEqual([x for x in self.tls_up.requests if "dgw-foreign" in x["target"]], [])

        # sa's stand-in through the daemon's own listener (no sandbox's): refused too.
        res = self.curl_main(s, "dgw-main", sa["github"])
        self.assertEqual((res.status, res.headers.get("x-sluice-reason")), (403, "credential-misuse"), res)
        # Removing sa forgets its stand-ins: the same text is now just a header, passed as it is.
        status, _ = ctl.request("DELETE", "/v1/sandboxes/sa")
        self.assertEqual(status, 200)
        res = self.curl_main(s, "dgw-forgotten", sa["github"])
        self.assertEqual(res.status, 200, res)
        self.assertEqual(self.seen_header("dgw-forgotten", "x-t"), [sa["github"]])

        # The event stream (a client attached throughout) saw the honoured and the refused
        # requests, by credential name, and never a real secret.
        honoured = events.next(lambda e: e.get("event") == "decision" and "dgw-1" in e.get("url", ""),
                               what="the honoured request")
        self.assertEqual((honoured["listener"], honoured["credential"], honoured["status"]), ("sb1", "github", 200))
        foreign = events.next(lambda e: e.get("event") == "decision" and "dgw-foreign" in e.get("url", ""),
                              what="the foreign stand-in")
        self.assertEqual((foreign["listener"], foreign["credential"], foreign["error"]),
                         ("sb1", "github", "credential-misuse"))
        in_url = events.next(lambda e: e.get("event") == "decision" and "dgw-url" in e.get("url", ""),
                             what="the stand-in in a URL")
        self.assertTrue(in_url["url"].endswith("&t=<stand-in:github>"), in_url)
        main = events.next(lambda e: e.get("event") == "decision" and "dgw-main" in e.get("url", ""),
                           what="the stand-in on the base listener")
        self.assertEqual((main["listener"], main["error"]), ("main", "credential-misuse"))
        events.next(lambda e: e.get("event") == "decision" and "dgw-forgotten" in e.get("url", ""),
                    what="the forgotten stand-in")
        stream = "\n".join(json.dumps(e) for e in events.seen)
        log = "\n".join(json.dumps(e) for e in s.log())
        metrics = ctl.get("/v1/metrics")[1]
        # Nor a stand-in: the only one sent where it shows (a URL) is masked.
        for secret in (REAL, FILE_SECRET, gh, sa["github"], sa["api"]):
            for where, text in (("events", stream), ("log", log), ("metrics", metrics),
                                ("launcher", r.stderr), ("daemon", s.read_stderr())):
                self.assertNotIn(secret, text, where)
        self.assertNotIn(REAL, r.stdout)
        self.assertIn("sluice_credential_misuse_total 3", metrics)

    def test_a_stand_in_through_a_second_sandbox_is_refused(self):
        s, ctl = self.daemon()
        # Made with `sluice ctl sandbox add --json`, which prints the answer with the stand-ins.
        made = subprocess.run([SLUICE, "ctl", "--socket", os.path.join(s.dir, "control.sock"), "sandbox", "add",
                               "first", "--json"], capture_output=True, text=True, timeout=30)
        self.assertEqual(made.returncode, 0, made.stderr)
        a = json.loads(made.stdout)
        first = {c["name"]: c["stand_in"] for c in a["credentials"]}
        # The first sandbox's stand-in, from a jail on a second sandbox, in a header, inside Basic
        # credentials, and in an opaque tunnel's first bytes (not inspected: the echo server).
        code = ("import os, socket, sys\n"
                "s = socket.create_connection(('127.0.0.1', 3128))\n"
                "s.sendall(b'CONNECT 127.0.0.1:%d HTTP/1.1\\r\\n\\r\\n' % int(sys.argv[1]))\n"
                "assert s.recv(100).startswith(b'HTTP/1.1 200'), 'no 200'\n"
                "s.sendall(b'token=' + os.environ['FIRST'].encode())\n"
                "print('tunnel', s.recv(100) == b'')\n")
        script = ("curl -sS -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' -H \"X-T: $FIRST\" %s; "
                  "curl -sS -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' -u \"x:$FIRST\" %s; "
                  "python3 -c \"$CODE\" %d") % (
                      self.url("secure.test", "/hello?second-1"), self.url("secure.test", "/hello?second-2"),
                      self.echo.port)
        before = len(self.echo.received)
        r = self.run_daemon_jail(os.path.join(s.dir, "control.sock"), "second", script,
                                 {"FIRST": first["api"], "CODE": code})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["403 credential-misuse"] * 2 + ["tunnel True"], r.stderr)
        self.assertEqual([x for x in self.tls_up.requests if "?second-" in x["target"]], [])
        self.assertEqual(len(self.echo.received), before)
        self.assertIn("sluice: denied secure.test:%d (credential-misuse" % self.tls_up.port, r.stderr)
        misuse = s.wait_log(lambda e: e.get("error") == "credential-misuse" or e.get("event") == "credential-misuse",
                            count=3)
        self.assertEqual(sorted(e["credential"] for e in misuse), ["api"] * 3)
        self.assertEqual({e["listener"] for e in misuse}, {"second"})

    def test_daemon_replace_body_and_a_secret_that_changed_length_on_reload(self):
        s, ctl = self.daemon(DAEMON_BODY_CONFIG, {"body.secret": BODY_SECRET + "\n"})
        status, made = ctl.post("/v1/sandboxes", {"name": "sbody"})
        self.assertEqual(status, 201, made)
        stand_in = {c["name"]: c["stand_in"] for c in made["credentials"]}["body"]
        self.assertEqual(len(stand_in), len(BODY_SECRET))
        body = make_body(stand_in.encode(), 70000)

        def post(tag):
            req = (b"POST /hello?%s HTTP/1.1\r\nHost: secure.test:%d\r\nContent-Length: %d\r\n"
                   b"Connection: close\r\n\r\n" % (tag.encode(), self.tls_up.port, len(body)) + body)
            return https_through(made["path"], "secure.test", self.tls_up.port, os.path.join(self.ca_dir, "ca.crt"),
                                 req)

        self.assertTrue(post("dbody-1").startswith("HTTP/1.1 200"))
        got = [x for x in self.tls_up.requests if x["target"].endswith("?dbody-1")]
        self.assertEqual(got[0]["body_sha256"], hashlib.sha256(make_body(BODY_SECRET.encode(), 70000)).hexdigest())
        # The secret changes length on reload: the sandbox's stand-in can no longer stand for it in a
        # body of the same length, so such a body is refused, never sent unreplaced.
        s.write_file("body.secret", BODY_SECRET + "-longer\n")
        status, answer = ctl.post("/v1/reload")
        self.assertEqual(status, 200, answer)
        head = post("dbody-2")
        self.assertTrue(head.startswith("HTTP/1.1 413"), head)
        self.assertIn("x-sluice-reason: credential-body-refused", head.lower())
        self.assertEqual([x for x in self.tls_up.requests if x["target"].endswith("?dbody-2")], [])
        for e in s.log():
            self.assertNotIn(BODY_SECRET, json.dumps(e))
