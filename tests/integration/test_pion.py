"""Pion, the Go WebRTC stack, as a client of the real turnkey binary.

Pion is what Go applications and many SFUs use; nobody here wrote it.
tests/go/pioncheck (built here from Debian 12's packages: pion/turn v2.1.0,
pion/stun 0.4.0, pion/webrtc v3.1.56, Go 1.19) checks against turnkey on
loopback:

- pion/turn's client over UDP, TCP and TLS (verified against a CA file
  made at test time): STUN Binding, Allocate with TURN REST credentials,
  1400 packets of 1..1400 bytes relayed to a UDP echo peer and back intact
  over a channel binding, a wrong password refused with 401, and Close;
- two pion/webrtc PeerConnections, ICE restricted to relay candidates from
  turn:...?transport=udp, turn:...?transport=tcp and turns:, connecting
  relay to relay and echoing DataChannel messages;
- afterwards, over TCP and TLS, turnkey's allocation, permission and channel
  gauges are back to 0.

Nothing skips: a missing go command or Pion package fails the test
(scripts/deps.sh --test installs them). Every run is bounded.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import turn_client as tc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PIONCHECK_SOURCE = os.path.join(HERE, "..", "go", "pioncheck")
# Import path the sources are copied to inside the temporary GOPATH.
PIONCHECK_IMPORT = "turnkeytest/pioncheck"
DEBIAN_GOPATH = "/usr/share/gocode"
# Debian package -> a directory it installs, to name what is missing.
GO_PACKAGES = {
    "golang-github-pion-turn.v2-dev": "src/github.com/pion/turn/v2",
    "golang-github-pion-stun-dev": "src/github.com/pion/stun",
    "golang-github-pion-webrtc.v3-dev": "src/github.com/pion/webrtc",
}
SECRET = "pion-secret-" + os.urandom(8).hex()
GAUGES = ("turnkey_turn_allocations_active", "turnkey_turn_permissions_active",
          "turnkey_turn_channels_active")
BUILD_TIMEOUT = 240  # a cold build of pion/webrtc takes ~15 s on two busy cores
RUN_TIMEOUT = 90  # one pioncheck run; each of its steps has its own 10 s bound
GAUGE_WAIT = 5.0  # seconds for turnkey to free allocations after the clients left

_build_dir = None
PIONCHECK = None


def setUpModule():
    global _build_dir, PIONCHECK
    _build_dir = tempfile.mkdtemp(prefix="turnkey-pion-")
    try:
        PIONCHECK = build_pioncheck(_build_dir)
    except BaseException:
        # unittest does not call tearDownModule when setUpModule fails.
        tearDownModule()
        raise


def tearDownModule():
    if _build_dir:
        shutil.rmtree(_build_dir, ignore_errors=True)


def build_pioncheck(directory):
    """Builds tests/go/pioncheck into `directory`; returns the binary's path.

    Offline, in GOPATH mode, against Debian's packaged sources:
      GO111MODULE=off  GOPATH=<tmp>:/usr/share/gocode  GOPROXY=off  GOFLAGS=
      GOCACHE=$TURNKEY_GOCACHE (ctest: <build>/gocache) or <tmp>/gocache
      go build -o <tmp>/pioncheck turnkeytest/pioncheck
    - Debian's golang-*-dev packages are GOPATH trees under /usr/share/gocode,
      not a module cache, so module mode (and -mod=...) cannot use them.
    - GOPATH mode resolves imports only for a package inside a GOPATH, so
      the sources are copied to <tmp>/src/turnkeytest/pioncheck.
    - Debian installs pion/webrtc v3 at github.com/pion/webrtc (no v3/
      directory). GOPATH mode maps "github.com/pion/webrtc/v3" there only
      when the importing package's directory holds a go.mod ("minimal
      module compatibility"), hence tests/go/pioncheck/go.mod.
    - GOFLAGS is emptied so that a developer's setting cannot switch modes.
    """
    go = shutil.which("go")
    if go is None:
        raise AssertionError("no go command in PATH: install golang-go (scripts/deps.sh --test)")
    missing = [package for package, path in GO_PACKAGES.items()
               if not os.path.isdir(os.path.join(DEBIAN_GOPATH, path))]
    if missing:
        raise AssertionError("Pion's Go sources are missing: install " + " ".join(missing)
                             + " (scripts/deps.sh --test)")
    source = os.path.join(directory, "src", PIONCHECK_IMPORT)
    shutil.copytree(PIONCHECK_SOURCE, source)
    binary = os.path.join(directory, "pioncheck")
    env = dict(os.environ, GO111MODULE="off", GOPATH=f"{directory}:{DEBIAN_GOPATH}",
               GOPROXY="off", GOFLAGS="",
               GOCACHE=os.environ.get("TURNKEY_GOCACHE") or os.path.join(directory, "gocache"))
    out = subprocess.run([go, "build", "-o", binary, PIONCHECK_IMPORT], env=env, cwd=directory,
                         capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    if out.returncode != 0:
        raise AssertionError(f"go build {PIONCHECK_IMPORT} failed (status {out.returncode}):\n"
                             + out.stdout + out.stderr)
    return binary


class PionServer(harness.Turnkey):
    """harness.Turnkey with TURN REST auth, loopback peers and the metrics listener."""

    def __init__(self):
        super().__init__(turn_yaml=f'  auth:\n    secrets: ["{SECRET}"]\n'
                                   "  peers:\n    allow: [127.0.0.0/8]\n")

    def _write_config(self):
        # The harness turns metrics off; the gauges are what tells whether
        # pion's Close and disconnects freed the allocations.
        super()._write_config()
        self.metrics_port = harness.free_port(both=False)
        with open(self.config_path) as f:
            text = f.read()
        off = "metrics: {enabled: false}\n"
        if off not in text:
            raise AssertionError(f"harness config changed: no {off!r} to replace:\n{text}")
        text = text.replace(off, f'metrics: {{enabled: true, listen: "127.0.0.1:'
                                 f'{self.metrics_port}", path: /metrics}}\n')
        with open(self.config_path, "w") as f:
            f.write(text)

    def gauges(self):
        """{name: value} of GAUGES from one scrape."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        values = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in GAUGES:
                values[name] = float(value)
        return values


