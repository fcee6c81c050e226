"""`sluice bench` against the real proxy and its own upstream, in tiny bounded runs:
the closing race (the origin closes right after its last byte: the tunnelled download
must arrive whole every time), and the load generator's counts and byte totals
agreeing with what the proxy logged; and its TLS scenarios (--ca) through sluice inspecting its
TLS upstream. No timing is asserted."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from harness import E2E, SLOW, SLUICE, _read_port_line, kill_process, make_sluice_ca

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import tls_certs  # noqa: E402


class BenchTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = subprocess.Popen([SLUICE, "bench", "upstream", "--listen", "127.0.0.1:0", "--lifetime", "600"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        cls.addClassCleanup(kill_process, cls.origin)
        cls.origin_port = _read_port_line(cls.origin, "sluice bench upstream")
        cls.sluice = cls.start_sluice("""
listeners:
  - {name: bench, tcp: "127.0.0.1:0"}
policies:
  default: {default: deny, allow: ["127.0.0.1"]}
log: {path: "{log}"}
""")
        cls.proxy = "http://127.0.0.1:%d" % cls.sluice.tcp_port("bench")

    def bench(self, *args):
        argv = [SLUICE, "bench", *args, "--target", "127.0.0.1:%d" % self.origin_port, "--json"]
        r = subprocess.run(argv, capture_output=True, timeout=240 * SLOW)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        return r.returncode, json.loads(r.stdout)

    def test_downloads_cut_by_the_origin_arrive_whole_through_the_tunnel(self):
        # 1 GiB on the release build; the sanitizer build moves bytes several times slower.
        size = (1 << 30) if SLOW == 1.0 else (256 << 20)
        rounds = 3
        rc, r = self.bench("tunnel-throughput", "--proxy", self.proxy, "--size", str(size), "--close",
                           "--requests", str(rounds), "--duration", "200")
        self.assertEqual((rc, r["ops"], r["failed"], r["errors"]), (0, rounds, 0, {}), r)
        self.assertEqual(r["bytes"], size * rounds)
        closes = self.sluice.wait_log(lambda e: e["event"] == "close" and e["bytes_down"] > size, count=rounds)
        for e in closes:
            # The 200 reply and the response head add a few hundred bytes to the body.
            self.assertLess(e["bytes_down"] - size, 1024, e)

    def test_connect_storm_counts_match_the_decision_log(self):
        before = len([e for e in self.sluice.log() if e.get("kind") == "connect"])
        rc, r = self.bench("connect-storm", "--proxy", self.proxy, "--requests", "300", "--concurrency", "8",
                           "--duration", "60")
        self.assertEqual((rc, r["ops"], r["failed"]), (0, 300, 0), r)
        self.assertEqual(r["errors"], {})
        logged = self.sluice.wait_log(lambda e: e.get("kind") == "connect" and e.get("status") == 200,
                                      count=before + 300)
        self.assertEqual(len(logged), before + 300)

    def test_sandboxes_scenario_creates_judges_pushes_and_removes(self):
        # The policy does not allow the target: only each sandbox's overlay does.
        s = self.start_sluice_for_test("""
listeners:
  - {name: main, tcp: "127.0.0.1:0"}
policies:
  default: {default: deny, allow: [only.test]}
