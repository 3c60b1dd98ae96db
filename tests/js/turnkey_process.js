// Starts the real turnkey binary (path in TURNKEY_BINARY) for the Node.js
// integration tests: signaling, TURN and metrics on loopback ports picked at
// run time, a fresh state directory, and the database named by
// TURNKEY_TEST_DB ("sqlite", the default, or "mysql": a private MariaDB
// server started with tests/sql/mariadb_server.sh and migrated with
// `turnkey migrate`). For several nodes of one cluster: a database they share
// (sharedMysqlDatabase), a JWT secret file they share (jwtSecretFile) and a
// private Redis server (startRedis, tests/redis/redis_server.sh). Nothing
// here talks to an address outside 127.0.0.1.
"use strict";

const { spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const dgram = require("node:dgram");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const SOURCE_DIR = path.resolve(__dirname, "..", "..");
const MARIADB_SCRIPT = path.join(SOURCE_DIR, "tests", "sql", "mariadb_server.sh");
const REDIS_SCRIPT = path.join(SOURCE_DIR, "tests", "redis", "redis_server.sh");

function binary() {
  const file = process.env.TURNKEY_BINARY;
  if (!file) {
    // Never skip: a missing binary is a failure of the test setup.
    throw new Error("TURNKEY_BINARY is not set (run the test through ctest)");
  }
  return file;
}

// Ports this process handed out: the kernel may offer a port again once it
// is closed, and two listeners of one config on the same port fail its check.
const handedOut = new Set();

// A port free on 127.0.0.1 for TCP and, with `udp`, for UDP at once, and not
// returned before by this process.
async function freePort(udp = false) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const { port: p } = server.address();
        server.close(() => resolve(p));
      });
    });
    if (handedOut.has(port)) {
      continue;
    }
    if (!udp) {
      handedOut.add(port);
      return port;
    }
    const free = await new Promise((resolve) => {
      const socket = dgram.createSocket("udp4");
      socket.once("error", () => resolve(false));
      socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no free port");
}

// KEY=VALUE lines of a server.env written by the server scripts.
function readEnvFile(file) {
  const env = {};
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) {
      env[line.slice(0, at)] = line.slice(at + 1);
    }
  }
  return env;
}

