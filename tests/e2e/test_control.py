"""End-to-end: the control API on its unix socket (status, metrics, events, pending
questions and answers, live list replacement, reload, sandboxes) and the ask flow
for CONNECT, plain HTTP and SOCKS5, driven by real curl and raw clients against
loopback upstreams. One sluice per test: every test changes policy state."""
import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time

from harness import (E2E, SLOW, SLUICE, Background, Control, Raw, Sluice, clean_env, curl, parse_response,
                     wait_for)

CONFIG = """
listeners:
  - name: main
    tcp: 127.0.0.1:0
    policy: agents
  - name: metered
    tcp: 127.0.0.1:0
    policy: open
  - name: lists
    tcp: 127.0.0.1:0
    policy: lists
  - name: scripted
    tcp: 127.0.0.1:0
    policy: scripted
policies:
  scripted:
    default: deny
    allow: [allowed.test, "127.0.0.1"]
    rules: ["STATEDIR/ask.lua"]
  agents:
    default: ask
    # Test names resolve to 127.0.0.1: listing it lets the names asked about be dialed.
    allow: [allowed.test, "127.0.0.1"]
    deny: [denied.allowed.test]
  open:
    default: allow
    deny: [denied.allowed.test]
    allow: ["127.0.0.1"]
  lists:
    default: deny
    allow: [allowed.test, "127.0.0.1"]
resolver:
  servers: ["127.0.0.1:DNSPORT"]
  timeout_ms: 2000
limits:
  ask_timeout_ms: ASKMS
control:
  unix: "{dir}/control.sock"
  state_file: "STATEFILE"
log:
  path: "{log}"
"""


# The scripted policy: other.test is a question for a person; every request that goes
# ahead gets a header, so the test sees that on_request ran after the answer.
ASK_LUA = """
function on_connect(c)
  if c.host == "other.test" then return {verdict = "ask", reason = "a host this agent never used"} end
  if c.host == "loop.test" then while true do end end
  if c.host == "broken.test" then error("on purpose") end
end
function on_request(c, r)
  r:set_header("X-Sluice-Asked", "after-" .. c.host)
end
"""


# The loop-probe test: a rule that spins for a fixed count of VM instructions on one host.
PROBE_CONFIG = """
listeners:
  - name: probed
    tcp: 127.0.0.1:0
policies:
  default:
    default: deny
    allow: [other.test, "127.0.0.1"]
    rules: ["{dir}/spin.lua"]
resolver:
  servers: ["127.0.0.1:DNSPORT"]
limits:
  lua_instruction_budget: 200000000
control:
  unix: "{dir}/control.sock"
log:
  path: "{log}"
"""

SPIN_LUA = """
function on_connect(c)
  if c.host == "other.test" then
    local n = 0
    for i = 1, 3000000 do n = n + i end
  end
end
"""


