"""Issue 17 benchmark driver: a webhook receiver (standard library HTTP server) and clients
making changes through one or more Postier instances. Two phases on one endpoint:

1. live: changes from CLIENTS clients; reports the change rate, the delivery rate and the time
   from each change's commit (its 200 answer reaching the client) to the receiver's 2xx;
2. backlog: the receiver holds every request until EVENTS more changes are queued (the first
   deliveries wait in flight, the rest in the table), then answers at once: the deliveries per
   second while the backlog drains.

Usage: python3 bench/webhooks.py EVENTS CLIENTS BASE_URL [BASE_URL…]
"""
import http.client
import http.server
import json
import sys
import threading
import time

PASSWORD = "correct horse battery staple"
received = {}
lock = threading.Lock()
all_in = threading.Event()
gate = threading.Event()
gate.set()
expected = 0


class Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        gate.wait()
        now = time.time()
        name = json.loads(body)["data"]["details"]["name"]
        with lock:
            received.setdefault(name, now)
            if len(received) >= expected:
                all_in.set()
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def call(conn, method, path, token=None, body=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    res = conn.getresponse()
    text = res.read()
    if res.status >= 400:
        raise SystemExit(f"{method} {path}: {res.status} {text[:300]!r}")
    return json.loads(text) if text else None


def connect(base):
    host, port = base.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port))


def main():
    global expected
    events, clients, bases = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = connect(bases[0])
    login = {"login": "bench@example.com", "password": PASSWORD}
    call(api, "POST", "/v1/accounts", body=login)
    token = call(api, "POST", "/v1/sessions", body=login)["access_token"]
    org = call(api, "GET", "/v1/organizations", token)["items"][0]["id"]
    call(api, "POST", f"/v1/organizations/{org}/webhooks", token,
         {"url": f"http://127.0.0.1:{server.server_port}/hook", "event_types": ["organization.renamed"]})
    per_client = events // clients

    def changes(prefix):
        committed = {}

        def client(n):
            conn = connect(bases[n % len(bases)])
            for i in range(per_client):
                name = f"{prefix}{n}-{i}"
                call(conn, "PATCH", f"/v1/organizations/{org}", token, {"name": name})
                committed[name] = time.time()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return committed

    def wait_all(count):
        global expected
        if not all_in.wait(timeout=300):
            raise SystemExit(f"only {len(received)} of {count} deliveries arrived")

    # 1. live
    expected = per_client * clients
    started = time.time()
    committed = changes("live")
    written = time.time()
    wait_all(expected)
    last = max(received.values())
    latencies = sorted(1000 * (received[name] - committed[name]) for name in committed)
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(f"{len(bases)} instance(s), live, {expected} changes from {clients} clients: "
          f"changes {expected / (written - started):.0f}/s, "
          f"delivered {expected / (last - started):.0f}/s, "
          f"commit→2xx p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1]:.1f} ms")

    # 2. backlog
    with lock:
        received.clear()
        all_in.clear()
        expected = per_client * clients
    gate.clear()
    changes("backlog")
    released = time.time()
    gate.set()
    wait_all(expected)
    last = max(received.values())
    print(f"{len(bases)} instance(s), backlog of {expected}: "
          f"drained at {expected / (last - released):.0f} deliveries/s")
    server.shutdown()


if __name__ == "__main__":
    main()
