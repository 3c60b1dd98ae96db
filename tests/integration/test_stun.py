"""STUN service integration tests: the real binary on loopback, real clients."""

import os
import random
import re
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import stun_client  # noqa: E402
import turn_client  # noqa: E402

SOFTWARE = 0x8022
MAPPED_ADDRESS = 0x0001
CHANGE_REQUEST = 0x0003
PADDING = 0x0026
RESPONSE_PORT = 0x0027
RESPONSE_ORIGIN = 0x802B
OTHER_ADDRESS = 0x802C


def change_request(change_ip, change_port):
    return (CHANGE_REQUEST, struct.pack("!I", (4 if change_ip else 0) | (2 if change_port else 0)))


def response_port(port):
    return (RESPONSE_PORT, struct.pack("!H2x", port))


def send_binding(to, attrs, sock=None, receiver=None):
    """Sends a Binding request with `attrs` ((type, value) pairs) from `sock`
    (a new UDP socket if None) and returns the turn_client.Message that
    `receiver` (default: the same socket) got, with `source` (where it came
    from), `local` (the sender's address) and `request_size`."""
    own = sock is None
    if own:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
    receiver = receiver or sock
    try:
        txid, request = turn_client.build(turn_client.BINDING, turn_client.REQUEST, attrs)
        receiver.settimeout(3)
        sock.sendto(request, to)
        data, source = receiver.recvfrom(70000)
        answer = turn_client.Message(data)
        if answer.txid != txid:
            raise ValueError("transaction id mismatch")
        answer.source = source
        answer.local = sock.getsockname()
        answer.request_size = len(request)
        return answer
    finally:
        if own:
            sock.close()


class StunServiceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Turnkey().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_turnutils_stunclient_gets_mapped_address(self):
        out = subprocess.run(
            ["turnutils_stunclient", "-p", str(self.server.port), "127.0.0.1"],
            capture_output=True, text=True, timeout=20)
        text = out.stdout + out.stderr
        self.assertEqual(out.returncode, 0, text)
        # coturn's client prints the reflexive address it was told.
        m = re.search(r"UDP reflexive addr: (\d+\.\d+\.\d+\.\d+):(\d+)", text)
        self.assertIsNotNone(m, text)
        self.assertEqual(m.group(1), "127.0.0.1")
        self.assertNotEqual(int(m.group(2)), 0)

    def test_udp_mapped_address_is_the_source(self):
        for fingerprint in (True, False):
            r = stun_client.binding_udp("127.0.0.1", self.server.port, fingerprint=fingerprint)
            self.assertEqual(r["type"], stun_client.BINDING_SUCCESS)
            self.assertEqual(r["mapped"], r["local"])
            # FINGERPRINT in the response exactly when the request had one.
            self.assertEqual(stun_client.FINGERPRINT in r["attrs"], fingerprint)
            self.assertNotIn(SOFTWARE, r["attrs"])

    def test_many_sources_are_all_answered(self):
        # Different source ports hash to different SO_REUSEPORT workers.
        for _ in range(40):
            r = stun_client.binding_udp("127.0.0.1", self.server.port)
            self.assertEqual(r["mapped"], r["local"])

    def test_tcp_binding(self):
        results = stun_client.binding_stream("127.0.0.1", self.server.port, count=3)
        for r in results:
            self.assertEqual(r["type"], stun_client.BINDING_SUCCESS)
            self.assertEqual(r["mapped"], r["local"])

    def test_tls_binding(self):
        results = stun_client.binding_stream("127.0.0.1", self.server.tls_port, use_tls=True,
                                             cafile=self.server.cert, count=2)
        for r in results:
            self.assertEqual(r["mapped"], r["local"])
            self.assertIn(r["tls_version"], ("TLSv1.2", "TLSv1.3"))

    def test_tls_1_1_is_refused(self):
        import ssl
        import threading

        def tls11_client():
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            # SECLEVEL=0 lets this client really offer TLS 1.1; at the default
            # level OpenSSL 3 would refuse on the client side and the test
            # could not fail.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            return ctx

        # Control: the same client completes a TLS 1.1 handshake with a server
        # that allows it, so a refusal below comes from turnkey.
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(self.server.cert, self.server.key)
        server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)

            def accept():
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)

            t = threading.Thread(target=accept, daemon=True)
            t.start()
            with socket.create_connection(listener.getsockname(), timeout=3) as raw:
                with tls11_client().wrap_socket(raw, server_hostname="localhost") as s:
                    self.assertEqual(s.version(), "TLSv1.1")
                    s.sendall(b"x")
            t.join(3)

        with socket.create_connection(("127.0.0.1", self.server.tls_port), timeout=3) as raw:
            with self.assertRaises((ssl.SSLError, OSError)):
                with tls11_client().wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(stun_client.build_binding()[1])
                    s.recv(100)

    def test_malformed_burst_gets_no_answer(self):
        rnd = random.Random(5769)
        txid = bytes(12)
        good_txid, good = stun_client.build_binding()
        packets = []
        for i in range(3000):
            kind = i % 10
            if kind == 0:
                p = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 60)))
            elif kind == 1:  # cookie-less (RFC 3489 style), not a Binding
                p = struct.pack("!HHI", 3, 0, 0x01020304) + txid
            elif kind == 2:  # length past the end
                p = struct.pack("!HHI", 1, 0x40, stun_client.MAGIC) + txid
            elif kind == 3:  # 0xFFFF length attribute
                p = struct.pack("!HHI", 1, 8, stun_client.MAGIC) + txid + struct.pack("!HH", 6, 0xFFFF) + b"abcd"
            elif kind == 4:  # header length not a multiple of 4
                p = struct.pack("!HHI", 1, 3, stun_client.MAGIC) + txid + b"abc"
            elif kind == 5:  # a success response sent to the server
                p = struct.pack("!HHI", 0x0101, 0, stun_client.MAGIC) + txid
            elif kind == 6:  # truncated header
                p = good[:rnd.randint(1, 19)]
            elif kind == 7:  # bad FINGERPRINT
                p = bytearray(good)
                p[-1] ^= 0xFF
                p = bytes(p)
            elif kind == 8:  # first two bits not 00 (ChannelData with no channel bound)
                p = struct.pack("!HH", 0x4000, 4) + b"data"
            else:  # attribute truncated inside the message
                p = struct.pack("!HHI", 1, 4, stun_client.MAGIC) + txid + struct.pack("!HH", 0x8022, 8)
            packets.append(p)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("127.0.0.1", self.server.port))
            for p in packets:
                try:
                    s.send(p)
                except OSError:
                    pass
            s.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                data = s.recv(2048)
                self.fail(f"server answered a malformed packet: {data.hex()}")
            s.send(good)
            s.settimeout(3)
            r = stun_client.parse_response(s.recv(2048), good_txid)
            self.assertEqual(r["mapped"], s.getsockname()[:2])
        # Not one log line per bad packet.
        self.assertLess(self.server.read_log().count("\n"), 100)
        self.assertIsNone(self.server.proc.poll())

    def test_binding_without_the_magic_cookie_gets_mapped_address(self):
        # RFC 3489 clients (RFC 8489 section 11.2): MAPPED-ADDRESS, and the
        # request's whole 16-byte transaction id back.
        txid = bytes(range(16))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.connect(("127.0.0.1", self.server.port))
            s.send(struct.pack("!HH", 1, 0) + txid)
            answer = s.recv(2048)
            ip, port = s.getsockname()[:2]
        self.assertEqual(answer[:4], struct.pack("!HH", 0x0101, 12))
        self.assertEqual(answer[4:20], txid)
        self.assertEqual(answer[20:24], struct.pack("!HH", 0x0001, 8))
        self.assertEqual(answer[24:], struct.pack("!BBH", 0, 1, port) + socket.inet_aton(ip))

    def test_unknown_comprehension_required_attribute_gets_420(self):
        attr = struct.pack("!HH", 0x7FFE, 4) + b"abcd"
        txid, msg = stun_client.build_binding(extra_attrs=attr)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.connect(("127.0.0.1", self.server.port))
            s.send(msg)
            r = stun_client.parse_response(s.recv(2048), txid)
        self.assertEqual(r["type"], 0x0111)  # Binding error response
        code = r["attrs"][0x0009]
        self.assertEqual(code[2] * 100 + code[3], 420)
        self.assertEqual(r["attrs"][0x000A][:2], b"\x7f\xfe")

    def test_nat_discovery_attributes_get_420_when_off(self):
        # RFC 5780 section 6: a server without a second address answers
        # CHANGE-REQUEST with 420, and names no OTHER-ADDRESS.
        r = stun_client.binding_udp("127.0.0.1", self.server.port)
        self.assertNotIn(OTHER_ADDRESS, r["attrs"])
        for attr in (change_request(True, True), response_port(9), (PADDING, bytes(8))):
            r = send_binding(("127.0.0.1", self.server.port), [attr])
            self.assertEqual(r.error_code, 420)
            self.assertEqual(r.get(0x000A), struct.pack("!H", attr[0]))

    def run_probe(self, *args):
        out = subprocess.run([harness.BINARY, "probe", *args],
                             capture_output=True, text=True, timeout=20)
        return out.returncode, out.stdout + out.stderr

    def test_probe_udp_tcp_tls(self):
        p = self.server.port
        for uri in (f"stun://127.0.0.1:{p}", f"stun://127.0.0.1:{p}?transport=tcp"):
            rc, text = self.run_probe(uri)
            self.assertEqual(rc, 0, text)
            self.assertRegex(text, r"mapped address\s*:?\s*127\.0\.0\.1:\d+")
            self.assertRegex(text, r"rtt")
        rc, text = self.run_probe("--ca", self.server.cert, f"stuns://localhost:{self.server.tls_port}")
        self.assertEqual(rc, 0, text)
        self.assertRegex(text, r"127\.0\.0\.1:\d+")
        # Without --ca or --insecure the self-signed certificate is refused.
        rc, text = self.run_probe(f"stuns://localhost:{self.server.tls_port}")
        self.assertNotEqual(rc, 0, text)
        self.assertIn("certificate", text.lower())

    def test_probe_over_dtls(self):
        uri = f"stuns://localhost:{self.server.tls_port}?transport=udp"
        rc, text = self.run_probe("--ca", self.server.cert, uri)
        self.assertEqual(rc, 0, text)
        self.assertRegex(text, r"tls\s*:\s*DTLSv1\.2")
        self.assertRegex(text, r"mapped address\s*:?\s*127\.0\.0\.1:\d+")
        # The certificate is checked as over TLS.
        rc, text = self.run_probe(uri)
        self.assertNotEqual(rc, 0, text)
        self.assertIn("certificate", text.lower())

    def test_probe_shows_no_other_address_without_nat_discovery(self):
        rc, text = self.run_probe(f"stun://127.0.0.1:{self.server.port}")
        self.assertEqual(rc, 0, text)
        self.assertNotIn("RFC 5780", text)

    def test_probe_reports_a_dead_server(self):
        port = harness.free_port()
        rc, text = self.run_probe("--timeout", "1s", f"stun://127.0.0.1:{port}")
        self.assertNotEqual(rc, 0, text)
        self.assertIn("no answer", text.lower())


