"""End-to-end: Lua rules through the real proxy. The six Lua policies in examples/
(each YAML run as shipped, with its unix sockets moved into a temp dir and the
test's resolver and log added), report mode, script failures, and reloads on
SIGHUP and on a rule-file change."""
import json
import os
import signal
import socket
import struct
import subprocess
import time

from harness import E2E, SLOW, SLUICE, Background, Control, Dns, Raw, clean_env, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.normpath(os.path.join(HERE, "..", "..", "examples"))

# The names the examples use, resolved by the test's own DNS server to loopback.
EXAMPLE_NAMES = ["github.com", "api.github.com", "raw.githubusercontent.com", "registry.npmjs.org", "pypi.org",
                 "files.pythonhosted.org", "api.openai.com", "deb.debian.org", "artifacts.internal.example",
                 "allowed.test", "other.test", "budget.test", "resolved.test"]

# Appended to an example's YAML (the examples have no resolver: or log: keys).
TEST_TAIL = """
resolver:
  servers: ["127.0.0.1:{dns}"]
  # Every test name resolves to 127.0.0.1; the examples' lists are about names.
  check_addresses: false
log:
  path: "{{log}}"
"""


def request(where, method, url, headers=(), body=b""):
    """One plain-HTTP request through the proxy; returns (status, headers, body)."""
    host = url.split("/")[2]
    lines = ["%s %s HTTP/1.1" % (method, url), "Host: %s" % host, "Connection: close"]
    lines += ["%s: %s" % h for h in headers]
    if body:
        lines.append("Content-Length: %d" % len(body))
    with Raw(where) as r:
        r.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return r.read_response(head_request=method == "HEAD")


def connect(where, host, port):
    """A CONNECT through the proxy; returns (tunnel, status, headers, body of a refusal).
    A refused CONNECT's socket is closed here and the tunnel is None."""
    r = Raw(where)
    try:
        r.send(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port, host.encode(), port))
        status, headers = r.read_head()
    except BaseException:
        r.close()
        raise
    body = b""
    if status != 200:
        body = r.read_exact(int(headers.get("content-length", "0")))
        r.close()
        r = None
    return r, status, headers, body


def read_text(path):
    with open(path) as f:
        return f.read()


