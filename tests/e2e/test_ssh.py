"""End-to-end: real ssh and git over ssh through sluice. The test starts its own sshd
(Debian's openssh-server: /usr/sbin/sshd -D -e -f its own config, its own host key,
127.0.0.1 on a free high port, key auth with a throwaway key) and a bare repository;
ssh reaches it only through `sluice connect` as ProxyCommand, from the host against
`sluice serve`, and from inside a `sluice run` jail through the bridge."""
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import E2E, SLOW, SLUICE as _SLUICE, clean_env, free_port, kill_process, wait_for

SSHD = "/usr/sbin/sshd"
SLUICE = os.path.abspath(_SLUICE)  # the jail test runs from another directory

CONFIG = """
listeners:
  - name: open
    tcp: 127.0.0.1:0
    policy: agents
  - name: inband
    tcp: 127.0.0.1:0
    policy: inband
policies:
  agents:
    allow: [allowed.test, "127.0.0.1"]
  inband:
    allow: [allowed.test, "127.0.0.1"]
    deny: [git.denied.test]
    ssh_in_band_reason: true
resolver:
  servers: ["127.0.0.1:DNSPORT"]
log:
  path: "{log}"
"""


class Sshd:
    """A private sshd on 127.0.0.1: own config, host key and authorized key; killed in close()."""

    def __init__(self, root):
        self.dir = os.path.join(root, "sshd")
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "client_key")
        host_key = os.path.join(self.dir, "host_key")
        for path in (self.key, host_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
        shutil.copy(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        self.port = free_port()
        self.user = getpass.getuser()
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as f:
            f.write("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s/sshd.pid\n"
                    "AuthorizedKeysFile %s/authorized_keys\nStrictModes no\nPermitRootLogin prohibit-password\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                    "PubkeyAuthentication yes\nLogLevel VERBOSE\n" % (self.port, host_key, self.dir, self.dir))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # its privilege-separation directory
        self.log_path = os.path.join(self.dir, "sshd.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", config], stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL)
        try:
            wait_for(self._banner, timeout=10, what="sshd listening")
        except BaseException:
            self.close()
            raise

    def _banner(self):
        if self.proc.poll() is not None:
            raise AssertionError("sshd exited %s: %s" % (self.proc.returncode, self.read_log()))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(64).startswith(b"SSH-2.0-")
        except OSError:
            return False

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def ssh_options(self, proxy_command):
        return ["-F", "/dev/null", "-i", self.key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10", "-o", "ProxyCommand=" + proxy_command]

    def close(self):
        kill_process(self.proc)
        self._log.close()


class SshTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(SSHD, os.X_OK):
            raise AssertionError("%s not found: scripts/setup.sh installs openssh-server" % SSHD)
        cls.root = tempfile.mkdtemp(prefix="sluice-ssh-", dir="/var/tmp")  # visible inside the jail
        cls.addClassCleanup(shutil.rmtree, cls.root, True)
        cls.sshd = Sshd(cls.root)
        cls.addClassCleanup(cls.sshd.close)
        cls.sluice = cls.start_sluice(CONFIG.replace("DNSPORT", str(cls.dns.port)))
        # A bare repository with one commit, served by the sshd's git-upload-pack.
        src = os.path.join(cls.root, "src")
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                   GIT_COMMITTER_EMAIL="t@t", HOME=cls.root)
        subprocess.run(["git", "init", "-q", src], check=True, env=env)
        with open(os.path.join(src, "README"), "w") as f:
            f.write("cloned over ssh through sluice\n")
        subprocess.run(["git", "-C", src, "add", "README"], check=True, env=env)
        subprocess.run(["git", "-C", src, "commit", "-qm", "one"], check=True, env=env)
        cls.repo = os.path.join(cls.root, "repo.git")
        subprocess.run(["git", "clone", "-q", "--bare", src, cls.repo], check=True, env=env)

    def ssh(self, listener, host, port, command="echo hello-over-ssh", proxy=None):
        proxy = proxy or "127.0.0.1:%d" % self.sluice.tcp_port(listener)
        argv = (["ssh"] + self.sshd.ssh_options("%s connect --proxy %s %%h %%p" % (SLUICE, proxy)) +
                ["-p", str(port), "%s@%s" % (self.sshd.user, host), command])
        return subprocess.run(argv, capture_output=True, text=True, timeout=60 * SLOW, env=clean_env())

    def test_ssh_through_sluice_connect_when_allowed(self):
        for proxy_kind in ("socks", "connect"):
            proxy = ("socks5h://127.0.0.1:%d" if proxy_kind == "socks" else "http://127.0.0.1:%d") % \
                self.sluice.tcp_port("open")
            r = self.ssh("open", "allowed.test", self.sshd.port, proxy=proxy)
            self.assertEqual(r.returncode, 0, r.stderr + self.sshd.read_log()[-2000:])
            self.assertEqual(r.stdout, "hello-over-ssh\n")
            self.sluice.wait_log(lambda e: e["event"] == "decision" and e.get("kind") == proxy_kind and
                                 e.get("port") == self.sshd.port and e.get("host") == "allowed.test",
                                 what="%s decision for the ssh connection" % proxy_kind)

    def test_denied_ssh_prints_the_in_band_reason(self):
        r = self.ssh("inband", "git.denied.test", 22)
        self.assertEqual(r.returncode, 255)
        self.assertIn("Received disconnect from", r.stderr)
        self.assertIn('sluice: git.denied.test:22 denied by rule "git.denied.test" in the deny list of policy "inband"',
                      r.stderr)
        d = self.sluice.wait_log(lambda e: e["event"] == "decision" and e.get("host") == "git.denied.test",
                                 what="in-band decision")[0]
        self.assertEqual((d["kind"], d["verdict"], d["in_band_reason"]), ("socks", "deny", True))
        # Without the switch, ssh learns only that the proxy refused.
        r = self.ssh("open", "git.denied.test", 22)
        self.assertEqual(r.returncode, 255)
        self.assertIn("refused: SOCKS5 reply 2 (connection not allowed by ruleset)", r.stderr)
        self.assertNotIn("Received disconnect", r.stderr)

    def test_git_clone_over_ssh_from_the_jail(self):
        cwd = tempfile.mkdtemp(prefix="sluice-cwd-", dir=self.root)
        key = os.path.join(cwd, "key")  # ~/.ssh is hidden in the jail: the key travels with the job
        shutil.copy(self.sshd.key, key)
        os.chmod(key, 0o600)
        opts = "-i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no " \
               "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" % key
        script = ("export ASAN_OPTIONS=detect_leaks=0; export GIT_SSH_COMMAND=\"$GIT_SSH_COMMAND %s\"; "
                  "git clone -q ssh://%s@allowed.test:%d%s out && cat out/README" %
                  (opts, self.sshd.user, self.sshd.port, self.repo))
        argv = [SLUICE, "run", "--dns-server", "127.0.0.1:%d" % self.dns.port, "--allow", "allowed.test",
                "--allow", "127.0.0.1", "--", "sh", "-c", script]
        r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120 * SLOW,
                           env={"PATH": os.environ["PATH"], "HOME": self.root})
        self.assertEqual(r.returncode, 0, r.stderr + self.sshd.read_log()[-2000:])
        self.assertEqual(r.stdout, "cloned over ssh through sluice\n")
        # And a host the jail's policy does not allow never gets a connection.
        script = ("export ASAN_OPTIONS=detect_leaks=0; export GIT_SSH_COMMAND=\"$GIT_SSH_COMMAND %s\"; "
                  "git clone -q ssh://%s@other.test:%d%s out2; echo rc=$?" %
                  (opts, self.sshd.user, self.sshd.port, self.repo))
        argv[-1] = script
        r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120 * SLOW,
                           env={"PATH": os.environ["PATH"], "HOME": self.root})
        self.assertIn("rc=128", r.stdout)
        self.assertIn("sluice: denied other.test:%d (not-in-allowlist, socks)" % self.sshd.port, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(cwd, "out2", "README")))

    def test_ssh_without_proxy_command_in_a_transparent_jail(self):
        # --transparent: plain ssh, no ProxyCommand, reaches the sshd by name through the fake
        # address the jail's stub gave allowed.test; the decision names the original destination.
        cwd = tempfile.mkdtemp(prefix="sluice-cwd-", dir=self.root)
        key = os.path.join(cwd, "key")
        shutil.copy(self.sshd.key, key)
        os.chmod(key, 0o600)
        log = os.path.join(cwd, "decisions.jsonl")
        script = ("ssh -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no "
                  "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ProxyCommand=none -p %d %s@allowed.test "
                  "echo hello-transparent-ssh" % (key, self.sshd.port, self.sshd.user))
        argv = [SLUICE, "run", "--transparent", "--dns-server", "127.0.0.1:%d" % self.dns.port, "--log", log,
                "--allow", "allowed.test", "--allow", "127.0.0.1", "--", "sh", "-c", script]
        r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120 * SLOW,
                           env={"PATH": os.environ["PATH"], "HOME": self.root})
        self.assertEqual(r.returncode, 0, r.stderr + self.sshd.read_log()[-2000:])
        self.assertEqual(r.stdout, "hello-transparent-ssh\n")
        import json
        with open(log) as f:
            d = [json.loads(x) for x in f if '"decision"' in x]
        self.assertEqual([(e["host"], e["port"], e["status"]) for e in d], [("allowed.test", self.sshd.port, 200)])
        self.assertTrue(d[0]["original_dst"].startswith("198.1") or d[0]["original_dst"].startswith("[fd73:"), d[0])
