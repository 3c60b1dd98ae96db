// The call flow of DESIGN.md section 5 against the real turnkey binary
// (TURNKEY_BINARY), driven by the npm socket.io-client 4 with its default
// options (polling, then the upgrade), WebSocket only and polling only.
// Every rule is its own test, and each ends by reading the REST history.
// The database is SQLite, or MariaDB with TURNKEY_TEST_DB=mysql.
//
//   ctest -R integration_signaling_calls   (or: TURNKEY_BINARY=build/turnkey
//   node --test --test-concurrency=1 tests/js/signaling_calls.js)
//
// Not named *.test.js on purpose: js_socketio_protocol runs `node --test`
// over this folder without a turnkey binary.
"use strict";

const assert = require("node:assert/strict");
const { after, before, describe, test } = require("node:test");
const WebSocket = require("ws");

const { startTurnkey } = require("./turnkey_process");
const {
  api, newUser, historyEntry, connect, connectError, metric, eventually,
  kOffer, kAnswer, kCandidate, sleep, ring, accept, expectHistory,
} = require("./signaling_client");

describe("signaling against the real turnkey", { concurrency: false }, () => {
  let server;
  const open = [];
  const track = (client) => {
    open.push(client);
    return client;
  };
  const connectTracked = async (user, options) => track(await connect(server, user, options));

  before(async () => {
    server = await startTurnkey({ ringTimeout: "2s", reconnectGrace: "2s" });
  });
  after(async () => {
    for (const c of open) {
      c.close();
    }
    const status = await server.stop();
    assert.deepEqual(status, { code: 0, signal: null }, server.log().slice(-3000));
  });

  test("CONNECT without a token, with a bad token, with a revoked token", async () => {
    let err = await connectError(server, {});
    assert.equal(err.data.code, "TOKEN_MISSING");
    assert.ok(err.message);
    err = await connectError(server, { token: "not.a.jwt" }, "polling");
    assert.equal(err.data.code, "TOKEN_INVALID");
    const user = await newUser(server, "revoked");
    const socket = await connectTracked(user);
    const r = await api(server, "POST", "/api/auth/logout", { refreshToken: user.refreshToken },
      user.token);
    assert.equal(r.status, 200, r.text);
    // Logout disconnects the user's sockets from the server side.
    assert.equal(await socket.take("disconnect"), "io server disconnect");
    err = await connectError(server, { token: user.token });
    assert.equal(err.data.code, "TOKEN_REVOKED");
  });

  test("iceServers on connect and getIceServers", async () => {
    const user = await newUser(server, "ice");
    const socket = await connectTracked(user);
    const pushed = await socket.take("iceServers");
    assert.equal(pushed.ttl, 3600);
    assert.deepEqual(pushed.iceServers[0], { urls: [`stun:127.0.0.1:${server.turnPort}`] });
    const turn = pushed.iceServers[1];
    assert.deepEqual(turn.urls, [`turn:127.0.0.1:${server.turnPort}?transport=udp`]);
    assert.match(turn.username, new RegExp(`^\\d+:${user.id}$`));
    assert.ok(turn.credential.length > 10);
    const ack = await socket.emit("getIceServers", {});
    assert.equal(ack.ok, true);
    assert.equal(ack.ttl, 3600);
    assert.equal(ack.iceServers.length, 2);
    const unknown = await socket.emit("noSuchEvent", {});
    assert.deepEqual(unknown, { ok: false, error: "Unknown event" });
  });

  for (const transport of ["default", "polling", "websocket"]) {
    test(`a call over http://[::1], transport ${transport}`, async () => {
      const caller = await newUser(server, `v6caller-${transport}`);
      const callee = await newUser(server, `v6callee-${transport}`);
      const a = await connect(server, caller, { transport });
      const b = await connect(server, callee, { transport });
      try {
        const callId = await ring(caller, a, callee, [b]);
        await accept(callId, b, a, callee);
        const ended = await a.emit("endCall", { callId });
        assert.equal(ended.ok, true, JSON.stringify(ended));
        assert.equal((await b.take("callEnded")).callId, callId);
      } finally {
        a.close();
        b.close();
      }
    });
  }
});

describe("expired tokens", () => {
  test("CONNECT with an expired access token gets TOKEN_EXPIRED", async () => {
    const server = await startTurnkey({ accessTtl: "1s" });
    try {
      const user = await newUser(server, "exp");
      await sleep(2100); // let the one-second token expire
      const err = await connectError(server, { token: user.token });
      assert.equal(err.data.code, "TOKEN_EXPIRED");
    } finally {
      await server.stop();
    }
  });
});

