"""Starts coturn's `turnserver` with the settings of a turnkey test config.

Development aid only: `TURNKEY_TEST_AGAINST=coturn python3 test_turn.py` runs
the TURN integration tests against coturn, to show that a test's logic is
right (or where coturn itself departs from the RFCs or from turnkey's safer
defaults). The committed tests always run against turnkey.

Same surface as harness.Turnkey: port, tls_port, cert, dir, realm, proc,
stop(), read_log(); loopback only.
"""

import ipaddress
import os
import shutil
import subprocess
import tempfile
import time

import harness
import stun_client

# turnkey's built-in deny list (reference/security.md) plus the IPv4-in-IPv6
# forms turnkey reduces before matching. coturn denies only loopback by
# default, so without these the default-policy tests would fail against it
# for reasons that say nothing about the tests.
DEFAULT_DENY = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
    "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    # Not ::/96: coturn matches IPv4 peers against it as ::a.b.c.d, which
    # would refuse every IPv4 peer. The IPv4-compatible forms the tests use:
    # And not ::/128: coturn reads the range "::-::" as everything; it refuses
    # the unspecified addresses by itself.
    "::1/128", "::7f00:0/104", "::a00:0/104", "::ffff:0:0/96", "64:ff9b::/96",
    "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16", "fc00::/7",
    "fe80::/10", "fec0::/10", "ff00::/8",
]


def _range(cidr):
    net = ipaddress.ip_network(cidr)
    return f"{net.network_address}-{net.broadcast_address}"


class Coturn:
    def __init__(self, realm="turnkey.test", secrets=(), static_users=None, allow_loopback=False,
                 nonce_lifetime=None, allocations_per_user=None, relay_ports=None,
                 ipv6_relay=False, threads=2):
        if not shutil.which("turnserver"):
            raise RuntimeError("coturn's turnserver is not installed")
        self.realm = realm
        self.dir = tempfile.mkdtemp(prefix="coturn-it-")
        self.port = harness.free_port()
        self.tls_port = harness.free_port(both=False)
        self.cert, self.key = harness.make_cert(self.dir)
        args = ["turnserver", "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
                "--listening-port", str(self.port), "--tls-listening-port", str(self.tls_port),
                "--cert", self.cert, "--pkey", self.key, "--no-dtls", "--no-cli",
                "--realm", realm, "--log-file", "stdout", "--simple-log",
                "--pidfile", os.path.join(self.dir, "turnserver.pid"),
                "--userdb", os.path.join(self.dir, "turndb"),
                "--relay-threads", str(threads)]
        if ipv6_relay:
            args += ["--relay-ip", "::1"]
        if secrets:
            # coturn takes one secret on the command line (more need its
            # database), so rotation cannot be expressed here.
            args += ["--use-auth-secret", "--static-auth-secret", secrets[0]]
        elif static_users:
            args += ["--lt-cred-mech"]
            for name, password in static_users.items():
                args += ["--user", f"{name}:{password}"]
        if allow_loopback:
            args += ["--allow-loopback-peers"]
        else:
            args += [f"--denied-peer-ip={_range(c)}" for c in DEFAULT_DENY]
        if nonce_lifetime:
            args += [f"--stale-nonce={nonce_lifetime}"]
        if allocations_per_user:
            args += ["--user-quota", str(allocations_per_user)]
        if relay_ports:
            args += ["--min-port", str(relay_ports[0]), "--max-port", str(relay_ports[1])]
        self.args = args
        self.log_path = os.path.join(self.dir, "turnserver.log")
        self.proc = None

    def __enter__(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        # coturn answers on its first socket before every thread has bound
        # its own (a client may then meet a closed port), so wait for several
        # answers in a row from new sockets.
        deadline = time.monotonic() + 15
        answers = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("turnserver exited early:\n" + self.read_log())
            try:
                stun_client.binding_udp("127.0.0.1", self.port, timeout=0.2)
                answers += 1
                if answers == 10:
                    return self
                time.sleep(0.05)
            except (TimeoutError, OSError):
                answers = 0
        self.stop()
        raise RuntimeError("turnserver did not answer in time:\n" + self.read_log())

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        harness.stop_process(self.proc)
        if hasattr(self, "log"):
            self.log.close()

    def read_log(self):
        return harness.read_text(self.log_path)
