// Multi-node signaling (DESIGN.md section 9): three turnkey nodes (more join
// for some tests) share a private Redis server (tests/redis/
// redis_server.sh), one database on a private MariaDB server (tests/sql/
// mariadb_server.sh) and one JWT secret file. Users on different nodes call
// each other with the npm socket.io-client, and every rule of the one-node
// call contract (tests/js/signaling_calls.js) must hold across nodes: ringing
// every device on any node, relaying both ways intact, busy, answered
// elsewhere, logout everywhere, rejoining on another node, a socket resumed
// on a node that forwards (connection-state recovery), a node that dies
// (SIGKILL) or stops (SIGTERM), a coordinator that freezes, stops or dies,
// a call event forwarded to a node that lost the role (a fake node plays it
// over RESP), and Redis restarting or going away.
//
//   ctest -R integration_cluster_calls   (or: TURNKEY_BINARY=build/turnkey
//   node --test --test-concurrency=1 tests/js/cluster_calls.js)
//
// Not named *.test.js on purpose: js_socketio_protocol runs `node --test`
// over this folder without a turnkey binary.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { after, before, describe, test } = require("node:test");

const {
  startTurnkey, sharedMysqlDatabase, jwtSecretFile, startRedis, stopMariadb, mariadbDown,
  mariadbUp,
} = require("./turnkey_process");
const {
  api, newUser, historyEntry, connect, connectError, eventually, PASSWORD,
  kOffer, kAnswer, kCandidate, sleep, ring, accept, expectHistory, freezableRelay, dropAndResume,
} = require("./signaling_client");

// Short timings, so that a dead node and a lost connection play out in seconds.
const NODE_TIMEOUT_S = 2;
const GRACE_S = 2;
const RING_TIMEOUT_S = 6;
// Group commit of the call history on the coordinator.
const COMMIT_DELAY_MS = 500;
// Slack over the configured timings for a loaded machine (2 CPUs, other
// jobs compiling): the bound on "a dead node is noticed and acted on".
const MARGIN_MS = 5000;
// How long every node must stay ready before a test relies on it again
// (readyAgainAndCall).
const STABLE_MS = 1000;
const TEST_TIMEOUT_MS = 60_000;

/** The `cluster:` section of every node's config. */
function clusterYaml(name, redis) {
  return "cluster:\n" +
    "  enabled: true\n" +
    `  name: ${name}\n` +
    `  node_timeout: ${NODE_TIMEOUT_S}s\n` +
    `  redis: {host: ${redis.host}, port: ${redis.port}, ` +
    `password_file: ${JSON.stringify(redis.passwordFile)}}\n`;
}

/**
 * Reads `name` from a node's /metrics: its value, or null when the node does
 * not export it. Throws with the node's label when /metrics does not answer.
 */
