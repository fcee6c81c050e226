"""End-to-end: SOCKS5 on the same listeners as HTTP. Real curl (--socks5-hostname,
--socks5), `sluice connect`, and a raw client of our own for every malformed,
truncated and refused message; the decision log says kind "socks". Listener auth
applies to SOCKS5 (RFC 1929) and to HTTP (Proxy-Authorization Basic, 407)."""
import os
import socket
import struct
import subprocess
import tempfile

from harness import E2E, SLUICE, Raw, clean_env, curl, free_port, has_ipv6_loopback, sha256, upstream, wait_for, SLOW

CONFIG = """
listeners:
  - name: open
    tcp: 127.0.0.1:0
    policy: agents
  - name: locked
    tcp: 127.0.0.1:0
    policy: agents
    auth: {username: agent, password: "s3cret:x"}
  - name: strict
    tcp: 127.0.0.1:0
    policy: strict
  - name: inband
    tcp: 127.0.0.1:0
    policy: inband
  - name: sock
    unix: {dir}/socks.sock
    policy: agents
policies:
  agents:
    allow: [allowed.test, echo.test, closed.test, missing.test, "127.0.0.1", "::1"]
    deny: [denied.allowed.test]
  strict:
    allow: [allowed.test]
  inband:
    allow: [echo.test, "127.0.0.1"]
    deny: ["git.denied.test"]
    ssh_in_band_reason: true
resolver:
  servers: ["127.0.0.1:DNSPORT"]
  timeout_ms: 2000
log:
  path: "{log}"
"""


def request(host, port, cmd=1):
    """A SOCKS5 request: names as a domain, IP literals as addresses."""
    try:
        return bytes([5, cmd, 0, 1]) + socket.inet_pton(socket.AF_INET, host) + struct.pack("!H", port)
    except OSError:
        pass
    try:
        return bytes([5, cmd, 0, 4]) + socket.inet_pton(socket.AF_INET6, host) + struct.pack("!H", port)
    except OSError:
        pass
    return bytes([5, cmd, 0, 3, len(host)]) + host.encode() + struct.pack("!H", port)


NOAUTH = b"\x05\x01\x00"


class SocksTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sluice = cls.start_sluice(CONFIG.replace("DNSPORT", str(cls.dns.port)))
        cls.port = cls.sluice.tcp_port("open")
        cls.locked = cls.sluice.tcp_port("locked")
        cls.closed_port = free_port()

    def url(self, host, path="/hello"):
        return "http://%s:%d%s" % (host, self.up.port, path)

    def socks_curl(self, url, port=None, hostname=True, extra=()):
        """curl through SOCKS5 on a listener; returns (exit code, body, stderr, local port)."""
        self.curl_mark = len(self.sluice.log())  # curl's local port may repeat an earlier one
        with tempfile.TemporaryDirectory(prefix="sluice-curl-") as d:
            body = os.path.join(d, "body")
            flag = "--socks5-hostname" if hostname else "--socks5"
            args = ["curl", "-sS", "--noproxy", "", flag, "127.0.0.1:%d" % (port or self.port), "-o", body,
                    "-w", "%{local_port}", "--max-time", str(int(20 * SLOW))] + list(extra) + [url]
            out = subprocess.run(args, capture_output=True, text=True, env=clean_env(), timeout=60 * SLOW)
            data = b""
            if os.path.exists(body):
                with open(body, "rb") as f:
                    data = f.read()
            return out.returncode, data, out.stderr, int(out.stdout or 0)

    def decision_of_port(self, local_port):
        client = "127.0.0.1:%d" % local_port
        return self.sluice.wait_log(lambda e: e["event"] == "decision" and e.get("client") == client,
                                    what="decision of " + client, since=self.curl_mark)[0]

    def decision_of(self, c):
        return self.sluice.wait_log(lambda e: e["event"] == "decision" and e.get("client") == c.local_address(),
                                    what="decision of " + c.local_address())[0]

    def greet(self, c):
        c.send(NOAUTH)
        self.assertEqual(c.read_exact(2), b"\x05\x00")

    def reply_code(self, c):
        head = c.read_exact(10)
        self.assertEqual(head[0], 5)
        self.assertEqual(head[3], 1)  # BND.ADDR is IPv4 0.0.0.0:0
        self.assertEqual(head[4:], b"\0\0\0\0\0\0")
        return head[1]

    # --- curl ---------------------------------------------------------------------

    def test_curl_socks5_hostname_is_byte_exact_and_logged(self):
        n = 3_000_000
        rc, body, err, lport = self.socks_curl(self.url("allowed.test", "/big?n=%d" % n))
        self.assertEqual(rc, 0, err)
        self.assertEqual(sha256(body), upstream.pattern_sha256(n))
        d = self.decision_of_port(lport)
        self.assertEqual((d["kind"], d["method"], d["host"], d["port"]), ("socks", "CONNECT", "allowed.test", self.up.port))
        self.assertEqual((d["verdict"], d["reason"], d["rule"], d["socks_reply"]), ("allow", "allowed-by-rule", "allowed.test", 0))
        self.assertEqual(d["addr"], "127.0.0.1:%d" % self.up.port)
        self.assertIn("dns_ms", d)
        close = self.sluice.wait_log(lambda e: e["event"] == "close" and e["conn"] == d["conn"], what="close")[0]
        self.assertGreater(close["bytes_down"], n)

    def test_curl_socks5_with_an_ip_literal_is_judged_as_the_literal(self):
        rc, body, err, lport = self.socks_curl(self.url("127.0.0.1"), hostname=False)
        self.assertEqual((rc, body), (0, b"hello\n"), err)
        d = self.decision_of_port(lport)
        self.assertEqual((d["host"], d["rule"], d["socks_reply"]), ("127.0.0.1", "127.0.0.1", 0))
        self.assertNotIn("dns_ms", d)  # a literal is never resolved

    def test_curl_denied_is_reply_2_and_nothing_reaches_the_origin(self):
        for host, reason in (("other.test", "not-in-allowlist"), ("denied.allowed.test", "denied-by-rule")):
            rc, _, err, lport = self.socks_curl(self.url(host, "/hello?socks-denied"))
            self.assertEqual(rc, 97, err)
            self.assertIn("(2)", err)
            d = self.decision_of_port(lport)
            self.assertEqual((d["kind"], d["verdict"], d["error"], d["socks_reply"]), ("socks", "deny", reason, 2))
        self.assertEqual(self.seen("/hello?socks-denied"), [])

    def test_curl_dns_failure_is_reply_4(self):
        rc, _, err, lport = self.socks_curl("http://missing.test:%d/" % self.up.port)
        self.assertEqual(rc, 97, err)
        self.assertIn("(4)", err)
        d = self.decision_of_port(lport)
        self.assertEqual((d["verdict"], d["error"], d["socks_reply"]), ("allow", "dns-failed", 4))

    def test_curl_refused_port_is_reply_5(self):
        rc, _, err, lport = self.socks_curl("http://closed.test:%d/" % self.closed_port)
        self.assertEqual(rc, 97, err)
        self.assertIn("(5)", err)
        d = self.decision_of_port(lport)
        self.assertEqual((d["error"], d["socks_reply"], d["addr"]), ("connect-failed", 5, "127.0.0.1:%d" % self.closed_port))

    def test_resolved_address_check_applies_to_socks(self):
        rc, _, err, lport = self.socks_curl(self.url("allowed.test"), port=self.sluice.tcp_port("strict"))
        self.assertEqual(rc, 97, err)
        d = self.decision_of_port(lport)
        self.assertEqual((d["error"], d["address_class"], d["socks_reply"]), ("resolved-address-denied", "loopback", 2))

    def test_ipv6_literal(self):
        if not has_ipv6_loopback():
            self.skipTest("no IPv6 loopback on this machine")
        echo6 = upstream.EchoServer("::1")
        self.addCleanup(echo6.close)
        with Raw(self.port) as c:
            self.greet(c)
            c.send(request("::1", echo6.port))
            self.assertEqual(self.reply_code(c), 0)
            c.send(b"six")
            self.assertEqual(c.read_exact(3), b"six")
            d = self.decision_of(c)
            self.assertEqual((d["host"], d["rule"], d["addr"]), ("::1", "::1", "[::1]:%d" % echo6.port))

    # --- credentials ------------------------------------------------------------------

    def test_username_password_right_and_wrong(self):
        rc, body, err, lport = self.socks_curl(self.url("allowed.test"), port=self.locked,
                                               extra=["--proxy-user", "agent:s3cret:x"])
        self.assertEqual((rc, body), (0, b"hello\n"), err)
        rc, _, err, lport = self.socks_curl(self.url("allowed.test"), port=self.locked,
                                            extra=["--proxy-user", "agent:wrong"])
        self.assertNotEqual(rc, 0)
        d = self.decision_of_port(lport)
        self.assertEqual((d["kind"], d["error"], d["socks_auth"]), ("socks", "proxy-auth-failed", 1))
        rc, _, err, lport = self.socks_curl(self.url("allowed.test"), port=self.locked)
        self.assertNotEqual(rc, 0)
        d = self.decision_of_port(lport)
        self.assertEqual((d["error"], d["socks_method"]), ("proxy-auth-required", 255))

    def test_username_password_raw(self):
        with Raw(self.locked) as c:
            c.send(b"\x05\x02\x00\x02")
            self.assertEqual(c.read_exact(2), b"\x05\x02")
            c.send(b"\x01\x05agent\x08s3cret:x" + request("echo.test", self.echo.port) + b"early")
            self.assertEqual(c.read_exact(2), b"\x01\x00")
            self.assertEqual(self.reply_code(c), 0)
            self.assertEqual(c.read_exact(5), b"early")  # early bytes wait for the verdict, then go through
        with Raw(self.locked) as c:
            c.send(b"\x05\x02\x00\x02\x01\x05agent\x08s3cret:y" + request("echo.test", self.echo.port))
            self.assertEqual(c.read_exact(4), b"\x05\x02\x01\x01")
            self.assertTrue(c.closed_by_peer())

    def test_http_on_a_locked_listener_needs_basic_credentials(self):
        for tunnel in (False, True):
            r = curl(self.locked, self.url("allowed.test", "/hello?locked-%d" % tunnel), tunnel=tunnel)
            self.assertEqual(r.status, 407, r)
            r2 = curl(self.locked, self.url("allowed.test"), tunnel=tunnel, extra=["-U", "agent:nope"])
            self.assertEqual(r2.status, 407, r2)
            r3 = curl(self.locked, self.url("allowed.test"), tunnel=tunnel, extra=["-U", "agent:s3cret:x"])
            self.assertEqual((r3.status, r3.body), (200, b"hello\n"), r3)
        self.assertEqual(self.seen("/hello?locked-"), [])
        with Raw(self.locked) as c:
            c.send(b"GET %s HTTP/1.1\r\nHost: allowed.test\r\n\r\n" % self.url("allowed.test").encode())
            status, headers, body = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (407, "proxy-auth-required"))
            self.assertEqual(headers["proxy-authenticate"], 'Basic realm="sluice"')
        with Raw(self.locked) as c:
            c.send(b"CONNECT allowed.test:1 HTTP/1.1\r\nProxy-Authorization: Basic YWdlbnQ6bm9wZQ==\r\n\r\n")
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (407, "proxy-auth-failed"))
            d = self.decision_of(c)
            self.assertEqual((d["kind"], d["error"], d["status"]), ("connect", "proxy-auth-failed", 407))

    # --- malformed, truncated, refused --------------------------------------------------

    def test_greeting_with_no_method_or_no_acceptable_method(self):
        for greeting in (b"\x05\x00", b"\x05\x01\x02", b"\x05\x02\x01\x80"):
            with Raw(self.port) as c:
                c.send(greeting + request("echo.test", self.echo.port))
                self.assertEqual(c.read_exact(2), b"\x05\xff")
                self.assertTrue(c.closed_by_peer())

    def test_unknown_address_type_is_reply_8(self):
        with Raw(self.port) as c:
            self.greet(c)
            c.send(b"\x05\x01\x00\x02" + b"\x7f\x00\x00\x01\x00\x50")
            self.assertEqual(self.reply_code(c), 8)
            self.assertTrue(c.closed_by_peer())
            self.assertEqual(self.decision_of(c)["error"], "address-type-not-supported")

    def test_bind_and_udp_associate_are_reply_7(self):
        # Whatever address they carry: clients usually send 0.0.0.0:0 for UDP ASSOCIATE.
        for cmd, name, host, port in ((2, "BIND", "127.0.0.1", self.echo.port),
                                      (3, "UDP-ASSOCIATE", "127.0.0.1", self.echo.port),
                                      (3, "UDP-ASSOCIATE", "0.0.0.0", 0), (2, "BIND", "0.0.0.0", 0)):
            with self.subTest(name=name, port=port), Raw(self.port) as c:
                self.greet(c)
                c.send(request(host, port, cmd))
                self.assertEqual(self.reply_code(c), 7)
                self.assertTrue(c.closed_by_peer())
                d = self.decision_of(c)
                self.assertEqual((d["method"], d["error"], d["socks_reply"]), (name, "command-not-supported", 7))

    def test_malformed_requests_are_reply_1(self):
        for bad in (b"\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50",   # wrong version
                    b"\x05\x01\x01\x01\x7f\x00\x00\x01\x00\x50",   # reserved byte set
                    b"\x05\x01\x00\x03\x00\x00\x50",               # empty name
                    b"\x05\x01\x00\x03\x08bad host\x00\x50",       # not a host name
                    b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x00"):  # port 0
            with Raw(self.port) as c:
                self.greet(c)
                c.send(bad)
                self.assertEqual(self.reply_code(c), 1, bad)
                self.assertTrue(c.closed_by_peer())

    def test_truncated_request_then_eof_is_reply_1(self):
        with Raw(self.port) as c:
            self.greet(c)
            c.send(b"\x05\x01\x00\x03\x0aecho.t")
            c.shutdown_write()
            self.assertEqual(self.reply_code(c), 1)
            self.assertTrue(c.closed_by_peer())
            self.assertEqual(self.decision_of(c)["error"], "bad-request")
        with Raw(self.port) as c:  # a truncated greeting: nothing to answer, the connection just closes
            c.send(b"\x05\x03\x00")
            c.shutdown_write()
            self.assertTrue(c.closed_by_peer())

    def test_nothing_is_read_past_a_refused_request(self):
        spy = upstream.EchoServer()
        self.addCleanup(spy.close)
        # One write: greeting, a denied request, then a second request for an allowed target and
        # payload. The second request must never be parsed, let alone dialed.
        with Raw(self.port) as c:
            c.send(NOAUTH + request("other.test", spy.port) + request("127.0.0.1", spy.port) + b"PAYLOAD" * 100)
            self.assertEqual(c.read_exact(2), b"\x05\x00")
            self.assertEqual(self.reply_code(c), 2)
            self.assertTrue(c.closed_by_peer())
            decisions = self.sluice.wait_log(lambda e: e["event"] == "decision" and e.get("client") == c.local_address(),
                                             what="decision")
        self.assertEqual(len(decisions), 1)
        self.assertEqual(decisions[0]["host"], "other.test")
        self.assertEqual(spy.connections, 0)
        # The same after a malformed request and after a refused greeting.
        with Raw(self.port) as c:
            c.send(NOAUTH + b"\x05\x01\x00\x09" + request("127.0.0.1", spy.port))
            self.assertEqual(c.read_exact(2), b"\x05\x00")
            self.assertEqual(self.reply_code(c), 8)
            self.assertTrue(c.closed_by_peer())
        with Raw(self.port) as c:
            c.send(b"\x05\x01\x80" + request("127.0.0.1", spy.port))
            self.assertEqual(c.read_exact(2), b"\x05\xff")
            self.assertTrue(c.closed_by_peer())
        self.assertEqual(spy.connections, 0)

    def test_socks4_is_refused_with_a_log_line(self):
        with Raw(self.port) as c:
            c.send(b"\x04\x01" + struct.pack("!H", self.echo.port) + b"\x7f\x00\x00\x01user\x00")
            self.assertEqual(c.read_exact(8), b"\x00\x5b\x00\x00\x00\x00\x00\x00")
            self.assertTrue(c.closed_by_peer())
            d = self.decision_of(c)
            self.assertEqual((d["kind"], d["error"], d["socks4_reply"]), ("socks4", "socks4-unsupported", 91))

    # --- tunnels ------------------------------------------------------------------------

    def test_tunnel_half_close_passes_through(self):
        with Raw(self.port) as c:
            self.greet(c)
            c.send(request("echo.test", self.echo.port))
            self.assertEqual(self.reply_code(c), 0)
            c.send(b"x" * 100000)
            c.shutdown_write()  # the echo server answers the rest, then closes
            self.assertEqual(c.read_to_eof(), b"x" * 100000)

    def test_unix_listener_speaks_socks_with_peer_credentials(self):
        with Raw(self.sluice.unix_path("sock")) as c:
            self.greet(c)
            c.send(request("echo.test", self.echo.port))
            self.assertEqual(self.reply_code(c), 0)
            c.send(b"over unix")
            self.assertEqual(c.read_exact(9), b"over unix")
        d = self.sluice.wait_log(lambda e: e["event"] == "decision" and e["listener"] == "sock", what="unix decision")[0]
        self.assertEqual((d["kind"], d["client"], d["peer"]["pid"]), ("socks", "unix", os.getpid()))

    def test_in_band_reason_for_denied_ssh(self):
        with Raw(self.sluice.tcp_port("inband")) as c:
            self.greet(c)
            c.send(request("git.denied.test", 22))
            self.assertEqual(self.reply_code(c), 0)  # "granted": the reason follows in-band
            data = c.read_to_eof()
            self.assertTrue(data.startswith(b"SSH-2.0-sluice\r\n"), data)
            pkt = data[len(b"SSH-2.0-sluice\r\n"):]
            length, padding, msg = struct.unpack("!IBB", pkt[:6])
            self.assertEqual((len(pkt), msg), (4 + length, 1))  # SSH_MSG_DISCONNECT
            reason_code, text_len = struct.unpack("!II", pkt[6:14])
            text = pkt[14:14 + text_len].decode()
            self.assertIn('git.denied.test:22 denied by rule "git.denied.test"', text)
            d = self.decision_of(c)
            self.assertEqual((d["verdict"], d["error"], d["in_band_reason"], d["socks_reply"]),
                             ("deny", "denied-by-rule", True, 0))
        with Raw(self.sluice.tcp_port("inband")) as c:  # other ports: the plain refusal
            self.greet(c)
            c.send(request("git.denied.test", 443))
            self.assertEqual(self.reply_code(c), 2)
        with Raw(self.port) as c:  # a policy without the switch: the plain refusal on 22 too
            self.greet(c)
            c.send(request("other.test", 22))
            self.assertEqual(self.reply_code(c), 2)

    def test_sluice_connect_uses_socks_or_connect(self):
        for proxy, kind in (("127.0.0.1:%d" % self.port, "socks"), ("socks5h://127.0.0.1:%d" % self.port, "socks"),
                            ("http://127.0.0.1:%d" % self.port, "connect"),
                            ("socks5h://agent:s3cret%%3Ax@127.0.0.1:%d" % self.locked, "socks"),
                            ("http://agent:s3cret%%3Ax@127.0.0.1:%d" % self.locked, "connect")):
            before = len([e for e in self.sluice.log() if e["event"] == "decision" and e.get("kind") == kind])
            r = subprocess.run([SLUICE, "connect", "--proxy", proxy, "echo.test", str(self.echo.port)], input=b"ping",
                               capture_output=True, timeout=30 * SLOW, env=clean_env())
            self.assertEqual((r.returncode, r.stdout), (0, b"ping"), (proxy, r.stderr))
            self.sluice.wait_log(lambda e: e["event"] == "decision" and e.get("kind") == kind, count=before + 1,
                                 what="%s decision for %s" % (kind, proxy))
        r = subprocess.run([SLUICE, "connect", "--proxy", "127.0.0.1:%d" % self.port, "other.test", "22"],
                           capture_output=True, text=True, timeout=30 * SLOW, env=clean_env())
        self.assertEqual(r.returncode, 1)
        self.assertIn("other.test:22 refused: SOCKS5 reply 2 (connection not allowed by ruleset)", r.stderr)
        r = subprocess.run([SLUICE, "connect", "--proxy", "127.0.0.1:%d" % self.locked, "echo.test", "1"],
                           capture_output=True, text=True, timeout=30 * SLOW, env=clean_env())
        self.assertEqual(r.returncode, 1)
        self.assertIn("accepts none of the offered SOCKS5 methods", r.stderr)

    def test_sluice_connect_falls_back_to_connect_for_an_http_only_proxy(self):
        # A stand-in HTTP-only proxy: answers anything that is not HTTP with a 400 and closes,
        # and a CONNECT with 200, then echoes.
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        self.addCleanup(srv.close)
        import threading

        def serve():
            for _ in range(2):
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                with c:
                    c.settimeout(10)
                    first = c.recv(4096)
                    if not first.startswith(b"CONNECT "):
                        c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                        continue
                    c.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    while True:
                        data = c.recv(4096)
                        if not data:
                            break
                        c.sendall(data)
        threading.Thread(target=serve, daemon=True).start()
        r = subprocess.run([SLUICE, "connect", "--proxy", "127.0.0.1:%d" % srv.getsockname()[1], "x.test", "1"],
                           input=b"fallback", capture_output=True, timeout=30 * SLOW, env=clean_env())
        self.assertEqual((r.returncode, r.stdout), (0, b"fallback"), r.stderr)


class SocksLimitsTest(E2E):
    def test_over_the_listener_cap_socks_gets_no_acceptable_method(self):
        s = self.start_sluice_for_test(
            "listeners: [{name: a, tcp: \"127.0.0.1:0\"}]\npolicies: {default: {allow: [\"127.0.0.1\"]}}\n"
            "limits: {max_connections_per_listener: 1}\nlog: {path: \"{log}\"}\n")
        with Raw(s.tcp_port("a")) as held:
            held.send(NOAUTH)
            self.assertEqual(held.read_exact(2), b"\x05\x00")
            with Raw(s.tcp_port("a")) as c:
                c.send(NOAUTH)
                self.assertEqual(c.read_exact(2), b"\x05\xff")
                self.assertTrue(c.closed_by_peer())
            d = s.wait_log(lambda e: e.get("error") == "too-many-connections")[0]
            self.assertEqual((d["kind"], d["socks_method"]), ("socks", 255))
            with Raw(s.tcp_port("a")) as c:  # HTTP over the cap: 503, as before
                c.send(b"GET http://127.0.0.1:1/ HTTP/1.1\r\n\r\n")
                self.assertEqual(c.read_response()[0], 503)


    def test_connect_timeout_is_reply_6(self):
        # A listener whose accept queue is full drops further SYNs: a connect that never completes.
        black = socket.socket()
        black.bind(("127.0.0.1", 0))
        black.listen(0)
        self.addCleanup(black.close)
        filler = socket.create_connection(black.getsockname())
        self.addCleanup(filler.close)
        s = self.start_sluice_for_test(
            "listeners: [{name: a, tcp: \"127.0.0.1:0\"}]\npolicies: {default: {allow: [\"127.0.0.1\"]}}\n"
            "limits: {connect_timeout_ms: 400, header_timeout_ms: 300}\nlog: {path: \"{log}\"}\n")
        with Raw(s.tcp_port("a")) as c:
            c.send(NOAUTH + request("127.0.0.1", black.getsockname()[1]))
            self.assertEqual(c.read_exact(2), b"\x05\x00")
            head = c.read_exact(10)
            self.assertEqual(head[1], 6)
        d = s.wait_log(lambda e: e["event"] == "decision")[0]
        self.assertEqual((d["kind"], d["error"], d["socks_reply"]), ("socks", "connect-timeout", 6))
        # A handshake that stalls half way is cut at header_timeout.
        with Raw(s.tcp_port("a")) as c:
            c.send(NOAUTH + b"\x05\x01")
            self.assertEqual(c.read_exact(2), b"\x05\x00")
            self.assertEqual(c.read_exact(10)[1], 1)
            self.assertTrue(c.closed_by_peer())
        self.assertEqual(s.wait_log(lambda e: e.get("error") == "header-timeout")[0]["socks_reply"], 1)
