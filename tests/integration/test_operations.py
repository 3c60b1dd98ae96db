"""Operations integration tests: the real turnkey binary on loopback, as an
operator runs it (DESIGN.md section 7, issue 6).

- A Prometheus scrape taken while TURN allocations relay and a call is in
  progress passes `promtool check metrics` (Debian package prometheus), and
  the counters move while traffic flows.
- SIGHUP with a new certificate: a new TLS connection (TURN and signaling)
  sees it, while allocations made before keep relaying and connected
  Socket.IO clients stay connected. A broken config on SIGHUP changes
  nothing.
- SIGUSR1 drains: a new Allocate gets 403, a new call is refused and /readyz
  fails, what exists goes on, and the process exits 0 when the last
  allocation is gone, or at drain_timeout.
- SIGTERM stops within a bounded time with allocations and a call open,
  ending the call cleanly, with exit status 0.

Clients: turn_client.py (a TURN client written from RFC 8656), the npm
socket.io-client through sio_call_helper.js, Python's ssl module for
certificates, promtool. Ports are picked at run time; every wait has a
deadline; nothing skips: a missing tool fails the test.
"""

import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import stun_client  # noqa: E402
import turn_client as tc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SIO_HELPER = os.path.join(HERE, "sio_call_helper.js")
SECRET = "ops-secret-" + os.urandom(8).hex()
NEW_SECRET = "ops-new-secret-" + os.urandom(8).hex()
PASSWORD = "operations correct horse"
CHANNEL = 0x4000
# Bounds for "the process stops by itself": generous for a loaded CI host,
# far below anything an operator would call a hang.
STOP_BOUND = 10.0


def unique(prefix):
    return f"{prefix}{os.urandom(3).hex()}"


# --- Certificates -------------------------------------------------------------


def make_cert(directory, name, days):
    """A self-signed P-256 certificate for localhost valid `days` days."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + "-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", str(days), "-subj", f"/CN=localhost/O={name}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return cert, key


def cert_der(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def cert_not_after(pem_path):
    """notAfter of a PEM certificate as Unix seconds."""
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", pem_path],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    return int(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))


def insecure_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def served_cert(port):
    """The DER certificate a new TLS connection to 127.0.0.1:port is shown."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with insecure_context().wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


