"""End-to-end: the real `sluice serve` on a TCP and a unix listener, real curl,
a loopback origin, a loopback echo server and the test's own DNS server."""
import os
import socket
import tempfile
import unittest

from harness import E2E, Raw, Sluice, curl, sha256, upstream, wait_for

CONFIG = """
listeners:
  - name: tcp1
    tcp: 127.0.0.1:0
    policy: agents
  - name: agent1
    unix: {dir}/agent1.sock
    mode: "0600"
    policy: agents
  - name: ports
    tcp: 127.0.0.1:0
    policy: ports
policies:
  agents:
    default: deny
    allow: [allowed.test, "*.wild.test", echo.test, closed.test, missing.test, "*.allowed.test"]
    deny: [denied.allowed.test]
  ports:
    default: deny
    allow: ["allowed.test:UPPORT"]
resolver:
  servers: ["127.0.0.1:DNSPORT"]
  timeout_ms: 2000
limits:
  max_header_bytes: 8192
log:
  path: "{log}"
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ServeTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cfg = CONFIG.replace("UPPORT", str(cls.up.port)).replace("DNSPORT", str(cls.dns.port))
        cls.sluice = Sluice(cfg)
        cls.port = cls.sluice.tcp_port("tcp1")
        cls.closed_port = free_port()

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def url(self, host, path):
        return "http://%s:%d%s" % (host, self.up.port, path)

    # --- allowed traffic, byte-exact -------------------------------------

    def test_connect_multi_mb_body_is_byte_exact(self):
        n = 5_000_000
        status, _, body = curl(self.port, self.url("allowed.test", "/big?n=%d" % n), tunnel=True)
        self.assertEqual(status, 200)
        self.assertEqual(len(body), n)
        self.assertEqual(sha256(body), upstream.pattern_sha256(n))

    def test_connect_chunked_body_is_byte_exact(self):
        n = 1_234_567
        status, _, body = curl(self.port, self.url("allowed.test", "/chunked?n=%d&chunk=7777" % n), tunnel=True)
        self.assertEqual(status, 200)
        self.assertEqual(sha256(body), upstream.pattern_sha256(n))

    def test_plain_http_multi_mb_and_chunked_are_byte_exact(self):
        n = 4_000_000
        status, headers, body = curl(self.port, self.url("allowed.test", "/big?n=%d" % n))
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-length"], str(n))
        self.assertEqual(sha256(body), upstream.pattern_sha256(n))
        status, headers, body = curl(self.port, self.url("allowed.test", "/chunked?n=%d&chunk=65000" % n))
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        self.assertEqual(sha256(body), upstream.pattern_sha256(n))

    def test_plain_http_post_is_rebuilt_for_the_origin(self):
        data = os.urandom(3_000_000)
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            status, _, body = curl(self.port, self.url("allowed.test", "/echo?x=1"), extra=[
                "--data-binary", "@" + f.name, "-H", "Host: evil.test",
                "--proxy-header", "Proxy-Authorization: Basic c2VjcmV0", "-H", "Connection: keep-alive, X-Drop",
                "-H", "X-Drop: 1", "-H", "X-Keep: 2"])
        self.assertEqual(status, 200)
        import json
        seen = json.loads(body)
        self.assertEqual(seen["method"], "POST")
        self.assertEqual(seen["target"], "/echo?x=1")
        self.assertEqual(seen["body_len"], len(data))
        self.assertEqual(seen["body_sha256"], sha256(data))
        names = [k.lower() for k, _ in seen["headers"]]
        hosts = [v for k, v in seen["headers"] if k.lower() == "host"]
        self.assertEqual(hosts, ["allowed.test:%d" % self.up.port])
        for gone in ("proxy-authorization", "proxy-connection", "x-drop", "connection", "keep-alive"):
            self.assertNotIn(gone, names)
        self.assertIn("x-keep", names)

    def test_plain_http_chunked_upload(self):
        data = os.urandom(700_000)
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            status, _, body = curl(self.port, self.url("allowed.test", "/echo"), extra=[
                "-T", f.name, "-H", "Transfer-Encoding: chunked"])
        self.assertEqual(status, 200)
        import json
        seen = json.loads(body)
        self.assertEqual(seen["method"], "PUT")
        self.assertEqual(seen["body_sha256"], sha256(data))

    def test_http10_origin_body_reaches_an_http11_client(self):
        status, headers, body = curl(self.port, self.url("allowed.test", "/http10"))
        self.assertEqual(status, 200)
        self.assertEqual(body, b"until close\n")

    # --- denials ------------------------------------------------------------

    def test_host_not_in_allowlist_gets_403_and_origin_sees_nothing(self):
        for tunnel in (False, True):
            path = "/hello?denied-%s" % tunnel
            status, headers, body = curl(self.port, self.url("other.test", path), tunnel=tunnel)
            self.assertEqual(status, 403)
            if not tunnel:  # curl keeps CONNECT reply headers to itself
                self.assertEqual(headers["x-sluice-reason"], "not-in-allowlist")
                self.assertIn(b"other.test", body)
                self.assertIn(b"allow list", body)
            self.assertEqual(self.seen(path), [])

    def test_connect_denial_reason_header_and_close(self):
        c = Raw(self.port)
        c.send(b"CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n")
        status, headers, body = c.read_response()
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-sluice-reason"], "not-in-allowlist")
        self.assertTrue(c.closed_by_peer())
        c.close()

    def test_deny_list_beats_allow_list(self):
        status, headers, body = curl(self.port, self.url("denied.allowed.test", "/hello?deny-wins"))
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-sluice-reason"], "denied-by-rule")
        self.assertIn(b'"denied.allowed.test"', body)
        self.assertEqual(self.seen("/hello?deny-wins"), [])

    def test_wildcard_allows_subdomains_but_not_the_apex(self):
        self.assertEqual(curl(self.port, self.url("x.wild.test", "/hello"))[0], 200)
        status, headers, _ = curl(self.port, self.url("wild.test", "/hello?apex"))
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-sluice-reason"], "not-in-allowlist")

    def test_port_specific_entry_denies_other_ports(self):
        port = self.sluice.tcp_port("ports")
        self.assertEqual(curl(port, self.url("allowed.test", "/hello"))[0], 200)
        status, headers, _ = curl(port, "http://allowed.test:%d/hello" % self.echo.port)
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-sluice-reason"], "not-in-allowlist")

    def test_keep_alive_requests_are_judged_one_by_one(self):
        c = Raw(self.port)
        c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test", "/hello").encode())
        status, _, body = c.read_response()
        self.assertEqual((status, body), (200, b"hello\n"))
        c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("other.test", "/hello?switch").encode())
        status, headers, _ = c.read_response()
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-sluice-reason"], "not-in-allowlist")
        self.assertEqual(self.seen("/hello?switch"), [])
        c.close()

    def test_keep_alive_reuses_the_client_connection(self):
        c = Raw(self.port)
        for i in range(3):
            c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test", "/hello?ka=%d" % i).encode())
            self.assertEqual(c.read_response()[0], 200)
        c.close()

    # --- upstream failures ---------------------------------------------------

    def test_dns_failure_is_502(self):
        status, headers, body = curl(self.port, self.url("missing.test", "/"))
        self.assertEqual(status, 502)
        self.assertEqual(headers["x-sluice-reason"], "dns-failed")
        self.assertIn(b"NXDOMAIN", body)

    def test_closed_upstream_port_is_502(self):
        status, headers, body = curl(self.port, "http://closed.test:%d/" % self.closed_port)
        self.assertEqual(status, 502)
        self.assertEqual(headers["x-sluice-reason"], "connect-failed")
        c = Raw(self.port)
        c.send(b"CONNECT closed.test:%d HTTP/1.1\r\n\r\n" % self.closed_port)
        status, headers, _ = c.read_response()
        self.assertEqual((status, headers["x-sluice-reason"]), (502, "connect-failed"))
        c.close()

    # --- tunnels ----------------------------------------------------------------

    def test_bytes_after_the_connect_head_reach_the_upstream(self):
        c = Raw(self.port)
        c.send(b"CONNECT echo.test:%d HTTP/1.1\r\nHost: echo.test\r\n\r\nearly-bytes" % self.echo.port)
        status, _ = c.read_head()
        self.assertEqual(status, 200)
        self.assertEqual(c.read_exact(len(b"early-bytes")), b"early-bytes")
        c.close()

    def test_half_close_passes_through_the_tunnel(self):
        c = Raw(self.port)
        c.send(b"CONNECT echo.test:%d HTTP/1.1\r\n\r\n" % self.echo.port)
        self.assertEqual(c.read_head()[0], 200)
        payload = os.urandom(300_000)
        c.send(payload)
        c.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(c.read_to_eof(), payload)
        c.close()

    def test_unix_listener_records_peer_credentials(self):
        c = Raw(self.sluice.unix_path("agent1"))
        c.send(b"CONNECT allowed.test:%d HTTP/1.1\r\n\r\n" % self.up.port)
        self.assertEqual(c.read_head()[0], 200)
        c.send(b"GET /hello?unix HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
        status, _, body = c.read_response()
        self.assertEqual((status, body), (200, b"hello\n"))
        c.close()
        lines = self.sluice.wait_log(lambda e: e.get("listener") == "agent1" and e["event"] == "decision")
        self.assertEqual(lines[-1]["peer"]["pid"], os.getpid())
        self.assertEqual(lines[-1]["peer"]["uid"], os.getuid())
        self.assertEqual(lines[-1]["client"], "unix")

    def test_unix_listener_plain_http(self):
        c = Raw(self.sluice.unix_path("agent1"))
        c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test", "/hello").encode())
        self.assertEqual(c.read_response()[0], 200)
        c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("other.test", "/").encode())
        self.assertEqual(c.read_response()[0], 403)
        c.close()

    def test_decision_and_close_lines(self):
        n = 123_456
        c = Raw(self.port)
        c.send(b"CONNECT allowed.test:%d HTTP/1.1\r\n\r\n" % self.up.port)
        self.assertEqual(c.read_head()[0], 200)
        request = b"GET /big?n=%d&log HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n" % n
        c.send(request)
        reply = c.read_to_eof()
        self.assertTrue(reply.endswith(upstream.pattern(n)))
        c.close()
        close = self.sluice.wait_log(lambda e: e["event"] == "close" and e["bytes_up"] == len(request))[-1]
        self.assertEqual(close["bytes_down"], len(reply))
        self.assertEqual(close["requests"], 1)
        self.assertEqual(close["listener"], "tcp1")
        decision = [e for e in self.sluice.log() if e["event"] == "decision" and e["conn"] == close["conn"]][0]
        for key, want in {"kind": "connect", "host": "allowed.test", "port": self.up.port, "verdict": "allow",
                          "reason": "allowed-by-rule", "rule": "allowed.test", "policy": "agents",
                          "addr": "127.0.0.1:%d" % self.up.port, "status": 200, "listener": "tcp1"}.items():
            self.assertEqual(decision[key], want, key)
        self.assertIn("dns_ms", decision)
        self.assertIn("connect_ms", decision)
        self.assertTrue(decision["client"].startswith("127.0.0.1:"))
        denied = self.sluice.wait_log(lambda e: e.get("host") == "other.test" and e["verdict"] == "deny")
        self.assertEqual(denied[-1]["status"], 403)

    # --- malformed input --------------------------------------------------------

    def test_oversized_head_is_431(self):
        c = Raw(self.port)
        c.send(b"GET http://allowed.test/ HTTP/1.1\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n")
        status, headers, _ = c.read_response()
        self.assertEqual(status, 431)
        self.assertEqual(headers["x-sluice-reason"], "header-too-large")
        c.close()

    def test_origin_form_request_is_400(self):
        c = Raw(self.port)
        c.send(b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
        status, headers, body = c.read_response()
        self.assertEqual(status, 400)
        self.assertEqual(headers["x-sluice-reason"], "bad-request")
        self.assertIn(b"absolute URL", body)
        c.close()

    def test_bad_connect_targets_are_400(self):
        for target in (b"allowed.test", b"allowed.test:0", b"allowed.test:99999", b"::1:443", b"bad host:443"):
            c = Raw(self.port)
            c.send(b"CONNECT " + target + b" HTTP/1.1\r\n\r\n")
            status, headers, _ = c.read_response()
            self.assertEqual(status, 400, target)
            self.assertIn(headers["x-sluice-reason"], ("bad-request", "bad-host"), target)
            c.close()

    def test_garbage_gets_400_and_others_are_unaffected(self):
        c = Raw(self.port)
        c.send(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        self.assertEqual(c.read_response()[0], 400)
        c.close()
        self.assertEqual(curl(self.port, self.url("allowed.test", "/hello"))[0], 200)


if __name__ == "__main__":
    unittest.main()