class NatDiscoveryTest(unittest.TestCase):
    """RFC 5780 NAT behavior discovery on 127.0.0.1 (A1) and 127.0.0.2 (A2)."""

    @classmethod
    def setUpClass(cls):
        cls.alt_port = harness.free_port()
        cls.server = harness.Turnkey(tls=False, turn_yaml=(
            "  nat_discovery: {enabled: true, alternate_address: 127.0.0.2, "
            f"alternate_port: {cls.alt_port}}}\n")).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def addresses(self):
        p, q = self.server.port, self.alt_port
        return {(0, 0): ("127.0.0.1", p), (0, 1): ("127.0.0.1", q),
                (1, 0): ("127.0.0.2", p), (1, 1): ("127.0.0.2", q)}

    def test_turnutils_natdiscovery_finds_no_nat(self):
        # coturn's client runs the mapping and filtering tests of RFC 5780
        # section 4 (with PADDING too); on loopback there is no NAT.
        for extra in ([], ["-P"]):
            out = subprocess.run(["turnutils_natdiscovery", "-m", "-f", *extra, "-p",
                                  str(self.server.port), "127.0.0.1"],
                                 capture_output=True, text=True, timeout=60)
            text = out.stdout + out.stderr
            self.assertEqual(out.returncode, 0, text)
            self.assertIn("NAT with Endpoint Independent Mapping", text)
            self.assertIn("NAT with Endpoint Independent Filtering", text)
            self.assertIn("Other addr: : 127.0.0.2:%d" % self.alt_port, text)

    def test_probe_shows_the_other_address(self):
        out = subprocess.run([harness.BINARY, "probe", f"stun://127.0.0.1:{self.server.port}"],
                             capture_output=True, text=True, timeout=20)
        text = out.stdout + out.stderr
        self.assertEqual(out.returncode, 0, text)
        self.assertIn(f"response origin: 127.0.0.1:{self.server.port} (RFC 5780)", text)
        self.assertIn(f"other address  : 127.0.0.2:{self.alt_port} (RFC 5780)", text)

    def test_change_request_picks_the_source(self):
        # Table 1 of RFC 5780, from each of the four addresses.
        addresses = self.addresses()
        for (ip, port), to in addresses.items():
            for change_ip in (False, True):
                for change_port in (False, True):
                    r = send_binding(to, [change_request(change_ip, change_port)])
                    where = f"to {to}, change ip {change_ip} port {change_port}"
                    self.assertEqual(r.cls, turn_client.SUCCESS, where)
                    want = addresses[(1 - ip if change_ip else ip,
                                      1 - port if change_port else port)]
                    self.assertEqual(r.source, want, where)
                    self.assertEqual(turn_client.decode_address(r.get(RESPONSE_ORIGIN)), want, where)
                    self.assertEqual(turn_client.decode_address(r.get(OTHER_ADDRESS)),
                                     addresses[(1 - ip, 1 - port)], where)
                    self.assertEqual(turn_client.decode_address(r.get(MAPPED_ADDRESS)), r.local,
                                     where)
                    self.assertEqual(r.address(turn_client.XOR_MAPPED_ADDRESS), r.local, where)

    def test_response_port_sends_to_another_port(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
            a.bind(("127.0.0.1", 0))
            b.bind(("127.0.0.1", 0))
            r = send_binding(("127.0.0.1", self.server.port), [response_port(b.getsockname()[1])],
                             sock=a, receiver=b)
            self.assertEqual(r.cls, turn_client.SUCCESS)
            # The mapped address is still the request's source.
            self.assertEqual(r.address(turn_client.XOR_MAPPED_ADDRESS), a.getsockname())

    def test_padding_is_echoed_without_amplification(self):
        for length in (0, 100, 1500, 9000):
            r = send_binding(("127.0.0.1", self.server.port),
                             [change_request(False, True), (PADDING, os.urandom(length))])
            self.assertEqual(r.cls, turn_client.SUCCESS)
            self.assertEqual(len(r.get(PADDING)), length)
            self.assertLess(len(r.raw), r.request_size + 64)

    def test_bad_requests(self):
        to = ("127.0.0.1", self.server.port)
        for attrs in (
                # PADDING and RESPONSE-PORT together (RFC 5780 section 6.1).
                [(PADDING, bytes(4)), response_port(9)],
                [(CHANGE_REQUEST, bytes(2))],   # short value
                [response_port(0)]):
            self.assertEqual(send_binding(to, attrs).error_code, 400, attrs)
        # Other unknown comprehension-required attributes still get 420,
        # naming only themselves.
        r = send_binding(to, [change_request(True, False), (0x7FFE, b"abcd")])
        self.assertEqual(r.error_code, 420)
        self.assertEqual(r.get(0x000A), b"\x7f\xfe")

    def test_tcp_has_no_alternate(self):
        # Only UDP listeners are paired: over TCP CHANGE-REQUEST gets 420.
        _, msg = turn_client.build(turn_client.BINDING, turn_client.REQUEST,
                                   [change_request(True, True)])
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=3) as s:
            s.sendall(msg)
            data = s.recv(2048)
        self.assertEqual(turn_client.Message(data).error_code, 420)


class SoftwareAttributeTest(unittest.TestCase):
    def test_software_only_when_configured(self):
        with harness.Turnkey(tls=False, turn_yaml="  software: turnkey-test\n") as server:
            r = stun_client.binding_udp("127.0.0.1", server.port)
            self.assertEqual(r["attrs"].get(SOFTWARE, b"").rstrip(b"\0"), b"turnkey-test")


class Ipv6Test(unittest.TestCase):
    def test_ipv6_listener(self):
        port = harness.free_port(family=socket.AF_INET6, host="::1")
        server = harness.Turnkey(tls=False, extra_listeners=[("udp", "::1", port)])
        with server:
            r = stun_client.binding_udp("::1", port, family=socket.AF_INET6)
            self.assertEqual(r["mapped"][0], "::1")
            self.assertEqual(r["mapped"], r["local"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
