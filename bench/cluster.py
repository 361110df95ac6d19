"""The main flows of Postier against several instances behind a round-robin load balancer
(bench/instances.sh starts them), standard library only. Each flow is a function
registered with @flow; it raises AssertionError when the cluster does not behave as one
instance would. A later feature adds its flow the same way:

    @flow("name")
    def name(c: Cluster):
        token, service, domain, org = c.owner()
        ...

Usage: python3 bench/cluster.py --lb URL --instances P1,P2,P3 --policy Q1,Q2,Q3
       --database URL [flow…]   (no flow: all of them, in order)
"""
import argparse
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import uuid

PASSWORD = "correct horse battery staple"
# README "Several instances": a logout or a revocation takes effect on every instance
# within session_cache_millis (1 s); the policy service's 24 h counts within 2 s.
SESSION_BOUND = 1.1
# POSTIER_REFRESH_REUSE_GRACE_SECS of the instances (bench/instances.sh), plus a margin.
REUSE_GRACE = 2.2
POLICY_BOUND = 2.1


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def instance(self):
        return self.headers.get("x-postier-instance")

    def expect(self, *statuses):
        assert self.status in statuses, f"expected {statuses}, got {self.status}: {self.body}"
        return self.body


def call(base, method, path, body=None, token=None, content_type="application/json", timeout=30,
         headers=None):
    """One request on a new connection, so that the balancer picks the next instance."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    headers = {"Content-Type": content_type, **(headers or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    try:
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        text = res.read()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode(errors="replace")
        return Answer(res.status, {k.lower(): v for k, v in res.getheaders()}, parsed)
    finally:
        conn.close()


class Cluster:
    def __init__(self, lb, instances, policy, database):
        self.lb = lb
        self.instances = [f"http://127.0.0.1:{p}" for p in instances]
        self.policy = [int(p) for p in policy]
        self.database = database
        self.run = uuid.uuid4().hex[:8]

    def call(self, method, path, body=None, token=None, **kw):
        return call(self.lb, method, path, body, token, **kw)

    def on(self, index, method, path, body=None, token=None, **kw):
        """Straight to one instance, bypassing the balancer."""
        return call(self.instances[index], method, path, body, token, **kw)

    def sql(self, query):
        out = subprocess.run(["psql", "-At", self.database, "-c", query], check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()

    def login_name(self, what):
        return f"{what}-{self.run}-{uuid.uuid4().hex[:6]}@example.com"

    def account(self, what="user"):
        """Signs up and logs in a new account; answers (login, session)."""
        login = self.login_name(what)
        self.call("POST", "/v1/accounts", {"login": login, "password": PASSWORD}).expect(201)
        session = self.call("POST", "/v1/sessions", {"login": login, "password": PASSWORD}).expect(200)
        return login, session

    def owner(self, pack="premium"):
        """An account with a mail service on a domain of its own: (token, service id, domain,
        organization id)."""
        _, session = self.account("owner")
        token = session["access_token"]
        org = self.call("GET", "/v1/organizations", token=token).expect(200)["items"][0]["id"]
        domain = f"d{uuid.uuid4().hex[:10]}.example"
        service = self.call("POST", f"/v1/organizations/{org}/mail-services",
                            {"domain": domain, "pack": pack}, token).expect(201)
        return token, service["id"], domain, org


FLOWS = {}


def flow(name):
    def register(fn):
        FLOWS[name] = fn
        return fn
    return register


def concurrently(n, fn):
    """Runs fn(i) for i in 0..n in threads released together; answers the results."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        results[i] = fn(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@flow("spread")
def spread(c):
    served = {c.call("GET", "/healthz").instance for _ in range(3 * len(c.instances))}
    assert len(served) == len(c.instances), f"requests reached only {served}"


