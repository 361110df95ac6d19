"""A mixed write load, bounded in time and in count, with a fault injected in the middle
(bench/faults.sh), then a check that every write that got a 2xx answer is in the database
and that no import is half-written. Standard library only.

Writes: sign-ups (an account), address creations (an address), atomic CSV imports of
IMPORT_ROWS rows (all of them or none). Every answer is classified: 2xx (acknowledged),
503 problem+json with Retry-After (refused, fine), proxy errors and cut connections (not
acknowledged, fine while an instance dies), any 500 or other answer (a failure), any
answer slower than HANG_SECS (a failure).

Usage: python3 bench/faults.py --base URL --database postgres://…|sqlite:PATH
       --seconds S --max-writes N --workers W [--fault-at T --fault 'shell command']
"""
import argparse
import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, __import__("os").path.dirname(__file__))
from cluster import PASSWORD, call  # noqa: E402

IMPORT_ROWS = 10
HANG_SECS = 5.0


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {"account": [], "address": [], "import": []}
        self.attempted_imports = []
        self.answers = {}
        self.failures = []
        self.slowest = 0.0
        self.writes = 0

    def note(self, kind, answer, elapsed, key):
        with self.lock:
            self.slowest = max(self.slowest, elapsed)
            label = classify(answer)
            self.answers[label] = self.answers.get(label, 0) + 1
            if label == "2xx":
                self.acked[kind].append(key)
            elif label not in ("503", "proxy", "cut"):
                self.failures.append(f"{kind}: {label}: {str(answer and answer.body)[:200]}")
            if elapsed > HANG_SECS:
                self.failures.append(f"{kind}: answered after {elapsed:.1f} s ({label})")


def classify(answer):
    if answer is None:
        return "cut"
    if 200 <= answer.status < 300:
        return "2xx"
    problem = answer.headers.get("content-type", "").startswith("application/problem+json")
    if answer.status == 503 and problem:
        return "503" if "retry-after" in answer.headers else "503 without Retry-After"
    if answer.status in (502, 503, 504) and not problem:
        return "proxy"  # haproxy: the instance died under the request, or none is up yet
    return f"{answer.status} {answer.body.get('code') if isinstance(answer.body, dict) else ''}"


def attempt(base, method, path, body, token=None, content_type="application/json"):
    try:
        return call(base, method, path, body, token, content_type=content_type, timeout=HANG_SECS * 4)
    except (OSError, ValueError):  # refused, reset, cut mid-answer: not acknowledged
        return None


def setup(base, n):
    """n owners, each with a premium mail service; answers (token, service id, domain)."""
    owners = []
    for _ in range(n):
        login = f"faults-{uuid.uuid4().hex[:10]}@example.com"
        call(base, "POST", "/v1/accounts", {"login": login, "password": PASSWORD}).expect(201)
        token = call(base, "POST", "/v1/sessions", {"login": login, "password": PASSWORD}).expect(200)["access_token"]
        org = call(base, "GET", "/v1/organizations", token=token).expect(200)["items"][0]["id"]
        domain = f"f{uuid.uuid4().hex[:10]}.example"
        service = call(base, "POST", f"/v1/organizations/{org}/mail-services",
                       {"domain": domain, "pack": "premium"}, token).expect(201)
        owners.append((token, service["id"], domain))
    return owners


