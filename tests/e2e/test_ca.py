"""End-to-end: `sluice ca init DIR` writes the TLS-inspection CA: a self-signed ECDSA P-256
CA certificate (CA:TRUE, keyCertSign) named "sluice inspection CA <random>", its key 0600 in
a 0700 directory, never overwritten, never printed."""
import os
import stat
import subprocess
import tempfile

from harness import E2E, SLUICE, SLOW


class CaInitTest(E2E):
    def ca(self, *args):
        return subprocess.run([SLUICE, "ca"] + list(args), capture_output=True, text=True, timeout=30 * SLOW)

    def openssl(self, *args):
        r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_init_writes_a_ca_and_a_private_key(self):
        base = tempfile.mkdtemp(prefix="sluice-ca-")
        self.addCleanup(subprocess.run, ["rm", "-rf", base])
        d = os.path.join(base, "conf", "ca")  # parents are made too
        r = self.ca("init", d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(d)).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "ca.key")).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "ca.crt")).st_mode), 0o644)
        with open(os.path.join(d, "ca.key")) as f:
            key = f.read()
        self.assertIn("PRIVATE KEY", key)
        self.assertNotIn(key.splitlines()[1], r.stdout + r.stderr)  # the key is never printed
        crt = os.path.join(d, "ca.crt")
        subject = self.openssl("x509", "-in", crt, "-noout", "-subject").strip()
        self.assertRegex(subject, r"^subject=CN = sluice inspection CA [0-9a-f]+$")
        ext = self.openssl("x509", "-in", crt, "-noout", "-ext", "basicConstraints,keyUsage")
        self.assertIn("CA:TRUE", ext)
        self.assertIn("Certificate Sign", ext)
        self.assertIn("prime256v1", self.openssl("pkey", "-in", os.path.join(d, "ca.key"), "-noout", "-text"))
        # Self-signed: it verifies against itself, and the key is the certificate's.
        self.assertIn("OK", self.openssl("verify", "-CAfile", crt, crt))
        self.assertEqual(self.openssl("x509", "-in", crt, "-noout", "-pubkey"),
                         self.openssl("pkey", "-in", os.path.join(d, "ca.key"), "-pubout"))

        # Again into the same directory: refused, the files left as they were.
        with open(os.path.join(d, "ca.crt")) as f:
            before = f.read(), key
        r = self.ca("init", d)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already exists; refusing to overwrite it", r.stderr)
        with open(os.path.join(d, "ca.crt")) as c, open(os.path.join(d, "ca.key")) as k:
            self.assertEqual((c.read(), k.read()), before)

        # A second CA has a name of its own.
        d2 = os.path.join(base, "ca2")
        self.assertEqual(self.ca("init", d2).returncode, 0)
        self.assertNotEqual(self.openssl("x509", "-in", os.path.join(d2, "ca.crt"), "-noout", "-subject"),
                            subject + "\n")

    def test_usage_errors_are_one_line_and_exit_2(self):
        for args in ([], ["make", "/tmp/x"], ["init"], ["init", "a", "b"]):  # nothing is created
            r = self.ca(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertTrue(r.stderr.startswith("sluice ca: "), r.stderr)