@flow("sessions")
def sessions(c):
    login, session = c.account()
    token = session["access_token"]
    # Every instance accepts the token (the JWT secret is shared through the database).
    for i in range(len(c.instances)):
        c.on(i, "GET", "/v1/me", token=token).expect(200)
    # Refresh rotates on one instance. Within the reuse grace (two tabs), every other
    # instance hands out the same successor (the grace lives in the database); past it, a
    # reuse is refused and revokes the family.
    fresh = c.call("POST", "/v1/sessions/refresh", {"refresh_token": session["refresh_token"]}).expect(200)
    for i in range(1, len(c.instances)):
        again = c.on(i, "POST", "/v1/sessions/refresh",
                     {"refresh_token": session["refresh_token"]}).expect(200)
        assert again["refresh_token"] == fresh["refresh_token"], (i, again)
    time.sleep(REUSE_GRACE)
    c.on(1, "POST", "/v1/sessions/refresh", {"refresh_token": session["refresh_token"]}).expect(401)
    # Reusing it revoked the family: the fresh tokens stop too, everywhere.
    time.sleep(SESSION_BOUND)
    for i in range(len(c.instances)):
        c.on(i, "GET", "/v1/me", token=fresh["access_token"]).expect(401)
    # A new session, then a logout through the balancer, seen by every instance.
    session = c.call("POST", "/v1/sessions", {"login": login, "password": PASSWORD}).expect(200)
    token = session["access_token"]
    for i in range(len(c.instances)):
        c.on(i, "GET", "/v1/me", token=token).expect(200)
    c.call("DELETE", "/v1/sessions/current", token=token).expect(204)
    time.sleep(SESSION_BOUND)
    for i in range(len(c.instances)):
        c.on(i, "GET", "/v1/me", token=token).expect(401)
        c.on(i, "POST", "/v1/sessions/refresh", {"refresh_token": session["refresh_token"]}).expect(401)
    # Concurrent refreshes of one token: one rotation; whoever else succeeds gets its
    # successor (the grace), never a second live token.
    session = c.call("POST", "/v1/sessions", {"login": login, "password": PASSWORD}).expect(200)
    answers = concurrently(6, lambda i: c.on(i % len(c.instances), "POST", "/v1/sessions/refresh",
                                             {"refresh_token": session["refresh_token"]}))
    issued = {a.body["refresh_token"] for a in answers if a.status == 200}
    assert len(issued) == 1, f"concurrent refreshes: {[(a.status, a.body) for a in answers]}"


@flow("throttle")
def throttle(c):
    # The instances run with POSTIER_THROTTLE__FAILURES_PER_LOGIN=5 (bench/instances.sh).
    login, _ = c.account()
    statuses = [c.call("POST", "/v1/sessions", {"login": login, "password": "wrong " + PASSWORD}).status
                for _ in range(5)]
    assert statuses == [401] * 5, statuses
    for i in range(len(c.instances)):
        answer = c.on(i, "POST", "/v1/sessions", {"login": login, "password": PASSWORD})
        assert answer.status == 429 and "retry-after" in answer.headers, (i, answer.status, answer.body)


@flow("invitations")
def invitations(c):
    token, service, _, org = c.owner()
    address = c.call("POST", f"/v1/mail-services/{service}/addresses",
                     {"local_part": "team", "for": "several_users", "password": PASSWORD}, token).expect(201)
    invitee, session = c.account("invitee")
    # Joining an organization takes the invitee's consent, and only a verified login is
    # matched to in-app invitations: verify it as its e-mailed link would, then accept the
    # membership on another instance than the one that invited.
    c.sql(f"UPDATE accounts SET login_verified = TRUE WHERE login = '{invitee}'")
    time.sleep(SESSION_BOUND)
    member = c.call("POST", f"/v1/organizations/{org}/members", {"login": invitee, "role": "user"},
                    token).expect(202)
    mine = c.on(2, "GET", "/v1/me/member-invitations", token=session["access_token"]).expect(200)
    assert [i["id"] for i in mine["items"]] == [member["id"]], mine
    c.on(2, "POST", f"/v1/member-invitations/{member['id']}/accept",
         token=session["access_token"]).expect(200)
    invitation = c.call("POST", f"/v1/addresses/{address['id']}/invitations",
                        {"invitee": {"login": invitee}, "permissions": ["send_email"]}, token).expect(201)
    waiting = c.on(1, "GET", "/v1/me/invitations", token=session["access_token"]).expect(200)
    assert [i["id"] for i in waiting["items"]] == [invitation["id"]], waiting
    # Accepted twice at once on two instances: once.
    answers = concurrently(2, lambda i: c.on(i, "POST", f"/v1/invitations/{invitation['id']}/accept",
                                             token=session["access_token"]).status)
    assert sorted(answers)[0] in (200, 201) and sorted(answers)[1] == 409, answers
    mine = c.on(2 % len(c.instances), "GET", "/v1/me/addresses", token=session["access_token"]).expect(200)
    assert address["id"] in [a["id"] for a in mine["items"]], mine


