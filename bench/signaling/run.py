#!/usr/bin/env python3
"""Runs turnkey's Socket.IO signaling and a Node.js socket.io 4 server of our
own with the same call contract (bench/signaling/node_server.js) on loopback,
drives both with the same load (bench/signaling/sio_loadgen), and prints what
each costs per idle connection and per call. A third row, the floor
(bench/signaling/sio_floor), is the least any server can spend on the same
call flow: only its socket work. See bench/README.md.

    bench/signaling/run.py --build build               # about 4 minutes
    bench/signaling/run.py --build build --quick       # about 2 minutes
    bench/signaling/run.py --build build --repeat 3    # about 5 minutes

Everything runs on 127.0.0.0/8 with ports chosen at run time; every process
this script starts is stopped by its pid when it ends. A server that cannot be
started, or whose connections or calls fail, gets "failed: <why>" in its row
and the run goes on.
"""

import argparse
import base64
import concurrent.futures
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SERVERS = ("turnkey", "node", "floor")
TURN_SECRET = "bench-turn-secret-" + os.urandom(6).hex()  # mints the iceServers credentials
ICE_URLS = ["stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp"]
PASSWORD = "bench-password-" + os.urandom(4).hex()

# The /proc readings and process handling of the TURN bench (bench/run.py),
# imported without leaving a __pycache__ in the tree.
sys.dont_write_bytecode = True
_spec = importlib.util.spec_from_file_location("turn_bench", os.path.join(REPO, "bench", "run.py"))
turn_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(turn_bench)
Proc = turn_bench.Proc
cpu_sample = turn_bench.cpu_sample
cpu_delta = turn_bench.cpu_delta
user_share = turn_bench.user_share
rss_kb = turn_bench.rss_kb
free_port = turn_bench.free_port
read_listening_line = turn_bench.read_listening_line
fmt_num = turn_bench.fmt_num
ratio = turn_bench.ratio

# turnkey's default limits on initiateCall and on client events
# (signal.rate_limits). Both servers get the limits of a run: turnkey through
# its config, the Node server on its command line.
SERVER_LIMITS = {
    "initiate_socket_rate": 0.5,
    "initiate_socket_burst": 5,
    "initiate_user_rate": 1,
    "initiate_user_burst": 10,
    "event_rate": 50,
    "event_burst": 100,
}
NO_LIMITS = {k: (0 if k.endswith("rate") else v) for k, v in SERVER_LIMITS.items()}

# ---------------------------------------------------------------------------
# REST


def post_json(port, path, body, timeout=60):
    data = json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.load(e)
        except ValueError:
            return e.code, {}


def http_ok(port, path, timeout=1.0):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def register_users(port, count, prefix, parallel):
    """Registers `count` users over POST /api/auth/register; returns
    [(id, token)] in order, and the seconds it took."""
    def one(i):
        status, body = post_json(port, "/api/auth/register", {
            "email": f"{prefix}{i}@bench.example", "password": PASSWORD,
            "handle": f"{prefix}{i}"})
        data = body.get("data") or {}
        if status not in (200, 201) or "token" not in data:
            raise RuntimeError(f"register: HTTP {status} {body.get('message', '')}")
        return data["user"]["id"], data["token"]

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        users = list(pool.map(one, range(count)))
    return users, time.monotonic() - started


# ---------------------------------------------------------------------------
# Servers