def worker(base, owners, deadline, budget, tally):
    rng = random.Random()
    while time.monotonic() < deadline:
        with tally.lock:
            if tally.writes >= budget:
                return
            tally.writes += 1
        token, service, domain = rng.choice(owners)
        kind = rng.choice(["account", "address", "address", "import"])
        started = time.monotonic()
        if kind == "account":
            key = f"load-{uuid.uuid4().hex[:12]}@example.com"
            answer = attempt(base, "POST", "/v1/accounts", {"login": key, "password": PASSWORD})
        elif kind == "address":
            local = f"a{uuid.uuid4().hex[:12]}"
            key = f"{local}@{domain}"
            answer = attempt(base, "POST", f"/v1/mail-services/{service}/addresses",
                             {"local_part": local, "for": "several_users", "password": PASSWORD}, token)
        else:
            prefix = f"i{uuid.uuid4().hex[:8]}"
            key = (prefix, domain)
            with tally.lock:
                tally.attempted_imports.append(key)
            rows = "".join(f"{prefix}x{i:02d},{PASSWORD}\n" for i in range(IMPORT_ROWS))
            answer = attempt(base, "POST", f"/v1/mail-services/{service}/addresses/import",
                             "local_part,password\n" + rows, token, content_type="text/csv")
        tally.note(kind, answer, time.monotonic() - started, key)


class Store:
    def __init__(self, url):
        self.url = url

    def scalar(self, sql, args):
        if self.url.startswith("sqlite:"):
            with sqlite3.connect(self.url.removeprefix("sqlite:")) as db:
                return db.execute(sql.replace("%s", "?"), args).fetchone()[0]
        quoted = sql.replace("%s", "{}").format(*("'" + a.replace("'", "''") + "'" for a in args))
        out = subprocess.run(["psql", "-At", self.url, "-c", quoted], check=True, capture_output=True, text=True)
        return int(out.stdout.strip())


def verify(store, tally):
    lost = []
    found = 0
    for login in tally.acked["account"]:
        if store.scalar("SELECT COUNT(*) FROM accounts WHERE login = %s", (login,)) == 1:
            found += 1
        else:
            lost.append(("account", login))
    for address in tally.acked["address"]:
        if store.scalar("SELECT COUNT(*) FROM addresses WHERE address = %s", (address,)) == 1:
            found += 1
        else:
            lost.append(("address", address))
    half = []
    acked_imports = set(tally.acked["import"])
    for prefix, domain in tally.attempted_imports:
        n = store.scalar("SELECT COUNT(*) FROM addresses WHERE address LIKE %s",
                         (f"{prefix}x%@{domain}",))
        if n not in (0, IMPORT_ROWS):
            half.append((prefix, n))
        if (prefix, domain) in acked_imports:
            if n == IMPORT_ROWS:
                found += 1
            else:
                lost.append(("import", prefix))
    return found, lost, half


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--max-writes", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--owners", type=int, default=4)
    parser.add_argument("--fault-at", type=float)
    parser.add_argument("--fault")
    args = parser.parse_args()
    owners = setup(args.base, args.owners)
    tally = Tally()
    deadline = time.monotonic() + args.seconds
    threads = [threading.Thread(target=worker, args=(args.base, owners, deadline, args.max_writes, tally))
               for _ in range(args.workers)]
    for t in threads:
        t.start()
    if args.fault:
        time.sleep(args.fault_at or args.seconds / 3)
        print(f"fault at {args.fault_at or args.seconds / 3:.0f} s: {args.fault}", flush=True)
        subprocess.run(args.fault, shell=True, check=False)
    for t in threads:
        t.join()
    found, lost, half = verify(Store(args.database), tally)
    acknowledged = sum(len(v) for v in tally.acked.values())
    print("answers: " + json.dumps(dict(sorted(tally.answers.items()))))
    print(f"writes attempted {tally.writes}: acknowledged {acknowledged} "
          f"({len(tally.acked['account'])} sign-ups, {len(tally.acked['address'])} addresses, "
          f"{len(tally.acked['import'])} imports of {IMPORT_ROWS}), found {found}, lost {len(lost)}")
    print(f"imports attempted {len(tally.attempted_imports)}, half-written {len(half)}; "
          f"slowest answer {tally.slowest:.2f} s")
    for item in lost[:10]:
        print(f"LOST {item}")
    for item in half[:10]:
        print(f"HALF-WRITTEN {item}")
    for failure in tally.failures[:10]:
        print(f"FAILURE {failure}")
    bad = lost or half or tally.failures
    print("FAIL" if bad else "ok")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
