"""TURN relay integration tests: the real turnkey binary on loopback.

Driven by clients turnkey's authors did not write (coturn's turnutils_uclient
and turnutils_peer), by `turnkey probe`, and by turn_client.py, a small TURN
client written from RFC 8656 that checks exact error codes.

Development aid: TURNKEY_TEST_AGAINST=coturn runs the same tests against
coturn's turnserver (coturn_server.py) to show the test logic is right. The
tests target turnkey and never skip.
"""

import hashlib
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import turn_client as tc  # noqa: E402

AGAINST = os.environ.get("TURNKEY_TEST_AGAINST", "turnkey")
REALM = "turnkey.test"  # harness.Turnkey's realm
SECRET = "it-secret-" + os.urandom(8).hex()
OLD_SECRET = "it-old-secret-" + os.urandom(8).hex()
STATIC_USER = "alice"
STATIC_PASSWORD = "alice-" + os.urandom(6).hex()
# Relayed traffic in these tests goes to loopback peers, which turnkey (like
# any safe TURN server) refuses unless an allow rule names them.
ALLOW_LOOPBACK = '  peers:\n    allow: [127.0.0.0/8, "::1/128"]\n'


def start_server(secrets=(), static_users=None, allow_loopback=False, nonce_lifetime=None,
                 allocations_per_user=None, relay_ports=None, ipv6_relay=False, threads=2):
    """Starts turnkey (or, for development, coturn) with these settings."""
    if AGAINST == "coturn":
        import coturn_server
        return coturn_server.Coturn(
            realm=REALM, secrets=secrets, static_users=static_users,
            allow_loopback=allow_loopback, nonce_lifetime=nonce_lifetime,
            allocations_per_user=allocations_per_user, relay_ports=relay_ports,
            ipv6_relay=ipv6_relay, threads=threads).__enter__()
    yaml = "  auth:\n"
    if secrets:
        yaml += "    secrets: [" + ", ".join(f'"{s}"' for s in secrets) + "]\n"
    if static_users:
        yaml += "    static_users:\n"
        for name, password in static_users.items():
            key = hashlib.md5(f"{name}:{REALM}:{password}".encode()).hexdigest()
            yaml += f"      - {{name: {name}, key: {key}}}\n"
    if nonce_lifetime:
        yaml += f"    nonce_lifetime: {nonce_lifetime}s\n"
    if allocations_per_user:
        yaml += f"  quotas: {{allocations_per_user: {allocations_per_user}}}\n"
    if allow_loopback:
        yaml += ALLOW_LOOPBACK
    relay = "{addresses: [127.0.0.1" + (', "::1"' if ipv6_relay else "") + "]"
    if relay_ports:
        relay += f", ports: {{min: {relay_ports[0]}, max: {relay_ports[1]}}}"
    relay += "}"
    server = harness.Turnkey(threads=threads, turn_yaml=yaml, relay_yaml=relay)
    server.realm = REALM
    return server.__enter__()


def rest_credential(user, secret=SECRET, ttl=3600):
    return tc.turn_rest_credential(secret, user, time.time() + ttl)


def unique_user(prefix):
    return f"{prefix}-{os.urandom(4).hex()}"


def run_probe(*args, timeout=60):
    out = subprocess.run([harness.BINARY, "probe", "--timeout", "3s", *args],
                         capture_output=True, text=True, timeout=timeout)
    return out.returncode, out.stdout + out.stderr