class Server(turn_bench.ServerUnderTest):
    """One signaling server under test."""

    def __init__(self, name, ctx):
        super().__init__(name, ctx)
        self.port = None
        self.users_file = None
        self.user_count = 0
        self.register_seconds = None
        self.limits = SERVER_LIMITS  # both servers are started with these
        self.extra_yaml = []
        self.calls_made = 0  # turnkey: completed calls the loadgen saw, all runs

    def _start_node(self):
        c = self.ctx
        limits = self.limits
        argv = [c.node, os.path.join(HERE, "node_server.js"), "--listen", "127.0.0.1:0",
                "--ice-urls", ",".join(ICE_URLS), "--ice-secret", TURN_SECRET,
                "--socket-rate", str(limits["initiate_socket_rate"]),
                "--socket-burst", str(limits["initiate_socket_burst"]),
                "--user-rate", str(limits["initiate_user_rate"]),
                "--user-burst", str(limits["initiate_user_burst"]),
                "--event-rate", str(limits["event_rate"]),
                "--event-burst", str(limits["event_burst"])]
        self.proc = Proc("node", argv, log_path=c.path("node.log"), capture=True)
        address = read_listening_line(self.proc, timeout=15)
        if not address:
            self.error = "did not start: " + self.proc.log_tail()
            return
        self.port = int(address.rsplit(":", 1)[1])

    def _start_floor(self):
        self.proc = Proc("floor", [self.ctx.floor, "--listen", "127.0.0.1:0"],
                         log_path=self.ctx.path("floor.log"), capture=True)
        address = read_listening_line(self.proc, timeout=15)
        if not address:
            self.error = "did not start: " + self.proc.log_tail()
            return
        self.port = int(address.rsplit(":", 1)[1])

    def _start_turnkey(self):
        c = self.ctx
        if not os.access(c.turnkey, os.X_OK):
            self.error = f"{c.turnkey} not built"
            return
        self.port = free_port()
        state = c.path("tk-state")  # kept across restarts: the users stay registered
        os.makedirs(state, exist_ok=True)
        urls = ", ".join(f'"{u}"' for u in ICE_URLS)
        extra = "".join(f"  {line}\n" for line in self.extra_yaml)
        lim = self.limits
        rate_limits = (
            f"  rate_limits:\n"
            f"    events: {{rate: {lim['event_rate']}, burst: {lim['event_burst']}}}\n"
            f"    initiate_per_socket: {{rate: {lim['initiate_socket_rate']}, "
            f"burst: {lim['initiate_socket_burst']}}}\n"
            f"    initiate_per_user: {{rate: {lim['initiate_user_rate']}, "
            f"burst: {lim['initiate_user_burst']}}}\n"
            # Every user is registered from 127.0.0.1.
            f"    register_per_address: {{rate: 0}}\n")
        config = f"""# generated by bench/signaling/run.py
realm: bench.local
state_dir: {state}
log: {{level: warn, format: text}}
tls: {{certificate: {c.cert}, private_key: {c.key}}}
turn:
  enabled: false
  auth:
    secrets: ["{TURN_SECRET}"]
signal:
  enabled: true
  listen: {{address: 127.0.0.1, port: {self.port}, tls: false}}
  jwt: {{access_ttl: 2h}}
  ice_servers: {{urls: [{urls}], credential_ttl: 24h}}
{rate_limits}{extra}database:
  driver: sqlite
  sqlite: {{path: turnkey.db}}
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
        self.proc = Proc("turnkey", [c.turnkey, "serve", "--config", path],
                         log_path=c.path("tk.log"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.proc.alive():
                self.error = "exited: " + self.proc.log_tail()
                return
            if http_ok(self.port, "/healthz"):
                return
            time.sleep(0.1)
        self.error = "no answer on /healthz: " + self.proc.log_tail()

    def register(self, count):
        """Registers the bench users (once per server process) and writes the
        loadgen's users file. The floor has no accounts: it reads the user id
        from the token's "sub" claim and checks no signature."""
        if self.name == "floor":
            users = [(f"floor-user-{i}", "e30." + base64.urlsafe_b64encode(
                json.dumps({"sub": f"floor-user-{i}"}).encode()).decode().rstrip("=") + ".x")
                for i in range(count)]
            seconds = 0.0
        else:
            users, seconds = register_users(self.port, count, f"b{os.urandom(3).hex()}",
                                            self.ctx.args.register_parallel)
        self.users_file = self.ctx.path(f"users-{self.name}.txt")
        with open(self.users_file, "w") as f:
            for user_id, token in users:
                f.write(f"{user_id} {token}\n")
        self.user_count = count
        self.register_seconds = seconds

    def completed_calls_stored(self):
        """turnkey: rows in the calls table with status completed (read-only)."""
        path = os.path.join(self.ctx.path("tk-state"), "turnkey.db")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM calls WHERE status = 'completed'").fetchone()[0]
        finally:
            db.close()

    def wait_stored(self, expected, timeout=10.0):
        """Waits until `expected` completed calls are stored (the writes are
        batched behind the calls); returns the count seen last."""
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            try:
                seen = self.completed_calls_stored()
            except sqlite3.Error as e:
                return f"cannot read the database: {e}"
            if seen >= expected or time.monotonic() > deadline:
                return seen
            time.sleep(0.2)

    def pin(self):
        """Moves every thread of the server to the server CPUs."""
        if self.ctx.server_cpus and self.alive():
            subprocess.run(["taskset", "-a", "-p", "-c", self.ctx.server_cpus, str(self.proc.pid)],
                           capture_output=True, check=False)


