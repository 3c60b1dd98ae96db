// Helpers for the call-flow tests against the real turnkey: a small REST
// client, fresh users, and a recording wrapper around the npm
// socket.io-client that tests wait on (with a deadline, never a sleep).
"use strict";

const assert = require("node:assert/strict");
const net = require("node:net");
const { io } = require("socket.io-client");

const PASSWORD = "signaling correct horse battery";
const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
let userSeq = 0;

async function api(server, method, path, body, token) {
  const headers = {};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  const response = await fetch(server.url + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON (a static file); `text` has it.
  }
  return { status: response.status, headers: response.headers, json, text };
}

/** Registers a new user; resolves with {id, handle, email, token, refreshToken}. */
async function newUser(server, label) {
  const n = ++userSeq;
  const handle = `${label}${RUN}${n}`.slice(0, 30);
  const email = `${label}-${RUN}-${n}@example.test`;
  const r = await api(server, "POST", "/api/auth/register", {
    email, password: PASSWORD, handle, displayName: `Test ${label}`,
  });
  assert.equal(r.status, 201, r.text);
  const data = r.json.data;
  return {
    id: data.user.id, handle: data.user.handle, email, token: data.token,
    refreshToken: data.refreshToken, label,
  };
}

/** The signed-in user's call history (GET /api/calls/history). */
async function history(server, user, query = "") {
  const r = await api(server, "GET", `/api/calls/history${query}`, undefined, user.token);
  assert.equal(r.status, 200, r.text);
  return r.json.data;
}

/** The history entry of `callId`, or undefined. */
async function historyEntry(server, user, callId) {
  const data = await history(server, user, "?limit=100");
  return data.calls.find((c) => c.callId === callId);
}

/**
 * A socket.io-client socket that records every event it receives. `take`
 * hands out each received event once, in order, so tests can wait for "the
 * next incomingCall" without racing the network.
 */
class Client {
  constructor(socket, label) {
    this.socket = socket;
    this.label = label;
    this.received = []; // {event, payload, taken}
    this.waiters = [];
    socket.onAny((event, ...args) => this.#record(event, args[0]));
    for (const reserved of ["connect", "connect_error", "disconnect"]) {
      socket.on(reserved, (arg) => this.#record(reserved, arg));
    }
  }

  #record(event, payload) {
    const entry = { event, payload, taken: false };
    this.received.push(entry);
    for (const waiter of [...this.waiters]) {
      if (!entry.taken && waiter.event === event && waiter.match(payload)) {
        entry.taken = true;
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        clearTimeout(waiter.timer);
        waiter.resolve(payload);
      }
    }
  }

  /** Resolves with the payload of the first not yet taken `event` matching `match`. */
  take(event, match = () => true, ms = 8000) {
    const found = this.received.find((e) => !e.taken && e.event === event && match(e.payload));
    if (found) {
      found.taken = true;
      return Promise.resolve(found.payload);
    }
    return new Promise((resolve, reject) => {
      const waiter = { event, match, resolve };
      waiter.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        const seen = this.received.map((e) => e.event).join(", ");
        reject(new Error(`${this.label}: no "${event}" within ${ms} ms (received: ${seen})`));
      }, ms);
      this.waiters.push(waiter);
    });
  }

  /** The payloads of every received `event` (taken or not). */
  all(event, match = () => true) {
    return this.received.filter((e) => e.event === event && match(e.payload)).map((e) => e.payload);
  }

  /** Emits with an ack; resolves with the ack's first argument. */
  async emit(event, payload, ms = 8000) {
    try {
      return await this.socket.timeout(ms).emitWithAck(event, payload);
    } catch (err) {
      throw new Error(`${this.label}: no ack for "${event}" within ${ms} ms (${err.message})`);
    }
  }

  get id() {
    return this.socket.id;
  }

  close() {
    this.socket.disconnect();
  }
}

/**
 * Connects `user` with its token. `transport`: "default" (polling, then the
 * upgrade), "polling" or "websocket". Resolves once connected (and upgraded,
 * for the default) with a Client; rejects with the connect_error.
 */
async function connect(server, user, { transport = "websocket", auth, label, ...options } = {}) {
  const transports = transport === "default" ? undefined : [transport];
  const socket = io(server.url, {
    forceNew: true,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    auth: auth ?? { token: user.token },
    ...(transports ? { transports } : {}),
    ...options,
  });
  const client = new Client(socket, label ?? user.label ?? "client");
  const upgraded = transport === "default"
    ? new Promise((resolve) => socket.io.engine.once("upgrade", resolve))
    : null;
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
  if (upgraded) {
    await upgraded;
  }
  await client.take("connect"); // so that take("connect") waits for a reconnection
  return client;
}

/** Connects and expects a CONNECT_ERROR; resolves with the error. */
async function connectError(server, auth, transport = "websocket") {
  const socket = io(server.url, { forceNew: true, auth, transports: [transport] });
  try {
    return await new Promise((resolve, reject) => {
      socket.once("connect", () => reject(new Error("connected, expected connect_error")));
      socket.once("connect_error", resolve);
    });
  } finally {
    socket.close();
  }
}

/** Prometheus text -> the value of one series (sum of matching samples). */
async function metric(server, name, labels = {}) {
  const response = await fetch(server.metricsUrl);
  assert.equal(response.status, 200);
  const text = await response.text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) {
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) {
      continue;
    }
    const have = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      have[l[1]] = l[2];
    }
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) {
      total += Number(m[3]);
    }
  }
  return total;
}