class PionTestCase(unittest.TestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = PionServer().__enter__()

    @classmethod
    def tearDownClass(cls):
        if cls.server:
            cls.server.__exit__(None, None, None)

    def pioncheck(self, *args):
        """Runs pioncheck with fresh TURN REST credentials; asserts it exits 0."""
        username, password = tc.turn_rest_credential(
            SECRET, "pion-" + os.urandom(3).hex(), time.time() + 3600)
        command = [PIONCHECK, *args, "-username", username, "-password", password,
                   "-ca", self.server.cert]
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired as error:
            # run() has killed it; the partial output comes as bytes even with text=True.
            partial = b"".join(o if isinstance(o, bytes) else o.encode()
                               for o in (error.stdout, error.stderr) if o)
            self.fail(f"pioncheck {args[0]} still running after {RUN_TIMEOUT} s:\n"
                      + partial.decode(errors="replace"))
        text = out.stdout + out.stderr
        sys.stdout.write(text)
        self.assertEqual(out.returncode, 0, f"pioncheck {args[0]} failed:\n{text}")
        self.assertIn("RESULT: all ok", out.stdout, text)
        return text

    def turn_urls(self, *kinds):
        """ICE server URLs for turnkey's listeners: udp, tcp, tls, dtls."""
        port, tls_port = self.server.port, self.server.tls_port
        urls = {"udp": f"turn:127.0.0.1:{port}?transport=udp",
                "tcp": f"turn:127.0.0.1:{port}?transport=tcp",
                "tls": f"turns:127.0.0.1:{tls_port}?transport=tcp",
                "dtls": f"turns:127.0.0.1:{tls_port}?transport=udp"}
        return ",".join(urls[kind] for kind in kinds)

    def turn_args(self, transports):
        return ["turn", "-server", f"127.0.0.1:{self.server.port}",
                "-tls", f"127.0.0.1:{self.server.tls_port}", "-transports", transports]

    def assert_gauges_return_to_zero(self):
        """Waits up to GAUGE_WAIT for every allocation, permission and channel to be gone."""
        deadline = time.monotonic() + GAUGE_WAIT
        while True:
            values = self.server.gauges()
            if all(values.get(name) == 0 for name in GAUGES):
                return
            if time.monotonic() >= deadline:
                self.fail(f"{GAUGE_WAIT} s after the Pion clients left: {values}")
            time.sleep(0.1)


class PionOverTcpAndTlsTest(PionTestCase):
    """TCP and TLS: turnkey frees an allocation when its connection closes,
    so whatever pion's Close does, the gauges must return to 0."""

    def test_turn_client(self):
        self.pioncheck(*self.turn_args("tcp,tls"))
        self.assert_gauges_return_to_zero()

    def test_webrtc_relay_only_data_channel(self):
        self.pioncheck("webrtc", "-urls", self.turn_urls("tcp", "tls"))
        self.assert_gauges_return_to_zero()


class PionOverDtlsTest(PionTestCase):
    """DTLS (RFC 7350): pion/ice gathers its relay candidates through
    turns:...?transport=udp over pion/dtls. An association's end frees its
    allocation, as a TLS connection's does."""

    def test_webrtc_relay_only_data_channel(self):
        self.pioncheck("webrtc", "-urls", self.turn_urls("dtls"))
        self.assert_gauges_return_to_zero()


class PionOverUdpTest(PionTestCase):
    """UDP. pion's Close sends its Refresh (LIFETIME 0) without waiting for
    the answer and never retries it: if the request is lost, or answered
    438 Stale Nonce, the allocation stays until it expires (RFC 8489
    section 9.2.5 puts the retry on the client). turnkey cannot free it
    sooner, so the gauges are not asserted here."""

    def test_turn_client(self):
        self.pioncheck(*self.turn_args("udp"))

    def test_webrtc_relay_only_data_channel(self):
        self.pioncheck("webrtc", "-urls", self.turn_urls("udp"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
