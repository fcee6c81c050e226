"""End-to-end: no core file carries sluice's secrets. sluice holds CA keys, real credentials
and parent-proxy passwords in memory, so it makes itself non-dumpable at start: a crash
(SIGABRT here, with RLIMIT_CORE unlimited and the cwd writable) leaves no core behind, for
`sluice serve` and for the `sluice run` launcher. A control process under the same settings
does leave one, which proves the machine writes core files at all (else the test would
prove nothing)."""
import glob
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import SLUICE, Sluice, clean_env, wait_for

SECRET = "parent-pass-" + "Zq7" * 8


def unlimited_cores():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def read(path):
    with open(path) as f:
        return f.read()


def cores_in(d):
    return glob.glob(os.path.join(d, "core*"))


class CoreFileTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-core-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def abort_in(self, argv, ready, env=None):
        """Starts argv in its own directory with cores allowed, waits for `ready`, sends SIGABRT."""
        d = tempfile.mkdtemp(dir=self.dir)
        err = open(os.path.join(d, "stderr.txt"), "wb")
        self.addCleanup(err.close)
        proc = subprocess.Popen(argv, cwd=d, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                env=env or clean_env(), preexec_fn=unlimited_cores)
        try:
            wait_for(lambda: ready(d), timeout=20, what="%s ready" % argv[0])
            proc.send_signal(signal.SIGABRT)
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, -signal.SIGABRT)
        time.sleep(0.2)  # the kernel writes the core before the parent sees the exit; be generous
        return d

    def test_the_machine_writes_core_files_for_a_dumpable_process(self):
        d = self.abort_in(["sh", "-c", "touch started; exec sleep 30"],
                          lambda d: os.path.exists(os.path.join(d, "started")))
        self.assertTrue(cores_in(d), "this machine writes no core files (kernel.core_pattern=%r): the tests below "
                        "would prove nothing" % read("/proc/sys/kernel/core_pattern").strip())

    def test_serve_holding_a_password_leaves_no_core(self):
        config = ("listeners:\n  - name: main\n    tcp: 127.0.0.1:0\n"
                  "upstream_proxy: \"http://agent:%s@127.0.0.1:9\"\n"
                  "policies:\n  default:\n    allow: [x.test]\n" % SECRET)
        path = os.path.join(self.dir, "sluice.yaml")
        with open(path, "w") as f:
            f.write(config)
        d = self.abort_in([SLUICE, "serve", "--config", path, "--workers", "1"],
                          lambda d: "sluice: ready" in read(os.path.join(d, "stderr.txt")))
        self.assertEqual(cores_in(d), [])

    def test_run_launcher_leaves_no_core(self):
        env = clean_env()
        env["GITHUB_TOKEN"] = "ghp_" + "S3cr3t" * 6  # the launcher holds it; the jail never gets it
        d = self.abort_in([SLUICE, "run", "--allow", "x.test", "--", "sh", "-c", "touch started; exec sleep 30"],
                          lambda d: os.path.exists(os.path.join(d, "started")), env=env)
        self.assertEqual(cores_in(d), [])


if __name__ == "__main__":
    unittest.main()