# ---------------------------------------------------------------------------
# Measurements


def loadgen_argv(ctx, server, extra, limits):
    argv = [ctx.loadgen, "--json", "--server", f"127.0.0.1:{server.port}",
            "--users", server.users_file, "--threads", str(ctx.args.loadgen_threads)]
    for key, value in limits.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    return argv + extra


def run_idle(ctx, server):
    """RSS per idle authenticated connection at each step, on a fresh server."""
    steps = ctx.idle_steps
    argv = loadgen_argv(ctx, server, ["--idle", "--wait-stdin", "--steps",
                                      ",".join(str(s) for s in steps),
                                      "--pipeline", str(ctx.args.pipeline)], ctx.limits)
    time.sleep(1.0)  # let the fresh server settle
    pid = server.proc.pid
    base_rss = rss_kb(pid)
    base_cpu = cpu_sample(pid)
    gen = Proc("sio_loadgen", argv, cpus=ctx.load_cpus, log_path=ctx.path("loadgen.log"),
               capture=True, stdin=True)
    out = {"base_rss_kb": base_rss, "steps": []}
    prev_cpu = base_cpu
    prev_total = 0
    timer = threading.Timer(60 + steps[-1] / 50, lambda: gen.stop(timeout=1))
    timer.start()
    try:
        for line in gen.popen.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "connected":
                time.sleep(ctx.args.settle)  # answers sent, garbage collected; RSS settles
                alive = server.alive()
                cpu = cpu_sample(pid) if alive else prev_cpu
                rss = rss_kb(pid) if alive else 0
                total = event["ready_total"]
                made = total - prev_total
                out["steps"].append({
                    "step": event["step"],
                    "total": total,
                    "failed": event["failed"],
                    "lost": event["lost"],
                    "error": event["error"],
                    "per_second": event["per_second"],
                    "cpu_us_per_conn": cpu_delta(prev_cpu, cpu) * 1e6 / made if made else None,
                    "rss_kb": rss,
                    "rss_kib_per_conn": (rss - base_rss) / total if total else None,
                })
                prev_cpu, prev_total = cpu, total
                try:
                    gen.popen.stdin.write("next\n")
                    gen.popen.stdin.flush()
                except OSError:
                    pass
                if len(out["steps"]) == len(steps):
                    gen.popen.stdin.close()
            elif event.get("event") == "result":
                out["lost"] = event.get("lost", 0)
                out["lost_error"] = event.get("lost_error", "")
                break
    finally:
        timer.cancel()
        try:
            gen.popen.stdin.close()
        except OSError:
            pass
        try:
            gen.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        gen.stop()
    if not out["steps"]:
        return {"error": "load generator gave no result: " + gen.log_tail(2)}
    first = out["steps"][0]
    if first["total"] == 0:
        return {"error": first["error"] or "no connection was made"}
    if not server.alive():
        return {"error": "server exited: " + server.proc.log_tail()}
    return out