class UdpPeer:
    """A UDP socket standing in for a peer on the far side of the relay."""

    def __init__(self, host="127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.address = self.sock.getsockname()[:2]

    def sendto(self, data, address):
        self.sock.sendto(data, address)

    def recv(self, timeout=3.0):
        """(data, source) or None if nothing came within `timeout`."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        data, source = self.sock.recvfrom(65536)
        return data, source[:2]

    def close(self):
        self.sock.close()


class TurnutilsPeer:
    """coturn's UDP echo peer on 127.0.0.1."""

    def __init__(self):
        self.port = harness.free_port(both=False)
        # free_port checks TCP; the peer needs UDP: retry on a clash.
        for _ in range(20):
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.port = harness.free_port(both=False)
            finally:
                probe.close()
        self.proc = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                s.sendto(b"ready?", ("127.0.0.1", self.port))
                ready, _, _ = select.select([s], [], [], 0.2)
                if ready and s.recv(100) == b"ready?":
                    return
            self.stop()
            raise RuntimeError("turnutils_peer did not echo")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def run_uclient(server, peer, *flags, messages=40, clients=4, length=120, port=None):
    """Runs turnutils_uclient through `server` to `peer`; returns (sent, received, lost, text).

    uclient pairs an RTP and an RTCP allocation per client (EVEN-PORT and
    RESERVATION-TOKEN), so `clients` even gives clients * messages packets.
    It sends one packet per session every 20 ms: a moderate rate.
    """
    args = ["turnutils_uclient", "-n", str(messages), "-m", str(clients), "-l", str(length),
            "-e", "127.0.0.1", "-r", str(peer.port), "-p", str(port or server.port), *flags,
            "127.0.0.1"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", text)
    lost = re.search(r"Total lost packets (\d+)", text)
    if not totals or not lost:
        return None, None, None, text
    sent, received = map(int, totals[-1])
    return sent, received, int(lost.group(1)), text


def stall_process(proc, times, start=1.5, stall=0.1, gap=0.3):
    """Stops `proc` for `stall` seconds `times` times, after `start` seconds."""
    time.sleep(start)
    for _ in range(times):
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(stall)
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(gap)


class UclientMixin:
    def assert_relays_without_loss(self, *flags, port=None, messages=40, clients=4):
        sent, received, lost, text = run_uclient(self.server, self.peer, *flags, port=port,
                                                 messages=messages, clients=clients)
        context = f"{' '.join(flags)}\n{text[-3000:]}\n--- server log ---\n" + \
            self.server.read_log()[-3000:]
        self.assertIsNotNone(sent, "uclient printed no totals:\n" + context)
        self.assertEqual(sent, messages * clients, context)
        self.assertEqual(received, sent, context)
        self.assertEqual(lost, 0, context)
        self.assertNotIn("ERROR", text, context)


class RestCredentialsRelayTest(unittest.TestCase, UclientMixin):
    """TURN REST credentials (turn.auth.secrets), loopback peers allowed."""

    @classmethod
    def setUpClass(cls):
        cls.server = start_server(secrets=[SECRET], allow_loopback=True, ipv6_relay=True)
        cls.peer = TurnutilsPeer()

    @classmethod
    def tearDownClass(cls):
        cls.peer.stop()
        cls.server.stop()

    def test_uclient_udp_channels(self):
        self.assert_relays_without_loss("-W", SECRET, "-u", unique_user("uc-udp"))

    def test_uclient_udp_send_indications(self):
        self.assert_relays_without_loss("-s", "-W", SECRET, "-u", unique_user("uc-send"))

    def test_uclient_tcp(self):
        self.assert_relays_without_loss("-t", "-W", SECRET, "-u", unique_user("uc-tcp"))

    def test_uclient_tls(self):
        self.assert_relays_without_loss("-t", "-S", "-W", SECRET, "-u", unique_user("uc-tls"),
                                        port=self.server.tls_port)

    def test_uclient_dtls(self):
        # -S without -t: TURN over DTLS (RFC 7350) on the TLS port's UDP side.
        self.assert_relays_without_loss("-S", "-W", SECRET, "-u", unique_user("uc-dtls"),
                                        port=self.server.tls_port)

    def test_uclient_wrong_secret_relays_nothing(self):
        sent, _, _, text = run_uclient(self.server, self.peer, "-W", "not-the-secret", "-u",
                                       unique_user("uc-bad"), messages=5, clients=2)
        self.assertFalse(sent, text)

    def test_probe_with_secret_udp_tcp_tls_dtls(self):
        user = unique_user("probe")
        for uri in (f"turn://{user}@127.0.0.1:{self.server.port}",
                    f"turn://{user}@127.0.0.1:{self.server.port}?transport=tcp",
                    f"turns://{user}@localhost:{self.server.tls_port}",
                    f"turns://{user}@localhost:{self.server.tls_port}?transport=udp"):
            rc, text = run_probe("--ca", self.server.cert, "--secret", SECRET, uri)
            self.assertEqual(rc, 0, text + self.server.read_log()[-3000:])
            self.assertRegex(text, r"relayed address\s*:\s*127\.0\.0\.1:\d+")
            self.assertRegex(text, r"send/data\s*:\s*5/5 echoed, rtt min/avg/max [\d.]+/[\d.]+/")
            self.assertRegex(text, r"channel data\s*:\s*5/5 echoed, rtt")
            self.assertRegex(text, r"refresh 0\s*:\s*ok")

    def test_probe_asks_for_an_ipv6_relay(self):
        # Over IPv4 to the server, an IPv6 relayed address and an echo peer on ::1.
        rc, text = run_probe("--secret", SECRET, "--relay-family", "ipv6",
                             f"turn://{unique_user('probe6')}@127.0.0.1:{self.server.port}")
        self.assertEqual(rc, 0, text + self.server.read_log()[-3000:])
        self.assertRegex(text, r"relayed address\s*:\s*\[::1\]:\d+")
        self.assertRegex(text, r"echo peer\s*:\s*\[::1\]:\d+")
        self.assertRegex(text, r"channel data\s*:\s*5/5 echoed")
        rc, text = run_probe("--relay-family", "ipv5", f"turn://x:y@127.0.0.1:{self.server.port}")
        self.assertEqual(rc, 2, text)

    def test_probe_with_minted_credential_in_the_uri(self):
        username, password = rest_credential(unique_user("probe-uri"))
        # A TURN REST username holds a ':'; the password may hold '/', '+', '='.
        quoted = password.replace("%", "%25").replace("/", "%2F")
        rc, text = run_probe(f"turn://{username}:{quoted}@127.0.0.1:{self.server.port}")
        self.assertEqual(rc, 0, text)

    def test_probe_with_wrong_secret_fails_clearly(self):
        rc, text = run_probe("--secret", "not-the-secret",
                             f"turn://{unique_user('probe')}@127.0.0.1:{self.server.port}")
        self.assertEqual(rc, 1, text)
        self.assertIn("401", text)
        self.assertIn("credentials", text)


class StaticUserRelayTest(unittest.TestCase, UclientMixin):
    """A static user (turn.auth.static_users, configured by key), loopback peers allowed."""

    @classmethod
    def setUpClass(cls):
        cls.server = start_server(static_users={STATIC_USER: STATIC_PASSWORD, "bob": "bob-pw"},
                                  allow_loopback=True)
        cls.peer = TurnutilsPeer()

    @classmethod
    def tearDownClass(cls):
        cls.peer.stop()
        cls.server.stop()

    def test_uclient_udp(self):
        self.assert_relays_without_loss("-u", STATIC_USER, "-w", STATIC_PASSWORD, clients=2)

    def test_uclient_tcp(self):
        self.assert_relays_without_loss("-t", "-u", STATIC_USER, "-w", STATIC_PASSWORD,
                                        clients=2)

    def test_uclient_tls(self):
        self.assert_relays_without_loss("-t", "-S", "-u", STATIC_USER, "-w", STATIC_PASSWORD,
                                        port=self.server.tls_port, clients=2)

    def test_uclient_dtls_send_indications(self):
        self.assert_relays_without_loss("-S", "-s", "-u", STATIC_USER, "-w", STATIC_PASSWORD,
                                        port=self.server.tls_port, clients=2)

    def test_uclient_tls_through_server_stalls(self):
        # Stopping the server a few times makes peer datagrams wait and then
        # leave in one batch. uclient takes each TLS record for one message
        # (one SSL_read), so every message must keep a record of its own.
        stalls = threading.Thread(target=stall_process, args=(self.server.proc, 5))
        stalls.start()
        try:
            self.assert_relays_without_loss("-t", "-S", "-u", STATIC_USER, "-w", STATIC_PASSWORD,
                                            port=self.server.tls_port, clients=2)
        finally:
            stalls.join()

    def test_probe_udp_tcp_tls(self):
        creds = f"{STATIC_USER}:{STATIC_PASSWORD}"
        for uri in (f"turn://{creds}@127.0.0.1:{self.server.port}",
                    f"turn://{creds}@127.0.0.1:{self.server.port}?transport=tcp",
                    f"turns://{creds}@localhost:{self.server.tls_port}"):
            rc, text = run_probe("--ca", self.server.cert, uri)
            self.assertEqual(rc, 0, text + self.server.read_log()[-3000:])
            self.assertRegex(text, r"send/data\s*:\s*5/5 echoed")
            self.assertRegex(text, r"channel data\s*:\s*5/5 echoed")

    def test_probe_with_wrong_password_fails_clearly(self):
        rc, text = run_probe(f"turn://{STATIC_USER}:wrong@127.0.0.1:{self.server.port}")
        self.assertEqual(rc, 1, text)
        self.assertIn("FAILED: allocate: 401", text)
        self.assertIn("wrong user name or password", text)
        self.assertNotIn("relayed address", text)

    def test_python_client_static_user(self):
        with tc.TurnClient("127.0.0.1", self.server.port, username="bob",
                           password="bob-pw") as c:
            r = c.allocate()
            self.assertEqual(r.cls, tc.SUCCESS, r)
            self.assertTrue(r.integrity_valid(c.key), "response MESSAGE-INTEGRITY")
            self.assertEqual(c.refresh(0).cls, tc.SUCCESS)


# Peers the default policy must refuse (reference/security.md): internal IPv4
# addresses and every IPv6 form that embeds one (IPv4-mapped, IPv4-compatible,
# NAT64, 6to4), loopback, and the unspecified addresses.
V4_REFUSED = ["127.0.0.1", "10.0.0.1", "169.254.169.254", "0.0.0.0"]
V6_REFUSED = ["::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
              "2002:7f00:1::", "::127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1",
              "2002:a00:1::", "::1", "::"]
# Public addresses a permission may be made for (a permission sends nothing).
V4_PUBLIC = "8.8.8.8"
V6_PUBLIC = "2001:4860:4860::8888"


class DefaultPeerPolicyTest(unittest.TestCase):
    """The default config (no allow rules) refuses internal peers on every path."""

    @classmethod
    def setUpClass(cls):
        cls.server = start_server(secrets=[SECRET], ipv6_relay=True)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def client(self):
        username, password = rest_credential(unique_user("policy"))
        return tc.TurnClient("127.0.0.1", self.server.port, username=username, password=password)

    def check_peers(self, family, same_family_refused, other_family, public):
        """RFC 8656 s10.2 / s12.2: a peer of the other family than the relay is
        443 Peer Address Family Mismatch (checked before policy); a peer the
        server refuses is 403 Forbidden; a public peer is accepted."""
        with self.client() as c:
            r = c.allocate(family=family)
            self.assertEqual(r.cls, tc.SUCCESS, f"{r} for family {family}")
            relayed = r.address(tc.XOR_RELAYED_ADDRESS)
            self.assertEqual(":" in relayed[0], family == tc.FAMILY_IPV6, relayed)
            channel = 0x4000
            for ip in same_family_refused:
                for name, response in (
                        ("CreatePermission", c.create_permission((ip, 40000))),
                        ("ChannelBind", c.channel_bind(channel, (ip, 40000)))):
                    self.assertEqual(response.cls, tc.ERROR, f"{name} {ip} was accepted")
                    self.assertEqual(response.error_code, 403, f"{name} {ip}: {response}")
                channel += 1
            for ip in other_family:
                for name, response in (
                        ("CreatePermission", c.create_permission((ip, 40000))),
                        ("ChannelBind", c.channel_bind(channel, (ip, 40000)))):
                    self.assertEqual(response.error_code, 443, f"{name} {ip}: {response}")
                channel += 1
            # Control: the refusals above are the policy, not a broken server.
            r = c.create_permission((public, 40000))
            self.assertEqual(r.cls, tc.SUCCESS, r)
            self.assertEqual(c.channel_bind(channel, (public, 40000)).cls, tc.SUCCESS)
            self.assertEqual(c.refresh(0).cls, tc.SUCCESS)

    def test_ipv4_relay_refuses_internal_peers(self):
        self.check_peers(tc.FAMILY_IPV4, V4_REFUSED, V6_REFUSED, V4_PUBLIC)

    def test_ipv6_relay_refuses_embedded_ipv4_and_internal_peers(self):
        self.check_peers(tc.FAMILY_IPV6, V6_REFUSED, V4_REFUSED, V6_PUBLIC)

    def test_send_to_refused_peer_is_not_relayed(self):
        peer = UdpPeer()
        try:
            with self.client() as c:
                self.assertEqual(c.allocate().cls, tc.SUCCESS)
                self.assertEqual(c.create_permission(peer.address).error_code, 403)
                c.send_indication(peer.address, b"must not arrive")
                # The server handles one 5-tuple in order: once this answer is
                # back, the Send before it has been dropped or relayed.
                self.assertEqual(c.refresh(0).cls, tc.SUCCESS)
            self.assertIsNone(peer.recv(timeout=0.3))
        finally:
            peer.close()

    def test_probe_explains_a_refused_peer(self):
        rc, text = run_probe("--secret", SECRET,
                             f"turn://{unique_user('probe')}@127.0.0.1:{self.server.port}")
        self.assertEqual(rc, 1, text)
        self.assertIn("FAILED: create permission: 403", text)
        self.assertIn("turn.peers.allow", text)
        self.assertRegex(text, r"refresh 0\s*:\s*ok")


class OneToOneNatTest(unittest.TestCase):
    """A host behind a 1:1 NAT (turn.relay.external_addresses), played on loopback: clients are
    told 127.0.0.2, which no relay socket binds (they bind 127.0.0.1), as a cloud host is told
    its public address. Two clients of the server still reach each other's relayed address
    without anything sending the server's traffic back to it."""

    @classmethod
    def setUpClass(cls):
        if AGAINST != "turnkey":
            raise unittest.SkipTest("turnkey's own handling of its public address")
        yaml = f'  auth:\n    secrets: ["{SECRET}"]\n' + ALLOW_LOOPBACK
        cls.server = harness.Turnkey(
            turn_yaml=yaml,
            # Every ephemeral port in the relay range: the probe's echo peer (a process on
            # the host) always sends from a port of it, as a relay socket would.
            relay_yaml="{addresses: [127.0.0.1], external_addresses: [127.0.0.2], "
                       "ports: {min: 32768, max: 65535}}").__enter__()
        cls.server.realm = REALM

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def client(self):
        username, password = rest_credential(unique_user("nat"))
        return tc.TurnClient("127.0.0.1", self.server.port, username=username, password=password)

    def test_two_clients_relay_to_each_other_through_the_public_address(self):
        with self.client() as a, self.client() as b:
            relayed_a = a.allocate().address(tc.XOR_RELAYED_ADDRESS)
            relayed_b = b.allocate().address(tc.XOR_RELAYED_ADDRESS)
            self.assertEqual(relayed_a[0], "127.0.0.2")
            self.assertEqual(a.create_permission(relayed_b).cls, tc.SUCCESS)
            self.assertEqual(b.create_permission(relayed_a).cls, tc.SUCCESS)
            a.send_indication(relayed_b, b"to b")
            self.assertEqual(b.receive(), ("data", relayed_a, b"to b"))
            self.assertEqual(b.channel_bind(0x4001, relayed_a).cls, tc.SUCCESS)
            b.send_channel_data(0x4001, b"to a")
            self.assertEqual(a.receive(), ("data", relayed_b, b"to a"))

    def test_probe_on_the_host_says_it_cannot_check_the_public_address(self):
        rc, text = run_probe("--secret", SECRET,
                             f"turn://{unique_user('probe')}@127.0.0.1:{self.server.port}")
        self.assertEqual(rc, 0, text)
        self.assertRegex(text, r"relayed address\s*:\s*127\.0\.0\.2:\d+")
        self.assertRegex(text, r"relay source\s*:\s*127\.0\.0\.1:\d+")
        self.assertIn("cannot be checked here", text)


class TurnErrorCodesTest(unittest.TestCase):
    """Error codes and relaying rules, through the real binary, with our client."""

    @classmethod
    def setUpClass(cls):
        cls.server = start_server(secrets=[SECRET, OLD_SECRET], allow_loopback=True,
                                  allocations_per_user=2)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def client(self, user=None, secret=SECRET, transport="udp", credential=None):
        username, password = credential or rest_credential(user or unique_user("ec"), secret)
        port = self.server.port
        return tc.TurnClient("127.0.0.1", port, transport=transport, username=username,
                             password=password)

    def test_401_without_credentials_carries_realm_and_nonce(self):
        with self.client() as c:
            r = c.request(tc.ALLOCATE, [(tc.REQUESTED_TRANSPORT, bytes([tc.PROTO_UDP, 0, 0, 0]))],
                          auth=False)
            self.assertEqual(r.error_code, 401, r)
            self.assertEqual(r.text(tc.REALM), REALM)
            self.assertTrue(r.text(tc.NONCE))
            self.assertFalse(r.has(tc.XOR_RELAYED_ADDRESS))

    def test_400_without_requested_transport(self):
        with self.client() as c:
            r = c.allocate(transport=None)
            self.assertEqual(r.error_code, 400, r)

    def test_442_unsupported_transport(self):
        # turnkey relays UDP only (no RFC 6062 TCP relays yet): TCP, like any
        # other protocol it does not relay, is 442 (RFC 8656 s7.2).
        for proto in (tc.PROTO_TCP, 132):
            with self.client() as c:
                r = c.allocate(transport=proto)
                self.assertEqual(r.error_code, 442, f"protocol {proto}: {r}")

    def test_437_second_allocate_on_the_same_five_tuple(self):
        with self.client() as c:
            self.assertEqual(c.allocate().cls, tc.SUCCESS)
            r = c.allocate()
            self.assertEqual(r.error_code, 437, r)
            self.assertEqual(c.refresh(0).cls, tc.SUCCESS)

    def test_441_other_user_on_an_existing_allocation(self):
        alice = rest_credential(unique_user("alice"))
        bob = rest_credential(unique_user("bob"))
        peer = ("127.0.0.1", 40000)
        with self.client(credential=alice) as c:
            self.assertEqual(c.allocate().cls, tc.SUCCESS)
            c.set_credentials(*bob)
            r = c.create_permission(peer)
            self.assertEqual(r.error_code, 441, r)
            r = c.refresh(600)
            self.assertEqual(r.error_code, 441, r)
            c.set_credentials(*alice)
            self.assertEqual(c.create_permission(peer).cls, tc.SUCCESS)
            self.assertEqual(c.refresh(0).cls, tc.SUCCESS)

    def test_wrong_password_is_401(self):
        username, _ = rest_credential(unique_user("wrong"))
        with self.client(credential=(username, "bm90IHRoZSBwYXNzd29yZA==")) as c:
            r = c.allocate()
            self.assertEqual(r.error_code, 401, r)

    def test_expired_rest_username_is_401(self):
        expired = tc.turn_rest_credential(SECRET, unique_user("late"), time.time() - 60)
        with self.client(credential=expired) as c:
            r = c.allocate()
            self.assertEqual(r.error_code, 401, r)
        # Control: the same user with a live timestamp gets in.
        with self.client() as c:
            self.assertEqual(c.allocate().cls, tc.SUCCESS)
            self.assertEqual(c.refresh(0).cls, tc.SUCCESS)

    def test_an_allocation_outlives_its_credential_until_its_own_lifetime(self):
        # A call longer than its TURN credential: the browser refreshes permissions and
        # channels with the credential it allocated with, and deletes the allocation at the end.
        short = tc.turn_rest_credential(SECRET, unique_user("long"), time.time() + 2)
        with self.client(credential=short) as c:
            self.assertEqual(c.allocate().cls, tc.SUCCESS)
            time.sleep(2.5)
            self.assertEqual(c.create_permission(("8.8.8.8", 53)).cls, tc.SUCCESS)
            self.assertEqual(c.channel_bind(0x4000, ("8.8.8.8", 53)).cls, tc.SUCCESS)
            self.assertEqual(c.refresh(600).error_code, 401)  # not past its lifetime
            self.assertEqual(c.refresh(0).cls, tc.SUCCESS)

    def test_secret_rotation_accepts_every_configured_secret(self):
        for secret in (SECRET, OLD_SECRET):
            with self.client(secret=secret) as c:
                r = c.allocate()
                self.assertEqual(r.cls, tc.SUCCESS, f"{r} (secret {secret[:6]}...)")
                self.assertEqual(c.refresh(0).cls, tc.SUCCESS)
        with self.client(secret="never-configured") as c:
            self.assertEqual(c.allocate().error_code, 401)

    def test_486_allocation_quota_per_user(self):
        # One credential for all four clients, so the quota applies whether
        # the server counts per USERNAME or per user id after the ':'.
        credential = rest_credential(unique_user("quota"))
        clients = [self.client(credential=credential) for _ in range(4)]
        try:
            self.assertEqual(clients[0].allocate().cls, tc.SUCCESS)
            self.assertEqual(clients[1].allocate().cls, tc.SUCCESS)
            r = clients[2].allocate()
            self.assertEqual(r.error_code, 486, r)
            # The log says whose quota it was (rate-limited: one line per 10 s).
            self.assertRegex(self.server.read_log(),
                             r'turn: user "[^"]*quota[^"]*" has 2 allocations '
                             r'\(turn\.quotas\.allocations_per_user\); Allocate from '
                             r'127\.0\.0\.1:\d+ refused \(486\)')
            # Another user is not affected.
            with self.client() as other:
                self.assertEqual(other.allocate().cls, tc.SUCCESS)
                self.assertEqual(other.refresh(0).cls, tc.SUCCESS)
            # Freeing one gives the slot back.
            self.assertEqual(clients[0].refresh(0).cls, tc.SUCCESS)
            self.assertEqual(clients[3].allocate().cls, tc.SUCCESS)
        finally:
            for c in clients:
                c.close()

    def test_refresh_lifetime_zero_deletes_the_allocation(self):
        peer = UdpPeer()
        try:
            with self.client() as c:
                r = c.allocate()
                self.assertEqual(r.cls, tc.SUCCESS, r)
                relayed = r.address(tc.XOR_RELAYED_ADDRESS)
                self.assertEqual(c.create_permission(peer.address).cls, tc.SUCCESS)
                c.send_indication(peer.address, b"before")
                self.assertEqual(peer.recv(), (b"before", relayed))
                r = c.refresh(0)
                self.assertEqual(r.cls, tc.SUCCESS, r)
                self.assertIn(r.lifetime, (0, None))
                c.send_indication(peer.address, b"after")
                # The Send before this Refresh has been handled once the 437 is back.
                r = c.refresh(600)
                self.assertEqual(r.error_code, 437, r)
                self.assertIsNone(peer.recv(timeout=0.3), "relayed after the allocation was freed")
                # The 5-tuple is free again.
                self.assertEqual(c.allocate().cls, tc.SUCCESS)
                self.assertEqual(c.refresh(0).cls, tc.SUCCESS)
        finally:
            peer.close()

    def test_data_indications_only_from_permitted_peers(self):
        permitted = UdpPeer("127.0.0.1")
        stranger = UdpPeer("127.0.0.2")  # permissions are per IP address
        try:
            with self.client() as c:
                r = c.allocate()
                self.assertEqual(r.cls, tc.SUCCESS, r)
                relayed = r.address(tc.XOR_RELAYED_ADDRESS)
                self.assertEqual(c.create_permission(permitted.address).cls, tc.SUCCESS)
                stranger.sendto(b"from the stranger", relayed)
                permitted.sendto(b"from the permitted peer", relayed)
                # Both datagrams reach the relay socket in this order, so had the
                # stranger's been relayed it would come first.
                self.assertEqual(c.receive(), ("data", permitted.address,
                                               b"from the permitted peer"))
                self.assertIsNone(c.receive(timeout=0.3))
                self.assertEqual(c.refresh(0).cls, tc.SUCCESS)
        finally:
            permitted.close()
            stranger.close()

    def test_the_largest_send_indication_over_tcp_is_relayed(self):
        # RFC 8489 section 5: a STUN message may be 20 + 65,532 bytes, and
        # TCP frames it by its length (RFC 8656 section 12.5). A Send
        # indication carrying the largest IPv4 UDP payload (65,507 bytes) is
        # 65,544 bytes: more than the largest ChannelData frame, which the
        # stream's limit once was (the connection was reset, the allocation
        # lost).
        peer = UdpPeer()
        try:
            with self.client(transport="tcp") as c:
                r = c.allocate()
                self.assertEqual(r.cls, tc.SUCCESS, r)
                relayed = r.address(tc.XOR_RELAYED_ADDRESS)
                self.assertEqual(c.create_permission(peer.address).cls, tc.SUCCESS)
                payload = os.urandom(65507)
                c.send_indication(peer.address, payload)
                self.assertEqual(peer.recv(), (payload, relayed))
                peer.sendto(payload, relayed)
                self.assertEqual(c.receive(), ("data", peer.address, payload))
                self.assertEqual(c.refresh(0).cls, tc.SUCCESS)
        finally:
            peer.close()

    def icmp_reaches_the_client(self, transport):
        # RFC 8656 section 11.5: the ICMP port unreachable a datagram to a
        # closed port draws comes back as a Data indication with the
        # datagram's destination and the ICMP type and code; the relay keeps
        # working, for that peer and for others.
        peer = UdpPeer()
        closed = UdpPeer()
        closed_address = closed.address
        closed.close()
        try:
            with self.client(transport=transport) as c:
                r = c.allocate()
                self.assertEqual(r.cls, tc.SUCCESS, r)
                relayed = r.address(tc.XOR_RELAYED_ADDRESS)
                self.assertEqual(c.create_permission(peer.address).cls, tc.SUCCESS)
                for attempt in range(2):
                    c.send_indication(closed_address, b"anyone there?")
                    self.assertEqual(c.receive(), ("icmp", closed_address, (3, 3, 0)), attempt)
                    c.send_indication(peer.address, b"still relaying")
                    self.assertEqual(peer.recv(), (b"still relaying", relayed))
                    peer.sendto(b"and back", relayed)
                    self.assertEqual(c.receive(), ("data", peer.address, b"and back"))
                # Through a channel, the same Data indication (ChannelData
                # has no room for ICMP).
                self.assertEqual(c.channel_bind(0x4002, closed_address).cls, tc.SUCCESS)
                c.send_channel_data(0x4002, b"anyone there?")
                self.assertEqual(c.receive(), ("icmp", closed_address, (3, 3, 0)))
                self.assertIsNone(c.receive(timeout=0.3))
                self.assertEqual(c.refresh(0).cls, tc.SUCCESS)
        finally:
            peer.close()

    def test_icmp_port_unreachable_comes_back_to_a_udp_client(self):
        self.icmp_reaches_the_client("udp")

    def test_icmp_port_unreachable_comes_back_to_a_tcp_client(self):
        self.icmp_reaches_the_client("tcp")

    def channel_round_trip(self, transport):
        peer = UdpPeer()
        try:
            with self.client(transport=transport) as c:
                r = c.allocate()
                self.assertEqual(r.cls, tc.SUCCESS, r)
                relayed = r.address(tc.XOR_RELAYED_ADDRESS)
                r = c.channel_bind(0x4001, peer.address)
                self.assertEqual(r.cls, tc.SUCCESS, r)
                # Lengths that need 0..3 bytes of padding over streams, and
                # datagrams past any MTU (TURN sets no limit, RFC 8656 section
                # 12: up to what a UDP datagram holds).
                for size in (1, 2, 3, 4, 5, 100, 1001, 4000, 60000):
                    payload = os.urandom(size)
                    c.send_channel_data(0x4001, payload)
                    self.assertEqual(peer.recv(), (payload, relayed), f"size {size}")
                    reply = os.urandom(size)
                    peer.sendto(reply, relayed)
                    self.assertEqual(c.receive(), ("channel", 0x4001, reply), f"size {size}")
                self.assertEqual(c.refresh(0).cls, tc.SUCCESS)
        finally:
            peer.close()

    def test_a_tcp_client_that_stops_reading_keeps_its_allocation(self):
        # A phone in a tunnel: its TCP connection stalls while the peer keeps
        # sending. Past a backlog the server drops the peer's datagrams (as
        # UDP would), instead of queueing seconds of stale media and then
        # closing the connection, and with it the allocation, at its 4 MiB
        # output limit.
        peer = UdpPeer()
        try:
            with self.client(transport="tcp") as c:
                r = c.allocate()
                self.assertEqual(r.cls, tc.SUCCESS, r)
                relayed = r.address(tc.XOR_RELAYED_ADDRESS)
                self.assertEqual(c.channel_bind(0x4002, peer.address).cls, tc.SUCCESS)
                # 24 MB while the client reads nothing: past what the kernel
                # buffers on both ends (up to 4 MB sending, 6 MB receiving by
                # default) and the 4 MiB the connection may queue on top.
                payload = b"m" * 1000
                for i in range(24000):
                    peer.sendto(payload, relayed)
                    if i % 200 == 199:
                        time.sleep(0.005)
                time.sleep(0.5)
                # Still connected and allocated: the Refresh answer comes after
                # what was queued before the drops began.
                self.assertEqual(c.refresh(600).cls, tc.SUCCESS)
                c.inbound.clear()
                peer.sendto(b"after the stall", relayed)
                while True:
                    got = c.receive()
                    self.assertIsNotNone(got, "nothing relayed after the stall")
                    if got[2] != payload:
                        break
                self.assertEqual(got, ("channel", 0x4002, b"after the stall"))
                self.assertEqual(c.refresh(0).cls, tc.SUCCESS)
        finally:
            peer.close()

    def test_channel_data_round_trip_udp(self):
        self.channel_round_trip("udp")

    def test_channel_data_round_trip_tcp(self):
        self.channel_round_trip("tcp")


class StaleNonceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = start_server(secrets=[SECRET], allow_loopback=True, nonce_lifetime=2)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_438_then_the_fresh_nonce_works(self):
        username, password = rest_credential(unique_user("nonce"))
        with tc.TurnClient("127.0.0.1", self.server.port, username=username,
                           password=password) as c:
            self.assertEqual(c.allocate().cls, tc.SUCCESS)
            old_nonce = c.nonce
            # Poll with the same nonce until the server calls it stale; bounded.
            deadline = time.monotonic() + 30
            while True:
                r = c.refresh(600, retry_stale=False)
                if r.cls == tc.ERROR:
                    break
                self.assertLess(time.monotonic(), deadline, "the nonce never went stale")
                time.sleep(0.25)
            self.assertEqual(r.error_code, 438, r)
            self.assertTrue(r.text(tc.NONCE))
            self.assertNotEqual(r.text(tc.NONCE), old_nonce)
            self.assertEqual(r.text(tc.REALM), REALM)
            c.learn(r)
            self.assertEqual(c.refresh(600, retry_stale=False).cls, tc.SUCCESS)
            self.assertEqual(c.refresh(0).cls, tc.SUCCESS)


def free_udp_range(count):
    """`count` consecutive UDP ports free on 127.0.0.1, below the ephemeral range."""
    rng = random.Random()
    for _ in range(200):
        low = rng.randrange(20000, 32000)
        socks = []
        try:
            for port in range(low, low + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return low, low + count - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range")


EVEN_PORT = 0x0018
RESERVATION_TOKEN = 0x0022


class EvenPortReservationTest(unittest.TestCase):
    """RFC 8656 sections 7.1 and 7.2: EVEN-PORT with the R bit reserves port + 1,
    and the server keeps it bound so nothing else on the host can take it before
    the Allocate with the RESERVATION-TOKEN comes."""

    @classmethod
    def setUpClass(cls):
        # Two workers: a token is often claimed on a worker other than the one
        # that reserved it.
        cls.server = start_server(secrets=[SECRET], allow_loopback=True, threads=2)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def client(self):
        username, password = rest_credential(unique_user("even"))
        return tc.TurnClient("127.0.0.1", self.server.port, username=username, password=password)

    def test_reserved_port_is_held_and_handed_to_the_token(self):
        for _ in range(4):
            peer = UdpPeer()
            try:
                with self.client() as holder, self.client() as claimer:
                    r = holder.allocate(extra=[(EVEN_PORT, b"\x80")])
                    self.assertEqual(r.cls, tc.SUCCESS, r)
                    even = r.address(tc.XOR_RELAYED_ADDRESS)[1]
                    self.assertEqual(even % 2, 0)
                    token = r.get(RESERVATION_TOKEN)
                    self.assertEqual(len(token or b""), 8, r)
                    # Another program cannot bind the reserved port.
                    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    try:
                        with self.assertRaises(OSError, msg=f"port {even + 1} not held"):
                            other.bind(("127.0.0.1", even + 1))
                    finally:
                        other.close()
                    r = claimer.allocate(extra=[(RESERVATION_TOKEN, token)])
                    self.assertEqual(r.cls, tc.SUCCESS, r)
                    relayed = r.address(tc.XOR_RELAYED_ADDRESS)
                    self.assertEqual(relayed[1], even + 1)
                    # The socket that held the port now relays for the claimer.
                    self.assertEqual(claimer.create_permission(peer.address).cls, tc.SUCCESS)
                    peer.sendto(b"to the reserved port", relayed)
                    self.assertEqual(claimer.receive(),
                                     ("data", peer.address, b"to the reserved port"))
                    self.assertEqual(holder.refresh(0).cls, tc.SUCCESS)
                    self.assertEqual(claimer.refresh(0).cls, tc.SUCCESS)
            finally:
                peer.close()


class RelayCapacityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One worker, so both relay ports belong to it.
        cls.ports = free_udp_range(2)
        cls.server = start_server(secrets=[SECRET], allow_loopback=True, relay_ports=cls.ports,
                                  threads=1)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_508_when_relay_ports_run_out(self):
        clients = []
        try:
            for _ in range(4):
                username, password = rest_credential(unique_user("capacity"))
                clients.append(tc.TurnClient("127.0.0.1", self.server.port, username=username,
                                             password=password))
            for c in clients[:2]:
                r = c.allocate()
                self.assertEqual(r.cls, tc.SUCCESS, r)
                port = r.address(tc.XOR_RELAYED_ADDRESS)[1]
                self.assertTrue(self.ports[0] <= port <= self.ports[1], port)
            r = clients[2].allocate()
            self.assertEqual(r.error_code, 508, r)
            # A freed port goes back to the pool.
            self.assertEqual(clients[0].refresh(0).cls, tc.SUCCESS)
            self.assertEqual(clients[3].allocate().cls, tc.SUCCESS)
        finally:
            for c in clients:
                c.close()


ALTERNATE_SERVER = 0x8023


def plain_address(value):
    """A MAPPED-ADDRESS-style attribute value (RFC 8489 s14.1): (ip, port)."""
    family, port = struct.unpack("!xBH", value[:4])
    if family == tc.FAMILY_IPV4:
        return socket.inet_ntop(socket.AF_INET, value[4:8]), port
    return socket.inet_ntop(socket.AF_INET6, value[4:20]), port


@unittest.skipIf(AGAINST == "coturn", "turnkey's turn.alternate_servers")
class AlternateServerTest(unittest.TestCase):
    """A full server sends new allocations to turn.alternate_servers (300 Try
    Alternate, RFC 8489 section 10), and coturn's client follows it."""

    @classmethod
    def setUpClass(cls):
        auth = f'  auth:\n    secrets: ["{SECRET}"]\n' + ALLOW_LOOPBACK
        cls.other = harness.Turnkey(turn_yaml=auth).__enter__()
        cls.full = harness.Turnkey(
            turn_yaml=auth + "  quotas: {allocations_total: 1}\n"
            f'  alternate_servers: ["127.0.0.1:{cls.other.port}"]\n'
            f'  alternate_tls_servers: ["127.0.0.1:{cls.other.tls_port}"]\n').__enter__()
        cls.peer = TurnutilsPeer()
        username, password = rest_credential(unique_user("holder"))
        cls.holder = tc.TurnClient("127.0.0.1", cls.full.port, username=username,
                                   password=password)
        r = cls.holder.allocate()
        assert r.cls == tc.SUCCESS, r

    @classmethod
    def tearDownClass(cls):
        cls.holder.close()
        cls.peer.stop()
        cls.full.stop()
        cls.other.stop()

    def test_300_names_the_alternate_before_the_challenge_and_with_integrity_after(self):
        # A new client's first Allocate is sent away before any challenge
        # (WebRTC's client could not take this host's nonce to the other).
        username, password = rest_credential(unique_user("redirected"))
        with tc.TurnClient("127.0.0.1", self.full.port, username=username,
                           password=password) as client:
            r = client.allocate()
            self.assertEqual(r.error_code, 300, r)
            self.assertIsNone(r.get(tc.NONCE), r)
            self.assertEqual(plain_address(r.get(ALTERNATE_SERVER)),
                             ("127.0.0.1", self.other.port))
        # One that holds a nonce already asks authenticated, and the answer
        # carries integrity (RFC 8489 section 10).
        username, password = rest_credential(unique_user("redirected-later"))
        with tc.TurnClient("127.0.0.1", self.full.port, username=username,
                           password=password) as client:
            self.assertEqual(client.refresh(0).error_code, 437)  # challenged: the nonce
            r = client.allocate()
            self.assertEqual(r.error_code, 300, r)
            self.assertTrue(r.integrity_valid(client.key), r)
            self.assertEqual(plain_address(r.get(ALTERNATE_SERVER)),
                             ("127.0.0.1", self.other.port))

    def test_uclient_follows_the_redirect_udp_tcp_and_tls(self):
        # A TLS client is sent to the other host's TLS listener.
        for flags, port in (([], None), (["-t"], None), (["-t", "-S"], self.full.tls_port)):
            with self.subTest(flags=flags):
                sent, received, lost, text = run_uclient(
                    self.full, self.peer, *flags, "-W", SECRET, "-u", unique_user("uc-alt"),
                    messages=10, clients=1, port=port)
                context = text[-3000:] + "\n--- full server log ---\n" + self.full.read_log()[-2000:]
                self.assertIn("300 (Try Alternate)", text, context)
                self.assertEqual(sent, 20, context)
                self.assertEqual(received, sent, context)
                self.assertEqual(lost, 0, context)


if __name__ == "__main__":
    unittest.main(verbosity=2)
