#!/usr/bin/env python3
"""Runs coturn, turnkey and the raw UDP forwarder side by side on loopback and
drives each with the same load. See bench/README.md for what the figures mean.

    bench/run.py --build build            # a few minutes
    bench/run.py --build build --quick    # about a minute

Everything runs on 127.0.0.0/8 with ports chosen at run time; every process this
script starts is stopped by its pid when it ends. A relay that cannot be
started, or whose allocations fail, gets "failed: <why>" in its column and the
run goes on.
"""

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
REALM = "bench.local"
SECRET = "bench-secret-" + os.urandom(6).hex()  # TURN REST shared secret, this run only
STATIC_USER = "benchuser"
STATIC_PASSWORD = "bench-password-" + os.urandom(6).hex()
REST_USER = "bench"

RELAYS = ("forwarder", "coturn", "turnkey")

# ---------------------------------------------------------------------------
# /proc readings


def stat_cpu_times(pid):
    """(utime, stime) of every thread of `pid`, in seconds, from one read of
    /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def sched_cpu_seconds(pid):
    """On-CPU time of the live threads of `pid` from /proc/<pid>/task/*/schedstat:
    the accounting utime + stime come from, in ns instead of 10 ms ticks."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # the thread ended meanwhile
    return total / 1e9


def cpu_sample(pid):
    """(schedstat seconds, utime + stime, utime) of `pid` now."""
    user, system = stat_cpu_times(pid)
    return (sched_cpu_seconds(pid), user + system, user)


def user_share(before, after):
    """The part of the CPU time between two cpu_sample()s spent in user space
    (utime over utime + stime, in ticks); None when too few ticks passed."""
    total = after[1] - before[1]
    if total < 0.2:
        return None
    return (after[2] - before[2]) / total


def cpu_delta(before, after):
    """CPU seconds between two cpu_sample()s: the precise schedstat figure, unless
    it disagrees with /proc/<pid>/stat by more than tick rounding can explain
    (a thread ended in between and took its time with it)."""
    sched = after[0] - before[0]
    stat = after[1] - before[1]
    if abs(sched - stat) > max(0.03, 0.1 * stat):
        return stat
    return sched


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_kb(pid):
    return status_kb(pid, "VmRSS")


# ---------------------------------------------------------------------------
# Processes


class Proc:
    """A child process started by this script, stopped by its pid."""

    live = []

    def __init__(self, name, argv, cpus=None, log_path=None, capture=False, stdin=False):
        self.name = name
        cmd = (["taskset", "-c", cpus] if cpus else []) + argv
        self.log_path = log_path
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.popen = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE if capture else log,
            stderr=log,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            text=capture or stdin,
            bufsize=1 if (capture or stdin) else -1,
            start_new_session=True,
        )
        if log_path:
            log.close()
        Proc.live.append(self)

    @property
    def pid(self):
        # taskset execs the program, so the pid is the program's.
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, timeout=5.0):
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait()
            except ProcessLookupError:
                pass
        if self in Proc.live:
            Proc.live.remove(self)

    def log_tail(self, lines=5):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, errors="replace") as f:
            text = [l.rstrip() for l in f if l.strip()]
        return " | ".join(text[-lines:])


def stop_all():
    for p in list(Proc.live):
        p.stop(timeout=2)


# ---------------------------------------------------------------------------
# Ports and readiness


def free_port(also_tcp=True):
    """A port free on 127.0.0.1 for UDP (and TCP), chosen by the kernel."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        try:
            if also_tcp:
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    t.bind(("127.0.0.1", port))
                finally:
                    t.close()
            return port
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no free port")


def relay_port_range(size, taken):
    """`size` relay ports below the kernel's ephemeral range, not overlapping `taken`."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    for _ in range(100):
        start = random.randrange(10000, max(10001, low - size - 1))
        end = start + size - 1
        if all(end < a or start > b for a, b in taken):
            taken.append((start, end))
            return (start, end)
    raise RuntimeError("no relay port range")


def stun_binding_ok(port, timeout=10.0, proc=None):
    """Waits until a STUN Binding request to 127.0.0.1:port gets an answer."""
    deadline = time.monotonic() + timeout
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    try:
        while time.monotonic() < deadline:
            if proc is not None and not proc.alive():
                return False
            txid = os.urandom(12)
            s.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + txid, ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(2048)
                if len(data) >= 20 and data[8:20] == txid:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
    finally:
        s.close()
    return False


def read_listening_line(proc, timeout=5.0):
    """The "listening IP:PORT" line our tools print once bound."""
    result = {}

    def reader():
        line = proc.popen.stdout.readline()
        if line.startswith("listening "):
            result["address"] = line.split()[1]

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    return result.get("address")


# ---------------------------------------------------------------------------
# Relays


class ServerUnderTest:
    """A process under test, started by its subclass's _start_<name>()
    (which sets self.proc, or self.error). Shared with bench/signaling/run.py."""

    def __init__(self, name, ctx):
        self.name = name
        self.ctx = ctx
        self.proc = None
        self.error = None

    def start(self):
        self.error = None
        try:
            getattr(self, "_start_" + self.name)()
        except Exception as e:  # one that cannot start is a "failed" row or column
            self.error = f"cannot start: {e}"
        if self.error:
            self.stop()
        return self.error is None

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.alive()


class Relay(ServerUnderTest):
    """One relay under test: how to start it and where it listens."""

    def __init__(self, name, ctx):
        super().__init__(name, ctx)
        self.udp_port = None
        self.tls_port = None
        self.address = None  # forwarder: its listening IP:PORT
        self.port_range = None  # (min, max) relay ports while running

    def stop(self):
        super().stop()
        if self.port_range in self.ctx.taken_ranges:
            self.ctx.taken_ranges.remove(self.port_range)
        self.port_range = None

    def take_port_range(self):
        self.port_range = relay_port_range(self.ctx.relay_ports, self.ctx.taken_ranges)
        return self.port_range

    def _start_forwarder(self):
        c = self.ctx
        self.proc = Proc(
            "forwarder",
            [c.tool("udp_forwarder"), "--listen", "127.0.0.1:0", "--peer", c.echo_address,
             "--threads", str(c.args.threads)],
            cpus=c.relay_cpus, log_path=c.path("forwarder.log"), capture=True)
        self.address = read_listening_line(self.proc)
        if not self.address:
            self.error = "did not start: " + self.proc.log_tail()

    def _start_coturn(self):
        c = self.ctx
        self.udp_port = free_port()
        self.tls_port = free_port()
        lo, hi = self.take_port_range()
        argv = [
            c.turnserver, "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
            "-p", str(self.udp_port), "--tls-listening-port", str(self.tls_port),
            "--cert", c.cert, "--pkey", c.key,
            "--allow-loopback-peers", "--no-cli", "-r", REALM,
            "--relay-threads", str(c.args.threads), "--min-port", str(lo), "--max-port", str(hi),
            "--log-file", c.path("coturn.log"), "--simple-log", "--no-stdout-log",
            "--pidfile", c.path("coturn.pid"), "--userdb", c.path("coturn.sqlite"),
        ]
        if c.args.auth == "rest":
            argv += ["--use-auth-secret", "--static-auth-secret", SECRET]
        else:
            argv += ["--lt-cred-mech", "-u", f"{STATIC_USER}:{STATIC_PASSWORD}"]
        self.proc = Proc("coturn", argv, cpus=c.relay_cpus, log_path=c.path("coturn.out"))
        if not stun_binding_ok(self.udp_port, proc=self.proc):
            self.error = "no STUN answer: " + (self.proc.log_tail() or "see coturn.log")

    def _start_turnkey(self):
        c = self.ctx
        if not os.access(c.turnkey, os.X_OK):
            self.error = f"{c.turnkey} not built"
            return
        self.udp_port = free_port()
        self.tls_port = free_port()
        lo, hi = self.take_port_range()
        state = c.path("tk-state")
        os.makedirs(state, exist_ok=True)
        key = hashlib.md5(f"{STATIC_USER}:{REALM}:{STATIC_PASSWORD}".encode()).hexdigest()
        config = f"""# generated by bench/run.py
realm: {REALM}
state_dir: {state}
log: {{level: warn, format: text}}
tls: {{certificate: {c.cert}, private_key: {c.key}}}
turn:
  enabled: true
  threads: {c.args.threads}
  listeners:
    - {{transport: udp, address: 127.0.0.1, port: {self.udp_port}}}
    - {{transport: tcp, address: 127.0.0.1, port: {self.udp_port}}}
    - {{transport: tls, address: 127.0.0.1, port: {self.tls_port}}}
    - {{transport: dtls, address: 127.0.0.1, port: {self.tls_port}}}
  relay:
    addresses: [127.0.0.1]
    ports: {{min: {lo}, max: {hi}}}
  auth:
    secrets: ["{SECRET}"]
    static_users: [{{name: {STATIC_USER}, key: {key}}}]
  quotas: {{allocations_per_user: 0, allocations_total: 0}}
  peers:
    allow: [127.0.0.0/8]
signal:
  enabled: false
metrics:
  enabled: false
"""
        path = c.path("tk.yaml")
        with open(path, "w") as f:
            f.write(config)
        check = subprocess.run([c.turnkey, "check-config", "--config", path],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            self.error = "config rejected: " + (check.stderr or check.stdout).strip()[-300:]
            return
        self.proc = Proc("turnkey", [c.turnkey, "serve", "--config", path], cpus=c.relay_cpus,
                         log_path=c.path("tk.log"))
        if not stun_binding_ok(self.udp_port, proc=self.proc):
            self.error = "no STUN answer: " + (self.proc.log_tail() or "see tk.log")

    def loadgen_target(self, transport="udp"):
        if self.name == "forwarder":
            return ["--forwarder", self.address]
        # coturn and turnkey take TCP on the UDP port and TLS on the TLS port.
        port = self.tls_port if transport == "tls" else self.udp_port
        args = ["--server", f"127.0.0.1:{port}", "--transport", transport]
        return args + self.ctx.credentials()


# ---------------------------------------------------------------------------
# Measurements


def run_loadgen(ctx, relay, extra, timeout, transport="udp"):
    """Runs turn_loadgen --json against `relay` over `transport`; samples the
    relay's CPU at the edges of the measured window. Returns a dict (with
    "error" on failure)."""
    argv = [ctx.tool("turn_loadgen"), "--json", "--peer", ctx.echo_address] + \
        relay.loadgen_target(transport) + extra
    gen = Proc("turn_loadgen", argv, cpus=ctx.load_cpus, log_path=ctx.path("loadgen.log"),
               capture=True)
    marks = {}
    result = None
    timer = threading.Timer(timeout, lambda: gen.stop(timeout=1))
    timer.start()
    try:
        for line in gen.popen.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("event")
            if kind in ("measure_start", "measure_end"):
                marks[kind] = {
                    "time": time.monotonic(),
                    "relay_cpu": cpu_sample(relay.proc.pid) if relay.alive() else None,
                    "load_cpu": (cpu_sample(gen.pid), cpu_sample(ctx.echo.pid)),
                }
            elif kind == "result":
                result = event
    finally:
        timer.cancel()
        gen.popen.wait()
        gen.stop()
    if result is None:
        return {"error": "load generator gave no result: " + gen.log_tail(2)}
    if not result.get("ok"):
        return {"error": result.get("error") or "nothing came back"}
    if not relay.alive():
        return {"error": "relay exited: " + relay.proc.log_tail()}
    s, e = marks.get("measure_start"), marks.get("measure_end")
    if not s or not e or s["relay_cpu"] is None or e["relay_cpu"] is None:
        return {"error": "no CPU samples"}
    wall = e["time"] - s["time"]
    relay_cpu = cpu_delta(s["relay_cpu"], e["relay_cpu"])
    load_cpu = sum(cpu_delta(a, b) for a, b in zip(s["load_cpu"], e["load_cpu"]))
    relayed = 2 * result["rx_pps"] * result["seconds"]  # each echo crossed the relay twice
    return {
        "relayed_pps": 2 * result["rx_pps"],
        "loss": result["loss"],
        "rtt_us": result["rtt_us"],
        "cpu_us_per_pkt": relay_cpu * 1e6 / relayed if relayed else None,
        "relay_cpu_pct": 100 * relay_cpu / wall if wall > 0 else None,
        "load_cpu_pct": 100 * load_cpu / wall if wall > 0 else None,
        "rss_kb": rss_kb(relay.proc.pid),
        "raw": result,
    }


UCLIENT_PATTERNS = {
    "sent": re.compile(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", re.M),
    "lost": re.compile(r"Total lost packets (\d+) \(([\d.]+)%\)"),
    "rtt": re.compile(r"Average round trip delay ([\d.]+) ms"),
    "time": re.compile(r"Total transmit time is (\d+)"),
}


def run_uclient(ctx, relay, transport):
    """coturn's turnutils_uclient through `relay` over udp, tcp, tls or dtls."""
    a = ctx.args
    port = relay.tls_port if transport in ("tls", "dtls") else relay.udp_port
    argv = [ctx.uclient, "-c", "-n", str(ctx.uclient_messages), "-m", str(a.uclient_clients),
            "-l", "100", "-z", str(a.uclient_interval_ms), "-e", "127.0.0.1",
            "-r", ctx.echo_address.rsplit(":", 1)[1], "-p", str(port)]
    if transport in ("tcp", "tls"):
        argv.append("-t")
    if transport in ("tls", "dtls"):
        argv.append("-S")  # with -t TLS, without it DTLS
    if a.auth == "rest":
        argv += ["-W", SECRET, "-u", REST_USER]
    else:
        argv += ["-u", STATIC_USER, "-w", STATIC_PASSWORD]
    argv.append("127.0.0.1")
    cpu0 = cpu_sample(relay.proc.pid)
    t0 = time.monotonic()
    try:
        out = subprocess.run((["taskset", "-c", ctx.load_cpus] if ctx.load_cpus else []) + argv,
                             capture_output=True, text=True, timeout=ctx.uclient_timeout)
        text = out.stdout + out.stderr
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else \
            (e.stdout or "")
        return {"error": " ".join(["turnutils_uclient timed out", text.strip()[-200:]]).strip()}
    wall = time.monotonic() - t0
    if not relay.alive():
        return {"error": "relay exited: " + relay.proc.log_tail()}
    cpu = cpu_delta(cpu0, cpu_sample(relay.proc.pid))
    short = {"turnkey": "tk"}.get(relay.name, relay.name)
    with open(ctx.path(f"uclient-{short}-{transport}.log"), "w") as f:
        f.write(text)
    sent = UCLIENT_PATTERNS["sent"].findall(text)
    if not sent or int(sent[-1][1]) == 0:
        lines = [l for l in text.splitlines() if "rror" in l]
        why = lines[-1].strip() if lines else text.strip()[-200:]
        return {"error": "nothing relayed: " + why}
    tx, rx = int(sent[-1][0]), int(sent[-1][1])
    lost = UCLIENT_PATTERNS["lost"].search(text)
    rtt = UCLIENT_PATTERNS["rtt"].search(text)
    # uclient's own transmit time (whole seconds) leaves out its setup and linger.
    transmit = UCLIENT_PATTERNS["time"].search(text)
    seconds = int(transmit.group(1)) if transmit and int(transmit.group(1)) > 0 else wall
    return {
        "sent": tx,
        "received": rx,
        "msgs_per_s": rx / seconds,
        "loss": float(lost.group(2)) / 100 if lost else (tx - rx) / tx,
        "rtt_ms": float(rtt.group(1)) if rtt else None,
        "cpu_us_per_pkt": cpu * 1e6 / (2 * rx),
        "wall": wall,
    }


def run_allocations(ctx, relay):
    """Allocations/s, CPU per allocation and RSS growth at each step, on a fresh relay."""
    steps = ctx.alloc_steps
    argv = [ctx.tool("turn_loadgen"), "--json", "--allocations-only", "--wait-stdin",
            "--steps", ",".join(str(s) for s in steps), "--pipeline", str(ctx.args.pipeline),
            "--bind-ips", str(ctx.args.bind_ips)] + relay.loadgen_target()
    time.sleep(0.5)  # let the fresh relay settle
    base_rss = rss_kb(relay.proc.pid)
    base_cpu = cpu_sample(relay.proc.pid)
    gen = Proc("turn_loadgen", argv, cpus=ctx.load_cpus, log_path=ctx.path("loadgen.log"),
               capture=True, stdin=True)
    out = {"base_rss_kb": base_rss, "steps": []}
    prev_cpu = base_cpu
    timer = threading.Timer(120, lambda: gen.stop(timeout=1))
    timer.start()
    try:
        for line in gen.popen.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "allocated":
                time.sleep(0.3)  # responses sent; let RSS settle
                cpu = cpu_sample(relay.proc.pid) if relay.alive() else prev_cpu
                rss = rss_kb(relay.proc.pid) if relay.alive() else 0
                made = event["ready"]
                step = {
                    "total": event["ready_total"],
                    "per_second": event["per_second"],
                    "failed": event["failed"],
                    "error": event["error"],
                    "retransmissions": event["retransmissions"],
                    "cpu_us_per_alloc": cpu_delta(prev_cpu, cpu) * 1e6 / made if made else None,
                    "rss_kb": rss,
                    "rss_growth_per_alloc_kb":
                        (rss - base_rss) / event["ready_total"] if event["ready_total"] else None,
                }
                out["steps"].append(step)
                prev_cpu = cpu
                try:
                    gen.popen.stdin.write("next\n")
                    gen.popen.stdin.flush()
                except OSError:
                    pass
                if len(out["steps"]) == len(steps):
                    gen.popen.stdin.close()
            elif event.get("event") == "result":
                break
    finally:
        timer.cancel()
        try:
            gen.popen.stdin.close()
        except OSError:
            pass
        gen.popen.wait(timeout=30)
        gen.stop()
    if not out["steps"]:
        return {"error": "load generator gave no result: " + gen.log_tail(2)}
    last = out["steps"][-1]
    out["cpu_us_per_alloc"] = \
        cpu_delta(base_cpu, prev_cpu) * 1e6 / last["total"] if last["total"] else None
    first = out["steps"][0]
    if first["total"] == 0:
        return {"error": first["error"] or "no allocation succeeded"}
    return out


# ---------------------------------------------------------------------------
# The run


class Context:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="tkbench-")
        self.build = os.path.abspath(args.build)
        self.turnkey = os.path.abspath(args.turnkey or os.path.join(self.build, "turnkey"))
        self.turnserver = shutil.which("turnserver") or "/usr/bin/turnserver"
        self.uclient = shutil.which("turnutils_uclient") or "/usr/bin/turnutils_uclient"
        self.taken_ranges = []
        self.relay_ports = max(2000, max(args.steps_list) + 1000)
        self.alloc_steps = args.steps_list
        self.uclient_messages = args.uclient_messages
        self.uclient_timeout = 30 + 3 * args.uclient_messages * args.uclient_interval_ms / 1000
        cpus = sorted(os.sched_getaffinity(0))
        if args.no_pin or len(cpus) <= args.threads:
            self.relay_cpus = self.load_cpus = None
        else:
            self.relay_cpus = ",".join(str(c) for c in cpus[-args.threads:])
            self.load_cpus = ",".join(str(c) for c in cpus[:-args.threads])
        self.cert = self.path("cert.pem")
        self.key = self.path("key.pem")
        self.echo = None
        self.echo_address = None

    def path(self, name):
        return os.path.join(self.tmp, name)

    def tool(self, name):
        return os.path.join(self.build, "bench", name)

    def credentials(self):
        if self.args.auth == "rest":
            return ["--secret", SECRET, "--user", REST_USER]
        return ["--user", STATIC_USER, "--password", STATIC_PASSWORD]


def fmt_num(v, spec):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def median_of(results, key):
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else None


def combine(results):
    """Median over repetitions (the repetitions are interleaved across relays)."""
    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[-1]
    out = dict(ok[len(ok) // 2])
    for key in ("relayed_pps", "loss", "cpu_us_per_pkt", "relay_cpu_pct", "load_cpu_pct"):
        out[key] = median_of(ok, key)
    out["rtt_us"] = {q: statistics.median(r["rtt_us"][q] for r in ok)
                     for q in ("p50", "p90", "p99")}
    out["runs"] = results
    return out


def print_data_table(title, rows, names):
    print(f"\n{title}")
    print(f"  {'relay':<10} {'relayed pkt/s':>13} {'loss':>7} {'rtt p50/p90/p99 us':>22} "
          f"{'cpu us/pkt':>10} {'relay cpu':>9} {'load cpu':>8} {'RSS MiB':>7} "
          f"{'pkt/s /coturn':>13} {'/fwd':>5} {'cpu /coturn':>11} {'/fwd':>5}")
    base_c, base_f = good(rows.get("coturn")), good(rows.get("forwarder"))
    for name in names:
        r = rows.get(name)
        if r is None:
            continue
        if "na" in r:
            print(f"  {name:<10} n/a ({r['na']})")
            continue
        if "error" in r:
            print(f"  {name:<10} failed: {r['error']}")
            continue
        rtt = r["rtt_us"]
        rtts = f"{rtt['p50']:.0f}/{rtt['p90']:.0f}/{rtt['p99']:.0f}"
        pr_c = ratio(r["relayed_pps"], base_c and base_c["relayed_pps"])
        pr_f = ratio(r["relayed_pps"], base_f and base_f["relayed_pps"])
        cr_c = ratio(r["cpu_us_per_pkt"], base_c and base_c["cpu_us_per_pkt"])
        cr_f = ratio(r["cpu_us_per_pkt"], base_f and base_f["cpu_us_per_pkt"])
        print(f"  {name:<10} {r['relayed_pps']:>13,.0f} {100 * r['loss']:>6.2f}% {rtts:>22} "
              f"{fmt_num(r['cpu_us_per_pkt'], '.3f'):>10} "
              f"{fmt_num(r['relay_cpu_pct'], '.0f'):>8}% {fmt_num(r['load_cpu_pct'], '.0f'):>7}% "
              f"{r['rss_kb'] / 1024:>7.1f} {fmt_num(pr_c, '.2f'):>13} {fmt_num(pr_f, '.2f'):>5} "
              f"{fmt_num(cr_c, '.2f'):>11} {fmt_num(cr_f, '.2f'):>5}")


def good(row):
    return row if row and "error" not in row and "na" not in row else None


def print_uclient_table(transport, rows, args):
    offered = args.uclient_clients * 1000 / args.uclient_interval_ms
    print(f"\nturnutils_uclient over {transport.upper()}: {args.uclient_clients} clients x "
          f"{args.uclient_messages} msgs of 100 B, one every {args.uclient_interval_ms} ms "
          f"(at most {offered:,.0f} msgs/s; echoes/s divides by uclient's own whole-second "
          f"send time, the same for every relay)")
    print(f"  {'relay':<10} {'echoes/s':>9} {'loss':>7} {'avg rtt ms':>10} "
          f"{'cpu us/pkt':>10} {'cpu /coturn':>11}")
    base = good(rows.get("coturn"))
    for name, row in rows.items():
        if "error" in row:
            print(f"  {name:<10} failed: {row['error']}")
            continue
        cpu_ratio = ratio(row["cpu_us_per_pkt"], base and base["cpu_us_per_pkt"])
        print(f"  {name:<10} {row['msgs_per_s']:>9,.0f} {100 * row['loss']:>6.2f}% "
              f"{fmt_num(row['rtt_ms'], '.3f'):>10} {row['cpu_us_per_pkt']:>10.3f} "
              f"{fmt_num(cpu_ratio, '.2f'):>11}")


def print_allocation_table(rows, args):
    print(f"\nAllocations (fresh relay, {args.pipeline} in setup at once, each with the 401 "
          f"round trip; client sockets over {args.bind_ips} loopback addresses)")
    header = f"  {'relay':<10} {'base RSS MiB':>12}"
    for s in args.steps_list:
        header += f" {'alloc/s @' + str(s):>13} {'cpu us/alloc':>12} {'RSS KiB/alloc':>13}"
    header += f" {'cpu /coturn':>11} {'RSS /coturn':>11}"
    print(header)
    base = good(rows.get("coturn"))
    for name, row in rows.items():
        if "error" in row:
            print(f"  {name:<10} failed: {row['error']}")
            continue
        line = f"  {name:<10} {row['base_rss_kb'] / 1024:>12.1f}"
        for step in row["steps"]:
            failed = f" ({step['failed']} failed)" if step["failed"] else ""
            line += (f" {step['per_second']:>13,.0f}"
                     f" {fmt_num(step['cpu_us_per_alloc'], '.1f'):>12}"
                     f" {fmt_num(step['rss_growth_per_alloc_kb'], '.2f'):>13}{failed}")
        rss = row["steps"][-1]["rss_growth_per_alloc_kb"]
        base_rss = base and base["steps"][-1]["rss_growth_per_alloc_kb"]
        cpu_ratio = ratio(row["cpu_us_per_alloc"], base and base["cpu_us_per_alloc"])
        line += f" {fmt_num(cpu_ratio, '.2f'):>11} {fmt_num(ratio(rss, base_rss), '.2f'):>11}"
        print(line)


def run_data_suite(ctx, relays, report):
    """turn_loadgen at saturation and at a fixed rate for each payload size,
    interleaved across relays so a change in machine load hits all of them."""
    args = ctx.args
    cases = []
    for transport in args.transports_list:
        for size in args.sizes_list:
            what = f"{transport.upper()}, {size}-byte payload"
            cases.append((f"{what}, saturation (window {args.window})", transport,
                          size, ["--rate", "0", "--window", str(args.window)]))
            cases.append((f"{what}, fixed offered rate {args.rate:,.0f} echoes/s", transport,
                          size, ["--rate", str(args.rate)]))
    warmup = 0.5 if args.quick else 1.0
    setup_errors = {}  # (relay, transport) -> why its allocations failed, once they did
    for title, transport, size, extra in cases:
        runs = {name: [] for name in relays}
        for _ in range(args.repeat):
            for name, r in relays.items():
                if name == "forwarder" and transport != "udp":
                    continue  # the forwarder speaks UDP only
                if r.error:
                    runs[name].append({"error": r.error})
                    continue
                if not r.alive():
                    r.error = "exited: " + r.proc.log_tail()
                    runs[name].append({"error": r.error})
                    continue
                if (name, transport) in setup_errors:
                    runs[name].append({"error": setup_errors[(name, transport)]})
                    continue
                cmd = ["--size", str(size), "--allocations", str(args.allocations),
                       "--seconds", str(args.seconds), "--warmup", str(warmup)] + extra
                result = run_loadgen(ctx, r, cmd, timeout=args.seconds + 40,
                                     transport=transport)
                if result.get("error", "").startswith("setup failed"):
                    # it will not work any better later over this transport
                    setup_errors[(name, transport)] = result["error"]
                runs[name].append(result)
        rows = {name: (combine(v) if v else {"na": "UDP only"}) for name, v in runs.items()}
        report["data"][title] = rows
        print_data_table(title, rows, list(relays))
        sys.stdout.flush()


def run_uclient_suite(ctx, relays, report):
    """coturn's own client, turnutils_uclient, over each transport."""
    for transport in [t for t in ctx.args.uclient.split(",") if t]:
        rows = {}
        for name, r in relays.items():
            if name == "forwarder":
                continue
            rows[name] = {"error": r.error} if r.error else run_uclient(ctx, r, transport)
        report["uclient"][transport] = rows
        print_uclient_table(transport, rows, ctx.args)
        sys.stdout.flush()


def run_allocation_suite(ctx, relays, report):
    """Allocations on a fresh relay each, so RSS growth is the allocations' alone."""
    rows = {}
    for name, r in relays.items():
        if name == "forwarder":
            continue
        r.stop()
        if not r.start():
            rows[name] = {"error": r.error}
            continue
        rows[name] = run_allocations(ctx, r)
        r.stop()
    report["allocations"] = rows
    print_allocation_table(rows, ctx.args)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", default=os.path.join(REPO, "build"),
                   help="build directory with bench/ tools (and turnkey unless --turnkey)")
    p.add_argument("--turnkey", help="turnkey binary (default: BUILD/turnkey)")
    p.add_argument("--quick", action="store_true", help="about one minute instead of a few")
    p.add_argument("--relays", default=",".join(RELAYS), help="comma list of " + ",".join(RELAYS))
    p.add_argument("--threads", type=int, default=1, help="relay threads for every relay")
    p.add_argument("--auth", choices=("rest", "static"), default="rest",
                   help="TURN REST secret (default) or a static user, for both servers")
    p.add_argument("--sizes", default="100,1200", help="payload bytes")
    p.add_argument("--rate", type=float, default=10000,
                   help="fixed offered rate, echoes/s (each echo is two relayed packets)")
    p.add_argument("--allocations", type=int, default=4, help="allocations (flows) driving data")
    p.add_argument("--window", type=int, default=256, help="saturation: packets in flight")
    p.add_argument("--seconds", type=float, help="measured seconds per data run")
    p.add_argument("--repeat", type=int, default=1,
                   help="repetitions of each data run (interleaved; the median is shown)")
    p.add_argument("--steps", default="1000,5000", help="allocation counts for the RSS test")
    p.add_argument("--pipeline", type=int, default=64, help="allocations set up at once")
    p.add_argument("--bind-ips", type=int, default=64,
                   help="client addresses 127.0.0.1.. the allocation test spreads over")
    p.add_argument("--transports", default="udp,tcp,tls",
                   help="client transports for the turn_loadgen data runs (the forwarder: UDP only)")
    p.add_argument("--uclient", default="udp,tcp,tls,dtls",
                   help="turnutils_uclient transports ('' = none)")
    p.add_argument("--uclient-messages", type=int, help="messages per uclient client")
    p.add_argument("--uclient-clients", type=int, default=20)
    p.add_argument("--uclient-interval-ms", type=int, default=2)
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin relays and load to separate CPUs")
    p.add_argument("--json-out", help="also write every figure to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    args = p.parse_args()
    args.steps_list = [int(s) for s in args.steps.split(",") if s]
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 4.0
    if args.uclient_messages is None:
        args.uclient_messages = 300 if args.quick else 1000
    if args.quick and args.uclient == "udp,tcp,tls,dtls":
        args.uclient = "udp"
    if args.quick and args.transports == "udp,tcp,tls":
        args.transports = "udp"
    args.sizes_list = [int(s) for s in args.sizes.split(",") if s]
    args.transports_list = [t for t in args.transports.split(",") if t]
    for t in args.transports_list:
        if t not in ("udp", "tcp", "tls"):
            p.error(f"unknown transport {t}")
    relays_wanted = [r for r in args.relays.split(",") if r]
    for r in relays_wanted:
        if r not in RELAYS:
            p.error(f"unknown relay {r}")

    ctx = Context(args)
    for tool in ("turn_loadgen", "udp_echo", "udp_forwarder"):
        if not os.access(ctx.tool(tool), os.X_OK):
            p.error(f"{ctx.tool(tool)} not found: build the bench targets first "
                    f"(cmake --build {args.build} --target turn_loadgen udp_echo udp_forwarder)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started = time.monotonic()
    report = {"env": {}, "data": {}, "uclient": {}, "allocations": {}}
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ctx.key,
                        "-out", ctx.cert, "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        env = report["env"]
        env["kernel"] = platform.release()
        env["cpus"] = len(os.sched_getaffinity(0))
        env["loadavg_start"] = os.getloadavg()
        env["relay_cpus"] = ctx.relay_cpus
        env["load_cpus"] = ctx.load_cpus
        env["threads"] = args.threads
        env["auth"] = args.auth
        print(f"turnkey bench: {env['cpus']} CPUs, relays pinned to {ctx.relay_cpus or 'any'}, "
              f"load to {ctx.load_cpus or 'any'}; {args.threads} relay thread(s); "
              f"{args.auth} credentials; load average {env['loadavg_start'][0]:.2f}; "
              f"logs in {ctx.tmp}")

        ctx.echo = Proc("udp_echo", [ctx.tool("udp_echo"), "--listen", "127.0.0.1:0"],
                        cpus=ctx.load_cpus, log_path=ctx.path("echo.log"), capture=True)
        ctx.echo_address = read_listening_line(ctx.echo)
        if not ctx.echo_address:
            raise RuntimeError("udp_echo did not start")

        relays = {name: Relay(name, ctx) for name in relays_wanted}
        for r in relays.values():
            if r.start():
                print(f"  {r.name}: started (pid {r.proc.pid})")
            else:
                print(f"  {r.name}: {r.error}")

        run_data_suite(ctx, relays, report)
        run_uclient_suite(ctx, relays, report)
        run_allocation_suite(ctx, relays, report)
        report["env"]["loadavg_end"] = os.getloadavg()
        report["env"]["seconds"] = time.monotonic() - started
        print(f"\ndone in {report['env']['seconds']:.0f} s; load average now "
              f"{report['env']['loadavg_end'][0]:.2f}")
    finally:
        stop_all()
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump(report, f, indent=1, default=str)
        if not args.keep:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
        else:
            print(f"logs and configs kept in {ctx.tmp}")


if __name__ == "__main__":
    main()
