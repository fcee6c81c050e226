"""End-to-end: `sluice run` with real bubblewrap. Inside the jail: curl, python,
git and `sluice connect` reach loopback test servers only through the proxy,
and only when the policy allows; the filesystem and unix sockets are fenced."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from harness import E2E, SLUICE, TOOLS, free_port, run_bounded, wait_for

sys.path.insert(0, TOOLS)
import git_http  # noqa: E402

# Where the launcher binds sluice inside the jail (the host path may be hidden there).
JAIL_SLUICE = "/run/sluice/sluice"


class RunTest(E2E):
    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.home, True)
        super().tearDownClass()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Not under /tmp: the jail's /tmp is a fresh tmpfs, which would hide it anyway.
        cls.home = tempfile.mkdtemp(prefix="sluice-home-", dir="/var/tmp")
        os.makedirs(os.path.join(cls.home, ".ssh"))
        with open(os.path.join(cls.home, ".ssh", "id_rsa"), "w") as f:
            f.write("PRIVATE KEY\n")
        with open(os.path.join(cls.home, ".netrc"), "w") as f:
            f.write("machine x login y password z\n")

    def setUp(self):
        self.cwd = tempfile.mkdtemp(prefix="sluice-cwd-")
        self.addCleanup(shutil.rmtree, self.cwd, True)

    def run_jail(self, script, allow=("allowed.test", "echo.test", "127.0.0.1"), extra=(), timeout=60, env=None):
        """Runs `sh -c script` in the jail; denied writes print NAME=denied (sh's codes vary)."""
        argv = [SLUICE, "run", "--dns-server", "127.0.0.1:%d" % self.dns.port]
        for a in allow:
            argv += ["--allow", a]
        # Inside the jail the seccomp filter forbids ptrace, which LeakSanitizer needs:
        # sanitizer builds of `sluice connect` run there without the leak check.
        argv += list(extra) + ["--", "sh", "-c", "export ASAN_OPTIONS=detect_leaks=0; " + script]
        e = {"PATH": os.environ["PATH"], "HOME": self.home}
        e.update(env or {})
        return run_bounded(argv, cwd=self.cwd, capture_output=True, text=True, timeout=timeout, env=e)

    def url(self, host, path="/hello"):
        return "http://%s:%d%s" % (host, self.up.port, path)

    def test_curl_through_the_proxy_works_and_denials_are_reported(self):
        r = self.run_jail("curl -sS %s && curl -sS -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}' %s"
                          % (self.url("allowed.test"), self.url("other.test", "/hello?from-jail")))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "hello\n403 not-in-allowlist")
        self.assertIn("sluice: denied other.test:%d (not-in-allowlist)" % self.up.port, r.stderr)
        self.assertEqual(self.seen("/hello?from-jail"), [])

    def test_connections_are_handed_over_to_the_proxy(self):
        # The bridge passes the jail's TCP socket itself to the proxy: the proxy sees the
        # jail's loopback address as the client, not a unix socket, and the bytes are exact.
        log = os.path.join(self.cwd, "decisions.jsonl")
        r = self.run_jail("curl -sS -p %s | sha256sum" % self.url("allowed.test", "/big?n=3000000"),
                          extra=["--log", log, "--workers", "2"])
        self.assertEqual(r.returncode, 0, r.stderr)
        import json
        import upstream
        self.assertTrue(r.stdout.startswith(upstream.pattern_sha256(3_000_000)), r.stdout)
        entries = [json.loads(x) for x in open(log)]
        decision = [e for e in entries if e["event"] == "decision"][0]
        self.assertRegex(decision["client"], r"^127\.0\.0\.1:\d+$")
        self.assertNotIn("peer", decision)

    def test_relay_bridge_copies_bytes_over_the_socket(self):
        log = os.path.join(self.cwd, "decisions.jsonl")
        r = self.run_jail("curl -sS -p %s | sha256sum" % self.url("allowed.test", "/big?n=3000000"),
                          extra=["--log", log, "--bridge", "relay"])
        self.assertEqual(r.returncode, 0, r.stderr)
        import json
        import upstream
        self.assertTrue(r.stdout.startswith(upstream.pattern_sha256(3_000_000)), r.stdout)
        decision = [e for e in map(json.loads, open(log)) if e["event"] == "decision"][0]
        self.assertEqual(decision["client"], "unix")
        self.assertIn("pid", decision["peer"])  # the bridge's credentials, from SO_PEERCRED

    def test_the_command_holds_no_descriptor_but_stdio(self):
        # The hand-over channels are the bridge's alone, the proxy's sockets stay in the launcher,
        # and a descriptor the launcher inherited (here a host socket) does not cross into the jail.
        inherited = socket.socket()
        self.addCleanup(inherited.close)
        argv = [SLUICE, "run", "--", "sh", "-c", "ls /proc/self/fd"]
        r = run_bounded(argv, cwd=self.cwd, capture_output=True, text=True, timeout=60,
                        pass_fds=[inherited.fileno()], env={"PATH": os.environ["PATH"], "HOME": self.home})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.split(), key=int), ["0", "1", "2", "3"])  # 3: the directory ls reads

    def test_socks5_through_the_bridge(self):
        for bridge in ([], ["--bridge", "relay"]):  # the socket handed over, and bytes relayed
            self.socks5_through_the_bridge(bridge)

    def socks5_through_the_bridge(self, bridge):
        closed = free_port()
        socks = "curl -sS --noproxy '' --max-time 20 %s 127.0.0.1:3128 "
        r = self.run_jail(
            (socks + "%s; echo allowed=$?; ") % ("--socks5-hostname", self.url("allowed.test")) +
            (socks + "%s; echo literal=$?; ") % ("--socks5", self.url("127.0.0.1")) +
            (socks + "%s; echo denied=$?; ") % ("--socks5-hostname", self.url("other.test", "/hello?socks-jail")) +
            (socks + "http://missing.test:%d/; echo dns=$?; ") % ("--socks5-hostname", self.up.port) +
            (socks + "http://closed.test:%d/; echo refused=$?") % ("--socks5-hostname", closed),
            allow=("allowed.test", "missing.test", "closed.test", "127.0.0.1"), extra=bridge)
        self.assertIn("hello\nallowed=0\nhello\nliteral=0\n", r.stdout, (bridge, r.stderr))
        self.assertIn("denied=97", r.stdout)
        self.assertIn("dns=97", r.stdout)
        self.assertIn("refused=97", r.stdout)
        self.assertIn("connection to other.test. (2)", r.stderr)
        self.assertIn("connection to missing.test. (4)", r.stderr)
        self.assertIn("connection to closed.test. (5)", r.stderr)
        self.assertIn("sluice: denied other.test:%d (not-in-allowlist, socks)" % self.up.port, r.stderr)
        self.assertEqual(self.seen("/hello?socks-jail"), [])

    def test_the_launcher_sleeps_while_the_command_runs(self):
        # A regression guard, not a timing test: the launcher once spun on a closed pipe's
        # POLLHUP and burnt a core for the whole run. Start-up costs what it costs (much more
        # under ASan); waiting costs ~0, so a 3 s command may cost little more than a 1 s one.
        import resource

        def cpu_for(seconds):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = subprocess.run([SLUICE, "run", "--", "sleep", str(seconds)], cwd=self.cwd, capture_output=True,
                               timeout=60, env={"PATH": os.environ["PATH"], "HOME": self.home})
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.assertEqual(r.returncode, 0, r.stderr)
            return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

        short, long = cpu_for(1), cpu_for(3)
        self.assertLess(long - short, 0.5, "2 s more of waiting cost %.2f CPU-s more (%.2f vs %.2f)" %
                        (long - short, long, short))

    def seatbelt_run(self, script, allow=("allowed.test", "127.0.0.1"), extra=()):
        """`sluice run --jail seatbelt` with a stand-in sandbox-exec that records the profile it
        was given and runs the command unsandboxed: the macOS launcher path, minus the kernel."""
        bindir = os.path.join(self.cwd, "fake-bin")
        os.makedirs(bindir, exist_ok=True)
        fake = os.path.join(bindir, "sandbox-exec")
        with open(fake, "w") as f:
            f.write("#!%s\nimport os, sys\nassert sys.argv[1] == '-p', sys.argv\n"
                    "open(os.environ['SEATBELT_RECORD'], 'w').write(sys.argv[2])\n"
                    "os.execvp(sys.argv[3], sys.argv[3:])\n" % sys.executable)
        os.chmod(fake, 0o755)
        record = os.path.join(self.cwd, "profile.sb")
        if os.path.exists(record):
            os.unlink(record)
        argv = [SLUICE, "run", "--jail", "seatbelt", "--dns-server", "127.0.0.1:%d" % self.dns.port]
        for a in allow:
            argv += ["--allow", a]
        argv += list(extra) + ["--", "sh", "-c", script]
        env = {"PATH": bindir + ":" + os.environ["PATH"], "HOME": self.home, "SEATBELT_RECORD": record}
        r = run_bounded(argv, cwd=self.cwd, capture_output=True, text=True, timeout=60, env=env)
        profile = ""
        if os.path.exists(record):
            with open(record) as f:
                profile = f.read()
        return r, profile

    def test_seatbelt_launcher_runs_the_command_under_its_profile_and_proxy(self):
        r, profile = self.seatbelt_run(
            "echo proxy=$HTTP_PROXY; curl -sS %s && curl -sS -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}' %s"
            % (self.url("allowed.test"), self.url("other.test", "/hello?from-seatbelt")))
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        port = int(lines[0].rsplit(":", 1)[1])
        self.assertEqual(lines[0], "proxy=http://127.0.0.1:%d" % port)
        self.assertEqual(lines[1:], ["hello", "403 not-in-allowlist"])
        self.assertIn("sluice: denied other.test:%d (not-in-allowlist)" % self.up.port, r.stderr)
        self.assertEqual(self.seen("/hello?from-seatbelt"), [])
        # The profile: closed by default, writes only where allowed, out only to this proxy.
        self.assertTrue(profile.startswith("(version 1)\n(deny default)\n"), profile)
        self.assertIn('(allow network-outbound (remote tcp "localhost:%d"))' % port, profile)
        self.assertIn('(allow file-write* (subpath "%s"))' % os.path.realpath(self.cwd), profile)
        self.assertIn('(deny file-read* (subpath "%s/.ssh"))' % self.home, profile)
        self.assertIn('(deny file-write* (subpath "%s/.git/hooks"))' % os.path.realpath(self.cwd), profile)

    def test_seatbelt_launcher_exit_status_and_dry_run(self):
        r, _ = self.seatbelt_run("exit 3")
        self.assertEqual(r.returncode, 3, r.stderr)
        r, profile = self.seatbelt_run("true", extra=["--dry-run"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("sandbox-exec -p '(version 1)"), r.stdout)
        self.assertIn("HTTP_PROXY=http://127.0.0.1:", r.stdout)
        self.assertEqual(profile, "")  # a dry run starts nothing

    def test_policy_file_with_lua_rules(self):
        # Rules load relative to the policy file; the listener `sluice run` makes is the sandbox.
        d = tempfile.mkdtemp(prefix="sluice-policy-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "policy.yaml"), "w") as f:
            f.write("policies:\n  default:\n    allow: [allowed.test, other.test, 127.0.0.1]\n    rules: [r.lua]\n")
        with open(os.path.join(d, "r.lua"), "w") as f:
            f.write("function on_request(c, r)\n"
                    "  if c.host == 'other.test' then\n"
                    "    return {verdict = 'deny', reason = c.listener .. ' ' .. c.kind .. ' ' .. r.method} end\n"
                    "end\n")
        r = self.run_jail("curl -sS %s && curl -sS %s" % (self.url("allowed.test"), self.url("other.test")),
                          allow=(), extra=["--policy", os.path.join(d, "policy.yaml")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "hello\nsluice: other.test:%d denied by script \"r.lua\" (on_request) of policy "
                                   "\"default\": sandbox http GET\n" % self.up.port)
        self.assertIn('(denied-by-script, script "r.lua": sandbox http GET)', r.stderr)

    def test_quiet_hides_denials(self):
        r = self.run_jail("curl -sS -o /dev/null %s" % self.url("other.test"), extra=["--quiet"])
        self.assertNotIn("denied", r.stderr)

    def test_https_style_connect_through_the_bridge(self):
        r = self.run_jail("curl -sS -p %s" % self.url("allowed.test", "/big?n=2000000") + " | sha256sum")
        self.assertEqual(r.returncode, 0, r.stderr)
        import upstream
        self.assertTrue(r.stdout.startswith(upstream.pattern_sha256(2_000_000)), r.stdout)

    def test_no_network_without_the_proxy(self):
        r = self.run_jail(
            "curl -sS --noproxy '*' --max-time 3 %s; echo curl=$?; "
            "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null; echo devtcp=$?; "
            "bash -c 'exec 3<>/dev/tcp/%s/%d' 2>/dev/null; echo devtcp_host=$?"
            % (self.url("allowed.test"), self.up.port, "127.0.0.1", self.echo.port))
        self.assertIn("curl=6", r.stdout)  # no resolver in the jail: the name cannot even be looked up
        self.assertIn("devtcp=1", r.stdout)
        self.assertIn("devtcp_host=1", r.stdout)

    def test_closed_network_by_default(self):
        r = self.run_jail("curl -sS -o /dev/null -w '%%{http_code}' %s" % self.url("allowed.test"), allow=())
        self.assertEqual(r.stdout, "403")

    def test_secrets_are_hidden(self):
        r = self.run_jail("cat ~/.ssh/id_rsa; echo ssh=$?; cat ~/.netrc; echo netrc=$?; ls -A ~/.ssh | wc -l; "
                          "ls ~ >/dev/null && echo home-readable")
        self.assertNotIn("PRIVATE KEY", r.stdout)
        self.assertNotIn("password", r.stdout)
        self.assertIn("ssh=1", r.stdout)   # the directory is an empty tmpfs
        self.assertIn("netrc=1", r.stdout)  # /dev/null on a nodev mount: unreadable
        self.assertIn("\n0\n", r.stdout)
        self.assertIn("home-readable", r.stdout)

    def test_writes_only_in_cwd_and_tmp(self):
        r = self.run_jail("echo a > inside.txt && echo cwd-ok; echo b > /tmp/t && echo tmp-ok; "
                          "(echo c > %s/outside.txt) 2>/dev/null || echo home=denied; "
                          "touch /etc/sluice-test 2>/dev/null || echo etc=denied" % self.home)
        self.assertIn("cwd-ok", r.stdout)
        self.assertIn("tmp-ok", r.stdout)
        self.assertIn("home=denied", r.stdout)
        self.assertIn("etc=denied", r.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.cwd, "inside.txt")))
        self.assertFalse(os.path.exists(os.path.join(self.home, "outside.txt")))
        self.assertFalse(os.path.exists("/etc/sluice-test"))

    def test_git_hooks_and_rc_files_are_read_only(self):
        os.makedirs(os.path.join(self.cwd, ".git", "hooks"))
        with open(os.path.join(self.cwd, ".git", "hooks", "pre-commit"), "w") as f:
            f.write("#!/bin/sh\n")
        r = self.run_jail("(echo evil >> .git/hooks/pre-commit) 2>/dev/null || echo existing=denied; "
                          "(echo evil > .git/hooks/post-checkout) 2>/dev/null || echo new=denied; "
                          "(echo evil >> .bashrc) 2>/dev/null || echo bashrc=denied; "
                          "mkdir .vscode/x 2>/dev/null || echo vscode=denied")
        for name in ("existing", "new", "bashrc", "vscode"):
            self.assertIn(name + "=denied", r.stdout)
        with open(os.path.join(self.cwd, ".git", "hooks", "pre-commit")) as f:
            self.assertEqual(f.read(), "#!/bin/sh\n")
        self.assertFalse(os.path.exists(os.path.join(self.cwd, ".git", "hooks", "post-checkout")))
        # Placeholders made for names that did not exist are gone after the run.
        self.assertFalse(os.path.exists(os.path.join(self.cwd, ".bashrc")))
        self.assertFalse(os.path.exists(os.path.join(self.cwd, ".vscode")))

    def test_git_hooks_dir_that_does_not_exist_yet(self):
        os.makedirs(os.path.join(self.cwd, ".git"))
        r = self.run_jail("(mkdir -p .git/hooks && echo evil > .git/hooks/pre-commit) 2>/dev/null || echo hook=denied")
        self.assertIn("hook=denied", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.cwd, ".git", "hooks", "pre-commit")))

    def test_host_unix_sockets_are_unreachable(self):
        path = os.path.join(self.cwd, "host.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(1)
        self.addCleanup(srv.close)
        code = ("import socket\ntry:\n s=socket.socket(socket.AF_UNIX); s.connect('host.sock'); print('connected')\n"
                "except OSError as e: print('blocked', e.errno)\n")
        r = self.run_jail("python3 -c \"%s\"" % code.replace('"', '\\"'))
        self.assertIn("blocked 1", r.stdout)  # EPERM from the seccomp filter
        r = self.run_jail("python3 -c 'import socket; a,b=socket.socketpair(); print(\"pair ok\")'")
        self.assertIn("pair ok", r.stdout)

    def test_unix_socket_filter_reads_the_int_argument(self):
        # socket() takes an int: high bits in the register must not get AF_UNIX past the filter.
        code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                "fd = libc.syscall(ctypes.c_long(41), ctypes.c_long((1 << 32) | 1), ctypes.c_long(1), ctypes.c_long(0))\n"
                "print('fd', fd, 'errno', ctypes.get_errno())\n")
        r = self.run_jail("python3 -c \"%s\"" % code.replace('"', '\\"'))
        self.assertIn("fd -1 errno 1", r.stdout, r.stdout + r.stderr)

    def test_netfilter_netlink_sockets_are_refused(self):
        # nft and iptables need NETLINK_NETFILTER (12); other netlink (route) is untouched.
        code = ("import socket\nfor proto in (12, 0):\n try: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto); "
                "print(proto, 'opened')\n except OSError as e: print(proto, 'blocked', e.errno)\n")
        r = self.run_jail("python3 -c \"%s\"" % code.replace('"', '\\"'))
        self.assertIn("12 blocked 1", r.stdout, r.stdout + r.stderr)
        self.assertIn("0 opened", r.stdout, r.stdout + r.stderr)

    def test_exit_status_propagates(self):
        for script, code in (("true", 0), ("exit 3", 3), ("kill -INT $$", 130), ("kill -TERM $$", 143)):
            self.assertEqual(self.run_jail(script).returncode, code, script)

    def test_signals_reach_the_command(self):
        p = subprocess.Popen([SLUICE, "run", "--", "sh", "-c", "trap 'echo got-term; exit 7' TERM; "
                              "echo ready; while true; do sleep 0.05; done"],
                             cwd=self.cwd, stdout=subprocess.PIPE, text=True, env={"PATH": os.environ["PATH"],
                                                                                   "HOME": self.home})
        self.assertEqual(p.stdout.readline().strip(), "ready")
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 7)
        self.assertIn("got-term", out)

    def test_command_not_found(self):
        r = subprocess.run([SLUICE, "run", "--", "no-such-command-xyz"], cwd=self.cwd, capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "HOME": self.home}, timeout=30)
        self.assertEqual(r.returncode, 127)
        self.assertIn("no-such-command-xyz: command not found", r.stderr)

    def test_a_binary_whose_path_the_jail_hides_still_runs_it(self):
        # Under /tmp (the jail's /tmp is a fresh tmpfs) the host path of sluice is not there
        # inside: the launcher binds itself at /run/sluice/sluice for jail-init and the tools.
        d = tempfile.mkdtemp(prefix="sluice-bin-")
        self.addCleanup(shutil.rmtree, d, True)
        copy = os.path.join(d, "sluice")
        shutil.copy2(SLUICE, copy)
        script = ("export ASAN_OPTIONS=detect_leaks=0; test -e %s && echo host-path-visible; "
                  "curl -sS %s && %s --version >/dev/null && echo \"$GIT_SSH_COMMAND\""
                  % (copy, self.url("allowed.test"), JAIL_SLUICE))
        r = subprocess.run([copy, "run", "--dns-server", "127.0.0.1:%d" % self.dns.port, "--allow", "allowed.test",
                            "--allow", "127.0.0.1", "--", "sh", "-c", script], cwd=self.cwd, capture_output=True,
                           text=True, timeout=60, env={"PATH": os.environ["PATH"], "HOME": self.home})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "hello\nssh -o ProxyCommand='/run/sluice/sluice connect --proxy "
                                   "socks5h://127.0.0.1:3128 %h %p'\n")

    def test_runtime_directory_is_private_and_removed(self):
        runtime = tempfile.mkdtemp(prefix="sluice-xdg-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, runtime, True)
        # Only the socket (and sluice's own binary) are bound in; the launcher's directory shows up empty.
        r = self.run_jail("ls -A /run; ls -A /run/sluice; for d in %s/*; do ls -A $d; done | wc -l" % runtime,
                          env={"XDG_RUNTIME_DIR": runtime})
        self.assertEqual(r.stdout.split(), ["sluice", "proxy.sock", "sluice", "0"], r.stderr)
        self.assertEqual(os.listdir(runtime), [])  # the launcher removed its directory

    def test_python_urllib_uses_the_environment_proxy(self):
        code = ("import urllib.request,os; print(urllib.request.urlopen('%s').read().decode().strip(), "
                "os.environ['SLUICE_SANDBOX'])" % self.url("allowed.test"))
        r = self.run_jail("python3 -c \"%s\"" % code)
        self.assertEqual(r.stdout.strip(), "hello 1", r.stderr)

    def test_git_clone_over_http(self):
        root = tempfile.mkdtemp(prefix="sluice-git-")
        self.addCleanup(shutil.rmtree, root, True)
        src = os.path.join(root, "src")
        genv = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                    GIT_COMMITTER_EMAIL="t@t", HOME=root)
        subprocess.run(["git", "init", "-q", src], check=True, env=genv)
        with open(os.path.join(src, "README"), "w") as f:
            f.write("cloned through sluice\n")
        subprocess.run(["git", "-C", src, "add", "README"], check=True, env=genv)
        subprocess.run(["git", "-C", src, "commit", "-qm", "one"], check=True, env=genv)
        subprocess.run(["git", "clone", "-q", "--bare", src, os.path.join(root, "repo.git")], check=True, env=genv)
        server = git_http.serve(root)
        self.addCleanup(server.shutdown)
        port = server.server_address[1]
        r = self.run_jail("git clone -q http://allowed.test:%d/repo.git out && cat out/README" % port)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "cloned through sluice\n")
        r = self.run_jail("git clone -q http://other.test:%d/repo.git out2; echo rc=$?" % port)
        self.assertIn("rc=128", r.stdout)
        self.assertIn("403", r.stderr)

    def test_sluice_connect_reaches_tcp_only_when_allowed(self):
        r = self.run_jail("printf ping | %s connect echo.test %d" % (JAIL_SLUICE, self.echo.port))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "ping")
        r = self.run_jail("printf ping | %s connect other.test %d; echo rc=$?" % (JAIL_SLUICE, self.echo.port))
        self.assertIn("rc=1", r.stdout)
        self.assertIn("other.test:%d refused: HTTP/1.1 403 Forbidden" % self.echo.port, r.stderr)

    def test_ssh_proxy_command_goes_through_sluice_connect(self):
        # A fake sshd that records the client's banner and hangs up: what matters is
        # that ssh's bytes reached it through the proxy, and only when allowed.
        banners = []
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        self.addCleanup(srv.close)

        def serve():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                with c:
                    c.settimeout(10)
                    try:
                        banners.append(c.recv(256))
                    except OSError:
                        pass
        import threading
        threading.Thread(target=serve, daemon=True).start()
        port = srv.getsockname()[1]
        r = self.run_jail("ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=5 "
                          "-o ProxyCommand='%s connect %%h %%p' -p %d u@echo.test true; echo rc=$?" % (JAIL_SLUICE, port))
        self.assertIn("rc=255", r.stdout)
        wait_for(lambda: banners, what="ssh banner at the fake sshd")
        self.assertTrue(banners[0].startswith(b"SSH-2.0-"), banners)
        r = self.run_jail("ssh -o BatchMode=yes -o ProxyCommand='%s connect %%h %%p' -p %d u@other.test true; "
                          "echo rc=$?" % (JAIL_SLUICE, port))
        self.assertIn("refused: HTTP/1.1 403", r.stderr)
        self.assertIn("rc=255", r.stdout)

    def test_dry_run_prints_the_jail(self):
        r = subprocess.run([SLUICE, "run", "--dry-run", "--allow", "x.test", "--", "true"], cwd=self.cwd,
                           capture_output=True, text=True, env={"PATH": os.environ["PATH"], "HOME": self.home})
        self.assertEqual(r.returncode, 0)
        first = r.stdout.splitlines()[0]
        for word in ("bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session",
                     "--cap-drop ALL", "--ro-bind / /", "--bind %s %s" % (self.cwd, self.cwd),
                     "--tmpfs %s/.ssh" % self.home, "/run/sluice/proxy.sock", "jail-init"):
            self.assertIn(word, first)
        self.assertIn("HTTPS_PROXY=http://127.0.0.1:3128", r.stdout)
        self.assertIn("NO_PROXY=localhost,127.0.0.1,::1", r.stdout)

    def test_bad_arguments(self):
        for argv, code, want in ((["run"], 2, "no command"), (["run", "--allow", "a.*.b", "--", "true"], 2, "bad pattern"),
                                 (["run", "--write", "/no/such/dir", "--", "true"], 2, "no such file"),
                                 (["run", "--policy", "/no/such.yaml", "--", "true"], 2, "cannot read")):
            r = subprocess.run([SLUICE] + argv, cwd=self.cwd, capture_output=True, text=True)
            self.assertEqual(r.returncode, code, argv)
            self.assertIn(want, r.stderr)

    def test_user_namespaces_unavailable_is_explained(self):
        d = tempfile.mkdtemp(prefix="sluice-fakebwrap-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "bwrap"), "w") as f:  # fails the way bwrap does on such a kernel
            f.write("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace, likely because the kernel "
                    "does not allow non-privileged user namespaces.' >&2\nexit 1\n")
        os.chmod(os.path.join(d, "bwrap"), 0o755)
        r = subprocess.run([SLUICE, "run", "--", "true"], cwd=self.cwd, capture_output=True, text=True,
                           env={"PATH": d + ":" + os.environ["PATH"], "HOME": self.home}, timeout=30)
        self.assertEqual(r.returncode, 125)
        self.assertIn("bwrap: No permissions", r.stderr)
        self.assertIn("unprivileged_userns_clone", r.stderr)

    def test_bwrap_missing_is_a_clear_error(self):
        r = subprocess.run([SLUICE, "run", "--", "true"], cwd=self.cwd, capture_output=True, text=True,
                           env={"PATH": "/nonexistent", "HOME": self.home})
        self.assertEqual(r.returncode, 125)
        self.assertIn("bwrap (bubblewrap) not found", r.stderr)
