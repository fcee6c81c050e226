"""End-to-end: the real `sluice serve` on TCP and unix listeners, real curl, a loopback
origin, loopback echo/sink/source servers and the test's own DNS server.

One sluice serves the whole class; tests tell their traffic apart by unique URLs and by
the client address sluice logs."""
import json
import os
import socket
import stat
import struct
import tempfile
import time
import unittest

from harness import (E2E, SLOW, Background, Raw, curl, free_port, has_ipv6_loopback, sha256, upstream, wait_for)

CONFIG = """
listeners:
  - name: tcp1
    tcp: 127.0.0.1:0
    policy: agents
  - name: agent1
    unix: {dir}/agent1.sock
    mode: "0660"
    policy: agents
  - name: ports
    tcp: 127.0.0.1:0
    policy: ports
  - name: ips
    tcp: 127.0.0.1:0
    policy: ips
  - name: denyips
    tcp: 127.0.0.1:0
    policy: denyips
policies:
  agents:
    default: deny
    # Test names resolve to 127.0.0.1: listing it is the explicit choice the resolved-address check needs.
    allow: [allowed.test, "*.allowed.test", "*.wild.test", echo.test, closed.test, missing.test, "127.0.0.1"]
    deny: [denied.allowed.test]
  ports:
    default: deny
    allow: ["allowed.test:UPPORT", "127.0.0.1:UPPORT"]
  ips:
    default: deny
    allow: ["127.0.0.1:ECHOPORT", "127.0.0.16/28", "[::1]:ECHO6PORT"]
  denyips:
    default: allow
    deny: ["127.0.0.1", "127.0.0.16/28"]
resolver:
  servers: ["127.0.0.1:DNSPORT"]
  timeout_ms: 2000
limits:
  max_header_bytes: 8192
log:
  path: "{log}"
"""


class ServeTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo17 = upstream.EchoServer("127.0.0.17")  # inside 127.0.0.16/28
        cls.addClassCleanup(cls.echo17.close)
        cls.echo6 = upstream.EchoServer("::1") if has_ipv6_loopback() else None
        if cls.echo6:
            cls.addClassCleanup(cls.echo6.close)
        cfg = (CONFIG.replace("UPPORT", str(cls.up.port)).replace("DNSPORT", str(cls.dns.port))
               .replace("ECHOPORT", str(cls.echo.port))
               .replace("ECHO6PORT", str(cls.echo6.port if cls.echo6 else 1)))
        cls.sluice = cls.start_sluice(cfg)
        cls.port = cls.sluice.tcp_port("tcp1")
        cls.closed_port = free_port()

    def url(self, host, path):
        return "http://%s:%d%s" % (host, self.up.port, path)

    def get(self, host, path):
        return b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (self.url(host, path).encode(), host.encode())

    def connect_head(self, host, port):
        return b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port, host.encode(), port)

    def decisions_of(self, client, count=1):
        """The decision lines of the TCP client whose local address is `client`."""
        return self.sluice.wait_log(lambda e: e["event"] == "decision" and e.get("client") == client,
                                    what="decision of " + client, count=count)

    def close_of(self, conn):
        return self.sluice.wait_log(lambda e: e["event"] == "close" and e["conn"] == conn,
                                    what="close line of conn %d" % conn)[0]

    # --- allowed traffic, byte-exact -------------------------------------

    def test_connect_multi_mb_body_is_byte_exact(self):
        n = 5_000_000
        r = curl(self.port, self.url("allowed.test", "/big?n=%d" % n), tunnel=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.body), n)
        self.assertEqual(sha256(r.body), upstream.pattern_sha256(n))

    def test_connect_chunked_body_is_byte_exact(self):
        n = 1_234_567
        r = curl(self.port, self.url("allowed.test", "/chunked?n=%d&chunk=7777" % n), tunnel=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.body), n)
        self.assertEqual(sha256(r.body), upstream.pattern_sha256(n))

    def test_plain_http_multi_mb_and_chunked_are_byte_exact(self):
        n = 4_000_000
        r = curl(self.port, self.url("allowed.test", "/big?n=%d&plain" % n))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-length"], str(n))
        self.assertEqual(sha256(r.body), upstream.pattern_sha256(n))
        r = curl(self.port, self.url("allowed.test", "/chunked?n=%d&chunk=65000" % n))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("transfer-encoding"), "chunked")
        self.assertEqual(len(r.body), n)
        self.assertEqual(sha256(r.body), upstream.pattern_sha256(n))
        # The origin saw origin-form targets and Host from the URL.
        seen = self.seen("/big?n=%d&plain" % n)
        self.assertEqual(len(seen), 1)
        self.assertEqual([v for k, v in seen[0]["headers"] if k.lower() == "host"], ["allowed.test:%d" % self.up.port])

    def test_plain_http_post_is_rebuilt_for_the_origin(self):
        data = os.urandom(3_000_000)
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            r = curl(self.port, self.url("allowed.test", "/echo?x=1&post"), extra=[
                "--data-binary", "@" + f.name, "-H", "Host: evil.test",
                "--proxy-header", "Proxy-Authorization: Basic c2VjcmV0",
                "--proxy-header", "Proxy-Connection: keep-alive",
                "-H", "Connection: keep-alive, X-Drop", "-H", "X-Drop: 1", "-H", "X-Keep: 2"])
        self.assertEqual(r.status, 200, r)
        seen = json.loads(r.body)
        self.assertEqual(seen["method"], "POST")
        self.assertEqual(seen["target"], "/echo?x=1&post")
        self.assertEqual(seen["body_len"], len(data))
        self.assertEqual(seen["body_sha256"], sha256(data))
        names = [k.lower() for k, _ in seen["headers"]]
        hosts = [v for k, v in seen["headers"] if k.lower() == "host"]
        self.assertEqual(hosts, ["allowed.test:%d" % self.up.port])
        for gone in ("proxy-authorization", "proxy-connection", "x-drop", "connection", "keep-alive"):
            self.assertNotIn(gone, names)
        self.assertIn(["X-Keep", "2"], seen["headers"])
        self.assertEqual([v for k, v in seen["headers"] if k.lower() == "content-length"], [str(len(data))])

    def test_plain_http_chunked_upload(self):
        data = os.urandom(700_000)
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            r = curl(self.port, self.url("allowed.test", "/echo?chunked-up"), extra=[
                "-T", f.name, "-H", "Transfer-Encoding: chunked"])
        self.assertEqual(r.status, 200, r)
        seen = json.loads(r.body)
        self.assertEqual(seen["method"], "PUT")
        self.assertEqual(seen["target"], "/echo?chunked-up")
        self.assertEqual(seen["body_len"], len(data))
        self.assertEqual(seen["body_sha256"], sha256(data))

    def test_expect_100_continue_is_relayed(self):
        body = os.urandom(50_000)
        with Raw(self.port) as c:
            c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                   % (self.url("allowed.test", "/echo?expect").encode(), len(body)))
            status, _ = c.read_head()  # the origin's interim answer, before any body byte was sent
            self.assertEqual(status, 100)
            c.send(body)
            status, _, reply = c.read_response()
        self.assertEqual(status, 200)
        seen = json.loads(reply)
        self.assertEqual((seen["body_len"], seen["body_sha256"]), (len(body), sha256(body)))

    def test_hop_by_hop_and_proxy_headers_are_removed(self):
        body = b"x" * 1000
        with Raw(self.port) as c:
            c.send(b"POST %s HTTP/1.1\r\nHost: allowed.test:%d\r\n"
                   b"Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic c2VjcmV0\r\nProxy-Foo: bar\r\n"
                   b"Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\nConnection: keep-alive, TE, Trailer\r\n"
                   b"X-Keep: yes\r\nContent-Length: %d\r\n\r\n%s"
                   % (self.url("allowed.test", "/echo?hop").encode(), self.up.port, len(body), body))
            status, headers, reply = c.read_response()
        self.assertEqual(status, 200)
        seen = json.loads(reply)
        self.assertEqual(seen["target"], "/echo?hop")
        self.assertEqual(seen["body_sha256"], sha256(body))
        names = sorted(k.lower() for k, _ in seen["headers"])
        self.assertEqual(names, ["content-length", "host", "x-keep"])

    def test_http10_origin_body_reaches_an_http11_client(self):
        r = curl(self.port, self.url("allowed.test", "/http10"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"until close\n")

    def test_upstream_reset_mid_body_never_completes_the_message(self):
        # A reset is not an end: whatever the origin's framing, the client must see the message
        # cut short (no terminating chunk, fewer bytes than the length), never a complete one.
        for framing in ("close", "length", "chunked"):
            with self.subTest(framing=framing), Raw(self.port) as c:
                c.send(self.get("allowed.test", "/reset?framing=%s" % framing))
                status, headers = c.read_head()
                self.assertEqual(status, 200)
                c.sock.settimeout(3)  # a connection kept open after a "complete" message: read what came
                try:
                    rest = c.read_to_eof()
                except (ConnectionResetError, socket.timeout):
                    rest = c.buf
                self.assertIn(b"partial", rest)
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    self.assertFalse(rest.endswith(b"0\r\n\r\n"), rest)
                else:
                    self.assertLess(len(rest), int(headers.get("content-length", "1000")))
                r = curl(self.port, self.url("allowed.test", "/reset?framing=%s&curl" % framing))
                self.assertNotEqual(r.exit_code, 0, r)  # curl reports a transfer cut short

    def test_connections_the_sniffer_ends_get_a_close_line(self):
        # No byte at all: closed by the client (EOF), and by a reset.
        with Raw(self.port) as c:
            client = c.local_address()
        closes = self.sluice.wait_log(lambda e: e["event"] == "close" and e.get("client") == client,
                                      what="close line of a silent client")
        self.assertEqual((closes[0]["cause"], closes[0]["requests"], closes[0]["bytes_up"]), ("client-eof", 0, 0))
        c = Raw(self.port)
        client = c.local_address()
        time.sleep(0.3 * SLOW)  # accepted by then: a reset in the accept queue never reaches sluice
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        closes = self.sluice.wait_log(lambda e: e["event"] == "close" and e.get("client") == client,
                                      what="close line of a reset")
        self.assertEqual(closes[0]["cause"], "client-reset")

    def test_a_refusal_and_a_done_exchange_name_their_cause(self):
        with Raw(self.port) as c:
            c.send(self.get("other.test", "/hello?cause-refused"))
            self.assertEqual(c.read_response()[0], 403)
            client = c.local_address()
        d = self.decisions_of(client)[0]
        self.assertEqual(self.close_of(d["conn"])["cause"], "refused")
        with Raw(self.port) as c:
            c.send(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % self.url("allowed.test", "/hello?cause-done").encode())
            self.assertEqual(c.read_response()[0], 200)
            self.assertTrue(c.closed_by_peer())
            client = c.local_address()
        d = self.decisions_of(client)[0]
        self.assertEqual(self.close_of(d["conn"])["cause"], "done")

    def test_204_and_304_with_content_length_have_no_body(self):
        # The Content-Length of a 204/304 is not framing: sluice must not wait for (or relay)
        # body bytes, and the next response on the connection must come through intact.
        with Raw(self.port) as c:
            for status in (304, 204):
                c.send(self.get("allowed.test", "/nobody?status=%d&n=10" % status))
                got, headers, body = c.read_response()
                self.assertEqual((got, body, headers.get("content-length")), (status, b"", "10"))
                c.send(self.get("allowed.test", "/hello?after-%d" % status))
                got, _, body = c.read_response()
                self.assertEqual((got, body), (200, b"hello\n"))

    def test_origin_closing_its_connection_does_not_break_the_next_request(self):
        with Raw(self.port) as c:
            c.send(self.get("allowed.test", "/close?first"))
            status, _, body = c.read_response()
            self.assertEqual((status, body), (200, b"bye\n"))
            # sluice may keep the client connection (and redial) or pass the close on.
            try:
                c.send(self.get("allowed.test", "/hello?after-close"))
                status, _, body = c.read_response()
            except (EOFError, ConnectionError):
                with Raw(self.port) as c2:
                    c2.send(self.get("allowed.test", "/hello?after-close"))
                    status, _, body = c2.read_response()
            self.assertEqual((status, body), (200, b"hello\n"))
        first, second = self.seen("/close?first"), self.seen("/hello?after-close")
        self.assertEqual((len(first), len(second)), (1, 1))
        self.assertNotEqual(first[0]["conn"], second[0]["conn"])

    def test_parallel_transfers_are_byte_exact(self):
        n = 1_500_000
        jobs = []
        for i in range(6):
            path = "/big?n=%d&par=%d" % (n + i, i) if i % 2 else "/chunked?n=%d&chunk=9999&par=%d" % (n + i, i)
            jobs.append((n + i, Background(curl, self.port, self.url("allowed.test", path), i % 3 == 0)))
        for size, job in jobs:
            r = job.result(60)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(r.body), size)
            self.assertEqual(sha256(r.body), upstream.pattern_sha256(size))

    # --- denials ------------------------------------------------------------

    def test_host_not_in_allowlist_gets_403_and_origin_sees_nothing(self):
        for tunnel in (False, True):
            path = "/hello?denied-%s" % tunnel
            r = curl(self.port, self.url("other.test", path), tunnel=tunnel)
            self.assertEqual(r.status, 403, r)
            if not tunnel:  # curl keeps CONNECT reply headers to itself
                self.assertEqual(r.headers["x-sluice-reason"], "not-in-allowlist")
                self.assertIn(b"other.test", r.body)
                self.assertEqual(r.body.count(b"\n"), 1, r.body)
            self.assertEqual(self.seen(path), [])

    def test_connect_denial_reason_header_body_and_close(self):
        with Raw(self.port) as c:
            c.send(self.connect_head("other.test", 443))
            status, headers, body = c.read_response()
            self.assertEqual(status, 403)
            self.assertEqual(headers["x-sluice-reason"], "not-in-allowlist")
            self.assertIn(b"other.test", body)
            self.assertTrue(body.endswith(b"\n") and body.count(b"\n") == 1, body)
            self.assertTrue(c.closed_by_peer(), "connection stays open after a denied CONNECT")

    def test_deny_list_beats_allow_list(self):
        r = curl(self.port, self.url("denied.allowed.test", "/hello?deny-wins"))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.headers["x-sluice-reason"], "denied-by-rule")
        self.assertIn(b"denied.allowed.test", r.body)
        self.assertEqual(self.seen("/hello?deny-wins"), [])
        with Raw(self.port) as c:
            c.send(self.connect_head("denied.allowed.test", self.up.port))
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (403, "denied-by-rule"))
        # its sibling under the same wildcard is allowed
        self.assertEqual(curl(self.port, self.url("sub.allowed.test", "/hello?sibling")).status, 200)

    def test_wildcard_allows_subdomains_but_not_the_apex(self):
        for host in ("x.wild.test", "deep.x.wild.test", "X.Wild.Test"):
            r = curl(self.port, self.url(host, "/hello?wild"))
            self.assertEqual((r.status, r.body), (200, b"hello\n"), host)
        r = curl(self.port, self.url("wild.test", "/hello?apex"))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.headers["x-sluice-reason"], "not-in-allowlist")
        self.assertEqual(self.seen("/hello?apex"), [])
        self.assertEqual(curl(self.port, self.url("wild.test", "/hello?apex-tunnel"), tunnel=True).status, 403)

    def test_host_matching_ignores_case_and_trailing_dot(self):
        with Raw(self.port) as c:
            c.send(self.connect_head("ALLOWED.Test.", self.up.port))
            self.assertEqual(c.read_head()[0], 200)
            c.send(b"GET /hello?trailing-dot HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
            self.assertEqual(c.read_response()[:3:2], (200, b"hello\n"))
            client = c.local_address()
        self.assertEqual(self.decisions_of(client)[0]["host"], "allowed.test")
        r = curl(self.port, self.url("Denied.Allowed.Test.", "/hello?deny-dot"))
        self.assertEqual((r.status, r.headers.get("x-sluice-reason")), (403, "denied-by-rule"), r)

    def test_port_specific_entry_denies_other_ports(self):
        port = self.sluice.tcp_port("ports")
        self.assertEqual(curl(port, self.url("allowed.test", "/hello?port-ok")).status, 200)
        self.assertEqual(curl(port, self.url("allowed.test", "/hello?port-ok-tunnel"), tunnel=True).status, 200)
        before = self.echo.connections
        r = curl(port, "http://allowed.test:%d/hello?wrong-port" % self.echo.port)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.headers["x-sluice-reason"], "not-in-allowlist")
        with Raw(port) as c:
            c.send(self.connect_head("allowed.test", self.echo.port))
            self.assertEqual(c.read_response()[0], 403)
        self.assertEqual(self.echo.connections, before, "a denied request reached the other port")

    def test_ip_literals_and_cidr(self):
        port = self.sluice.tcp_port("ips")
        cases = [("127.0.0.1", self.echo.port, 200), ("127.0.0.1", self.up.port, 403),
                 ("127.0.0.17", self.echo17.port, 200), ("127.0.0.33", self.echo17.port, 403)]
        if self.echo6:
            cases += [("[::1]", self.echo6.port, 200), ("[::1]", self.echo.port, 403)]
        for host, p, want in cases:
            with Raw(port) as c:
                c.send(b"CONNECT %s:%d HTTP/1.1\r\n\r\n" % (host.encode(), p))
                status, headers = c.read_head()
                self.assertEqual(status, want, (host, p))
                if want == 200:
                    c.send(b"ping")
                    self.assertEqual(c.read_exact(4), b"ping")
                else:
                    self.assertEqual(headers["x-sluice-reason"], "not-in-allowlist")

    def test_ip_literal_spellings_are_canonicalised(self):
        # 127.0.0.1 written in other ways must match the "127.0.0.1:PORT" entry.
        port = self.sluice.tcp_port("ips")
        for spelling in ("2130706433", "127.1", "0x7f.1", "[::ffff:127.0.0.1]"):
            with Raw(port) as c:
                c.send(b"CONNECT %s:%d HTTP/1.1\r\n\r\n" % (spelling.encode(), self.echo.port))
                status, _ = c.read_head()
                self.assertEqual(status, 200, spelling)
                c.send(b"pong")
                self.assertEqual(c.read_exact(4), b"pong", spelling)
        log = [e for e in self.sluice.log() if e["event"] == "decision" and e.get("listener") == "ips"
               and e.get("port") == self.echo.port and e.get("verdict") == "allow"]
        self.assertTrue(all(e["host"] in ("127.0.0.1", "::ffff:127.0.0.1") for e in log), log)

    def test_ipv4_deny_entries_cover_ipv4_mapped_ipv6(self):
        # [::ffff:127.0.0.1] reaches 127.0.0.1: a deny entry for the IPv4 address must stop it.
        port = self.sluice.tcp_port("denyips")
        before = (self.echo.connections, self.echo17.connections)
        for host, p in (("127.0.0.1", self.echo.port), ("[::ffff:127.0.0.1]", self.echo.port),
                        ("[::ffff:7f00:1]", self.echo.port), ("[0:0:0:0:0:ffff:127.0.0.1]", self.echo.port),
                        ("127.0.0.17", self.echo17.port), ("[::ffff:127.0.0.17]", self.echo17.port)):
            with Raw(port) as c:
                c.send(b"CONNECT %s:%d HTTP/1.1\r\n\r\n" % (host.encode(), p))
                status, headers = c.read_head()
                self.assertEqual((status, headers.get("x-sluice-reason")), (403, "denied-by-rule"), host)
        r = curl(port, "http://[::ffff:127.0.0.1]:%d/hello?mapped" % self.up.port)
        self.assertEqual((r.status, r.headers.get("x-sluice-reason")), (403, "denied-by-rule"), r)
        self.assertEqual(self.seen("/hello?mapped"), [])
        self.assertEqual((self.echo.connections, self.echo17.connections), before)

    def test_keep_alive_requests_are_judged_one_by_one(self):
        with Raw(self.port) as c:
            c.send(self.get("allowed.test", "/hello?ka-first"))
            status, _, body = c.read_response()
            self.assertEqual((status, body), (200, b"hello\n"))
            c.send(self.get("other.test", "/hello?switch"))
            status, headers, _ = c.read_response()
            self.assertEqual(status, 403)
            self.assertEqual(headers["x-sluice-reason"], "not-in-allowlist")
        self.assertEqual(self.seen("/hello?switch"), [])
        self.assertEqual(len(self.seen("/hello?ka-first")), 1)

    def test_keep_alive_reuses_the_client_connection(self):
        with Raw(self.port) as c:
            for i in range(3):
                c.send(self.get("allowed.test", "/hello?ka=%d" % i))
                self.assertEqual(c.read_response()[:3:2], (200, b"hello\n"))
            # and switching to another allowed host on the same connection works
            c.send(self.get("x.wild.test", "/hello?ka-switch"))
            self.assertEqual(c.read_response()[:3:2], (200, b"hello\n"))
            client = c.local_address()
        decisions = self.decisions_of(client, count=4)
        self.assertEqual(len({e["conn"] for e in decisions}), 1)
        self.assertEqual([e["host"] for e in decisions], ["allowed.test"] * 3 + ["x.wild.test"])

    def test_pipelined_requests_are_answered_in_order(self):
        with Raw(self.port) as c:
            c.send(self.get("allowed.test", "/hello?pipe1") + self.get("allowed.test", "/big?n=100000&pipe2")
                   + self.get("other.test", "/hello?pipe3"))
            self.assertEqual(c.read_response()[:3:2], (200, b"hello\n"))
            status, _, body = c.read_response()
            self.assertEqual((status, body), (200, upstream.pattern(100000)))
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (403, "not-in-allowlist"))
        self.assertEqual(self.seen("/hello?pipe3"), [])

    # While a whole request waits for its response, the client's read stays armed (issue 18: no
    # epoll_ctl per request); what arrives meanwhile waits unparsed, and nothing changes for it.
    def test_a_request_sent_while_the_previous_is_upstream_waits_its_turn(self):
        with Raw(self.port) as c:
            c.send(self.get("allowed.test", "/slow?ms=400&n=5000&turn1"))
            wait_for(lambda: self.seen("/slow?ms=400&n=5000&turn1"), what="the first request upstream")
            c.send(self.get("allowed.test", "/hello?turn2") + self.get("other.test", "/hello?turn3"))
            status, _, body = c.read_response()
            self.assertEqual((status, body), (200, upstream.pattern(5000)))
            self.assertEqual(c.read_response()[:3:2], (200, b"hello\n"))
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (403, "not-in-allowlist"))
        self.assertEqual(self.seen("/hello?turn3"), [])

    def test_a_client_that_half_closes_after_its_request_gets_the_whole_response(self):
        # The EOF arrives while the response is still upstream, and the response is larger than
        # what sluice queues towards a client that is not reading yet: all of it, then the close.
        n = 3_000_000
        with Raw(self.port) as c:
            c.send(self.get("allowed.test", "/slow?ms=200&n=%d&halfclose" % n))
            c.sock.shutdown(socket.SHUT_WR)
            time.sleep(0.8)  # sluice reads the whole response while the client reads nothing
            status, headers, body = c.read_response()
            self.assertEqual((status, len(body)), (200, n))
            self.assertEqual(sha256(body), upstream.pattern_sha256(n))
            self.assertTrue(c.closed_by_peer(), "the connection closes after the response")
            client = c.local_address()
        close = self.close_of(self.decisions_of(client)[0]["conn"])
        self.assertEqual(close["cause"], "client-eof")

    def test_pipelined_requests_then_eof_are_all_answered_in_order(self):
        with Raw(self.port) as c:
            c.send(self.get("allowed.test", "/slow?ms=200&n=100&eof1") + self.get("allowed.test", "/big?n=70000&eof2")
                   + self.get("allowed.test", "/hello?eof3") + self.get("other.test", "/hello?eof4"))
            c.sock.shutdown(socket.SHUT_WR)
            self.assertEqual(c.read_response()[:3:2], (200, upstream.pattern(100)))
            self.assertEqual(c.read_response()[:3:2], (200, upstream.pattern(70000)))
            self.assertEqual(c.read_response()[:3:2], (200, b"hello\n"))
            self.assertEqual(c.read_response()[0], 403)  # a refusal ends the connection
            self.assertTrue(c.closed_by_peer(), "the connection closes after the last response")

    def test_a_request_cut_short_by_eof_behind_a_pipelined_one_gets_no_response(self):
        with Raw(self.port) as c:
            c.send(self.get("allowed.test", "/slow?ms=200&n=10&cut1")
                   + b"POST %s HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 100\r\n\r\nshort"
                   % self.url("allowed.test", "/echo?cut2").encode())
            c.sock.shutdown(socket.SHUT_WR)
            self.assertEqual(c.read_response()[:3:2], (200, upstream.pattern(10)))
            self.assertTrue(c.closed_by_peer(), "the cut request gets no answer, the connection closes")
        self.assertFalse([r for r in self.seen("/echo?cut2") if r.get("body_len") == 100])

    # --- upstream failures ---------------------------------------------------

    def test_dns_failure_is_502(self):
        r = curl(self.port, self.url("missing.test", "/"))
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.headers["x-sluice-reason"], "dns-failed")
        self.assertIn(b"missing.test", r.body)
        with Raw(self.port) as c:
            c.send(self.connect_head("missing.test", 443))
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (502, "dns-failed"))

    def test_closed_upstream_port_is_502(self):
        r = curl(self.port, "http://closed.test:%d/" % self.closed_port)
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.headers["x-sluice-reason"], "connect-failed")
        with Raw(self.port) as c:
            c.send(self.connect_head("closed.test", self.closed_port))
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (502, "connect-failed"))

    # --- tunnels ----------------------------------------------------------------

    def test_bytes_after_the_connect_head_reach_the_upstream(self):
        marker = b"early-bytes-%d" % os.getpid()
        with Raw(self.port) as c:
            c.send(self.connect_head("echo.test", self.echo.port) + marker)  # one send, one segment
            status, _ = c.read_head()
            self.assertEqual(status, 200)
            self.assertEqual(c.read_exact(len(marker)), marker)
        self.assertIn(marker, bytes(self.echo.received))

    def test_bytes_and_eof_sent_before_the_200_reach_the_upstream_after_it(self):
        # sluice reads on while it judges and dials (issue 18); nothing goes on before the 200.
        marker = b"early-then-eof-%d" % os.getpid()
        with Raw(self.port) as c:
            c.send(self.connect_head("echo.test", self.echo.port) + marker)
            c.sock.shutdown(socket.SHUT_WR)
            status, _ = c.read_head()
            self.assertEqual(status, 200)
            self.assertEqual(c.read_to_eof(), marker)  # the echo answers, then sees the EOF and closes
            client = c.local_address()
        close = self.close_of(self.decisions_of(client)[0]["conn"])
        self.assertEqual((close["bytes_up"], close["cause"]), (len(marker), "client-eof"))

    def test_a_refused_connect_with_early_bytes_and_eof_gets_its_refusal(self):
        with Raw(self.port) as c:
            c.send(self.connect_head("other.test", 443) + b"\x16\x03\x01 would-be handshake")
            c.sock.shutdown(socket.SHUT_WR)
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (403, "not-in-allowlist"))
            self.assertTrue(c.closed_by_peer())

    def test_half_close_passes_through_the_tunnel(self):
        # client -> upstream FIN: the echo server sees EOF, sends the rest, closes.
        payload = os.urandom(2_000_000)
        with Raw(self.port) as c:
            c.send(self.connect_head("echo.test", self.echo.port))
            self.assertEqual(c.read_head()[0], 200)

            def send_all():
                c.send(payload)
                c.shutdown_write()
            writer = Background(send_all)
            got = c.read_to_eof()
            writer.result()
        self.assertEqual(len(got), len(payload))
        self.assertEqual(sha256(got), sha256(payload))

    def test_upstream_half_close_keeps_the_client_direction_open(self):
        # upstream -> client FIN first; the client may still send, and the upstream gets it.
        n = 300_000
        marker = b"after-upstream-fin-%d" % os.getpid()
        with Raw(self.port) as c:
            c.send(b"CONNECT echo.test:%d HTTP/1.1\r\n\r\n%d\n" % (self.source.port, n))
            self.assertEqual(c.read_head()[0], 200)
            got = c.read_to_eof()
            self.assertEqual(got, upstream.pattern(n))
            c.send(marker)
            c.shutdown_write()
            wait_for(lambda: marker in self.source.trailing, what="bytes sent after the upstream's FIN")

    def test_upload_through_a_tunnel_is_byte_exact_and_counted(self):
        payload = os.urandom(3_000_000)
        with Raw(self.port) as c:
            c.send(self.connect_head("echo.test", self.sink.port))
            self.assertEqual(c.read_head()[0], 200)
            c.send(payload)
            c.shutdown_write()
            reply = c.read_to_eof()
            client = c.local_address()
        self.assertEqual(reply, b"%d %s\n" % (len(payload), sha256(payload).encode()))
        decision = self.decisions_of(client)[0]
        close = self.close_of(decision["conn"])
        self.assertEqual((close["bytes_up"], close["bytes_down"]), (len(payload), len(reply)))
        self.assertEqual(close["cause"], "client-eof")  # the client half-closed first

    # --- unix listener --------------------------------------------------------------

    def test_unix_listener_socket_mode(self):
        path = self.sluice.unix_path("agent1")
        st = os.stat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)

    def test_unix_listener_connect_records_peer_credentials(self):
        with Raw(self.sluice.unix_path("agent1")) as c:
            c.send(self.connect_head("allowed.test", self.up.port))
            self.assertEqual(c.read_head()[0], 200)
            c.send(b"GET /hello?unix HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
            status, _, body = c.read_response()
            self.assertEqual((status, body), (200, b"hello\n"))
        lines = self.sluice.wait_log(lambda e: e.get("listener") == "agent1" and e["event"] == "decision"
                                     and e["kind"] == "connect" and e["host"] == "allowed.test")
        d = lines[-1]
        self.assertEqual(d["peer"], {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()})
        self.assertEqual(d["client"], "unix")
        self.assertEqual((d["verdict"], d["status"], d["policy"]), ("allow", 200, "agents"))
        self.assertEqual(len(self.seen("/hello?unix")), 1)

    def test_unix_listener_plain_http_and_denial(self):
        with Raw(self.sluice.unix_path("agent1")) as c:
            c.send(self.get("allowed.test", "/hello?unix-plain"))
            self.assertEqual(c.read_response()[:3:2], (200, b"hello\n"))
            c.send(self.get("other.test", "/hello?unix-denied"))
            status, headers, _ = c.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (403, "not-in-allowlist"))
        denied = self.sluice.wait_log(lambda e: e["event"] == "decision" and e.get("url", "").endswith("unix-denied"))
        self.assertEqual(denied[0]["peer"]["pid"], os.getpid())
        self.assertEqual((denied[0]["listener"], denied[0]["verdict"]), ("agent1", "deny"))
        self.assertEqual(self.seen("/hello?unix-denied"), [])

    # --- decision log ---------------------------------------------------------------

    def test_decision_and_close_lines_for_a_tunnel(self):
        n = 123_456
        with Raw(self.port) as c:
            c.send(self.connect_head("allowed.test", self.up.port))
            self.assertEqual(c.read_head()[0], 200)
            request = b"GET /big?n=%d&log HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n" % n
            c.send(request)
            reply = c.read_to_eof()
            self.assertTrue(reply.startswith(b"HTTP/1.1 200 "))
            self.assertTrue(reply.endswith(upstream.pattern(n)))
            client = c.local_address()
        decisions = self.decisions_of(client)
        self.assertEqual(len(decisions), 1)
        d = decisions[0]
        want = {"event": "decision", "kind": "connect", "host": "allowed.test", "port": self.up.port,
                "verdict": "allow", "reason": "allowed-by-rule", "rule": "allowed.test", "policy": "agents",
                "addr": "127.0.0.1:%d" % self.up.port, "status": 200, "listener": "tcp1", "client": client}
        self.assertEqual({k: d.get(k) for k in want}, want)
        self.assertNotIn("peer", d)
        self.assertIsInstance(d["conn"], int)
        self.assertRegex(d["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        for k in ("dns_ms", "connect_ms"):
            self.assertIsInstance(d[k], (int, float))
            self.assertGreaterEqual(d[k], 0)
        close = self.close_of(d["conn"])
        self.assertEqual((close["bytes_up"], close["bytes_down"]), (len(request), len(reply)))
        self.assertEqual((close["requests"], close["listener"]), (1, "tcp1"))
        self.assertGreaterEqual(close["duration_ms"], 0)

    def test_decision_and_close_lines_for_plain_http(self):
        body = b"b" * 1000
        with Raw(self.port) as c:
            c.send(self.get("allowed.test", "/hello?logh1"))
            start = c.consumed
            self.assertEqual(c.read_response()[0], 200)
            got1 = c.consumed - start
            c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n%s"
                   % (self.url("allowed.test", "/echo?logh2").encode(), body))
            start = c.consumed
            self.assertEqual(c.read_response()[0], 200)
            got2 = c.consumed - start
            c.send(self.get("other.test", "/hello?logh3"))
            status, _, _ = c.read_response()
            self.assertEqual(status, 403)
            client = c.local_address()
        d = self.decisions_of(client, count=3)
        self.assertEqual(len(d), 3)
        self.assertEqual([(e["kind"], e["method"], e["url"], e["status"], e["verdict"]) for e in d], [
            ("http", "GET", self.url("allowed.test", "/hello?logh1"), 200, "allow"),
            ("http", "POST", self.url("allowed.test", "/echo?logh2"), 200, "allow"),
            ("http", "GET", self.url("other.test", "/hello?logh3"), 403, "deny")])
        self.assertEqual([(e["host"], e["port"], e["reason"], e["policy"]) for e in d], [
            ("allowed.test", self.up.port, "allowed-by-rule", "agents"),
            ("allowed.test", self.up.port, "allowed-by-rule", "agents"),
            ("other.test", self.up.port, "not-in-allowlist", "agents")])
        self.assertEqual(d[0]["addr"], "127.0.0.1:%d" % self.up.port)
        self.assertNotIn("addr", d[2])  # never dialed
        self.assertEqual(len({e["conn"] for e in d}), 1)
        close = self.close_of(d[0]["conn"])
        seen = self.seen("/hello?logh1") + self.seen("/echo?logh2")
        # bytes_up: what the origin received (rebuilt heads + bodies); bytes_down: what the client got
        # from the origin (sluice's own 403 is not counted).
        self.assertEqual(close["bytes_up"], sum(r["wire_len"] for r in seen))
        self.assertEqual(close["bytes_down"], got1 + got2)
        self.assertEqual(close["requests"], 3)
        self.assertEqual(close["cause"], "refused")  # the last request was refused: sluice closed

    # --- malformed input --------------------------------------------------------

    def test_oversized_head_is_431(self):
        with Raw(self.port) as c:
            c.send(b"GET http://allowed.test:%d/hello?too-big HTTP/1.1\r\nX-Big: " % self.up.port
                   + b"a" * 10000 + b"\r\n\r\n")
            status, headers, _ = c.read_response()
            self.assertEqual(status, 431)
            self.assertEqual(headers["x-sluice-reason"], "header-too-large")
        self.assertEqual(self.seen("/hello?too-big"), [])
        # just under the limit passes
        with Raw(self.port) as c:
            c.send(b"GET http://allowed.test:%d/hello?fits HTTP/1.1\r\nX-Big: " % self.up.port
                   + b"a" * 7000 + b"\r\n\r\n")
            self.assertEqual(c.read_response()[0], 200)

    def test_origin_form_request_is_400(self):
        with Raw(self.port) as c:
            c.send(b"GET /hello?origin-form HTTP/1.1\r\nHost: allowed.test:%d\r\n\r\n" % self.up.port)
            status, headers, body = c.read_response()
            self.assertEqual(status, 400)
            self.assertEqual(headers["x-sluice-reason"], "bad-request")
            self.assertEqual(body.count(b"\n"), 1)
        self.assertEqual(self.seen("/hello?origin-form"), [])

    def test_bad_connect_targets_are_400(self):
        for target in (b"allowed.test", b"allowed.test:0", b"allowed.test:99999", b"::1:443", b"bad host:443"):
            with Raw(self.port) as c:
                c.send(b"CONNECT " + target + b" HTTP/1.1\r\n\r\n")
                status, headers, _ = c.read_response()
                self.assertEqual(status, 400, target)
                self.assertIn(headers["x-sluice-reason"], ("bad-request", "bad-host"), target)

    def test_garbage_gets_400_and_others_are_unaffected(self):
        with Raw(self.port) as c:
            c.send(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
            self.assertEqual(c.read_response()[0], 400)
        self.assertEqual(curl(self.port, self.url("allowed.test", "/hello?after-garbage")).status, 200)


if __name__ == "__main__":
    unittest.main()