@flow("share_links")
def share_links(c):
    token, service, _, _ = c.owner()
    address = c.call("POST", f"/v1/mail-services/{service}/addresses",
                     {"local_part": "shared", "for": "several_users", "password": PASSWORD}, token).expect(201)
    link = c.call("POST", f"/v1/addresses/{address['id']}/share-links",
                  {"permissions": ["send_email"], "max_uses": 1}, token).expect(201)
    redeemers = [c.account("redeemer")[1]["access_token"] for _ in range(6)]
    answers = concurrently(len(redeemers), lambda i: c.call(
        "POST", "/v1/share-links/redeem", {"token": link["token"]}, redeemers[i]))
    statuses = sorted(a.status for a in answers)
    winners = [a for a in answers if a.status < 300]
    assert len(winners) == 1, f"single-use link redeemed by {statuses}"
    assert all(a.status == 410 and a.body["code"] == "share_link_used_up" for a in answers if a.status >= 300), statuses
    users = int(c.sql(f"SELECT COUNT(*) FROM accesses WHERE address_id = '{address['id']}' AND origin = 'share_link'"))
    assert users == 1, f"{users} accesses from the link"


@flow("imports")
def imports(c):
    token, service, _, _ = c.owner()
    rows = "".join(f"imp{i:04d},{PASSWORD}\n" for i in range(200))
    report = c.call("POST", f"/v1/mail-services/{service}/addresses/import",
                    "local_part,password\n" + rows, token, content_type="text/csv").expect(200, 201)
    assert report["summary"]["created"] == 200, report["summary"]
    stored = int(c.sql(f"SELECT COUNT(*) FROM addresses WHERE mail_service_id = '{service}'"))
    assert stored == 200, stored
    # The same rows again, through another instance: every one is taken, nothing is written.
    again = c.call("POST", f"/v1/mail-services/{service}/addresses/import",
                   "local_part,password\n" + rows, token, content_type="text/csv")
    assert again.status in (200, 409, 422), again.status
    assert int(c.sql(f"SELECT COUNT(*) FROM addresses WHERE mail_service_id = '{service}'")) == 200


@flow("idempotency")
def idempotency(c):
    # One Idempotency-Key sent at once to every instance: the address is created once; every
    # other answer is the first one replayed, or 409 while it is still being made. Retried
    # afterwards on each instance: the same 201, body and Location. The same key with
    # another body: 422. Keys live in the database.
    token, service, _, _ = c.owner()
    key = {"Idempotency-Key": f"cluster-{uuid.uuid4()}"}
    path = f"/v1/mail-services/{service}/addresses"
    body = {"local_part": "once", "for": "several_users", "password": PASSWORD}
    n = len(c.instances)
    answers = concurrently(2 * n, lambda i: c.on(i % n, "POST", path, body, token, headers=key))
    statuses = sorted(a.status for a in answers)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    assert all(a.body["code"] == "idempotency_key_in_progress" for a in answers if a.status == 409), statuses
    created = {a.body["id"] for a in answers if a.status == 201}
    assert len(created) == 1, f"created {created}"
    first = next(a for a in answers if a.status == 201)
    for i in range(n):
        again = c.on(i, "POST", path, body, token, headers=key)
        assert again.status == 201 and again.body == first.body, (i, again.status, again.body)
        assert again.headers.get("location") == first.headers.get("location"), (i, again.headers)
        assert again.headers.get("idempotent-replayed") == "true", (i, again.headers)
    c.on(n - 1, "POST", path, {**body, "local_part": "other"}, token, headers=key).expect(422)
    stored = int(c.sql(f"SELECT COUNT(*) FROM addresses WHERE mail_service_id = '{service}'"))
    assert stored == 1, f"{stored} addresses for one key"


@flow("api_tokens")
def api_tokens(c):
    # A read-only token made on one instance works on every other (the database has it),
    # gets 403 token_scope_insufficient on a write anywhere, and its revocation through the
    # balancer stops it on every instance within the session bound.
    _, session = c.account("script")
    made = c.on(0, "POST", "/v1/me/tokens", {"name": "cluster", "scopes": ["read"]},
                session["access_token"]).expect(201)
    secret = made["token"]
    assert secret.startswith("postier_pat_"), made
    n = len(c.instances)
    for i in range(n):
        c.on(i, "GET", "/v1/me", token=secret).expect(200)
        refused = c.on(i, "PATCH", "/v1/me", {"display_name": "x"}, secret)
        assert refused.status == 403 and refused.body["code"] == "token_scope_insufficient", refused.body
    c.call("DELETE", f"/v1/me/tokens/{made['id']}", token=session["access_token"]).expect(204)
    time.sleep(SESSION_BOUND)
    for i in range(n):
        c.on(i, "GET", "/v1/me", token=secret).expect(401)


class Receiver:
    """A webhook receiver on loopback: keeps every request it gets, answers 204."""

    def __init__(self):
        import http.server
        received = self.received = []
        lock = self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def close(self):
        self.server.shutdown()