def run_calls(ctx, server, rate, seconds, pairs, limits, window=0, warmup=None):
    """One call run; the server's and the load generator's CPU over the
    measured window."""
    warmup = ctx.warmup if warmup is None else warmup
    extra = ["--rate", str(rate), "--seconds", str(seconds), "--warmup", str(warmup),
             "--pairs", str(pairs)]
    if window:
        extra += ["--window", str(window)]
    argv = loadgen_argv(ctx, server, extra, limits)
    gen = Proc("sio_loadgen", argv, cpus=ctx.load_cpus, log_path=ctx.path("loadgen.log"),
               capture=True)
    marks = {}
    result = None
    timer = threading.Timer(seconds + warmup + 120, lambda: gen.stop(timeout=1))
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
                    "server_cpu": cpu_sample(server.proc.pid) if server.alive() else None,
                    "load_cpu": cpu_sample(gen.pid),
                }
            elif kind == "result":
                result = event
    finally:
        timer.cancel()
        gen.popen.wait()
        gen.stop()
    if result is None:
        return {"error": "load generator gave no result: " + gen.log_tail(2)}
    server.calls_made += result.get("calls_total", 0)
    if not server.alive():
        return {"error": "server exited: " + server.proc.log_tail()}
    if "calls" not in result:
        return {"error": result.get("error") or "no result"}
    if result["calls"] == 0:
        errors = result.get("errors") or {}
        why = ", ".join(f"{k} x{v}" for k, v in errors.items()) or result.get("lost_error") or \
            "no call completed"
        return {"error": why, "raw": result}
    s, e = marks.get("measure_start"), marks.get("measure_end")
    if not s or not e or s["server_cpu"] is None or e["server_cpu"] is None:
        return {"error": "no CPU samples"}
    wall = e["time"] - s["time"]
    server_cpu = cpu_delta(s["server_cpu"], e["server_cpu"])
    share = user_share(s["server_cpu"], e["server_cpu"])
    load_cpu = cpu_delta(s["load_cpu"], e["load_cpu"])
    calls = result["calls"]
    stored = None
    if server.name == "turnkey":
        stored = server.wait_stored(server.calls_made)
    return {
        "stored": stored,
        "calls_made": server.calls_made,
        "calls_per_s": result["calls_per_s"],
        "calls": calls,
        "setup_us": result["setup_us"],
        "cpu_us_per_call": server_cpu * 1e6 / calls,
        "user_us_per_call": server_cpu * share * 1e6 / calls if share is not None else None,
        "calls_per_cpu_s": calls / server_cpu if server_cpu > 0 else None,
        "server_cpu_pct": 100 * server_cpu / wall if wall > 0 else None,
        "load_cpu_pct": 100 * load_cpu / wall if wall > 0 else None,
        "load_cpu_us_per_call": load_cpu * 1e6 / calls,
        "late": result["late"],
        "limited_pct": result.get("limited_pct"),
        "errors": result["errors"],
        "timeouts": result["timeouts"],
        "rss_kb": rss_kb(server.proc.pid),
        "raw": result,
    }


def limit_bound_rate(limits, pairs, seconds):
    """Calls/s the limits let `pairs` pairs (one socket per user) make over
    `seconds` (warmup + measured), bursts included; None = unlimited."""
    per_user = []
    if limits["initiate_socket_rate"] > 0:
        per_user.append(limits["initiate_socket_burst"] + limits["initiate_socket_rate"] * seconds)
    if limits["initiate_user_rate"] > 0:
        per_user.append(limits["initiate_user_burst"] + limits["initiate_user_rate"] * seconds)
    if not per_user:
        return None
    return pairs * 2 * min(per_user) / seconds


def pairs_for(limits, rate, seconds, headroom=1.2):
    """Pairs needed to start `rate` calls/s for `seconds` under the limits."""
    bound = limit_bound_rate(limits, 1, seconds)
    if bound is None:
        return 0
    return math.ceil(rate * headroom / bound)


# ---------------------------------------------------------------------------
# Repetitions: the table shows the median of each figure


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def combine_calls(results):
    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[-1]
    out = dict(ok[-1])
    for key in ("calls_per_s", "cpu_us_per_call", "user_us_per_call", "calls_per_cpu_s", "server_cpu_pct",
                "load_cpu_pct", "load_cpu_us_per_call", "late", "limited_pct"):
        out[key] = median([r.get(key) for r in ok])
    out["setup_us"] = {q: median([r["setup_us"][q] for r in ok]) for q in ("p50", "p90", "p99")}
    errors = {}
    for r in ok:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    out["errors"] = errors
    out["runs"] = results
    return out


