"""End-to-end: TLS inspection through the real binary (docs/tls.md). HTTPS origins of the tests'
own on loopback, with certificates from a private upstream CA given as tls: upstream_ca; sluice's
CA made by `sluice ca init`; real clients (curl, python3 ssl/urllib/requests, node, git) that
trust only sluice's CA. Requests inside are judged one by one (path entries, Lua, keep-alive
after a refusal), the upstream is verified before the 200, hosts are pinned (SNI, Host, URL),
non-TLS bytes are refused, uninspected tunnels stay byte-exact."""
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

from harness import E2E, SLUICE, Dns, Raw, clean_env, curl, make_sluice_ca, run_bounded, sha256

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import git_http  # noqa: E402
import tls_certs  # noqa: E402
import upstream  # noqa: E402

NAMES = ["secure.test", "paths.test", "wrongname.test", "expired.test", "stray.test", "plain.test", "echo.test",
         "other.test"]

CONFIG = """
listeners:
  - {name: p, tcp: 127.0.0.1:0, policy: insp}
policies:
  insp:
    # Test names resolve to 127.0.0.1: listing it is the explicit choice the resolved-address check needs.
    allow: ["secure.test", "wrongname.test", "expired.test", "stray.test", "plain.test", "echo.test", "127.0.0.1"]
    deny: [{host: secure.test, path: /private/}]
    # Over SOCKS5 only port 443 or a port an entry names is inspected: TLSPORT and STRAYPORT are.
    inspect: ["secure.test", "wrongname.test", "expired.test", "stray.test", "plain.test", "secure.test:TLSPORT",
              "stray.test:STRAYPORT"]
    inspect_exclude: ["plain.test"]
    rules: [inspect.lua]
tls:
  ca_cert: {dir}/sluice-ca/ca.crt
  ca_key: {dir}/sluice-ca/ca.key
  upstream_ca: [{certs}/ca.crt]
resolver:
  servers: ["127.0.0.1:DNSPORT"]
  timeout_ms: 2000
log:
  path: "{log}"
"""

# Lua over HTTPS: sees the scheme, refuses DELETE under /repos/, adds a header the origin sees.
LUA = """
function on_request(c, r)
  if c.scheme ~= "https" then return nil end
  if r.method == "DELETE" and r.path:sub(1, 7) == "/repos/" then
    return {verdict = "deny", reason = "no deletes over https"}
  end
  r:set_header("x-seen-scheme", c.scheme)
  return nil
end
"""

PATHS_CONFIG_POLICY = """
  paths:
    allow: ["paths.test/ok/", "127.0.0.1"]
"""


class InspectTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = d = cls.class_tempdir("sluice-e2e-certs-")
        tls_certs.make_ca(d)
        tls_certs.make_leaf(d, "good", ["secure.test", "paths.test", "plain.test", "other.test"])
        tls_certs.make_leaf(d, "wrong", ["someone-else.test"])
        tls_certs.make_leaf(d, "expired", ["expired.test"], expired=True)
        tls_certs.make_ca(d, "rogue", "/CN=a CA nobody trusts")
        tls_certs.make_leaf(d, "stray", ["stray.test"], ca="rogue")
        cls.tls_up = cls.https_upstream(d, "good")
        cls.wrong_up = cls.https_upstream(d, "wrong")
        cls.expired_up = cls.https_upstream(d, "expired")
        cls.stray_up = cls.https_upstream(d, "stray")
        cls.names_dns = Dns({n: ["127.0.0.1"] for n in NAMES})
        cls.addClassCleanup(cls.names_dns.close)
        config = CONFIG.replace("DNSPORT", str(cls.names_dns.port)).replace("{certs}", d)
        config = config.replace("TLSPORT", str(cls.tls_up.port)).replace("STRAYPORT", str(cls.stray_up.port))
        config = config.replace("policies:\n", "policies:\n" + PATHS_CONFIG_POLICY.lstrip("\n"), 1)
        config = config.replace("listeners:\n", "listeners:\n  - {name: paths, tcp: 127.0.0.1:0, policy: paths}\n", 1)
        # `sluice ca init` before sluice starts: the config names its files.
        cls.ca_dir = os.path.join(cls.class_tempdir("sluice-e2e-ca-"), "sluice-ca")
        cls.ca = make_sluice_ca(cls.ca_dir)
        config = config.replace("{dir}/sluice-ca", cls.ca_dir)
        cls.config = config
        cls.sluice = cls.start_sluice(config, files={"inspect.lua": LUA})
        cls.port = cls.sluice.tcp_port("p")
        cls.paths_port = cls.sluice.tcp_port("paths")

    # --- helpers ---------------------------------------------------------------------

    def url(self, host, path, up=None):
        return "https://%s:%d%s" % (host, (up or self.tls_up).port, path)

    def curl(self, url, port=None, extra=()):
        return curl(port or self.port, url, extra=["--cacert", self.ca] + list(extra))

    def decisions(self, pred, count=1):
        return self.sluice.wait_log(lambda e: e.get("event") == "decision" and pred(e), count=count)

    def tls_events(self, pred):
        return self.sluice.wait_log(lambda e: e.get("event") == "tls" and pred(e))

    def connect(self, host, up=None, port=None):
        """A raw CONNECT through sluice; returns the Raw connection after its 200."""
        c = Raw(port or self.port)
        c.send(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (host.encode(), (up or self.tls_up).port, host.encode()))
        status, _, _ = c.read_response(head_request=True)
        self.assertEqual(status, 200)
        return c

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    # --- requests inside ------------------------------------------------------------------

    def test_curl_gets_a_byte_exact_body_and_each_request_is_logged(self):
        n = 5_000_000
        r = self.curl(self.url("secure.test", "/big?n=%d&insp-1" % n))
        self.assertEqual((r.exit_code, r.status), (0, 200), r.stderr)
        self.assertEqual(sha256(r.body), upstream.pattern_sha256(n))
        d = self.decisions(lambda e: e.get("url", "").endswith("insp-1"))[0]
        self.assertEqual((d["kind"], d["method"], d["tls"], d["status"]), ("http", "GET", "inspected", 200))
        self.assertEqual(d["url"], self.url("secure.test", "/big?n=%d&insp-1" % n))
        c = self.decisions(lambda e: e.get("kind") == "connect" and e.get("conn") == d["conn"])[0]
        self.assertEqual((c["tls"], c["status"], c["verdict"]), ("inspected", 200, "allow"))
        seen = self.tls_up.seen("/big?n=%d&insp-1" % n)
        self.assertEqual(len(seen), 1)
        self.assertEqual(dict((k.lower(), v) for k, v in seen[0]["headers"])["x-seen-scheme"], "https")

    def test_a_second_connection_resumes_the_upstream_session(self):
        # The tests' HTTPS origin sends TLS 1.3 tickets (Python's default): after one connection
        # to secure.test on its port, the next one offers the kept session and the origin takes it.
        for tag in ("resume-1", "resume-2"):
            r = self.curl(self.url("secure.test", "/hello?" + tag))
            self.assertEqual((r.exit_code, r.status), (0, 200), r.stderr)
        d = self.decisions(lambda e: e.get("url", "").endswith("resume-2"))[0]
        c = self.decisions(lambda e: e.get("kind") == "connect" and e.get("conn") == d["conn"])[0]
        self.assertEqual((c["tls"], c.get("tls_resumed"), d.get("tls_resumed")), ("inspected", True, True))
        # A failed upstream handshake is never a resumption (and forgets what was kept).
        r = self.curl(self.url("secure.test", "/hello?resume-3", up=self.wrong_up))
        self.assertEqual(r.status, 502)
        w = self.decisions(lambda e: e.get("error") == "upstream-tls-failed" and
                           e.get("port") == self.wrong_up.port)[0]
        self.assertNotIn("tls_resumed", w)

    def test_session_cache_0_keeps_no_upstream_session(self):
        # The same config with tls: {session_cache: 0}: every upstream handshake is a full one.
        s = self.start_sluice_for_test(self.config.replace("tls:\n", "tls:\n  session_cache: 0\n", 1),
                                       files={"inspect.lua": LUA})
        for tag in ("no-resume-1", "no-resume-2"):
            r = self.curl(self.url("secure.test", "/hello?" + tag), port=s.tcp_port("p"))
            self.assertEqual((r.exit_code, r.status), (0, 200), r.stderr)
        d = s.wait_log(lambda e: e.get("event") == "decision" and e.get("url", "").endswith("no-resume-2"))[0]
        c = s.wait_log(lambda e: e.get("event") == "decision" and e.get("kind") == "connect" and
                       e.get("conn") == d["conn"])[0]
        self.assertEqual((c["tls"], c.get("tls_resumed"), d.get("tls_resumed")), ("inspected", None, None))

    def test_keep_alive_with_a_refused_and_an_allowed_request_on_one_connection(self):
        r = subprocess.run(["curl", "-sS", "--path-as-is", "--noproxy", "", "-x", "http://127.0.0.1:%d" % self.port, "--cacert",
                            self.ca, "-w", "%{http_code} %{num_connects}\n", "-o", "/dev/null", "-o", "/dev/null",
                            "-o", "/dev/null", self.url("secure.test", "/private/key?ka-1"),
                            self.url("secure.test", "/hello?ka-2"), self.url("secure.test", "/x/%2e%2e/private/y?ka-3")],
                           capture_output=True, text=True, env=clean_env(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split("\n")[:3], ["403 1", "200 0", "403 0"])  # one connection for all three
        self.assertEqual(self.tls_up.seen("/private/"), [])
        self.assertEqual([s for s in self.tls_up.requests if s["target"].endswith("ka-3")], [])  # dot segments
        self.assertEqual(len(self.tls_up.seen("/hello?ka-2")), 1)
        denied = self.decisions(lambda e: e.get("url", "").endswith("ka-1"))[0]
        self.assertEqual((denied["reason"], denied["rule"], denied["status"]), ("denied-by-rule", "secure.test/private/", 403))

    def test_a_refusal_inside_is_an_http_response_with_its_reason(self):
        r = self.curl(self.url("secure.test", "/private/x?insp-2"))
        self.assertEqual((r.exit_code, r.status, r.headers.get("x-sluice-reason")), (0, 403, "denied-by-rule"))
        self.assertIn(b"secure.test/private/", r.body)
        r = self.curl(self.url("secure.test", "/repos/a?insp-3"), extra=["-X", "DELETE"])
        self.assertEqual((r.status, r.headers.get("x-sluice-reason")), (403, "denied-by-script"))
        self.assertIn(b"no deletes over https", r.body)
        self.assertEqual(self.tls_up.seen("/repos/a?insp-3"), [])

    def test_a_host_only_path_entries_allow_is_inspected_and_judged_per_path(self):
        rows = [("/ok/hello?pp-1", 404), ("/hello?pp-2", 403), ("/ok/../hello?pp-3", 403),
                ("/ok/%2e%2e/hello?pp-4", 403), ("/ok%2f..%2fhello?pp-5", 403)]
        for path, want in rows:
            with self.subTest(path=path):
                r = self.curl(self.url("paths.test", path), port=self.paths_port, extra=["--path-as-is"])
                self.assertEqual(r.status, want, (r.stderr, r.body))
                tag = path.rsplit("?", 1)[1]
                self.assertEqual(len([s for s in self.tls_up.requests if s["target"].endswith(tag)]),
                                 1 if want == 404 else 0)
        c = self.decisions(lambda e: e.get("kind") == "connect" and e.get("host") == "paths.test")[0]
        self.assertEqual((c["reason"], c["rule"], c["tls"]), ("allowed-for-inspection", "paths.test/ok/", "inspected"))

    def test_python_urllib_requests_and_node_trust_the_leaf(self):
        proxy = "http://127.0.0.1:%d" % self.port
        env = clean_env()
        env.update({"HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": "", "no_proxy": "",
                    "SSL_CERT_FILE": self.ca, "REQUESTS_CA_BUNDLE": self.ca})
        url = self.url("secure.test", "/hello?py-%s")
        code = ("import urllib.request, sys\n"
                "print(urllib.request.urlopen(sys.argv[1] % 'urllib').read().decode().strip())\n"
                "try:\n import requests\nexcept ImportError:\n print('hello'); sys.exit(0)\n"
                "print(requests.get(sys.argv[1] % 'requests').text.strip())\n")
        r = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual((r.returncode, r.stdout.split()), (0, ["hello", "hello"]), r.stderr)
        self.assertEqual(len(self.tls_up.seen("/hello?py-urllib")), 1)
        # node: a CONNECT by hand, then tls.connect on that socket, trusting only sluice's CA.
        node = ("const http=require('http'),tls=require('tls'),fs=require('fs');"
                "const [port,host,up,ca]=process.argv.slice(1);"
                "http.request({host:'127.0.0.1',port,method:'CONNECT',path:host+':'+up}).on('connect',(res,sock)=>{"
                "const t=tls.connect({socket:sock,servername:host,ca:fs.readFileSync(ca),ALPNProtocols:['http/1.1']},()=>{"
                "t.write('GET /hello?node-1 HTTP/1.1\\r\\nHost: '+host+':'+up+'\\r\\nConnection: close\\r\\n\\r\\n')});"
                "let out='';t.on('data',d=>out+=d);t.on('end',()=>{console.log(out.split('\\r\\n')[0]);process.exit(0)});"
                "t.on('error',e=>{console.log('error '+e.message);process.exit(1)})}).end();")
        r = subprocess.run(["node", "-e", node, str(self.port), "secure.test", str(self.tls_up.port), self.ca],
                           capture_output=True, text=True, env=clean_env(), timeout=60)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "HTTP/1.1 200 OK"), r.stderr)

    def serve_repo(self):
        """A bare repository with one commit (f.txt = "inspected"), served by git http-backend over
        HTTPS with the secure.test certificate; returns its URL."""
        work = tempfile.mkdtemp(prefix="sluice-e2e-git-")
        self.addCleanup(shutil.rmtree, work, True)
        env = clean_env()
        env.update({"HOME": work, "GIT_CONFIG_NOSYSTEM": "1"})
        repo = os.path.join(work, "srv", "repo.git")
        subprocess.run(["git", "init", "-q", "--bare", repo], check=True, env=env, timeout=60)
        src = os.path.join(work, "src")
        subprocess.run(["git", "init", "-q", src], check=True, env=env, timeout=60)
        with open(os.path.join(src, "f.txt"), "w") as f:
            f.write("inspected\n")
        git = ["git", "-C", src, "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run(git + ["add", "f.txt"], check=True, env=env, timeout=60)
        subprocess.run(git + ["commit", "-qm", "one"], check=True, env=env, timeout=60)
        subprocess.run(git + ["push", "-q", repo, "HEAD:refs/heads/main"], check=True, env=env, timeout=60)
        server = git_http.serve(os.path.join(work, "srv"), cert=os.path.join(self.certs, "good.crt"),
                                key=os.path.join(self.certs, "good.key"))
        self.addCleanup(server.shutdown)
        return "https://secure.test:%d/repo.git" % server.server_address[1]

    def test_git_clone_over_inspected_https(self):
        url = self.serve_repo()
        work = tempfile.mkdtemp(prefix="sluice-e2e-clone-")
        self.addCleanup(shutil.rmtree, work, True)
        env = clean_env()
        env.update({"HOME": work, "GIT_CONFIG_NOSYSTEM": "1", "GIT_SSL_CAINFO": self.ca,
                    "https_proxy": "http://127.0.0.1:%d" % self.port})
        r = subprocess.run(["git", "clone", "-q", "-b", "main", url, os.path.join(work, "clone")],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(work, "clone", "f.txt")) as f:
            self.assertEqual(f.read(), "inspected\n")
        d = self.decisions(lambda e: "/repo.git/info/refs" in e.get("url", ""))[0]
        self.assertEqual((d["tls"], d["status"]), ("inspected", 200))

    # --- upstream verification -----------------------------------------------------------

    def test_upstream_certificate_failures_are_a_readable_502_before_the_tunnel(self):
        cases = [("wrongname.test", self.wrong_up, "hostname mismatch"),
                 ("expired.test", self.expired_up, "certificate has expired"),
                 ("stray.test", self.stray_up, "unable to get local issuer certificate")]
        for host, up, error in cases:
            with self.subTest(host=host), Raw(self.port) as c:
                c.send(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (host.encode(), up.port, host.encode()))
                status, headers, body = c.read_response()
                self.assertEqual((status, headers.get("x-sluice-reason")), (502, "upstream-tls-failed"), body)
                self.assertIn(error, body.decode())
                d = self.decisions(lambda e: e.get("host") == host and e.get("kind") == "connect" and
                                   e.get("error") == "upstream-tls-failed")[0]
                self.assertEqual((d["status"], d["tls_error"]), (502, error))
                self.assertEqual(up.seen("/"), [])  # no request went to an origin sluice could not verify

    # --- pinning and refusals ------------------------------------------------------------

    def test_a_client_hello_for_another_name_is_refused(self):
        with self.connect("secure.test") as c:
            with self.assertRaises(OSError):
                self.client_context().wrap_socket(c.sock, server_hostname="other.test")
        e = self.tls_events(lambda e: e.get("reason") == "host-mismatch")[0]
        self.assertEqual((e["host"], e["sni"]), ("secure.test", "other.test"))

    def test_a_request_for_another_host_inside_is_421(self):
        for head in (b"GET /hello?pin-1 HTTP/1.1\r\nHost: other.test:%d\r\n\r\n",
                     b"GET https://other.test:%d/hello?pin-2 HTTP/1.1\r\nHost: secure.test\r\n\r\n"):
            with self.subTest(head=head), self.connect("secure.test") as c:
                t = self.client_context().wrap_socket(c.sock, server_hostname="secure.test")
                t.sendall(head % self.tls_up.port)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = t.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.assertTrue(data.startswith(b"HTTP/1.1 421 "), data)
                self.assertIn(b"X-Sluice-Reason: host-mismatch", data)
        self.assertEqual(self.tls_up.seen("/hello?pin-"), [])

    def test_an_upgrade_inside_is_judged_then_relayed(self):
        with self.connect("secure.test") as c:
            t = self.client_context().wrap_socket(c.sock, server_hostname="secure.test")
            t.sendall(b"GET /upgrade?ws-1 HTTP/1.1\r\nHost: secure.test:%d\r\nConnection: Upgrade\r\n"
                      b"Upgrade: echo\r\n\r\n" % self.tls_up.port)
            data = b""
            while b"\r\n\r\n" not in data:
                data += t.recv(4096)
            self.assertTrue(data.startswith(b"HTTP/1.1 101 "), data)
            payload = os.urandom(300_000)
            t.sendall(payload)
            got = data.split(b"\r\n\r\n", 1)[1]
            while len(got) < len(payload):
                chunk = t.recv(65536)
                self.assertTrue(chunk)
                got += chunk
            self.assertEqual(got, payload)
            t.sendall(b"GET /private/ws HTTP/1.1\r\n\r\n")  # inside the upgraded stream: just bytes, echoed
            want = b"GET /private/ws HTTP/1.1\r\n\r\n"
            back = b""
            while len(back) < len(want):
                back += t.recv(4096)
            self.assertEqual(back, want)
        d = self.decisions(lambda e: e.get("url", "").endswith("/upgrade?ws-1"))[0]
        self.assertEqual((d["status"], d["tls"]), (101, "inspected"))

    def test_large_bodies_both_ways_are_byte_exact_and_a_slow_reader_keeps_sluice_bounded(self):
        # Upload: 24 MB through the client's TLS, sluice's plaintext path and the upstream's TLS.
        n = 24_000_000
        body = os.path.join(self.certs, "upload.bin")
        with open(body, "wb") as f:
            f.write(upstream.pattern(n))
        r = self.curl(self.url("secure.test", "/echo?up-1"),
                      extra=["--data-binary", "@" + body, "-H", "Content-Type: application/octet-stream"])
        self.assertEqual((r.exit_code, r.status), (0, 200), r.stderr)
        echo = json.loads(r.body)
        self.assertEqual((echo["body_len"], echo["body_sha256"]), (n, upstream.pattern_sha256(n)))
        # Download to a reader that stops: sluice stops reading the upstream instead of buffering
        # the body (its memory grows by far less than the 64 MB on offer), then every byte arrives.
        big = 64 << 20

        def rss_kib():
            with open("/proc/%d/status" % self.sluice.proc.pid) as f:
                return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])

        with self.connect("secure.test") as c:
            t = self.client_context().wrap_socket(c.sock, server_hostname="secure.test")
            t.sendall(b"GET /big?n=%d&slow-1 HTTP/1.1\r\nHost: secure.test:%d\r\n\r\n" % (big, self.tls_up.port))
            data = b""
            while b"\r\n\r\n" not in data:
                data += t.recv(65536)
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:200])
            got = data.split(b"\r\n\r\n", 1)[1]
            before = rss_kib()
            time.sleep(1.5)  # the upstream could send it all in this time; the client reads nothing
            grown = rss_kib() - before
            self.assertLess(grown, 16 * 1024, "sluice grew by %d KiB while the client read nothing" % grown)
            h = hashlib.sha256(got)
            left = big - len(got)
            t.settimeout(30)
            while left > 0:
                chunk = t.recv(min(left, 1 << 20))
                self.assertTrue(chunk)
                h.update(chunk)
                left -= len(chunk)
            self.assertEqual(h.hexdigest(), upstream.pattern_sha256(big))

    def test_bytes_that_are_not_tls_after_the_200_are_refused(self):
        before = len(self.tls_up.requests)
        with self.connect("secure.test") as c:
            c.send(b"GET /hello?not-tls HTTP/1.1\r\nHost: secure.test\r\n\r\n")
            self.assertTrue(c.closed_by_peer())
        e = self.tls_events(lambda e: e.get("reason") == "not-tls")[0]
        self.assertEqual(e["host"], "secure.test")
        self.assertEqual(len(self.tls_up.requests), before)
        close = self.sluice.wait_log(lambda x: x.get("event") == "close" and x.get("conn") == e["conn"])[0]
        self.assertEqual(close["cause"], "tls-failed")

    def test_a_client_that_rejects_the_leaf_is_logged_with_its_alert(self):
        r = curl(self.port, self.url("secure.test", "/hello?pinning"))  # trusts only the system store
        self.assertNotEqual(r.exit_code, 0)
        e = self.tls_events(lambda e: e.get("reason") == "client-tls-failed")[0]
        self.assertEqual(e["host"], "secure.test")
        self.assertIn(e["alert"], ("unknown CA", "bad certificate"))  # what curl's OpenSSL sends
        self.assertEqual(self.tls_up.seen("/hello?pinning"), [])

    # --- leaves and opaque tunnels ----------------------------------------------------------

    def test_leaves_are_cached_and_carry_the_host(self):
        certs = []
        for _ in range(2):
            with self.connect("secure.test") as c:
                t = self.client_context().wrap_socket(c.sock, server_hostname="secure.test")
                certs.append(t.getpeercert(binary_form=True))
                info = t.getpeercert()
                t.close()
        self.assertEqual(certs[0], certs[1])  # the same leaf, from the cache
        self.assertIn(("DNS", "secure.test"), info["subjectAltName"])
        issuer = dict(x[0] for x in info["issuer"])
        self.assertTrue(issuer["commonName"].startswith("sluice inspection CA"))

    def test_hosts_not_inspected_stay_byte_exact_tunnels(self):
        with self.connect("echo.test", up=self.echo) as c:
            payload = os.urandom(200_000)
            c.send(payload)
            self.assertEqual(c.read_exact(len(payload)), payload)
        r = self.curl(self.url("plain.test", "/hello?excluded"))  # inspect_exclude: the origin's own cert
        self.assertNotEqual(r.exit_code, 0)  # curl trusts only sluice's CA, and this leaf is the origin's
        self.assertIn("certificate", r.stderr)
        d = self.decisions(lambda e: e.get("host") == "plain.test" and e.get("kind") == "connect")[0]
        self.assertNotIn("tls", d)


    # --- SOCKS5 -------------------------------------------------------------------------------

    def test_socks5_to_an_inspected_port_is_inspected(self):
        r = subprocess.run(["curl", "-sS", "--noproxy", "", "--socks5-hostname", "127.0.0.1:%d" % self.port,
                            "--cacert", self.ca, "-w", " %{http_code} %{local_port}",
                            self.url("secure.test", "/hello?socks-1")],
                           capture_output=True, text=True, env=clean_env(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        body, code, lport = r.stdout.rsplit(" ", 2)
        self.assertEqual((body, code), ("hello\n", "200"))
        d = self.decisions(lambda e: e.get("url", "").endswith("socks-1"))[0]
        self.assertEqual((d["kind"], d["tls"], d["status"]), ("http", "inspected", 200))
        s = self.decisions(lambda e: e.get("conn") == d["conn"] and e.get("kind") == "socks")[0]
        self.assertEqual((s["tls"], s["socks_reply"], s["client"]), ("inspected", 0, "127.0.0.1:" + lport))
        # An upstream sluice cannot verify: SOCKS5 reply 1 (general failure), the reason in the log.
        r = subprocess.run(["curl", "-sS", "--noproxy", "", "--socks5-hostname", "127.0.0.1:%d" % self.port,
                            "--cacert", self.ca, self.url("stray.test", "/hello?socks-2", self.stray_up)],
                           capture_output=True, text=True, env=clean_env(), timeout=60)
        self.assertNotEqual(r.returncode, 0)
        f = self.decisions(lambda e: e.get("kind") == "socks" and e.get("host") == "stray.test")[0]
        self.assertEqual((f["error"], f["socks_reply"], f["tls_error"]),
                         ("upstream-tls-failed", 1, "unable to get local issuer certificate"))
        # An inspected host on a port no entry names stays an opaque tunnel over SOCKS5.
        r = subprocess.run(["curl", "-sS", "--noproxy", "", "--socks5-hostname", "127.0.0.1:%d" % self.port,
                            "--cacert", os.path.join(self.certs, "ca.crt"),
                            self.url("wrongname.test", "/hello?socks-3", self.wrong_up)],
                           capture_output=True, text=True, env=clean_env(), timeout=60)
        self.assertNotEqual(r.returncode, 0)  # the origin's own certificate, for another name
        o = self.decisions(lambda e: e.get("kind") == "socks" and e.get("host") == "wrongname.test")[0]
        self.assertEqual(o["socks_reply"], 0)
        self.assertNotIn("tls", o)

    # --- sluice run: a CA for the run, trusted inside the jail with no flags -----------------

    def run_jail(self, policy_text, script, flags=(), script_args=(), timeout=60):
        """`sluice run --policy` (policy_text plus the tests' upstream CA) of `sh -c script` in a
        work directory of its own, HOME outside it; returns (work dir, decision log path, result)."""
        work = tempfile.mkdtemp(prefix="sluice-e2e-run-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, work, True)
        policy = os.path.join(work, "policy.yaml")
        with open(policy, "w") as f:
            f.write(policy_text + "tls:\n  upstream_ca: [%s/ca.crt]\n" % self.certs)
        log = os.path.join(work, "decisions.jsonl")
        env = clean_env()
        env["HOME"] = os.path.join(work, "home")  # not the writable cwd, whose dotfiles the jail guards
        os.mkdir(env["HOME"])
        r = run_bounded([SLUICE, "run"] + list(flags) + ["--policy", policy, "--dns-server",
                                                         "127.0.0.1:%d" % self.names_dns.port, "--log", log,
                                                         "--", "sh", "-c", "export ASAN_OPTIONS=detect_leaks=0; " +
                                                         script] + list(script_args),
                        cwd=work, capture_output=True, text=True, env=env, timeout=timeout)
        return work, log, r

    def test_sluice_run_jail_trusts_its_own_ca_with_no_flags(self):
        url = self.url("secure.test", "/hello?run-%s")
        node = ("const http=require('http'),tls=require('tls');const u=new URL(process.argv[1]);"
                "http.request({host:'127.0.0.1',port:3128,method:'CONNECT',path:u.host}).on('connect',(res,sock)=>{"
                "const t=tls.connect({socket:sock,servername:u.hostname},()=>{"
                "t.write('GET '+u.pathname+u.search+' HTTP/1.1\\r\\nHost: '+u.host+'\\r\\nConnection: close\\r\\n\\r\\n')});"
                "let o='';t.on('data',d=>o+=d);t.on('end',()=>console.log(o.split('\\r\\n')[0]));"
                "t.on('error',e=>console.log('error '+e.message))}).end();")
        script = ("set -e; curl -sS %s; python3 -c 'import sys,urllib.request; "
                  "print(urllib.request.urlopen(sys.argv[1]).read().decode().strip())' %s; node -e \"$1\" %s; "
                  "git clone -q -b main %s clone; cat clone/f.txt; "
                  "if grep -rl 'PRIVATE KEY' /run/sluice /etc/ssl/certs/ca-certificates.crt; then echo KEY-VISIBLE; fi; "
                  "echo \"$SSL_CERT_FILE $GIT_SSL_CAINFO $NODE_EXTRA_CA_CERTS\"") % (
                      url % "curl", url % "python", url % "node", self.serve_repo())
        work, log, r = self.run_jail(
            "policies:\n  default:\n    allow: [secure.test, 127.0.0.1]\n    inspect: [secure.test]\n", script,
            script_args=("sh", node), timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        bundle = "/run/sluice/ca-bundle.crt"
        self.assertEqual(r.stdout.split("\n"),
                         ["hello", "hello", "HTTP/1.1 200 OK", "inspected", " ".join([bundle] * 3), ""])
        entries = [json.loads(x) for x in open(log)]
        inspected = [e for e in entries if e.get("event") == "decision" and e.get("tls") == "inspected"
                     and e.get("kind") == "http"]
        self.assertEqual(sorted(e["url"].rsplit("-", 1)[1] for e in inspected if "?run-" in e["url"]),
                         ["curl", "node", "python"])
        self.assertTrue(any("/repo.git/info/refs" in e["url"] for e in inspected))
        self.assertEqual([n for n in os.listdir(work) if n.endswith(".crt") or n.endswith(".key")], [])

    def test_sluice_run_transparent_inspects_and_refuses_paths_readably(self):
        # --transparent: curl ignores the proxy (the nft redirect captures it), the jail's
        # bundle trusts the run's CA, and requests inside the inspected TLS are judged by path.
        fmt = "'%{http_code} %header{x-sluice-reason}\\n'"
        # The third: the whole connection is refused (port 1 of an inspected host): the program
        # speaks TLS, so the refusal comes inside it, as a 403, not as a bare reset.
        script = ("curl -sS --max-time 30 --noproxy '*' %s; "
                  "curl -sS --max-time 30 --noproxy '*' -o /dev/null -w %s %s; echo curl=$?; "
                  "curl -sS --max-time 30 --noproxy '*' -w %s https://secure.test:1/x?transparent-refused; "
                  "echo curl=$?; "
                  # Plain HTTP to the same refused host and port: no TLS, the 403 as it is.
                  "curl -sS --max-time 30 --noproxy '*' -o /dev/null -w %s http://secure.test:1/y?transparent-refused; "
                  "echo curl=$?") % (
                      self.url("secure.test", "/hello?transparent-inspected"), fmt,
                      self.url("secure.test", "/private/key?transparent-inspected"), fmt, fmt)
        _, log, r = self.run_jail(
            "policies:\n  default:\n    allow: [secure.test, 127.0.0.1]\n"
            "    deny: [{host: secure.test, path: /private/}, \"secure.test:1\"]\n    inspect: [secure.test]\n",
            script, flags=("--transparent",))
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.split("\n")
        self.assertEqual(out[:3], ["hello", "403 denied-by-rule", "curl=0"], r.stderr)
        # The body names the rule; then the status line and the reason, as for any refusal.
        self.assertIn("secure.test:1", r.stdout)
        self.assertEqual(out[-5:], ["403 denied-by-rule", "curl=0", "403 denied-by-rule", "curl=0", ""], r.stdout)
        self.assertIn("sluice: denied secure.test:1 (denied-by-rule", r.stderr)
        self.assertEqual(self.tls_up.seen("/private/key?transparent-inspected"), [])
        self.assertEqual(len(self.tls_up.seen("/hello?transparent-inspected")), 1)
        with open(log) as f:
            entries = [json.loads(x) for x in f]
        inspected = [e for e in entries if e.get("event") == "decision" and e.get("tls") == "inspected"
                     and e.get("kind") == "http" and "transparent-inspected" in e.get("url", "")]
        self.assertEqual(sorted((e["url"].split("?")[0].rsplit("/", 1)[1], e["status"]) for e in inspected),
                         [("hello", 200), ("key", 403)], entries)
        refused = [e for e in entries if e.get("event") == "decision" and e.get("port") == 1]
        # The connection's refusal, then the request inside it (answered, not forwarded).
        self.assertEqual([(e["kind"], e["status"], e.get("reason")) for e in refused],
                         [("connect", 403, "denied-by-rule"), ("http", 403, "denied-by-rule"),
                          ("connect", 403, "denied-by-rule")], refused)
        self.assertTrue(refused[1]["url"].endswith("/x?transparent-refused"), refused)


class InspectConfigTest(E2E):
    def test_inspect_without_a_ca_is_an_error_naming_the_fix(self):
        config = ("listeners:\n  - {name: p, tcp: 127.0.0.1:0, policy: x}\npolicies:\n  x:\n"
                  "    inspect: [secure.test]\n")
        with self.assertRaises(AssertionError) as e:
            self.start_sluice_for_test(config)
        self.assertIn("policy 'x' inspects hosts (inspect:) but no CA is configured", str(e.exception))

    def test_check_says_whether_an_https_url_would_be_inspected_and_allowed(self):
        d = tempfile.mkdtemp(prefix="sluice-e2e-check-")
        self.addCleanup(shutil.rmtree, d, True)
        make_sluice_ca(d + "/ca")
        base = ("listeners:\n  - {name: a, tcp: 127.0.0.1:3128}\npolicies:\n  default:\n"
                "    allow: [api.test/repos/myorg/, plain.test]\n    inspect: [plain.test]\n")
        with open(d + "/with-ca.yaml", "w") as f:
            f.write(base + "tls: {ca_cert: ca/ca.crt, ca_key: ca/ca.key}\n")
        with open(d + "/no-ca.yaml", "w") as f:
            f.write(base.replace("    inspect: [plain.test]\n", ""))
        rows = [("with-ca", "https://api.test/repos/myorg/x", "GET", 0,
                 'allow api.test:443 (inspected): policy "default", rule "api.test/repos/myorg/" (allowed-by-rule)'),
                ("with-ca", "https://api.test/elsewhere", "GET", 1,
                 'deny api.test:443 (inspected): policy "default", rule "default" (not-in-allowlist)'),
                ("with-ca", "https://plain.test:8443/x", "POST", 0,
                 'allow plain.test:8443 (inspected): policy "default", rule "plain.test" (allowed-by-rule)'),
                ("with-ca", "https://other.test/", "GET", 1,
                 'deny other.test:443 (opaque tunnel: not inspected): policy "default", rule "default" '
                 '(not-in-allowlist)'),
                ("no-ca", "https://api.test/repos/myorg/x", "GET", 1,
                 'deny api.test:443 (opaque tunnel: not inspected): policy "default", rule "api.test/repos/myorg/" '
                 '(needs-inspection)')]
        for config, url, method, code, line in rows:
            with self.subTest(config=config, url=url):
                r = subprocess.run([SLUICE, "check", "--config", "%s/%s.yaml" % (d, config), "--method", method,
                                    "--url", url], capture_output=True, text=True, timeout=30)
                self.assertEqual((r.returncode, r.stdout.strip()), (code, line), r.stderr)

    def test_a_ca_key_others_may_read_is_refused(self):
        d = tempfile.mkdtemp(prefix="sluice-e2e-ca-")
        self.addCleanup(shutil.rmtree, d, True)
        make_sluice_ca(d + "/ca")
        os.chmod(d + "/ca/ca.key", 0o644)
        config = ("listeners:\n  - {name: p, tcp: 127.0.0.1:0, policy: x}\npolicies:\n  x:\n"
                  "    inspect: [secure.test]\ntls: {ca_cert: %s/ca/ca.crt, ca_key: %s/ca/ca.key}\n" % (d, d))
        with self.assertRaises(AssertionError) as e:
            self.start_sluice_for_test(config)
        self.assertIn("is readable by group or others; run chmod 600 on it", str(e.exception))
