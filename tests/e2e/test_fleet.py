"""End-to-end: what docs/fleet.md ships. The Prometheus files in packaging/prometheus pass
`promtool check rules` / `check config`, the alert rules' own unit tests
(sluice-alerts.test.yml: each alert fires on its series and not before) pass `promtool test
rules`, every metric the rules name is one a running sluice really exports, and the
command of sluice-metrics.service writes a textfile node_exporter can read."""
import os
import re
import shutil
import subprocess
import tempfile

from harness import E2E, SLUICE, SLOW

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROM = os.path.join(ROOT, "packaging", "prometheus")
METRICS_UNIT = os.path.join(ROOT, "packaging", "sluice-metrics.service")

CONFIG = """
listeners:
  - {name: main, tcp: 127.0.0.1:0}
policies:
  default: {allow: [allowed.test]}
control:
  unix: "{dir}/control.sock"
log:
  path: "{log}"
"""


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120 * SLOW, **kw)


class FleetTest(E2E):
    def test_promtool_accepts_the_rules_and_the_config(self):
        out = run(["promtool", "check", "rules", os.path.join(PROM, "sluice-alerts.yml")])
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("SUCCESS: 6 rules found", out.stdout)
        out = run(["promtool", "check", "config", os.path.join(PROM, "prometheus.yml")])
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_alert_rules_fire_on_their_series(self):
        out = run(["promtool", "test", "rules", "sluice-alerts.test.yml"], cwd=PROM)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_rules_name_only_metrics_sluice_exports(self):
        with open(os.path.join(PROM, "sluice-alerts.yml")) as f:
            used = set(re.findall(r"\b(sluice_[a-z_]+)\b", f.read())) - {"sluice_prom"}
        self.assertGreaterEqual(len(used), 5)
        sl = self.start_sluice_for_test(CONFIG, extra_args=["--loop-probe-ms", "50"])
        sock = os.path.join(sl.dir, "control.sock")
        exported = self.metrics_textfile(sock)
        families = set(re.findall(r"^# TYPE (\S+) ", exported, re.M))
        self.assertEqual(used - families, set())

    def metrics_textfile(self, sock):
        """Runs sluice-metrics.service's command with the test's paths; returns the file it wrote."""
        with open(METRICS_UNIT) as f:
            line = next(l for l in f if l.startswith("ExecStart="))
        cmd = line[len("ExecStart="):].strip()
        self.assertTrue(cmd.startswith("/bin/sh -c '") and cmd.endswith("'"), cmd)
        script = cmd[len("/bin/sh -c '"):-1]
        d = tempfile.mkdtemp(prefix="sluice-textfile-")
        self.addCleanup(shutil.rmtree, d, True)
        for real, test in (("/var/lib/prometheus/node-exporter", d), ("/usr/bin/sluice", os.path.abspath(SLUICE)),
                           ("/run/sluice/control.sock", sock)):
            self.assertIn(real, script)
            script = script.replace(real, test)
        out = run(["/bin/sh", "-c", script])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sorted(os.listdir(d)), ["sluice.prom"])  # the temporary file was renamed
        with open(os.path.join(d, "sluice.prom")) as f:
            text = f.read()
        self.assertIn("sluice_uptime_seconds ", text)
        return text