def echo_headers(body):
    """The request headers the origin's /echo saw, lower-case name -> list of values."""
    out = {}
    for k, v in json.loads(body)["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


class LuaCase(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.names = Dns({n: ["127.0.0.1"] for n in EXAMPLE_NAMES})
        cls.addClassCleanup(cls.names.close)

    def url(self, host, path="/hello"):
        return "http://%s:%d%s" % (host, self.up.port, path)

    def start_example(self, name):
        """Starts sluice on examples/NAME/sluice.yaml with its scripts beside it."""
        src = os.path.join(EXAMPLES, name)
        with open(os.path.join(src, "sluice.yaml")) as f:
            text = f.read()
        self.assertIn("/run/sluice/", text)
        self.assertNotIn("resolver:", text)
        self.assertNotIn("\nlog:", text)
        files = {}
        for fn in os.listdir(src):
            if fn.endswith(".lua"):
                with open(os.path.join(src, fn)) as f:
                    files[fn] = f.read()
        self.assertTrue(files, "example %s has no scripts" % name)
        config = text.replace("/run/sluice/", "{dir}/") + TEST_TAIL.format(dns=self.names.port)
        return self.start_sluice_for_test(config, files=files)

    def start_config(self, policy_yaml, files, listeners=None, limits=""):
        listeners = listeners or "  - name: main\n    tcp: 127.0.0.1:0\n    policy: p\n"
        config = ("listeners:\n" + listeners + "policies:\n  p:\n" + policy_yaml + limits +
                  TEST_TAIL.format(dns=self.names.port))
        return self.start_sluice_for_test(config, files=files)

    def decisions(self, s, **match):
        return [e for e in s.log() if e.get("event") == "decision" and all(e.get(k) == v for k, v in match.items())]


class ExampleTest(LuaCase):
    def test_sandbox_profiles(self):
        s = self.start_example("sandbox-profiles")
        agent, ci, scratch = (s.unix_path(n) for n in ("agent", "ci", "scratch"))
        self.assertEqual(request(agent, "GET", self.url("api.github.com"))[0], 200)
        self.assertEqual(request(ci, "GET", self.url("registry.npmjs.org"))[0], 200)
        status, headers, body = request(agent, "GET", self.url("registry.npmjs.org"))
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-sluice-reason"], "denied-by-script")
        self.assertIn(b"registry.npmjs.org is not in the agent profile", body)
        self.assertIn(b'script "profiles.lua" (on_connect)', body)
        status, headers, _ = request(ci, "GET", self.url("github.com"))
        self.assertEqual(status, 403)
        # CONNECT is judged by the same profile.
        t, status, _, _ = connect(agent, "github.com", self.echo.port)
        self.addCleanup(t.close)
        self.assertEqual(status, 200)
        t.send(b"ping")
        self.assertEqual(t.read_exact(4), b"ping")
        _, status, headers, body = connect(scratch, "github.com", self.echo.port)
        self.assertEqual(status, 403)
        self.assertIn(b"sandbox scratch has no profile", body)
        entry = s.wait_log(lambda e: e.get("event") == "decision" and e.get("listener") == "scratch")[0]
        self.assertEqual((entry["verdict"], entry["reason"], entry["rule"], entry["hook"]),
                         ("deny", "denied-by-script", "profiles.lua", "on_connect"))
        self.assertEqual(entry["message"], "sandbox scratch has no profile")

    def test_rate_limit(self):
        s = self.start_example("rate-limit")
        agent, tools = s.unix_path("agent"), s.unix_path("tools")
        for i in range(30):
            t, status, _, _ = connect(agent, "github.com", self.echo.port)
            t.close()
            self.assertEqual(status, 200, "connection %d" % (i + 1))
        _, status, headers, body = connect(agent, "github.com", self.echo.port)
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-sluice-reason"], "denied-by-script")
        self.assertIn(b"sandbox agent opened more than 30 connections to github.com in 60 s", body)
        # Per host and per sandbox: other hosts, and the other sandbox, still get through.
        t, status, _, _ = connect(agent, "api.github.com", self.echo.port)
        t.close()
        self.assertEqual(status, 200)
        t, status, _, _ = connect(tools, "github.com", self.echo.port)
        t.close()
        self.assertEqual(status, 200)
        # The allow list still applies under the limit.
        self.assertEqual(connect(tools, "pypi.org", self.echo.port)[1], 403)

    def test_upload_budget(self):
        s = self.start_example("upload-budget")
        agent, other = s.unix_path("agent"), s.unix_path("other")
        payload = b"u" * (1 << 20)
        t, status, _, _ = connect(agent, "github.com", self.sink.port)
        self.assertEqual(status, 200)
        for _ in range(10):
            t.send(payload)
        t.send(b"x" * 1000)  # 10 MiB and a little more
        t.shutdown_write()
        self.assertEqual(t.read_to_eof().split(b" ")[0], b"%d" % (10 * (1 << 20) + 1000))
        t.close()
        s.wait_log(lambda e: e.get("event") == "close" and e.get("bytes_up", 0) > 10 * (1 << 20))
        warned = s.wait_log(lambda e: e.get("event") == "lua-log")[0]
        self.assertEqual((warned["level"], warned["script"]), ("warn", "upload-budget.lua"))
        self.assertIn("sandbox agent is over its upload budget", warned["message"])
        _, status, headers, body = connect(agent, "api.openai.com", self.echo.port)
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-sluice-reason"], "denied-by-script")
        self.assertIn(b"sandbox agent uploaded 10.0 MiB in the last 3600 s (budget 10.0 MiB)", body)
        # Plain HTTP is refused the same way; the other sandbox has its own budget.
        self.assertEqual(request(agent, "GET", self.url("github.com"))[0], 403)
        self.assertEqual(request(other, "GET", self.url("github.com"))[0], 200)

    def test_read_only_web(self):
        s = self.start_example("read-only-web")
        reader = s.unix_path("reader")
        status, _, body = request(reader, "GET", self.url("deb.debian.org"))
        self.assertEqual((status, body), (200, b"hello\n"))
        self.assertEqual(request(reader, "HEAD", self.url("deb.debian.org"))[0], 200)
        before = len(self.seen("/echo"))
        status, headers, body = request(reader, "POST", self.url("deb.debian.org", "/echo"), body=b"data")
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-sluice-reason"], "denied-by-script")
        self.assertIn(b"read-only: POST is not allowed, only GET and HEAD", body)
        self.assertEqual(len(self.seen("/echo")), before, "the POST reached the origin")
        _, status, _, body = connect(reader, "deb.debian.org", self.echo.port)
        self.assertEqual(status, 403)
        self.assertIn(b"connect tunnels are opaque", body)
        entry = s.wait_log(lambda e: e.get("event") == "decision" and e.get("method") == "POST")[0]
        self.assertEqual((entry["hook"], entry["status"]), ("on_request", 403))

    def test_header_injection(self):
        s = self.start_example("header-injection")
        builder = s.unix_path("builder")
        status, _, body = request(builder, "GET", self.url("artifacts.internal.example", "/echo"),
                                  headers=[("Authorization", "Basic c3RvbGVu")])
        self.assertEqual(status, 200)
        seen = echo_headers(body)
        self.assertEqual(seen["authorization"], ["Bearer example-token-for-artifacts"])
        status, _, body = request(builder, "GET", self.url("pypi.org", "/echo"),
                                  headers=[("Authorization", "Bearer the-sandbox-own"), ("X-Other", "kept")])
        self.assertEqual(status, 200)
        seen = echo_headers(body)
        self.assertNotIn("authorization", seen)
        self.assertEqual(seen["x-other"], ["kept"])

    def test_ask_new_hosts(self):
        src = os.path.join(EXAMPLES, "ask-new-hosts")
        with open(os.path.join(src, "sluice.yaml")) as f:
            text = f.read()
        with open(os.path.join(src, "ask.lua")) as f:
            script = f.read()
        config = (text.replace("/run/sluice/", "{dir}/").replace("/var/lib/sluice/", "{dir}/") +
                  TEST_TAIL.format(dns=self.names.port))
        s = self.start_sluice_for_test(config, files={"ask.lua": script})
        c = Control(os.path.join(s.dir, "control.sock"))
        agent = s.unix_path("agent")
        tunnel, status, _, _ = connect(agent, "github.com", self.echo.port)  # listed: at once
        self.assertEqual(status, 200)
        tunnel.close()
        job = Background(connect, agent, "other.test", self.echo.port)  # new: a question
        q = c.wait_pending()[0]
        self.assertEqual((q["host"], q["kinds"], q["listeners"]), ("other.test", ["connect"], ["agent"]))
        c.post("/v1/pending/%d" % q["id"], {"verdict": "deny"})
        _, status, headers, _ = job.result()
        self.assertEqual((status, headers["x-sluice-reason"]), (403, "ask-denied"))
        # Plain HTTP is asked about even for a listed host (the script); allowed for good.
        job = Background(request, agent, "GET", self.url("github.com", "/hello?asked"))
        q = c.wait_pending()[0]
        self.assertEqual((q["host"], q["kinds"]), ("github.com", ["http"]))
        c.post("/v1/pending/%d" % q["id"], {"verdict": "allow", "remember": "always"})
        self.assertEqual(job.result()[0], 200)
        self.assertEqual(request(agent, "GET", self.url("github.com", "/hello?remembered"))[0], 200)
        state = os.path.join(s.dir, "ask-new-hosts.state.json")
        wait_for(lambda: os.path.exists(state) and "github.com" in read_text(state), what="the state file")
        status, headers, _ = request(agent, "GET", "http://169.254.169.254/")  # the deny list: never asked
        self.assertEqual((status, headers["x-sluice-reason"]), (403, "denied-by-rule"))
        self.assertEqual(c.pending(), [])

    def test_examples_pass_check(self):
        for name in ("sandbox-profiles", "rate-limit", "upload-budget", "read-only-web", "header-injection",
                     "ask-new-hosts"):
            path = os.path.join(EXAMPLES, name, "sluice.yaml")
            r = subprocess.run([SLUICE, "check", "--config", path], capture_output=True, text=True,
                               timeout=30 * SLOW, env=clean_env())
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("1 rule scripts", r.stdout)


class LuaServeTest(LuaCase):
    def test_report_mode_allows_and_logs_would_deny(self):
        s = self.start_config(
            "    mode: report\n    allow: [allowed.test]\n    deny: [budget.test]\n    rules: [r.lua]\n",
            {"r.lua": "function on_connect(c)\n"
                      "  if c.host == 'other.test' and c.port ~= %d then\n"
                      "    return {verdict = 'deny', reason = 'scripted no'} end\n"
                      "end\n" % self.up.port})
        port = s.tcp_port("main")
        for host in ("allowed.test", "other.test", "budget.test", "pypi.org"):
            status, headers, body = request(port, "GET", self.url(host))
            self.assertEqual((status, body), (200, b"hello\n"), host)
        t, status, _, _ = connect(port, "other.test", self.echo.port)
        self.addCleanup(t.close)
        self.assertEqual(status, 200)
        t.send(b"through")
        self.assertEqual(t.read_exact(7), b"through")
        rows = {e["host"]: e for e in s.wait_log(lambda e: e.get("event") == "decision", count=5)}
        self.assertNotIn("would_deny", rows["allowed.test"])
        self.assertEqual(rows["budget.test"]["reason"], "denied-by-rule")
        self.assertEqual(rows["pypi.org"]["reason"], "not-in-allowlist")
        for e in (rows["budget.test"], rows["pypi.org"]):
            self.assertEqual((e["verdict"], e["would_deny"], e["status"]), ("allow", True, 200))
        tunnel = [e for e in s.log() if e.get("event") == "decision" and e.get("kind") == "connect"][0]
        self.assertEqual((tunnel["reason"], tunnel["would_deny"], tunnel["message"]),
                         ("denied-by-script", True, "scripted no"))

    def test_script_error_answers_on_error_and_names_script_line(self):
        files = {"broken.lua": "function on_connect(c)\n  if c.host == 'other.test' then\n"
                               "    local t = nil\n    return t.verdict\n  end\nend\n"}
        s = self.start_config("    allow: [allowed.test, other.test]\n    rules: [broken.lua]\n", files)
        port = s.tcp_port("main")
        status, headers, body = request(port, "GET", self.url("other.test"))
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-sluice-reason"], "script-error")
        self.assertIn(b"on_error is deny", body)
        self.assertNotIn(b"broken.lua:4", body, "the error text is for the log, not the client")
        self.assertEqual(request(port, "GET", self.url("allowed.test"))[0], 200)
        entry = s.wait_log(lambda e: e.get("event") == "decision" and e.get("host") == "other.test")[0]
        self.assertTrue(entry["lua_error"].startswith("broken.lua:4: attempt to index a nil value"), entry)
        err = s.wait_log(lambda e: e.get("event") == "lua-error")[0]
        self.assertEqual((err["script"], err["hook"], err["policy"]), ("broken.lua", "on_connect", "p"))
        self.assertTrue(err["error"].startswith("broken.lua:4:"))

    def test_on_error_allow(self):
        s = self.start_config("    on_error: allow\n    rules: [broken.lua]\n",
                              {"broken.lua": "function on_connect(c) error('always broken') end\n"})
        status, _, body = request(s.tcp_port("main"), "GET", self.url("pypi.org"))
        self.assertEqual((status, body), (200, b"hello\n"))
        entry = s.wait_log(lambda e: e.get("event") == "decision")[0]
        self.assertEqual((entry["reason"], entry["lua_error"]),
                         ("allowed-on-script-error", "broken.lua:1: always broken"))

    def test_runaway_script_is_stopped_and_others_go_on(self):
        files = {"loop.lua": "function on_connect(c)\n  if c.host == 'other.test' then\n"
                             "    while true do end\n  end\nend\n"}
        s = self.start_config("    allow: [allowed.test, other.test]\n    rules: [loop.lua]\n", files,
                              limits="limits:\n  lua_instruction_budget: 200000\n")
        port = s.tcp_port("main")
        t, status, _, _ = connect(port, "allowed.test", self.echo.port)
        self.addCleanup(t.close)
        self.assertEqual(status, 200)
        for _ in range(3):
            status, headers, _ = request(port, "GET", self.url("other.test"))
            self.assertEqual((status, headers["x-sluice-reason"]), (403, "script-error"))
        t.send(b"still here")
        self.assertEqual(t.read_exact(10), b"still here")
        self.assertEqual(request(port, "GET", self.url("allowed.test"))[0], 200)
        err = s.wait_log(lambda e: e.get("event") == "lua-error")[0]
        self.assertEqual(err["error"], "loop.lua:3: instruction budget of 200000 instructions exhausted")

    def test_on_resolved_on_close_and_log(self):
        files = {"r.lua": (
            "function on_resolved(c, addrs)\n"
            "  if c.host == 'resolved.test' and sluice.in_cidr(addrs[1], '127.0.0.0/8') then\n"
            "    return {verdict = 'deny', reason = 'resolved to ' .. addrs[1]} end\n"
            "end\n"
            "function on_close(c, s)\n"
            "  sluice.log('info', string.format('%s up=%d down=%d requests=%d verdict=%s', c.host,\n"
            "    s.bytes_up, s.bytes_down, s.requests, s.verdict))\n"
            "end\n")}
        s = self.start_config("    allow: [allowed.test, resolved.test]\n    rules: [r.lua]\n", files)
        port = s.tcp_port("main")
        status, headers, body = request(port, "GET", self.url("resolved.test"))
        self.assertEqual((status, headers["x-sluice-reason"]), (403, "denied-by-script"))
        self.assertIn(b"resolved to 127.0.0.1", body)
        entry = s.wait_log(lambda e: e.get("event") == "decision" and e.get("host") == "resolved.test")[0]
        self.assertEqual(entry["hook"], "on_resolved")
        t, status, _, _ = connect(port, "allowed.test", self.echo.port)
        self.assertEqual(status, 200)
        t.send(b"12345")
        self.assertEqual(t.read_exact(5), b"12345")
        t.shutdown_write()
        self.assertTrue(t.closed_by_peer())
        t.close()
        logged = s.wait_log(lambda e: e.get("event") == "lua-log" and e["message"].startswith("allowed.test"))[0]
        self.assertEqual(logged["message"], "allowed.test up=5 down=5 requests=1 verdict=allow")
        self.assertEqual(logged["script"], "r.lua")
        denied = s.wait_log(lambda e: e.get("event") == "lua-log" and e["message"].startswith("resolved.test"))[0]
        self.assertTrue(denied["message"].endswith("verdict=deny"), denied)

    def test_socks_connections_are_judged_by_the_same_rules(self):
        files = {"s.lua": (
            "function on_connect(c)\n"
            "  if c.kind ~= 'socks' then return {verdict = 'deny', reason = 'socks only, not ' .. c.kind} end\n"
            "  if c.host == 'other.test' then return {verdict = 'deny', reason = 'not over socks'} end\n"
            "  return 'allow'\n"
            "end\n"
            "function on_resolved(c, addrs) if c.host == 'resolved.test' then return 'deny' end end\n"
            "function on_close(c, s) sluice.log('info', c.kind .. ' ' .. c.host .. ' up=' .. s.bytes_up) end\n")}
        s = self.start_config("    rules: [s.lua]\n", files)
        port = s.tcp_port("main")

        def socks(host, target_port):
            r = Raw(port)
            r.send(b"\x05\x01\x00")
            self.assertEqual(r.read_exact(2), b"\x05\x00")
            r.send(bytes([5, 1, 0, 3, len(host)]) + host.encode() + struct.pack("!H", target_port))
            return r, r.read_exact(10)[1]

        t, code = socks("allowed.test", self.echo.port)
        self.addCleanup(t.close)
        self.assertEqual(code, 0)
        t.send(b"ping")
        self.assertEqual(t.read_exact(4), b"ping")
        t.shutdown_write()
        self.assertTrue(t.closed_by_peer())
        for host in ("other.test", "resolved.test"):
            r, code = socks(host, self.echo.port)
            r.close()
            self.assertEqual(code, 2, host)  # "connection not allowed by ruleset"
        status, headers, body = request(port, "GET", self.url("allowed.test"))
        self.assertEqual((status, headers["x-sluice-reason"]), (403, "denied-by-script"))
        self.assertIn(b"socks only, not http", body)
        rows = {e["host"]: e for e in s.wait_log(lambda e: e.get("event") == "decision", count=4)}
        self.assertEqual((rows["other.test"]["kind"], rows["other.test"]["hook"], rows["other.test"]["message"]),
                         ("socks", "on_connect", "not over socks"))
        self.assertEqual(rows["resolved.test"]["hook"], "on_resolved")
        self.assertEqual(rows["allowed.test"]["reason"], "denied-by-script")  # the later HTTP request
        logged = s.wait_log(lambda e: e.get("event") == "lua-log" and "allowed.test" in e["message"]
                            and e["message"].startswith("socks"))[0]
        self.assertEqual(logged["message"], "socks allowed.test up=4")

    def test_rule_file_change_reloads_and_open_connections_keep_their_version(self):
        script = "function on_request(c, r) r:set_header('X-Rules', 'v%d') end\n"
        s = self.start_config("    allow: [allowed.test]\n    rules: [v.lua]\n", {"v.lua": script % 1})
        port = s.tcp_port("main")
        # A keep-alive connection opened under version 1.
        old = Raw(port)
        self.addCleanup(old.close)

        def ask(conn):
            conn.send(b"GET %s HTTP/1.1\r\nHost: allowed.test\r\n\r\n" % self.url("allowed.test", "/echo").encode())
            status, _, body = conn.read_response()
            self.assertEqual(status, 200)
            return echo_headers(body)["x-rules"]

        self.assertEqual(ask(old), ["v1"])
        s.write_file("v.lua", script % 2)  # no signal: the file change alone reloads
        s.wait_log(lambda e: e.get("event") == "reload" and e.get("ok"))
        reload = [e for e in s.log() if e.get("event") == "reload"][0]
        self.assertEqual(reload["trigger"], "rule-file")
        with Raw(port) as new:
            self.assertEqual(ask(new), ["v2"])
        self.assertEqual(ask(old), ["v1"])

    def test_broken_script_keeps_the_previous_version(self):
        s = self.start_config("    rules: [v.lua]\n", {"v.lua": "function on_connect(c) return 'allow' end\n"})
        port = s.tcp_port("main")
        self.assertEqual(request(port, "GET", self.url("pypi.org"))[0], 200)
        s.write_file("v.lua", "function on_connect(c)\n  return 'deny\nend\n")
        bad = s.wait_log(lambda e: e.get("event") == "reload")[0]
        self.assertFalse(bad["ok"])
        self.assertEqual(bad["error"], os.path.join(s.dir, "v.lua") + ":2: unfinished string near ''deny'")
        # The event is written inside the reload, the stderr line after it returns.
        wait_for(lambda: "v.lua:2: unfinished string" in s.read_stderr(), what="the reload error on stderr")
        self.assertEqual(request(port, "GET", self.url("pypi.org"))[0], 200)
        # SIGHUP with the broken file: refused again; fixed file and SIGHUP: applied.
        s.signal(signal.SIGHUP)
        s.wait_log(lambda e: e.get("event") == "reload" and e.get("trigger") == "signal")
        self.assertEqual(request(port, "GET", self.url("pypi.org"))[0], 200)
        s.write_file("v.lua", "function on_connect(c) return {verdict = 'deny', reason = 'v3'} end\n")
        s.wait_log(lambda e: e.get("event") == "reload" and e.get("ok"))
        status, _, body = request(port, "GET", self.url("pypi.org"))
        self.assertEqual(status, 403)
        self.assertIn(b"v3", body)

    def test_check_runs_the_hooks(self):
        d = self.start_config("    allow: [allowed.test]\n    rules: [r.lua]\n",
                              {"r.lua": "function on_connect(c) sluice.log('info', 'checking ' .. c.host)\n"
                                        "  if c.host == 'other.test' then return {verdict = 'deny', reason = 'no'} end end\n"
                                        "function on_request(c, r) if r.method == 'DELETE' then return 'ask' end\n"
                                        "  r:set_header('X-Added', '1') end\n"})

        def check(*args):
            return subprocess.run([SLUICE, "check", "--config", d.config_path] + list(args), capture_output=True,
                                  text=True, timeout=30 * SLOW, env=clean_env())

        r = check("other.test")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, 'deny other.test:443: policy "p", script "r.lua" on_connect (denied-by-script): no\n')
        self.assertIn("lua [info] r.lua: checking other.test", r.stderr)
        r = check("--url", "http://allowed.test/x")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, 'allow allowed.test:80: policy "p", rule "allowed.test" (allowed-by-rule)\n'
                                   "  sets header X-Added\n")
        r = check("--method", "DELETE", "--url", "http://allowed.test/x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("(ask-by-script)", r.stdout)
        r = check("--kind", "http", "--method", "GET", "--url", "http://allowed.test/", "allowed.test:80")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = check("--kind", "http", "--url", "http://allowed.test/", "extra.test")
        self.assertEqual(r.returncode, 2)
        self.assertIn("is not the target of --url", r.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