/**
 * Polls `fn` until it returns a truthy value; fails after `ms`, naming `what`
 * (a string, or a function called then for a message with the last state).
 */
async function eventually(fn, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      assert.fail(`timed out waiting for ${typeof what === "function" ? what() : what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Sample signaling payloads (relayed untouched).
const kOffer = { type: "offer", sdp: "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n" };
const kAnswer = { type: "answer", sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=answer ✓\r\n" };
const kCandidate = {
  candidate: "candidate:842163049 1 udp 1677729535 127.0.0.1 50000 typ relay raddr 0.0.0.0 rport 0",
  sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "abcd",
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `caller` rings `callee` on each of `calleeSockets`; returns the call id. */
async function ring(caller, callerSocket, callee, calleeSockets, callType = "video") {
  const ack = await callerSocket.emit("initiateCall", { receiverId: callee.id, callType });
  assert.equal(ack.ok, true, `${callerSocket.label}: initiateCall refused: ${JSON.stringify(ack)}`);
  assert.equal(ack.receiverId, callee.id);
  const initiated = await callerSocket.take("callInitiated", (p) => p.callId === ack.callId);
  assert.deepEqual(initiated, { callId: ack.callId, receiverId: callee.id, callType });
  for (const device of calleeSockets) {
    const incoming = await device.take("incomingCall", (p) => p.callId === ack.callId);
    assert.equal(incoming.callerId, caller.id);
    assert.equal(incoming.callType, callType);
    assert.equal(incoming.caller.id, caller.id);
    assert.equal(incoming.caller.handle, caller.handle);
    assert.equal(incoming.caller.displayName, `Test ${caller.label}`);
  }
  return ack.callId;
}

/** `calleeSocket` accepts; the caller is told. */
async function accept(callId, calleeSocket, callerSocket, callee) {
  const ack = await calleeSocket.emit("acceptCall", { callId });
  assert.equal(ack.ok, true, `${calleeSocket.label}: acceptCall refused: ${JSON.stringify(ack)}`);
  await calleeSocket.take("callAcceptedConfirm", (p) => p.callId === callId);
  const accepted = await callerSocket.take("callAccepted", (p) => p.callId === callId);
  assert.equal(accepted.receiverId, callee.id);
}

/** Waits until `user`'s history on `server` has `callId` with want.status; checks `want`. */
async function expectHistory(server, user, callId, want) {
  let last;
  const entry = await eventually(async () => {
    last = await historyEntry(server, user, callId);
    return last && last.status === want.status ? last : null;
  }, () => `${user.label}: ${callId} ${want.status} in the history of ${server.url} ` +
    `(last seen: ${JSON.stringify(last)})`);
  for (const [key, value] of Object.entries(want)) {
    assert.deepEqual(entry[key], value, `${user.label} history ${key}: ${JSON.stringify(entry)}`);
  }
  return entry;
}

// A TCP relay in front of turnkey whose connections can be frozen: nothing
// more passes either way and neither end is closed, as when a phone leaves a
// network. Each pair records when turnkey closed its side.
async function freezableRelay(targetUrl) {
  const target = new URL(targetUrl);
  const pairs = [];
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    const pair = { frozen: false, upstreamClosed: false };
    pair.closed = new Promise((resolve) => upstream.on("close", () => {
      pair.upstreamClosed = true;
      resolve();
    }));
    client.on("data", (d) => pair.frozen || upstream.write(d));
    upstream.on("data", (d) => pair.frozen || client.write(d));
    client.on("close", () => pair.frozen || upstream.destroy());
    upstream.on("close", () => pair.frozen || client.destroy());
    client.on("error", () => {});
    upstream.on("error", () => {});
    pair.destroy = () => {
      client.destroy();
      upstream.destroy();
    };
    pairs.push(pair);
  });
  await new Promise((resolve) => relay.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${relay.address().port}`,
    // Freezes every connection open now; returns them.
    freeze: () => pairs.filter((p) => !p.frozen).map((p) => {
      p.frozen = true;
      return p;
    }),
    close: () => {
      pairs.forEach((p) => p.destroy());
      relay.close();
    },
  };
}

/**
 * Drops `client`'s connection (its client reconnects by itself), emits a
 * candidate for `callId` while offline (sent right after the next CONNECT),
 * and checks the socket was resumed (connection-state recovery): the same id,
 * `recovered`, the candidate taken and relayed to `peer` after
 * peerReconnected.
 */
async function dropAndResume(client, user, peer, callId) {
  const oldId = client.id;
  client.socket.io.engine.close();
  await client.take("disconnect");
  const offline = client.emit("sendIceCandidate", { callId, candidate: kCandidate });
  await client.take("connect");
  assert.equal(client.id, oldId);
  assert.equal(client.socket.recovered, true);
  assert.equal((await offline).ok, true);
  assert.deepEqual(await peer.take("peerReconnected"), { callId, userId: user.id });
  assert.deepEqual(await peer.take("receiveIceCandidate"),
    { callId, from: user.id, candidate: kCandidate });
}

module.exports = {
  api, newUser, history, historyEntry, Client, connect, connectError, metric, eventually, PASSWORD,
  kOffer, kAnswer, kCandidate, sleep, ring, accept, expectHistory, freezableRelay, dropAndResume,
};