describe("reload", () => {
  test("SIGHUP applies a new ring timeout; connected sockets stay", async () => {
    const server = await startTurnkey({ ringTimeout: "60s" });
    try {
      const alice = await newUser(server, "hupA");
      const bob = await newUser(server, "hupB");
      const a = await connect(server, alice, { transport: "polling" });
      const b = await connect(server, bob);
      const [aId, bId] = [a.id, b.id];
      await server.reload({ ringTimeout: "1s" });
      const callId = await ring(alice, a, bob, [b], "audio");
      assert.deepEqual(await a.take("callTimeout", () => true, 10_000), { callId, receiverId: bob.id });
      assert.equal(a.all("disconnect").length + b.all("disconnect").length, 0);
      assert.deepEqual([a.id, b.id], [aId, bId], "the same sockets");
      a.close();
      b.close();
    } finally {
      const status = await server.stop();
      assert.deepEqual(status, { code: 0, signal: null });
    }
  });
});

describe("drain and shutdown", { concurrency: false }, () => {
  test("SIGUSR1: new calls are refused, the call in progress goes on, then turnkey exits", async () => {
    const server = await startTurnkey();
    let restarted;
    const clients = [];
    try {
      const [alice, bob, carol, dave] = await Promise.all(
        ["drA", "drB", "drC", "drD"].map((l) => newUser(server, l)));
      const a = await connect(server, alice, { reconnection: false });
      const b = await connect(server, bob, { reconnection: false });
      const c = await connect(server, carol, { reconnection: false });
      clients.push(a, b, c, await connect(server, dave, { reconnection: false }));
      let exited = false;
      server.exited.then(() => {
        exited = true;
      });
      const callId = await ring(alice, a, bob, [b]);
      await accept(callId, b, a, bob);
      server.signal("SIGUSR1");
      const refused = await eventually(async () => {
        const ack = await c.emit("initiateCall", { receiverId: dave.id, callType: "audio" });
        return ack.error === "Server is shutting down" ? ack : null;
      }, "initiateCall refused while draining");
      assert.equal(refused.ok, false);
      assert.equal((await a.emit("sendOffer", { callId, offer: kOffer })).ok, true);
      assert.deepEqual(await b.take("receiveOffer"), { callId, from: alice.id, offer: kOffer });
      await sleep(1100); // a whole second of call; the drain waits for it
      assert.equal(exited, false, "the drain waits for the call");
      assert.equal((await b.emit("endCall", { callId })).ok, true);
      assert.deepEqual(await Promise.race([server.exited,
        sleep(15_000).then(() => "still running")]), { code: 0, signal: null });
      restarted = await startTurnkey({ stateOf: server });
      const entry = await historyEntry(restarted, alice, callId);
      assert.equal(entry.status, "completed");
      assert.ok(entry.duration >= 1);
    } finally {
      clients.forEach((c) => c.close());
      await server.stop();
      await restarted?.stop();
    }
  });

  test("SIGTERM ends calls cleanly with server_shutdown and records them", async () => {
    const server = await startTurnkey();
    let restarted;
    const clients = [];
    try {
      const alice = await newUser(server, "stA");
      const bob = await newUser(server, "stB");
      const a = await connect(server, alice, { reconnection: false });
      const b = await connect(server, bob, { transport: "polling", reconnection: false });
      clients.push(a, b);
      const callId = await ring(alice, a, bob, [b]);
      await accept(callId, b, a, bob);
      server.signal("SIGTERM");
      for (const s of [a, b]) {
        assert.deepEqual(await s.take("callEnded"), { callId, endedBy: null, reason: "server_shutdown" });
      }
      assert.deepEqual(await server.exited, { code: 0, signal: null });
      restarted = await startTurnkey({ stateOf: server });
      const entry = await historyEntry(restarted, bob, callId);
      assert.equal(entry.status, "completed");
      assert.equal(entry.endReason, "server_shutdown");
    } finally {
      clients.forEach((c) => c.close());
      await server.stop();
      await restarted?.stop();
    }
  });
});

// socket.io-client under Node polls through xmlhttprequest-ssl, which sends
// an IPv6 literal's Host without brackets ("::1:PORT"): the server takes it.
describe("signaling on an IPv6 listener", { concurrency: false }, () => {
  let server;
  before(async () => {
    server = await startTurnkey({ signalAddress: "::1" });
  });
  after(async () => {
    const status = await server.stop();
    assert.deepEqual(status, { code: 0, signal: null }, server.log().slice(-3000));
  });

  for (const transport of ["default", "polling", "websocket"]) {
    test(`a call over http://[::1], transport ${transport}`, async () => {
        const caller = await newUser(server, `v6caller-${transport}`);
        const callee = await newUser(server, `v6callee-${transport}`);
        const a = await connect(server, caller, { transport });
        const b = await connect(server, callee, { transport });
        try {
          const callId = await ring(caller, a, callee, [b]);
          await accept(callId, b, a, callee);
          const ended = await a.emit("endCall", { callId });
          assert.equal(ended.ok, true, JSON.stringify(ended));
          assert.equal((await b.take("callEnded")).callId, callId);
        } finally {
          a.close();
          b.close();
        }
      });
  }
});
