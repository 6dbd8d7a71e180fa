#!/usr/bin/env python3
"""A stand-in for an OpenAI-compatible chat-completions endpoint (standard library only), for
tests/test_interp_cli.sh. POST /<scenario>/v1/chat/completions answers according to the scenario:

  ok         "[LABEL]: stub label\n[EXPLANATION]: ..." for explainer prompts; for scorer prompts
             (asking for a Python list) a list of 1s, one per "Example i:" line
  flaky      per distinct request body (and scenario): 429 on the first attempt, 500 on the second, then ok
  malformed  status 200 with a body that is not JSON
  nolabel    an [EXPLANATION] line and no [LABEL] line
  hang       sleeps 30 s before answering (the client's timeout must fire)
  slow       sleeps --delay seconds, then ok (concurrency: see max_in_flight)
  pick       500 whenever the prompt holds "FAIL-ME-2", ok otherwise

Every request is appended to --log as one JSON line: scenario, the request body, whether the
Authorization header equalled "Bearer " + $STUB_EXPECT_KEY (the key itself is never logged).
GET /stats returns {"requests": n, "max_in_flight": m}. The chosen port is printed on stdout.
"""
import argparse
import hashlib
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"requests": 0, "in_flight": 0, "max_in_flight": 0, "attempts": {}}


def answer_text(body):
    msgs = body.get("messages", [])
    text = "\n".join(m.get("content", "") for m in msgs)
    if "Python list" in text:
        n = len(re.findall(r"^Example \d+:", msgs[-1].get("content", ""), re.M))
        return "[" + ", ".join(["1"] * n) + "]"
    return "Looking at the texts.\n[LABEL]: stub label\n[EXPLANATION]: The stub explanation of this feature."


def completion(content):
    return {"id": "stub", "object": "chat.completion", "model": "stub",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, payload, raw=False):
        data = payload if raw else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                self.send(200, {"requests": STATE["requests"], "max_in_flight": STATE["max_in_flight"]})
        else:
            self.send(404, {"error": "not found"})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        scenario = self.path.strip("/").split("/")[0]
        try:
            body = json.loads(raw)
        except ValueError:
            self.send(400, {"error": "request body is not JSON"})
            return
        expect = os.environ.get("STUB_EXPECT_KEY")
        auth_ok = expect is not None and self.headers.get("Authorization") == "Bearer " + expect
        digest = hashlib.sha256(scenario.encode() + b"\0" + raw).hexdigest()
        with LOCK:
            STATE["requests"] += 1
            STATE["in_flight"] += 1
            STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
            attempt = STATE["attempts"][digest] = STATE["attempts"].get(digest, 0) + 1
            with open(ARGS.log, "a") as f:
                f.write(json.dumps({"scenario": scenario, "body": body, "auth_ok": auth_ok, "attempt": attempt,
                                    "digest": digest}) + "\n")
        try:
            self.respond(scenario, body, attempt)
        finally:
            with LOCK:
                STATE["in_flight"] -= 1

    def respond(self, scenario, body, attempt):
        if scenario == "flaky" and attempt == 1:
            return self.send(429, {"error": "rate limited"})
        if scenario == "flaky" and attempt == 2:
            return self.send(500, {"error": "internal"})
        if scenario == "malformed":
            return self.send(200, b'{"choices": [{"message": {"content": "[LABEL]: cut', raw=True)
        if scenario == "nolabel":
            return self.send(200, completion("[EXPLANATION]: The feature fires on prepositions before places."))
        if scenario == "hang":
            time.sleep(30)
        if scenario == "slow":
            time.sleep(ARGS.delay)
        if scenario == "pick" and "FAIL-ME-2" in json.dumps(body):
            return self.send(500, {"error": "this one always fails"})
        return self.send(200, completion(answer_text(body)))


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--delay", type=float, default=0.5)
    ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
