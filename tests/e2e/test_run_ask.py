"""End-to-end: `sluice run --ask` asking on a real pseudo-terminal (answers typed into
it, the screen rendered and checked line by line), asking without a terminal, the
run state file, and `sluice run --daemon` using a running daemon's sandbox listener."""
import fcntl
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time

from harness import E2E, SLOW, SLUICE, Control, daemon_config, run_bounded, wait_for

COLUMNS = 80


def render(data, columns=COLUMNS):
    """The screen a terminal `columns` wide shows for `data`: printable characters, CR,
    LF, ESC [ K (erase to the end of the line), and auto-wrap with a deferred wrap at the
    last column (what xterm-like terminals do). Returns the lines, trailing spaces dropped."""
    text = data.decode("utf-8", "replace")
    lines = [[]]
    row = col = 0
    pending_wrap = False
    i = 0

    def cell(r):
        while len(lines) <= r:
            lines.append([])
        return lines[r]

    while i < len(text):
        ch = text[i]
        if ch == "\x1b" and text[i + 1:i + 3] == "[K":
            line = cell(row)
            del line[col:]
            i += 3
            continue
        if ch == "\r":
            col, pending_wrap = 0, False
        elif ch == "\n":
            row, pending_wrap = row + 1, False
        elif ch >= " ":
            if pending_wrap:
                row, col, pending_wrap = row + 1, 0, False
            line = cell(row)
            while len(line) < col:
                line.append(" ")
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            if col == columns - 1:
                pending_wrap = True
            else:
                col += 1
        i += 1
    return ["".join(l).rstrip() for l in lines]


