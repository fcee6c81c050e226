"""`sluice bench` against the real proxy and its own upstream, in tiny bounded runs:
the closing race (the origin closes right after its last byte: the tunnelled download
must arrive whole every time), and the load generator's counts and byte totals
agreeing with what the proxy logged. No timing is asserted."""
import json
import subprocess
import unittest

from harness import E2E, SLOW, SLUICE, _read_port_line, kill_process


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

    def test_denied_targets_are_counted_as_proxy_errors(self):
        # The origin's port on another loopback address is not on the allow list.
        argv = [SLUICE, "bench", "connect-storm", "--proxy", self.proxy, "--target",
                "127.0.0.2:%d" % self.origin_port, "--requests", "20", "--concurrency", "2", "--json"]
        r = subprocess.run(argv, capture_output=True, timeout=60 * SLOW)
        self.assertEqual(r.returncode, 1, r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual((report["ops"], report["failed"]), (0, 20), report)
        self.assertEqual(report["errors"], {"proxy-403": 20})


if __name__ == "__main__":
    unittest.main()
