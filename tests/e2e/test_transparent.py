"""End-to-end: `sluice run --transparent` (issue 16, in progress). The dry run prints
the nft rule set, routes and resolv.conf the jail would get; a real run refuses
before CMD starts instead of falling back to the ordinary jail."""
import os
import shutil
import subprocess
import tempfile

from harness import E2E, SLUICE


class TransparentTest(E2E):
    def setUp(self):
        self.cwd = tempfile.mkdtemp(prefix="sluice-cwd-")
        self.addCleanup(shutil.rmtree, self.cwd, True)

    def sluice_run(self, *argv):
        return subprocess.run([SLUICE, "run"] + list(argv), cwd=self.cwd, capture_output=True, text=True,
                              env={"PATH": os.environ["PATH"], "HOME": self.cwd}, timeout=30)

    def test_dry_run_prints_rules_routes_and_resolver(self):
        r = self.sluice_run("--dry-run", "--transparent", "--allow", "x.test", "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn("bwrap", out.splitlines()[0])
        for want in ("# nft -f - (in the jail's network namespace, before CMD starts)", "table inet sluice {",
                     "meta l4proto tcp redirect to :3129", "udp dport 53 redirect to :53",
                     "type filter hook output priority 0; policy drop;",
                     "ip route add default dev lo src 127.0.0.1", "ip -6 route add default dev lo src ::1",
                     "# /etc/resolv.conf in the jail", "\nnameserver 127.0.0.1\n"):
            self.assertIn(want, out)
        # Exactly one resolver: the stub.
        self.assertEqual(out.count("nameserver"), 1)

    def test_dry_run_without_transparent_prints_no_rules(self):
        r = self.sluice_run("--dry-run", "--allow", "x.test", "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("table inet sluice", r.stdout)
        self.assertNotIn("nameserver", r.stdout)

    def test_real_run_refuses_before_cmd(self):
        marker = os.path.join(self.cwd, "ran")
        r = self.sluice_run("--transparent", "--allow", "x.test", "--", "sh", "-c", "touch " + marker)
        self.assertEqual(r.returncode, 125)
        self.assertIn("--transparent", r.stderr)
        self.assertIn("not built yet", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)  # one line
        self.assertFalse(os.path.exists(marker))  # CMD never started

    def test_seatbelt_refuses_transparent(self):
        r = self.sluice_run("--jail", "seatbelt", "--transparent", "--allow", "x.test", "--", "true")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--transparent needs the bwrap jail", r.stderr)