class PtyRun:
    """`sluice run ARGS` with a pseudo-terminal as its controlling terminal and stdio.
    answer(KEY) types KEY once the next question shows; output() is every byte written."""

    def __init__(self, argv, env, cwd):
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, COLUMNS, 0, 0))
        self.before = termios.tcgetattr(self.slave)

        def child():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, stdin=self.slave, stdout=self.slave, stderr=self.slave, env=env, cwd=cwd,
                                     preexec_fn=child)
        self.data = b""
        self.prompts_seen = 0

    def pump(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:
            return False
        self.data += chunk
        return bool(chunk)

    def answer(self, key, timeout=30):
        deadline = time.monotonic() + timeout * SLOW
        want = self.prompts_seen + 1
        while self.data.count(b"[d]eny? ") < want:
            if time.monotonic() > deadline or self.proc.poll() is not None and not self.pump(0.1):
                raise AssertionError("no question number %d; output so far: %r" % (want, self.data))
            self.pump(0.1)
        self.prompts_seen = want
        os.write(self.master, key)

    def finish(self, timeout=60):
        deadline = time.monotonic() + timeout * SLOW
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("sluice run did not end; output: %r" % self.data)
        while self.pump(0.05):
            pass
        self.after = termios.tcgetattr(self.slave)
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class RunAskTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.home = tempfile.mkdtemp(prefix="sluice-home-", dir="/var/tmp")
        cls.addClassCleanup(shutil.rmtree, cls.home, True)

    def setUp(self):
        self.cwd = tempfile.mkdtemp(prefix="sluice-cwd-")
        self.addCleanup(shutil.rmtree, self.cwd, True)
        self.state_home = tempfile.mkdtemp(prefix="sluice-xdg-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, self.state_home, True)

    def env(self):
        return {"PATH": os.environ["PATH"], "HOME": self.home, "XDG_STATE_HOME": self.state_home, "TERM": "xterm"}

    def run_argv(self, script, extra=()):
        return [SLUICE, "run", "--ask", "--dns-server", "127.0.0.1:%d" % self.dns.port, "--allow", "127.0.0.1",
                "--allow", "allowed.test"] + list(extra) + ["--", "sh", "-c", "export ASAN_OPTIONS=detect_leaks=0; " + script]

    def curl_line(self, host, path):
        return ("curl -sS --max-time 30 -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' http://%s:%d%s"
                % (host, self.up.port, path))

    def test_ask_on_a_terminal_answered_once_then_denied(self):
        script = "; ".join([
            "echo before",
            self.curl_line("other.test", "/hello?pty-once"),
            "printf partial",                       # no newline: the next question must still start a line
            self.curl_line("x.wild.test", "/hello?pty-deny"),
            "echo after",
        ])
        run = PtyRun(self.run_argv(script), self.env(), self.cwd)
        self.addCleanup(run.close)
        run.answer(b"o")
        run.answer(b"d")
        self.assertEqual(run.finish(), 0, run.data)
        screen = render(run.data)
        port = self.up.port
        self.assertIn("before", screen)
        self.assertIn("200", screen)
        self.assertIn("partial", screen)        # the command's partial line is left as it was
        self.assertIn("403 ask-denied", screen)
        self.assertIn("after", screen)
        # Each question, once answered, is replaced by a line of its own saying what happened.
        self.assertIn("sluice: other.test:%d allowed once" % port, screen)
        self.assertIn("sluice: x.wild.test:%d denied" % port, screen)
        order = [screen.index(l) for l in ("before", "sluice: other.test:%d allowed once" % port, "200", "partial",
                                           "sluice: x.wild.test:%d denied" % port)]
        self.assertEqual(order, sorted(order), screen)
        # The questions themselves started at a line start, and were asked in the words.
        raw = run.data.decode("utf-8", "replace")
        self.assertIn("\r\x1b[Ksluice: sandbox wants other.test:%d \u2014 [o]nce / [a]lways / [d]eny? " % port, raw)
        self.assertIn("partial" + " " * COLUMNS + "\r\x1b[Ksluice: sandbox wants x.wild.test:%d" % port, raw)
        # The typed keys were not echoed, and the terminal's modes are as they were.
        self.assertNotIn("[d]eny? o", raw)
        self.assertNotIn("[d]eny? d", raw)
        self.assertEqual(run.after[3], run.before[3])  # lflag: ICANON and ECHO back on
        self.assertEqual(run.after[6], run.before[6])
        self.assertEqual(len(self.seen("/hello?pty-once")), 1)
        self.assertEqual(self.seen("/hello?pty-deny"), [])

    def test_always_on_the_terminal_is_kept_in_the_state_file(self):
        state = os.path.join(self.state_home, "sluice", "run-state.json")
        run = PtyRun(self.run_argv(self.curl_line("other.test", "/hello?pty-always")), self.env(), self.cwd)
        self.addCleanup(run.close)
        run.answer(b"a")
        self.assertEqual(run.finish(), 0, run.data)
        self.assertIn("200", render(run.data))
        self.assertIn("sluice: other.test:%d allowed always" % self.up.port, render(run.data))
        with open(state) as f:
            entries = json.load(f)["remembered"]
        self.assertEqual([(e["host"], e["port"], e["verdict"]) for e in entries], [("other.test", self.up.port, "allow")])
        # A later run, with no terminal at all, is answered from the file.
        r = run_bounded(self.run_argv(self.curl_line("other.test", "/hello?remembered")), capture_output=True,
                        text=True, timeout=60 * SLOW, env=self.env(), cwd=self.cwd, start_new_session=True,
                        stdin=subprocess.DEVNULL)
        self.assertEqual((r.returncode, r.stdout), (0, "200 \n"), r.stderr)
        # sluice ctl forget edits the file; then, with no terminal, the ask is a denial.
        out = subprocess.run([SLUICE, "ctl", "--state", state, "forget", "other.test"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual((out.returncode, out.stdout), (0, "forgot 1 answer\n"), out.stderr)
        r = run_bounded(self.run_argv(self.curl_line("other.test", "/hello?forgotten")), capture_output=True,
                        text=True, timeout=60 * SLOW, env=self.env(), cwd=self.cwd, start_new_session=True,
                        stdin=subprocess.DEVNULL)
        self.assertEqual(r.stdout, "403 ask-unavailable\n", r.stderr)

    def test_without_a_terminal_ask_means_deny(self):
        r = run_bounded(self.run_argv(self.curl_line("other.test", "/hello?no-tty") + "; " +
                                      self.curl_line("allowed.test", "/hello")),
                        capture_output=True, text=True, timeout=60 * SLOW, env=self.env(), cwd=self.cwd,
                        start_new_session=True, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "403 ask-unavailable\n200 \n")
        self.assertIn("sluice: denied other.test:%d (ask-unavailable)" % self.up.port, r.stderr)
        self.assertEqual(self.seen("/hello?no-tty"), [])


class RunDaemonTest(E2E):
    def setUp(self):
        self.cwd = tempfile.mkdtemp(prefix="sluice-cwd-")
        self.addCleanup(shutil.rmtree, self.cwd, True)
        self.home = tempfile.mkdtemp(prefix="sluice-home-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, self.home, True)

    def test_run_with_a_daemon_uses_a_sandbox_listener_removed_when_the_command_exits(self):
        s = self.start_sluice_for_test(daemon_config(self.dns.port))
        c = Control(os.path.join(s.dir, "control.sock"))
        marker = os.path.join(self.cwd, "done")
        script = ("export ASAN_OPTIONS=detect_leaks=0; "
                  "curl -sS -w ' %%{http_code}\\n' http://allowed.test:%d/hello?from-daemon-jail; "
                  "curl -sS --max-time 30 -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' http://other.test:%d/hello; "
                  "touch %s; sleep 30" % (self.up.port, self.up.port, marker))
        proc = subprocess.Popen([SLUICE, "run", "--daemon", c.path, "--daemon-policy", "jails", "--name", "j1", "--",
                                 "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={"PATH": os.environ["PATH"], "HOME": self.home}, cwd=self.cwd)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        wait_for(lambda: os.path.exists(marker), timeout=30, what="the jailed command's requests")
        sandboxes = c.get("/v1/sandboxes")[1]["sandboxes"]
        self.assertEqual([(x["name"], x["policy"]) for x in sandboxes], [("j1", "jails")])
        path = sandboxes[0]["path"]
        self.assertTrue(os.path.exists(path))
        proc.send_signal(signal.SIGTERM)  # forwarded to the command, which ends the run
        out, err = proc.communicate(timeout=30 * SLOW)
        self.assertEqual(out, "hello\n 200\n403 not-in-allowlist\n", err)
        self.assertIn("sluice: denied other.test:%d (not-in-allowlist)" % self.up.port, err)
        self.assertEqual(c.get("/v1/sandboxes")[1]["sandboxes"], [])
        self.assertFalse(os.path.exists(path))
        decisions = s.wait_log(lambda e: e["event"] == "decision" and e["listener"] == "j1", count=2)
        self.assertEqual(sorted(d["host"] for d in decisions), ["allowed.test", "other.test"])
        self.assertEqual({d["policy"] for d in decisions}, {"jails"})
        self.assertEqual(len(self.seen("/hello?from-daemon-jail")), 1)

    def test_run_with_a_daemon_refuses_what_it_cannot_do(self):
        s = self.start_sluice_for_test(daemon_config(self.dns.port))
        sock = os.path.join(s.dir, "control.sock")
        env = {"PATH": os.environ["PATH"], "HOME": self.home}
        r = subprocess.run([SLUICE, "run", "--daemon", sock, "--allow", "x.test", "--", "true"], capture_output=True,
                           text=True, timeout=30, env=env, cwd=self.cwd)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--allow cannot be combined with --daemon", r.stderr)
        r = subprocess.run([SLUICE, "run", "--daemon", sock, "--daemon-policy", "nosuch", "--", "true"],
                           capture_output=True, text=True, timeout=30, env=env, cwd=self.cwd)
        self.assertEqual(r.returncode, 125)
        self.assertIn("the daemon made no sandbox: no policy named \"nosuch\"", r.stderr)
        r = subprocess.run([SLUICE, "run", "--daemon", os.path.join(s.dir, "nope.sock"), "--", "true"],
                           capture_output=True, text=True, timeout=30, env=env, cwd=self.cwd)
        self.assertEqual(r.returncode, 125)
        self.assertIn("cannot reach sluice at", r.stderr)
        c = Control(sock)
        self.assertEqual(c.get("/v1/sandboxes")[1]["sandboxes"], [])
