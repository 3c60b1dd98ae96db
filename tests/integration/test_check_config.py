"""`turnkey check-config` names the file, line and key of what is wrong."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*args):
    out = subprocess.run([harness.BINARY, *args], capture_output=True, text=True, timeout=20)
    return out.returncode, out.stdout + out.stderr


# A certificate the configs below name: the default listeners include TURN
# over TLS, and check-config loads the certificate of a TLS listener.
CERT_DIR = tempfile.mkdtemp(prefix="turnkey-check-")
CERT, KEY = harness.make_cert(CERT_DIR)
os.chmod(KEY, 0o600)
TLS_YAML = f"tls: {{certificate: {CERT}, private_key: {KEY}}}\n"


def tearDownModule():
    shutil.rmtree(CERT_DIR, ignore_errors=True)


def check(text):
    """check-config on `text`, with a loadable certificate unless it has a tls: key."""
    if not text.startswith("tls:") and "\ntls:" not in text:
        text += TLS_YAML
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        rc, output = run("check-config", "--config", path)
    finally:
        os.unlink(path)
    return rc, output, path


class CheckConfigTest(unittest.TestCase):
    def test_unknown_key(self):
        rc, text, path = check("realm: x\nturn:\n  listners: []\n")
        self.assertNotEqual(rc, 0)
        self.assertIn(f"{path}:3:", text)
        self.assertIn("turn.listners", text)

    def test_bad_duration(self):
        rc, text, path = check("turn:\n  lifetimes:\n    permission: 5x\n")
        self.assertNotEqual(rc, 0)
        self.assertIn(f"{path}:3:", text)
        self.assertIn("turn.lifetimes.permission", text)

    def test_duration_without_unit(self):
        rc, text, path = check("signal:\n  ring_timeout: 30\n")
        self.assertNotEqual(rc, 0)
        self.assertIn(f"{path}:2:", text)
        self.assertIn("signal.ring_timeout", text)

    def test_hsts_off_is_a_bare_zero_and_a_config_serving_nothing_is_warned_about(self):
        # Zero needs no unit ("0 = not sent" in the example config).
        rc, text, _ = check("signal:\n  listen: {address: 127.0.0.1, port: 8080, "
                            "hsts_max_age: 0}\n")
        self.assertEqual(rc, 0, text)
        rc, text, path = check("turn: {enabled: false}\nsignal: {enabled: false}\n"
                               "metrics: {enabled: false}\n")
        self.assertEqual(rc, 0, text)
        self.assertIn(f"{path}: warning: turn, signal and metrics are all disabled", text)

    def test_protocol_test_mode_only_on_loopback(self):
        # serve refuses it off loopback, so check-config must say so too
        # rather than "ok"; the default listen address is 0.0.0.0.
        for listen in ("", "  listen: {address: 0.0.0.0, port: 8080}\n",
                       "  listen: {address: '::', port: 8080}\n",
                       "  listen: {address: 192.0.2.1, port: 8080}\n"):
            rc, text, path = check("signal:\n" + listen + "  protocol_test_mode: true\n")
            self.assertEqual(rc, 1, (listen, text))
            self.assertIn("signal.protocol_test_mode", text)
            self.assertIn(f"{path}:", text)
        for address in ("127.0.0.1", "127.0.0.2", "'::1'"):
            rc, text, _ = check(f"signal:\n  listen: {{address: {address}, port: 8080}}\n"
                                "  protocol_test_mode: true\n")
            self.assertEqual(rc, 0, (address, text))
        # With signaling off the key does nothing and is not an error.
        rc, text, _ = check("signal:\n  enabled: false\n  protocol_test_mode: true\n")
        self.assertEqual(rc, 0, text)

    def test_good_file_and_example(self):
        rc, text, _ = check("realm: example.org\n")
        self.assertEqual(rc, 0, text)
        # The example names /etc/turnkey/tls/, which this host need not have:
        # checked with those two paths pointing at a certificate that loads.
        example = os.path.join(SOURCE_DIR, "config", "turnkey.example.yaml")
        with open(example) as f:
            text = f.read()
        for default in ("/etc/turnkey/tls/cert.pem", "/etc/turnkey/tls/key.pem"):
            self.assertIn(default, text)
        text = text.replace("/etc/turnkey/tls/cert.pem", CERT).replace(
            "/etc/turnkey/tls/key.pem", KEY)
        rc, text, _ = check(text)
        self.assertEqual(rc, 0, text)

    def test_secret_files_other_users_can_read_are_warned_about(self):
        # Like OpenSSH with a key: a warning naming the file and its mode,
        # not a refusal (the config is still ok, exit 0).
        with tempfile.TemporaryDirectory() as d:
            secrets = os.path.join(d, "turn-secrets")
            with open(secrets, "w") as f:
                f.write("s3cret-value\n")
            path = os.path.join(d, "t.yaml")
            with open(path, "w") as f:
                f.write("realm: x\nturn:\n  auth: {secrets_file: turn-secrets}\n" + TLS_YAML)
            os.chmod(path, 0o600)
            os.chmod(secrets, 0o644)
            rc, text = run("check-config", "--config", path)
            self.assertEqual(rc, 0, text)
            self.assertIn(f"{path}: ok", text)
            self.assertIn(f"{path}:3: warning: turn.auth.secrets_file: \"{secrets}\" has mode "
                          "0644: any user can read it", text)
            self.assertNotIn("s3cret-value", text)
            os.chmod(secrets, 0o600)
            rc, text = run("check-config", "--config", path)
            self.assertEqual(rc, 0, text)
            self.assertNotIn("has mode", text)
            # Secrets written in the YAML make the YAML a secret file.
            with open(path, "w") as f:
                f.write("realm: x\nturn:\n  auth: {secrets: [s3cret-value]}\n" + TLS_YAML)
            os.chmod(path, 0o604)
            rc, text = run("check-config", "--config", path)
            self.assertEqual(rc, 0, text)
            self.assertIn(f"{path}:3: warning: turn.auth.secrets: \"{path}\" has mode 0604", text)

    def test_tls_files_that_do_not_load_are_errors(self):
        # Like `nginx -t`: serve would not start with them, so the config is
        # bad (exit 1, no "ok"), and the message names the file and why.
        with tempfile.TemporaryDirectory() as d:
            other_cert, other_key = harness.make_cert(d, "other")
            empty = os.path.join(d, "empty.pem")
            open(empty, "w").close()
            missing = os.path.join(d, "missing-key.pem")
            cases = {
                "mismatch": (CERT, other_key,
                             f"error: tls: private key {other_key} does not match the "
                             f"certificate {CERT}: ", "key values mismatch"),
                "missing key": (CERT, missing,
                                f"error: tls: private key {missing}: cannot open: "
                                "No such file or directory", ""),
                "empty certificate": (empty, KEY,
                                      f"error: tls: certificate {empty}: the file is empty", ""),
                "key as certificate": (KEY, CERT,
                                       f"error: tls: certificate {KEY}: no PEM certificate in it",
                                       ""),
            }
            # signal.listen.tls needs the certificate as a TLS TURN listener does.
            listeners = {
                "turn": "",
                "signal": "turn: {enabled: false}\n"
                          "signal:\n  listen: {address: 127.0.0.1, port: 8443, tls: true}\n",
            }
            for what, (cert, key, message, reason) in cases.items():
                for role, yaml in listeners.items():
                    with self.subTest(what=what, role=role):
                        rc, text, path = check(
                            f"realm: x\ntls: {{certificate: {cert}, private_key: {key}}}\n" + yaml)
                        self.assertEqual(rc, 1, text)
                        self.assertIn(f"{path}: {message}", text)
                        self.assertIn(reason, text)
                        self.assertNotIn(": ok", text)
            # No listener that runs uses TLS: the files are not needed.
            rc, text, _ = check(f"tls: {{certificate: {missing}, private_key: {missing}}}\n"
                                "turn:\n  listeners: [{transport: udp, address: 127.0.0.1, "
                                "port: 3478}]\n")
            self.assertEqual(rc, 0, text)
            # The pair that belongs together is fine (the warning is for its chain).
            rc, text, path = check(
                f"tls: {{certificate: {other_cert}, private_key: {other_key}}}\n")
            self.assertEqual(rc, 0, text)
            self.assertIn(f"{path}: ok", text)

    def test_certificates_clients_would_refuse_are_warnings(self):
        # What serve logs as a warning at start: check-config says the same
        # and still exits 0.
        with tempfile.TemporaryDirectory() as d:
            expired, expired_key = harness.make_dated_cert(d, "expired", "20200101000000Z",
                                                           "20200201000000Z")
            future, future_key = harness.make_dated_cert(d, "future", "20991201000000Z",
                                                         "20991231000000Z")
            for cert, key, warning in (
                    (expired, expired_key, "the certificate for localhost expired at "
                                           "2020-02-01T00:00:00Z"),
                    (future, future_key, "the certificate for localhost is not valid before "
                                         "2099-12-01T00:00:00Z"),
                    (CERT, KEY, "the certificate for localhost and the chain in its file do not "
                                "lead to a trusted root (self-signed certificate)")):
                with self.subTest(cert=os.path.basename(cert)):
                    rc, text, path = check(
                        f"tls: {{certificate: {cert}, private_key: {key}}}\n")
                    self.assertEqual(rc, 0, text)
                    self.assertIn(f"{path}: warning: tls: {cert}: {warning}", text)
                    self.assertIn(f"{path}: ok", text)

    def test_relay_address_not_on_this_host(self):
        # serve would log it and answer 440 to every Allocate of its family;
        # both refuse it now. The default wildcards only warn on a host
        # without the family.
        rc, text, path = check("turn:\n  relay: {addresses: [192.0.2.1]}\n")
        self.assertEqual(rc, 1, text)
        self.assertIn(f"{path}: error: turn.relay.addresses: cannot bind 192.0.2.1 on this host",
                      text)
        self.assertNotIn(": ok", text)
        rc, text, path = check("turn:\n  relay: {addresses: [127.0.0.1]}\n")
        self.assertEqual(rc, 0, text)
        self.assertIn(f"{path}: ok", text)

    def test_a_database_ca_file_that_cannot_be_read_is_an_error(self):
        with tempfile.TemporaryDirectory() as d:
            missing = os.path.join(d, "db-ca.pem")
            rc, text, _ = check("database:\n  driver: mysql\n"
                                f"  mysql: {{tls: true, tls_ca_file: {missing}}}\n")
            self.assertEqual(rc, 1, text)
            self.assertIn(f"error: database.mysql.tls_ca_file: cannot read \"{missing}\": "
                          "No such file or directory", text)
            self.assertNotIn(": ok", text)

    def test_missing_file(self):
        rc, text = run("check-config", "--config", "/nonexistent/t.yaml")
        self.assertNotEqual(rc, 0)
        self.assertIn("/nonexistent/t.yaml", text)

    def test_version(self):
        for args in (["--version"], ["-V"], ["version"]):
            rc, text = run(*args)
            self.assertEqual(rc, 0, args)
            self.assertRegex(text, r"^turnkey \d+\.\d+\.\d+\n$", args)
        # The rest of the line is still parsed: a bad argument after the
        # flag is a usage error, not a version.
        rc, text = run("--version", "--bogus")
        self.assertEqual(rc, 2, text)
        self.assertNotRegex(text, r"turnkey \d+\.\d+\.\d+")

    def test_usage_errors_exit_2_and_help_exits_0(self):
        # The operator guide: 2 for bad arguments, whatever the parser caught.
        for args in (["probe"], ["probe", "--bogus", "stun://127.0.0.1:3478"],
                     ["credentials"], ["no-such-command"],
                     ["credentials", "--user", "u", "--ttl", "0"]):
            rc, text = run(*args)
            self.assertEqual(rc, 2, (args, text))
            self.assertTrue(text.strip(), args)
        rc, text = run("probe", "--help")
        self.assertEqual(rc, 0, text)
        self.assertIn("probe", text)

    def test_probe_with_an_unusable_ca_file_exits_2_before_sending(self):
        # docs/operator-guide.md: 2 for bad arguments, 1 when a step failed.
        # A --ca file that cannot be read or holds no certificate is the
        # former, for every transport, and nothing is sent.
        import socket
        with tempfile.TemporaryDirectory() as d:
            not_pem = os.path.join(d, "not-a-ca.pem")
            with open(not_pem, "w") as f:
                f.write("not a certificate\n")
            cert, _ = harness.make_cert(d)
            server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(server.close)
            server.bind(("127.0.0.1", 0))
            port = server.getsockname()[1]
            uris = (f"stun://127.0.0.1:{port}", f"stuns://127.0.0.1:{port}",
                    f"turn://u:p@127.0.0.1:{port}", f"turns://u:p@127.0.0.1:{port}")
            for ca in ("/nonexistent/ca.pem", d, not_pem):
                for uri in uris:
                    rc, text = run("probe", "--timeout", "1s", "--ca", ca, uri)
                    self.assertEqual(rc, 2, (ca, uri, text))
                    self.assertIn("--ca", text)
                    self.assertNotIn("FAILED", text)
            rc, text = run("probe", "--timeout", "1s", "--ca", "/nonexistent/ca.pem", uris[0])
            self.assertIn("/nonexistent/ca.pem", text)
            server.setblocking(False)
            with self.assertRaises(BlockingIOError):
                server.recv(2048)
            # A usable CA file and a server that does not answer: a step failed.
            rc, text = run("probe", "--timeout", "1s", "--ca", cert, uris[0])
            self.assertEqual(rc, 1, text)
            self.assertIn("no answer", text)


class SqlitePathProblemsTest(unittest.TestCase):
    """A database file turnkey cannot use is refused naming why, not with
    SQLite's bare "unable to open database file", and one it may read but not
    write is not opened read-only (the server would look ready and fail every
    write). Root may write anything, so as root the commands run as nobody,
    from a copy of the binary nobody can reach, on files nobody owns."""

    NOBODY = 65534
    ROOT = os.geteuid() == 0

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="turnkey-sqlite-path-")
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, True)

    def config(self, name, db_path):
        path = os.path.join(self.dir, name + ".yaml")
        with open(path, "w") as f:
            f.write(f"database: {{driver: sqlite, sqlite: {{path: {db_path}}}}}\n")
        os.chmod(path, 0o644)
        return path

    def show_unprivileged(self, config):
        binary = harness.BINARY
        drop_privileges = None
        if self.ROOT:
            binary = os.path.join(self.dir, "turnkey")
            if not os.path.exists(binary):
                shutil.copy(harness.BINARY, binary)
                os.chmod(binary, 0o755)

            def drop_privileges():
                os.setgid(self.NOBODY)
                os.setuid(self.NOBODY)

        out = subprocess.run([binary, "--config", config, "user", "show", "someone"],
                             capture_output=True, text=True, timeout=20,
                             preexec_fn=drop_privileges)
        return out.returncode, out.stdout + out.stderr

    def make_database(self, name):
        """A migrated database in a directory of its own, both the
        unprivileged user's."""
        sub = os.path.join(self.dir, name)
        os.mkdir(sub)
        path = os.path.join(sub, "turnkey.db")
        config = self.config(name, path)
        rc, text = run("migrate", "--config", config)
        self.assertEqual(rc, 0, text)
        for leftover in ("-wal", "-shm"):
            if os.path.exists(path + leftover):
                os.unlink(path + leftover)
        if self.ROOT:
            for p in (sub, path):
                os.chown(p, self.NOBODY, self.NOBODY)
        return config, sub, path

    def test_a_directory_in_place_of_the_file(self):
        path = os.path.join(self.dir, "turnkey.db")
        os.mkdir(path)
        rc, text = run("user", "show", "someone", "--config", self.config("dir", path))
        self.assertEqual(rc, 1, text)
        self.assertIn(f"cannot open {path}: it is a directory", text)

    def test_files_it_may_not_write(self):
        # (name, what to chmod: the file or its directory, mode, message)
        # A file not even readable looks the same as another user's 0600 one.
        cases = (
            ("ro-file", "file", 0o444, "cannot write {file}: cannot read and write it: "
                                       "Permission denied"),
            ("ro-dir", "dir", 0o555, "its directory {dir} is not writable"),
            ("unreadable", "file", 0o000, "cannot open {file}: cannot read and write it: "
                                          "Permission denied"),
        )
        for name, target, mode, message in cases:
            with self.subTest(name):
                config, sub, path = self.make_database(name)
                os.chmod(path if target == "file" else sub, mode)
                rc, text = self.show_unprivileged(config)
                self.assertEqual(rc, 1, text)
                self.assertIn(message.format(file=path, dir=sub), text)
                self.assertFalse(os.path.exists(path + "-wal"))