def collect_lines(stream):
    """Lines read from `stream` by a thread of their own, so waiting on them has a deadline."""
    lines = []

    def read():
        for line in stream:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def socks_connect(port, host, dest_port):
    """A raw SOCKS5 client: greeting, then CONNECT for a domain name; returns the socket
    after the method reply (the request's reply is for the caller to read)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    name = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", dest_port))
    return s


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


class ControlTest(E2E):
    def setUp(self):
        self.state_dir = tempfile.mkdtemp(prefix="sluice-state-")
        self.addCleanup(shutil.rmtree, self.state_dir, True)
        self.state_file = os.path.join(self.state_dir, "state.json")
        with open(os.path.join(self.state_dir, "ask.lua"), "w") as f:
            f.write(ASK_LUA)

    def config(self, ask_ms=60000):
        return (CONFIG.replace("DNSPORT", str(self.dns.port)).replace("ASKMS", str(ask_ms))
                .replace("STATEFILE", self.state_file).replace("STATEDIR", self.state_dir))

    def start(self, ask_ms=60000):
        s = self.start_sluice_for_test(self.config(ask_ms))
        return s, Control(os.path.join(s.dir, "control.sock"))

    def url(self, host, path="/hello"):
        return "http://%s:%d%s" % (host, self.up.port, path)

    def read_state(self):
        with open(self.state_file) as f:
            return json.load(f)["remembered"]

    # --- the socket itself ----------------------------------------------------------

    def test_control_socket_is_private_and_status_describes_the_proxy(self):
        s, c = self.start()
        st = os.stat(c.path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertIn("sluice: control socket on unix:%s" % c.path, s.read_stderr())
        status, body = c.get("/v1/status")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["pid"], s.proc.pid)
        self.assertEqual(body["workers"], 2)
        self.assertEqual([l["name"] for l in body["listeners"]], ["main", "metered", "lists", "scripted"])
        self.assertEqual(body["listeners"][0]["address"], "tcp:127.0.0.1:%d" % s.tcp_port("main"))
        policies = {p["name"]: p for p in body["policies"]}
        self.assertEqual(policies["agents"], {"name": "agents", "version": 1, "default": "ask", "allow": 2, "deny": 1})
        self.assertTrue(body["asks"]["answerable"])
        self.assertEqual(body["asks"]["state_file"], self.state_file)
        self.assertEqual(body["asks"]["timeout_ms"], 60000)
        self.assertGreaterEqual(body["uptime_s"], 0)

    def test_bad_control_input_gets_json_errors_and_never_a_crash(self):
        s, c = self.start()
        rows = [
            ("GET", "/v1/nope", None, 404, "no such endpoint"),
            ("GET", "/v2/status", None, 404, "no such endpoint"),
            ("GET", "/", None, 404, "no such endpoint"),
            ("GET", "/v1//status", None, 404, "no such endpoint"),
            ("DELETE", "/v1/status", None, 405, "not allowed"),
            ("GET", "/v1/reload", None, 405, "not allowed"),
            ("POST", "/v1/pending/1", "{not json", 400, "bad JSON"),
            ("POST", "/v1/pending/1", "[1,2]", 400, "must be a JSON object"),
            ("POST", "/v1/pending/1", {"verdict": "maybe"}, 400, "\"verdict\" must be"),
            ("POST", "/v1/pending/1", {"verdict": "allow", "remember": "forever"}, 400, "\"remember\" must be"),
            ("POST", "/v1/pending/1", {"verdict": "allow", "extra": 1}, 400, "unknown key"),
            ("POST", "/v1/pending/abc", {"verdict": "allow"}, 400, "a question id is a number"),
            ("POST", "/v1/pending/999", {"verdict": "allow"}, 404, "no pending question 999"),
            ("PUT", "/v1/policies/nosuch/allow", ["a.test"], 404, "no policy named"),
            ("PUT", "/v1/policies/lists/allow", {"entries": "a.test"}, 400, "must be a JSON array"),
            ("PUT", "/v1/policies/lists/allow", ["ok.test", "a.*.b"], 400, "entry 1: bad pattern"),
            ("PUT", "/v1/policies/lists/allow", ["ok.test", 7], 400, "entry 1 is not a string"),
            ("PUT", "/v1/policies/lists/other", ["a.test"], 404, "no such endpoint"),
            ("POST", "/v1/sandboxes", {"name": "a b"}, 400, "\"name\" must be"),
            ("POST", "/v1/sandboxes", {"name": "x", "policy": "nosuch"}, 404, "no policy named"),
            ("POST", "/v1/sandboxes", {"name": "main"}, 409, "a listener named \"main\" exists"),
            ("POST", "/v1/sandboxes", "\xff", 400, "bad JSON"),
            ("DELETE", "/v1/sandboxes/nosuch", None, 404, "no sandbox named"),
            ("DELETE", "/v1/sandboxes/main", None, 409, "comes from the config file"),
            ("POST", "/v1/forget", {"pattern": "a.*"}, 400, "bad pattern"),
            ("POST", "/v1/forget", {}, 400, "\"pattern\" must be"),
        ]
        for method, path, body, want_status, want_error in rows:
            with self.subTest(method=method, path=path, body=body):
                status, reply = c.request(method, path, body)
                self.assertEqual(status, want_status, reply)
                self.assertIsInstance(reply, dict, reply)
                self.assertIn(want_error, reply["error"])
        # A list entry that fails names its index.
        status, reply = c.request("PUT", "/v1/policies/lists/deny", ["a.test", "b.test", "*"])
        self.assertEqual((status, reply["index"]), (400, 2), reply)
        # Malformed HTTP: a JSON error, and the connection closes.
        for raw in (b"\x00\x01\x02 garbage\r\n\r\n", b"GET /v1/status HTTP/1.1\r\nBad Header\r\n\r\n",
                    b"GET /v1/status HTTP/1.1\nHost: x\n\n",
                    b"POST /v1/reload HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
                    b"GET /v1/status HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
                    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"):
            with self.subTest(raw=raw[:40]):
                status, headers, body = parse_response(c.raw(raw))
                self.assertIn(status, (400, 413, 431))
                self.assertIn("error", json.loads(body))
        # Random bytes: every connection ends, the daemon stays up.
        import random
        rng = random.Random(7)
        for _ in range(100):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            try:
                c.raw(junk + b"\r\n\r\n", read_timeout=5)
            except socket.timeout:
                pass  # sluice may wait for more of a plausible request; it must not die
        status, body = c.get("/v1/status")
        self.assertEqual(status, 200)
        self.assertIsNone(s.proc.poll())
        # Keep-alive: two requests on one connection, answered in order.
        data = c.raw(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/pending HTTP/1.1\r\nHost: x\r\n"
                     b"Connection: close\r\n\r\n")
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 2, data[:300])
        self.assertIn(b'{"pending":[]}', data)

    # --- asks ---------------------------------------------------------------------

    def test_ask_answered_once_lets_a_connect_through_and_asks_again_next_time(self):
        s, c = self.start()
        job = Background(curl, s.tcp_port("main"), self.url("other.test", "/hello?ask-once"), True)
        q = c.wait_pending()[0]
        self.assertEqual((q["host"], q["port"], q["policy"]), ("other.test", self.up.port, "agents"))
        self.assertEqual((q["listeners"], q["kinds"], q["waiting"]), (["main"], ["connect"], 1))
        self.assertRegex(q["client"], r"^127\.0\.0\.1:\d+$")
        # Held: nothing was sent upstream while the question waits.
        self.assertEqual(self.seen("/hello?ask-once"), [])
        status, body = c.post("/v1/pending/%d" % q["id"], {"verdict": "allow", "remember": "once"})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["released"], body["remember"], body["persisted"]), (1, "once", False))
        r = job.result()
        self.assertEqual((r.status, r.body), (200, b"hello\n"), r)
        d = s.wait_log(lambda e: e["event"] == "decision" and e.get("url") is None and e.get("host") == "other.test")[-1]
        self.assertEqual((d["verdict"], d["reason"], d["rule"], d["question"]), ("allow", "ask-allowed", "once", q["id"]))
        self.assertGreaterEqual(d["ask_ms"], 0)
        # Once is once: the next connection asks again; answering it twice finds nothing.
        job = Background(curl, s.tcp_port("main"), self.url("other.test", "/hello?ask-again"), True)
        q2 = c.wait_pending()[0]
        self.assertNotEqual(q2["id"], q["id"])
        self.assertEqual(c.post("/v1/pending/%d" % q["id"], {"verdict": "allow"})[0], 404)
        c.post("/v1/pending/%d" % q2["id"], {"verdict": "deny"})
        r = job.result()
        self.assertEqual((r.status, r.headers.get("x-sluice-reason")), (403, "ask-denied"), r)
        self.assertEqual(self.seen("/hello?ask-again"), [])

    def test_a_lua_rule_returning_ask_holds_the_connection_like_default_ask(self):
        s, c = self.start()
        port = s.tcp_port("scripted")
        job = Background(curl, port, self.url("other.test", "/echo?lua-ask"))
        q = c.wait_pending()[0]
        self.assertEqual((q["policy"], q["host"], q["listeners"]), ("scripted", "other.test", ["scripted"]))
        self.assertEqual(self.seen("/echo?lua-ask"), [])
        c.post("/v1/pending/%d" % q["id"], {"verdict": "allow"})
        r = job.result()
        self.assertEqual(r.status, 200, r)
        headers = dict((k.lower(), v) for k, v in json.loads(r.body)["headers"])
        self.assertEqual(headers["x-sluice-asked"], "after-other.test")  # on_request ran after the answer
        d = s.wait_log(lambda e: e["event"] == "decision" and e.get("url", "").endswith("lua-ask"))[-1]
        self.assertEqual((d["reason"], d["question"], d["hook"]), ("ask-allowed", q["id"], "on_connect"))
        # A SOCKS5 request the script asks about waits for its reply too; denied, it gets 0x02.
        sock = socks_connect(port, "other.test", self.echo.port)
        self.addCleanup(sock.close)
        q = c.wait_pending()[0]
        self.assertEqual(q["kinds"], ["socks"])
        c.post("/v1/pending/%d" % q["id"], {"verdict": "deny"})
        self.assertEqual(recv_exact(sock, 2), b"\x05\x02")
        # The script's other hosts never ask.
        self.assertEqual(curl(port, self.url("allowed.test")).status, 200)
        self.assertEqual(c.pending(), [])

    def test_ask_denied_refuses_a_plain_http_request_with_a_reason(self):
        s, c = self.start()
        job = Background(curl, s.tcp_port("main"), self.url("other.test", "/hello?ask-deny"))
        q = c.wait_pending()[0]
        self.assertEqual(q["kinds"], ["http"])
        c.post("/v1/pending/%d" % q["id"], {"verdict": "deny"})
        r = job.result()
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "ask-denied"), r)
        self.assertIn(b"other.test:%d was denied when asked" % self.up.port, r.body)
        self.assertEqual(self.seen("/hello?ask-deny"), [])
        # The listed and the denied never ask.
        self.assertEqual(curl(s.tcp_port("main"), self.url("allowed.test")).status, 200)
        r = curl(s.tcp_port("main"), self.url("denied.allowed.test"))
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "denied-by-rule"))
        self.assertEqual(c.pending(), [])

    def test_ask_times_out_with_403_ask_timeout(self):
        s, c = self.start(ask_ms=300)
        reader = c.events()
        self.addCleanup(reader.close)
        r = curl(s.tcp_port("main"), self.url("other.test", "/hello?ask-timeout"))
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "ask-timeout"), r)
        self.assertIn(b"nobody answered", r.body)
        ask = reader.next(lambda e: e["event"] == "ask", what="the ask")
        expired = reader.next(lambda e: e["event"] == "ask-expired", what="the expiry")
        self.assertEqual((expired["id"], expired["reason"]), (ask["id"], "timeout"))
        self.assertEqual(c.pending(), [])
        self.assertEqual(self.seen("/hello?ask-timeout"), [])
        m = c.metrics()
        self.assertEqual(m['sluice_denials_total{reason="ask-timeout"}'], 1)
        self.assertEqual(m['sluice_ask_answers_total{verdict="deny",remember="once",by="timeout"}'], 1)

    def test_concurrent_asks_for_one_host_share_one_question(self):
        s, c = self.start()
        port = s.tcp_port("main")
        jobs = [Background(curl, port, self.url("other.test", "/hello?shared-%d" % i), i % 2 == 0) for i in range(6)]
        q = wait_for(lambda: (lambda p: p[0] if p and p[0]["waiting"] == 6 else None)(c.pending()),
                     what="six connections on one question")
        self.assertEqual(len(c.pending()), 1)
        self.assertEqual(sorted(q["kinds"]), ["connect", "http"])
        status, body = c.post("/v1/pending/%d" % q["id"], {"verdict": "allow"})
        self.assertEqual(body["released"], 6)
        for job in jobs:
            r = job.result()
            self.assertEqual((r.status, r.body), (200, b"hello\n"), r)
        m = c.metrics()
        self.assertEqual(m["sluice_asks_total"], 1)
        self.assertEqual(m['sluice_ask_answers_total{verdict="allow",remember="once",by="api"}'], 1)

    def test_socks_request_gets_its_reply_only_after_the_answer(self):
        s, c = self.start()
        sock = socks_connect(s.tcp_port("main"), "other.test", self.echo.port)
        self.addCleanup(sock.close)
        q = c.wait_pending()[0]
        self.assertEqual(q["kinds"], ["socks"])
        sock.setblocking(False)
        with self.assertRaises(BlockingIOError):
            sock.recv(1)  # no reply while the question waits
        sock.setblocking(True)
        sock.settimeout(10 * SLOW)
        sock.sendall(b"early bytes ")  # held, then the first tunnel bytes
        c.post("/v1/pending/%d" % q["id"], {"verdict": "allow"})
        reply = recv_exact(sock, 10)
        self.assertEqual(reply[:2], b"\x05\x00")
        sock.sendall(b"after")
        self.assertEqual(recv_exact(sock, 17), b"early bytes after")
        # And a denied one gets 0x02.
        sock2 = socks_connect(s.tcp_port("main"), "x.wild.test", self.echo.port)
        self.addCleanup(sock2.close)
        q = c.wait_pending()[0]
        c.post("/v1/pending/%d" % q["id"], {"verdict": "deny"})
        self.assertEqual(recv_exact(sock2, 2), b"\x05\x02")

    def test_always_answer_persists_across_a_restart_and_forget_removes_it(self):
        s, c = self.start()
        job = Background(curl, s.tcp_port("main"), self.url("other.test", "/hello?always"))
        q = c.wait_pending()[0]
        status, body = c.post("/v1/pending/%d" % q["id"], {"verdict": "allow", "remember": "always"})
        self.assertTrue(body["persisted"], body)
        self.assertEqual(job.result().status, 200)
        # A session answer too: it must not survive the restart.
        job = Background(curl, s.tcp_port("main"), self.url("x.wild.test", "/hello?session"))
        q = c.wait_pending()[0]
        c.post("/v1/pending/%d" % q["id"], {"verdict": "deny", "remember": "session"})
        self.assertEqual(job.result().status, 403)
        r = curl(s.tcp_port("main"), self.url("x.wild.test", "/hello?session-again"))
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "remembered-deny"))
        self.assertIn(b"sluice ctl forget x.wild.test:%d" % self.up.port, r.body)
        state = wait_for(lambda: os.path.exists(self.state_file) and self.read_state(), what="the state file")
        self.assertEqual(state, [{"policy": "agents", "host": "other.test", "port": self.up.port, "verdict": "allow",
                                  "at": state[0]["at"]}])
        self.assertEqual(stat.S_IMODE(os.stat(self.state_file).st_mode), 0o600)
        s.cleanup()

        s2, c2 = self.start()
        r = curl(s2.tcp_port("main"), self.url("other.test", "/hello?after-restart"))
        self.assertEqual(r.status, 200, r)
        d = s2.wait_log(lambda e: e["event"] == "decision" and e.get("url", "").endswith("after-restart"))[-1]
        self.assertEqual((d["reason"], d["rule"]), ("remembered-allow", "always"))
        self.assertEqual(c2.pending(), [])
        # The session answer is gone: this one asks.
        job = Background(curl, s2.tcp_port("main"), self.url("x.wild.test", "/hello?asks-again"))
        q = c2.wait_pending()[0]
        self.assertEqual(q["host"], "x.wild.test")
        c2.post("/v1/pending/%d" % q["id"], {"verdict": "deny"})
        job.result()
        # sluice ctl forget: the always answer goes, from memory and from the file.
        out = subprocess.run([SLUICE, "ctl", "--socket", c2.path, "forget", "*.test"], capture_output=True, text=True,
                             timeout=30 * SLOW)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("forgot 1 answer", out.stdout)
        wait_for(lambda: self.read_state() == [], what="the state file emptied")
        job = Background(curl, s2.tcp_port("main"), self.url("other.test", "/hello?forgotten"))
        q = c2.wait_pending()[0]
        self.assertEqual(q["host"], "other.test")
        c2.post("/v1/pending/%d" % q["id"], {"verdict": "allow"})
        self.assertEqual(job.result().status, 200)

    def test_a_broken_state_file_stops_the_start_with_a_reason(self):
        with open(self.state_file, "w") as f:
            f.write('{"version": 1, "remembered": [{"policy": "p"}]}')
        with self.assertRaises(AssertionError) as ctx:
            Sluice(self.config())
        self.assertIn(self.state_file + ": remembered[0].host must be a string", str(ctx.exception))

    # --- events -------------------------------------------------------------------

    def test_events_stream_decisions_denials_asks_and_answers_to_many_readers(self):
        s, c = self.start()
        readers = [c.events() for _ in range(3)]
        for r in readers:
            self.addCleanup(r.close)
            self.assertEqual(r.status, 200)
        wait_for(lambda: c.get("/v1/status")[1]["events"]["readers"] == 3, what="three readers")
        port = s.tcp_port("main")
        self.assertEqual(curl(port, self.url("allowed.test", "/hello?ev-allow")).status, 200)
        self.assertEqual(curl(port, self.url("denied.allowed.test", "/hello?ev-deny")).status, 403)
        job = Background(curl, port, self.url("other.test", "/hello?ev-ask"))
        q = c.wait_pending()[0]
        c.post("/v1/pending/%d" % q["id"], {"verdict": "allow", "remember": "session"})
        self.assertEqual(job.result().status, 200)
        for r in readers:
            allow = r.next(lambda e: e["event"] == "decision" and e.get("url", "").endswith("ev-allow"), what="allow")
            self.assertEqual((allow["verdict"], allow["reason"], allow["status"]), ("allow", "allowed-by-rule", 200))
            deny = r.next(lambda e: e["event"] == "decision" and e.get("url", "").endswith("ev-deny"), what="denial")
            self.assertEqual((deny["verdict"], deny["reason"], deny["status"]), ("deny", "denied-by-rule", 403))
            ask = r.next(lambda e: e["event"] == "ask", what="ask")
            self.assertEqual((ask["id"], ask["host"], ask["listener"], ask["kind"]), (q["id"], "other.test", "main", "http"))
            answer = r.next(lambda e: e["event"] == "answer", what="answer")
            self.assertEqual((answer["verdict"], answer["remember"], answer["by"], answer["released"]),
                             ("allow", "session", "api", 1))
            d = r.next(lambda e: e["event"] == "decision" and e.get("url", "").endswith("ev-ask"), what="asked decision")
            self.assertEqual((d["reason"], d["question"]), ("ask-allowed", q["id"]))
            r.next(lambda e: e["event"] == "close", what="a close line")
        # The log file gets the same lines.
        s.wait_log(lambda e: e["event"] == "answer")
        kinds = {e["event"] for e in s.wait_log(lambda e: e.get("url", "").endswith("ev-ask")) + s.log()}
        self.assertTrue({"decision", "close", "ask", "answer"} <= kinds, kinds)

    def test_a_slow_event_reader_is_dropped_and_never_slows_traffic(self):
        s, c = self.start()
        slow = socket.socket(socket.AF_UNIX)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(c.path)
        self.addCleanup(slow.close)
        slow.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads
        fast = c.events()
        self.addCleanup(fast.close)
        wait_for(lambda: c.get("/v1/status")[1]["events"]["readers"] == 2, what="two readers")
        count = 3000
        fast_job = Background(fast.next, lambda e: e.get("url", "").endswith("?last"), 120, "the last decision")
        port = s.tcp_port("metered")
        with Raw(port) as conn:
            for i in range(count):
                target = "/hello?last" if i == count - 1 else "/hello?n=%d" % i
                conn.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test", target).encode())
                status, _, body = conn.read_response()
                self.assertEqual((status, body), (200, b"hello\n"))
        last = fast_job.result(timeout=120)
        self.assertEqual(last["status"], 200)
        self.assertGreaterEqual(len([e for e in fast.seen if e["event"] == "decision"]), count)
        m = wait_for(lambda: (lambda m: m if m["sluice_event_readers_dropped_total"] == 1 else None)(c.metrics()),
                     what="the slow reader dropped")
        self.assertEqual(m["sluice_event_readers"], 1)
        self.assertEqual(m["sluice_events_dropped_total"], 0)
        # Once it reads, the slow reader finds the final note and the end of the stream.
        slow.settimeout(10 * SLOW)
        data = b""
        while True:
            chunk = slow.recv(65536)
            if not chunk:
                break
            data += chunk
        last_line = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        note = json.loads(last_line)
        self.assertEqual(note["event"], "dropped")
        self.assertIn("reader too slow", note["reason"])
        self.assertLess(len(data), 2 * 1024 * 1024)  # bounded: what was queued for it went with it

    # --- metrics ------------------------------------------------------------------

    def test_loop_probe_reports_a_loop_held_by_a_rule(self):
        # A rule that spins holds its worker's loop for a whole callback: the busy-turn gauge
        # must show at least that long, the lateness gauge too (the timer could not fire), and
        # both restart from zero at the next scrape.
        s = self.start_sluice_for_test(PROBE_CONFIG.replace("DNSPORT", str(self.dns.port)),
                                       files={"spin.lua": SPIN_LUA}, workers=1, extra_args=["--loop-probe-ms", "1"])
        c = Control(os.path.join(s.dir, "control.sock"))
        c.metrics()  # the maxima restart here: startup is not counted
        t0 = time.monotonic()
        r = curl(s.tcp_port("probed"), self.url("other.test"))
        took = time.monotonic() - t0
        self.assertEqual(r.status, 200, r.stderr)
        m = c.metrics()
        busy = m['sluice_loop_busy_max_seconds{worker="0"}']
        lag = m['sluice_loop_lag_max_seconds{worker="0"}']
        self.assertGreaterEqual(busy, 0.005, m)  # the spin is tens of ms (more under ASan)
        self.assertGreaterEqual(lag, 0.004, m)
        self.assertLess(busy, took + 0.1)  # it is a turn of this loop, not the time since start
        # An idle loop's turns are microseconds: the next window shows far less than the spin.
        time.sleep(0.2)
        again = c.metrics()['sluice_loop_busy_max_seconds{worker="0"}']
        self.assertLess(again, busy / 2)

    def test_metrics_counters_match_the_traffic_sent(self):
        s, c = self.start()
        port = s.tcp_port("metered")
        payload = b"x" * 1000
        for _ in range(3):
            with Raw(port) as t:
                t.send(b"CONNECT echo.test:%d HTTP/1.1\r\nHost: echo.test\r\n\r\n" % self.echo.port)
                self.assertEqual(t.read_head()[0], 200)
                t.send(payload)
                self.assertEqual(t.read_exact(len(payload)), payload)
        for i in range(2):
            r = curl(port, self.url("denied.allowed.test", "/hello?m%d" % i))
            self.assertEqual(r.status, 403)
        sock = socks_connect(port, "echo.test", self.echo.port)
        self.assertEqual(recv_exact(sock, 10)[:2], b"\x05\x00")
        sock.sendall(b"y" * 500)
        self.assertEqual(recv_exact(sock, 500), b"y" * 500)
        sock.close()
        s.wait_log(lambda e: e["event"] == "close" and e["listener"] == "metered", count=6)
        m = c.metrics()
        L = 'listener="metered"'
        self.assertEqual(m['sluice_connections_accepted_total{%s}' % L], 6)
        self.assertEqual(m['sluice_decisions_total{%s,kind="connect",verdict="allow"}' % L], 3)
        self.assertEqual(m['sluice_decisions_total{%s,kind="http",verdict="deny"}' % L], 2)
        self.assertEqual(m['sluice_decisions_total{%s,kind="socks",verdict="allow"}' % L], 1)
        self.assertEqual(m['sluice_denials_total{reason="denied-by-rule"}'], 2)
        self.assertEqual(m['sluice_bytes_total{%s,direction="up"}' % L], 3 * 1000 + 500)
        self.assertEqual(m['sluice_bytes_total{%s,direction="down"}' % L], 3 * 1000 + 500)
        self.assertEqual(m["sluice_dns_duration_seconds_count"], 4)
        self.assertEqual(m["sluice_connect_duration_seconds_count"], 4)
        self.assertEqual(m['sluice_dns_duration_seconds_bucket{le="+Inf"}'], 4)
        self.assertEqual(m['sluice_connections_open{%s}' % L], 0)
        self.assertEqual(m["sluice_asks_pending"], 0)
        self.assertEqual(m['sluice_policy_version{policy="open"}'], 1)
        self.assertNotIn("sluice_loop_lag_seconds_count", m)  # the probe is off by default
        # Cumulative buckets never decrease.
        buckets = [v for k, v in m.items() if k.startswith("sluice_connect_duration_seconds_bucket")]
        self.assertEqual(buckets, sorted(buckets))
        # Scripts that fail: counted, and the one stopped by its budget counted again.
        for host in ("loop.test", "broken.test"):
            r = curl(s.tcp_port("scripted"), "http://%s:%d/" % (host, self.up.port))
            self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "script-error"))
        m = c.metrics()
        self.assertEqual(m["sluice_lua_errors_total"], 2)
        self.assertEqual(m["sluice_lua_budget_hits_total"], 1)
        # A pending ask shows as a gauge.
        job = Background(curl, s.tcp_port("main"), self.url("other.test", "/hello?gauge"))
        q = c.wait_pending()[0]
        self.assertEqual(c.metrics()["sluice_asks_pending"], 1)
        c.post("/v1/pending/%d" % q["id"], {"verdict": "deny"})
        job.result()

    # --- live changes ---------------------------------------------------------------

    def test_live_list_replacement_applies_to_new_connections_only(self):
        s, c = self.start()
        port = s.tcp_port("lists")
        held = Raw(port)  # accepted before the change: keeps the config it started with
        self.addCleanup(held.close)
        held.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test", "/hello?held-1").encode())
        self.assertEqual(held.read_response()[0], 200)
        tunnel = Raw(port)
        self.addCleanup(tunnel.close)
        tunnel.send(b"CONNECT allowed.test:%d HTTP/1.1\r\nHost: x\r\n\r\n" % self.echo.port)
        self.assertEqual(tunnel.read_head()[0], 200)
        self.assertEqual(curl(port, self.url("other.test")).status, 403)
        status, body = c.request("PUT", "/v1/policies/lists/allow", ["other.test", "127.0.0.1"])
        self.assertEqual(status, 200, body)
        self.assertEqual((body["policy"], body["list"], body["entries"], body["version"]), ("lists", "allow", 2, 2))
        r = curl(port, self.url("allowed.test", "/hello?after-put"))
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "not-in-allowlist"))
        self.assertEqual(curl(port, self.url("other.test", "/hello?new-list")).status, 200)
        # In flight: the held keep-alive connection and the open tunnel are unchanged.
        held.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test", "/hello?held-2").encode())
        self.assertEqual(held.read_response()[0], 200)
        tunnel.send(b"still open")
        self.assertEqual(tunnel.read_exact(10), b"still open")
        policies = {p["name"]: p for p in c.get("/v1/status")[1]["policies"]}
        self.assertEqual((policies["lists"]["version"], policies["lists"]["allow"]), (2, 2))
        # The deny list, as {"entries": [...]}; the allow list just set stays.
        status, body = c.request("PUT", "/v1/policies/lists/deny", {"entries": ["other.test"]})
        self.assertEqual((status, body["version"]), (200, 3))
        r = curl(port, self.url("other.test"))
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "denied-by-rule"))
        event = s.wait_log(lambda e: e["event"] == "policy" and e["list"] == "deny")[-1]
        self.assertEqual((event["policy"], event["entries"], event["version"]), ("lists", 1, 3))
        self.assertEqual(c.metrics()['sluice_policy_version{policy="lists"}'], 3)

    def test_a_100000_entry_list_replaced_through_the_api(self):
        s, c = self.start()
        port = s.tcp_port("lists")
        entries = ["host%d.example" % i for i in range(100000)] + ["other.test", "127.0.0.1"]
        # The build runs only on idle CPU time (SCHED_IDLE): a busy test machine may delay it.
        status, body = Control(c.path, timeout=120).request("PUT", "/v1/policies/lists/allow", entries)
        self.assertEqual((status, body["entries"]), (200, 100002), body)
        self.assertEqual(curl(port, self.url("other.test")).status, 200)
        self.assertEqual(curl(port, self.url("allowed.test")).status, 403)
        # The old list is freed on the control thread once nothing holds it (retired snapshots).
        self.assertEqual(c.get("/v1/status")[1]["policies"][1]["allow"], 100002)

    def test_reload_through_the_api_keeps_sandboxes_and_reports_errors(self):
        s, c = self.start()
        status, sb = c.post("/v1/sandboxes", {"name": "sb1", "policy": "lists"})
        self.assertEqual(status, 201, sb)
        s.write_config(self.config().replace("allow: [allowed.test, \"127.0.0.1\"]\nresolver",
                                             "allow: [other.test, \"127.0.0.1\"]\nresolver"))
        status, body = c.post("/v1/reload")
        self.assertEqual((status, body["ok"]), (200, True), body)
        self.assertEqual(curl(s.tcp_port("lists"), self.url("other.test")).status, 200)
        with Raw(sb["path"]) as u:  # the sandbox survived, with the reloaded policy
            u.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("other.test", "/hello?sb-reload").encode())
            self.assertEqual(u.read_response()[0], 200)
        with open(s.config_path, "w") as f:
            f.write("listeners: [unclosed\n")
        status, body = c.post("/v1/reload")
        self.assertEqual(status, 400, body)
        self.assertIn(s.config_path + ":", body["error"])
        self.assertTrue(body["errors"])
        self.assertEqual(curl(s.tcp_port("lists"), self.url("other.test")).status, 200)
        out = subprocess.run([SLUICE, "ctl", "--socket", c.path, "reload"], capture_output=True, text=True,
                             timeout=30 * SLOW)
        self.assertEqual(out.returncode, 1)
        self.assertIn("sluice ctl: " + s.config_path + ":", out.stderr)

    def test_a_sandbox_added_and_removed_through_the_api(self):
        s, c = self.start()
        status, body = c.post("/v1/sandboxes", {"name": "sb1", "policy": "lists"})
        self.assertEqual(status, 201, body)
        path = body["path"]
        self.assertEqual(path, os.path.join(s.dir, "control.sock.sandboxes", "sb1.sock"))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with Raw(path) as u:
            u.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("allowed.test", "/hello?sandbox").encode())
            self.assertEqual(u.read_response()[0], 200)
            u.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("other.test", "/hello?sandbox-deny").encode())
            status, headers, _ = u.read_response()
            self.assertEqual((status, headers["x-sluice-reason"]), (403, "not-in-allowlist"))
        d = s.wait_log(lambda e: e["event"] == "decision" and e.get("url", "").endswith("?sandbox"))[-1]
        self.assertEqual((d["listener"], d["policy"]), ("sb1", "lists"))
        self.assertIn("peer", d)
        self.assertEqual(c.post("/v1/sandboxes", {"name": "sb1", "policy": "lists"})[0], 409)
        listed = c.get("/v1/sandboxes")[1]["sandboxes"]
        self.assertEqual(listed, [{"name": "sb1", "policy": "lists", "path": path}])
        self.assertIn("sb1", [l["name"] for l in c.get("/v1/status")[1]["listeners"]])
        status, body = c.request("DELETE", "/v1/sandboxes/sb1")
        self.assertEqual((status, body), (200, {"name": "sb1", "removed": True}))
        self.assertFalse(os.path.exists(path))
        self.assertEqual(c.request("DELETE", "/v1/sandboxes/sb1")[0], 404)
        self.assertNotIn("sb1", [l["name"] for l in c.get("/v1/status")[1]["listeners"]])
        events = s.wait_log(lambda e: e["event"] == "sandbox", count=2)
        self.assertEqual([e["action"] for e in events], ["added", "removed"])
        # A leased sandbox goes when the connection that made it closes.
        lease = socket.socket(socket.AF_UNIX)
        lease.connect(c.path)
        body = json.dumps({"name": "leased", "policy": "lists", "lease": True}).encode()
        lease.sendall(b"POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            data += lease.recv(65536)
        self.assertEqual(parse_response(data)[0], 201)
        self.assertTrue(os.path.exists(os.path.join(s.dir, "control.sock.sandboxes", "leased.sock")))
        lease.close()
        wait_for(lambda: c.get("/v1/sandboxes")[1]["sandboxes"] == [], what="the leased sandbox removed")
        self.assertFalse(os.path.exists(os.path.join(s.dir, "control.sock.sandboxes", "leased.sock")))

    def test_200_sandboxes_with_overlays_survive_a_reload_and_are_freed(self):
        """Each sandbox's overlay applies on its own listener only; a reload and a list push
        keep every sandbox (and its overlay) and drop neither a held keep-alive connection nor
        an open tunnel; removing them closes every socket."""
        s, c = self.start()
        fds = lambda: len(os.listdir("/proc/%d/fd" % s.proc.pid))
        before = fds()
        n = 200
        paths = {}
        for i in range(n):
            # Own names for the deny entries (judged before any lookup); the test DNS server's
            # names for the allow entries, half and half.
            overlay = {"allow": ["other.test" if i % 2 == 0 else "echo.test"],
                       "deny": ["own%d.test" % i] + (["allowed.test"] if i % 3 == 0 else [])}
            status, body = c.post("/v1/sandboxes", {"name": "sb%d" % i, "policy": "lists", "overlay": overlay})
            self.assertEqual(status, 201, body)
            self.assertEqual(body["overlay"], overlay)
            paths[i] = body["path"]
        # One socket per sandbox in sluice (the worker that accepts on it owns it).
        # (Not one per worker and one more: 2 workers would make that 3 per sandbox.)
        wait_for(lambda: abs(fds() - (before + n)) <= 5, what="one descriptor per sandbox")

        def get(path, host, query):
            with Raw(path) as u:
                u.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url(host, "/hello?" + query).encode())
                status, headers, _ = u.read_response()
                return status, headers.get("x-sluice-reason", "")

        def check_overlays(tag):
            refused, denied = (403, "not-in-allowlist"), (403, "denied-by-rule")
            for i in (0, 1, 77, 150, 199):
                self.assertEqual(get(paths[i], "own%d.test" % i, tag), denied, (tag, i))
                self.assertEqual(get(paths[i], "own%d.test" % ((i + 1) % n), tag), refused, (tag, i))
                self.assertEqual(get(paths[i], "other.test", tag), (200, "") if i % 2 == 0 else refused, (tag, i))
                self.assertEqual(get(paths[i], "echo.test", tag), (200, "") if i % 2 == 1 else refused, (tag, i))
                self.assertEqual(get(paths[i], "allowed.test", tag), denied if i % 3 == 0 else (200, ""), (tag, i))
            self.assertEqual(curl(s.tcp_port("lists"), self.url("other.test")).status, 403)  # not on the base listener
            self.assertEqual(curl(s.tcp_port("lists"), self.url("allowed.test")).status, 200)

        check_overlays("first")
        listed = c.get("/v1/sandboxes")[1]["sandboxes"]
        self.assertEqual(len(listed), n)
        self.assertEqual({sb["name"]: sb["overlay"]["deny"] for sb in listed}["sb42"], ["own42.test", "allowed.test"])
        generation = c.get("/v1/status")[1]["config"]["generation"]

        # In flight across the reload and the push: a keep-alive connection and a tunnel.
        held = Raw(paths[3])
        self.addCleanup(held.close)
        held.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("echo.test", "/hello?held-1").encode())
        self.assertEqual(held.read_response()[0], 200)
        tunnel = Raw(paths[5])
        self.addCleanup(tunnel.close)
        tunnel.send(b"CONNECT echo.test:%d HTTP/1.1\r\nHost: x\r\n\r\n" % self.echo.port)
        self.assertEqual(tunnel.read_head()[0], 200)
        s.write_config(self.config().replace("allow: [allowed.test, \"127.0.0.1\"]\nresolver",
                                             "allow: [allowed.test, wild.test, \"127.0.0.1\"]\nresolver"))
        status, body = c.post("/v1/reload")
        self.assertEqual((status, body["ok"]), (200, True), body)
        self.assertEqual(body["generation"], generation + 1)  # one snapshot for the reload, none per sandbox
        status, body = c.request("PUT", "/v1/policies/lists/deny", ["pushed.test"])
        self.assertEqual(status, 200, body)
        held.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.url("echo.test", "/hello?held-2").encode())
        self.assertEqual(held.read_response()[0], 200)
        tunnel.send(b"still open")
        self.assertEqual(tunnel.read_exact(10), b"still open")
        check_overlays("after-reload")
        self.assertEqual(get(paths[9], "wild.test", "reloaded")[0], 200)  # the reloaded policy, under the overlay
        self.assertEqual(get(paths[9], "pushed.test", "pushed"), (403, "denied-by-rule"))
        self.assertEqual(len(c.get("/v1/sandboxes")[1]["sandboxes"]), n)

        for i in range(n):
            self.assertEqual(c.request("DELETE", "/v1/sandboxes/sb%d" % i)[0], 200)
        self.assertEqual(c.get("/v1/sandboxes")[1]["sandboxes"], [])
        self.assertFalse(any(os.path.exists(p) for p in paths.values()))
        # The tunnel and the held connection still run on sockets of their own; the rest is closed.
        tunnel.send(b"after rm")
        self.assertEqual(tunnel.read_exact(8), b"after rm")
        held.close()
        tunnel.close()
        # (A few may be the workers' resolver sockets, opened by the first lookups.)
        wait_for(lambda: fds() <= before + 4, what="every sandbox socket closed")

    # --- sluice ctl -----------------------------------------------------------------

    def ctl(self, c, *args, timeout=30):
        return subprocess.run([SLUICE, "ctl", "--socket", c.path] + list(args), capture_output=True, text=True,
                              timeout=timeout * SLOW, env=clean_env())

    def test_sluice_ctl_commands(self):
        s, c = self.start()
        out = self.ctl(c, "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"(?m)^sluice \S+, pid %d, " % s.proc.pid)
        self.assertRegex(out.stdout, r"(?m)^  main +tcp:127\.0\.0\.1:%d +policy agents" % s.tcp_port("main"))
        self.assertEqual(json.loads(self.ctl(c, "status", "--json").stdout)["pid"], s.proc.pid)
        self.assertIn("no questions pending", self.ctl(c, "pending").stdout)
        watch = subprocess.Popen([SLUICE, "ctl", "--socket", c.path, "watch"], stdout=subprocess.PIPE, text=True,
                                 env=clean_env())
        self.addCleanup(lambda: (watch.kill(), watch.wait(), watch.stdout.close()))
        watch_json = subprocess.Popen([SLUICE, "ctl", "--socket", c.path, "watch", "--json"], stdout=subprocess.PIPE,
                                      text=True, env=clean_env())
        self.addCleanup(lambda: (watch_json.kill(), watch_json.wait(), watch_json.stdout.close()))
        wait_for(lambda: c.get("/v1/status")[1]["events"]["readers"] == 2, what="the watchers")
        job = Background(curl, s.tcp_port("main"), self.url("other.test", "/hello?ctl"))
        q = c.wait_pending()[0]
        out = self.ctl(c, "pending")
        self.assertRegex(out.stdout, r"(?m)^%d +other\.test:%d +agents +1 " % (q["id"], self.up.port))
        out = self.ctl(c, "allow", str(q["id"]), "--session")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, "allowed other.test:%d (session): 1 connection released\n" % self.up.port)
        self.assertEqual(job.result().status, 200)
        out = self.ctl(c, "allow", str(q["id"]))
        self.assertEqual(out.returncode, 1)
        self.assertIn("no pending question", out.stderr)
        self.assertIn("other.test", self.ctl(c, "remembered").stdout)
        out = self.ctl(c, "forget", "other.test")
        self.assertIn("forgot 1 answer", out.stdout)
        job = Background(curl, s.tcp_port("main"), self.url("other.test", "/hello?ctl-deny"))
        q = c.wait_pending()[0]
        self.assertEqual(self.ctl(c, "deny", str(q["id"])).returncode, 0)
        self.assertEqual(job.result().status, 403)
        # watch: one readable line per event; --json: the events themselves.
        lines, json_lines = collect_lines(watch.stdout), collect_lines(watch_json.stdout)
        wait_for(lambda: any("ask-denied" in l for l in lines), what="watch lines")
        self.assertTrue(any(l.split()[1:2] == ["ask"] and "wants other.test" in l for l in lines), lines)
        self.assertTrue(any(" answer " in l and "allow session by api" in l for l in lines), lines)
        wait_for(lambda: any(json.loads(l).get("reason") == "ask-denied" for l in list(json_lines)),
                 what="watch --json lines")
        self.assertIn("ask", [json.loads(l)["event"] for l in list(json_lines)])
        out = self.ctl(c, "sandbox", "add", "box", "--policy", "lists")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(os.path.exists(out.stdout.strip()))
        self.assertIn("box", self.ctl(c, "sandbox", "ls").stdout)
        self.assertEqual(self.ctl(c, "sandbox", "rm", "box").stdout, "removed box\n")
        out = self.ctl(c, "sandbox", "add", "ovl", "--policy", "lists", "--allow", "other.test", "--allow",
                       "*.wild.test", "--deny", "allowed.test")
        self.assertEqual(out.returncode, 0, out.stderr)
        listed = json.loads(self.ctl(c, "sandbox", "ls", "--json").stdout)["sandboxes"]
        self.assertEqual(listed[0]["overlay"], {"allow": ["other.test", "*.wild.test"], "deny": ["allowed.test"]})
        out = self.ctl(c, "sandbox", "add", "bad", "--allow", "a.*.b")
        self.assertEqual(out.returncode, 1)
        self.assertIn("sluice ctl: overlay.allow[0]: ", out.stderr)
        self.assertEqual(self.ctl(c, "sandbox", "rm", "ovl").returncode, 0)
        out = self.ctl(c, "sandbox", "rm", "box")
        self.assertEqual((out.returncode, out.stderr), (1, "sluice ctl: no sandbox named \"box\"\n"))
        metrics = self.ctl(c, "metrics").stdout
        self.assertIn("# TYPE sluice_decisions_total counter", metrics)
        self.assertEqual(self.ctl(c, "bogus").returncode, 2)
        self.assertEqual(self.ctl(c, "allow").returncode, 2)
        out = subprocess.run([SLUICE, "ctl", "--socket", "/nonexistent/ctl.sock", "status"], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stderr.count("\n"), 1)
        self.assertIn("cannot reach sluice at /nonexistent/ctl.sock", out.stderr)
        help_out = subprocess.run([SLUICE, "ctl", "--help"], capture_output=True, text=True, timeout=30)
        for word in ("status", "metrics", "watch", "pending", "allow ID", "deny ID", "forget PATTERN", "reload",
                     "sandbox add NAME", "sandbox rm NAME"):
            self.assertIn(word, help_out.stdout)


class NoControlTest(E2E):
    def test_without_a_control_socket_ask_means_deny(self):
        cfg = ("listeners:\n  - {name: main, tcp: \"127.0.0.1:0\", policy: p}\npolicies:\n  p: {default: ask}\n"
               "resolver: {servers: [\"127.0.0.1:%d\"]}\nlog: {path: \"{log}\"}\n" % self.dns.port)
        s = self.start_sluice_for_test(cfg)
        r = curl(s.tcp_port("main"), "http://other.test:%d/hello?nobody" % self.up.port)
        self.assertEqual((r.status, r.headers["x-sluice-reason"]), (403, "ask-unavailable"), r)
        self.assertIn(b"nobody can be asked", r.body)
        self.assertEqual(self.seen("/hello?nobody"), [])