async function gauge(node, name) {
  let text;
  try {
    const response = await fetch(node.metricsUrl, { signal: AbortSignal.timeout(3000) });
    text = await response.text();
    if (response.status !== 200) {
      throw new Error(`HTTP ${response.status}`);
    }
  } catch (err) {
    throw new Error(`${node.label}: GET ${node.metricsUrl} failed: ${err.message}`);
  }
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)\\s*$`, "m").exec(text);
  return m ? Number(m[1]) : null;
}

/** GET /readyz on a node's signaling port: the HTTP status (0: no answer). */
async function readyz(node) {
  try {
    const response = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(3000) });
    await response.text();
    return response.status;
  } catch {
    return 0;
  }
}

/** Each node's turnkey_cluster_coordinator, as "node A=1, node B=0, ...". */
async function coordinatorReport(nodes) {
  const values = await Promise.all(nodes.map((n) => gauge(n, "turnkey_cluster_coordinator")
    .then((v) => (v === null ? "absent" : v), (err) => `error (${err.message})`)));
  return nodes.map((n, i) => `${n.label}=${values[i]}`).join(", ");
}

/**
 * Waits (up to `ms`) until exactly one of `nodes` reports
 * `turnkey_cluster_coordinator 1`; resolves with that node. Two at once is a
 * failure at once.
 */
async function findCoordinator(nodes, ms) {
  let report = "";
  return eventually(async () => {
    const values = await Promise.all(nodes.map((n) => gauge(n, "turnkey_cluster_coordinator")));
    report = nodes.map((n, i) => `${n.label}=${values[i] ?? "absent"}`).join(", ");
    const leaders = nodes.filter((n, i) => values[i] === 1);
    assert.ok(leaders.length <= 1, `more than one coordinator: ${report}`);
    return leaders[0] ?? null;
  }, () => `one node with turnkey_cluster_coordinator 1 (${report})`, ms);
}

/** The last `lines` lines of a node's log, for a failure message. */
function logTail(node, lines = 25) {
  let text;
  try {
    text = node.log();
  } catch (err) {
    return `(no log: ${err.message})`;
  }
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * A minimal RESP2 client on one connection to the test's Redis (signed in
 * with its password): enough to play a cluster node (SET, DEL, PUBLISH,
 * SUBSCRIBE). `call(...args)` resolves with the reply (rejects with an error
 * reply); replies come in order. On a subscribed connection, each "message"
 * push goes to `onMessage(channel, text)` instead.
 */
async function redisConnection(redis, onMessage = null) {
  const socket = net.connect(redis.port, redis.host);
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const pending = [];
  let failed = null;
  const fail = (err) => {
    failed ??= err;
    while (pending.length > 0) {
      pending.shift().reject(failed);
    }
  };
  socket.on("error", fail);
  socket.on("close", () => fail(new Error("the Redis connection closed")));
  let buffer = Buffer.alloc(0);
  // The reply starting at `at`: {value, end}, or null while incomplete.
  const parse = (at) => {
    const eol = buffer.indexOf("\r\n", at);
    if (eol < 0) {
      return null;
    }
    const line = buffer.toString("utf8", at + 1, eol);
    const next = eol + 2;
    switch (String.fromCharCode(buffer[at])) {
      case "+":
        return { value: line, end: next };
      case "-":
        return { value: new Error(`Redis: ${line}`), end: next };
      case ":":
        return { value: Number(line), end: next };
      case "$": {
        const length = Number(line);
        if (length < 0) {
          return { value: null, end: next };
        }
        if (buffer.length < next + length + 2) {
          return null;
        }
        return { value: buffer.toString("utf8", next, next + length), end: next + length + 2 };
      }
      case "*": {
        const count = Number(line);
        const items = [];
        let end = next;
        for (let i = 0; i < count; i++) {
          const item = parse(end);
          if (item === null) {
            return null;
          }
          items.push(item.value);
          end = item.end;
        }
        return { value: count < 0 ? null : items, end };
      }
      default:
        throw new Error(
          `unexpected RESP reply: ${JSON.stringify(buffer.toString("utf8", at, eol))}`);
    }
  };
  socket.on("data", (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    try {
      for (let reply = parse(0); reply !== null; reply = parse(0)) {
        buffer = buffer.subarray(reply.end);
        const { value } = reply;
        if (onMessage && Array.isArray(value) && value[0] === "message") {
          onMessage(value[1], value[2]);
        } else if (pending.length > 0) {
          const waiter = pending.shift();
          if (value instanceof Error) {
            waiter.reject(value);
          } else {
            waiter.resolve(value);
          }
        }
      }
    } catch (err) {
      fail(err);
      socket.destroy();
    }
  });
  const call = (...args) => {
    if (failed) {
      return Promise.reject(failed);
    }
    let command = `*${args.length}\r\n`;
    for (const arg of args.map(String)) {
      command += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
    }
    socket.write(command);
    return new Promise((resolve, reject) => pending.push({ resolve, reject }));
  };
  try {
    await call("AUTH", redis.password);
  } catch (err) {
    socket.destroy();
    throw err;
  }
  return { call, close: () => socket.destroy() };
}

/**
 * Plays node `id` of cluster `name` (signal/cluster_link.cc) through Redis:
 * records what the real nodes send to its channel <name>:node:<id>, and
 * publishes as it (with "n": id, as ClusterLink does). `onMessage`, when
 * set, sees every message as it comes.
 */
async function fakeClusterNode(redis, name, id) {
  const received = []; // {message, taken}
  const waiters = [];
  const node = { id, onMessage: null };
  const subscriber = await redisConnection(redis, (channel, text) => {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const entry = { message, taken: false };
    received.push(entry);
    node.onMessage?.(message);
    const waiter = waiters.find((w) => w.match(message));
    if (waiter) {
      entry.taken = true;
      waiters.splice(waiters.indexOf(waiter), 1);
      clearTimeout(waiter.timer);
      waiter.resolve(message);
    }
  });
  let commands;
  try {
    await subscriber.call("SUBSCRIBE", `${name}:node:${id}`);
    commands = await redisConnection(redis);
  } catch (err) {
    subscriber.close();
    throw err;
  }
  const publish = (channel, message) =>
    commands.call("PUBLISH", channel, JSON.stringify({ ...message, n: id }));
  Object.assign(node, {
    commands,
    sendTo: (to, message) => publish(`${name}:node:${to}`, message),
    broadcast: (message) => publish(`${name}:all`, message),
    /** The first message not yet taken that `match`es, within `ms`; `what` names it. */
    take(match, what, ms = 8000) {
      const found = received.find((e) => !e.taken && match(e.message));
      if (found) {
        found.taken = true;
        return Promise.resolve(found.message);
      }
      return new Promise((resolve, reject) => {
        const waiter = { match, resolve };
        waiter.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          const seen = received.map((e) => e.message.t).join(", ");
          reject(new Error(`fake node ${id}: no ${what} within ${ms} ms (received: ${seen})`));
        }, ms);
        waiters.push(waiter);
      });
    },
    close() {
      subscriber.close();
      commands.close();
    },
  });
  return node;
}

describe("signaling across cluster nodes", { concurrency: false }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tk-cluster-"));
  let redis = null;
  let database = null;
  let jwtFile = null;
  const clusterName = `tk${crypto.randomBytes(4).toString("hex")}`;
  const nodes = []; // every node started, killed ones included
  let A;
  let B;
  let C;
  // Every live node's /readyz said 200 before the first test (else false).
  let readyAtStart = false;
  // Why before() could not start the servers: every test fails with it
  // (rather than being cancelled with the hook).
  let setupError = null;

  const startNode = async (label) => {
    const node = await startTurnkey({
      label,
      sharedDatabase: database,
      jwtSecretFile: jwtFile,
      ringTimeout: `${RING_TIMEOUT_S}s`,
      reconnectGrace: `${GRACE_S}s`,
      // Long enough that a history read racing the write would lose.
      extraSignalYaml: `  history: {commit_delay: ${COMMIT_DELAY_MS}ms}\n`,
      extraYaml: clusterYaml(clusterName, redis),
    });
    node.killed = false;
    nodes.push(node);
    return node;
  };
  // One more node, once it is ready (2 node_timeouts: it learns the
  // coordinator and is heard).
  const startReadyNode = async (label) => {
    const node = await startNode(label);
    await eventually(async () => (await readyz(node)) === 200, `/readyz 200 on ${label}`,
      2 * NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    return node;
  };
  const live = () => nodes.filter((n) => !n.killed);
  const kill = async (node) => {
    node.signal("SIGKILL");
    await node.exited;
    node.killed = true;
  };

  // The coordinator and another live node, a new user on each (labels
  // `labelA` on the coordinator, `labelB` on the other) with a socket there.
  const leaderAndFollower = async (on, labelA, labelB) => {
    const leader = await findCoordinator(live(), NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const follower = live().find((n) => n !== leader);
    const [alice, bob] = await Promise.all([[leader, labelA], [follower, labelB]]
      .map(([node, label]) => newUser(node, label)));
    const a = await on(leader, alice);
    const b = await on(follower, bob);
    return { leader, follower, alice, bob, a, b };
  };

  // After Redis was away: every node of `nodesUp` answers /readyz 200 again
  // (`what` says why it did not), a coordinator is found, and a call between
  // new users (`labels`) on the first two nodes goes through.
  // Ready means ready for STABLE_MS in a row on every node: right after a
  // Redis restart the nodes' connections were seen to drop once more (CI,
  // about 100 ms after they were made), and a socket that joins a follower
  // while its link is down reaches the coordinator only with the follower's
  // next sync, a tick later. A call rung in between finds its callee offline.
  const readyAgainAndCall = async (on, nodesUp, what, [labelA, labelB]) => {
    let since = null;
    await eventually(async () => {
      const codes = await Promise.all(nodesUp.map((node) => readyz(node)));
      if (codes.some((code) => code !== 200)) {
        since = null;
        return false;
      }
      since ??= Date.now();
      return Date.now() - since >= STABLE_MS;
    }, `/readyz 200 for ${STABLE_MS} ms in a row on every node with ${what}`,
    2 * NODE_TIMEOUT_S * 1000 + 2 * MARGIN_MS);
    await findCoordinator(nodesUp, NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const [S1, S2] = nodesUp;
    const alice = await newUser(S1, labelA);
    const bob = await newUser(S2, labelB);
    const a = await on(S1, alice);
    const b = await on(S2, bob);
    const callId = await ring(alice, a, bob, [b], "audio");
    await accept(callId, b, a, bob);
    assert.deepEqual(await a.emit("endCall", { callId }), { ok: true, callId });
    assert.deepEqual(await b.take("callEnded"), { callId, endedBy: alice.id, reason: "hangup" });
  };

  // A test whose sockets are closed when it ends, and whose failure carries
  // the tail of every node's log.
  const scenario = (name, fn) => test(name, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const clients = [];
    const on = async (node, user, options = {}) => {
      const label = options.label ?? `${user.label}@${node.label}`;
      const client = await connect(node, user, { ...options, label });
      clients.push(client);
      return client;
    };
    try {
      if (setupError) {
        throw new Error(`the cluster did not start: ${setupError.message.slice(0, 4000)}`);
      }
      await fn({ on });
    } catch (err) {
      for (const node of nodes) {
        t.diagnostic(`${node.label} (${node.url}${node.killed ? ", killed" : ""}), end of its log:`);
        for (const line of logTail(node).split("\n")) {
          t.diagnostic(`  ${node.label} | ${line}`);
        }
      }
      throw err;
    } finally {
      for (const c of clients) {
        c.close();
      }
    }
  });

  before(async () => {
    try {
      redis = startRedis();
      database = sharedMysqlDatabase();
      jwtFile = jwtSecretFile(tmp);
      A = await startNode("node A");
      B = await startNode("node B");
      C = await startNode("node C");
    } catch (err) {
      setupError = err;
      return;
    }
    // Give the nodes a moment to find Redis and each other; the first test
    // reports what is missing if they do not.
    try {
      await eventually(async () => (await Promise.all([A, B, C].map(readyz))).every((s) => s === 200),
        "/readyz 200 on every node", 4 * NODE_TIMEOUT_S * 1000 + MARGIN_MS);
      readyAtStart = true;
    } catch {
      readyAtStart = false;
    }
  });

  after(async () => {
    const statuses = await Promise.all(nodes.map(async (n) => [n, await n.stop(), logTail(n, 40)]));
    for (const node of nodes) {
      node.remove();
    }
    redis?.stop();
    stopMariadb();
    fs.rmSync(tmp, { recursive: true, force: true });
    // Nodes not killed on purpose exit cleanly on SIGTERM.
    for (const [node, status, tail] of statuses) {
      if (!node.killed) {
        assert.deepEqual(status, { code: 0, signal: null }, `${node.label} on SIGTERM:\n${tail}`);
      }
    }
  });

  scenario("the nodes form one cluster: one coordinator, nodes counted, /readyz", async () => {
    const statuses = await Promise.all([A, B, C].map(readyz));
    assert.ok(readyAtStart, `/readyz on nodes A, B, C: ${statuses.join(", ")} (want 200 each; ` +
      `turnkey_cluster_coordinator: ${await coordinatorReport([A, B, C])})`);
    const leader = await findCoordinator([A, B, C], NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    await eventually(async () => (await gauge(leader, "turnkey_cluster_nodes")) === 3,
      `turnkey_cluster_nodes 3 on the coordinator ${leader.label}`);
    for (const node of [A, B, C].filter((n) => n !== leader)) {
      assert.equal(await gauge(node, "turnkey_cluster_coordinator"), 0, `${node.label}`);
    }
  });

  scenario("REST on any node: register on A, log in on B, A's token opens a socket on B",
    async ({ on }) => {
      const alice = await newUser(A, "restA");
      const login = await api(B, "POST", "/api/auth/login", { email: alice.email, password: PASSWORD });
      assert.equal(login.status, 200, `login on node B: ${login.text}`);
      assert.equal(login.json.data.user.id, alice.id);
      const me = await api(C, "GET", "/api/users/me", undefined, alice.token);
      assert.equal(me.status, 200, `A's token on node C: ${me.text}`);
      assert.equal(me.json.data.user.handle, alice.handle);
      // A token from A opens a socket on B, one from B a socket on A.
      const onB = await on(B, alice);
      assert.ok((await onB.take("iceServers")).iceServers.length > 0);
      const onA = await on(A, { ...alice, token: login.json.data.token });
      assert.equal((await onA.emit("getIceServers", {})).ok, true);
      // A refresh token from A is spent on C.
      const refreshed = await api(C, "POST", "/api/auth/refresh", { refreshToken: alice.refreshToken });
      assert.equal(refreshed.status, 200, `refresh on node C: ${refreshed.text}`);
    });

  scenario("a call across nodes: ring, relay both ways intact, hang up, history on both",
    async ({ on }) => {
      const alice = await newUser(A, "xA");
      const bob = await newUser(B, "xB");
      const a = await on(A, alice);
      const b = await on(B, bob);
      const callId = await ring(alice, a, bob, [b], "video");
      await accept(callId, b, a, bob);

      assert.equal((await a.emit("sendOffer", { callId, offer: kOffer })).ok, true);
      assert.deepEqual(await b.take("receiveOffer"), { callId, from: alice.id, offer: kOffer });
      assert.equal((await b.emit("sendAnswer", { callId, answer: kAnswer })).ok, true);
      assert.deepEqual(await a.take("receiveAnswer"), { callId, from: bob.id, answer: kAnswer });
      for (const [from, to, user] of [[a, b, alice], [b, a, bob]]) {
        for (let i = 0; i < 3; i++) {
          const candidate = { ...kCandidate, sdpMLineIndex: i, sdpMid: String(i) };
          assert.equal((await from.emit("sendIceCandidate", { callId, candidate })).ok, true);
          assert.deepEqual(await to.take("receiveIceCandidate"), { callId, from: user.id, candidate },
            `candidate ${i} from ${from.label}, in order`);
        }
      }
      // A live call shows in the history on any node.
      await expectHistory(C, alice, callId, { status: "active", endReason: null });

      assert.deepEqual(await a.emit("endCall", { callId }), { ok: true, callId });
      await a.take("callEndedConfirm", (p) => p.callId === callId);
      assert.deepEqual(await b.take("callEnded"), { callId, endedBy: alice.id, reason: "hangup" });

      const mine = await expectHistory(A, alice, callId, {
        status: "completed", direction: "outgoing", isMissed: false, type: "video",
        endReason: "hangup",
      });
      assert.ok(mine.duration >= 0, JSON.stringify(mine));
      assert.equal(mine.peer.id, bob.id);
      const theirs = await expectHistory(B, bob, callId, {
        status: "completed", direction: "incoming", isMissed: false, type: "video",
      });
      assert.equal(theirs.duration, mine.duration);
      assert.equal(theirs.peer.id, alice.id);
      // The same record whichever node answers.
      const elsewhere = await historyEntry(C, bob, callId);
      assert.deepEqual(elsewhere, theirs);
      assert.deepEqual(await b.emit("endCall", { callId }),
        { ok: false, error: "Call already processed", callId });
    });

  scenario("busy across nodes", async ({ on }) => {
    const [alice, bob, carol] = await Promise.all([[A, "busyA"], [B, "busyB"], [C, "busyC"]]
      .map(([node, label]) => newUser(node, label)));
    const a = await on(A, alice);
    const b = await on(B, bob);
    const c = await on(C, carol);
    const first = await ring(carol, c, bob, [b], "audio");
    await accept(first, b, c, bob);
    const ack = await a.emit("initiateCall", { receiverId: bob.id, callType: "audio" });
    assert.equal(ack.ok, false, `alice's call to bob (busy on node B): ${JSON.stringify(ack)}`);
    assert.equal(ack.error, "User busy");
    assert.deepEqual(await a.take("callRejected"),
      { callId: ack.callId, receiverId: bob.id, reason: "busy" });
    assert.equal(b.all("incomingCall", (p) => p.callId === ack.callId).length, 0);
    await expectHistory(A, alice, ack.callId, { status: "busy", direction: "outgoing" });
    await expectHistory(B, bob, ack.callId, { status: "busy", direction: "incoming" });
    assert.deepEqual(await c.emit("endCall", { callId: first }), { ok: true, callId: first });
    assert.deepEqual(await b.take("callEnded"), { callId: first, endedBy: carol.id, reason: "hangup" });
  });

  scenario("two devices on two nodes: both ring, one answers, the other is told", async ({ on }) => {
    const alice = await newUser(A, "devA");
    const bob = await newUser(B, "devB");
    const a = await on(A, alice);
    const b1 = await on(B, bob, { label: "bob1@node B" });
    const b2 = await on(C, bob, { label: "bob2@node C", transport: "polling" });
    const callId = await ring(alice, a, bob, [b1, b2], "video");

    await accept(callId, b2, a, bob);
    assert.deepEqual(await b1.take("callAnsweredElsewhere"), { callId });
    assert.deepEqual(await b1.emit("acceptCall", { callId }),
      { ok: false, error: "Call already processed", callId });

    // Signaling goes to the device that answered (on C) only.
    assert.equal((await a.emit("sendOffer", { callId, offer: kOffer })).ok, true);
    assert.deepEqual(await b2.take("receiveOffer"), { callId, from: alice.id, offer: kOffer });
    assert.equal((await b2.emit("sendAnswer", { callId, answer: kAnswer })).ok, true);
    assert.deepEqual(await a.take("receiveAnswer"), { callId, from: bob.id, answer: kAnswer });
    assert.deepEqual(await b1.emit("sendAnswer", { callId, answer: kAnswer }),
      { ok: false, error: "Not authorized", callId });
    assert.equal(b1.all("receiveOffer").length, 0, "the other device got no offer");

    assert.deepEqual(await b2.emit("endCall", { callId }), { ok: true, callId });
    assert.deepEqual(await a.take("callEnded"), { callId, endedBy: bob.id, reason: "hangup" });
    await expectHistory(C, bob, callId, { status: "completed", direction: "incoming" });
    await expectHistory(B, alice, callId, { status: "completed", direction: "outgoing" });
  });

  scenario("a device that connects to a follower while a call rings it gets incomingCall " +
    "(and, once the call ended, its callEnded), as on one node", async ({ on }) => {
    const coordinator = await findCoordinator(live(), NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const follower = [A, B, C].find((n) => n !== coordinator && !n.killed);
    const [alice, bob] = await Promise.all([[coordinator, "lateA"], [coordinator, "lateB"]]
      .map(([node, label]) => newUser(node, label)));
    const a = await on(coordinator, alice);
    const b1 = await on(coordinator, bob, { label: `bob1@${coordinator.label}` });
    const callId = await ring(alice, a, bob, [b1], "audio");

    // The coordinator hears of the new socket (and emits the ringing call to
    // it) before the follower has let it join.
    const b2 = await on(follower, bob, { label: `bob2@${follower.label}` });
    const incoming = await b2.take("incomingCall");
    assert.equal(incoming.callId, callId);
    assert.equal(incoming.callerId, alice.id);
    assert.equal(incoming.callType, "audio");
    const events = b2.received.map((e) => e.event);
    assert.ok(events.indexOf("iceServers") < events.indexOf("incomingCall"),
      `iceServers before incomingCall, as on one node: ${events.join(", ")}`);

    await accept(callId, b2, a, bob);
    assert.deepEqual(await b1.take("callAnsweredElsewhere"), { callId });
    assert.deepEqual(await b2.emit("endCall", { callId }), { ok: true, callId });
    assert.deepEqual(await a.take("callEnded"), { callId, endedBy: bob.id, reason: "hangup" });

    // A call that rang and was cancelled: a device connecting afterwards is
    // told it ended.
    const cancelled = await ring(alice, a, bob, [b1, b2], "video");
    assert.deepEqual(await a.emit("endCall", { callId: cancelled }), { ok: true, callId: cancelled });
    assert.deepEqual(await b2.take("callEnded", (p) => p.callId === cancelled),
      { callId: cancelled, endedBy: alice.id, reason: "cancelled" });
    const b3 = await on(follower, bob, { label: `bob3@${follower.label}` });
    assert.deepEqual(await b3.take("callEnded", (p) => p.callId === cancelled),
      { callId: cancelled, endedBy: alice.id, reason: "cancelled" });
  });

  scenario("logout on node A disconnects the user's sockets on nodes B and C", async ({ on }) => {
    const user = await newUser(A, "out");
    const onB = await on(B, user);
    const onC = await on(C, user, { transport: "polling" });
    const watcher = await on(B, await newUser(B, "outW"));
    const r = await api(A, "POST", "/api/auth/logout", { refreshToken: user.refreshToken }, user.token);
    assert.equal(r.status, 200, r.text);
    assert.equal(await onB.take("disconnect"), "io server disconnect");
    assert.equal(await onC.take("disconnect"), "io server disconnect");
    assert.equal(watcher.all("disconnect").length, 0, "another user's socket stays");
    // The old access token and refresh token are refused on every node.
    for (const node of [B, C]) {
      const err = await connectError(node, { token: user.token });
      assert.equal(err.data?.code, "TOKEN_REVOKED", `${node.label}: ${err.message}`);
    }
    const refreshed = await api(B, "POST", "/api/auth/refresh", { refreshToken: user.refreshToken });
    assert.equal(refreshed.status, 401, refreshed.text);
  });

  scenario("a caller whose link drops rejoins the call on another node within the grace",
    async ({ on }) => {
      const alice = await newUser(A, "rjA");
      const bob = await newUser(B, "rjB");
      const a = await on(A, alice, { reconnection: false });
      const b = await on(B, bob);
      const callId = await ring(alice, a, bob, [b]);
      await accept(callId, b, a, bob);

      a.socket.io.engine.close(); // the link drops; alice comes back through node C
      await a.take("disconnect");
      const a2 = await on(C, alice, { label: "alice2@node C" });
      const ack = await a2.emit("rejoinCall", { callId });
      assert.deepEqual(ack, { ok: true, callId, state: "active", role: "caller", peerId: bob.id,
        callType: "video" });
      assert.deepEqual(await b.take("peerReconnected"), { callId, userId: alice.id });
      assert.equal((await b.emit("sendAnswer", { callId, answer: kAnswer })).ok, true);
      assert.deepEqual(await a2.take("receiveAnswer"), { callId, from: bob.id, answer: kAnswer });
      assert.equal((await a2.emit("sendIceCandidate", { callId, candidate: kCandidate })).ok, true);
      assert.deepEqual(await b.take("receiveIceCandidate"),
        { callId, from: alice.id, candidate: kCandidate });

      // The grace runs out with the call still up.
      await sleep(GRACE_S * 1000 + 1500);
      assert.deepEqual(b.all("callEnded"), [], "bob was not told the call ended");
      assert.deepEqual(a2.all("callEnded"), [], "alice was not told the call ended");
      assert.equal((await a2.emit("sendOffer", { callId, offer: kOffer })).ok, true);
      assert.deepEqual(await b.take("receiveOffer"), { callId, from: alice.id, offer: kOffer });

      assert.deepEqual(await b.emit("endCall", { callId }), { ok: true, callId });
      assert.deepEqual(await a2.take("callEnded"), { callId, endedBy: bob.id, reason: "hangup" });
      await expectHistory(A, alice, callId, { status: "completed", direction: "outgoing" });
    });

  scenario("a client that moves before its node saw the old connection fail resumes its socket " +
    "(connection-state recovery on a node that forwards)", async ({ on }) => {
    const coordinator = await findCoordinator(live(), NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const [follower, other] = [A, B, C].filter((n) => n !== coordinator);
    const relay = await freezableRelay(follower.url);
    try {
      const alice = await newUser(follower, "mvA");
      const bob = await newUser(other, "mvB");
      const a = await on({ url: relay.url, label: follower.label }, alice);
      const b = await on(other, bob);
      const callId = await ring(alice, a, bob, [b]);
      await accept(callId, b, a, bob);
      const [old] = relay.freeze();
      await dropAndResume(a, alice, b, callId);
      await old.closed; // the node closed the replaced connection
      // The coordinator still knows the socket: the call goes on past the grace.
      await sleep(GRACE_S * 1000 + 500);
      assert.equal((await b.emit("sendAnswer", { callId, answer: kAnswer })).ok, true);
      assert.deepEqual(await a.take("receiveAnswer"), { callId, from: bob.id, answer: kAnswer });
      assert.deepEqual(await b.emit("endCall", { callId }), { ok: true, callId });
      assert.deepEqual(await a.take("callEnded"), { callId, endedBy: bob.id, reason: "hangup" });
      await expectHistory(other, bob, callId, { status: "completed" });
    } finally {
      relay.close();
    }
  });

  scenario("SIGKILL of the callees' node: the call not rejoined ends connection_lost, " +
    "the one rejoined on another node goes on", async ({ on }) => {
    const D = await startReadyNode("node D");
    const leader = await findCoordinator(live(), NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    assert.notEqual(leader, D, "node D, which joined last, took over as coordinator");
    await eventually(async () => (await gauge(leader, "turnkey_cluster_nodes")) === 4,
      `turnkey_cluster_nodes 4 on ${leader.label} once node D joined`);

    const [alice, bob, carol, dave] = await Promise.all([[A, "kA"], [B, "kB"], [C, "kC"], [A, "kD"]]
      .map(([node, label]) => newUser(node, label)));
    const a = await on(A, alice);
    const b = await on(D, bob, { reconnection: false });
    const c = await on(C, carol);
    const d = await on(D, dave, { reconnection: false });
    const lost = await ring(carol, c, dave, [d], "audio");
    await accept(lost, d, c, dave);
    const kept = await ring(alice, a, bob, [b], "video");
    await accept(kept, b, a, bob);

    const killedAt = Date.now();
    await kill(D);
    // bob's app reconnects through node B at once and rejoins; dave's does not.
    const b2 = await on(B, bob, { label: "bob2@node B" });
    const rejoined = await b2.emit("rejoinCall", { callId: kept });
    assert.deepEqual(rejoined, { ok: true, callId: kept, state: "active", role: "callee",
      peerId: alice.id, callType: "video" });
    assert.deepEqual(await a.take("peerReconnected"), { callId: kept, userId: bob.id });

    const bound = (NODE_TIMEOUT_S + GRACE_S) * 1000 + MARGIN_MS;
    const ended = await c.take("callEnded", (p) => p.callId === lost, bound);
    const endedAfter = Date.now() - killedAt;
    assert.deepEqual(ended, { callId: lost, endedBy: dave.id, reason: "connection_lost" });
    assert.ok(endedAfter >= GRACE_S * 1000 - 250,
      `connection_lost ${endedAfter} ms after the kill: before the ${GRACE_S} s reconnect grace`);
    await expectHistory(C, carol, lost, { status: "failed", endReason: "connection_lost" });
    await expectHistory(A, dave, lost, { status: "failed", direction: "incoming" });

    // The rejoined call outlives the dead node's timeout and grace.
    await sleep(Math.max(0, (NODE_TIMEOUT_S + GRACE_S) * 1000 + 1000 - (Date.now() - killedAt)));
    assert.deepEqual(a.all("callEnded", (p) => p.callId === kept), [],
      "the call bob rejoined on node B ended");
    assert.equal((await a.emit("sendOffer", { callId: kept, offer: kOffer })).ok, true);
    assert.deepEqual(await b2.take("receiveOffer"), { callId: kept, from: alice.id, offer: kOffer });
    assert.deepEqual(await a.emit("endCall", { callId: kept }), { ok: true, callId: kept });
    assert.deepEqual(await b2.take("callEnded"), { callId: kept, endedBy: alice.id, reason: "hangup" });
    await expectHistory(B, bob, kept, { status: "completed", direction: "incoming" });

    // The coordinator forgets the dead node.
    await eventually(async () => (await gauge(leader, "turnkey_cluster_nodes")) === 3,
      `turnkey_cluster_nodes back to 3 on ${leader.label} after node D died`, bound);
  });

  scenario("SIGTERM of a node: its sockets leave at once; the call not rejoined ends after " +
    "the grace, not the node timeout", async ({ on }) => {
    const E = await startReadyNode("node E");
    const leader = await findCoordinator(live(), NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    assert.notEqual(leader, E, "node E, which joined last, took over as coordinator");
    const [erin, frank] = await Promise.all([[E, "stE"], [leader, "stF"]]
      .map(([node, label]) => newUser(node, label)));
    const e = await on(E, erin, { reconnection: false });
    const f = await on(leader, frank);
    const callId = await ring(frank, f, erin, [e], "audio");
    await accept(callId, e, f, erin);

    const stoppedAt = Date.now();
    const status = await E.stop();
    E.killed = true;
    assert.deepEqual(status, { code: 0, signal: null }, E.log().slice(-3000));
    const ended = await f.take("callEnded", (p) => p.callId === callId,
      (NODE_TIMEOUT_S + GRACE_S) * 1000 + MARGIN_MS);
    const endedAfter = Date.now() - stoppedAt;
    assert.deepEqual(ended, { callId, endedBy: erin.id, reason: "connection_lost" });
    // The grace ran from the stop (the node said its sockets left), not
    // from a node_timeout later.
    assert.ok(endedAfter < (NODE_TIMEOUT_S + GRACE_S) * 1000 - 500,
      `connection_lost ${endedAfter} ms after the stop: the coordinator waited for the node timeout`);
  });

  scenario("a history read on any node right after a call ended shows it ended", async ({ on }) => {
    const { leader, follower, alice, bob, a, b } = await leaderAndFollower(on, "hrA", "hrB");
    const callId = await ring(alice, a, bob, [b], "audio");
    await accept(callId, b, a, bob);
    assert.deepEqual(await b.emit("endCall", { callId }), { ok: true, callId });
    // At once, no retry: the coordinator still holds the record for its
    // commit delay; the read waits for it, on the follower too.
    for (const [node, user, direction] of [[follower, bob, "incoming"],
      [leader, alice, "outgoing"]]) {
      const entry = await historyEntry(node, user, callId);
      assert.equal(entry?.status, "completed", `${node.label}: ${JSON.stringify(entry)}`);
      assert.equal(entry.direction, direction);
    }
  });

  scenario("a display name changed on one node shows on the calls another node rings",
    async ({ on }) => {
      const { follower, alice, bob, a, b } = await leaderAndFollower(on, "dnA", "dnB");
      // Renamed through the other node's API: the coordinator, which rings
      // with its own copy of its connected users, is told.
      const renamed = await api(follower, "PATCH", "/api/users/me",
        { displayName: "Alice Renamed" }, alice.token);
      assert.equal(renamed.status, 200, renamed.text);
      // The news travels through Redis, so a call rung at once may still
      // show the old name: ring until one shows the new one, ending each
      // that does not (usually none). A refusal by the initiateCall rate
      // limit (a burst of 5 per socket) is waited out the same way.
      let last = null;
      const ack = await eventually(async () => {
        const tried = await a.emit("initiateCall", { receiverId: bob.id, callType: "audio" });
        if (tried.error === "Rate limited") {
          return null;
        }
        assert.equal(tried.ok, true, JSON.stringify(tried));
        last = await b.take("incomingCall", (p) => p.callId === tried.callId);
        if (last.caller.displayName === "Alice Renamed") {
          return tried;
        }
        assert.deepEqual(last.caller,
          { id: alice.id, handle: alice.handle, displayName: `Test ${alice.label}` });
        assert.deepEqual(await a.emit("endCall", { callId: tried.callId }),
          { ok: true, callId: tried.callId });
        await b.take("callEnded", (p) => p.callId === tried.callId);
        return null;
      }, () => `the new name on incomingCall on ${follower.label} ` +
        `(last: ${JSON.stringify(last?.caller)})`, MARGIN_MS);
      assert.deepEqual(last.caller,
        { id: alice.id, handle: alice.handle, displayName: "Alice Renamed" });
      assert.deepEqual(await a.emit("endCall", { callId: ack.callId }),
        { ok: true, callId: ack.callId });
    });

  scenario("a call event forwarded to a node that is no longer the coordinator (a handover): the " +
    "client gets callError as well as the Server busy ack", async ({ on }) => {
    // A cluster of its own on the same Redis (and a database of its own),
    // so nothing here touches nodes A, B, C: one real node X, whose
    // coordinator is played here (node F). F holds the lease, or X, which
    // asks the lease at every tick, would go back to whoever holds it and
    // answer what it forwarded meanwhile Server busy itself (FailPending).
    const name = `${clusterName}ho`;
    const lease = `${name}:coordinator`;
    const F = await fakeClusterNode(redis, name, "fakeF");
    let G = null;
    let X = null;
    let heartbeat = null;
    try {
      G = await fakeClusterNode(redis, name, "fakeG");
      assert.equal(await F.commands.call("SET", lease, F.id, "PX", TEST_TIMEOUT_MS), "OK");
      // As a coordinator: heartbeats to every node, a new socket ("conn")
      // acknowledged, or refused if it is refuseConnOf's.
      heartbeat = setInterval(() => F.broadcast({ t: "hb" }).catch(() => {}),
        NODE_TIMEOUT_S * 1000 / 5);
      let refuseConnOf = null;
      F.onMessage = (m) => {
        if (m.t === "conn" && m.r !== undefined) {
          const p = m.u === refuseConnOf ? undefined : { ok: true };
          F.sendTo(m.n, { t: "ack", r: m.r, p }).catch(() => {});
        }
      };
      X = await startTurnkey({
        label: "node X",
        sharedDatabase: sharedMysqlDatabase(),
        jwtSecretFile: jwtFile,
        ringTimeout: `${RING_TIMEOUT_S}s`,
        reconnectGrace: `${GRACE_S}s`,
        extraYaml: clusterYaml(name, redis),
      });
      X.killed = false;
      nodes.push(X); // for its log on a failure; never live() once stopped
      // X takes F for its coordinator: it sends it its sockets.
      const sync = await F.take((m) => m.t === "sync", "sync from node X",
        NODE_TIMEOUT_S * 1000 + MARGIN_MS);
      const xId = sync.n;
      await eventually(async () => (await readyz(X)) === 200, "/readyz 200 on node X",
        NODE_TIMEOUT_S * 1000 + MARGIN_MS);
      const [alice, bob] = await Promise.all(["hoA", "hoB"].map((label) => newUser(X, label)));
      const a = await on(X, alice);
      await F.take((m) => m.t === "conn" && m.u === alice.id, "conn of alice's socket");

      // F has lost the role meanwhile: it refuses the forwarded event as a
      // node that is not the coordinator does, with an ack without payload.
      const call = { receiverId: bob.id, callType: "audio" };
      const acked = a.emit("initiateCall", call);
      acked.catch(() => {}); // awaited below
      const ev = await F.take((m) => m.t === "ev", "the forwarded initiateCall");
      assert.equal(ev.e, "initiateCall");
      assert.equal(ev.u, alice.id);
      assert.deepEqual(ev.p, call);
      await F.sendTo(xId, { t: "ack", r: ev.r });
      assert.deepEqual(await acked, { ok: false, error: "Server busy" });
      assert.deepEqual(await a.take("callError"), { error: "Server busy", callId: null });
      // An event of a call names it in both, as the coordinator's refusals do.
      const ended = a.emit("endCall", { callId: "c-busy" });
      ended.catch(() => {}); // awaited below
      const endEv = await F.take((m) => m.t === "ev" && m.e === "endCall", "the forwarded endCall");
      await F.sendTo(xId, { t: "ack", r: endEv.r });
      assert.deepEqual(await ended, { ok: false, error: "Server busy", callId: "c-busy" });
      assert.deepEqual(await a.take("callError"), { error: "Server busy", callId: "c-busy" });

      // A REST call action refused the same way: 503 Server busy, and no
      // socket is told.
      const rest = api(X, "POST", "/api/calls/initiate", call, alice.token);
      rest.catch(() => {}); // awaited below
      const forwarded = await F.take((m) => m.t === "rest", "the forwarded REST initiate");
      assert.equal(forwarded.u, alice.id);
      await F.sendTo(xId, { t: "ack", r: forwarded.r });
      const refused = await rest;
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.json.message, "Server busy");
      await sleep(200);
      assert.equal(a.all("callError").length, 2, "callError for the REST request");  // 2 events
      // Answered by F's acks, not by running out of time.
      assert.ok(!X.log().includes("no answer from coordinator"), logTail(X));

      // The other side: X, not the coordinator, refuses what a node that
      // takes it for the coordinator sends it (G) with an ack without
      // payload, which an older node also takes for Server busy.
      const probes = [
        { t: "conn", s: 1, u: alice.id, d: 0 },
        { t: "ev", s: 1, u: alice.id, d: 0, e: "initiateCall", p: call },
        { t: "rest", u: alice.id, d: 0, e: "initiateCall", p: call },
        { t: "bar" },
      ];
      for (const [i, probe] of probes.entries()) {
        const r = 9001 + i;
        await G.sendTo(xId, { ...probe, r });
        const reply = await G.take((m) => m.t === "ack" && m.r === r, `X's answer to "${probe.t}"`);
        assert.deepEqual(reply, { t: "ack", r, n: xId }, `X's answer to "${probe.t}"`);
      }
      assert.equal(a.all("callError").length, 2, "callError for G's requests");

      // A socket whose "conn" is refused (as here) or lost with a Redis
      // connection joins anyway, and X tells its coordinator of it again,
      // unasked, once it has: no sync may follow to list it, and calls to
      // it would find the user offline.
      refuseConnOf = bob.id;
      const b = await on(X, bob);
      const first = await F.take((m) => m.t === "conn" && m.u === bob.id, "conn of bob's socket");
      assert.ok(first.r > 0, JSON.stringify(first));
      const again = await F.take((m) => m.t === "conn" && m.u === bob.id,
        "bob's socket told again after the refusal");
      assert.deepEqual(again, { t: "conn", s: first.s, u: bob.id, d: first.d, n: xId });
      b.close();

      a.close();
      const status = await X.stop();
      X.killed = true;
      assert.deepEqual(status, { code: 0, signal: null }, logTail(X, 40));
    } finally {
      clearInterval(heartbeat);
      if (X !== null && !X.killed) {
        await X.stop();
        X.killed = true;
      }
      await F.commands.call("DEL", lease).catch(() => {});
      F.close();
      G?.close();
    }
  });

  scenario("a frozen follower (SIGSTOP past node_timeout and the grace): thawed, it sends its " +
    "sockets again and its client is told its call ended", async ({ on }) => {
    const { leader, follower, alice, bob, a, b } = await leaderAndFollower(on, "ffA", "ffB");
    const callId = await ring(alice, a, bob, [b], "audio");
    await accept(callId, b, a, bob);

    follower.signal("SIGSTOP");
    try {
      // The coordinator gives the node up, then the call's grace runs out.
      assert.deepEqual(await a.take("callEnded", (p) => p.callId === callId,
        (NODE_TIMEOUT_S + GRACE_S) * 1000 + MARGIN_MS),
      { callId, endedBy: bob.id, reason: "connection_lost" });
    } finally {
      follower.signal("SIGCONT");
    }
    // Its client never heard of it while the node was away: told now.
    assert.deepEqual(await b.take("callEnded", (p) => p.callId === callId,
      NODE_TIMEOUT_S * 1000 + MARGIN_MS), { callId, endedBy: bob.id, reason: "connection_lost" });
    await eventually(async () => (await gauge(leader, "turnkey_cluster_nodes")) === live().length,
      `turnkey_cluster_nodes ${live().length} on ${leader.label}`, NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    // The same socket calls again, through the coordinator that knows it.
    const again = await ring(bob, b, alice, [a], "video");
    await accept(again, a, b, alice);
    assert.deepEqual(await a.emit("endCall", { callId: again }), { ok: true, callId: again });
    assert.deepEqual(await b.take("callEnded", (p) => p.callId === again),
      { callId: again, endedBy: alice.id, reason: "hangup" });
  });

  scenario("a frozen coordinator (SIGSTOP past its lease) steps down when it thaws; its " +
    "clients call through the new one", async ({ on }) => {
    const leader = await findCoordinator(live(), NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const others = live().filter((n) => n !== leader);
    const [alice, bob] = await Promise.all([[leader, "fzA"], [others[0], "fzB"]]
      .map(([node, label]) => newUser(node, label)));
    const a = await on(leader, alice);
    const b = await on(others[0], bob);

    leader.signal("SIGSTOP");
    let next;
    try {
      next = await findCoordinator(others, NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    } finally {
      leader.signal("SIGCONT");
    }
    // The thawed node finds its lease gone and follows the new coordinator.
    await eventually(async () => (await gauge(leader, "turnkey_cluster_coordinator")) === 0,
      `turnkey_cluster_coordinator 0 on the thawed ${leader.label}`);
    assert.equal(await gauge(next, "turnkey_cluster_coordinator"), 1);
    await eventually(async () => (await readyz(leader)) === 200, `/readyz 200 on ${leader.label}`);
    await eventually(async () => (await gauge(next, "turnkey_cluster_nodes")) === live().length,
      `turnkey_cluster_nodes ${live().length} on ${next.label}`, NODE_TIMEOUT_S * 1000 + MARGIN_MS);

    const callId = await ring(alice, a, bob, [b], "audio");
    await accept(callId, b, a, bob);
    assert.deepEqual(await b.emit("endCall", { callId }), { ok: true, callId });
    assert.deepEqual(await a.take("callEnded"), { callId, endedBy: bob.id, reason: "hangup" });
  });

  scenario("SIGTERM of the coordinator: its calls end server_shutdown, another node takes " +
    "over at once", async ({ on }) => {
    const F = await startReadyNode("node F");  // keeps the number of nodes for what follows
    const leader = await findCoordinator(live(), NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const others = live().filter((n) => n !== leader);
    const [gina, hank] = await Promise.all([[others[0], "sgG"], [others[1], "sgH"]]
      .map(([node, label]) => newUser(node, label)));
    const g = await on(others[0], gina);
    const h = await on(others[1], hank);
    const callId = await ring(gina, g, hank, [h], "audio");
    await accept(callId, h, g, hank);

    // The call's row is written (active), and where each log stands: the
    // next coordinator must find nothing of the last one unfinished, since
    // the stop commits its calls' ends before it gives the lease up.
    await sleep(COMMIT_DELAY_MS + 300);
    const logMarks = new Map(others.map((n) => [n, n.log().length]));
    const stoppedAt = Date.now();
    const stopping = leader.stop();
    assert.deepEqual(await g.take("callEnded", (p) => p.callId === callId),
      { callId, endedBy: null, reason: "server_shutdown" });
    assert.deepEqual(await h.take("callEnded", (p) => p.callId === callId),
      { callId, endedBy: null, reason: "server_shutdown" });
    const next = await findCoordinator(others, NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const tookOver = Date.now() - stoppedAt;
    assert.ok(tookOver < NODE_TIMEOUT_S * 1000,
      `${next.label} took over ${tookOver} ms after the stop: it waited for the lease to run out`);
    assert.deepEqual(await stopping, { code: 0, signal: null }, leader.log().slice(-3000));
    leader.killed = true;
    const entry = await eventually(async () => {
      const found = await historyEntry(next, gina, callId);
      return found?.status === "completed" ? found : null;
    }, "the stopped coordinator's call in the history", 5000);
    assert.equal(entry.endReason, "server_shutdown");
    await sleep(500);  // the sweep that follows a takeover
    const sinceStop = next.log().slice(logMarks.get(next));
    assert.ok(!sinceStop.includes("never ended"),
      `${next.label} swept calls the stopped coordinator had ended:\n${sinceStop.slice(-2000)}`);

    const again = await ring(gina, g, hank, [h], "audio");
    await accept(again, h, g, hank);
    assert.deepEqual(await g.emit("endCall", { callId: again }), { ok: true, callId: again });
    assert.deepEqual(await h.take("callEnded", (p) => p.callId === again),
      { callId: again, endedBy: gina.id, reason: "hangup" });
  });

  scenario("SIGKILL of the coordinator: another node takes over, new calls work", async ({ on }) => {
    const leader = await findCoordinator(live(), NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const survivors = live().filter((n) => n !== leader);
    assert.equal(survivors.length, 2);
    const killedAt = Date.now();
    await kill(leader);
    const next = await findCoordinator(survivors, NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const tookOver = Date.now() - killedAt;
    assert.ok(tookOver <= NODE_TIMEOUT_S * 1000 + MARGIN_MS, `took over after ${tookOver} ms`);
    await eventually(async () => (await gauge(next, "turnkey_cluster_nodes")) === 2,
      `turnkey_cluster_nodes 2 on the new coordinator ${next.label}`,
      NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    for (const node of survivors) {
      await eventually(async () => (await readyz(node)) === 200, `/readyz 200 on ${node.label}`);
    }

    const [S1, S2] = survivors;
    const alice = await newUser(S1, "foA");
    const bob = await newUser(S2, "foB");
    const a = await on(S1, alice);
    const b = await on(S2, bob);
    const callId = await ring(alice, a, bob, [b], "audio");
    await accept(callId, b, a, bob);
    assert.equal((await a.emit("sendOffer", { callId, offer: kOffer })).ok, true);
    assert.deepEqual(await b.take("receiveOffer"), { callId, from: alice.id, offer: kOffer });
    assert.equal((await b.emit("sendAnswer", { callId, answer: kAnswer })).ok, true);
    assert.deepEqual(await a.take("receiveAnswer"), { callId, from: bob.id, answer: kAnswer });
    assert.deepEqual(await b.emit("endCall", { callId }), { ok: true, callId });
    assert.deepEqual(await a.take("callEnded"), { callId, endedBy: bob.id, reason: "hangup" });
    await expectHistory(S1, alice, callId, { status: "completed", direction: "outgoing" });
    await expectHistory(S2, bob, callId, { status: "completed", direction: "incoming" });
  });

  scenario("a quick Redis restart: the coordinator takes its lease back, the call in progress " +
    "goes on", async ({ on }) => {
    const nodesUp = live();
    const leader = await findCoordinator(nodesUp, NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const [carol, dan] = await Promise.all([[nodesUp[0], "qrC"], [nodesUp[1], "qrD"]]
      .map(([node, label]) => newUser(node, label)));
    const c = await on(nodesUp[0], carol);
    const d = await on(nodesUp[1], dan);
    const kept = await ring(carol, c, dan, [d], "audio");
    await accept(kept, d, c, dan);
    // Far shorter than half of node_timeout; the lease is not persisted, so it is
    // free when Redis is back.
    redis.down();
    redis.up();
    for (const node of nodesUp) {
      await eventually(async () => (await readyz(node)) === 200,
        `/readyz 200 on ${node.label} with Redis back`, 2 * NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    }
    assert.equal(await findCoordinator(nodesUp, NODE_TIMEOUT_S * 1000 + MARGIN_MS), leader,
      "another node took the lease while the coordinator was still there");
    assert.deepEqual(c.all("callEnded"), [], "the call in progress ended");
    await eventually(async () => (await c.emit("sendOffer", { callId: kept, offer: kOffer })).ok,
      "sendOffer accepted again after the restart");
    assert.deepEqual(await d.take("receiveOffer"), { callId: kept, from: carol.id, offer: kOffer });
    assert.deepEqual(await d.emit("endCall", { callId: kept }), { ok: true, callId: kept });
    assert.deepEqual(await c.take("callEnded"), { callId: kept, endedBy: dan.id, reason: "hangup" });
  });

  scenario("Redis away past 3/4 of node_timeout: the coordinator answers Server busy, then " +
    "steps down; its calls end connection_lost and are stored failed, told to the other " +
    "nodes' clients once Redis is back", async ({ on }) => {
    const nodesUp = live();
    const leader = await findCoordinator(nodesUp, NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const follower = nodesUp.find((n) => n !== leader);
    const [ann, ben, cleo, dirk, eve, finn, gus, hal, ivy] = await Promise.all(
      ["sdA", "sdB", "sdC", "sdD", "sdE", "sdF", "sdG", "sdH", "sdI"]
        .map((label) => newUser(leader, label)));
    const a = await on(leader, ann);
    const b = await on(leader, ben);
    const c = await on(leader, cleo);
    const d = await on(leader, dirk);
    const e = await on(leader, eve);
    const f = await on(leader, finn);
    const g = await on(follower, gus);
    const h = await on(leader, hal);
    const i = await on(follower, ivy);
    const active = await ring(ann, a, ben, [b], "audio");
    await accept(active, b, a, ben);
    const ringing = await ring(cleo, c, dirk, [d], "video");
    // A call across the nodes: the end cannot reach ivy's node while Redis is away.
    const across = await ring(hal, h, ivy, [i], "audio");
    await accept(across, i, h, ivy);

    redis.down();
    try {
      // Until it steps down (3/4 of node_timeout after its last renewal) it
      // is still the coordinator, but cannot tell the other nodes anything:
      // a call event of its own clients, or a REST call action, is refused
      // as on a node that cannot forward.
      await eventually(async () => (await readyz(leader)) === 503,
        `/readyz 503 on ${leader.label} with Redis down`, NODE_TIMEOUT_S * 1000);
      assert.deepEqual(await e.emit("initiateCall", { receiverId: finn.id, callType: "audio" }),
        { ok: false, error: "Server busy" });
      assert.deepEqual(await e.take("callError"), { error: "Server busy", callId: null });
      assert.deepEqual(await a.emit("sendIceCandidate", { callId: active, candidate: {} }),
        { ok: false, error: "Server busy", callId: active });
      assert.deepEqual(await a.take("callError"), { error: "Server busy", callId: active });
      const rest = await api(leader, "POST", "/api/calls/initiate",
        { receiverId: finn.id, callType: "audio" }, eve.token);
      assert.equal(rest.status, 503, rest.text);
      assert.equal(rest.json.message, "Server busy");
      // The same answers as from a node that cannot forward.
      await eventually(async () => (await readyz(follower)) === 503,
        `/readyz 503 on ${follower.label} with Redis down`, NODE_TIMEOUT_S * 1000);
      assert.deepEqual(await g.emit("initiateCall", { receiverId: finn.id, callType: "audio" }),
        { ok: false, error: "Server busy" });
      assert.deepEqual(await g.take("callError"), { error: "Server busy", callId: null });
      const forwarded = await api(follower, "POST", "/api/calls/initiate",
        { receiverId: finn.id, callType: "audio" }, eve.token);
      assert.equal(forwarded.status, 503, forwarded.text);
      assert.deepEqual(forwarded.json, rest.json);
      assert.deepEqual(await b.emit("sendAnswer", { callId: active, answer: kAnswer }),
        { ok: false, error: "Server busy", callId: active });
      assert.equal(f.all("incomingCall").length, 0, "finn was rung");
      // Its own clients hear of it (Redis is not needed for that).
      const bound = NODE_TIMEOUT_S * 1000 + MARGIN_MS;
      for (const [client, callId] of
        [[a, active], [b, active], [c, ringing], [d, ringing], [h, across]]) {
        assert.deepEqual(await client.take("callEnded", (p) => p.callId === callId, bound),
          { callId, endedBy: null, reason: "connection_lost" }, client.label);
      }
      assert.equal(await gauge(leader, "turnkey_cluster_coordinator"), 0);
      assert.deepEqual(i.all("callEnded"), []);
    } finally {
      redis.up();
    }
    for (const node of nodesUp) {
      await eventually(async () => (await readyz(node)) === 200,
        `/readyz 200 on ${node.label} with Redis back`, 2 * NODE_TIMEOUT_S * 1000 + 2 * MARGIN_MS);
    }
    // The old coordinator sends the end again until ivy's node hears it.
    assert.deepEqual(await i.take("callEnded", (p) => p.callId === across, 3000 + MARGIN_MS),
      { callId: across, endedBy: null, reason: "connection_lost" });
    // Failed, as a call whose participant did not come back; not completed
    // or missed.
    await expectHistory(leader, ann, active,
      { status: "failed", direction: "outgoing", endReason: "connection_lost" });
    await expectHistory(leader, ben, active, { status: "failed", direction: "incoming" });
    await expectHistory(leader, cleo, ringing,
      { status: "failed", direction: "outgoing", endReason: "connection_lost" });
    await expectHistory(leader, dirk, ringing, { status: "failed", isMissed: false });
  });

  scenario("Redis down: /readyz 503 on every node; Redis back: ready again, calls work",
    async ({ on }) => {
      const nodesUp = live();
      redis.down();
      for (const node of nodesUp) {
        await eventually(async () => (await readyz(node)) === 503,
          `/readyz 503 on ${node.label} with Redis down`, NODE_TIMEOUT_S * 1000 + MARGIN_MS);
      }
      redis.up();
      await readyAgainAndCall(on, nodesUp, "Redis back", ["rdA", "rdB"]);
    });

  scenario("Redis frozen (SIGSTOP, connections open): /readyz 503 on every node; thawed: ready " +
    "again, calls work", async ({ on }) => {
    const nodesUp = live();
    redis.pause();
    try {
      // Nothing closes: only the missing answers and heartbeats tell.
      for (const node of nodesUp) {
        await eventually(async () => (await readyz(node)) === 503,
          `/readyz 503 on ${node.label} with Redis frozen`, NODE_TIMEOUT_S * 1000 + MARGIN_MS);
      }
    } finally {
      redis.resume();
    }
    await readyAgainAndCall(on, nodesUp, "Redis thawed", ["rfA", "rfB"]);
  });

  scenario("the database away when the coordinator dies: the next one ends the calls it left " +
    "once the database is back", async ({ on }) => {
    const G = await startReadyNode("node G");  // two nodes stay after the kill
    const leader = await findCoordinator(live(), NODE_TIMEOUT_S * 1000 + MARGIN_MS);
    const others = live().filter((n) => n !== leader);
    const [ivy, jon] = await Promise.all([[others[0], "dbI"], [others[1], "dbJ"]]
      .map(([node, label]) => newUser(node, label)));
    const i = await on(others[0], ivy);
    const j = await on(others[1], jon);
    const callId = await ring(ivy, i, jon, [j], "audio");
    await accept(callId, j, i, jon);
    await sleep(COMMIT_DELAY_MS + 300);  // its row is written: active

    mariadbDown();
    let down = true;
    try {
      await kill(leader);
      const next = await findCoordinator(others, NODE_TIMEOUT_S * 1000 + MARGIN_MS);
      // Ending the last coordinator's calls failed: it says it tries again.
      await eventually(async () => next.log().includes("trying again every"),
        `${next.label} trying again to end the dead coordinator's calls`, 10000);
      mariadbUp();
      down = false;
      const entry = await eventually(async () => {
        const found = await historyEntry(next, ivy, callId);
        return found && found.status !== "active" ? found : null;
      }, "the dead coordinator's call ended in the history", 20000);
      assert.equal(entry.endReason, "server_restart");
    } finally {
      if (down) {
        mariadbUp();
      }
    }
  });
});
