"""Accounts REST API integration tests: the real turnkey binary on loopback.

The same walk (register, login, refresh, logout, me, handles, search,
contacts, TURN credentials, call history, SQL injection payloads, CORS, body
limits) runs on the embedded SQLite store and on a real MariaDB server that
this file starts with tests/sql/mariadb_server.sh in a private directory. On
MariaDB it also kills and restarts the server while clients keep working, and
turnutils_uclient (coturn's client) allocates on turnkey's TURN server with
the credentials a login handed out.

Only urllib and the standard library; nothing here skips: a missing tool or a
server that does not start fails the test.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import test_operations  # noqa: E402  (SioHelper, start_call)
import test_turn  # noqa: E402  (TurnutilsPeer, run_uclient)

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MARIADB_SCRIPT = os.path.join(SOURCE_DIR, "tests", "sql", "mariadb_server.sh")
SECRET = "acc-secret-" + os.urandom(8).hex()
ALLOWED_ORIGIN = "https://app.example.test"
WEBVIEW_ORIGIN = "capacitor://localhost"  # an iOS app in a WebView (Capacitor)
PASSWORD = "correct horse battery"
INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "\" OR \"\"=\"",
    "Robert'); DROP TABLE contacts;--",
    "1; DELETE FROM refresh_tokens WHERE 1=1",
    "%' UNION SELECT password_hash FROM users --",
    "\\'; SHUTDOWN; --",
]


def unique(prefix):
    return f"{prefix}{os.urandom(3).hex()}"


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def json(self):
        return json.loads(self.body)

    @property
    def data(self):
        return self.json()["data"]

    @property
    def code(self):
        return self.json().get("code")

    def __repr__(self):
        return f"HTTP {self.status} {self.body[:500]!r}"


class Api:
    """A small JSON client for the REST API."""

    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, token=None, headers=None, raw=None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", "Bearer " + token)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return Response(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers), error.read())

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token=token, **kw)

    def post(self, path, body=None, token=None, **kw):
        return self.call("POST", path, body if body is not None else {}, token=token, **kw)

    def register(self, email=None, password=PASSWORD, handle=None, display_name=None):
        body = {"email": email or unique("user") + "@example.test", "password": password}
        if handle is not None:
            body["handle"] = handle
        if display_name is not None:
            body["displayName"] = display_name
        return self.post("/api/auth/register", body)

    def login(self, email, password=PASSWORD):
        return self.post("/api/auth/login", {"email": email, "password": password})


class MariaDb:
    """A private MariaDB server (tests/sql/mariadb_server.sh) in a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tk-acc-db-")
        self.script("start")
        self.env = {}
        with open(os.path.join(self.dir, "server.env")) as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                self.env[key] = value
        self.password_file = os.path.join(self.dir, "password")
        with open(self.password_file, "w") as f:
            f.write(self.env["MARIADB_PASSWORD"] + "\n")

    def script(self, action):
        out = subprocess.run(["bash", MARIADB_SCRIPT, action, self.dir], capture_output=True,
                             text=True, timeout=180)
        if out.returncode != 0:
            raise RuntimeError(f"mariadb_server.sh {action} failed:\n{out.stdout}{out.stderr}")

    def create_database(self, name):
        client = shutil.which("mariadb") or shutil.which("mysql")
        out = subprocess.run(
            [client, "--no-defaults", "-h", "127.0.0.1", "-P", self.env["MARIADB_PORT"],
             "-u", self.env["MARIADB_USER"], "-p" + self.env["MARIADB_PASSWORD"], "-e",
             f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"],
            capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError("create database failed: " + out.stderr)

    def yaml(self, database):
        return ("database:\n  driver: mysql\n  mysql: {host: 127.0.0.1, "
                f"port: {self.env['MARIADB_PORT']}, user: {self.env['MARIADB_USER']}, "
                f"password_file: {self.password_file}, database: {database}, pool_size: 4}}\n")

    def stop(self):
        if os.path.isdir(self.dir):
            self.script("stop")


class AccountsServer:
    """turnkey with TURN (REST secret, loopback peers allowed) and signaling."""

    # The tests register every user from 127.0.0.1: no registration limit
    # unless a test sets one.
    def __init__(self, database_yaml="", state_dir=None, signal_yaml="",
                 register_limit="{rate: 0}"):
        self.dir = tempfile.mkdtemp(prefix="turnkey-acc-")
        self.state_dir = state_dir or os.path.join(self.dir, "state")
        self.turn_port = harness.free_port()
        self.http_port = harness.free_port(both=False)
        self.config_path = os.path.join(self.dir, "turnkey.yaml")
        with open(self.config_path, "w") as f:
            f.write(
                "realm: turnkey.test\n"
                f"state_dir: {self.state_dir}\n"
                "log: {level: info, format: text}\n"
                "turn:\n"
                "  threads: 1\n"
                "  listeners:\n"
                f"    - {{transport: udp, address: 127.0.0.1, port: {self.turn_port}}}\n"
                f"    - {{transport: tcp, address: 127.0.0.1, port: {self.turn_port}}}\n"
                "  relay: {addresses: [127.0.0.1]}\n"
                f"  auth: {{secrets: [\"{SECRET}\"]}}\n"
                "  peers: {allow: [127.0.0.0/8]}\n"
                "signal:\n"
                f"  listen: {{address: 127.0.0.1, port: {self.http_port}}}\n"
                f"  allowed_origins: [\"{ALLOWED_ORIGIN}\", \"{WEBVIEW_ORIGIN}\"]\n"
                "  ice_servers:\n"
                f"    urls: [\"stun:127.0.0.1:{self.turn_port}\",\n"
                f"           \"turn:127.0.0.1:{self.turn_port}?transport=udp\"]\n"
                "    credential_ttl: 1h\n"
                f"  rate_limits: {{register_per_address: {register_limit}}}\n"
                + signal_yaml + database_yaml +
                "metrics: {enabled: false}\n")
        self.log_path = os.path.join(self.dir, "turnkey.log")
        self.api = Api(f"http://127.0.0.1:{self.http_port}")
        self.proc = None

    def run(self, *args):
        out = subprocess.run([harness.BINARY, *args, "--config", self.config_path],
                             capture_output=True, text=True, timeout=60)
        return out.returncode, out.stdout + out.stderr

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([harness.BINARY, "serve", "--config", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if harness.wait_ready(self.proc, self.log_path, 30):
            return self
        exited = self.proc.poll() is not None
        self.stop()
        raise RuntimeError(("turnkey exited early:\n" if exited else
                            "turnkey did not answer in time:\n") + self.read_log())

    def stop(self):
        harness.stop_process(self.proc, timeout=20)
        if hasattr(self, "log"):
            self.log.close()

    def read_log(self):
        return harness.read_text(self.log_path)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def turn_password(username):
    return base64.b64encode(hmac.new(SECRET.encode(), username.encode(), hashlib.sha1)
                            .digest()).decode()


class AccountsApiTests:
    """The REST walk; a subclass provides cls.server (an AccountsServer)."""

    def setUp(self):
        self.api = self.server.api

    def assertError(self, response, status, code, field=None):
        self.assertEqual(response.status, status, response)
        body = response.json()
        self.assertIs(body["success"], False, response)
        self.assertEqual(body["code"], code, response)
        self.assertIn("message", body)
        if field:
            self.assertEqual(body["field"], field, response)

    def new_user(self, **kw):
        r = self.api.register(**kw)
        self.assertEqual(r.status, 201, r)
        return r.data

    def test_register_login_refresh_logout_me(self):
        email = unique("walk") + "@Example.test"
        registered = self.api.register(email=email, display_name="Walk Er")
        self.assertEqual(registered.status, 201, registered)
        body = registered.json()
        self.assertIs(body["success"], True)
        self.assertIn("message", body)
        data = body["data"]
        for key in ("token", "refreshToken", "user", "iceServers"):
            self.assertIn(key, data)
        user = data["user"]
        self.assertEqual(user["email"], email)
        self.assertEqual(user["displayName"], "Walk Er")
        self.assertRegex(user["handle"], r"^walk[0-9a-f]{6}[0-9]{4}$")
        self.assertNotIn("password", json.dumps(user).lower())

        login = self.api.login(email.lower())
        self.assertEqual(login.status, 200, login)
        session = login.data
        self.assertEqual(session["user"]["id"], user["id"])
        me = self.api.get("/api/users/me", session["token"])
        self.assertEqual(me.status, 200, me)
        self.assertEqual(me.data["user"]["handle"], user["handle"])

        # Refresh rotates; presenting the old token again revokes the login.
        first = self.api.post("/api/auth/refresh", {"refreshToken": session["refreshToken"]})
        self.assertEqual(first.status, 200, first)
        self.assertNotEqual(first.data["refreshToken"], session["refreshToken"])
        self.assertEqual(self.api.get("/api/users/me", first.data["token"]).status, 200)
        second = self.api.post("/api/auth/refresh", {"refreshToken": first.data["refreshToken"]})
        self.assertEqual(second.status, 200, second)
        reused = self.api.post("/api/auth/refresh", {"refreshToken": first.data["refreshToken"]})
        self.assertError(reused, 401, "REFRESH_TOKEN_REUSED")
        self.assertError(
            self.api.post("/api/auth/refresh", {"refreshToken": second.data["refreshToken"]}),
            401, "REFRESH_TOKEN_REVOKED")

        # Logout ends every session of the user.
        # Right after the login: a sign-out refuses tokens issued even within
        # its own second (they carry microseconds).
        other = self.api.login(email).data
        logout = self.api.post("/api/auth/logout", {"refreshToken": other["refreshToken"]},
                               token=other["token"])
        self.assertEqual(logout.status, 200, logout)
        self.assertError(self.api.get("/api/users/me", other["token"]), 401, "TOKEN_REVOKED")
        self.assertError(self.api.get("/api/users/me", data["token"]), 401, "TOKEN_REVOKED")
        self.assertError(self.api.post("/api/auth/refresh",
                                       {"refreshToken": other["refreshToken"]}),
                         401, "REFRESH_TOKEN_REVOKED")
        self.assertError(self.api.post("/api/auth/refresh",
                                       {"refreshToken": data["refreshToken"]}),
                         401, "REFRESH_TOKEN_REVOKED")
        self.assertError(self.api.post("/api/auth/logout", {}), 401, "UNAUTHORIZED")
        again = self.api.login(email)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(self.api.get("/api/users/me", again.data["token"]).status, 200)

    def test_refresh_token_reuse_ends_the_access_tokens_of_that_login(self):
        # The login is treated as stolen: the access tokens its refresh
        # tokens bought stop working too, not only the refresh tokens.
        user = self.new_user()
        email = user["user"]["email"]
        other = self.api.login(email).data  # another device, another login
        first = self.api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]}).data
        self.assertEqual(self.api.get("/api/users/me", first["token"]).status, 200)
        reused = self.api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
        self.assertError(reused, 401, "REFRESH_TOKEN_REUSED")
        for token in (user["token"], first["token"]):
            self.assertError(self.api.get("/api/users/me", token), 401, "TOKEN_REVOKED")
        self.assertEqual(self.api.get("/api/users/me", other["token"]).status, 200)
        again = self.api.post("/api/auth/refresh", {"refreshToken": other["refreshToken"]})
        self.assertEqual(again.status, 200, again)
        self.assertEqual(self.api.get("/api/users/me", again.data["token"]).status, 200)

    def test_authorization_scheme_and_field_count(self):
        user = self.new_user()
        token = user["token"]
        # RFC 9110 section 11.1: the scheme is case-insensitive.
        for scheme in ("bearer", "BEARER", "Bearer"):
            with self.subTest(scheme=scheme):
                me = self.api.get("/api/users/me", headers={"Authorization": f"{scheme} {token}"})
                self.assertEqual(me.status, 200, me)
        for value in ("Basic " + token, token, "Bearer", "Bearer "):
            with self.subTest(value=value):
                self.assertError(self.api.get("/api/users/me", headers={"Authorization": value}),
                                 401, "UNAUTHORIZED")
        # Two Authorization fields are ambiguous (a proxy may read the other
        # one): refused, whichever comes first.
        for first, second in ((token, "junk"), ("junk", token)):
            with self.subTest(first=first[:8]):
                connection = http.client.HTTPConnection("127.0.0.1", self.server.http_port,
                                                        timeout=30)
                connection.putrequest("GET", "/api/users/me")
                connection.putheader("Authorization", "Bearer " + first)
                connection.putheader("Authorization", "Bearer " + second)
                connection.endheaders()
                answer = connection.getresponse()
                body = json.loads(answer.read())
                connection.close()
                self.assertEqual(answer.status, 400, body)
                self.assertEqual((body["code"], body["field"]),
                                 ("VALIDATION_ERROR", "Authorization"))

    def test_validation_errors_name_the_field(self):
        cases = [
            ({"password": PASSWORD}, "email"),
            ({"email": "not-an-email", "password": PASSWORD}, "email"),
            ({"email": "x@example.test"}, "password"),
            ({"email": "x@example.test", "password": "short"}, "password"),
            ({"email": "x@example.test", "password": "p" * 1025}, "password"),
            ({"email": "x@example.test", "password": PASSWORD, "handle": "ab"}, "handle"),
            ({"email": "x@example.test", "password": PASSWORD, "handle": "a b c"}, "handle"),
            ({"email": "x@example.test", "password": PASSWORD, "handle": "x" * 33}, "handle"),
            ({"email": "x@example.test", "password": PASSWORD, "displayName": 5}, "displayName"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                self.assertError(self.api.post("/api/auth/register", body), 400,
                                 "VALIDATION_ERROR", field)
        self.assertError(self.api.call("POST", "/api/auth/login", raw=b"{nope"), 400,
                         "INVALID_JSON")

    def test_unknown_user_and_wrong_password_are_identical(self):
        user = self.new_user()
        email = user["user"]["email"]
        wrong = self.api.login(email, "wrong password!")
        unknown = self.api.login(unique("ghost") + "@example.test", "wrong password!")
        self.assertError(wrong, 401, "INVALID_CREDENTIALS")
        self.assertEqual(wrong.status, unknown.status)
        self.assertEqual(wrong.body, unknown.body)
        strip = lambda headers: {k: v for k, v in headers.items() if k != "date"}  # noqa: E731
        self.assertEqual(strip(wrong.headers), strip(unknown.headers))

    def test_handle_change_and_conflict(self):
        handle = unique("Case.")
        a = self.new_user(handle=handle)
        b = self.new_user()
        self.assertError(self.api.register(handle=handle.upper()), 409, "HANDLE_TAKEN")
        self.assertError(self.api.register(email=a["user"]["email"].upper()), 409, "EMAIL_TAKEN")
        taken = self.api.call("PATCH", "/api/users/me", {"handle": handle.lower()},
                              token=b["token"])
        self.assertError(taken, 409, "HANDLE_TAKEN")
        own = self.api.call("PATCH", "/api/users/me", {"handle": handle.lower()},
                            token=a["token"])
        self.assertEqual(own.status, 200, own)
        self.assertEqual(own.data["user"]["handle"], handle.lower())
        fresh = unique("fresh-")
        moved = self.api.call("PATCH", "/api/users/me",
                              {"handle": fresh, "displayName": "New Name"}, token=b["token"])
        self.assertEqual(moved.status, 200, moved)
        self.assertEqual(moved.data["user"]["handle"], fresh)
        me = self.api.get("/api/users/me", b["token"]).data["user"]
        self.assertEqual((me["handle"], me["displayName"]), (fresh, "New Name"))
        self.assertError(self.api.call("PATCH", "/api/users/me", {"handle": "bad handle"},
                                       token=b["token"]), 400, "VALIDATION_ERROR", "handle")

    def test_search_by_handle_prefix(self):
        prefix = unique("srch")
        me = self.new_user(handle=prefix + "-me")
        handles = [f"{prefix}-{i:02d}" for i in range(24)]
        for h in handles:
            self.new_user(handle=h)
        found = self.api.get("/api/users/search?q=" + prefix.upper(), me["token"])
        self.assertEqual(found.status, 200, found)
        users = found.data["users"]
        self.assertEqual(len(users), 20)
        self.assertNotIn(me["user"]["id"], [u["id"] for u in users])
        self.assertEqual([u["handle"] for u in users], sorted(handles)[:20])
        self.assertEqual(set(users[0]), {"id", "handle", "displayName"})
        one = self.api.get(f"/api/users/search?q=%40{prefix}-07", me["token"]).data["users"]
        self.assertEqual([u["handle"] for u in one], [f"{prefix}-07"])
        self.assertEqual(self.api.get("/api/users/search?q=%25", me["token"]).data["users"], [])
        self.assertEqual(self.api.get("/api/users/search?q=_", me["token"]).data["users"], [])
        self.assertError(self.api.get("/api/users/search?q=", me["token"]), 400,
                         "VALIDATION_ERROR", "q")
        self.assertError(self.api.get("/api/users/search?q=a"), 401, "UNAUTHORIZED")

    def test_contacts_add_remove_list_sync(self):
        me = self.new_user()
        a = self.new_user(handle=unique("ca"))
        b = self.new_user(handle=unique("cb"))
        c = self.new_user(handle=unique("cc"))
        token = me["token"]
        added = self.api.post("/api/contacts", {"userId": a["user"]["id"]}, token)
        self.assertEqual(added.status, 201, added)
        self.assertEqual(added.data["contact"]["id"], a["user"]["id"])
        self.assertEqual(self.api.post("/api/contacts", {"userId": a["user"]["id"]}, token).status,
                         200)
        self.assertEqual(self.api.post("/api/contacts", {"handle": b["user"]["handle"].upper()},
                                       token).status, 201)
        self.assertError(self.api.post("/api/contacts", {"userId": me["user"]["id"]}, token), 400,
                         "VALIDATION_ERROR", "userId")
        self.assertError(self.api.post("/api/contacts", {"userId": "0" * 32}, token), 404,
                         "NOT_FOUND")
        listed = self.api.get("/api/contacts", token).data["contacts"]
        self.assertEqual(sorted(x["id"] for x in listed),
                         sorted([a["user"]["id"], b["user"]["id"]]))
        removed = self.api.call("DELETE", "/api/contacts/" + a["user"]["id"], token=token)
        self.assertEqual(removed.status, 200, removed)
        self.assertError(self.api.call("DELETE", "/api/contacts/" + a["user"]["id"], token=token),
                         404, "NOT_FOUND")
        nobody = "nobody-" + unique("x")
        synced = self.api.call("PUT", "/api/contacts", {
            "userIds": [c["user"]["id"], "f" * 32, me["user"]["id"], "f" * 32],
            "handles": [a["user"]["handle"].upper(), nobody, me["user"]["handle"],
                        nobody.upper()]}, token=token)
        self.assertEqual(synced.status, 200, synced)
        ids = sorted(x["id"] for x in synced.data["contacts"])
        self.assertEqual(ids, sorted([a["user"]["id"], c["user"]["id"]]))
        # Unknown entries once each; oneself and repeats are skipped (docs/api.md).
        self.assertEqual(synced.data["notFound"], ["f" * 32, nobody])
        self.assertEqual(sorted(x["id"] for x in self.api.get("/api/contacts", token)
                                .data["contacts"]), ids)
        cleared = self.api.call("PUT", "/api/contacts", {"userIds": []}, token=token)
        self.assertEqual(cleared.data["contacts"], [])
        # At most 1000 entries in all; the error names the list sent.
        too_many = ["h%04d" % i for i in range(1001)]
        self.assertError(self.api.call("PUT", "/api/contacts", {"handles": too_many}, token=token),
                         400, "VALIDATION_ERROR", "handles")
        self.assertError(self.api.call("PUT", "/api/contacts", {"userIds": ["f" * 32] * 1001},
                                       token=token), 400, "VALIDATION_ERROR", "userIds")

    def test_contacts_take_a_handle_written_with_at(self):
        # People share their Call ID as "@bob"; search and initiateCall
        # ignore the '@', so adding and syncing contacts do too.
        me = self.new_user()
        a = self.new_user(handle=unique("at"))
        b = self.new_user(handle=unique("at"))
        token = me["token"]
        added = self.api.post("/api/contacts", {"handle": "@" + a["user"]["handle"].upper()}, token)
        self.assertEqual(added.status, 201, added)
        self.assertEqual(added.data["contact"]["id"], a["user"]["id"])
        self.assertError(self.api.post("/api/contacts", {"handle": "@"}, token), 404, "NOT_FOUND")
        # Oneself by handle: the error names the field that was sent.
        self.assertError(self.api.post("/api/contacts", {"handle": "@" + me["user"]["handle"]},
                                       token), 400, "VALIDATION_ERROR", "handle")
        synced = self.api.call("PUT", "/api/contacts",
                               {"handles": ["@" + b["user"]["handle"], "@nobody-" + unique("x")]},
                               token=token)
        self.assertEqual(synced.status, 200, synced)
        self.assertEqual([x["id"] for x in synced.data["contacts"]], [b["user"]["id"]])
        self.assertEqual(len(synced.data["notFound"]), 1)
        self.assertTrue(synced.data["notFound"][0].startswith("@nobody-"), synced)

    def test_turn_credentials(self):
        user = self.new_user()
        user_id = user["user"]["id"]
        ice = user["iceServers"]
        self.assertEqual(ice[0], {"urls": [f"stun:127.0.0.1:{self.server.turn_port}"]})
        self.assertEqual(ice[1]["credential"], turn_password(ice[1]["username"]))
        creds = self.api.get("/api/turn/credentials", user["token"])
        self.assertEqual(creds.status, 200, creds)
        data = creds.data
        expiry, _, name = data["username"].partition(":")
        self.assertEqual(name, user_id)
        self.assertAlmostEqual(int(expiry), time.time() + 3600, delta=120)
        self.assertEqual(data["password"], turn_password(data["username"]))
        self.assertEqual(data["ttl"], 3600)
        self.assertEqual(data["uris"], [f"turn:127.0.0.1:{self.server.turn_port}?transport=udp"])
        self.assertError(self.api.get("/api/turn/credentials"), 401, "UNAUTHORIZED")

    def test_call_history_empty(self):
        user = self.new_user()
        history = self.api.get("/api/calls/history?type=audio&limit=10&skip=0", user["token"])
        self.assertEqual(history.status, 200, history)
        self.assertEqual(history.data["calls"], [])
        self.assertIs(history.data["hasMore"], False)
        missed = self.api.get("/api/calls/missed", user["token"])
        self.assertEqual(missed.data["calls"], [])
        self.assertError(self.api.call("DELETE", "/api/calls/history/" + "a" * 32,
                                       token=user["token"]), 404, "NOT_FOUND")
        self.assertError(self.api.get("/api/calls/history?limit=0", user["token"]), 400,
                         "VALIDATION_ERROR", "limit")
        self.assertError(self.api.get("/api/calls/history?type=fax", user["token"]), 400,
                         "VALIDATION_ERROR", "type")
        # A malformed escape is a bad value, not a missing one.
        self.assertError(self.api.get("/api/calls/history?limit=%zz", user["token"]), 400,
                         "VALIDATION_ERROR", "limit")
        self.assertError(self.api.get("/api/calls/history?type=%zz", user["token"]), 400,
                         "VALIDATION_ERROR", "type")

    def test_sql_injection_payloads_are_stored_as_data(self):
        for payload in INJECTIONS:
            with self.subTest(payload=payload):
                email = payload.replace(" ", "") + unique("+") + "@example.test"
                registered = self.api.register(email=email, password=payload + " pw",
                                               display_name=payload)
                self.assertEqual(registered.status, 201, registered)
                user = registered.data
                self.assertEqual(user["user"]["email"], email)
                self.assertEqual(user["user"]["displayName"], payload)
                login = self.api.login(email, payload + " pw")
                self.assertEqual(login.status, 200, login)
                token = login.data["token"]
                renamed = self.api.call("PATCH", "/api/users/me",
                                        {"displayName": payload[::-1]}, token=token)
                self.assertEqual(renamed.status, 200, renamed)
                self.assertEqual(self.api.get("/api/users/me", token).data["user"]["displayName"],
                                 payload[::-1])
                # As login, search, contact and history input: data, never SQL.
                self.assertError(self.api.login(payload + "@x.test", payload), 401,
                                 "INVALID_CREDENTIALS")
                q = urllib.parse.quote(payload[:32], safe="")
                search = self.api.get("/api/users/search?q=" + q, token)
                self.assertEqual(search.status, 200, search)
                self.assertEqual(search.data["users"], [])
                self.assertError(self.api.register(handle=payload), 400, "VALIDATION_ERROR",
                                 "handle")
                synced = self.api.call("PUT", "/api/contacts",
                                       {"userIds": [payload], "handles": [payload]}, token=token)
                self.assertEqual(synced.status, 200, synced)
                self.assertEqual(synced.data["contacts"], [])
                self.assertEqual(synced.data["notFound"], [payload, payload])
                quoted = urllib.parse.quote(payload, safe="")
                self.assertError(self.api.call("DELETE", "/api/contacts/" + quoted, token=token),
                                 404, "NOT_FOUND")
                self.assertError(self.api.call("DELETE", "/api/calls/history/" + quoted,
                                               token=token), 404, "NOT_FOUND")
                self.assertError(self.api.post("/api/auth/refresh", {"refreshToken": payload}),
                                 401, "REFRESH_TOKEN_INVALID")
        # The tables are intact: an earlier account still logs in.
        witness = self.new_user()
        self.assertEqual(self.api.login(witness["user"]["email"]).status, 200)

    def test_cors(self):
        preflight = {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type,authorization"}
        allowed = self.api.call("OPTIONS", "/api/auth/login", headers=preflight)
        self.assertEqual(allowed.status, 204, allowed)
        self.assertEqual(allowed.headers["access-control-allow-origin"], ALLOWED_ORIGIN)
        self.assertIn("POST", allowed.headers["access-control-allow-methods"])
        # The names asked for come back (header names are case-insensitive).
        self.assertEqual(allowed.headers["access-control-allow-headers"],
                         "content-type, authorization")
        denied = self.api.call("OPTIONS", "/api/auth/login",
                               headers={**preflight, "Origin": "https://evil.example"})
        self.assertEqual(denied.status, 403, denied)
        self.assertNotIn("access-control-allow-origin", denied.headers)
        ok = self.api.get("/healthz", headers={"Origin": ALLOWED_ORIGIN})
        self.assertEqual(ok.headers["access-control-allow-origin"], ALLOWED_ORIGIN)
        # A page on the allowed origin can read why a 401 happened.
        unauthorized = self.api.get("/api/users/me", headers={"Origin": ALLOWED_ORIGIN})
        self.assertError(unauthorized, 401, "UNAUTHORIZED")
        self.assertEqual(unauthorized.headers["access-control-allow-origin"], ALLOWED_ORIGIN)
        self.assertEqual(unauthorized.headers["access-control-expose-headers"], "WWW-Authenticate")
        refused = self.api.post("/api/auth/login", {"email": "a@b.c", "password": PASSWORD},
                                headers={"Origin": "https://evil.example"})
        self.assertError(refused, 403, "ORIGIN_NOT_ALLOWED")
        self.assertNotIn("access-control-allow-origin", refused.headers)
        # The operator can see which origin was refused, once, though Socket.IO
        # (its own policy object) refuses it as well.
        polling = self.api.get("/socket.io/?EIO=4&transport=polling",
                               headers={"Origin": "https://evil.example"})
        self.assertEqual(polling.status, 403, polling)
        self.assertEqual(self.server.read_log().count(
            'requests from Origin "https://evil.example" are refused (403)'), 1)
        # An app in a WebView sends its own scheme; it can be allowed like any origin.
        app = self.api.get("/api/users/me", headers={"Origin": WEBVIEW_ORIGIN})
        self.assertError(app, 401, "UNAUTHORIZED")
        self.assertEqual(app.headers["access-control-allow-origin"], WEBVIEW_ORIGIN)

    def test_huge_bodies_get_413(self):
        # Over the API's own limit: a JSON answer with a code.
        big = self.api.call("POST", "/api/auth/register",
                            raw=json.dumps({"email": "x" * 200_000}).encode())
        self.assertError(big, 413, "PAYLOAD_TOO_LARGE")
        # Over the server's limit: refused from the Content-Length alone.
        with socket.create_connection(("127.0.0.1", self.server.http_port), timeout=10) as s:
            s.sendall(b"POST /api/auth/register HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{")
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer)

    def test_health_and_unknown_routes(self):
        self.assertEqual(self.api.get("/healthz").data["status"], "ok")
        self.assertEqual(self.api.get("/readyz").data["status"], "ready")
        self.assertError(self.api.get("/api/nope"), 404, "NOT_FOUND")
        self.assertError(self.api.get("/api/auth/login"), 405, "METHOD_NOT_ALLOWED")

    def test_uclient_allocates_with_login_credentials(self):
        user = self.new_user()
        turn = user["iceServers"][1]
        peer = test_turn.TurnutilsPeer()
        try:
            server = type("S", (), {"port": self.server.turn_port})
            sent, received, lost, text = test_turn.run_uclient(
                server, peer, "-u", turn["username"], "-w", turn["credential"],
                messages=10, clients=2)
        finally:
            peer.stop()
        context = text[-3000:] + "\n--- server log ---\n" + self.server.read_log()[-3000:]
        self.assertIsNotNone(sent, "uclient printed no totals:\n" + context)
        self.assertEqual(sent, 20, context)
        self.assertEqual(received, sent, context)
        self.assertEqual(lost, 0, context)
        # The same user name with a wrong password relays nothing.
        peer = test_turn.TurnutilsPeer()
        try:
            sent, _, _, text = test_turn.run_uclient(
                server, peer, "-u", turn["username"], "-w", "not-the-password",
                messages=3, clients=2)
        finally:
            peer.stop()
        self.assertFalse(sent, text)


    def test_sign_outs_survive_a_restart(self):
        # Revocations are read back from the refresh tokens at start-up: an
        # access token of a login that ended stays refused after a restart.
        gone = self.new_user()
        logout = self.api.post("/api/auth/logout", {}, token=gone["token"])
        self.assertEqual(logout.status, 200, logout)
        robbed = self.new_user()
        kept = self.api.login(robbed["user"]["email"]).data  # another login
        rotated = self.api.post("/api/auth/refresh", {"refreshToken": robbed["refreshToken"]})
        self.assertEqual(rotated.status, 200, rotated)
        reused = self.api.post("/api/auth/refresh", {"refreshToken": robbed["refreshToken"]})
        self.assertError(reused, 401, "REFRESH_TOKEN_REUSED")
        live = self.new_user()
        self.server.stop()
        self.server.start()
        for token in (gone["token"], robbed["token"], rotated.data["token"]):
            self.assertError(self.api.get("/api/users/me", token), 401, "TOKEN_REVOKED")
        for token in (kept["token"], live["token"]):
            self.assertEqual(self.api.get("/api/users/me", token).status, 200)


class SqliteAccountsTest(AccountsApiTests, unittest.TestCase):
    """The embedded default: no database setup at all."""

    @classmethod
    def setUpClass(cls):
        cls.server = AccountsServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_state_dir_holds_the_key_and_a_restart_keeps_sessions(self):
        key = os.path.join(self.server.state_dir, "jwt.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(self.server.state_dir).st_mode & 0o777, 0o700)
        user = self.new_user()
        rc, text = self.server.run("migrate")
        self.assertEqual(rc, 0, text)
        self.assertIn("up to date", text)
        # Same config and state: the key is reused, so sessions survive.
        self.server.stop()
        self.server.start()
        self.assertEqual(self.api.get("/api/users/me", user["token"]).status, 200)
        refreshed = self.api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
        self.assertEqual(refreshed.status, 200, refreshed)


class TrustedProxyTest(unittest.TestCase):
    """signal.trusted_proxies: behind a reverse proxy every client comes from
    its address, so failed logins are counted per X-Forwarded-For client."""

    def throttle_address(self, api, forwarded_for):
        # Failed logins on accounts that do not exist, until the address is
        # held off (the per-account limit never comes into it).
        for _ in range(60):
            answer = api.post("/api/auth/login",
                              {"email": unique("nobody") + "@example.test", "password": "wrong-pass"},
                              headers={"X-Forwarded-For": forwarded_for})
            if answer.status == 429:
                return
            self.assertEqual(answer.status, 401, answer)
        self.fail("no 429 after 60 failed logins from one address")

    def server(self, signal_yaml, register_limit="{rate: 0}"):
        server = AccountsServer(signal_yaml=signal_yaml, register_limit=register_limit).start()
        self.addCleanup(server.close)
        return server

    def test_registrations_are_limited_per_client_address(self):
        api = self.server("  trusted_proxies: [127.0.0.1/32]\n",
                          register_limit="{rate: 0.001, burst: 3}").api

        def register(client, email=None):
            body = {"email": email or unique("reg") + "@example.test", "password": PASSWORD}
            return api.post("/api/auth/register", body, headers={"X-Forwarded-For": client})

        taken = unique("taken") + "@example.test"
        self.assertEqual(register("203.0.113.5", taken).status, 201)
        # Whatever the answer: an email already taken counts too.
        self.assertEqual(register("203.0.113.5", taken).status, 409)
        self.assertEqual(register("203.0.113.5").status, 201)
        held = register("203.0.113.5")
        self.assertEqual(held.status, 429, held)
        self.assertEqual(held.code, "RATE_LIMITED")
        self.assertEqual(held.headers.get("retry-after"), "1000")
        # Another client, and another /64 than a held IPv6 client's.
        self.assertEqual(register("198.51.100.7").status, 201)
        for _ in range(3):
            self.assertEqual(register("2001:db8:1:2::1").status, 201)
        self.assertEqual(register("2001:db8:1:2::99").status, 429)
        self.assertEqual(register("2001:db8:1:3::1").status, 201)
        # A program on this host (a request from loopback that no proxy
        # forwarded) is the operator's own: never limited.
        for _ in range(5):
            body = {"email": unique("local") + "@example.test", "password": PASSWORD}
            self.assertEqual(api.post("/api/auth/register", body).status, 201)
        # A forwarded loopback address is some proxy host's own: limited.
        self.assertEqual([register("127.0.0.1").status for _ in range(4)], [201, 201, 201, 429])

    def test_failed_logins_count_per_forwarded_client(self):
        api = self.server("  trusted_proxies: [127.0.0.1/32]\n").api
        email = unique("victim") + "@example.test"
        self.assertEqual(api.register(email=email).status, 201)
        self.throttle_address(api, "203.0.113.5")
        # Another client behind the same proxy logs in; the attacker's
        # address stays held off, also when it writes its own header in front.
        ok = api.post("/api/auth/login", {"email": email, "password": PASSWORD},
                      headers={"X-Forwarded-For": "198.51.100.7"})
        self.assertEqual(ok.status, 200, ok)
        held = api.post("/api/auth/login", {"email": email, "password": PASSWORD},
                        headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.5"})
        self.assertEqual(held.status, 429, held)

    def test_without_trusted_proxies_the_header_is_ignored(self):
        api = self.server("").api
        email = unique("victim") + "@example.test"
        self.assertEqual(api.register(email=email).status, 201)
        self.throttle_address(api, "203.0.113.5")
        # Anyone could write the header: the connection's address counts.
        held = api.post("/api/auth/login", {"email": email, "password": PASSWORD},
                        headers={"X-Forwarded-For": "198.51.100.7"})
        self.assertEqual(held.status, 429, held)


class MariadbAccountsTest(AccountsApiTests, unittest.TestCase):
    """The same walk on MariaDB, after `turnkey migrate`."""

    @classmethod
    def setUpClass(cls):
        cls.server = AccountsServer(database_yaml=MARIADB.yaml("tk_accounts"))
        MARIADB.create_database("tk_accounts")
        rc, text = cls.server.run("migrate")
        if rc != 0:
            raise RuntimeError("turnkey migrate failed:\n" + text)
        cls.migrate_output = text
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_migrate_reported_what_it_did(self):
        self.assertIn("mysql", self.migrate_output)
        self.assertIn("applied 001_initial", self.migrate_output)
        rc, text = self.server.run("migrate")
        self.assertEqual(rc, 0, text)
        self.assertIn("up to date", text)


class MariadbSchemaTest(unittest.TestCase):
    def test_serve_refuses_an_unmigrated_database(self):
        MARIADB.create_database("tk_unmigrated")
        server = AccountsServer(database_yaml=MARIADB.yaml("tk_unmigrated"))
        with self.assertRaises(RuntimeError) as raised:
            server.start()
        self.assertIn("turnkey migrate", str(raised.exception))
        self.assertNotEqual(server.proc.returncode, 0)
        server.close()


def migrated_server(test, database):
    """An AccountsServer (not started) on a new MariaDB database, after `turnkey migrate`."""
    MARIADB.create_database(database)
    server = AccountsServer(database_yaml=MARIADB.yaml(database))
    rc, text = server.run("migrate")
    test.assertEqual(rc, 0, text)
    return server


class MariadbStartTest(unittest.TestCase):
    """serve waits for a MariaDB that is not up yet; it does not wait for a wrong password."""

    def test_serve_waits_for_a_database_that_comes_up_later(self):
        server = migrated_server(self, "tk_late")
        MARIADB.script("down")
        outcome = {}

        def start():
            try:
                server.start()
                outcome["ready"] = True
            except Exception as e:  # reported below
                outcome["error"] = e

        thread = threading.Thread(target=start)
        brought_up = False
        try:
            thread.start()
            deadline = time.monotonic() + 20
            while "trying again in" not in server.read_log():
                self.assertLess(time.monotonic(), deadline, server.read_log())
                time.sleep(0.1)
            self.assertIsNone(server.proc.poll(), "serve must wait, not exit")
            # A reload asked for meanwhile is not lost: it runs once started.
            server.proc.send_signal(signal.SIGHUP)
            while "acted on once started" not in server.read_log():
                self.assertLess(time.monotonic(), deadline, server.read_log())
                time.sleep(0.1)
            MARIADB.script("up")
            brought_up = True
            thread.join(timeout=60)
            self.assertEqual(outcome, {"ready": True}, server.read_log()[-3000:])
            self.assertEqual(server.api.register().status, 201)
            while "reload: config" not in server.read_log():
                self.assertLess(time.monotonic(), deadline + 60, server.read_log()[-3000:])
                time.sleep(0.1)
        finally:
            if not brought_up:
                MARIADB.script("up")
            thread.join(timeout=60)
            server.close()

    def test_a_refused_account_fails_at_once(self):
        wrong = os.path.join(MARIADB.dir, "wrong-password")
        with open(wrong, "w") as f:
            f.write("not-the-password\n")
        yaml = MARIADB.yaml("tk_late_wrong").replace(MARIADB.password_file, wrong)
        server = AccountsServer(database_yaml=yaml)
        try:
            started = time.monotonic()
            with self.assertRaises(RuntimeError) as raised:
                server.start()
            self.assertLess(time.monotonic() - started, 20)
            self.assertIn("Access denied", str(raised.exception))
            self.assertNotIn("trying again", server.read_log())
        finally:
            server.close()


class MariadbOutageTest(unittest.TestCase):
    """Kill MariaDB under load: 503s meanwhile, then service again, nothing lost."""

    def test_database_restart_without_restarting_turnkey(self):
        server = migrated_server(self, "tk_outage")
        server.start()
        api = server.api
        try:
            before = []
            for _ in range(3):
                r = api.register()
                self.assertEqual(r.status, 201, r)
                before.append(r.data)

            acknowledged = []
            statuses = []
            stop = threading.Event()

            def writer():
                client = Api(api.base)
                while not stop.is_set():
                    email = unique("load") + "@example.test"
                    try:
                        r = client.register(email=email)
                    except OSError:
                        continue
                    statuses.append(r.status)
                    if r.status == 201:
                        acknowledged.append(email)
                    else:
                        self_check = r.json()
                        if r.status != 503 or self_check.get("code") != "SERVICE_UNAVAILABLE":
                            statuses.append(("unexpected", r.status, r.body))

            thread = threading.Thread(target=writer)
            thread.start()
            try:
                MARIADB.script("down")
                # Requests fail with 503 while the database is gone.
                self.assertError(api.login(before[0]["user"]["email"]), 503,
                                 "SERVICE_UNAVAILABLE")
                self.assertError(api.get("/api/users/me", before[0]["token"]), 503,
                                 "SERVICE_UNAVAILABLE")
                self.assertError(api.get("/readyz"), 503, "SERVICE_UNAVAILABLE")
                self.assertEqual(api.get("/healthz").status, 200)
                down = api.register()
                self.assertError(down, 503, "SERVICE_UNAVAILABLE")
                self.assertIn("retry-after", down.headers)
                MARIADB.script("up")
                deadline = time.monotonic() + 60
                while api.get("/readyz").status != 200:
                    self.assertLess(time.monotonic(), deadline, "never ready again:\n" +
                                    server.read_log()[-3000:])
                    time.sleep(0.1)
                time.sleep(0.5)  # let the writer get some acknowledged writes in
            finally:
                stop.set()
                thread.join(timeout=60)
            unexpected = [s for s in statuses if isinstance(s, tuple)]
            self.assertEqual(unexpected, [])
            self.assertIn(503, statuses)
            self.assertIn(201, statuses)
            # Everything acknowledged, before or during the outage, is there.
            for user in before:
                self.assertEqual(api.login(user["user"]["email"]).status, 200)
            for email in acknowledged:
                r = api.login(email)
                self.assertEqual(r.status, 200, (email, r))
            self.assertEqual(api.register().status, 201)
            self.assertEqual(server.proc.poll(), None, "turnkey must not have restarted")
        finally:
            server.close()

    def test_calls_made_while_it_is_down_survive_a_stop_and_are_in_the_history(self):
        """Calls go on without the database (the users are connected already); their
        history waits in memory, and a stop before the database is back saves it in
        state_dir for the next start, which writes it."""
        server = migrated_server(self, "tk_outage_calls")
        server.start()
        helper = None
        brought_up = False
        try:
            users = []
            for _ in range(2):
                r = server.api.register()
                self.assertEqual(r.status, 201, r)
                users.append({"id": r.data["user"]["id"], "token": r.data["token"]})
            helper = test_operations.SioHelper(server.api.base)
            helper.connect("a", users[0]["token"])
            helper.connect("b", users[1]["token"])
            MARIADB.script("down")
            call_id = test_operations.start_call(helper, users[0], users[1])
            ack = helper.emit("a", "endCall", {"callId": call_id})
            self.assertTrue(ack.get("ok"), ack)
            self.assertEqual(helper.wait("b", "callEnded")["reason"], "hangup")
            mark = len(server.read_log())
            server.stop()
            self.assertEqual(server.proc.returncode, 0, server.read_log()[mark:])
            # Saved as the database failed them, or by the stop itself.
            self.assertRegex(server.read_log()[mark:],
                             r"(call history writes not made at shutdown .*; saved to|"
                             r"call history writes wait for the database in) "
                             r".*unwritten-calls\.jsonl")
            MARIADB.script("up")
            brought_up = True
            mark = len(server.read_log())
            server.start()
            self.assertRegex(server.read_log()[mark:], r"call history writes saved at the last "
                             r"stop written from .* \(0 refused, 0 unreadable\)")
            r = server.api.get("/api/calls/history", users[0]["token"])
            self.assertEqual(r.status, 200, r)
            calls = [c for c in r.data["calls"] if c["callId"] == call_id]
            self.assertEqual(len(calls), 1, r.data)
            self.assertEqual(calls[0]["status"], "completed", calls[0])
            self.assertEqual(calls[0]["endReason"], "hangup", calls[0])
            self.assertEqual(calls[0]["direction"], "outgoing", calls[0])
        finally:
            if not brought_up:
                MARIADB.script("up")
            if helper is not None:
                helper.close()
            server.close()

    def assertError(self, response, status, code):
        self.assertEqual(response.status, status, response)
        self.assertEqual(response.json()["code"], code, response)


MARIADB = None


def setUpModule():
    global MARIADB
    MARIADB = MariaDb()


def tearDownModule():
    if MARIADB is not None:
        MARIADB.stop()


if __name__ == "__main__":
    unittest.main()
