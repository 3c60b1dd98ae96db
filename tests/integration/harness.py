"""Starts the real turnkey binary on loopback for integration tests.

Each test gets a fresh temporary directory with its own config, state and TLS
certificate, and ports picked at run time. Nothing here talks to any address
outside 127.0.0.0/8 and ::1.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


BINARY = os.environ.get("TURNKEY_BINARY", "build/turnkey")


# Ports free_port has returned in this process. The probe sockets close
# before the port is used, so the kernel may offer the same port again on the
# next call: a server given two "free" ports (signal and metrics) then got
# the same one twice.
_handed_out = set()


def free_port(both=True, family=socket.AF_INET, host="127.0.0.1"):
    """A port free on `host` for TCP and (if both) UDP at the same time, and
    not returned before by this process."""
    for _ in range(100):
        t = socket.socket(family, socket.SOCK_STREAM)
        t.bind((host, 0))
        port = t.getsockname()[1]
        u = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if port in _handed_out:
                continue
            if both:
                u.bind((host, port))
            _handed_out.add(port)
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


def stop_process(proc, timeout=10):
    """SIGTERM, wait up to `timeout` seconds, then SIGKILL. None is ignored."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(proc, log_path, timeout):
    """Waits until `proc` logs that it is serving; False if it exits or the time runs out.

    Probing a port is not enough: a process of a test running beside this one
    may hold it and answer, while this one exits because the port is in use.
    turnkey logs "ready: serving (pid N)" once every listener is bound.
    """
    line = f"ready: serving (pid {proc.pid})"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in read_text(log_path):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def read_text(path):
    """The file's text, or "" if it cannot be read (a server's log)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def make_cert(directory, name="cert"):
    """A self-signed P-256 certificate for localhost; returns (cert, key) paths."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + "-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def make_dated_cert(directory, name, not_before, not_after):
    """A self-signed P-256 certificate for localhost valid from `not_before`
    to `not_after` (ASN.1 times, "20200101000000Z"), which `openssl req` cannot
    set: `openssl ca` signs the request with its own key. Returns (cert, key)."""
    work = os.path.join(directory, name + "-ca")
    os.makedirs(work)
    with open(os.path.join(work, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = local\n[local]\ndatabase = index.txt\n"
                "new_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = any\n"
                "unique_subject = no\ncopy_extensions = copy\n[any]\ncommonName = supplied\n")
    open(os.path.join(work, "index.txt"), "w").close()
    with open(os.path.join(work, "serial"), "w") as f:
        f.write("01\n")
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + "-key.pem")
    quiet = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
             "timeout": 60, "cwd": work}
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", "request.csr"], **quiet)
    subprocess.run(
        ["openssl", "ca", "-batch", "-notext", "-config", "ca.cnf", "-selfsign", "-keyfile", key,
         "-in", "request.csr", "-startdate", not_before, "-enddate", not_after, "-out", cert],
        **quiet)
    return cert, key


class Turnkey:
    """A running turnkey process. Use as a context manager."""

    def __init__(self, threads=2, tls=True, turn_yaml="", extra_listeners=(),
                 relay_yaml="{addresses: [127.0.0.1]}"):
        self.dir = tempfile.mkdtemp(prefix="turnkey-it-")
        self.cert, self.key = make_cert(self.dir)
        self._threads = threads
        self._tls = tls
        self._turn_yaml = turn_yaml
        self._extra_listeners = extra_listeners
        self._relay_yaml = relay_yaml
        self.config_path = os.path.join(self.dir, "turnkey.yaml")
        self.log_path = os.path.join(self.dir, "turnkey.log")
        self.proc = None
        self._write_config()

    def _write_config(self):
        """Picks the listener ports and writes the config."""
        self.port = free_port()
        self.tls_port = free_port()  # TLS over TCP and DTLS over UDP
        listeners = [
            f"    - {{transport: udp, address: 127.0.0.1, port: {self.port}}}",
            f"    - {{transport: tcp, address: 127.0.0.1, port: {self.port}}}",
        ]
        if self._tls:
            listeners.append(
                f"    - {{transport: tls, address: 127.0.0.1, port: {self.tls_port}}}")
            listeners.append(
                f"    - {{transport: dtls, address: 127.0.0.1, port: {self.tls_port}}}")
        for transport, address, port in self._extra_listeners:
            listeners.append(f"    - {{transport: {transport}, address: '{address}', port: {port}}}")
        with open(self.config_path, "w") as f:
            f.write(
                "realm: turnkey.test\n"
                f"state_dir: {self.dir}\n"
                "log: {level: debug, format: text}\n"
                f"tls: {{certificate: {self.cert}, private_key: {self.key}}}\n"
                "turn:\n"
                f"  threads: {self._threads}\n"
                "  listeners:\n" + "\n".join(listeners) + "\n"
                f"  relay: {self._relay_yaml}\n" + self._turn_yaml +
                "signal: {enabled: false}\n"
                "metrics: {enabled: false}\n")

    def __enter__(self):
        # free_port() only finds a port free at that moment: a test running
        # beside this one may take it first. turnkey then refuses to start
        # ("in use by another process"), and new ports are tried.
        for attempt in range(3):
            self.log = open(self.log_path, "w")
            self.proc = subprocess.Popen([BINARY, "serve", "--config", self.config_path],
                                         stdout=self.log, stderr=subprocess.STDOUT)
            if wait_ready(self.proc, self.log_path, 15):
                return self
            if self.proc.poll() is None:
                self.stop()
                raise RuntimeError("turnkey did not answer in time:\n" + self.read_log())
            self.log.close()
            text = self.read_log()
            if "in use by another process" not in text or attempt == 2 or self._extra_listeners:
                raise RuntimeError("turnkey exited early:\n" + text)
            self._write_config()
        raise AssertionError("unreachable")

    def __exit__(self, exc_type, exc, tb):
        # A server that died during the test explains its failure: say so,
        # with its log, instead of leaving only a client's "refused".
        died = self.proc.poll() if self.proc else None
        self.stop()
        if exc_type is not None or died is not None:
            sys.stderr.write(f"--- turnkey log ({self.log_path}, exit status {died}) ---\n"
                             + self.read_log()[-20000:] + "--- end of log ---\n")
        if exc_type is None and died is not None:
            raise AssertionError(f"turnkey exited during the test (status {died})")

    def stop(self):
        stop_process(self.proc)
        if hasattr(self, "log"):
            self.log.close()

    def read_log(self):
        return read_text(self.log_path)
