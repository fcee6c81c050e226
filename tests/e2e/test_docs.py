"""Every `sluice ...` command that README.md and docs/*.md show in a code block is run here and
exits as the docs say. A command added to the docs fails this test until it is listed below
(with what it should do) or, if it is not a command at all, in NOT_COMMANDS with the reason.

The commands run in a namespace of their own (user, network, mount: `unshare -rnm`) with a
private loopback and empty /tmp and /run, so the docs' fixed addresses (127.0.0.1:3128,
/run/sluice/control.sock, /tmp/sluice-agent1.sock) are theirs alone and nothing leaves the
machine."""
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from harness import SLOW, SLUICE, clean_env

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DOC_FILES = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))

# command (as shlex.join of its words, without "build/" and a trailing "&") -> how it runs:
#   ("exit", N)      run it; it exits with status N
#   ("dry-run", 0)   `sluice run`: its CMD needs the network (git clone from GitHub, npm install,
#                    curl example.com), so it runs with --dry-run: the flags and the policy are
#                    checked and the jail's command line printed, exit 0
#   ("daemon", 0)    `sluice serve` in the foreground: it gets ready, then SIGTERM; exit 0
#   ("background", 0) shown with "&": it gets ready and serves the commands after it; exit 0 on SIGTERM
#   ("stream", None) `sluice ctl watch`: it prints events until stopped; it must still be running after 1 s
EXPECTED = {
    "sluice run --allow github.com --allow '*.github.com' -- git clone https://github.com/x/y": ("dry-run", 0),
    "sluice run --policy examples/rate-limit/sluice.yaml --write '~/.cache' -- npm install": ("dry-run", 0),
    "sluice serve --config examples/basic.yaml": ("daemon", 0),
    # one line per listener: agent1 allows GitHub, tools does not
    "sluice check --config examples/basic.yaml github.com:443": ("exit", 1),
    "sluice check --config examples/read-only-web/sluice.yaml --method POST --url http://deb.debian.org/": ("exit", 1),
    "sluice serve --help": ("exit", 0),
    "sluice run --ask --allow github.com -- npm install": ("dry-run", 0),
    "sluice serve --listen 127.0.0.1:3128 --default ask --control /run/sluice/control.sock": ("background", 0),
    "sluice ctl --socket /run/sluice/control.sock watch": ("stream", None),
    "sluice ctl --socket /run/sluice/control.sock pending": ("exit", 0),
    "sluice run --daemon /run/sluice/control.sock -- curl https://example.com/": ("dry-run", 0),
    "sluice ctl watch": ("stream", None),
    "sluice ctl watch --json": ("stream", None),
    "sluice check --config examples/read-only-web/sluice.yaml --listener reader deb.debian.org": ("exit", 1),
    "sluice check --config examples/read-only-web/sluice.yaml --url http://deb.debian.org/ "
    "--header 'Authorization: Basic eA=='": ("exit", 0),
    "sluice check --config examples/read-only-web/sluice.yaml --url http://deb.debian.org/ --addr 203.0.113.7": (
        "exit", 0),
    "sluice ca init '~/.config/sluice/ca'": ("exit", 0),
    "sluice run --allow api.github.com/repos/myorg/ --inspect api.github.com -- curl "
    "https://api.github.com/repos/myorg/x": ("dry-run", 0),
}

# Lines in code blocks that start with `sluice` but are not commands: synopses, with placeholders
# (PATTERN, SOCKET, ...) and alternatives. (file, the line's start) -> why it is not run.
NOT_COMMANDS = {
    ("docs/sandbox.md", "sluice run [--allow PATTERN]..."): "synopsis of sluice run",
    ("docs/sandbox.md", "sluice run --daemon SOCKET [--daemon-policy NAME]"): "synopsis of sluice run --daemon",
    ("docs/control-api.md", "sluice ctl [--socket PATH] status [--json] |"): "synopsis of sluice ctl",
    ("docs/control-api.md", "sluice ctl --state FILE forget PATTERN"): "synopsis of sluice ctl forget --state",
}


def not_a_command(rel, text):
    return any(rel == f and text.startswith(start) for f, start in NOT_COMMANDS)


def doc_commands():
    """(file, line, words, background) for each `sluice` command line in a code block; words is
    None for a line in NOT_COMMANDS."""
    found = []
    for rel in DOC_FILES:
        with open(os.path.join(ROOT, rel)) as f:
            lines = f.read().split("\n")
        in_block = False
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if line.startswith("```"):
                in_block = not in_block
                continue
            text = re.sub(r"^\$ ", "", line.strip())
            if not in_block or not re.match(r"(build/)?sluice ", text):
                continue
            start = i
            while text.endswith("\\") and i < len(lines):
                text = text[:-1] + " " + lines[i].strip()
                i += 1
            if not_a_command(rel, text):
                found.append((rel, start, None, False))
                continue
            words = shlex.split(text, comments=True)
            background = words[-1] == "&"
            if background:
                words = words[:-1]
            words[0] = "sluice"
            found.append((rel, start, words, background))
    return found


