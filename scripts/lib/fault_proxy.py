"""A fault-injecting HTTP proxy for S3 on loopback: forwards every request byte for byte to an upstream server
(moto), so SigV4 signatures still verify, and on command answers chosen operations with faults instead. It serves
any HTTP server the same way (the status server's tus uploads: PATCH and OPTIONS are forwarded too).

Usage: python3 fault_proxy.py --upstream http://127.0.0.1:PORT [--host 127.0.0.1] [--port 0] [--port-file FILE]
Prints "listening on http://HOST:PORT" (and writes the port to --port-file) once it accepts connections.

Control, on the proxy's own port (never forwarded):
  POST /__faults__   JSON {"seed": 7, "rules": [RULE, ...]}   replaces the rules (and reseeds the generator)
  DELETE /__faults__                                          removes every rule
  GET /__faults__                                             {"rules": [...], "injected": {"OPERATION ACTION": n}}

A RULE: {"operation": OP, "action": ACTION, "times": N, "probability": P, "path_contains": TEXT, "method": M, "skip": K}
  OP      CompleteMultipartUpload | UploadPart | CreateMultipartUpload | PutObject | CopyObject | UploadPartCopy |
          GetObject | HeadObject | DeleteObject | DeleteObjects | ListObjects | any
  ACTION  error-200-before  answer 200 with whitespace and an <Error> document, without forwarding
          error-200-after   forward, then replace the answer with 200 + whitespace + <Error> (the operation happened)
          empty-200-before  answer 200 with whitespace only, without forwarding (nothing happened)
          empty-200-after   forward, then answer 200 with whitespace only (no result document)
          500               answer 500 InternalError without forwarding
          503               answer 503 SlowDown without forwarding
          reset-before      close the connection without an answer, without forwarding
          reset-after       forward, then close the connection without an answer
          cut-body          forward, relay the status, headers and the first half of the body, then close
                            the connection (a download cut mid-way)
          hang              never answer and never forward; hold the connection until the client closes it
                            (a request the server is slow to serve: the tests' way to keep a worker mid-job)
          cut-request       forward the request line, the headers and the first half of the body, then close both
                            connections without an answer (an upload whose connection dropped mid-body; the client
                            gets the first bytes of a status line, so it cannot resend the request unseen)
  times        how many requests the rule hits at most (default: unlimited)
  probability  chance that a matching request is hit (default 1), drawn from the seeded generator
  path_contains  only requests whose path (bucket and key) contains this text (default: every path)
  method       only requests with this HTTP method (default: every method)
  skip         how many matching requests pass untouched before the rule starts hitting (default: 0)

Standard library only; one thread per connection.
"""
import argparse
import http.client
import json
import random
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ERROR_BODY = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>"
              b"<Message>We encountered an internal error. Please try again.</Message>"
              b"<RequestId>FAULTPROXY</RequestId></Error>")
SLOWDOWN_BODY = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                 b"<Message>Please reduce your request rate.</Message><RequestId>FAULTPROXY</RequestId></Error>")
# S3 sends whitespace while it works on a CompleteMultipartUpload, then the document.
PADDING = b"\n" + b" " * 64 + b"\n"

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.random = random.Random(0)
        self.injected = {}

    def configure(self, document):
        with self.lock:
            self.rules = [dict(rule) for rule in document.get("rules", [])]
            self.random = random.Random(document.get("seed", 0))

    def choose(self, operation, path, method=None):
        """The action to inject for this request, or None."""
        with self.lock:
            for rule in self.rules:
                if rule.get("operation", "any") not in ("any", operation):
                    continue
                if rule.get("path_contains") and rule["path_contains"] not in path:
                    continue
                if rule.get("method") and rule["method"] != method:
                    continue
                if rule.get("skip", 0) > 0:
                    rule["skip"] -= 1
                    continue
                if rule.get("times") is not None and rule["times"] <= 0:
                    continue
                if self.random.random() >= float(rule.get("probability", 1)):
                    continue
                if rule.get("times") is not None:
                    rule["times"] -= 1
                key = f"{operation} {rule['action']}"
                self.injected[key] = self.injected.get(key, 0) + 1
                return rule["action"]
        return None

    def describe(self):
        with self.lock:
            return {"rules": self.rules, "injected": self.injected}


