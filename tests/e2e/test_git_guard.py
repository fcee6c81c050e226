"""End-to-end: the git guard on inspected HTTPS (docs/configuration.md#the-git-guard-git) with the
credential gateway, inside `sluice run --policy` with real bubblewrap. The tests' own git
smart-HTTP server (git http-backend behind a python HTTPS server, tests/tools/git_http.py)
requires the REAL token and records every request. git in the jail holds only the stand-in (sluice
run configures http.<url>.extraHeader): clone and fetch work, pushes to refs/heads/agent/* land
(small ones with Content-Length, large ones chunked after git's probe); pushes to main, a tag, a
delete, push options and another repository are refused the way git reports them, and the
server sees nothing of them; bodies sluice cannot read are refused. The real token is in neither
the jail nor the decision log.

One jail run (in setUpClass) does everything in order; the tests check its results."""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from harness import E2E, SLOW, SLUICE, Dns, clean_env, make_sluice_ca

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import git_http  # noqa: E402
import tls_certs  # noqa: E402

REAL = "ghp_" + "G1tRealTokenNeverLeaks" * 2  # 48 characters
REAL_BASIC = base64.b64encode(("x-access-token:" + REAL).encode()).decode()

POLICY = """
policies:
  default:
    allow: [git.test, 127.0.0.1]
    # No inspect: entry: a host a git rule guards is inspected on 443 or the port its rule names.
    credentials:
      - name: forge
        hosts: ["git.test:PORT"]
        secret: {env: SLUICE_TEST_FORGE}
        inject: "Authorization: Basic {basic:x-access-token:{secret}}"
        env: [GH_TOKEN]
      # replace_body on the git host: git's own bodies (packs) are left alone, so the 3 MB push
      # below is neither cut at this cap nor refused.
      - name: forge-body
        hosts: ["git.test:PORT"]
        secret: {env: SLUICE_TEST_FORGE}
        inject: replace
        replace_body: true
        replace_body_max_bytes: 4096
        env: [FORGE_BODY_KEY]
    git:
      - host: "git.test:PORT"
        repos: [org/repo]
        push: ["refs/heads/agent/*"]
tls:
  upstream_ca: [CERTS/ca.crt]
"""

# Each step's exit status goes to stdout as NAME=STATUS, its stderr to NAME.err. Every git and curl
# is bounded by `timeout`, so a hang is a failure of that step, not a stuck suite.
SCRIPT = r"""
export ASAN_OPTIONS=detect_leaks=0
T="timeout LIMIT"
G="$T git -c user.name=agent -c user.email=agent@test -c advice.detachedHead=false"
OUT=$(pwd)
step() { name=$1; shift; "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; echo "$name=$?"; }
step clone $G clone -q BASE/org/repo.git clone
cd clone
echo one > one.txt && git add one.txt && $G commit -qm one
step push_agent $G push origin HEAD:refs/heads/agent/one
head -c 3000000 /dev/urandom > big.bin && git add big.bin && $G commit -qm big
step push_main_big $G push origin HEAD:refs/heads/main
step push_agent_big $G push origin HEAD:refs/heads/agent/big
step fetch $G fetch -q origin
step push_tag $G push origin HEAD:refs/tags/v1
step push_delete $G push origin :refs/heads/agent/old
step push_options $G push -o ci.skip origin HEAD:refs/heads/agent/opt
step push_other $G push BASE/org/other.git HEAD:refs/heads/agent/x
step clone_other $G clone -q BASE/org/other.git ../other
cd ..
printf 'garbage that is no pkt-line' > garbage.bin
step curl_garbage $T curl -sS -o /dev/null -w '%{http_code} %header{x-sluice-reason}' \
  -H "Authorization: Bearer $GH_TOKEN" -H 'Content-Type: application/x-git-receive-pack-request' \
  --data-binary @garbage.bin BASE/org/repo.git/git-receive-pack
step curl_gzip $T curl -sS -o /dev/null -w '%{http_code} %header{x-sluice-reason}' \
  -H "Authorization: Bearer $GH_TOKEN" -H 'Content-Encoding: gzip' \
  -H 'Content-Type: application/x-git-receive-pack-request' \
  --data-binary @garbage.bin BASE/org/repo.git/git-receive-pack
step curl_dumb $T curl -sS -o /dev/null -w '%{http_code} %header{x-sluice-reason}' BASE/org/repo.git/info/refs
echo "environ=$(cat /proc/self/environ | tr '\0' '\n' | grep -c -e REAL_TOKEN -e REAL_BASIC)"
echo "config=$(git config --list | grep -ci 'extraheader=authorization: basic')"
echo "stand_in_len=${#GH_TOKEN}"
"""


class GitGuardTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.work = tempfile.mkdtemp(prefix="sluice-e2e-gitguard-", dir="/var/tmp")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        certs = os.path.join(cls.work, "certs")
        os.mkdir(certs)
        tls_certs.make_ca(certs)
        tls_certs.make_leaf(certs, "git", ["git.test"])
        cls.names = Dns({"git.test": ["127.0.0.1"]})
        cls.addClassCleanup(cls.names.close)

        # The server's repositories: org/repo (main, agent/old; push options advertised) and org/other.
        env = clean_env()
        env.update({"HOME": cls.work, "GIT_CONFIG_NOSYSTEM": "1"})
        cls.srv = os.path.join(cls.work, "srv")
        seed = os.path.join(cls.work, "seed")
        git = ["git", "-C", seed, "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run(["git", "init", "-q", seed], check=True, env=env, timeout=60)
        with open(os.path.join(seed, "f.txt"), "w") as f:
            f.write("guarded\n")
        subprocess.run(git + ["add", "f.txt"], check=True, env=env, timeout=60)
        subprocess.run(git + ["commit", "-qm", "seed"], check=True, env=env, timeout=60)
        for name in ("repo", "other"):
            bare = os.path.join(cls.srv, "org", name + ".git")
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", bare], check=True, env=env, timeout=60)
            subprocess.run(["git", "--git-dir", bare, "config", "receive.advertisePushOptions", "true"],
                           check=True, env=env, timeout=60)
            subprocess.run(git + ["push", "-q", bare, "HEAD:refs/heads/main", "HEAD:refs/heads/agent/old"],
                           check=True, env=env, timeout=60)
        cls.repo = os.path.join(cls.srv, "org", "repo.git")
        cls.seed_head = cls.rev(cls.repo, "refs/heads/main")

        cls.server = git_http.serve(cls.srv, cert=os.path.join(certs, "git.crt"), key=os.path.join(certs, "git.key"),
                                    token=REAL)
        cls.addClassCleanup(cls.server.shutdown)
        port = cls.server.server_address[1]
        base = "https://git.test:%d" % port

        policy = os.path.join(cls.work, "policy.yaml")
        with open(policy, "w") as f:
            f.write(POLICY.replace("CERTS", certs).replace("PORT", str(port)))
        cls.jail = os.path.join(cls.work, "jail")
        home = os.path.join(cls.work, "home")
        for d in (cls.jail, home):
            os.mkdir(d)
        cls.log = os.path.join(cls.work, "decisions.jsonl")
        script = (SCRIPT.replace("LIMIT", str(int(60 * SLOW))).replace("BASE", base)
                  .replace("REAL_TOKEN", REAL).replace("REAL_BASIC", REAL_BASIC))
        env = clean_env()
        env.update({"HOME": home, "SLUICE_TEST_FORGE": REAL, "GITHUB_TOKEN": REAL, "GIT_CONFIG_NOSYSTEM": "1"})
        cls.result = subprocess.run(
            [SLUICE, "run", "--policy", policy, "--dns-server", "127.0.0.1:%d" % cls.names.port, "--log", cls.log,
             "--", "sh", "-c", script], cwd=cls.jail, capture_output=True, text=True, env=env, timeout=300 * SLOW)
        cls.steps = dict(line.split("=", 1) for line in cls.result.stdout.splitlines() if "=" in line)
        with open(cls.log) as f:
            cls.log_text = f.read()
        cls.entries = [json.loads(x) for x in cls.log_text.splitlines()]

    @staticmethod
    def rev(repo, ref):
        r = subprocess.run(["git", "--git-dir", repo, "rev-parse", "-q", "--verify", ref], capture_output=True,
                           text=True, timeout=60)
        return r.stdout.strip() if r.returncode == 0 else None

    def stderr_of(self, step):
        with open(os.path.join(self.jail, step + ".err")) as f:
            return f.read()

    def stdout_of(self, step):
        with open(os.path.join(self.jail, step + ".out")) as f:
            return f.read()

    def receive_pack_posts(self):
        return [r for r in self.server.requests if r["method"] == "POST" and r["path"].endswith("/git-receive-pack")]

    def git_lines(self):
        return [e for e in self.entries if e.get("event") == "decision" and "git" in e]

    def test_the_jail_ran(self):
        self.assertEqual(self.result.returncode, 0, self.result.stdout + self.result.stderr)
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            self.assertNotIn(bad, self.result.stderr)
        for step in ("clone", "push_agent", "push_main_big"):
            self.assertIn(step, self.steps, self.result.stdout + self.result.stderr)

    def test_clone_and_fetch_work_with_the_stand_in_only(self):
        self.assertEqual((self.steps.get("clone"), self.steps.get("fetch")), ("0", "0"), self.result.stdout)
        self.assertEqual(self.steps.get("config"), "1")  # sluice run's http.<url>.extraHeader
        self.assertEqual(self.steps.get("stand_in_len"), str(len(REAL)))
        # Every request the server saw carried the real token: sluice swapped it in.
        self.assertTrue(self.server.requests)
        self.assertEqual([r["path"] for r in self.server.requests if not r["authorized"]], [])
        clone = [e for e in self.git_lines() if e["git"]["service"] == "upload-pack"]
        self.assertTrue(clone)
        self.assertEqual({(e["git"]["repo"], e["credential"], e["status"]) for e in clone}, {("org/repo", "forge", 200)})

    def test_pushes_to_allowed_refs_land(self):
        self.assertEqual(self.steps.get("push_agent"), "0", self.stderr_of("push_agent"))
        self.assertEqual(self.steps.get("push_agent_big"), "0", self.stderr_of("push_agent_big"))
        clone = os.path.join(self.jail, "clone", ".git")
        self.assertEqual(self.rev(self.repo, "refs/heads/agent/big"), self.rev(clone, "HEAD"))
        self.assertEqual(self.rev(self.repo, "refs/heads/agent/one"), self.rev(clone, "HEAD~1"))
        # The big push went chunked, after git's probe (a lone flush, forwarded).
        posts = self.receive_pack_posts()
        chunked = [p for p in posts if ("Transfer-Encoding", "chunked") in p["headers"]]
        self.assertTrue([p for p in chunked if p["body_len"] > 3000000], [(p["body_len"]) for p in posts])
        self.assertIn(b"0000", [p["body"] for p in posts])
        allowed = [e for e in self.git_lines() if e["git"]["service"] == "receive-pack" and "error" not in e]
        refs = [r["ref"] for e in allowed for r in e["git"].get("refs", [])]
        self.assertEqual(sorted(refs), ["refs/heads/agent/big", "refs/heads/agent/one"])
        self.assertTrue(all(r["verdict"] == "allow" for e in allowed for r in e["git"].get("refs", [])))

    def test_refused_pushes_show_the_reason_and_reach_nothing(self):
        cases = {
            "push_main_big": ("refs/heads/main", "sluice: pushes to refs/heads/main are not allowed; allowed: "
                                                 "refs/heads/agent/*"),
            "push_tag": ("refs/tags/v1", "sluice: creating tag refs/tags/v1 is not allowed"),
            "push_delete": ("refs/heads/agent/old", "sluice: deleting refs/heads/agent/old is not allowed"),
            "push_options": ("refs/heads/agent/opt", "sluice: push options are not allowed"),
        }
        for step, (ref, reason) in cases.items():
            with self.subTest(step=step):
                err = self.stderr_of(step)
                self.assertNotEqual(self.steps.get(step), "0", err)
                self.assertIn("[remote rejected]", err)
                self.assertIn("(%s)" % reason, err)
                line = [e for e in self.git_lines() if e.get("error") == "git-push-refused" and
                        [r["ref"] for r in e["git"].get("refs", [])] == [ref]]
                self.assertEqual(len(line), 1, self.git_lines())
                self.assertEqual((line[0]["status"], line[0]["git"]["refs"][0]["verdict"]), (200, "deny"))
                self.assertEqual(line[0]["git"]["refs"][0]["reason"], reason)
                # Nothing of the refused push reached the server.
                self.assertEqual([p for p in self.receive_pack_posts() if ref.encode() in p["body"]], [])
        self.assertEqual(self.rev(self.repo, "refs/heads/main"), self.seed_head)
        self.assertEqual(self.rev(self.repo, "refs/heads/agent/old"), self.seed_head)
        self.assertIsNone(self.rev(self.repo, "refs/tags/v1"))
        self.assertIsNone(self.rev(self.repo, "refs/heads/agent/opt"))
        # What did reach it: agent/one, agent/big, and git's probes (a lone flush) before each big push.
        bodies = sorted(p["body"][:4] if p["body_len"] == 4 else b"push" for p in self.receive_pack_posts())
        self.assertEqual(bodies, [b"0000", b"0000", b"push", b"push"])

    def test_another_repository_is_refused_before_the_server(self):
        for step in ("push_other", "clone_other"):
            with self.subTest(step=step):
                err = self.stderr_of(step)
                self.assertNotEqual(self.steps.get(step), "0", err)
                self.assertIn("sluice: repository org/other is not allowed; allowed: org/repo", err)
        self.assertEqual([r["path"] for r in self.server.requests if "/org/other" in r["path"]], [])
        denied = [e for e in self.git_lines() if e.get("error") == "git-denied" and e["git"].get("repo") == "org/other"]
        self.assertEqual({(e["status"], e["git"]["service"]) for e in denied},
                         {(403, "info-refs-receive-pack"), (403, "info-refs-upload-pack")})

    def test_unreadable_compressed_and_dumb_requests_fail_closed(self):
        self.assertEqual(self.stdout_of("curl_garbage"), "403 git-push-unreadable")
        self.assertEqual(self.stdout_of("curl_gzip"), "403 git-denied")
        self.assertEqual(self.stdout_of("curl_dumb"), "403 git-denied")
        self.assertEqual([p for p in self.receive_pack_posts() if b"garbage" in p["body"]], [])
        self.assertEqual([r for r in self.server.requests if r["path"].endswith("/info/refs") and not r["query"]], [])
        line = [e for e in self.git_lines() if e.get("error") == "git-push-unreadable"]
        self.assertEqual(len(line), 1)
        self.assertIn("sluice: the push cannot be checked", line[0]["git"]["reason"])

    def test_the_real_token_is_in_neither_the_jail_nor_the_log(self):
        self.assertEqual(self.steps.get("environ"), "0")
        for text in (self.log_text, self.result.stdout, self.result.stderr):
            self.assertNotIn(REAL, text)
            self.assertNotIn(REAL_BASIC, text)
        for step in ("clone", "push_agent", "push_main_big", "push_other"):
            self.assertNotIn(REAL, self.stderr_of(step))


class GitCheckTest(unittest.TestCase):
    """`sluice check --url ... [--git-push REF]...`: the git guard's verdict explained, line by line."""

    def test_check_explains_git_verdicts(self):
        d = tempfile.mkdtemp(prefix="sluice-e2e-gitcheck-")
        self.addCleanup(shutil.rmtree, d, True)
        make_sluice_ca(d + "/ca")
        with open(d + "/c.yaml", "w") as f:
            f.write("listeners:\n  - {name: a, tcp: 127.0.0.1:3128}\npolicies:\n  default:\n    allow: [git.test]\n"
                    "    git:\n      - {host: git.test, repos: [org/repo], push: [\"refs/heads/agent/*\"]}\n"
                    "tls: {ca_cert: ca/ca.crt, ca_key: ca/ca.key}\n")
        with open(d + "/no-ca.yaml", "w") as f:
            f.write("listeners:\n  - {name: a, tcp: 127.0.0.1:3128}\npolicies:\n  default:\n    allow: [git.test]\n"
                    "    git:\n      - {host: git.test, repos: [org/repo], push: [\"refs/heads/agent/*\"]}\n")
        repo = "https://git.test/org/repo.git"
        head = 'allow git.test:443 (inspected): policy "default", rule "git.test" (allowed-by-rule)'
        rows = [
            ("c", ["--url", repo, "--git-push", "refs/heads/agent/x"], 0,
             [head, 'git receive-pack org/repo: allow (rule for "git.test")', "  refs/heads/agent/x: allow"]),
            ("c", ["--url", repo, "--git-push", "refs/heads/main", "--git-push", "refs/heads/agent/y"], 1,
             [head, 'git receive-pack org/repo: deny (git-push-refused) (rule for "git.test")',
              "  refs/heads/main: deny: sluice: pushes to refs/heads/main are not allowed; allowed: refs/heads/agent/*",
              "  refs/heads/agent/y: deny: sluice: not pushed: refs/heads/main in the same push was refused"]),
            ("c", ["--url", repo, "--git-push", ":refs/heads/agent/x"], 1,
             [head, 'git receive-pack org/repo: deny (git-push-refused) (rule for "git.test")',
              "  delete refs/heads/agent/x: deny: sluice: deleting refs/heads/agent/x is not allowed"]),
            ("c", ["--url", "https://git.test/org/other.git", "--git-push", "refs/heads/agent/x"], 1,
             [head, "git receive-pack org/other: deny (git-denied): sluice: repository org/other is not allowed; "
                    "allowed: org/repo"]),
            ("c", ["--url", repo + "/git-receive-pack", "--method", "POST", "--header", "Content-Encoding: gzip"], 1,
             [head, "git receive-pack org/repo: deny (git-denied): sluice: a compressed push (Content-Encoding) "
                    "cannot be checked"]),
            ("c", ["--url", repo + "/info/refs?service=git-upload-pack"], 0,
             [head, 'git info-refs-upload-pack org/repo: allow (rule for "git.test")']),
            ("c", ["git.test"], 0, [head]),
            ("c", ["git.test:22"], 0, ['allow git.test:22: policy "default", rule "git.test" (allowed-by-rule)']),
            ("no-ca", ["--url", repo, "--git-push", "refs/heads/agent/x"], 1,
             ['deny git.test:443 (opaque tunnel: not inspected): policy "default", rule "git.test" '
              '(needs-inspection)']),
        ]
        for config, args, code, lines in rows:
            with self.subTest(config=config, args=args):
                r = subprocess.run([SLUICE, "check", "--config", "%s/%s.yaml" % (d, config)] + args,
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual((r.returncode, r.stdout.splitlines()), (code, lines), r.stderr)
        r = subprocess.run([SLUICE, "check", "--config", d + "/c.yaml", "--url", repo, "--git-push", "main"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertIn("--git-push: 'main' is not a full ref name", r.stderr)
