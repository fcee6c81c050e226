"""End-to-end: `sluice run --transparent` (issue 16) with real bubblewrap and nftables.
Programs that ignore HTTP_PROXY (curl --noproxy '*', python's raw sockets, getent) are
captured: TCP goes through the bridge to sluice (judged like a CONNECT, a refusal is a
reset, the decision log names the original destination), DNS is answered by the
in-jail stub from the policy (fake addresses, NXDOMAIN for denied names, nothing
asked of a real resolver), other UDP is dropped, and CMD cannot change the rules.

Tests that need a non-loopback address (an IP literal, a UDP packet to a real address)
run the whole `sluice run` in a user+network namespace of their own (`unshare -rn`),
with servers on an address of that namespace's lo: nothing leaves it."""
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import textwrap
import threading
import time

from harness import DNS_RECORDS, E2E, SLOW, SLUICE, Dns, Raw, daemon_config, run_bounded

FAKE4 = ipaddress.ip_network("198.18.0.0/15")
FAKE6 = ipaddress.ip_network("fd73:6c75:6963:6500::/64")


class FakeDaemon:
    """A stand-in for `sluice serve`'s control socket: makes a sandbox (whose socket nobody
    serves), streams the events `sluice run` waits for, never answers a dns-verdict question."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-fake-", dir="/tmp")
        self.control = os.path.join(self.dir, "control.sock")
        self.sandbox = os.path.join(self.dir, "sb.sock")
        self.asked = []
        self.sb = socket.socket(socket.AF_UNIX)
        self.sb.bind(self.sandbox)
        self.sb.listen(8)
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.control)
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.events = None
        self.conns = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            self.conns.append(c)
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        c.settimeout(30)
        data = b""
        try:
            while not self.stop.is_set():
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = 0
                for h in lines[1:]:
                    k, _, v = h.partition(":")
                    if k.lower() == "content-length":
                        length = int(v)
                while len(data) < length:
                    data += c.recv(4096)
                body, data = data[:length], data[length:]
                if method == "POST" and target == "/v1/sandboxes":
                    name = json.loads(body)["name"]
                    self.reply(c, 201, {"name": name, "policy": "default", "path": self.sandbox})
                elif target == "/v1/events":
                    self.events = c
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n")
                    return
                elif method == "DELETE":
                    name = target.rsplit("/", 1)[1]
                    if self.events is not None:
                        line = {"event": "sandbox", "action": "removed", "name": name}
                        self.events.sendall((json.dumps(line, separators=(",", ":")) + "\n").encode())
                        self.events.close()
                    self.reply(c, 200, {"name": name, "removed": True})
                else:
                    self.asked.append(target)  # no answer, ever
        except OSError:
            return

    @staticmethod
    def reply(c, status, obj):
        body = json.dumps(obj).encode()
        c.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (status, len(body), body))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        for c in self.conns + [self.srv, self.sb]:
            try:
                c.close()
            except OSError:
                pass
        shutil.rmtree(self.dir, True)


def is_fake(text):
    a = ipaddress.ip_address(text)
    return a in (FAKE4 if a.version == 4 else FAKE6)


class TransparentTest(E2E):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.home = tempfile.mkdtemp(prefix="sluice-home-", dir="/var/tmp")
        cls.addClassCleanup(shutil.rmtree, cls.home, True)
        # A DNS server of this class that logs every query it gets: a name the jail asks
        # for must never reach it from inside (only sluice, outside, resolves allowed names).
        cls.query_log = os.path.join(cls.home, "queries.log")
        cls.qdns = Dns(DNS_RECORDS, extra=("--query-log", cls.query_log))
        cls.addClassCleanup(cls.qdns.close)

    def setUp(self):
        self.cwd = tempfile.mkdtemp(prefix="sluice-cwd-")
        self.addCleanup(shutil.rmtree, self.cwd, True)
        self.log = os.path.join(self.cwd, "decisions.jsonl")
        open(self.query_log, "w").close()  # this test's queries only

    def sluice_run(self, *argv, timeout=30):
        # A session of its own: no controlling terminal, so --ask cannot find one.
        return run_bounded([SLUICE, "run"] + list(argv), cwd=self.cwd, capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "HOME": self.cwd}, timeout=timeout,
                           stdin=subprocess.DEVNULL, start_new_session=True)

    def run_jail(self, script, allow=("allowed.test", "echo.test", "127.0.0.1"), extra=(), timeout=60):
        argv = ["--transparent", "--dns-server", "127.0.0.1:%d" % self.qdns.port, "--log", self.log]
        for a in allow:
            argv += ["--allow", a]
        argv += list(extra) + ["--", "sh", "-c", script]
        return self.sluice_run(*argv, timeout=timeout)

    def entries(self, event=None):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            out = [json.loads(x) for x in f]
        return [e for e in out if event is None or e["event"] == event]

    def queries(self):
        with open(self.query_log) as f:
            return f.read().split("\n")

    # ---- dry run ------------------------------------------------------------------

    def test_dry_run_prints_rules_routes_and_resolver(self):
        r = self.sluice_run("--dry-run", "--transparent", "--allow", "x.test", "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        first = out.splitlines()[0]
        self.assertIn("bwrap", first)
        # jail-init alone gets CAP_NET_ADMIN; the stub's resolv.conf replaces the host's.
        self.assertIn("--cap-drop ALL --cap-add CAP_NET_ADMIN", first)
        self.assertRegex(first, r"--ro-bind \S+/resolv\.conf /etc/resolv\.conf")
        self.assertIn("jail-init --socket /run/sluice/proxy.sock --port 3128", first)
        self.assertIn("--transparent --dns-socket /run/sluice/dns.sock", first)
        for want in ("# nft -f - (in the jail's network namespace, before CMD starts)", "table inet sluice {",
                     "meta l4proto tcp redirect to :3129", "udp dport 53 redirect to :3053",
                     "tcp dport 53 redirect to :3053",
                     "type filter hook output priority 0; policy drop;",
                     "ip route add default dev lo src 127.0.0.1", "ip -6 route add default dev lo src ::1",
                     "# /etc/resolv.conf in the jail", "\nnameserver 127.0.0.1\n"):
            self.assertIn(want, out)
        # Exactly one resolver: the stub.
        self.assertEqual(out.count("nameserver"), 1)

    def test_dry_run_without_transparent_prints_no_rules(self):
        r = self.sluice_run("--dry-run", "--allow", "x.test", "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("table inet sluice", r.stdout)
        self.assertNotIn("nameserver", r.stdout)
        self.assertNotIn("CAP_NET_ADMIN", r.stdout)

    def test_seatbelt_refuses_transparent(self):
        r = self.sluice_run("--jail", "seatbelt", "--transparent", "--allow", "x.test", "--", "true")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--transparent needs the bwrap jail", r.stderr)

    def test_kernel_refusing_the_namespaces_stops_before_cmd(self):
        # A kernel that refuses unprivileged namespaces, for real: a user namespace of this
        # test's own (a non-root uid inside) whose namespace limits are set to 0 there (the
        # host's sysctls are untouched). sluice must stop before CMD, naming the settings.
        cwd = tempfile.mkdtemp(prefix="sluice-cwd-", dir="/tmp")
        self.addCleanup(shutil.rmtree, cwd, True)
        os.chmod(cwd, 0o777)
        inner = 1000 if os.getuid() == 0 else os.getuid()
        script = ("echo 0 > /proc/sys/user/max_user_namespaces && echo 0 > /proc/sys/user/max_net_namespaces && "
                  "exec setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-all "
                  "%s run --transparent --allow x.test -- sh -c 'echo CMD-RAN'" % SLUICE)
        r = run_bounded(["unshare", "--user", "--map-user=%d" % inner, "--map-group=%d" % inner, "--keep-caps",
                         "sh", "-c", script], cwd=cwd, capture_output=True, text=True,
                        env={"PATH": os.environ["PATH"], "HOME": cwd}, timeout=30, stdin=subprocess.DEVNULL,
                        start_new_session=True)
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertNotIn("CMD-RAN", r.stdout)
        self.assertIn("bwrap: Creating new namespace failed", r.stderr)
        for want in ("user.max_user_namespaces", "kernel.apparmor_restrict_unprivileged_userns",
                     "sluice does not fall back to the non-transparent jail"):
            self.assertIn(want, r.stderr)

    # ---- with a daemon --------------------------------------------------------------

    def test_daemon_decides_names_and_connections(self):
        s = self.start_sluice_for_test(daemon_config(self.qdns.port, deny=["allowed.test:1"]))
        sock = os.path.join(s.dir, "control.sock")
        script = ("curl -sS --max-time 30 --noproxy '*' http://allowed.test:%d/hello?transparent-daemon; echo allowed=$?; "
                  "curl -sS --max-time 30 --noproxy '*' http://other.test:%d/hello?transparent-daemon-denied; "
                  "echo denied=$?; getent hosts other.test; echo getent=$?; "
                  "curl -sS --max-time 30 --noproxy '*' -o /dev/null -w '%%{http_code} %%header{x-sluice-reason}\\n' "
                  "http://allowed.test:1/refused-by-daemon; echo refused=$?"
                  % (self.up.port, self.up.port))
        r = self.sluice_run("--transparent", "--daemon", sock, "--daemon-policy", "jails", "--name", "tj1", "--",
                            "sh", "-c", script)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("hello\nallowed=0\n", r.stdout)
        self.assertIn("denied=6\n", r.stdout)  # curl: could not resolve host
        self.assertIn("getent=2\n", r.stdout)
        self.assertIn("sluice: denied DNS name other.test (not-in-allowlist)", r.stderr)
        # A connection the daemon refuses: the program's HTTP request gets the daemon's 403,
        # and the launcher prints the denial the daemon logged.
        self.assertIn("403 denied-by-rule\nrefused=0\n", r.stdout)
        self.assertIn('sluice: denied allowed.test:1 (denied-by-rule, rule "allowed.test:1")', r.stderr)
        self.assertEqual(self.seen("/hello?transparent-daemon-denied"), [])
        self.assertEqual(len(self.seen("/hello?transparent-daemon")), 1)
        # The daemon judged the connection (its policy, the jail's sandbox listener)...
        d = s.wait_log(lambda e: e["event"] == "decision" and e.get("listener") == "tj1" and e["port"] != 1)[0]
        self.assertEqual((d["host"], d["port"], d["status"], d["policy"]), ("allowed.test", self.up.port, 200, "jails"))
        addr, port = d["original_dst"].rsplit(":", 1)
        self.assertTrue(is_fake(addr.strip("[]")), d)
        # ...and logged the denied name, once: the launcher keeps the daemon's verdicts.
        s.wait_log(lambda e: e["event"] == "dns-denied" and e.get("sandbox") == "tj1")
        denied = [e for e in s.log() if e["event"] == "dns-denied"]
        self.assertEqual([(e["name"], e["reason"], e["policy"]) for e in denied],
                         [("other.test", "not-in-allowlist", "jails")])
        self.assertNotIn("other.test A", self.queries())

    def test_daemon_without_a_verdict_fails_closed(self):
        # A stand-in daemon that makes the sandbox but never answers a DNS question.
        with FakeDaemon() as fake:
            t0 = time.monotonic()
            r = self.sluice_run("--transparent", "--daemon", fake.control, "--name", "tj2", "--", "sh", "-c",
                                "getent hosts allowed.test; echo getent=$?")
            took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("getent=2\n", r.stdout)
        self.assertIn("sluice: the daemon gave no DNS verdict for allowed.test: no answer from %s within 2000 ms "
                      "(names not yet known fail for 5000 ms)" % fake.control, r.stderr)
        self.assertIn("sluice: denied DNS name allowed.test (daemon-unavailable)", r.stderr)
        # glibc asks A and AAAA (and may retry): one 2 s wait, then the rest fail at once.
        self.assertEqual(fake.asked, ["/v1/sandboxes/tj2/dns-verdict?host=allowed.test"])
        self.assertLess(took, 20 * SLOW, r.stderr)

    # ---- real runs ----------------------------------------------------------------

    def test_curl_without_proxy_reaches_allowed_names_only(self):
        script = ("curl -sS --max-time 30 --noproxy '*' http://allowed.test:%d/hello; echo allowed=$?; "
                  "curl -sS --max-time 30 --noproxy '*' http://other.test:%d/hello?transparent-denied; echo denied=$?"
                  % (self.up.port, self.up.port))
        r = self.run_jail(script)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("hello\nallowed=0\n", r.stdout)
        self.assertIn("denied=6\n", r.stdout)  # curl: could not resolve host
        self.assertIn("sluice: denied DNS name other.test (not-in-allowlist)", r.stderr)
        self.assertEqual(self.seen("/hello?transparent-denied"), [])
        allowed = [e for e in self.entries("decision") if e.get("host") == "allowed.test"]
        self.assertEqual(len(allowed), 1, self.entries())
        self.assertEqual(allowed[0]["status"], 200)
        self.assertEqual(allowed[0]["port"], self.up.port)
        # The original destination: the fake address the stub gave allowed.test, and the port.
        addr, port = allowed[0]["original_dst"].rsplit(":", 1)
        self.assertTrue(is_fake(addr.strip("[]")), allowed[0])
        self.assertEqual(int(port), self.up.port)
        denied = [e for e in self.entries("dns-denied") if e["name"] == "other.test"]
        self.assertTrue(denied, self.entries())
        self.assertEqual(denied[0]["reason"], "not-in-allowlist")
        # The jail's lookups never reached a real resolver: only sluice asked for allowed.test.
        self.assertNotIn("other.test A", self.queries())

    def test_refused_connection_is_reset_and_logged_with_original_destination(self):
        # other.test resolves in the jail (allowed on other ports) but its connections on the
        # origin's port are denied: a raw client sees a reset, an HTTP client sluice's readable
        # 403; the log names the original destination either way.
        py = ("import socket; s = socket.create_connection(('other.test', %d), timeout=10); s.sendall(b'raw'); "
              "print(s.recv(10))" % self.up.port)
        r = self.run_jail("python3 -c \"%s\" 2>&1 | tail -1; "
                          "curl -sS --noproxy '*' -w '%%{http_code} %%header{x-sluice-reason}\\n' -o /dev/null "
                          "http://other.test:%d/hello?transparent-refused; echo rc=$?" % (py, self.up.port),
                          allow=("other.test",), extra=["--deny", "other.test:%d" % self.up.port])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ConnectionResetError: [Errno 104] Connection reset by peer\n", r.stdout)
        self.assertIn("403 denied-by-rule\nrc=0\n", r.stdout)
        self.assertEqual(self.seen("/hello?transparent-refused"), [])
        d = [e for e in self.entries("decision") if e.get("host") == "other.test"]
        self.assertEqual(len(d), 2, self.entries())
        for e in d:
            self.assertEqual((e["verdict"], e["reason"], e["status"]), ("deny", "denied-by-rule", 403))
            addr, port = e["original_dst"].rsplit(":", 1)
            self.assertTrue(is_fake(addr.strip("[]")), e)
            self.assertEqual(int(port), self.up.port)

    def test_ask_resolves_the_name_and_judges_the_connection(self):
        # --ask: a name the policy does not settle resolves (it may be allowed once asked);
        # with no terminal to ask on, its connection is refused, and reset.
        r = self.run_jail("getent hosts other.test >/dev/null; echo getent=$?; "
                          "curl -sS --noproxy '*' -o /dev/null http://other.test:%d/hello?asked; echo curl=$?" % self.up.port,
                          extra=["--ask"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("getent=0\ncurl=0\n", r.stdout)  # an HTTP client gets the readable 403
        self.assertIn("sluice: denied other.test:%d (ask-unavailable)" % self.up.port, r.stderr)
        self.assertEqual(self.seen("/hello?asked"), [])
        self.assertEqual(self.entries("dns-denied"), [])

    def test_raw_socket_to_a_name_on_a_non_http_port(self):
        py = ("import socket; s = socket.create_connection(('echo.test', %d), timeout=10); "
              "s.sendall(b'raw bytes through the bridge'); s.shutdown(socket.SHUT_WR); "
              "print(s.recv(100).decode())" % self.echo.port)
        r = self.run_jail("python3 -c \"%s\"" % py)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "raw bytes through the bridge\n")
        d = [e for e in self.entries("decision") if e.get("host") == "echo.test"]
        self.assertEqual(len(d), 1, self.entries())
        self.assertEqual(d[0]["status"], 200)
        self.assertTrue(is_fake(d[0]["original_dst"].rsplit(":", 1)[0].strip("[]")))

    def test_bridge_hands_the_programs_socket_to_sluice(self):
        # The bridge decides (original destination, name, first bytes) and then passes the
        # program's socket itself to sluice: sluice's peer is the program's own address in the
        # jail, so no byte of the connection crossed the bridge. With --bridge relay the bridge
        # relays instead, and sluice's peer is the bridge's unix socket.
        py = ("import socket; s = socket.create_connection(('echo.test', %d), timeout=10); "
              "h, p = s.getsockname()[:2]; print(('[%%s]:%%d' if ':' in h else '%%s:%%d') %% (h, p)); "
              "s.sendall(b'handed over'); s.shutdown(socket.SHUT_WR); "
              "print(s.recv(100).decode())" % self.echo.port)
        for extra, want in (((), None), (("--bridge", "relay"), "unix")):
            open(self.log, "w").close()
            r = self.run_jail("python3 -c \"%s\"" % py, extra=extra)
            self.assertEqual(r.returncode, 0, r.stderr)
            local, echoed = r.stdout.splitlines()
            self.assertEqual(echoed, "handed over")
            d = [e for e in self.entries("decision") if e.get("host") == "echo.test"]
            self.assertEqual(len(d), 1, self.entries())
            self.assertEqual(d[0]["status"], 200)
            self.assertTrue(is_fake(d[0]["original_dst"].rsplit(":", 1)[0].strip("[]")), d[0])
            self.assertEqual(d[0]["client"], want or local, extra)

    def test_getent_hosts_gets_fake_addresses_for_allowed_names_only(self):
        r = self.run_jail("getent ahosts allowed.test | grep STREAM; getent hosts other.test; echo denied=$?")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 3, r.stdout)
        addrs = sorted((ipaddress.ip_address(x.split()[0]) for x in lines[:2]), key=lambda a: a.version)
        self.assertIn(addrs[0], FAKE4)
        self.assertIn(addrs[1], FAKE6)
        self.assertEqual(lines[2], "denied=2")  # getent: key not found
        self.assertNotIn("allowed.test A", self.queries())  # asked of nobody: the stub answered
        self.assertTrue([e for e in self.entries("dns-denied") if e["name"] == "other.test"])

    def test_dns_over_tcp_and_to_any_server_is_answered_by_the_stub(self):
        # A query over TCP to the resolver, one over UDP to 8.8.8.8 and one over IPv6 to
        # 2001:db8::53: the stub answers all three (the rules redirect every :53 to it).
        py = textwrap.dedent("""\
            import socket, struct
            def q(name, qid):
                return struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0) + b''.join(
                    bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
            t = socket.create_connection(('127.0.0.1', 53), timeout=5)
            m = q('allowed.test', 7); t.sendall(struct.pack('>H', len(m)) + m)
            n = struct.unpack('>H', t.recv(2))[0]; a = t.recv(n)
            print('tcp', struct.unpack('>H', a[:2])[0], a[3] & 15, socket.inet_ntoa(a[-4:]))
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
            u.sendto(q('other.test', 9), ('8.8.8.8', 53)); a = u.recv(512)
            print('udp', struct.unpack('>H', a[:2])[0], a[3] & 15)
            u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u6.settimeout(5)
            u6.sendto(q('allowed.test', 11), ('2001:db8::53', 53)); a = u6.recv(512)
            print('udp6', struct.unpack('>H', a[:2])[0], a[3] & 15, socket.inet_ntoa(a[-4:]))
            """)
        with open(os.path.join(self.cwd, "q.py"), "w") as f:
            f.write(py)
        r = self.run_jail("python3 q.py")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 3, r.stdout)
        kind, qid, rcode, addr = lines[0].split()
        self.assertEqual((kind, qid, rcode), ("tcp", "7", "0"))
        self.assertIn(ipaddress.ip_address(addr), FAKE4)
        self.assertEqual(lines[1], "udp 9 3")  # NXDOMAIN, from the stub
        kind, qid, rcode, addr = lines[2].split()  # IPv6 to a documentation address: the stub too
        self.assertEqual((kind, qid, rcode), ("udp6", "11", "0"))
        self.assertIn(ipaddress.ip_address(addr), FAKE4)
        self.assertNotIn("other.test A", self.queries())

    def test_dns_query_flood_is_bounded_and_address_queries_still_answered(self):
        py = textwrap.dedent("""\
            import socket, struct
            def q(name, qid, qtype):
                return struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0) + b''.join(
                    bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\\0' + struct.pack('>HH', qtype, 1)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
            rcodes = {}
            for i in range(300):
                u.sendto(q('allowed.test', i, 16), ('127.0.0.1', 53)); a = u.recv(512)
                rcodes[a[3] & 15] = rcodes.get(a[3] & 15, 0) + 1
            u.sendto(q('allowed.test', 999, 1), ('127.0.0.1', 53)); a = u.recv(512)
            print(rcodes.get(0, 0), rcodes.get(5, 0), a[3] & 15, socket.inet_ntoa(a[-4:]))
            """)
        with open(os.path.join(self.cwd, "flood.py"), "w") as f:
            f.write(py)
        r = self.run_jail("python3 flood.py")
        self.assertEqual(r.returncode, 0, r.stderr)
        answered, refused, a_rcode, addr = r.stdout.split()
        # A burst of 50 TXT answers (and a few refilled), the rest REFUSED; A still answered.
        self.assertGreaterEqual(int(answered), 50)
        self.assertGreaterEqual(int(refused), 100)  # 10 a second refill: far fewer than 300 in this time
        self.assertEqual(int(answered) + int(refused), 300)
        self.assertEqual(a_rcode, "0")
        self.assertIn(ipaddress.ip_address(addr), FAKE4)
        flood = self.entries("dns-flood")
        self.assertTrue(flood, self.entries())
        self.assertLess(len(flood), 5)  # one line per 10 s window, not one per query

    def test_fake_ranges_from_the_policy_file(self):
        policy = os.path.join(self.cwd, "policy.yaml")
        with open(policy, "w") as f:
            f.write("policies:\n  default:\n    allow: [allowed.test, \"127.0.0.1\"]\n"
                    "transparent:\n  fake_ipv4: 100.72.0.0/16\n  fake_ipv6: \"fd00:5:6::/64\"\n")
        r = self.run_jail("getent ahosts allowed.test | grep STREAM; "
                          "curl -sS --noproxy '*' http://allowed.test:%d/hello" % self.up.port,
                          allow=(), extra=["--policy", policy])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        addrs = sorted((ipaddress.ip_address(x.split()[0]) for x in lines[:2]), key=lambda a: a.version)
        self.assertIn(addrs[0], ipaddress.ip_network("100.72.0.0/16"))
        self.assertIn(addrs[1], ipaddress.ip_network("fd00:5:6::/64"))
        self.assertEqual(lines[2], "hello")

    def test_cmd_cannot_change_the_rules(self):
        script = ("grep CapEff /proc/self/status; nft flush ruleset; echo flush=$?; "
                  "nft add table inet mine; echo add=$?; "
                  "curl -sS --noproxy '*' http://allowed.test:%d/hello" % self.up.port)
        r = self.run_jail(script)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("CapEff:\t0000000000000000\n", r.stdout)
        flush = re.search(r"flush=(\d+)", r.stdout)
        add = re.search(r"add=(\d+)", r.stdout)
        self.assertNotEqual(flush.group(1), "0", r.stdout)
        self.assertNotEqual(add.group(1), "0", r.stdout)
        self.assertIn("Operation not permitted", r.stderr)
        # The rules are still in force: the connection after the attempts went through sluice.
        self.assertTrue(r.stdout.endswith("hello\n"), r.stdout)
        self.assertTrue([e for e in self.entries("decision") if e.get("host") == "allowed.test"])

    def test_sni_or_host_other_than_the_looked_up_name_is_refused(self):
        # Domain fronting: look up an allowed name, then claim another one in the TLS
        # ClientHello or the HTTP Host header. Both connections are reset, never reach sluice's
        # CONNECT, and each leaves a host-mismatch line.
        py = textwrap.dedent("""\
            import socket, ssl
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            s = socket.create_connection(('allowed.test', %d), timeout=10)
            try:
                ctx.wrap_socket(s, server_hostname='other.test'); print('sni: open')
            except ConnectionResetError:
                print('sni: reset')
            """) % self.up.port
        with open(os.path.join(self.cwd, "sni.py"), "w") as f:
            f.write(py)
        r = self.run_jail("python3 sni.py; curl -sS --noproxy '*' -H 'Host: other.test' "
                          "http://allowed.test:%d/hello?fronted; echo curl=$?; "
                          "curl -sS --noproxy '*' -H 'Host: ALLOWED.test:%d' http://allowed.test:%d/hello"
                          % (self.up.port, self.up.port, self.up.port), allow=("allowed.test", "other.test:1", "127.0.0.1"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sni: reset\n", r.stdout)
        self.assertIn("curl=56\n", r.stdout)
        self.assertTrue(r.stdout.endswith("hello\n"), r.stdout)  # the same name in Host is fine
        self.assertEqual(self.seen("/hello?fronted"), [])
        lines = self.entries("host-mismatch")
        self.assertEqual(sorted(e["via"] for e in lines), ["host", "sni"], self.entries())
        for e in lines:
            self.assertEqual((e["looked_up"], e["claimed"], e["reason"], e["verdict"]),
                             ("allowed.test", "other.test", "host-mismatch", "deny"))
            self.assertTrue(is_fake(e["original_dst"].rsplit(":", 1)[0].strip("[]")), e)
        self.assertIn("(host-mismatch: TLS SNI other.test, looked up as allowed.test)", r.stderr)
        self.assertIn("(host-mismatch: HTTP Host other.test, looked up as allowed.test)", r.stderr)
        # Only the honest request became a CONNECT.
        self.assertEqual(len([e for e in self.entries("decision") if e.get("host") == "allowed.test"]), 1)

    def test_original_dst_header_is_taken_from_unix_clients_only(self):
        cfg = textwrap.dedent("""\
            listeners:
              - name: tcp1
                tcp: 127.0.0.1:0
                policy: p
              - name: unix1
                unix: {dir}/u.sock
                policy: p
            policies:
              p:
                default: deny
                allow: [echo.test, "127.0.0.1"]
            resolver:
              servers: ["127.0.0.1:%d"]
            log:
              path: "{log}"
            """) % self.dns.port
        s = self.start_sluice_for_test(cfg)
        req = ("CONNECT echo.test:%d HTTP/1.1\r\nHost: echo.test:%d\r\nX-Sluice-Original-Dst: 198.18.0.9:%d\r\n\r\n"
               % (self.echo.port, self.echo.port, self.echo.port)).encode()
        for where in (s.tcp_port("tcp1"), s.unix_path("unix1")):
            with Raw(where) as c:
                c.send(req)
                self.assertEqual(c.read_head()[0], 200)
        s.wait_log(lambda e: e["event"] == "decision", count=2)
        d = {e["listener"]: e for e in s.log() if e["event"] == "decision"}
        self.assertNotIn("original_dst", d["tcp1"])  # a TCP client cannot claim it
        self.assertEqual(d["unix1"]["original_dst"], "198.18.0.9:%d" % self.echo.port)

    def test_ip_literals_and_udp_in_a_namespace_of_our_own(self):
        # The whole run happens in a fresh user+network namespace whose lo carries 10.77.0.1
        # and fd00:77::1: sluice (outside the jail, inside that namespace) dials them.
        server = textwrap.dedent("""\
            import socket, threading, sys
            def echo(fam, addr):
                l = socket.socket(fam); l.bind((addr, 0)); l.listen()
                def loop():
                    while True:
                        c, _ = l.accept(); c.sendall(c.recv(100)); c.close()
                threading.Thread(target=loop, daemon=True).start()
                return l.getsockname()[1]
            p4 = echo(socket.AF_INET, '10.77.0.1'); p6 = echo(socket.AF_INET6, 'fd00:77::1')
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('10.77.0.1', 0)); u.settimeout(0.5)
            d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); d.bind(('10.77.0.1', 53)); d.settimeout(0.5)
            print(p4, p6, u.getsockname()[1], flush=True)
            sys.stdin.readline()  # the run is over
            got = []
            for s in (u, d):
                try: got.append(s.recv(100))
                except OSError: pass
            print('udp-received', len(got), flush=True)
            """)
        jail = textwrap.dedent("""\
            import socket, sys
            p4, p6, pu = map(int, sys.argv[1:4])
            for host, port in (('10.77.0.1', p4), ('fd00:77::1', p6)):
                s = socket.create_connection((host, port), timeout=10); s.sendall(b'lit ' + host.encode())
                print(s.recv(100).decode())
            try:
                socket.create_connection(('10.77.0.2', p4), timeout=10).recv(10); print('denied literal: open')
            except ConnectionResetError:
                print('denied literal: reset')
            for claimed in ('allowed.test', 'other.test'):
                s = socket.create_connection(('10.77.0.1', p4), timeout=10)
                s.sendall(b'GET / HTTP/1.1\\r\\nHost: ' + claimed.encode() + b'\\r\\n\\r\\n')
                try:
                    print('host %s:' % claimed, s.recv(100)[:14].decode())
                except ConnectionResetError:
                    print('host %s: reset' % claimed)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try: u.sendto(b'x', ('10.77.0.1', pu)); print('udp: sent')
            except PermissionError: print('udp: dropped')
            d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); d.settimeout(5)
            d.sendto(bytes.fromhex('002a01000001000000000000') + b'\\x07allowed\\x04test\\x00\\x00\\x01\\x00\\x01',
                     ('10.77.0.1', 53))
            a = d.recv(512); print('dns answered by the stub', socket.inet_ntoa(a[-4:]))
            """)
        for name, text in (("server.py", server), ("jail.py", jail)):
            with open(os.path.join(self.cwd, name), "w") as f:
                f.write(text)
        outer = textwrap.dedent("""\
            set -e
            ip link set lo up
            ip addr add 10.77.0.1/32 dev lo
            ip addr add fd00:77::1/128 dev lo nodad
            mkfifo go
            python3 server.py < go > ports &
            exec 3> go
            for i in $(seq 100); do [ -s ports ] && break; sleep 0.1; done
            set +e
            %s run --transparent --log %s --allow 10.77.0.1 --allow fd00:77::1 --allow allowed.test \\
              -- python3 jail.py $(cat ports)
            echo "run=$?"
            exec 3>&-
            wait
            cat ports
            """) % (SLUICE, self.log)
        with open(os.path.join(self.cwd, "outer.sh"), "w") as f:
            f.write(outer)
        r = subprocess.run(["unshare", "-rn", "sh", "outer.sh"], cwd=self.cwd, capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "HOME": self.cwd}, timeout=60)
        out = r.stdout
        self.assertIn("run=0", out, r.stderr)
        self.assertIn("lit 10.77.0.1\n", out)
        self.assertIn("lit fd00:77::1\n", out)
        self.assertIn("denied literal: reset\n", out)
        # A real address with an HTTP Host: the name is judged too.
        self.assertIn("host allowed.test: GET / HTTP/1.1\n", out)
        self.assertIn("host other.test: reset\n", out)
        self.assertIn("udp: dropped\n", out)
        self.assertIn("udp-received 0\n", out)  # neither the datagram nor the DNS query got out
        # Counted: the launcher reads the jail's counters once CMD is gone.
        dropped = self.entries("transparent-dropped")
        self.assertEqual(len(dropped), 1, self.entries())
        self.assertEqual(dropped[0]["udp_packets"], 1)
        self.assertIn("sluice: the jail's packet rules dropped 1 UDP (not DNS), 0 ICMP and 0 other packets", r.stderr)
        m = re.search(r"dns answered by the stub (\S+)", out)
        self.assertTrue(m, out)
        self.assertIn(ipaddress.ip_address(m.group(1)), FAKE4)
        d = self.entries("decision")
        p4 = int(re.search(r"^(\d+) \d+ \d+$", out, re.M).group(1))
        by_host = {e["host"]: e for e in d}
        self.assertEqual(by_host["10.77.0.1"]["original_dst"], "10.77.0.1:%d" % p4)
        self.assertEqual(by_host["10.77.0.1"]["status"], 200)
        self.assertEqual(by_host["fd00:77::1"]["status"], 200)
        self.assertTrue(by_host["fd00:77::1"]["original_dst"].startswith("[fd00:77::1]:"))
        self.assertEqual((by_host["10.77.0.2"]["status"], by_host["10.77.0.2"]["reason"]), (403, "not-in-allowlist"))
        self.assertEqual(by_host["10.77.0.2"]["original_dst"], "10.77.0.2:%d" % p4)
        self.assertIn("sluice: denied 10.77.0.2:%d (not-in-allowlist)" % p4, r.stderr)
        hm = self.entries("host-mismatch")
        self.assertEqual(len(hm), 1, hm)
        self.assertEqual((hm[0]["claimed"], hm[0]["claimed_reason"], hm[0]["via"]),
                         ("other.test", "not-in-allowlist", "host"))
        self.assertNotIn("looked_up", hm[0])
        self.assertEqual(hm[0]["original_dst"], "10.77.0.1:%d" % p4)


if __name__ == "__main__":
    import unittest
    unittest.main()
