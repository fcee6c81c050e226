"""End-to-end hostile-input table through the real proxy: DNS rebinding,
non-standard host spellings, bad hosts, request smuggling shapes and limits.
Each row asserts the exact status and X-Sluice-Reason, that the origin saw
nothing when it should see nothing, and that a well-behaved keep-alive client
on another connection is served throughout.

The module moves itself into a fresh network namespace with only loopback
before it starts anything: DNS here answers with private and metadata
addresses, and if the resolved-address check ever regressed, the dial must
fail inside this namespace instead of leaving the machine."""
import ctypes
import os
import subprocess
import unittest

CLONE_NEWNET = 0x40000000


def _private_network():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        # Not a skip: these cases must run. The suite is run as root (scripts/test.sh).
        raise SystemExit("test_hostile needs CAP_SYS_ADMIN for a private network namespace: errno %d"
                         % ctypes.get_errno())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


_private_network()

from harness import DNS_RECORDS, E2E, Dns, Raw, wait_for  # noqa: E402
import upstream  # noqa: E402

REBIND = {
    "rebind-loop.test": ["127.0.0.1"],
    "rebind-loop2.test": ["127.9.9.9"],
    "rebind-meta.test": ["169.254.169.254"],
    "rebind-alibaba.test": ["100.100.100.200"],
    "rebind-azure.test": ["168.63.129.16"],
    "rebind-zero.test": ["0.0.0.0"],
    "rebind-private10.test": ["10.0.0.1"],
    "rebind-private172.test": ["172.16.5.4"],
    "rebind-private192.test": ["192.168.1.1"],
    "rebind-cgnat.test": ["100.64.0.1"],
    "rebind-mcast.test": ["224.0.0.1"],
    "rebind-bcast.test": ["255.255.255.255"],
    "rebind-reserved.test": ["240.0.0.1"],
    "rebind-v6loop.test": ["::1"],
    "rebind-mapped.test": ["::ffff:127.0.0.1"],
    "rebind-mapped-meta.test": ["::ffff:169.254.169.254"],
    "rebind-compat.test": ["::127.0.0.1"],
    "rebind-nat64.test": ["64:ff9b::7f00:1"],
    "rebind-6to4.test": ["2002:7f00:1::1"],
    "rebind-teredo.test": ["2001:0:4136:e378:8000:63bf:80ff:fffe"],
    "rebind-linklocal6.test": ["fe80::1"],
    "rebind-ula.test": ["fd00::1"],
    "rebind-ec2v6.test": ["fd00:ec2::254"],
    "rebind-mix.test": ["169.254.169.254", "127.0.0.1", "127.0.0.2"],
    "rebind-mix6.test": ["127.0.0.2", "::1"],
    "good.test": ["127.0.0.2"],
}

CONFIG = """
listeners:
  - {name: names, tcp: "127.0.0.1:0", policy: names}
  - {name: literals, tcp: "127.0.0.1:0", policy: literals}
  - {name: slow, tcp: "127.0.0.1:0", policy: names}
policies:
  names:
    default: deny
    # 127.0.0.2 is listed: the one explicit loopback choice, where the good origin lives.
    allow: ["*.test", "127.0.0.2"]
  literals:
    default: allow
    deny: ["127.0.0.0/8", "::1", "169.254.0.0/16"]
resolver:
  servers: ["127.0.0.1:DNSPORT"]
  timeout_ms: 2000
limits:
  max_header_bytes: 4096
  header_timeout_ms: 10000
  connect_timeout_ms: 2000
log: {path: "{log}"}
"""


class HostileTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.good = upstream.HttpUpstream(host="127.0.0.2")
        cls.addClassCleanup(cls.good.close)
        records = dict(DNS_RECORDS)
        records.update(REBIND)
        cls.dns2 = Dns(records)
        cls.addClassCleanup(cls.dns2.close)
        cls.sluice = cls.start_sluice(CONFIG.replace("DNSPORT", str(cls.dns2.port)))
        cls.port = cls.sluice.tcp_port("names")
        cls.literal_port = cls.sluice.tcp_port("literals")
        # The well-behaved neighbour: one keep-alive connection used between every case.
        cls.neighbour = Raw(cls.port)
        cls.addClassCleanup(cls.neighbour.close)
        cls.neighbour_requests = 0

    def setUp(self):
        self.assert_neighbour_served()

    def tearDown(self):
        self.assert_neighbour_served()

    def assert_neighbour_served(self):
        cls = type(self)
        cls.neighbour_requests += 1
        path = "/hello?neighbour=%d" % cls.neighbour_requests
        cls.neighbour.send(b"GET http://good.test:%d%s HTTP/1.1\r\nHost: x\r\n\r\n" % (self.good.port, path.encode()))
        status, _, body = cls.neighbour.read_response()
        self.assertEqual((status, body), (200, b"hello\n"))

    def exchange(self, raw, port=None):
        c = Raw(port or self.port)
        try:
            c.send(raw)
            status, headers, body = c.read_response()
            closed = c.closed_by_peer()
        finally:
            c.close()
        self.assert_neighbour_served()  # every hostile case leaves the neighbour served
        return status, headers.get("x-sluice-reason"), body, closed

    # --- DNS rebinding: allowed names that resolve where sluice must not dial ---

    def test_rebinding_is_refused_for_every_denied_address_class(self):
        cases = {
            "rebind-loop.test": "loopback", "rebind-loop2.test": "loopback", "rebind-meta.test": "link-local",
            "rebind-alibaba.test": "cloud metadata", "rebind-azure.test": "cloud metadata",
            "rebind-zero.test": "unspecified", "rebind-private10.test": "private",
            "rebind-private172.test": "private", "rebind-private192.test": "private",
            "rebind-cgnat.test": "carrier-grade NAT", "rebind-mcast.test": "multicast",
            "rebind-bcast.test": "broadcast", "rebind-reserved.test": "reserved", "rebind-v6loop.test": "loopback",
            "rebind-mapped.test": "loopback", "rebind-mapped-meta.test": "link-local",
            "rebind-compat.test": "loopback", "rebind-nat64.test": "loopback", "rebind-6to4.test": "loopback",
            "rebind-teredo.test": "loopback", "rebind-linklocal6.test": "link-local", "rebind-ula.test": "private",
            "rebind-ec2v6.test": "cloud metadata",
        }
        for name, cls_name in cases.items():
            for kind in ("connect", "http"):
                with self.subTest(name=name, kind=kind):
                    port = self.up.port
                    if kind == "connect":
                        raw = b"CONNECT %s:%d HTTP/1.1\r\n\r\n" % (name.encode(), port)
                    else:
                        raw = b"GET http://%s:%d/hello?rebind HTTP/1.1\r\nHost: x\r\n\r\n" % (name.encode(), port)
                    status, reason, body, closed = self.exchange(raw)
                    self.assertEqual((status, reason), (403, "resolved-address-denied"))
                    self.assertIn(("resolves only to %s addresses" % cls_name).encode(), body)
                    self.assertNotIn(b"127.0.0.1", body)  # the class, never the address
                    self.assertTrue(closed)
        self.assertEqual(self.seen("/hello?rebind"), [])

    def test_rebinding_mix_dials_only_the_good_address(self):
        for name in ("rebind-mix.test", "rebind-mix6.test"):
            status, _, body, _ = self.exchange(
                b"GET http://%s:%d/hello?mix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (name.encode(), self.good.port))
            self.assertEqual((status, body), (200, b"hello\n"), name)
            entry = self.sluice.wait_log(lambda e: e.get("host") == name and e["event"] == "decision")[-1]
            self.assertEqual(entry["addr"], "127.0.0.2:%d" % self.good.port)

    # --- IP literals in every spelling are the canonical address before matching ---

    def test_ip_spellings_hit_the_deny_list(self):
        for spelling in ("127.0.0.1", "2130706433", "0x7f000001", "017700000001", "127.1", "0x7f.1", "0177.0.0.1",
                         "127.0.0.1.", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::1]", "[0:0:0:0:0:0:0:1]",
                         "169.254.169.254", "2852039166", "[::ffff:a9fe:a9fe]"):
            with self.subTest(spelling=spelling):
                status, reason, _, _ = self.exchange(
                    b"CONNECT %s:%d HTTP/1.1\r\n\r\n" % (spelling.encode(), self.echo.port), self.literal_port)
                self.assertEqual((status, reason), (403, "denied-by-rule"))

    def test_zone_ids_and_broken_literals_are_bad_hosts(self):
        for target in ("[fe80::1%25eth0]:443", "[fe80::1%eth0]:443", "[::1:443", "[127.0.0.1]:443",
                       "1.2.3.4.5:443", "256.1:443", "0x:443"):
            with self.subTest(target=target):
                status, reason, _, closed = self.exchange(b"CONNECT %s HTTP/1.1\r\n\r\n" % target.encode())
                self.assertEqual(status, 400)
                self.assertIn(reason, ("bad-host", "bad-request"))
                self.assertTrue(closed)

    # --- bad host names ---

    def test_bad_host_names(self):
        for host in (b"a b.test", b"a%2e.test", b"a@b.test", b"a/b.test", b"a\\b.test", b"a\x01b.test",
                     b"a..test", b".test", b"x" * 64 + b".test", (b"a" * 60 + b".") * 5 + b"test", b"*.test",
                     b"a_b!.test", b"\xc3\xa9.test"):
            with self.subTest(host=host):
                status, reason, _, closed = self.exchange(b"CONNECT %s:443 HTTP/1.1\r\n\r\n" % host)
                self.assertEqual(status, 400)
                self.assertIn(reason, ("bad-host", "bad-request"))
                self.assertTrue(closed)

    def test_a_differing_host_header_is_replaced_and_logged(self):
        status, _, body, _ = self.exchange(
            b"GET http://good.test:%d/echo?host-swap HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
            % self.good.port)
        self.assertEqual(status, 200)
        import json
        hosts = [v for k, v in json.loads(body)["headers"] if k.lower() == "host"]
        self.assertEqual(hosts, ["good.test:%d" % self.good.port])
        entry = self.sluice.wait_log(lambda e: e.get("url", "").endswith("/echo?host-swap"))[-1]
        self.assertEqual(entry["host_replaced"], "evil.example")

    def test_userinfo_is_not_the_host(self):
        status, reason, _, _ = self.exchange(
            b"GET http://good.test@other.example:%d/hello?userinfo HTTP/1.1\r\nHost: good.test\r\n\r\n" % self.good.port)
        self.assertEqual((status, reason), (403, "not-in-allowlist"))
        self.assertEqual(self.good.seen("/hello?userinfo"), [])

    # --- strict HTTP: each is refused with 400 and the connection closed ---

    def test_request_smuggling_shapes_are_refused(self):
        url = b"http://good.test:%d/hello?smuggle" % self.good.port
        cases = {
            "CL+TE": b"POST " + url + b" HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "dup CL": b"POST " + url + b" HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd",
            "bad CL": b"POST " + url + b" HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "CL list": b"POST " + url + b" HTTP/1.1\r\nContent-Length: 4, 4\r\n\r\nabcd",
            "TE not chunked last": b"POST " + url + b" HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "TE identity": b"POST " + url + b" HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\nabcd",
            "TE unknown": b"POST " + url + b" HTTP/1.1\r\nTransfer-Encoding: x-foo\r\n\r\nabcd",
            "TE chunked twice": b"POST " + url + b" HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            "TE second header not chunked": b"POST " + url + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                                            b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
            "TE empty element": b"POST " + url + b" HTTP/1.1\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n",
            "obs-fold": b"GET " + url + b" HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n",
            "bare LF": b"GET " + url + b" HTTP/1.1\nX-A: 1\n\n",
            "bare CR": b"GET " + url + b" HTTP/1.1\rX-A: 1\r\n\r\n",
            "NUL in header": b"GET " + url + b" HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
            "space before colon": b"GET " + url + b" HTTP/1.1\r\nX-A : 1\r\n\r\n",
            "empty header name": b"GET " + url + b" HTTP/1.1\r\nX-A: 1\r\n: smuggled\r\n\r\n",
            "tab in URL": b"GET " + url + b"\tX HTTP/1.1\r\n\r\n",
            "high bytes in URL": b"GET " + url + b"\x91\x8b HTTP/1.1\r\n\r\n",
            "bad method": b"G(T " + url + b" HTTP/1.1\r\n\r\n",
            "h2 preface method": b"PRI " + url + b" HTTP/1.1\r\n\r\n",
            "bad version": b"GET " + url + b" HTTP/1.7\r\n\r\n",
            "no host in URL": b"GET http:///hello?smuggle HTTP/1.1\r\n\r\n",
            "origin-form": b"GET /hello?smuggle HTTP/1.1\r\nHost: good.test\r\n\r\n",
            "https URL": b"GET https://good.test/hello?smuggle HTTP/1.1\r\n\r\n",
            "ftp URL": b"GET ftp://good.test/hello?smuggle HTTP/1.1\r\n\r\n",
            "bad port": b"GET http://good.test:99999/hello?smuggle HTTP/1.1\r\n\r\n",
            "CONNECT no port": b"CONNECT good.test HTTP/1.1\r\n\r\n",
            "CONNECT port 0": b"CONNECT good.test:0 HTTP/1.1\r\n\r\n",
            "binary": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        }
        for name, raw in cases.items():
            with self.subTest(case=name):
                c = Raw(self.port)
                c.send(raw + b"\r\n\r\n" if name == "binary" else raw)
                status, headers, _ = c.read_response()
                self.assertEqual(status, 400)
                self.assertEqual(headers.get("x-sluice-reason"), "bad-request")
                self.assertTrue(c.closed_by_peer())
                c.close()
                self.assert_neighbour_served()
        self.assertEqual(self.good.seen("/hello?smuggle"), [])

    def test_transfer_codings_before_chunked_are_refused_as_unsupported(self):
        # Well-formed, but sluice re-frames bodies and cannot carry gzip through: 501, closed.
        url = b"http://good.test:%d/hello?te-gzip" % self.good.port
        for te in (b"gzip, chunked", b"x-foo, chunked", b"GZIP ,CHUNKED"):
            with self.subTest(te=te):
                c = Raw(self.port)
                c.send(b"POST " + url + b" HTTP/1.1\r\nTransfer-Encoding: " + te + b"\r\n\r\n0\r\n\r\n")
                status, headers, _ = c.read_response()
                self.assertEqual((status, headers.get("x-sluice-reason")), (501, "unsupported-transfer-coding"))
                self.assertTrue(c.closed_by_peer())
                c.close()
                self.assert_neighbour_served()
        self.assertEqual(self.good.seen("/hello?te-gzip"), [])

    def test_bad_chunked_bodies_abort_the_request(self):
        # The head is valid and already streamed to the origin when the body turns bad:
        # sluice answers 400 itself, closes both sides, and the origin never gets a whole request.
        url = b"http://good.test:%d/echo?bad-body" % self.good.port
        for name, body in (("bad chunk size", b"zz\r\nab\r\n0\r\n\r\n"),
                           ("chunk size overflow", b"ffffffffffffffffff\r\n"),
                           ("missing chunk CRLF", b"2\r\nabX\r\n0\r\n\r\n")):
            with self.subTest(case=name):
                c = Raw(self.port)
                c.send(b"POST " + url + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
                status, headers, _ = c.read_response()
                self.assertEqual((status, headers.get("x-sluice-reason")), (400, "bad-request"))
                self.assertTrue(c.closed_by_peer())
                c.close()

    def test_bytes_after_a_refused_request_are_never_parsed(self):
        raw = (b"GET http://other.example/ HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET http://good.test:%d/hello?after-denial HTTP/1.1\r\nHost: x\r\n\r\n" % self.good.port)
        status, reason, _, closed = self.exchange(raw)
        self.assertEqual((status, reason, closed), (403, "not-in-allowlist", True))
        raw = (b"GET http://good.test:%d/hello HTTP/1.1\r\nX : y\r\n\r\n"
               b"GET http://good.test:%d/hello?after-bad HTTP/1.1\r\nHost: x\r\n\r\n" % (self.good.port, self.good.port))
        status, reason, _, closed = self.exchange(raw)
        self.assertEqual((status, reason, closed), (400, "bad-request", True))
        self.assertEqual(self.good.seen("/hello?after-"), [])

    def test_protocol_upgrade_to_a_denied_host_is_refused(self):
        status, reason, _, closed = self.exchange(
            b"GET http://other.example:%d/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            % self.good.port)
        self.assertEqual((status, reason, closed), (403, "not-in-allowlist", True))

    def test_protocol_upgrade_declined_by_the_origin_ends_the_connection(self):
        status, reason, _, closed = self.exchange(
            b"GET http://good.test:%d/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" % self.good.port)
        self.assertEqual((status, reason, closed), (404, None, True))

    def test_protocol_upgrade_becomes_a_tunnel_after_101(self):
        import socket
        import threading
        srv = socket.socket()
        srv.bind(("127.0.0.2", 0))
        srv.listen(4)
        self.addCleanup(srv.close)
        heads = []

        def serve():
            c, _ = srv.accept()
            with c:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += c.recv(4096)
                head, _, rest = data.partition(b"\r\n\r\n")
                heads.append(head)
                c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo-proto\r\nConnection: Upgrade\r\n\r\nhello-from-origin")
                if rest:
                    c.sendall(rest)
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    c.sendall(chunk)
        threading.Thread(target=serve, daemon=True).start()
        c = Raw(self.port)
        self.addCleanup(c.close)
        c.send(b"GET http://good.test:%d/ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n"
               b"Upgrade: echo-proto\r\nProxy-Authorization: secret\r\n\r\nearly" % srv.getsockname()[1])
        status, headers = c.read_head()
        self.assertEqual(status, 101)
        self.assertEqual(headers.get("upgrade"), "echo-proto")
        self.assertEqual(c.read_exact(len(b"hello-from-origin")), b"hello-from-origin")
        self.assertEqual(c.read_exact(5), b"early")  # sent with the head, relayed after the 101
        payload = os.urandom(200_000)
        c.send(payload)
        self.assertEqual(c.read_exact(len(payload)), payload)
        head = heads[0].decode()
        self.assertTrue(head.startswith("GET /ws HTTP/1.1\r\n"), head)
        self.assertIn("\r\nUpgrade: echo-proto", head)
        self.assertIn("\r\nConnection: Upgrade", head)
        self.assertNotIn("Proxy-Authorization", head)
        entry = self.sluice.wait_log(lambda e: e.get("url", "").endswith("/ws") and e.get("status") == 101)[-1]
        self.assertEqual(entry["verdict"], "allow")

    # --- limits ---

    def test_oversized_head_and_many_headers(self):
        for name, raw in (("long header", b"GET http://good.test/ HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n"),
                          ("many headers", b"GET http://good.test/ HTTP/1.1\r\n" + b"X-A: 1\r\n" * 600 + b"\r\n"),
                          ("long URL", b"GET http://good.test/" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n"),
                          ("long CONNECT", b"CONNECT " + b"a" * 5000 + b".test:443 HTTP/1.1\r\n\r\n")):
            with self.subTest(case=name):
                status, reason, _, closed = self.exchange(raw)
                self.assertEqual((status, reason, closed), (431, "header-too-large", True))

    def test_dns_failure_and_refused_port(self):
        status, reason, _, _ = self.exchange(b"CONNECT nxdomain.test:443 HTTP/1.1\r\n\r\n")
        self.assertEqual((status, reason), (502, "dns-failed"))
        status, reason, _, _ = self.exchange(b"CONNECT good.test:1 HTTP/1.1\r\n\r\n")
        self.assertEqual((status, reason), (502, "connect-failed"))


if __name__ == "__main__":
    unittest.main()