def combine_idle(results):
    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[-1]
    out = dict(ok[-1])
    out["base_rss_kb"] = median([r["base_rss_kb"] for r in ok])
    out["steps"] = []
    for i, step in enumerate(ok[-1]["steps"]):
        merged = dict(step)
        for key in ("per_second", "cpu_us_per_conn", "rss_kib_per_conn"):
            merged[key] = median([r["steps"][i][key] for r in ok if len(r["steps"]) > i])
        out["steps"].append(merged)
    out["runs"] = results
    return out


# ---------------------------------------------------------------------------
# Output


def good(row):
    return row if row and "error" not in row else None


def print_idle_table(rows, steps, users):
    print(f"\nIdle authenticated WebSocket connections (fresh server; connection i is user "
          f"i mod {users}; RSS after {steps} connections, minus the fresh server's)")
    header = f"  {'server':<8} {'base RSS MiB':>12}"
    for s in steps:
        header += f" {'conn/s @' + str(s):>13} {'cpu us/conn':>11} {'RSS KiB/conn':>12}"
    header += f" {'RSS /node':>9}"
    print(header)
    base = good(rows.get("node"))
    for name, row in rows.items():
        if "error" in row:
            print(f"  {name:<8} failed: {row['error']}")
            continue
        line = f"  {name:<8} {row['base_rss_kb'] / 1024:>12.1f}"
        for step in row["steps"]:
            failed = f" ({step['failed']} failed)" if step["failed"] else ""
            line += (f" {step['per_second']:>13,.0f} {fmt_num(step['cpu_us_per_conn'], '.1f'):>11}"
                     f" {fmt_num(step['rss_kib_per_conn'], '.2f'):>12}{failed}")
        rss = row["steps"][-1]["rss_kib_per_conn"]
        base_rss = base and base["steps"][-1]["rss_kib_per_conn"]
        line += f" {fmt_num(ratio(rss, base_rss), '.2f'):>9}"
        print(line)
        if row.get("lost"):
            print(f"  {'':<8} {row['lost']} connections lost: {row.get('lost_error')}")


# A closed loop held back by the rate limits for more than this share of
# its window measures the limits, not the server: no /node ratio then.
HELD_PCT = 10


def print_calls_table(title, rows, closed=False):
    """`closed`: a closed loop, where a server the limits held is not
    compared with one they did not."""
    print(f"\n{title}")
    print(f"  {'server':<8} {'calls/s':>8} {'setup p50/p90/p99 us':>22} {'cpu us/call':>11} "
          f"{'user us':>7} {'calls/cpu-s':>11} {'server cpu':>10} {'load cpu':>8} {'late':>6} "
          f"{'errors':>6} {'calls/cpu-s /node':>17} {'user /node':>10} {'p99 /node':>9}")
    base = good(rows.get("node"))
    held_names = []
    for name, r in rows.items():
        if "error" in r:
            print(f"  {name:<8} failed: {r['error']}")
            continue
        held = closed and any((x or {}).get("limited_pct", 0) >= HELD_PCT for x in (r, base))
        if held:
            held_names.append(name)
        compared = None if held else base
        cps_ratio = ratio(r["calls_per_cpu_s"], compared and compared["calls_per_cpu_s"])
        s = r["setup_us"]
        setup = f"{s['p50']:.0f}/{s['p90']:.0f}/{s['p99']:.0f}"
        errors = sum(r["errors"].values())
        user = r.get("user_us_per_call")
        base_user = base and base.get("user_us_per_call")
        print(f"  {name:<8} {r['calls_per_s']:>8,.0f} {setup:>22} {r['cpu_us_per_call']:>11.1f} "
              f"{fmt_num(user, '.1f'):>7} {fmt_num(r['calls_per_cpu_s'], ',.0f'):>11} "
              f"{fmt_num(r['server_cpu_pct'], '.0f'):>9}% {fmt_num(r['load_cpu_pct'], '.0f'):>7}% "
              f"{r['late']:>6} {errors:>6} "
              f"{fmt_num(cps_ratio, '.2f'):>17} "
              f"{fmt_num(ratio(base_user, user), '.2f'):>10} "
              f"{fmt_num(ratio(s['p99'], compared and compared['setup_us']['p99']), '.2f'):>9}")
        if errors:
            print(f"  {'':<8} errors: {json.dumps(r['errors'])}")
        if r.get("stored") is not None:
            print(f"  {'':<8} completed calls in the database: {r['stored']} "
                  f"(completed so far by the load generator: {r['calls_made']})")
        raw = r.get("raw", {})
        if r.get("limited_pct") and r["limited_pct"] >= 1:
            print(f"  {'':<8} the rate limits, not the server, held the window short "
                  f"{r['limited_pct']:.0f}% of the measured time")
        if r["late"]:
            print(f"  {'':<8} late starts: {raw.get('late_busy', 0)} waited for a pair in a call, "
                  f"{raw.get('late_limits', 0)} for the rate limits, {raw.get('late_self', 0)} "
                  f"for the load generator")
    if held_names:
        print(f"  no calls/cpu-s or p99 ratio for {', '.join(held_names)}: the rate limits held "
              f"it or the Node server {HELD_PCT}% of the window or more, so the loop measured "
              f"the limits, not the server (--users for more pairs, or --closed-limits off)")


