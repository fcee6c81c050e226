#!/usr/bin/env python3
"""A loopback HTTP server that runs git-http-backend (smart HTTP) over a
directory of repositories, for clone and push tests. Stdlib only.

    git_http.py --root DIR [--listen 127.0.0.1:0] [--cert C --key K] [--token T]   prints the port

`serve(..., token=T)` requires `Authorization: Basic base64(x-access-token:T)` on every request
(401 otherwise) and lets pushes in (REMOTE_USER); `server.requests` records every request:
method, path, query, headers, whether it was authorized, and the first 64 KiB of its body
(Content-Length or chunked).
"""
import argparse
import base64
import http.server
import os
import subprocess
import threading

BACKEND = "/usr/lib/git-core/git-http-backend"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."
    token = None  # the Basic password every request must carry, or None
    requests = None  # a list the requests are recorded into, or None

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(length) if length else b""

    def run_backend(self):
        path, _, query = self.path.partition("?")
        body = self.read_body()
        authorized = True
        if self.token is not None:
            want = "Basic " + base64.b64encode(("x-access-token:" + self.token).encode()).decode()
            authorized = self.headers.get("Authorization") == want
        if self.requests is not None:
            self.requests.append({"method": self.command, "path": path, "query": query,
                                  "headers": list(self.headers.items()), "authorized": authorized,
                                  "body": body[:65536], "body_len": len(body)})
        if not authorized:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
        }
        if self.token is not None:
            env["REMOTE_USER"] = "x-access-token"  # http-backend then takes pushes
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run([BACKEND], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = run_backend
    do_POST = run_backend


def serve(root, host="127.0.0.1", port=0, cert=None, key=None, token=None):
    """`cert`/`key`: serve HTTPS with that certificate (the handshake runs in the handler thread).
    `token`: required as the Basic password (user x-access-token); the server's `requests` list
    records every request."""
    records = []
    handler = type("GitHandler", (Handler,), {"root": os.path.abspath(root), "token": token, "requests": records})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.requests = records
    if cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--cert", help="serve HTTPS with this certificate (and --key)")
    ap.add_argument("--key")
    ap.add_argument("--token", help="require Basic x-access-token:TOKEN; take pushes")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = serve(args.root, host, int(port), cert=args.cert, key=args.key, token=args.token)
    server.requests = None  # a long-running server records nothing
    server.RequestHandlerClass.requests = None
    print(server.server_address[1], flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