def operation_of(method, path, query, headers):
    params = {part.split("=", 1)[0] for part in query.split("&") if part}
    copy = "x-amz-copy-source" in {name.lower() for name in headers}
    bucket_only = path.strip("/").count("/") == 0
    if method == "POST" and "uploadId" in params:
        return "CompleteMultipartUpload"
    if method == "POST" and "uploads" in params:
        return "CreateMultipartUpload"
    if method == "POST" and "delete" in params:
        return "DeleteObjects"
    if method == "PUT" and "partNumber" in params:
        return "UploadPartCopy" if copy else "UploadPart"
    if method == "PUT":
        return "CopyObject" if copy else "PutObject"
    if method == "GET" and (bucket_only or "list-type" in params or "uploads" in params):
        return "ListObjects"
    if method == "GET":
        return "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "DeleteObject"
    return "other"


def make_handler(upstream, state):
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: tests read their own output
            pass

        def _read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(body)
                    body += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _answer(self, status, body, extra=()):
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _reset(self):
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            self.connection.close()

        def _hang(self):
            self.close_connection = True
            while True:
                readable, _, _ = select.select([self.connection], [], [], 1.0)
                try:
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        return
                except OSError:
                    return

        def _control(self, body):
            if self.command == "POST":
                state.configure(json.loads(body or b"{}"))
            elif self.command == "DELETE":
                state.configure({})
            self._answer(200, json.dumps(state.describe()).encode())

        def _forward(self, body):
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
            headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
            headers.pop("Transfer-Encoding", None)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                headers["Content-Length"] = str(len(body))
            connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders(body if body else None)
            return connection, connection.getresponse()

        def _relay(self, response, connection):
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "transfer-encoding":
                    self.send_header(name, value)
            length = response.getheader("Content-Length")
            if length is None and self.command != "HEAD":
                data = response.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self.end_headers()
                if self.command != "HEAD":
                    while True:
                        chunk = response.read(1 << 20)
                        if not chunk:
                            break
                        self.wfile.write(chunk)
            connection.close()

        def _cut_request(self, body):
            upstream = socket.create_connection((target.hostname, target.port), timeout=30)
            headers = {name: value for name, value in self.headers.items()
                       if name.lower() not in HOP_BY_HOP and name.lower() != "transfer-encoding"}
            headers["Content-Length"] = str(len(body))
            head = f"{self.command} {self.path} HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            upstream.sendall(head.encode("latin-1") + b"\r\n" + body[: len(body) // 2])
            time.sleep(0.5)  # the server takes in what arrived before the connection drops
            upstream.close()
            # The first bytes of a status line before the reset: a client that got nothing back on a reused
            # keep-alive connection may take it for one the server had closed and resend the request on its own
            # (Chromium does), and the cut would never reach the code under test.
            try:
                self.wfile.write(b"HTTP/1.1 ")
                self.wfile.flush()
            except OSError:
                pass
            return self._reset()

        def _cut(self, response, connection):
            data = response.read()
            connection.close()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() not in ("transfer-encoding", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            return self._reset()

        def _handle(self):
            body = self._read_body()
            path, _, query = self.path.partition("?")
            if path.startswith("/__faults__"):
                return self._control(body)
            action = state.choose(operation_of(self.command, path, query, self.headers.keys()), path, self.command)
            if action == "cut-request":
                return self._cut_request(body)
            if action == "hang":
                return self._hang()
            if action == "reset-before":
                return self._reset()
            if action == "500":
                return self._answer(500, ERROR_BODY)
            if action == "503":
                return self._answer(503, SLOWDOWN_BODY)
            if action == "error-200-before":
                return self._answer(200, PADDING + ERROR_BODY)
            if action == "empty-200-before":
                return self._answer(200, PADDING)
            try:
                connection, response = self._forward(body)
            except OSError:
                return self._answer(502, ERROR_BODY)
            if action == "cut-body":
                return self._cut(response, connection)
            if action in ("error-200-after", "empty-200-after", "reset-after"):
                response.read()
                connection.close()
                if action == "reset-after":
                    return self._reset()
                return self._answer(200, PADDING + (ERROR_BODY if action == "error-200-after" else b""))
            self._relay(response, connection)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    arguments = parser.parse_args()
    state = State()
    server = ThreadingHTTPServer((arguments.host, arguments.port), make_handler(arguments.upstream, state))
    server.daemon_threads = True
    port = server.server_address[1]
    if arguments.port_file:
        with open(arguments.port_file, "w") as handle:
            handle.write(str(port))
    print(f"listening on http://{arguments.host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