# ---------------------------------------------------------------------------
# The run


class Context:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="tksigbench-")
        self.build = os.path.abspath(args.build)
        self.turnkey = os.path.abspath(args.turnkey or os.path.join(self.build, "turnkey"))
        self.floor = os.path.join(self.build, "bench", "sio_floor")
        self.loadgen = os.path.join(self.build, "bench", "sio_loadgen")
        self.node = shutil.which("node") or "/usr/bin/node"
        self.limits = NO_LIMITS if args.limits == "off" else SERVER_LIMITS
        self.idle_steps = [int(s) for s in args.idle_steps.split(",") if s]
        self.warmup = args.warmup
        cpus = sorted(os.sched_getaffinity(0))
        if args.no_pin or len(cpus) < 2:
            self.server_cpus = self.load_cpus = None
        else:
            self.server_cpus = str(cpus[-1])
            self.load_cpus = ",".join(str(c) for c in cpus[:-1])

    def path(self, name):
        return os.path.join(self.tmp, name)

    @property
    def cert(self):
        return self.path("cert.pem")

    @property
    def key(self):
        return self.path("key.pem")

    def make_certificate(self):
        """A throwaway certificate: turnkey loads tls: at start even with no
        TLS listener."""
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", self.key,
                        "-out", self.cert, "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)


