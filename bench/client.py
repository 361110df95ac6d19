"""Tiny HTTP client for the benchmark scripts (standard library only, keep-alive)."""
import http.client
import json
import sys
import time


class Api:
    def __init__(self, base: str, token: str | None = None):
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port))
        self.token = token

    def call(self, method, path, body=None, content_type="application/json"):
        headers = {"Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        self.conn.request(method, path, body=data, headers=headers)
        res = self.conn.getresponse()
        text = res.read()
        if res.status >= 400:
            raise SystemExit(f"{method} {path}: {res.status} {text[:300]!r}")
        return json.loads(text) if text else None


def login(base, login, password):
    api = Api(base)
    api.call("POST", "/v1/accounts", {"login": login, "password": password})
    return api.call("POST", "/v1/sessions", {"login": login, "password": password})["access_token"]


def main():
    command, base = sys.argv[1], sys.argv[2]
    password = "correct horse battery staple"
    if command == "setup":
        # Prints: token service_id
        login_name = sys.argv[3]
        token = login(base, login_name, password)
        api = Api(base, token)
        org = api.call("GET", "/v1/organizations")["items"][0]["id"]
        domain = sys.argv[4]
        service = api.call("POST", f"/v1/organizations/{org}/mail-services", {"domain": domain, "pack": "premium"})
        print(token, service["id"])
    elif command == "one-by-one":
        token, service, count = sys.argv[3], sys.argv[4], int(sys.argv[5])
        api = Api(base, token)
        started = time.perf_counter()
        for i in range(count):
            api.call("POST", f"/v1/mail-services/{service}/addresses",
                     {"local_part": f"user{i:06d}", "for": "several_users", "password": password})
        elapsed = time.perf_counter() - started
        print(f"created {count} addresses one by one in {elapsed:.2f} s: {1000 * elapsed / count:.1f} ms per address")
    elif command == "import":
        token, service, count, prefix = sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
        api = Api(base, token)
        rows = "".join(f"{prefix}{i:06d},{password}\n" for i in range(count))
        started = time.perf_counter()
        report = api.call("POST", f"/v1/mail-services/{service}/addresses/import",
                          "local_part,password\n" + rows, content_type="text/csv")
        elapsed = time.perf_counter() - started
        print(f"imported {report['summary']['created']} of {count} rows in {elapsed:.2f} s: {1000 * elapsed / count:.2f} ms per address")
    elif command == "login-time":
        api = Api(base)
        login_name, n = sys.argv[3], int(sys.argv[4])
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            api.call("POST", "/v1/sessions", {"login": login_name, "password": password})
            samples.append(time.perf_counter() - started)
        samples.sort()
        print(f"one login (≈ one argon2 verification): median {1000 * samples[n // 2]:.1f} ms")
    elif command == "cursor":
        token, service, skip = sys.argv[3], sys.argv[4], int(sys.argv[5])
        api = Api(base, token)
        cursor = None
        seen = 0
        while seen < skip:
            page = api.call("GET", f"/v1/mail-services/{service}/addresses?limit=200" + (f"&cursor={cursor}" if cursor else ""))
            seen += len(page["items"])
            cursor = page["next_cursor"]
        print(cursor)


if __name__ == "__main__":
    main()
