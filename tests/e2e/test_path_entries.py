"""End-to-end: path-scoped allow/deny entries on plain HTTP through the real binary (the origin
sees only what the entries allow, judged on the normalised path; an ambiguous path is refused),
and a CONNECT to a host those entries decide refused with needs-inspection."""
from harness import E2E, Raw

CONFIG = """
listeners:
  - {name: p, tcp: 127.0.0.1:0, policy: paths}
policies:
  paths:
    # Test names resolve to 127.0.0.1: listing it is the explicit choice the resolved-address check needs.
    allow: ["allowed.test/ok/", {host: other.test, path: /api/, methods: [GET]}, "127.0.0.1"]
    deny: [{host: allowed.test, path: /ok/secret}]
resolver:
  servers: ["127.0.0.1:DNSPORT"]
  timeout_ms: 2000
log:
  path: "{log}"
"""


ORIGIN = 404  # the tests' origin answers these paths 404: reaching it is what counts


class PathEntriesTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sluice = cls.start_sluice(CONFIG.replace("DNSPORT", str(cls.dns.port)))
        cls.port = cls.sluice.tcp_port("p")

    def request(self, method, host, target):
        """One request with the target sent byte for byte (no client normalises it)."""
        with Raw(self.port) as c:
            c.send(("%s http://%s:%d%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" %
                    (method, host, self.up.port, target, host, self.up.port)).encode())
            status, headers, body = c.read_response()
            return status, headers.get("x-sluice-reason"), body

    def test_requests_are_judged_on_the_normalised_path(self):
        rows = [
            ("GET", "allowed.test", "/ok/hello?pe-1", ORIGIN, None),
            ("GET", "allowed.test", "/%6Fk/hello?pe-2", ORIGIN, None),  # the origin reads /ok/
            ("GET", "allowed.test", "/ok/../hello?pe-3", 403, "not-in-allowlist"),
            ("GET", "allowed.test", "/ok/%2e%2e/hello?pe-4", 403, "not-in-allowlist"),
            ("GET", "allowed.test", "/ok//hello?pe-5", 403, "ambiguous-path"),
            ("GET", "allowed.test", "/ok%2f..%2fhello?pe-6", 403, "ambiguous-path"),
            ("GET", "allowed.test", "/ok/secret/x?pe-7", 403, "denied-by-rule"),
            ("GET", "allowed.test", "/ok/x/../secret?pe-8", 403, "denied-by-rule"),
            ("GET", "allowed.test", "/hello?pe-9", 403, "not-in-allowlist"),
            ("GET", "other.test", "/api/hello?pe-10", ORIGIN, None),
            ("POST", "other.test", "/api/hello?pe-11", 403, "not-in-allowlist"),
        ]
        for method, host, target, want, reason in rows:
            with self.subTest(target=target, method=method):
                status, got_reason, body = self.request(method, host, target)
                self.assertEqual((status, got_reason), (want, reason), body)
                tag = target.rsplit("?", 1)[1]
                self.assertEqual(len([s for s in self.up.requests if s["target"].endswith("?" + tag)]),
                                 1 if want == ORIGIN else 0)
        _, _, body = self.request("GET", "allowed.test", "/ok//hello?pe-12")
        self.assertIn(b"an empty path segment", body)
        d = self.sluice.wait_log(lambda e: e.get("event") == "decision" and e.get("reason") == "ambiguous-path")[0]
        self.assertEqual(d["verdict"], "deny")

    def test_a_tunnel_to_a_host_path_entries_decide_needs_inspection(self):
        for host in ("allowed.test", "other.test"):
            with Raw(self.port) as c:
                c.send(b"CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n" % (host.encode(), host.encode()))
                status, headers, body = c.read_response()
                self.assertEqual((status, headers.get("x-sluice-reason")), (403, "needs-inspection"), body)
                self.assertIn(b"tunnel shows sluice no paths", body)
        d = self.sluice.wait_log(lambda e: e.get("event") == "decision" and e.get("reason") == "needs-inspection")[0]
        self.assertIn(d["rule"], ("allowed.test/ok/", "allowed.test/ok/secret", "other.test/api/ [GET]"))