def measure_server(ctx, server, report):
    """Everything for one server, each run on a fresh process: calls at a
    fixed rate, calls in a closed loop, idle connections. turnkey's users
    stay registered in its database (and their tokens valid) across runs and
    repetitions; the Node server keeps users in memory, so they are
    registered again on every start."""
    a = ctx.args
    out = {}
    name = server.name

    def fresh(limits, extra_yaml):
        server.stop()
        server.limits = limits
        server.extra_yaml = extra_yaml
        if not server.start():
            return server.error
        # node keeps users in memory only; the floor's users are made up
        if server.users_file is None or name in ("node", "floor"):
            try:
                server.register(ctx.users)
            except Exception as e:
                return f"registration failed: {e}"
            if name != "floor":
                print(f"  {name}: {ctx.users} users registered in "
                      f"{server.register_seconds:.1f} s", flush=True)
            report["env"][f"{name}_register_seconds"] = server.register_seconds
        server.pin()
        return None

    try:
        print(f"  {name}: fixed rate ...", flush=True)
        report["env"].setdefault("runs", []).append({"server": name, "time": time.time(),
                                                     "loadavg": os.getloadavg()[0]})
        error = fresh(ctx.limits, a.turnkey_signal_yaml)
        if error:
            return {k: {"error": error} for k in ("idle", "fixed", "closed")}
        # A short call run first: it tells whether the server speaks the contract.
        probe = run_calls(ctx, server, rate=0, seconds=1, pairs=2, warmup=0, limits=ctx.limits)
        if "error" in probe:
            out["fixed"] = {"error": f"call probe: {probe['error']}"}
        else:
            out["fixed"] = run_calls(ctx, server, rate=a.rate, seconds=a.seconds,
                                     pairs=ctx.fixed_pairs, limits=ctx.limits)
        print(f"  {name}: closed loop ...", flush=True)
        closed_limits = NO_LIMITS if a.closed_limits == "off" else SERVER_LIMITS
        if "error" in probe:
            out["closed"] = out["fixed"]
        else:
            error = fresh(closed_limits, a.turnkey_signal_yaml)
            out["closed"] = {"error": error} if error else run_calls(
                ctx, server, rate=0, seconds=a.seconds, pairs=ctx.closed_pairs,
                window=a.window, limits=closed_limits)
        print(f"  {name}: idle connections ...", flush=True)
        error = fresh(ctx.limits, a.turnkey_signal_yaml)
        out["idle"] = {"error": error} if error else run_idle(ctx, server)
        return out
    finally:
        server.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", default=os.path.join(REPO, "build"),
                   help="build directory with bench/sio_loadgen (and turnkey unless --turnkey)")
    p.add_argument("--turnkey", help="turnkey binary (default: BUILD/turnkey)")
    p.add_argument("--servers", default=",".join(SERVERS), help="comma list of turnkey,node,floor")
    p.add_argument("--quick", action="store_true", help="about a minute instead of a few")
    p.add_argument("--idle-steps", default="1000,10000", help="idle connection counts")
    p.add_argument("--rate", type=float, default=1000, help="fixed-rate run: calls/s")
    p.add_argument("--seconds", type=float, help="measured seconds per call run")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    p.add_argument("--users", type=int,
                   help="users registered per server (default: what the fixed-rate run needs, "
                        "and 4000 (2000 with --quick) for a closed loop under the limits)")
    p.add_argument("--window", type=int, default=128,
                   help="closed loop: calls in flight at most (0 = one per pair)")
    p.add_argument("--closed-pairs", type=int, default=0,
                   help="closed loop: pairs (0 = every registered user)")
    p.add_argument("--limits", choices=("server", "off"), default="server",
                   help="fixed-rate run: server = turnkey's default initiateCall/event limits "
                        "on both servers and the loadgen stays under them (default); off = no "
                        "limits on either server or in the loadgen")
    p.add_argument("--closed-limits", choices=("server", "off"), default="server",
                   help="closed loop: server = turnkey's default limits on both servers and "
                        "the loadgen stays under them, with enough users (--users) that they "
                        "seldom bind (default); off = no limits on either server or in the "
                        "loadgen")
    p.add_argument("--turnkey-signal-yaml", action="append", default=[],
                   help="a line added under signal: in turnkey's config (repeatable)")
    p.add_argument("--repeat", type=int, default=1,
                   help="repetitions, alternating the servers; the tables show medians")
    p.add_argument("--loadgen-threads", type=int, default=1)
    p.add_argument("--pipeline", type=int, default=256, help="idle: connections in handshake")
    p.add_argument("--register-parallel", type=int, default=8, help="REST registrations at once")
    p.add_argument("--settle", type=float, default=2.0, help="idle: seconds before reading RSS")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the server and the load generator to separate CPUs")
    p.add_argument("--json-out", help="also write every figure to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    args = p.parse_args()
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 5.0
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            p.error(f"unknown server {s}")

    ctx = Context(args)
    if not os.access(ctx.loadgen, os.X_OK):
        p.error(f"{ctx.loadgen} not found: cmake --build {args.build} --target sio_loadgen")
    if "floor" in servers and not os.access(ctx.floor, os.X_OK):
        p.error(f"{ctx.floor} not found: cmake --build {args.build} --target sio_floor")
    if "node" in servers and not os.path.isdir(os.path.join(HERE, "node_modules", "socket.io")):
        print("installing socket.io for the Node server (npm ci in bench/signaling) ...",
              flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    span = args.warmup + args.seconds
    ctx.fixed_pairs = max(2, pairs_for(ctx.limits, args.rate, span) or 64)
    users = args.users or max(2 * ctx.fixed_pairs,
                              (2000 if args.quick else 4000) if args.closed_limits == "server"
                              else 0)
    users = max(users, 2 * args.closed_pairs, 4)
    ctx.users = users + users % 2
    ctx.fixed_pairs = min(ctx.fixed_pairs, ctx.users // 2)
    ctx.closed_pairs = args.closed_pairs or ctx.users // 2
    # Each process may hold every connection plus its own files.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < max(ctx.idle_steps) + 1000:
        print(f"warning: RLIMIT_NOFILE is {hard}: {max(ctx.idle_steps)} connections may fail")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started = time.monotonic()
    report = {"env": {}, "idle": {}, "fixed": {}, "closed": {}}
    try:
        if "turnkey" in servers:
            ctx.make_certificate()
        env = report["env"]
        env["kernel"] = platform.release()
        env["cpus"] = len(os.sched_getaffinity(0))
        env["loadavg_start"] = os.getloadavg()
        env["node"] = subprocess.run([ctx.node, "--version"], capture_output=True,
                                     text=True).stdout.strip()
        env["limits"] = ctx.limits
        env["users"] = ctx.users
        env["fixed_pairs"] = ctx.fixed_pairs
        env["closed_pairs"] = ctx.closed_pairs
        bound_fixed = limit_bound_rate(ctx.limits, ctx.fixed_pairs, span)
        print(f"signaling bench: {env['cpus']} CPUs, servers pinned to {ctx.server_cpus or 'any'}, "
              f"load to {ctx.load_cpus or 'any'}; {env['node']}; load average "
              f"{env['loadavg_start'][0]:.2f}; {ctx.users} users; limits {args.limits}; "
              f"logs in {ctx.tmp}", flush=True)
        runs = {kind: {name: [] for name in servers} for kind in ("idle", "fixed", "closed")}
        objects = {name: Server(name, ctx) for name in servers}
        for rep in range(args.repeat):
            if args.repeat > 1:
                print(f" repetition {rep + 1} of {args.repeat}", flush=True)
            for name in servers:
                rows = measure_server(ctx, objects[name], report)
                for kind in runs:
                    runs[kind][name].append(rows.get(kind, {"error": "not run"}))
        for kind in runs:
            for name in servers:
                report[kind][name] = (combine_idle if kind == "idle" else combine_calls)(
                    runs[kind][name])

        print_idle_table(report["idle"], ctx.idle_steps, ctx.users)
        print_calls_table(
            f"Calls at a fixed rate of {args.rate:,.0f} calls/s ({ctx.fixed_pairs} pairs, one "
            f"socket per user; ring, accept, hang up; {args.seconds:g} s measured)",
            report["fixed"])
        closed_title = (f"Calls in a closed loop ({ctx.closed_pairs} pairs, "
                        f"{args.window or ctx.closed_pairs} in flight at most; ")
        if args.closed_limits == "off":
            closed_title += "no rate limits)"
        else:
            sustained = limit_bound_rate(SERVER_LIMITS, ctx.closed_pairs, 1e9)
            closed_title += (f"under turnkey's limits, which let these pairs start about "
                             f"{sustained:,.0f} calls/s once their bursts are spent)")
        print_calls_table(closed_title, report["closed"], closed=True)
        if bound_fixed is not None and bound_fixed < args.rate:
            print(f"\nnote: the limits allow only about {bound_fixed:,.0f} calls/s for "
                  f"{ctx.fixed_pairs} pairs; pass --users to register more")
        env["loadavg_end"] = os.getloadavg()
        env["seconds"] = time.monotonic() - started
        print(f"\ndone in {env['seconds']:.0f} s; load average now {env['loadavg_end'][0]:.2f}")
    finally:
        turn_bench.stop_all()
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump(report, f, indent=1, default=str)
        if not args.keep:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
        else:
            print(f"logs and configs kept in {ctx.tmp}")


if __name__ == "__main__":
    main()