# --- Prometheus text ------------------------------------------------------------

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Exposition text -> list of (name, {label: value}, float)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise AssertionError(f"unparsable sample line: {line!r}")
        labels = dict(LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def metric(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`; None if none."""
    values = [v for n, have, v in samples
              if n == name and all(have.get(k) == want for k, want in labels.items())]
    return sum(values) if values else None


def promtool_check(text):
    """(exit status, output) of `promtool check metrics` on `text`."""
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


# --- Peers and relays -----------------------------------------------------------


class EchoPeer:
    """A UDP echo server on 127.0.0.1 standing in for the far side of a relay."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self.echoed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.sock.sendto(data, source)
            self.echoed += 1

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class Relay:
    """One TURN allocation with a permission and a channel to `peer`."""

    def __init__(self, test, port, peer, transport="udp", secret=SECRET):
        self.test = test
        self.peer = peer
        username, password = tc.turn_rest_credential(secret, unique("ops-"), time.time() + 3600)
        self.client = tc.TurnClient("127.0.0.1", port, transport=transport, username=username,
                                    password=password, timeout=5.0)
        response = self.client.allocate()
        test.assertEqual(response.cls, tc.SUCCESS, response)
        self.relayed = response.address(tc.XOR_RELAYED_ADDRESS)
        response = self.client.create_permission(peer.address)
        test.assertEqual(response.cls, tc.SUCCESS, response)
        response = self.client.channel_bind(CHANNEL, peer.address)
        test.assertEqual(response.cls, tc.SUCCESS, response)

    def round_trips(self, count, size=200):
        """Sends `count` packets through the channel, each echoed back; asserts all came."""
        for i in range(count):
            payload = f"{i:08d}".encode() + os.urandom(size - 8)
            self.client.send_channel_data(CHANNEL, payload)
            got = self.client.receive(timeout=5.0)
            self.test.assertIsNotNone(got, f"packet {i} of {count} did not come back")
            self.test.assertEqual(got, ("channel", CHANNEL, payload))

    def delete(self):
        """Refresh with LIFETIME 0 (RFC 8656 s7): deletes the allocation."""
        response = self.client.refresh(0)
        self.test.assertEqual(response.cls, tc.SUCCESS, response)

    def close(self):
        self.client.close()


def allocate_once(port, transport="udp", secret=SECRET):
    """A fresh Allocate; returns its response (success or error). An allocation
    made is deleted again, so it does not count in later checks."""
    username, password = tc.turn_rest_credential(secret, unique("ops-"), time.time() + 3600)
    with tc.TurnClient("127.0.0.1", port, transport=transport, username=username,
                       password=password, timeout=5.0) as client:
        response = client.allocate()
        if response.cls == tc.SUCCESS:
            deleted = client.refresh(0)
            if deleted.cls != tc.SUCCESS:
                raise AssertionError(f"deleting a test allocation: {deleted}")
        return response


# --- Socket.IO ----------------------------------------------------------------


class SioHelper:
    """sio_call_helper.js: socket.io-client sockets held open in node."""

    def __init__(self, url, insecure=False):
        args = ["node", SIO_HELPER, url] + (["--insecure"] if insecure else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.events = []  # {"event", "name", "payload"} in arrival order
        self.replies = queue.Queue()
        self.stderr = []
        self._next = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self.stderr.append("stdout: " + line)
                continue
            if "reply" in message:
                self.replies.put(message)
            else:
                with self._lock:
                    self.events.append(message)

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def request(self, op, timeout=20.0, **fields):
        self._next += 1
        request_id = self._next
        self.proc.stdin.write(json.dumps({"id": request_id, "op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"sio helper: no reply to {op} {fields}; stderr: "
                                     + "".join(self.stderr))
            try:
                reply = self.replies.get(timeout=left)
            except queue.Empty:
                continue
            if reply["reply"] == request_id:
                if not reply["ok"]:
                    raise AssertionError(f"sio helper: {op} {fields}: {reply['error']}")
                return reply

    def connect(self, name, token, transports=None):
        fields = {"transports": transports} if transports else {}
        return self.request("connect", name=name, token=token, **fields)

    def emit(self, name, event, payload):
        """The ack's first argument."""
        return self.request("emit", name=name, event=event, payload=payload)["ack"]

    def wait(self, name, event, timeout_ms=8000):
        return self.request("wait", name=name, event=event, timeout_ms=timeout_ms)["payload"]

    def seen(self, name, event):
        with self._lock:
            return [e["payload"] for e in self.events if e["name"] == name and e["event"] == event]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()


# --- The server -----------------------------------------------------------------


class OpsServer:
    """turnkey with TURN (udp, tcp, tls), signaling (plain or TLS) and metrics."""

    def __init__(self, signal_tls=False, drain_timeout="60s", threads=2):
        self.dir = tempfile.mkdtemp(prefix="turnkey-ops-")
        self.turn_port = harness.free_port()
        self.tls_port = harness.free_port(both=False)
        self.http_port = harness.free_port(both=False)
        self.metrics_port = harness.free_port(both=False)
        self.signal_tls = signal_tls
        self.drain_timeout = drain_timeout
        self.threads = threads
        self.secrets = [SECRET]
        # The config names fixed paths; a certificate rotation replaces the files.
        self.cert = os.path.join(self.dir, "tls-cert.pem")
        self.key = os.path.join(self.dir, "tls-key.pem")
        self.config_path = os.path.join(self.dir, "turnkey.yaml")
        self.log_path = os.path.join(self.dir, "turnkey.log")
        self.scheme = "https" if signal_tls else "http"
        self.base = f"{self.scheme}://127.0.0.1:{self.http_port}"
        self.proc = None
        self.log = None

    def install_cert(self, cert, key):
        """Puts a certificate in place the way a renewal tool does: new files, then rename."""
        for source, target in ((cert, self.cert), (key, self.key)):
            shutil.copyfile(source, target + ".new")
            os.replace(target + ".new", target)

    def config_text(self, extra=""):
        secrets = ", ".join(f'"{s}"' for s in self.secrets)
        return (
            "realm: turnkey.test\n"
            f"state_dir: {os.path.join(self.dir, 'state')}\n"
            f"drain_timeout: {self.drain_timeout}\n"
            "log: {level: debug, format: text}\n"
            f"tls: {{certificate: {self.cert}, private_key: {self.key}}}\n"
            "turn:\n"
            f"  threads: {self.threads}\n"
            "  listeners:\n"
            f"    - {{transport: udp, address: 127.0.0.1, port: {self.turn_port}}}\n"
            f"    - {{transport: tcp, address: 127.0.0.1, port: {self.turn_port}}}\n"
            f"    - {{transport: tls, address: 127.0.0.1, port: {self.tls_port}}}\n"
            "  relay: {addresses: [127.0.0.1]}\n"
            f"  auth: {{secrets: [{secrets}]}}\n"
            "  peers: {allow: [127.0.0.1/32]}\n"
            "signal:\n"
            f"  listen: {{address: 127.0.0.1, port: {self.http_port}, "
            f"tls: {'true' if self.signal_tls else 'false'}}}\n"
            "  ice_servers:\n"
            f"    urls: [\"stun:127.0.0.1:{self.turn_port}\",\n"
            f"           \"turn:127.0.0.1:{self.turn_port}?transport=udp\"]\n"
            "    credential_ttl: 1h\n"
            # The tests register every user from 127.0.0.1.
            "  rate_limits: {register_per_address: {rate: 0}}\n"
            f"metrics: {{enabled: true, listen: \"127.0.0.1:{self.metrics_port}\", "
            "path: /metrics}\n" + extra)

    def write_config(self, text=None):
        with open(self.config_path + ".new", "w") as f:
            f.write(self.config_text() if text is None else text)
        os.replace(self.config_path + ".new", self.config_path)

    def start(self, env=None):
        if not os.path.exists(self.cert):
            self.install_cert(*make_cert(self.dir, "cert-a", days=2))
        self.write_config()
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([harness.BINARY, "serve", "--config", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=None if env is None else {**os.environ, **env})
        if harness.wait_ready(self.proc, self.log_path, 30):
            return self
        if self.proc.poll() is not None:
            raise RuntimeError("turnkey exited early:\n" + self.read_log())
        self.stop()
        raise RuntimeError("turnkey did not answer in time:\n" + self.read_log())

    def stop(self):
        harness.stop_process(self.proc, timeout=20)
        if self.log:
            self.log.close()
            self.log = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def send(self, sig):
        self.proc.send_signal(sig)

    def read_log(self):
        return harness.read_text(self.log_path)

    def log_size(self):
        return len(self.read_log())

    def wait_log(self, pattern, since=0, timeout=15.0):
        """The first match of `pattern` in the log after offset `since`."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            m = regex.search(self.read_log(), since)
            if m:
                return m
            if time.monotonic() >= deadline:
                raise AssertionError(f"log never matched {pattern!r}:\n" + self.read_log()[since:])
            time.sleep(0.05)

    def http(self, method, path, body=None, token=None):
        """(status, parsed JSON or None) of one REST request."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", "Bearer " + token)
        context = insecure_context() if self.signal_tls else None
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None

    def register(self, label):
        status, body = self.http("POST", "/api/auth/register", {
            "email": f"{unique(label)}@example.test", "password": PASSWORD,
            "handle": unique(label), "displayName": label})
        if status != 201:
            raise AssertionError(f"register: HTTP {status} {body}")
        return {"id": body["data"]["user"]["id"], "token": body["data"]["token"]}

    def scrape_response(self):
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.headers.get("Content-Type", ""), answer.read().decode()

    def scrape(self):
        return self.scrape_response()[1]

    def metrics_get(self, path):
        """(status, body) of GET `path` on the metrics listener."""
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait_exit(self, timeout):
        """The exit status, or an assertion error if the process is still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"turnkey still running after {timeout} s:\n"
                                 + self.read_log()[-4000:])


def start_call(helper, caller, callee):
    """caller ("a") calls callee ("b"), who accepts; returns the call id."""
    ack = helper.emit("a", "initiateCall", {"receiverId": callee["id"], "callType": "audio"})
    if not ack.get("ok"):
        raise AssertionError(f"initiateCall: {ack}")
    call_id = ack["callId"]
    incoming = helper.wait("b", "incomingCall")
    if incoming["callId"] != call_id or incoming["callerId"] != caller["id"]:
        raise AssertionError(f"incomingCall: {incoming}")
    ack = helper.emit("b", "acceptCall", {"callId": call_id})
    if not ack.get("ok"):
        raise AssertionError(f"acceptCall: {ack}")
    accepted = helper.wait("a", "callAccepted")
    if accepted["callId"] != call_id:
        raise AssertionError(f"callAccepted: {accepted}")
    return call_id


def offer_reaches_callee(test, helper, call_id, sdp):
    ack = helper.emit("a", "sendOffer", {"callId": call_id, "offer": {"type": "offer", "sdp": sdp}})
    test.assertTrue(ack.get("ok"), ack)
    got = helper.wait("b", "receiveOffer")
    test.assertEqual(got["callId"], call_id)
    test.assertEqual(got["offer"]["sdp"], sdp)


class ServerTestCase(unittest.TestCase):
    """Each test starts its own server (signals end it); cleanup is registered."""

    def start_server(self, env=None, **kw):
        server = OpsServer(**kw)
        self.addCleanup(server.close)
        server.start(env)
        self.server = server
        return server

    def echo_peer(self):
        peer = EchoPeer()
        self.addCleanup(peer.close)
        return peer

    def relay(self, peer, transport="udp", port=None, secret=SECRET):
        if port is None:
            port = self.server.tls_port if transport == "tls" else self.server.turn_port
        relay = Relay(self, port, peer, transport=transport, secret=secret)
        self.addCleanup(relay.close)
        return relay

    def sio(self):
        helper = SioHelper(self.server.base, insecure=self.server.signal_tls)
        self.addCleanup(helper.close)
        return helper

    def call_between_two_users(self, helper):
        """Registers two users over REST, connects both and puts them in an active call."""
        a = self.server.register("opsa")
        b = self.server.register("opsb")
        helper.connect("a", a["token"])
        helper.connect("b", b["token"])
        return a, b, start_call(helper, a, b)

    def context(self):
        return "\n--- server log ---\n" + self.server.read_log()[-6000:]


# --- 1. Metrics -------------------------------------------------------------------


class MetricsScrapeTest(ServerTestCase):
    def test_promtool_accepts_scrapes_and_counters_move_while_traffic_flows(self):
        server = self.start_server()
        peer = self.echo_peer()
        helper = self.sio()
        a, b, call_id = self.call_between_two_users(helper)
        # The caller reports ICE connected over a relay candidate: the call
        # setup histogram and the ICE outcome counter get a sample.
        ack = helper.emit("a", "reportIce", {
            "callId": call_id, "state": "connected", "localCandidateType": "relay",
            "remoteCandidateType": "host", "relayProtocol": "udp", "rttMs": 12})
        self.assertTrue(ack.get("ok"), ack)
        udp = self.relay(peer)
        tcp = self.relay(peer, transport="tcp")
        udp.round_trips(5)
        tcp.round_trips(5)

        content_type, first_text = server.scrape_response()
        self.assertTrue(content_type.startswith("text/plain; version=0.0.4"), content_type)
        status, output = promtool_check(first_text)
        self.assertEqual(status, 0, f"promtool check metrics:\n{output}\n--- scrape ---\n"
                         f"{first_text}")
        first = parse_metrics(first_text)

        count, size = 60, 300
        udp.round_trips(count, size)
        tcp.round_trips(count, size)
        offer_reaches_callee(self, helper, call_id, "v=0 during the scrape test")
        # A datagram to a closed port of the permitted peer's address draws
        # an ICMP port unreachable, passed on to the client and counted.
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.bind(("127.0.0.1", 0))
        closed_address = closed.getsockname()
        closed.close()
        udp.client.send_indication(closed_address, b"anyone there?")
        self.assertEqual(udp.client.receive(timeout=5.0), ("icmp", closed_address, (3, 3, 0)))

        second_text = server.scrape()
        status, output = promtool_check(second_text)
        self.assertEqual(status, 0, f"promtool check metrics:\n{output}\n--- scrape ---\n"
                         f"{second_text}")
        second = parse_metrics(second_text)

        def moved(name, **labels):
            before = metric(first, name, **labels)
            after = metric(second, name, **labels)
            self.assertIsNotNone(before, f"{name}{labels} missing\n{first_text}")
            self.assertIsNotNone(after, f"{name}{labels} missing\n{second_text}")
            return after - before

        # Both allocations are still open: bytes of running allocations count now.
        for direction in ("client_to_peer", "peer_to_client"):
            self.assertGreaterEqual(
                moved("turnkey_turn_relayed_packets_total", direction=direction), 2 * count,
                direction)
            self.assertGreaterEqual(
                moved("turnkey_turn_relayed_bytes_total", direction=direction), 2 * count * size,
                direction)
        self.assertEqual(moved("turnkey_turn_peer_icmp_total", kind="port_unreachable"), 1)
        self.assertEqual(metric(second, "turnkey_turn_allocations_active"), 2, second_text)
        self.assertGreaterEqual(
            metric(second, "turnkey_turn_allocations_total", transport="udp", result="success"), 1)
        self.assertGreaterEqual(
            metric(second, "turnkey_turn_allocations_total", transport="tcp", result="success"), 1)
        self.assertGreaterEqual(
            metric(second, "turnkey_turn_requests_total", method="channel_bind", code="200"), 2)
        self.assertGreaterEqual(metric(second, "turnkey_signal_connections") or 0, 2, second_text)
        self.assertGreaterEqual(
            metric(second, "turnkey_ice_reports_total", result="connected", local_type="relay",
                   remote_type="host") or 0, 1, second_text)
        self.assertGreaterEqual(metric(second, "turnkey_call_setup_seconds_count") or 0, 1,
                                second_text)
        self.assertGreaterEqual(metric(second, "turnkey_http_requests_total") or 0, 2, second_text)
        self.assertEqual(metric(second, "turnkey_tls_certificate_expiry_timestamp_seconds"),
                         cert_not_after(server.cert))
        self.assertEqual(metric(second, "turnkey_build_info"), 1)
        open_fds = metric(second, "turnkey_process_open_fds")
        self.assertGreater(open_fds, 5, second_text)  # listeners, sockets, the database
        self.assertGreaterEqual(metric(second, "turnkey_process_max_fds"), open_fds)
        self.assertGreater(metric(second, "turnkey_process_resident_memory_bytes"), 1 << 20)
        self.assertLess(abs(metric(second, "turnkey_process_start_time_seconds") - time.time()),
                        600)
        # No label may carry an address or a user id.
        for name, labels, _ in second:
            for value in labels.values():
                self.assertNotIn("127.0.0.1", value, name)
                self.assertNotIn(a["id"], value, name)
                self.assertNotIn(b["id"], value, name)

        # After the call ends it is counted by type and status.
        ack = helper.emit("a", "endCall", {"callId": call_id})
        self.assertTrue(ack.get("ok"), ack)
        helper.wait("b", "callEnded")
        third_text = server.scrape()
        self.assertEqual(promtool_check(third_text)[0], 0, third_text)
        self.assertGreaterEqual(
            metric(parse_metrics(third_text), "turnkey_calls_total", type="audio",
                   status="completed") or 0, 1, third_text)


def start_metrics_only(test, directory=None, turn="{enabled: false}"):
    """turnkey with only the metrics listener (path /m), its files in
    `directory` (a new one by default), `turn` as its turn section; returns
    (port, process, config path, log path)."""
    if directory is None:
        directory = tempfile.mkdtemp(prefix="turnkey-roles-")
        test.addCleanup(shutil.rmtree, directory, True)
    port = harness.free_port(both=False)
    config_path = os.path.join(directory, "turnkey.yaml")
    log_path = os.path.join(directory, "turnkey.log")
    with open(config_path, "w") as f:
        f.write(f"state_dir: {os.path.join(directory, 'state')}\n"
                f"turn: {turn}\n"
                "signal: {enabled: false}\n"
                f"metrics: {{listen: \"127.0.0.1:{port}\", path: /m}}\n")
    os.chmod(config_path, 0o600)
    log = open(log_path, "w")
    test.addCleanup(log.close)
    proc = subprocess.Popen([harness.BINARY, "serve", "--config", config_path],
                            stdout=log, stderr=subprocess.STDOUT)
    test.addCleanup(harness.stop_process, proc)
    test.assertTrue(harness.wait_ready(proc, log_path, 30), harness.read_text(log_path))
    return port, proc, config_path, log_path


def raw_http(port, request):
    """(status, {lower-case header: value}) of the answer to the raw bytes
    `request`, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(request)
        except OSError:
            pass  # the server may answer and close before the body is in
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    if not head[0].startswith("HTTP/1.1 "):
        raise AssertionError(f"not an HTTP answer: {answer!r}")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(head[0].split(" ")[1]), headers


class MetricsRolesTest(unittest.TestCase):
    def test_families_of_disabled_roles_are_not_exposed(self):
        # docs/metrics.md: the TURN families exist when turn.enabled is true,
        # the signaling, HTTP and database ones when signal.enabled is true;
        # build_info and the TLS expiry gauge always. A TURN-only or
        # signaling-only host must not show zeros for a role it does not run
        # (a dashboard summing allocations would count it as a relay).
        port = start_metrics_only(self)[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/m", timeout=10) as answer:
            text = answer.read().decode()
        status, output = promtool_check(text)
        self.assertEqual(status, 0, output)
        families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
        self.assertEqual(families, {"turnkey_build_info",
                                    "turnkey_tls_certificate_expiry_timestamp_seconds",
                                    "turnkey_config_last_reload_successful",
                                    "turnkey_config_last_reload_success_timestamp_seconds",
                                    "turnkey_draining",
                                    "turnkey_process_open_fds", "turnkey_process_max_fds",
                                    "turnkey_process_resident_memory_bytes",
                                    "turnkey_process_start_time_seconds"}, text)


class MetricsMethodsTest(unittest.TestCase):
    def test_a_body_on_a_method_not_served_is_405_not_413(self):
        # The metrics listener takes no request body, but a PUT or POST is
        # wrong for its method before its body is too big: 405 with Allow
        # (RFC 9110 section 15.5.6), however the body is framed.
        port = start_metrics_only(self)[0]
        body = b"x" * 2000
        for method in (b"PUT", b"POST", b"DELETE", b"PATCH"):
            for framing, payload in ((b"Content-Length: %d\r\n" % len(body), body),
                                     (b"Transfer-Encoding: chunked\r\n",
                                      b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)),
                                     (b"Content-Length: 1000000\r\nExpect: 100-continue\r\n",
                                      b"")):
                with self.subTest(method=method, framing=framing):
                    status, headers = raw_http(
                        port, method + b" /m HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n"
                        + payload)
                    self.assertEqual(status, 405)
                    self.assertEqual(headers.get("allow"), "GET, HEAD")
        # Without a body the same; another path is 404 with or without one.
        status, headers = raw_http(port, b"POST /m HTTP/1.1\r\nHost: x\r\n"
                                   b"Content-Length: 0\r\nConnection: close\r\n\r\n")
        self.assertEqual((status, headers.get("allow")), (405, "GET, HEAD"))
        status, _ = raw_http(port, b"POST /other HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 5\r\n\r\nhello")
        self.assertEqual(status, 404)
        # A scrape with a body is still refused for the body.
        status, _ = raw_http(port, b"GET /m HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 5\r\n\r\nhello")
        self.assertEqual(status, 413)
        status, _ = raw_http(port, b"GET /m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(status, 200)


# --- 2. Reload ------------------------------------------------------------------


def reload_gauges(server):
    """(turnkey_config_last_reload_successful, ..._success_timestamp_seconds)."""
    samples = parse_metrics(server.scrape())
    return (metric(samples, "turnkey_config_last_reload_successful"),
            metric(samples, "turnkey_config_last_reload_success_timestamp_seconds"))


class TlsReloadTest(ServerTestCase):
    def test_certificate_rotation_and_broken_configs_on_sighup(self):
        started = time.time()
        server = self.start_server(signal_tls=True)
        cert_a = cert_der(server.cert)
        self.assertEqual(served_cert(server.tls_port), cert_a)
        self.assertEqual(served_cert(server.http_port), cert_a)
        # HTTPS answers name HSTS (RFC 6797), by default for a year.
        conn = http.client.HTTPSConnection("127.0.0.1", server.http_port, timeout=5,
                                           context=insecure_context())
        conn.request("GET", "/healthz")
        answer = conn.getresponse()
        answer.read()
        conn.close()
        self.assertEqual(answer.getheader("Strict-Transport-Security"), "max-age=31536000")
        # The start counts as a successful load.
        ok, loaded_at = reload_gauges(server)
        self.assertEqual(ok, 1)
        self.assertGreaterEqual(loaded_at, started - 1)
        self.assertLessEqual(loaded_at, time.time() + 1)
        # One info line naming the certificate, on every load.
        self.assertRegex(server.read_log(), rf"info tls: {re.escape(server.cert)}: localhost, "
                                            r"valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

        peer = self.echo_peer()
        udp = self.relay(peer)
        tls = self.relay(peer, transport="tls")
        udp.round_trips(3)
        tls.round_trips(3)
        helper = self.sio()
        _, _, call_id = self.call_between_two_users(helper)
        self.assertEqual(allocate_once(server.turn_port, secret=NEW_SECRET).error_code, 401)

        # Rotate: cert B in place, a new TURN secret first, and a restart-only
        # change (turn.threads) that must be named in the log.
        cert_b_path, key_b_path = make_cert(server.dir, "cert-b", days=30)
        server.install_cert(cert_b_path, key_b_path)
        cert_b = cert_der(server.cert)
        self.assertNotEqual(cert_a, cert_b)
        server.secrets = [NEW_SECRET, SECRET]
        server.threads = 1
        server.write_config()
        mark = server.log_size()
        server.send(signal.SIGHUP)
        server.wait_log(r"reload: config .* applied", since=mark)
        self.assertRegex(server.read_log()[mark:], r"turn\.threads changed.*restart")
        self.assertRegex(server.read_log()[mark:], rf"info reload: tls: {re.escape(server.cert)}: "
                                                   r"localhost, valid until ")
        ok, rotated_at = reload_gauges(server)
        self.assertEqual(ok, 1)
        self.assertGreater(rotated_at, loaded_at)

        self.assertEqual(served_cert(server.tls_port), cert_b, self.context())
        self.assertEqual(served_cert(server.http_port), cert_b, self.context())
        self.assertEqual(allocate_once(server.turn_port, secret=NEW_SECRET).cls, tc.SUCCESS)
        self.assert_everything_still_works(server, helper, udp, tls, call_id, cert_b_path,
                                           "after the rotation")

        # Broken configs: nothing changes, the log says why. Each one also
        # drops NEW_SECRET, which must therefore keep working.
        good_config = server.config_text()
        server.secrets = [SECRET]
        expired_cert, expired_key = harness.make_dated_cert(
            server.dir, "expired", "20200101000000Z", "20200201000000Z")
        broken = {
            "unknown key": server.config_text("no_such_setting: 1\n"),
            "invalid YAML": server.config_text() + "turn: [unclosed\n",
            "invalid value": server.config_text().replace(
                f"drain_timeout: {server.drain_timeout}", "drain_timeout: 5"),
            "missing certificate": server.config_text().replace(
                server.cert, os.path.join(server.dir, "missing.pem")),
            # Cert B with cert A's key: what a renewal that replaced one file shows.
            "key of another certificate": server.config_text().replace(
                server.key, os.path.join(server.dir, "cert-a-key.pem")),
            # Loads, but would replace a valid certificate with an expired one.
            "expired certificate": server.config_text().replace(
                server.cert, expired_cert).replace(server.key, expired_key),
        }
        expected_error = {
            "unknown key": r"turnkey\.yaml:\d+: no_such_setting",
            "invalid YAML": r"turnkey\.yaml:\d+",
            "invalid value": r"turnkey\.yaml:\d+: drain_timeout",
            "missing certificate": r"missing\.pem",
            "key of another certificate": r"reload: tls: private key .*cert-a-key\.pem does not "
                                          r"match the certificate .*key values mismatch",
            "expired certificate": r"reload: tls: .*expired\.pem: the new certificate for "
                                   r"localhost expired at 2020-02-01T00:00:00Z, the running one "
                                   r"for localhost is valid until ",
        }
        for what, text in broken.items():
            with self.subTest(what):
                server.write_config(text)
                mark = server.log_size()
                server.send(signal.SIGHUP)
                line = server.wait_log(r"reload: [^\n]*keeping the running config[^\n]*",
                                       since=mark).group(0)
                self.assertRegex(line, expected_error[what])
                self.assertNotIn("applied", server.read_log()[mark:])
                # Refused: the gauge says so, the last success time stays.
                self.assertEqual(reload_gauges(server), (0, rotated_at))
                self.assertIsNone(server.proc.poll(), self.context())
                self.assertEqual(served_cert(server.tls_port), cert_b)
                self.assertEqual(served_cert(server.http_port), cert_b)
                self.assertEqual(allocate_once(server.turn_port, secret=NEW_SECRET).cls,
                                 tc.SUCCESS, what)
                self.assert_everything_still_works(server, helper, udp, tls, call_id,
                                                   cert_b_path, f"after {what}")
        # A good reload after the refused ones sets the gauge back.
        server.write_config(good_config)
        mark = server.log_size()
        server.send(signal.SIGHUP)
        server.wait_log(r"reload: config .* applied", since=mark)
        ok, reloaded_at = reload_gauges(server)
        self.assertEqual(ok, 1)
        self.assertGreater(reloaded_at, rotated_at)
        self.assertEqual(served_cert(server.tls_port), cert_b)

    def test_registration_closes_and_opens_on_sighup(self):
        server = self.start_server()
        before = server.register("before")
        open_config = server.config_text()
        for closed, what in ((True, "closed"), (False, "open again")):
            text = open_config.replace("signal:\n", "signal:\n  registration: closed\n", 1) \
                if closed else open_config
            server.write_config(text)
            mark = server.log_size()
            server.send(signal.SIGHUP)
            server.wait_log(r"reload: config .* applied", since=mark)
            status, body = server.http("POST", "/api/auth/register", {
                "email": f"{unique('closed')}@example.test", "password": PASSWORD})
            if closed:
                self.assertEqual((status, body["code"]), (403, "REGISTRATION_CLOSED"), body)
                # Accounts made before go on as before.
                self.assertEqual(server.http("GET", "/api/users/me", token=before["token"])[0],
                                 200)
            else:
                self.assertEqual(status, 201, (what, body))

    def test_an_expired_certificate_is_served_with_a_warning_and_a_valid_one_replaces_it(self):
        # At start there is nothing better to serve: the listeners come up
        # with the expired certificate and the log and the gauge say so.
        directory = tempfile.mkdtemp(prefix="turnkey-dated-")
        self.addCleanup(shutil.rmtree, directory, True)
        expired, expired_key = harness.make_dated_cert(directory, "expired", "20200101000000Z",
                                                       "20200201000000Z")
        server = OpsServer()
        self.addCleanup(server.close)
        server.install_cert(expired, expired_key)
        self.server = server
        server.start()
        log = server.read_log()
        self.assertIn(f"info tls: {server.cert}: localhost, valid until 2020-02-01T00:00:00Z",
                      log)
        self.assertRegex(log, rf"warn tls: {re.escape(server.cert)}: the certificate for "
                              r"localhost expired at 2020-02-01T00:00:00Z \(\d+ days ago\); "
                              r"clients refuse it")
        self.assertRegex(log, rf"warn tls: {re.escape(server.cert)}: the certificate for "
                              r"localhost and the chain in its file do not lead to a trusted "
                              r"root \(self-signed certificate\)")
        self.assertEqual(served_cert(server.tls_port), cert_der(expired))
        samples = parse_metrics(server.scrape())
        self.assertEqual(metric(samples, "turnkey_tls_certificate_expiry_timestamp_seconds"),
                         cert_not_after(expired))
        self.assertEqual(metric(samples, "turnkey_config_last_reload_successful"), 1)

        # A valid certificate replaces an expired one (nothing that works
        # today breaks), with no expiry warning this time.
        good_cert, good_key = make_cert(directory, "good", days=30)
        server.install_cert(good_cert, good_key)
        mark = server.log_size()
        server.send(signal.SIGHUP)
        server.wait_log(r"reload: config .* applied", since=mark)
        self.assertNotIn("expired", server.read_log()[mark:])
        self.assertEqual(served_cert(server.tls_port), cert_der(good_cert))
        samples = parse_metrics(server.scrape())
        self.assertEqual(metric(samples, "turnkey_tls_certificate_expiry_timestamp_seconds"),
                         cert_not_after(good_cert))
        self.assertEqual(metric(samples, "turnkey_config_last_reload_successful"), 1)

    def assert_everything_still_works(self, server, helper, udp, tls, call_id, cert_path, when):
        udp.round_trips(5)
        tls.round_trips(5)
        for name in ("a", "b"):
            self.assertEqual(helper.seen(name, "disconnect"), [], f"{name} {when}")
            ack = helper.emit(name, "getIceServers", {})
            self.assertTrue(ack.get("ok"), f"{ack} {when}")
            self.assertTrue(ack.get("iceServers"), f"{ack} {when}")
        offer_reaches_callee(self, helper, call_id, f"v=0 {when}")
        samples = parse_metrics(server.scrape())
        self.assertEqual(metric(samples, "turnkey_tls_certificate_expiry_timestamp_seconds"),
                         cert_not_after(cert_path), when)
        self.assertEqual(metric(samples, "turnkey_turn_allocations_active"), 2, when)


class CommandLogFormatTest(unittest.TestCase):
    def test_one_shot_commands_log_in_the_configs_format(self):
        # `turnkey migrate` as a unit's ExecStartPre logs into the journal
        # next to serve: log.format: json applies to it too.
        directory = tempfile.mkdtemp(prefix="turnkey-cmdlog-")
        self.addCleanup(shutil.rmtree, directory, True)
        config_path = os.path.join(directory, "turnkey.yaml")
        with open(config_path, "w") as f:
            f.write(f"state_dir: {os.path.join(directory, 'state')}\n"
                    "log: {level: info, format: json}\n"
                    "turn: {enabled: false}\n"
                    "signal: {enabled: false}\n"
                    "metrics: {enabled: false}\n")
        os.chmod(config_path, 0o600)
        run = subprocess.run([harness.BINARY, "migrate", "--config", config_path],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        self.assertTrue(any("applied migration" in line for line in lines), run.stderr)
        for line in lines:
            entry = json.loads(line)
            self.assertIn(entry["level"], ("info", "warn"), line)


class SecretFileModeTest(unittest.TestCase):
    def test_serve_and_reload_warn_about_secret_files_others_can_read(self):
        # A warning in the log at start and at every reload that finds it
        # (naming the file and its mode), never a refusal.
        directory = tempfile.mkdtemp(prefix="turnkey-modes-")
        self.addCleanup(shutil.rmtree, directory, True)
        secrets = os.path.join(directory, "turn-secrets")
        with open(secrets, "w") as f:
            f.write(SECRET + "\n")
        os.chmod(secrets, 0o644)
        _, proc, config_path, log_path = start_metrics_only(
            self, directory, f"{{enabled: false, auth: {{secrets_file: {secrets}}}}}")
        warning = (f"{config_path}:2: warning: turn.auth.secrets_file: \"{secrets}\" "
                   "has mode 0644: any user can read it (chmod o-rwx)")
        self.assertIn(warning, harness.read_text(log_path))
        self.assertNotIn(SECRET, harness.read_text(log_path))
        # The one-shot commands that read the same file say so too, and work.
        for command in (["check-config"], ["migrate"], ["credentials", "--user", "alice"]):
            run = subprocess.run([harness.BINARY, "--config", config_path, *command],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 0, (command, run.stderr))
            self.assertIn(warning, run.stderr, command)

        def reload():
            mark = len(harness.read_text(log_path))
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 15
            while "reload: config" not in harness.read_text(log_path)[mark:]:
                self.assertLess(time.monotonic(), deadline, harness.read_text(log_path))
                time.sleep(0.05)
            return harness.read_text(log_path)[mark:]

        os.chmod(secrets, 0o600)
        text = reload()
        self.assertIn("reload: config", text)
        self.assertNotIn("warning", text)
        os.chmod(secrets, 0o606)
        text = reload()
        self.assertIn(f"reload: {config_path}:2: warning: turn.auth.secrets_file: "
                      f"\"{secrets}\" has mode 0606: any user can read and change it", text)
        self.assertIn(f"reload: config {config_path} applied", text)
        self.assertIsNone(proc.poll())


# --- 3. Drain -------------------------------------------------------------------


class DatabaseLockTest(ServerTestCase):
    def test_reads_are_answered_while_writes_wait_for_the_locked_database(self):
        """Another process holds SQLite's write lock (a backup, an admin's sqlite3 shell):
        profile updates wait for it, but reads posted after them do not wait behind them."""
        server = self.start_server()
        user = server.register("dblock")
        db = sqlite3.connect(os.path.join(server.dir, "state", "turnkey.db"),
                             isolation_level=None, timeout=30)
        self.addCleanup(db.close)
        db.execute("BEGIN IMMEDIATE")
        answers = queue.Queue()

        def request(kind, method, path, body=None):
            status, _ = server.http(method, path, body, token=user["token"])
            answers.put((kind, status))

        def start(kind, method, path, body=None):
            thread = threading.Thread(target=request, args=(kind, method, path, body))
            thread.start()
            return thread

        # As many writes as there are database workers: before, they took every worker,
        # each waiting out SQLite's 5 s busy timeout in turn, and the reads waited for them.
        threads = [start("write", "PATCH", "/api/users/me", {"displayName": f"Locked {i}"})
                   for i in range(4)]
        time.sleep(0.5)  # the writes are queued first
        threads += [start("read", "GET", "/api/users/me") for _ in range(3)]
        threads.append(start("read", "GET", "/readyz"))
        threads.append(start("read", "GET", "/api/calls/history"))
        threads.append(start("read", "GET", "/api/calls/missed"))
        seen = [answers.get(timeout=60) for _ in range(6)]
        db.execute("ROLLBACK")  # the lock goes away; the writes go through
        for thread in threads:
            thread.join(timeout=60)
        seen += [answers.get(timeout=1) for _ in range(4)]
        self.assertEqual(seen[:6], [("read", 200)] * 6, self.context())
        self.assertEqual(seen[6:], [("write", 200)] * 4, self.context())


class DrainTest(ServerTestCase):
    def test_drain_refuses_new_work_and_exits_when_the_last_allocation_is_gone(self):
        server = self.start_server(drain_timeout="2m")
        peer = self.echo_peer()
        relay = self.relay(peer)
        relay.round_trips(3)
        helper = self.sio()
        a, b, call_id = self.call_between_two_users(helper)
        c = server.register("opsc")
        helper.connect("c", c["token"])
        # The metrics listener's health checks (for TURN-only nodes) before.
        self.assertEqual(server.metrics_get("/readyz"), (200, '{"status":"ready"}\n'))
        self.assertEqual(metric(parse_metrics(server.scrape()), "turnkey_draining"), 0)

        mark = server.log_size()
        server.send(signal.SIGUSR1)
        server.wait_log(r"drain: SIGUSR1 received", since=mark)

        def assert_new_work_refused(when):
            for transport, port in (("udp", server.turn_port), ("tls", server.tls_port)):
                response = allocate_once(port, transport=transport)
                self.assertEqual(response.cls, tc.ERROR, f"{transport} {when}: {response}")
                self.assertEqual(response.error_code, 403, f"{transport} {when}: {response}")
            ack = helper.emit("c", "initiateCall", {"receiverId": a["id"], "callType": "video"})
            self.assertFalse(ack.get("ok"), f"{ack} {when}")
            self.assertEqual(ack.get("error"), "Server is shutting down", f"{ack} {when}")
            # Load balancers are told to send new clients elsewhere.
            self.assertEqual(server.http("GET", "/readyz")[0], 503, when)
            self.assertEqual(server.http("GET", "/healthz")[0], 200, when)
            self.assertEqual(server.metrics_get("/readyz"), (503, '{"status":"draining"}\n'), when)
            self.assertEqual(server.metrics_get("/healthz"), (200, '{"status":"ok"}\n'), when)
            self.assertEqual(metric(parse_metrics(server.scrape()), "turnkey_draining"), 1, when)

        assert_new_work_refused("after SIGUSR1")
        # A reload while draining (systemctl reload) must not end the drain.
        mark_reload = server.log_size()
        server.send(signal.SIGHUP)
        server.wait_log(r"reload: config .* applied", since=mark_reload)
        assert_new_work_refused("after SIGUSR1 and SIGHUP")

        # What exists goes on.
        relay.round_trips(10)
        offer_reaches_callee(self, helper, call_id, "v=0 while draining")
        ack = helper.emit("a", "endCall", {"callId": call_id})
        self.assertTrue(ack.get("ok"), ack)
        helper.wait("b", "callEnded")
        # The call is over but the allocation is not: still running, still relaying.
        relay.round_trips(5)
        self.assertIsNone(server.proc.poll(), self.context())
        self.assertEqual(relay.client.refresh(600).cls, tc.SUCCESS)

        relay.delete()
        self.assertEqual(server.wait_exit(STOP_BOUND), 0, self.context())
        self.assertRegex(server.read_log()[mark:], r"drain: no allocations")

    def test_drain_deadline_ends_with_allocations_open(self):
        server = self.start_server(drain_timeout="2s")
        peer = self.echo_peer()
        relay = self.relay(peer)
        relay.round_trips(3)
        mark = server.log_size()
        signalled = time.monotonic()
        server.send(signal.SIGUSR1)
        server.wait_log(r"drain: SIGUSR1 received", since=mark)
        relay.round_trips(3)
        self.assertEqual(server.wait_exit(STOP_BOUND), 0, self.context())
        # The deadline counts from when the signal arrived, after `signalled`.
        self.assertGreaterEqual(time.monotonic() - signalled, 2.0)
        self.assertRegex(server.read_log()[mark:], r"drain: deadline reached with 1 allocation")


# --- 4. SIGTERM -----------------------------------------------------------------


class StopTest(ServerTestCase):
    def test_sigterm_stops_promptly_with_allocations_and_a_call_open(self):
        server = self.start_server()
        peer = self.echo_peer()
        relays = [self.relay(peer), self.relay(peer), self.relay(peer, transport="tcp"),
                  self.relay(peer, transport="tls")]
        for relay in relays:
            relay.round_trips(2)
        helper = self.sio()
        _, _, call_id = self.call_between_two_users(helper)
        mark = server.log_size()
        server.send(signal.SIGTERM)
        self.assertEqual(server.wait_exit(STOP_BOUND), 0, self.context())
        self.assertRegex(server.read_log()[mark:], r"SIGTERM received")
        # The call ended cleanly: both sides were told before their sockets closed.
        for name in ("a", "b"):
            ended = helper.wait(name, "callEnded", timeout_ms=2000)
            self.assertEqual(ended["callId"], call_id)
            self.assertEqual(ended["reason"], "server_shutdown", ended)

    def test_history_the_locked_database_refuses_at_the_stop_is_written_at_the_next_start(self):
        """Another process holds SQLite's write lock through the whole stop: the ends of the
        calls the stop ends cannot be written in time, so they are saved in state_dir and
        written when turnkey starts again, before anything else touches the history."""
        server = self.start_server()
        helper = self.sio()
        a, _, call_id = self.call_between_two_users(helper)
        time.sleep(0.5)  # the call's row is in (group commit: 20 ms)
        db = sqlite3.connect(os.path.join(server.dir, "state", "turnkey.db"),
                             isolation_level=None, timeout=30)
        self.addCleanup(db.close)
        db.execute("BEGIN IMMEDIATE")
        mark = server.log_size()
        server.send(signal.SIGTERM)
        self.assertEqual(server.wait_exit(STOP_BOUND + 10), 0, self.context())
        log = server.read_log()[mark:]
        # Saved by the stop, or as the database failed them before it.
        self.assertRegex(log, r"(call history writes not made at shutdown .*; saved to|"
                              r"call history writes wait for the database in) "
                              r".*unwritten-calls\.jsonl", self.context())
        self.assertNotRegex(log, r"lost at shutdown", self.context())
        db.execute("ROLLBACK")
        server.stop()

        mark = server.log_size()
        server.start()
        self.assertRegex(server.read_log()[mark:],
                         r"calls: 1 call history writes saved at the last stop written from "
                         r".*unwritten-calls\.jsonl \(0 refused, 0 unreadable\)")
        self.assertFalse(os.path.exists(os.path.join(server.dir, "state",
                                                     "unwritten-calls.jsonl")))
        status, body = server.http("GET", "/api/calls/history", token=a["token"])
        self.assertEqual(status, 200, body)
        calls = [c for c in body["data"]["calls"] if c["callId"] == call_id]
        self.assertEqual(len(calls), 1, body)
        # Ended by the stop, not by the next start's clean-up (server_restart).
        self.assertEqual(calls[0]["endReason"], "server_shutdown", calls[0])

    def test_a_second_sigterm_during_the_stop_exits_at_once(self):
        server = self.start_server()
        # A polling session that never fetches again holds the stop for its
        # close (at least half a second): the window for the second signal.
        status, _ = server.http("GET", "/socket.io/?EIO=4&transport=polling")
        self.assertEqual(status, 200)
        mark = server.log_size()
        server.send(signal.SIGTERM)
        server.wait_log(r"SIGTERM received: stopping", since=mark)
        server.send(signal.SIGTERM)
        self.assertEqual(server.wait_exit(STOP_BOUND), 1, self.context())
        self.assertRegex(server.read_log()[mark:], r"second SIGTERM received: exiting at once")


# --- 5. systemd notifications ----------------------------------------------------


class SystemdNotifyTest(ServerTestCase):
    def test_ready_watchdog_pings_from_live_loops_and_stopping(self):
        # What systemd would see: the notify socket of a Type=notify unit with
        # WatchdogSec=0.4s, so turnkey pings every 0.2 s. A ping vouches for
        # every loop (relay workers, signaling, metrics): each must have run a
        # posted beat since the last one, traffic or not.
        directory = tempfile.mkdtemp(prefix="turnkey-notify-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        sock.settimeout(0.5)
        server = self.start_server(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})

        def receive_for(seconds):
            messages = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    messages.append(sock.recv(4096).decode())
                except socket.timeout:
                    pass
            return messages

        peer = self.echo_peer()
        self.relay(peer).round_trips(2)
        messages = receive_for(2.0)
        self.assertTrue(any("READY=1" in m for m in messages), messages)
        pings = sum(1 for m in messages if m == "WATCHDOG=1")
        self.assertGreaterEqual(pings, 5, messages)
        self.assertNotIn("watchdog:", server.read_log(), self.context())
        # A reload is framed by RELOADING=1 (with MONOTONIC_USEC, which
        # Type=notify-reload requires) and READY=1, in that order.
        server.send(signal.SIGHUP)
        messages = [m for m in receive_for(1.0) if m != "WATCHDOG=1"]
        reloading = [i for i, m in enumerate(messages) if "RELOADING=1" in m.split("\n")]
        self.assertEqual(len(reloading), 1, messages)
        self.assertRegex(messages[reloading[0]], r"(^|\n)MONOTONIC_USEC=\d+(\n|$)")
        self.assertTrue(any("READY=1" in m.split("\n") for m in messages[reloading[0] + 1:]),
                        messages)
        server.send(signal.SIGTERM)
        self.assertEqual(server.wait_exit(STOP_BOUND), 0, self.context())
        self.assertTrue(any("STOPPING=1" in m for m in receive_for(0.5)), self.context())

if __name__ == "__main__":
    unittest.main(verbosity=2)
