#!/usr/bin/env python3
"""A tiny loopback API for the examples' tests: GET /payments needs `Authorization: Bearer <token>`
and answers 401 to a revoked token.

    api_server.py          # prints `api listening on http://127.0.0.1:PORT`, exits on stdin EOF

Admin:
    POST /_api/reset?revoke=N    forget everything; the first N distinct tokens seen are revoked
                                 (answered 401); N=all revokes every token (default 1)
    GET  /_api/stats             {"requests", "unauthorized", "ok", "distinct_tokens"}

Tokens are kept only as SHA-256 digests and never printed.
"""
import hashlib
import http.server
import json
import sys
import threading
import urllib.parse

lock = threading.Lock()
state = {}


def reset(revoke):
    with lock:
        state.clear()
        state.update(revoke=revoke, seen=set(), revoked=set(), requests=0, unauthorized=0, ok=0)


reset(1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/_api/reset":
            return self.reply(404, {"error": "not_found"})
        q = urllib.parse.parse_qs(url.query)
        n = q.get("revoke", ["1"])[0]
        reset(-1 if n == "all" else int(n))
        self.reply(200, {"ok": True})

    def do_GET(self):
        if self.path == "/_api/stats":
            with lock:
                return self.reply(200, {k: state[k] for k in ("requests", "unauthorized", "ok")}
                                  | {"distinct_tokens": len(state["seen"])})
        if self.path != "/payments":
            return self.reply(404, {"error": "not_found"})
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        with lock:
            state["requests"] += 1
            if scheme.lower() != "bearer" or not token:
                state["unauthorized"] += 1
                return self.reply(401, {"error": "invalid_token"})
            digest = hashlib.sha256(token.encode()).digest()
            if digest not in state["seen"]:
                state["seen"].add(digest)
                if state["revoke"] < 0 or len(state["revoked"]) < state["revoke"]:
                    state["revoked"].add(digest)
            if digest in state["revoked"]:
                state["unauthorized"] += 1
                return self.reply(401, {"error": "invalid_token"})
            state["ok"] += 1
        self.reply(200, {"payments": [{"id": "pay_1", "amount": "10.00", "currency": "EUR"}]})


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"api listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until EOF: the test that started us is gone
    server.shutdown()


if __name__ == "__main__":
    main()