class CredentialsTest(unittest.TestCase):
    def test_turn_rest_json(self):
        import base64
        import hashlib
        import hmac
        import json
        import time
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "secrets"), "w") as f:
                f.write("# newest first\nnew-secret\nold-secret\n")
            path = os.path.join(d, "t.yaml")
            with open(path, "w") as f:
                f.write("turn:\n  auth: {secrets_file: secrets}\n"
                        "signal:\n  ice_servers:\n"
                        "    urls: ['stun:127.0.0.1:3478', 'turn:127.0.0.1:3478?transport=udp',\n"
                        "           'turns:127.0.0.1:5349?transport=tcp']\n"
                        "    credential_ttl: 1h\n")
            out = subprocess.run([harness.BINARY, "credentials", "--config", path,
                                  "--user", "alice"], capture_output=True, text=True, timeout=20)
            self.assertEqual(out.returncode, 0, out.stderr)
            data = json.loads(out.stdout)  # stdout alone must be the JSON
            self.assertEqual(data["ttl"], 3600)
            # The TURN URIs only (stun: needs no credential), as the REST API.
            self.assertEqual(data["uris"], ["turn:127.0.0.1:3478?transport=udp",
                                            "turns:127.0.0.1:5349?transport=tcp"])
            expiry, user = data["username"].split(":")
            self.assertEqual(user, "alice")
            self.assertAlmostEqual(int(expiry), time.time() + 3600, delta=30)
            want = base64.b64encode(hmac.new(b"new-secret", data["username"].encode(),
                                             hashlib.sha1).digest()).decode()
            self.assertEqual(data["password"], want)
            # The user id goes into the USERNAME: no ':' and no control characters.
            # ... and must stay under 509 bytes with the expiry (RFC 8489 section 14.3).
            # Invalid UTF-8 ("\udcff" is the byte 0xff as an argument) too.
            for bad in ("a:b", "bob\nx", "tab\tx", "", "u" * 498, "u\udcffx"):
                out = subprocess.run([harness.BINARY, "credentials", "--config", path,
                                      "--user", bad], capture_output=True, text=True, timeout=20)
                self.assertEqual(out.returncode, 2, (bad, out.stderr))
                self.assertEqual(out.stdout, "", bad)

    def test_no_secret_is_an_error(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.yaml")
            with open(path, "w") as f:
                f.write("realm: x\n")
            rc, text = run("credentials", "--config", path, "--user", "a")
        self.assertNotEqual(rc, 0)
        self.assertIn("secret", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
