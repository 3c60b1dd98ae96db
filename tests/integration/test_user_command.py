"""`turnkey user` and `turnkey call`: the operator's tasks, against the real binary.

An account made with `user add` logs in over the REST API; `user
set-password` (run while the server runs) changes what logs in and revokes
the refresh tokens, and within the server's poll its access tokens are
refused and its sockets closed; `user revoke-sessions` does the same; `user show`
finds a user by id, email or handle and never prints the password hash. Bad
input exits 2, a failure 1. `call show` prints a call of the history with its
participants and ICE reports. On the embedded SQLite store.
"""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import test_accounts  # noqa: E402  (AccountsServer, the REST client)
import test_operations  # noqa: E402  (SioHelper: the stock socket.io-client)

PASSWORD = "first password 1"
# The server reads the logins that ended elsewhere every 5 s.
POLL_WAIT = 15
NEW_PASSWORD = "second password 2"


class UserCommandTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = test_accounts.AccountsServer()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def user(self, *args, stdin=""):
        out = subprocess.run([harness.BINARY, "--config", self.server.config_path, "user", *args],
                             input=stdin, capture_output=True, text=True, timeout=60)
        return out.returncode, out.stdout, out.stderr

    def login(self, email, password):
        return self.server.api.post("/api/auth/login", {"email": email, "password": password})

    def me(self, token):
        return self.server.api.get("/api/users/me", token)

    def refresh(self, token):
        return self.server.api.post("/api/auth/refresh", {"refreshToken": token})

    def test_accounts_from_the_command_line(self):
        # Before the server ever ran: the command creates the SQLite schema.
        rc, out, err = self.user("add", "--email", "Op.Made@example.test", "--handle", "opmade",
                                 "--display-name", "Op Made", stdin=PASSWORD + "\n")
        self.assertEqual(rc, 0, err)
        made = json.loads(out)
        self.assertEqual(made["email"], "Op.Made@example.test")
        self.assertEqual(made["handle"], "opmade")
        self.assertEqual(made["displayName"], "Op Made")
        self.assertNotIn("password", out.lower())

        self.server.start()
        first = self.login("op.made@example.test", PASSWORD)
        self.assertEqual(first.status, 200, first)
        self.assertEqual(first.data["user"]["id"], made["id"])

        for who in (made["id"], "OP.MADE@example.test", "OpMade", "@opmade"):
            rc, out, err = self.user("show", who)
            self.assertEqual(rc, 0, (who, err))
            self.assertEqual(json.loads(out)["id"], made["id"])
            self.assertNotIn("argon2", out)

        # A new password, while the server runs: the old one stops working
        # and so does every refresh token issued before; within a poll, the
        # running server refuses the access tokens and closes the sockets.
        sio = test_operations.SioHelper(self.server.api.base)
        self.addCleanup(sio.close)
        sio.connect("first", first.data["token"], transports=["websocket"])
        rc, out, err = self.user("set-password", "opmade", stdin=NEW_PASSWORD + "\r\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("1 refresh token revoked", out)
        self.assertEqual(self.login("op.made@example.test", PASSWORD).status, 401)
        self.assertEqual(self.refresh(first.data["refreshToken"]).status, 401)
        second = self.login("op.made@example.test", NEW_PASSWORD)
        self.assertEqual(second.status, 200, second)
        self.assertEqual(sio.wait("first", "disconnect", timeout_ms=POLL_WAIT * 1000),
                         "io server disconnect")
        self.assertEqual(self.me(first.data["token"]).code, "TOKEN_REVOKED")
        self.assertEqual(self.me(second.data["token"]).status, 200)

        rc, out, err = self.user("revoke-sessions", made["id"])
        self.assertEqual(rc, 0, err)
        self.assertIn("1 refresh token of", out)
        self.assertEqual(self.refresh(second.data["refreshToken"]).status, 401)
        deadline = time.monotonic() + POLL_WAIT
        while self.me(second.data["token"]).status == 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertEqual(self.me(second.data["token"]).code, "TOKEN_REVOKED")
        self.assertEqual(self.login("op.made@example.test", NEW_PASSWORD).status, 200)

    def test_call_show(self):
        if self.server.proc is None or self.server.proc.poll() is not None:
            self.server.start()
        api = self.server.api
        users = []
        for name in ("showa", "showb"):
            made = api.register(handle=name, display_name=name.upper())
            self.assertEqual(made.status, 201, made)
            users.append(made.data)
        a, b = users
        sio = test_operations.SioHelper(api.base)
        self.addCleanup(sio.close)
        sio.connect("a", a["token"], transports=["websocket"])
        sio.connect("b", b["token"], transports=["websocket"])
        call_id = test_operations.start_call(sio, a["user"], b["user"])
        ended = sio.emit("a", "endCall", {"callId": call_id})
        self.assertTrue(ended.get("ok"), ended)
        rc, out, err = "", "", ""
        deadline = time.monotonic() + 10  # the history is written in batches
        while time.monotonic() < deadline:
            proc = subprocess.run([harness.BINARY, "--config", self.server.config_path, "call",
                                   "show", call_id], capture_output=True, text=True, timeout=60)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
            if rc == 0 and json.loads(out)["status"] == "completed":
                break
            time.sleep(0.2)
        self.assertEqual(rc, 0, err)
        shown = json.loads(out)
        self.assertEqual(shown["callId"], call_id)
        self.assertEqual(shown["status"], "completed")
        self.assertEqual(shown["endReason"], "hangup")
        self.assertEqual(shown["caller"], {"id": a["user"]["id"], "handle": "showa",
                                           "displayName": "SHOWA"})
        self.assertEqual(shown["receiver"]["handle"], "showb")
        self.assertEqual(shown["ice"], {"caller": None, "callee": None})
        proc = subprocess.run([harness.BINARY, "--config", self.server.config_path, "call",
                               "show", "no-such-call"], capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no call with id", proc.stderr)

        # The operator who knows only the complaining user's handle.
        for who in ("@showb", "showb", b["user"]["id"]):
            proc = subprocess.run([harness.BINARY, "--config", self.server.config_path, "call",
                                   "list", who, "--limit", "5"], capture_output=True, text=True,
                                  timeout=60)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            listed = json.loads(proc.stdout)
            self.assertEqual(listed["user"]["handle"], "showb")
            self.assertEqual([c["callId"] for c in listed["calls"]], [call_id])
            self.assertEqual(listed["calls"][0]["direction"], "incoming")
            self.assertEqual(listed["calls"][0]["status"], "completed")
            self.assertIn("ice", listed["calls"][0])
            self.assertFalse(listed["hasMore"])
        proc = subprocess.run([harness.BINARY, "--config", self.server.config_path, "call",
                               "list", "nobody-here"], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no user", proc.stderr)

    def test_bad_input(self):
        cases = [
            (("add", "--email", "not-an-email", "--handle", "okhandle"), PASSWORD + "\n", 2),
            (("add", "--email", "a@example.test", "--handle", "x"), PASSWORD + "\n", 2),
            (("add", "--email", "a@example.test", "--handle", "okhandle"), "short\n", 2),
            (("add", "--email", "a@example.test", "--handle", "okhandle"), "", 2),
            (("add", "--email", "a@example.test"), PASSWORD + "\n", 2),  # --handle required
            (("show", "nobody-by-that-name"), "", 1),
            (("set-password", "nobody@example.test"), NEW_PASSWORD + "\n", 1),
            ((), "", 2),  # an action is required
            (("delete", "x"), "", 2),
        ]
        for args, stdin, expected in cases:
            rc, out, err = self.user(*args, stdin=stdin)
            self.assertEqual(rc, expected, (args, out, err))
            self.assertTrue(err.strip(), args)
        # Taken email or handle (ignoring case): refused, nothing changed.
        rc, _, err = self.user("add", "--email", "dup@example.test", "--handle", "duphandle",
                               stdin=PASSWORD + "\n")
        self.assertEqual(rc, 0, err)
        for email, handle in (("DUP@example.test", "other1"), ("new@example.test", "DupHandle")):
            rc, _, err = self.user("add", "--email", email, "--handle", handle,
                                   stdin=PASSWORD + "\n")
            self.assertEqual(rc, 1, err)
            self.assertIn("already", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