control: {unix: "{dir}/control.sock"}
log: {path: "{log}"}
""")
        argv = [SLUICE, "bench", "sandboxes", "--control", os.path.join(s.dir, "control.sock"), "--pid",
                str(s.proc.pid), "--target", "127.0.0.1:%d" % self.origin_port, "--sandboxes", "60", "--requests",
                "60", "--sample", "10", "--concurrency", "4", "--duration", "60", "--json"]
        out = subprocess.run(argv, capture_output=True, timeout=120 * SLOW)
        r = json.loads(out.stdout)
        self.assertEqual(out.returncode, 0, r)
        self.assertEqual((r["created"], r["removed"], r["create_failed"]), (60, 60, 0), r)
        self.assertEqual((r["latency_one"]["ok"], r["latency_many"]["ok"], r["sample"]), (60, 60, 10), r)
        self.assertEqual((r["push_status"], r["push_dropped"]), (200, 0), r)
        self.assertGreater(r["push_requests"], 0, r)
        self.assertGreater(r["rss_after_create_kib"], 0, r)
        removed = s.wait_log(lambda e: e["event"] == "sandbox" and e["action"] == "removed", count=60)
        self.assertEqual(len(removed), 60)
        self.assertFalse(os.listdir(os.path.join(s.dir, "control.sock.sandboxes")))

    def test_denied_targets_are_counted_as_proxy_errors(self):
        # The origin's port on another loopback address is not on the allow list.
        argv = [SLUICE, "bench", "connect-storm", "--proxy", self.proxy, "--target",
                "127.0.0.2:%d" % self.origin_port, "--requests", "20", "--concurrency", "2", "--json"]
        r = subprocess.run(argv, capture_output=True, timeout=60 * SLOW)
        self.assertEqual(r.returncode, 1, r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual((report["ops"], report["failed"]), (0, 20), report)
        self.assertEqual(report["errors"], {"proxy-403": 20})


class InspectBenchTest(E2E):
    """The TLS load (what bench/run-inspect.sh measures) through sluice inspecting the bench's own
    TLS upstream: every request arrives and each is logged as inspected."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = tempfile.mkdtemp(prefix="sluice-e2e-bench-tls-")
        cls.addClassCleanup(shutil.rmtree, d, True)
        cls.upstream_ca = tls_certs.make_ca(d)
        tls_certs.make_leaf(d, "up", ["127.0.0.1"])
        cls.sluice_ca = make_sluice_ca(os.path.join(d, "sluice-ca"))
        cls.origin = subprocess.Popen([SLUICE, "bench", "upstream", "--listen", "127.0.0.1:0", "--lifetime", "600",
                                       "--tls-cert", os.path.join(d, "up.crt"), "--tls-key", os.path.join(d, "up.key")],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        cls.addClassCleanup(kill_process, cls.origin)
        cls.origin_port = _read_port_line(cls.origin, "sluice bench upstream")
        cls.sluice = cls.start_sluice("""
listeners:
  - {name: p, tcp: "127.0.0.1:0", policy: insp}
policies:
  insp: {allow: ["127.0.0.1"], inspect: ["127.0.0.1"]}
tls: {ca_cert: "%s/sluice-ca/ca.crt", ca_key: "%s/sluice-ca/ca.key", upstream_ca: ["%s"]}
log: {path: "{log}"}
""" % (d, d, cls.upstream_ca))
        cls.proxy = "http://127.0.0.1:%d" % cls.sluice.tcp_port("p")

    def bench(self, *args):
        argv = [SLUICE, "bench", *args, "--target", "127.0.0.1:%d" % self.origin_port, "--json"]
        r = subprocess.run(argv, capture_output=True, timeout=120 * SLOW)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        return json.loads(r.stdout)

    def inspected(self):
        return [e for e in self.sluice.log() if self.is_inspected_request(e)]

    @staticmethod
    def is_inspected_request(e):  # one line per request inside (the CONNECT has a line of its own)
        return e.get("kind") == "http" and e.get("tls") == "inspected" and e.get("status") == 200

    def test_new_tls_connections_keep_alive_and_a_download_through_inspection(self):
        before = len(self.inspected())
        r = self.bench("connect-storm", "--proxy", self.proxy, "--ca", self.sluice_ca, "--requests", "20",
                       "--concurrency", "2", "--duration", "60")
        self.assertEqual((r["tls"], r["ops"], r["failed"], r["errors"]), (True, 20, 0, {}), r)
        r = self.bench("http-forward", "--proxy", self.proxy, "--ca", self.sluice_ca, "--requests", "30",
                       "--concurrency", "1", "--duration", "60")
        self.assertEqual((r["ops"], r["failed"], r["errors"]), (30, 0, {}), r)
        size = 8 << 20
        r = self.bench("tunnel-throughput", "--proxy", self.proxy, "--ca", self.sluice_ca, "--size", str(size),
                       "--duration", "60")
        self.assertEqual((r["ops"], r["bytes"], r["errors"]), (1, size, {}), r)
        logged = self.sluice.wait_log(self.is_inspected_request, count=before + 51)
        self.assertEqual(len(logged), before + 51)

    def test_the_client_trusting_only_the_upstream_ca_fails_through_inspection(self):
        r = self.bench("connect-storm", "--proxy", self.proxy, "--ca", self.upstream_ca, "--requests", "3",
                       "--concurrency", "1", "--duration", "30")
        self.assertEqual((r["ops"], r["errors"]), (0, {"tls-failed": 3}), r)
        r = self.bench("connect-storm", "--direct", "--ca", self.upstream_ca, "--requests", "3", "--concurrency", "1",
                       "--duration", "30")
        self.assertEqual((r["ops"], r["errors"]), (3, {}), r)


if __name__ == "__main__":
    unittest.main()
