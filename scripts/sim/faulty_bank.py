"""A fault-injecting HTTP proxy in front of `vouch-bank`, for the fault campaign.

Each upload (POST /v1/batches) meets one of these, drawn at random with the given weights:
  ok       forwarded, the bank's answer returned;
  500      answered 500 without reaching the bank;
  503      answered 503 with Retry-After: 1, without reaching the bank;
  429      answered 429 with Retry-After: 1, without reaching the bank;
  slow     forwarded after a 1–3 s pause (under the agent's 5 s timeout);
  reset    the connection is reset (RST) before anything reaches the bank;
  lost     forwarded — the bank commits and signs a receipt — then the connection is closed without an
           answer: the agent must resend, and the bank answer "duplicate" with the same receipt.
`clean()` turns faults off, so the backlog can drain at the end.
"""
import http.client
import random
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = {"ok": 40, "500": 10, "503": 10, "429": 8, "slow": 8, "reset": 10, "lost": 14}


class FaultyBank:
    def __init__(self, bank_port, seed, weights=None):
        self.bank_port = bank_port
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.weights = dict(weights or FAULTS)
        self.counts = {name: 0 for name in self.weights}
        self.faulty = True
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.forward(b"")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fault = proxy.draw()
                if fault in ("500", "503", "429"):
                    self.send_response(int(fault))
                    if fault != "500":
                        self.send_header("Retry-After", "1")
                    payload = b'{"error":{"code":"E_INJECTED","message":"fault campaign"}}'
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if fault == "slow":
                    time.sleep(proxy.uniform(1.0, 3.0))
                self.forward(body, answer=(fault != "lost"))

            def forward(self, body, answer=True):
                connection = http.client.HTTPConnection("127.0.0.1", proxy.bank_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                if not answer:
                    self.close_connection = True
                    return
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # The agent is killed mid-request on purpose: a broken pipe here is the point, not a bug.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def draw(self):
        with self.lock:
            if not self.faulty:
                name = "ok"
            else:
                names = list(self.weights)
                name = self.rng.choices(names, weights=[self.weights[n] for n in names])[0]
            self.counts[name] = self.counts.get(name, 0) + 1
            return name

    def uniform(self, a, b):
        with self.lock:
            return self.rng.uniform(a, b)

    def clean(self):
        with self.lock:
            self.faulty = False

    def close(self):
        self.server.shutdown()
        self.server.server_close()