class DocsTest(unittest.TestCase):
    def test_every_command_in_the_docs_is_known(self):
        found = doc_commands()
        unknown = ["%s:%d: %s" % (rel, line, shlex.join(words)) for rel, line, words, _ in found
                   if words is not None and shlex.join(words) not in EXPECTED]
        self.assertEqual(unknown, [], "commands in the docs that this test does not run")
        keys = {shlex.join(words) for _, _, words, _ in found if words is not None}
        self.assertEqual(sorted(set(EXPECTED) - keys), [], "commands listed here that the docs no longer show")
        self.assertEqual(sum(words is None for _, _, words, _ in found), len(NOT_COMMANDS),
                         "each NOT_COMMANDS entry matches one line of the docs")

    def test_every_command_in_the_docs_runs_as_documented(self):
        if shutil.which("unshare") is None:
            self.fail("unshare (util-linux) is needed to give the docs' commands a namespace of their own")
        steps = []
        for rel, line, words, background in doc_commands():
            if words is None or shlex.join(words) not in EXPECTED:
                continue  # the test above reports it
            key = shlex.join(words)
            mode, code = EXPECTED[key]
            if background:
                self.assertEqual(mode, "background", key)
            steps.append({"where": "%s:%d" % (rel, line), "key": key, "words": words, "mode": mode, "exit": code})
        # Fresh /tmp and /run for the docs' commands. The tree is bound at /run/sluice-tree first:
        # a checkout under /tmp (a CI clone) would otherwise vanish under the new /tmp.
        tree = "/run/sluice-tree"
        sluice = os.path.abspath(SLUICE)
        if os.path.commonpath([sluice, ROOT]) == ROOT:
            sluice = os.path.join(tree, os.path.relpath(sluice, ROOT))
        elif sluice.startswith("/tmp/") or sluice.startswith("/run/"):
            self.fail("SLUICE_BIN %s lies outside the tree under /tmp or /run, which the test replaces" % sluice)
        setup = ("mount -t tmpfs none /run && mkdir %s && mount --bind \"$0\" %s && mount -t tmpfs none /tmp"
                 " && cd %s && ip link set lo up && exec \"$@\"" % (tree, tree, tree))
        env = clean_env()
        env.pop("SLUICE_CONTROL", None)
        r = subprocess.run(["unshare", "-rnm", "sh", "-c", setup, ROOT, sys.executable,
                            os.path.join(tree, os.path.relpath(os.path.abspath(__file__), ROOT)),
                            "--in-namespace", sluice, json.dumps(steps)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        results = json.loads(r.stdout)
        self.assertEqual(len(results), len(steps))
        for step, got in zip(steps, results):
            with self.subTest(step["where"]):
                self.assertTrue(got["ok"], "%s: %s\n%s" % (step["where"], step["key"], got["detail"]))


def run_in_namespace(sluice, steps):
    """Runs the steps in order (inside the namespace); prints one result per step as JSON."""
    home = tempfile.mkdtemp(prefix="home-")
    os.mkdir(os.path.join(home, ".cache"))
    os.makedirs("/run/sluice")
    env = dict(os.environ, HOME=home)
    deadline = 10 * SLOW
    results, background = [], []

    def start(words):
        return subprocess.Popen([sluice] + words[1:], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)

    def wait_ready(p):
        lines = []
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            line = p.stderr.readline()
            if not line:
                break
            lines.append(line)
            if line.strip() == "sluice: ready":
                return True, "".join(lines)
        return False, "".join(lines)

    def stop(p):
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(deadline)
        except subprocess.TimeoutExpired:
            p.kill()
            return "hung"

    for step in steps:
        words, mode, want = step["words"], step["mode"], step["exit"]
        try:
            if mode in ("exit", "dry-run"):
                if mode == "dry-run":
                    words = words[:2] + ["--dry-run"] + words[2:]
                # "~/" is the step's own home, never the home of whoever runs the tests.
                words = [os.path.join(home, w[2:]) if w.startswith("~/") else w for w in words]
                r = subprocess.run([sluice] + words[1:], env=env, capture_output=True, text=True, timeout=deadline)
                results.append({"ok": r.returncode == want,
                                "detail": "exit %d, stdout %r, stderr %r" % (r.returncode, r.stdout, r.stderr)})
            elif mode in ("daemon", "background"):
                p = start(words)
                ready, text = wait_ready(p)
                if mode == "background" and ready:
                    background.append((p, len(results)))
                    results.append({"ok": True, "detail": text})
                    continue
                code = stop(p)
                results.append({"ok": ready and code == want, "detail": "ready %s, exit %s: %s" % (ready, code, text)})
            elif mode == "stream":
                p = start(words)
                time.sleep(1)
                running = p.poll() is None
                code = stop(p) if running else p.returncode
                results.append({"ok": running, "detail": "exit %s: %s" % (code, p.stderr.read())})
        except Exception as e:  # one broken step must not hide the others' results
            results.append({"ok": False, "detail": repr(e)})
    for p, index in background:
        code = stop(p)
        if code != steps[index]["exit"]:
            results[index] = {"ok": False, "detail": "exit %s on SIGTERM: %s" % (code, p.stderr.read())}
    print(json.dumps(results))


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--in-namespace":
    run_in_namespace(sys.argv[2], json.loads(sys.argv[3]))