def standard_webhooks_valid(secret, headers, body):
    """Checks the signature as the Standard Webhooks specification says."""
    import base64
    import hashlib
    import hmac
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(sig == f"v1,{expected}" for sig in headers["webhook-signature"].split())


@flow("webhooks")
def webhooks(c):
    # Ten changes made through the balancer, each queued by the instance that made it and
    # delivered by whichever instance's worker claims it: every one arrives once, signed.
    receiver = Receiver()
    try:
        token, service, _, org = c.owner()
        hook = c.call("POST", f"/v1/organizations/{org}/webhooks",
                      {"url": receiver.url, "event_types": ["address.*"]}, token).expect(201)
        for n in range(10):
            c.call("POST", f"/v1/mail-services/{service}/addresses",
                   {"local_part": f"hook{n}", "for": "several_users", "password": PASSWORD}, token).expect(201)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(receiver.snapshot()) < 10:
            time.sleep(0.2)
        time.sleep(2)  # anything delivered twice would arrive by now
        got = receiver.snapshot()
        ids = [headers["webhook-id"] for headers, _ in got]
        assert len(ids) == 10 and len(set(ids)) == 10, f"{len(ids)} deliveries of {len(set(ids))} messages"
        assert all(standard_webhooks_valid(hook["secret"], h, b) for h, b in got), "a bad signature"
        types = {json.loads(b)["type"] for _, b in got}
        assert types == {"address.created"}, types
        delivered = int(c.sql(f"SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = '{hook['id']}' "
                              "AND status = 'delivered'"))
        assert delivered == 10, f"{delivered} deliveries recorded as delivered"
    finally:
        receiver.close()


def policy_ask(sock, attributes):
    sock.sendall(("".join(f"{k}={v}\n" for k, v in attributes.items()) + "\n").encode())
    reply = b""
    while not reply.endswith(b"\n\n"):
        chunk = sock.recv(4096)
        assert chunk, "the policy service closed the connection"
        reply += chunk
    return reply.decode().strip().removeprefix("action=")


def policy_message(port, login, recipients):
    """Plays Postfix for one message (RCPT per recipient, DATA, END-OF-MESSAGE); answers
    the first refusal, or DUNNO when delivered."""
    instance = uuid.uuid4().hex
    base = {"request": "smtpd_access_policy", "protocol_name": "ESMTP",
            "client_address": "127.0.0.1", "sasl_method": "PLAIN", "sasl_username": login,
            "sender": login, "instance": instance}
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for n in range(recipients):
            action = policy_ask(sock, {**base, "protocol_state": "RCPT", "recipient": f"r{n}@elsewhere.example",
                                       "recipient_count": 0})
            if action != "DUNNO":
                return action
        for stage in ("DATA", "END-OF-MESSAGE"):
            action = policy_ask(sock, {**base, "protocol_state": stage, "recipient": "",
                                       "recipient_count": recipients})
            if action != "DUNNO":
                return action
    return "DUNNO"


@flow("policy")
def policy(c):
    # A starter address: 100 recipients per message, 500 per 24 h, counted by two instances.
    token, service, _, _ = c.owner("starter")
    created = c.call("POST", f"/v1/mail-services/{service}/addresses",
                     {"local_part": "sender", "for": "several_users", "password": PASSWORD}, token).expect(201)
    login = created["address"]
    ports = c.policy[:2]
    for n in range(5):
        action = policy_message(ports[n % 2], login, 100)
        assert action == "DUNNO", f"message {n} refused: {action}"
        time.sleep(POLICY_BOUND)
    for port in ports:
        action = policy_message(port, login, 1)
        assert action.startswith("DEFER 4.7.1"), f"over the budget on {port}: {action}"
    counted = int(c.sql(f"SELECT COALESCE(SUM(count), 0) FROM counters WHERE key = 'send:{created['id']}'"))
    assert counted == 500, f"counted {counted}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lb", required=True)
    parser.add_argument("--instances", required=True)
    parser.add_argument("--policy", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("flows", nargs="*")
    args = parser.parse_args()
    cluster = Cluster(args.lb, args.instances.split(","), args.policy.split(","), args.database)
    names = args.flows or list(FLOWS)
    failed = []
    for name in names:
        started = time.perf_counter()
        try:
            FLOWS[name](cluster)
            print(f"ok    {name} ({time.perf_counter() - started:.1f} s)")
        except Exception as e:  # a failed flow is reported, the others still run
            failed.append(name)
            print(f"FAIL  {name}: {type(e).__name__}: {e}")
    print(f"{len(names) - len(failed)} of {len(names)} flows passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
