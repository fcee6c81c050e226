"""End-to-end: sluice as a service. `sluice serve` speaks systemd's readiness protocol on
NOTIFY_SOCKET (a datagram socket of the test's own, as systemd's would be): READY=1 once
its listeners are bound, RELOADING=1 then READY=1 around a SIGHUP reload (also a failed
one), STOPPING=1 when SIGTERM starts the drain. `sluice --version` names the commit."""
import os
import re
import signal
import socket
import subprocess
import tempfile

from harness import E2E, SLUICE, SLOW

CONFIG = """
listeners:
  - {name: main, tcp: 127.0.0.1:0}
policies:
  default: {allow: [allowed.test]}
log:
  path: "{log}"
"""


class NotifyTest(E2E):
    def notify_socket(self, abstract=False):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        if abstract:
            name = "sluice-test-notify-%d" % os.getpid()
            s.bind("\0" + name)
            where = "@" + name
        else:
            d = tempfile.mkdtemp(prefix="sluice-notify-")
            where = os.path.join(d, "notify.sock")
            s.bind(where)
            self.addCleanup(os.rmdir, d)
            self.addCleanup(os.unlink, where)
        s.settimeout(20 * SLOW)
        return s, where

    def message(self, s):
        data = s.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.split("\n") if line)

    def test_ready_reload_and_stopping(self):
        s, where = self.notify_socket()
        sl = self.start_sluice_for_test(CONFIG, env={"NOTIFY_SOCKET": where})
        m = self.message(s)
        self.assertEqual((m["READY"], m["MAINPID"]), ("1", str(sl.proc.pid)))
        self.assertIn("sluice: listening main", sl.read_stderr())  # bound before READY
        sl.signal(signal.SIGHUP)
        m = self.message(s)
        self.assertEqual(m["RELOADING"], "1")
        self.assertRegex(m["MONOTONIC_USEC"], r"^\d+$")
        self.assertEqual(self.message(s)["READY"], "1")
        # A broken file: still RELOADING=1 then READY=1, the old config serving.
        sl.write_config("listeners: [\n")
        sl.signal(signal.SIGHUP)
        self.assertEqual(self.message(s)["RELOADING"], "1")
        self.assertEqual(self.message(s)["READY"], "1")
        sl.signal(signal.SIGTERM)
        self.assertEqual(self.message(s)["STOPPING"], "1")
        self.assertEqual(sl.wait_exit(), 0)

    def test_abstract_notify_socket(self):
        s, where = self.notify_socket(abstract=True)
        self.start_sluice_for_test(CONFIG, env={"NOTIFY_SOCKET": where})
        self.assertEqual(self.message(s)["READY"], "1")

    def test_without_notify_socket_nothing_is_sent_and_it_serves(self):
        sl = self.start_sluice_for_test(CONFIG)
        self.assertIn("sluice: ready", sl.read_stderr())


class VersionTest(E2E):
    def test_version_names_the_commit(self):
        out = subprocess.run([SLUICE, "--version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        m = re.fullmatch(r"sluice (\d+\.\d+\.\d+) \(commit ([0-9a-f]{12}|unknown)\)\n", out.stdout)
        self.assertTrue(m, out.stdout)
        here = os.path.dirname(os.path.abspath(__file__))
        head = subprocess.run(["git", "-C", here, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0:  # a checkout: the binary built from it names its HEAD
            self.assertEqual(m.group(2), head.stdout.strip())