// A private MariaDB server, shared by every turnkey of this process.
let mariadb = null;
function mariadbEnv() {
  if (mariadb) {
    return mariadb;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tk-sig-db-"));
  execFileSync("bash", [MARIADB_SCRIPT, "start", dir], { stdio: ["ignore", "ignore", "inherit"] });
  const env = readEnvFile(path.join(dir, "server.env"));
  const passwordFile = path.join(dir, "password");
  fs.writeFileSync(passwordFile, `${env.MARIADB_PASSWORD}\n`, { mode: 0o600 });
  mariadb = { dir, env, passwordFile, databases: 0 };
  process.on("exit", stopMariadb);
  return mariadb;
}

/** Stops the private MariaDB server (if one was started) and removes its directory. */
function stopMariadb() {
  if (!mariadb) {
    return;
  }
  const { dir } = mariadb;
  mariadb = null;
  try {
    execFileSync("bash", [MARIADB_SCRIPT, "stop", dir], { stdio: "ignore" });
  } catch {
    // The server is gone already.
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Kills the private MariaDB server (SIGKILL, as a crash) or starts it again
 * on the same data, port and password: a database outage for the nodes.
 */
function mariadbDown() {
  execFileSync("bash", [MARIADB_SCRIPT, "down", mariadbEnv().dir], { stdio: "ignore" });
}
function mariadbUp() {
  execFileSync("bash", [MARIADB_SCRIPT, "up", mariadbEnv().dir],
    { stdio: ["ignore", "ignore", "inherit"] });
}

function mysqlDatabaseYaml() {
  const db = mariadbEnv();
  const name = `${db.env.MARIADB_DB_PREFIX}sig${process.pid}_${++db.databases}`;
  const client = ["mariadb", "mysql"].find((c) => {
    try {
      execFileSync("sh", ["-c", `command -v ${c}`], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  });
  execFileSync(client, ["--no-defaults", "-h", "127.0.0.1", "-P", db.env.MARIADB_PORT,
    "-u", db.env.MARIADB_USER, `-p${db.env.MARIADB_PASSWORD}`, "-e",
    `CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`]);
  return "database:\n  driver: mysql\n" +
    `  mysql: {host: 127.0.0.1, port: ${db.env.MARIADB_PORT}, user: ${db.env.MARIADB_USER}, ` +
    `password_file: ${db.passwordFile}, database: ${name}, pool_size: 4}\n`;
}

/**
 * A new database on the private MariaDB server for several turnkey nodes:
 * pass it as `sharedDatabase` to each startTurnkey (the first one migrates).
 */
function sharedMysqlDatabase() {
  return { yaml: mysqlDatabaseYaml(), migrated: false };
}

/**
 * Writes a signal.jwt.secret_file (64 hex characters, mode 0600) into `dir`
 * and returns its path: nodes given the same file accept each other's tokens.
 */
function jwtSecretFile(dir) {
  const file = path.join(dir, "jwt.key");
  fs.writeFileSync(file, `${crypto.randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
  return file;
}

/**
 * A private Redis server (tests/redis/redis_server.sh): password required,
 * 127.0.0.1 on a free port. Returns { host, port, password, passwordFile,
 * dir, down() (SIGKILL), up() (again on the same port), stop() }; stop()
 * also runs when this process exits.
 */
function startRedis() {
  // DIR does not exist yet: the script makes it (and removes it on stop).
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "tk-redis-"));
  const dir = path.join(base, "server");
  const run = (action) => {
    if (!fs.existsSync(REDIS_SCRIPT)) {
      throw new Error(`${REDIS_SCRIPT} is missing`);
    }
    try {
      execFileSync("bash", [REDIS_SCRIPT, action, dir], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (err) {
      throw new Error(`redis_server.sh ${action} ${dir} failed: ${err.stderr ?? err.message}`);
    }
  };
  let stopped = false;
  const stop = () => {
    if (stopped) {
      return;
    }
    stopped = true;
    try {
      run("stop");
    } catch {
      // The server is gone already.
    }
    fs.rmSync(base, { recursive: true, force: true });
  };
  process.on("exit", stop);
  let env;
  try {
    run("start");
    env = readEnvFile(path.join(dir, "server.env"));
    for (const key of ["REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"]) {
      if (!env[key]) {
        throw new Error(`${dir}/server.env has no ${key}`);
      }
    }
  } catch (err) {
    stop();
    throw err;
  }
  const passwordFile = path.join(base, "password");
  fs.writeFileSync(passwordFile, `${env.REDIS_PASSWORD}\n`, { mode: 0o600 });
  return {
    host: env.REDIS_HOST,
    port: Number(env.REDIS_PORT),
    password: env.REDIS_PASSWORD,
    passwordFile,
    dir,
    down: () => run("down"),
    up: () => run("up"),
    pause: () => run("pause"),
    resume: () => run("resume"),
    stop,
  };
}

/**
 * Starts turnkey; resolves once it logs that it is serving. Options:
 *   ringTimeout, reconnectGrace (durations like "2s"), drainTimeout,
 *   accessTtl, webRoot, extraSignalYaml (lines under signal:), database
 *   ("sqlite" | "mysql", default TURNKEY_TEST_DB), stateOf (a previous
 *   server whose state directory and database to reuse), sharedDatabase
 *   (from sharedMysqlDatabase(): several nodes on one database),
 *   jwtSecretFile (signal.jwt.secret_file), extraYaml (top-level sections
 *   appended to the config), label (names the node in errors).
 * Returns { url, metricsUrl, turnPort, dir, pid, label, log(), signal(name),
 *   reload(changes), exited (a promise of {code, signal}), stop(),
 *   remove() (deletes dir once stopped) }.
 */
async function startTurnkey(options = {}) {
  const reuse = options.stateOf;
  const dir = reuse ? reuse.dir : fs.mkdtempSync(path.join(os.tmpdir(), "tk-sig-"));
  const turnPort = await freePort(true);
  const httpPort = await freePort();
  const metricsPort = await freePort();
  const secret = reuse ? reuse.secret : crypto.randomBytes(16).toString("hex");
  const shared = options.sharedDatabase;
  const databaseKind = shared ? "mysql" : options.database ?? process.env.TURNKEY_TEST_DB ?? "sqlite";
  let databaseYaml;
  if (reuse) {
    databaseYaml = reuse.databaseYaml;
  } else if (shared) {
    databaseYaml = shared.yaml;
  } else {
    databaseYaml = databaseKind === "mysql" ? mysqlDatabaseYaml() : "database: {driver: sqlite}\n";
  }
  const jwtYaml = (o) => {
    const keys = [
      ...(o.accessTtl ? [`access_ttl: ${o.accessTtl}`] : []),
      ...(o.jwtSecretFile ? [`secret_file: ${JSON.stringify(o.jwtSecretFile)}`] : []),
    ];
    return keys.length ? `  jwt: {${keys.join(", ")}}\n` : "";
  };
  const configPath = path.join(dir, "turnkey.yaml");
  const writeConfig = (o) => fs.writeFileSync(configPath,
    "realm: turnkey.test\n" +
    `state_dir: ${path.join(dir, "state")}\n` +
    "log: {level: debug, format: text}\n" +
    `drain_timeout: ${o.drainTimeout ?? "30s"}\n` +
    "turn:\n" +
    "  threads: 1\n" +
    "  listeners:\n" +
    `    - {transport: udp, address: 127.0.0.1, port: ${turnPort}}\n` +
    `    - {transport: tcp, address: 127.0.0.1, port: ${turnPort}}\n` +
    "  relay: {addresses: [127.0.0.1]}\n" +
    `  auth: {secrets: ["${secret}"]}\n` +
    "  peers: {allow: [127.0.0.1/32]}\n" +
    "signal:\n" +
    `  listen: {address: ${JSON.stringify(o.signalAddress ?? "127.0.0.1")}, port: ${httpPort}}\n` +
    `  ring_timeout: ${o.ringTimeout ?? "2s"}\n` +
    `  reconnect_grace: ${o.reconnectGrace ?? "2s"}\n` +
    jwtYaml(o) +
    (o.webRoot ? `  web_root: ${JSON.stringify(o.webRoot)}\n` : "") +
    "  ice_servers:\n" +
    `    urls: ["stun:127.0.0.1:${turnPort}", "turn:127.0.0.1:${turnPort}?transport=udp"]\n` +
    "    credential_ttl: 1h\n" +
    // The tests register every user from 127.0.0.1.
    "  rate_limits: {register_per_address: {rate: 0}}\n" +
    (o.extraSignalYaml ?? "") +
    databaseYaml +
    `metrics: {enabled: true, listen: "127.0.0.1:${metricsPort}", path: /metrics}\n` +
    (o.extraYaml ?? ""));
  writeConfig(options);
  fs.mkdirSync(path.join(dir, "state"), { recursive: true });
  if (databaseKind === "mysql" && !reuse && !shared?.migrated) {
    try {
      execFileSync(binary(), ["migrate", "--config", configPath], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`${options.label ?? "turnkey"}: turnkey migrate failed:\n${err.stderr ?? err.message}`);
    }
    if (shared) {
      shared.migrated = true;
    }
  }

  const logPath = path.join(dir, `turnkey-${httpPort}.log`);
  const logFd = fs.openSync(logPath, "a");
  const child = spawn(binary(), ["serve", "--config", configPath], {
    stdio: ["ignore", logFd, logFd],
  });
  fs.closeSync(logFd);
  const exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
  });
  let gone = false;
  exited.then(() => {
    gone = true;
  });
  // signalAddress "::1": the signaling listener on the IPv6 loopback.
  const url = options.signalAddress?.includes(":")
    ? `http://[${options.signalAddress}]:${httpPort}`
    : `http://${options.signalAddress ?? "127.0.0.1"}:${httpPort}`;
  const server = {
    url,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    turnPort,
    dir,
    secret,
    databaseYaml,
    pid: child.pid,
    label: options.label ?? `turnkey :${httpPort}`,
    exited,
    log: () => fs.readFileSync(logPath, "utf8"),
    signal: (name) => child.kill(name),
    // Rewrites the config with `changes` over the start options, sends
    // SIGHUP and resolves once turnkey logged that it applied it.
    async reload(changes) {
      const applied = () => (server.log().match(/reload: config .* applied/g) ?? []).length;
      const before = applied();
      writeConfig({ ...options, ...changes });
      child.kill("SIGHUP");
      const until = Date.now() + 10_000;
      while (applied() === before) {
        if (Date.now() > until) {
          throw new Error(`turnkey did not apply the reload:\n${server.log()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    // SIGTERM; resolves to the exit status (a SIGKILL after 20 s is a failure).
    async stop() {
      if (!gone) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
        const status = await exited;
        clearTimeout(timer);
        return status;
      }
      return exited;
    },
    // Deletes the state directory and the log; only once it exited.
    remove() {
      if (gone && !reuse) {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  // Probing the port is not enough: a process of a test running beside this
  // one may hold it and answer while this one exits (the port is in use).
  // turnkey logs this line with its pid once every listener is bound.
  const ready = `ready: serving (pid ${child.pid})`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (gone) {
      const log = server.log();
      server.remove();
      throw new Error(`${server.label} exited early:\n${log}`);
    }
    if (server.log().includes(ready)) {
      return server;
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await exited;
      const log = server.log();
      server.remove();
      throw new Error(`${server.label} did not answer in time:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

module.exports = {
  startTurnkey, freePort, sharedMysqlDatabase, jwtSecretFile, startRedis, stopMariadb, mariadbDown,
  mariadbUp, SOURCE_DIR,
};
