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
const { io } = require("socket.io-client");
const WebSocket = require("ws");

const { startTurnkey } = require("./turnkey_process");
const {
  api, newUser, historyEntry, connect, connectError, metric, eventually,
  kOffer, kAnswer, kCandidate, sleep, ring, accept, expectHistory, freezableRelay, dropAndResume,
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
    test(`call with two callee devices, relay both ways, hang up (${transport})`, async () => {
      const alice = await newUser(server, "alice");
      const bob = await newUser(server, "bob");
      const a = await connectTracked(alice, { transport });
      const b1 = await connectTracked(bob, { transport, label: "bob1" });
      const b2 = await connectTracked(bob, { transport, label: "bob2" });
      const callId = await ring(alice, a, bob, [b1, b2], "video");

      await accept(callId, b2, a, bob);
      assert.deepEqual(await b1.take("callAnsweredElsewhere"), { callId });
      // The other device may not answer any more.
      const late = await b1.emit("acceptCall", { callId });
      assert.deepEqual(late, { ok: false, error: "Call already processed", callId });

      // SDP and candidates arrive intact, both ways, at the chosen device only.
      assert.equal((await a.emit("sendOffer", { callId, offer: kOffer })).ok, true);
      assert.deepEqual(await b2.take("receiveOffer"), { callId, from: alice.id, offer: kOffer });
      assert.equal((await b2.emit("sendAnswer", { callId, answer: kAnswer })).ok, true);
      assert.deepEqual(await a.take("receiveAnswer"), { callId, from: bob.id, answer: kAnswer });
      assert.equal((await a.emit("sendIceCandidate", { callId, candidate: kCandidate })).ok, true);
      assert.deepEqual(await b2.take("receiveIceCandidate"),
        { callId, from: alice.id, candidate: kCandidate });
      assert.equal((await b2.emit("sendIceCandidate", { callId, candidate: kCandidate })).ok, true);
      assert.deepEqual(await a.take("receiveIceCandidate"),
        { callId, from: bob.id, candidate: kCandidate });
      assert.equal(b1.all("receiveOffer").length, 0);
      const refused = await b1.emit("sendAnswer", { callId, answer: kAnswer });
      assert.deepEqual(refused, { ok: false, error: "Not authorized", callId });
      assert.deepEqual(await b1.take("callError", (p) => p.error === "Not authorized"),
        { error: "Not authorized", callId });

      const report = { callId, state: "connected", localCandidateType: "relay",
        remoteCandidateType: "srflx", relayProtocol: "udp", rttMs: 12 };
      assert.equal((await a.emit("reportIce", report)).ok, true);
      assert.equal((await b2.emit("reportIce", { ...report, localCandidateType: "host" })).ok, true);

      // A live call is in the history too, with nothing about its end yet.
      await expectHistory(server, alice, callId, {
        status: "active", endReason: null, endedAt: null, duration: 0,
      });

      await sleep(1100); // the call lasts at least a second
      assert.deepEqual(await a.emit("endCall", { callId }), { ok: true, callId });
      await a.take("callEndedConfirm", (p) => p.callId === callId);
      assert.deepEqual(await b2.take("callEnded"), { callId, endedBy: alice.id, reason: "hangup" });

      const mine = await expectHistory(server, alice, callId, {
        status: "completed", direction: "outgoing", isMissed: false, type: "video",
        endReason: "hangup",
      });
      assert.ok(mine.duration >= 1, JSON.stringify(mine));
      assert.equal(mine.peer.id, bob.id);
      const theirs = await expectHistory(server, bob, callId, {
        status: "completed", direction: "incoming", isMissed: false,
      });
      assert.equal(theirs.duration, mine.duration);
      assert.ok(theirs.answeredAt && theirs.endedAt);
      // Each side's ICE report, as it sent it, in both histories.
      for (const entry of [mine, theirs]) {
        const { reportedAt: callerAt, ...caller } = entry.ice.caller;
        const { reportedAt: calleeAt, ...callee } = entry.ice.callee;
        assert.deepEqual(caller, { state: "connected", localCandidateType: "relay",
          remoteCandidateType: "srflx", relayProtocol: "udp", rttMs: 12, failureCause: null });
        assert.deepEqual(callee, { ...caller, localCandidateType: "host" });
        assert.ok(!Number.isNaN(Date.parse(callerAt)) && !Number.isNaN(Date.parse(calleeAt)));
      }
      // A replayed event for the ended call is refused, never acted on.
      assert.deepEqual(await b2.emit("endCall", { callId }),
        { ok: false, error: "Call already processed", callId });
    });
  }

  test("reject from one device stops every device", async () => {
    const alice = await newUser(server, "rejA");
    const bob = await newUser(server, "rejB");
    const a = await connectTracked(alice);
    const b1 = await connectTracked(bob, { label: "bob1" });
    const b2 = await connectTracked(bob, { transport: "polling", label: "bob2" });
    const callId = await ring(alice, a, bob, [b1, b2], "audio");
    assert.deepEqual(await b1.emit("rejectCall", { callId }), { ok: true, callId });
    await b1.take("callRejectedConfirm", (p) => p.callId === callId);
    assert.deepEqual(await a.take("callRejected"), { callId, receiverId: bob.id, reason: "rejected" });
    assert.deepEqual(await b2.take("callEnded"), { callId, endedBy: bob.id, reason: "rejected" });
    await expectHistory(server, alice, callId, { status: "rejected", direction: "outgoing" });
    await expectHistory(server, bob, callId, { status: "rejected", direction: "incoming" });
  });

  test("busy callee", async () => {
    const [alice, bob, carol] = await Promise.all(
      ["busyA", "busyB", "busyC"].map((l) => newUser(server, l)));
    const a = await connectTracked(alice);
    const b = await connectTracked(bob);
    const c = await connectTracked(carol);
    const first = await ring(carol, c, bob, [b]);
    await accept(first, b, c, bob);
    const ack = await a.emit("initiateCall", { receiverId: bob.id, callType: "audio" });
    assert.equal(ack.ok, false);
    assert.equal(ack.error, "User busy");
    assert.deepEqual(await a.take("callRejected"),
      { callId: ack.callId, receiverId: bob.id, reason: "busy" });
    assert.equal(b.all("incomingCall", (p) => p.callId === ack.callId).length, 0);
    await expectHistory(server, alice, ack.callId, { status: "busy", direction: "outgoing" });
    await expectHistory(server, bob, ack.callId, { status: "busy", direction: "incoming" });
    assert.equal((await c.emit("endCall", { callId: first })).ok, true);
  });

  test("offline callee: userNotAvailable and a missed call", async () => {
    const alice = await newUser(server, "offA");
    const bob = await newUser(server, "offB");
    const a = await connectTracked(alice);
    const ack = await a.emit("initiateCall", { receiverHandle: bob.handle.toUpperCase(), callType: "video" });
    assert.equal(ack.ok, false);
    assert.equal(ack.error, "User not available");
    assert.deepEqual(await a.take("userNotAvailable"), { callId: ack.callId, receiverId: bob.id });
    await expectHistory(server, alice, ack.callId, {
      status: "missed", direction: "outgoing", isMissed: false, endReason: "unavailable",
    });
    await expectHistory(server, bob, ack.callId, {
      status: "missed", direction: "incoming", isMissed: true,
    });
    const missed = await api(server, "GET", "/api/calls/missed", undefined, bob.token);
    assert.ok(missed.json.data.calls.some((c) => c.callId === ack.callId));
    assert.deepEqual(missed.json.data.calls.find((c) => c.callId === ack.callId).ice,
      { caller: null, callee: null });
    // The missed list takes the history's type filter.
    const audio = await api(server, "GET", "/api/calls/missed?type=audio", undefined, bob.token);
    assert.equal(audio.json.data.calls.some((c) => c.callId === ack.callId), false);
    const video = await api(server, "GET", "/api/calls/missed?type=video", undefined, bob.token);
    assert.ok(video.json.data.calls.some((c) => c.callId === ack.callId));
    const bad = await api(server, "GET", "/api/calls/missed?type=fax", undefined, bob.token);
    assert.equal(bad.status, 400);
  });

  test("ring timeout", async () => {
    const alice = await newUser(server, "toA");
    const bob = await newUser(server, "toB");
    const a = await connectTracked(alice);
    const b = await connectTracked(bob);
    const callId = await ring(alice, a, bob, [b], "audio");
    assert.deepEqual(await a.take("callTimeout", () => true, 10_000), { callId, receiverId: bob.id });
    assert.deepEqual(await b.take("callEnded"), { callId, endedBy: null, reason: "timeout" });
    await expectHistory(server, alice, callId, { status: "missed", endReason: "timeout" });
    await expectHistory(server, bob, callId, { status: "missed", isMissed: true });
  });

  test("caller hangs up while it rings: cancelled", async () => {
    const alice = await newUser(server, "canA");
    const bob = await newUser(server, "canB");
    const a = await connectTracked(alice);
    const b = await connectTracked(bob);
    const callId = await ring(alice, a, bob, [b]);
    assert.deepEqual(await a.emit("endCall", { callId }), { ok: true, callId });
    assert.deepEqual(await b.take("callEnded"), { callId, endedBy: alice.id, reason: "cancelled" });
    await expectHistory(server, bob, callId, { status: "cancelled", direction: "incoming" });
  });

  test("a non-participant cannot signal a call; bad payloads are answered", async () => {
    const [alice, bob, eve] = await Promise.all(["npA", "npB", "npE"].map((l) => newUser(server, l)));
    const a = await connectTracked(alice);
    const b = await connectTracked(bob);
    const e = await connectTracked(eve);
    const callId = await ring(alice, a, bob, [b]);
    for (const event of ["acceptCall", "rejectCall", "endCall", "sendOffer"]) {
      const ack = await e.emit(event, { callId, offer: kOffer });
      assert.deepEqual(ack, { ok: false, error: "Not authorized", callId }, event);
    }
    assert.deepEqual(await e.emit("acceptCall", {}), { ok: false, error: "callId required" });
    assert.deepEqual(await e.emit("acceptCall", { callId: "nope" }),
      { ok: false, error: "Call not found", callId: "nope" });
    assert.deepEqual(await e.emit("initiateCall", { callType: "audio" }),
      { ok: false, error: "receiverId required" });
    assert.deepEqual(await e.emit("initiateCall", { receiverId: "no-such-user", callType: "audio" }),
      { ok: false, error: "Receiver not found" });
    assert.deepEqual(await e.take("callError", (p) => p.error === "Receiver not found"),
      { error: "Receiver not found", callId: null });
    assert.equal((await a.emit("endCall", { callId })).ok, true);
  });

  test("glare: both call each other, one call results", async () => {
    const alice = await newUser(server, "glA");
    const bob = await newUser(server, "glB");
    const a = await connectTracked(alice);
    const b = await connectTracked(bob);
    const [ackA, ackB] = await Promise.all([
      a.emit("initiateCall", { receiverId: bob.id, callType: "audio" }),
      b.emit("initiateCall", { receiverId: alice.id, callType: "audio" }),
    ]);
    const acks = [ackA, ackB];
    assert.ok(acks.every((x) => x.ok), JSON.stringify(acks));
    assert.equal(ackA.callId, ackB.callId, "one call");
    assert.equal(acks.filter((x) => x.glare).length, 1);
    const callId = ackA.callId;
    const [caller, callerSocket, other] = ackA.glare ? [bob, b, a] : [alice, a, b];
    await other.take("callAcceptedConfirm", (p) => p.callId === callId);
    await callerSocket.take("callAccepted", (p) => p.callId === callId);
    assert.equal((await callerSocket.emit("endCall", { callId })).ok, true);
    await expectHistory(server, caller, callId, { status: "completed", direction: "outgoing" });
  });

  test("reconnect within the grace: rejoinCall keeps the call", async () => {
    const alice = await newUser(server, "rjA");
    const bob = await newUser(server, "rjB");
    const a = await connectTracked(alice);
    const b = await connectTracked(bob);
    const callId = await ring(alice, a, bob, [b]);
    await accept(callId, b, a, bob);
    const oldId = a.id;
    a.socket.io.engine.close(); // the network drops; the client reconnects by itself
    await a.take("disconnect");
    await a.take("connect");
    // socket.io-client sent back its CONNECT's pid: the socket is resumed.
    assert.equal(a.id, oldId, "the same socket");
    assert.equal(a.socket.recovered, true);
    const ack = await a.emit("rejoinCall", { callId });
    assert.deepEqual(ack, { ok: true, callId, state: "active", role: "caller", peerId: bob.id,
      callType: "video" });
    assert.deepEqual(await b.take("peerReconnected"), { callId, userId: alice.id });
    assert.equal((await b.emit("sendAnswer", { callId, answer: kAnswer })).ok, true);
    assert.deepEqual(await a.take("receiveAnswer"), { callId, from: bob.id, answer: kAnswer });
    assert.equal((await b.emit("endCall", { callId })).ok, true);
    assert.deepEqual(await a.take("callEnded"), { callId, endedBy: bob.id, reason: "hangup" });
    await expectHistory(server, alice, callId, { status: "completed" });
  });

  test("an app that starts over within the grace: rejoinCall from a new socket", async () => {
    const alice = await newUser(server, "rnA");
    const bob = await newUser(server, "rnB");
    const a = await connectTracked(alice, { reconnection: false });
    const b = await connectTracked(bob);
    const callId = await ring(alice, a, bob, [b]);
    await accept(callId, b, a, bob);
    a.socket.io.engine.close();
    await a.take("disconnect");
    // A new client (the app restarted): no pid, a new socket.
    const a2 = await connectTracked(alice);
    assert.notEqual(a2.id, a.id);
    assert.equal(a2.socket.recovered, false);
    const ack = await a2.emit("rejoinCall", { callId });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.deepEqual(await b.take("peerReconnected"), { callId, userId: alice.id });
    assert.equal((await b.emit("sendAnswer", { callId, answer: kAnswer })).ok, true);
    assert.deepEqual(await a2.take("receiveAnswer"), { callId, from: bob.id, answer: kAnswer });
    assert.equal((await a2.emit("endCall", { callId })).ok, true);
    await expectHistory(server, bob, callId, { status: "completed" });
  });

  test("no reconnect within the grace: connection_lost", async () => {
    const alice = await newUser(server, "clA");
    const bob = await newUser(server, "clB");
    const a = await connectTracked(alice, { reconnection: false });
    const b = await connectTracked(bob);
    const callId = await ring(alice, a, bob, [b]);
    await accept(callId, b, a, bob);
    a.socket.io.engine.close();
    assert.deepEqual(await b.take("callEnded", () => true, 10_000),
      { callId, endedBy: alice.id, reason: "connection_lost" });
    await expectHistory(server, bob, callId, { status: "failed", endReason: "connection_lost" });
  });

  test("media that never connected: ice_failed, and the late report counts", async () => {
    const alice = await newUser(server, "ifA");
    const bob = await newUser(server, "ifB");
    const a = await connectTracked(alice);
    const b = await connectTracked(bob);
    const callId = await ring(alice, a, bob, [b]);
    await accept(callId, b, a, bob);
    const before = await metric(server, "turnkey_ice_reports_total", { result: "failed" });
    assert.equal((await a.emit("reportIce", { callId, state: "failed" })).ok, true);
    assert.equal((await a.emit("endCall", { callId })).ok, true);
    assert.deepEqual(await b.take("callEnded"), { callId, endedBy: alice.id, reason: "hangup" });
    // The callee's own failure, after the caller hung up: taken, not "Call already processed".
    // It says why: its TURN server refused the credential.
    const beforeAuth = await metric(server, "turnkey_ice_failures_total", { cause: "turn_auth" });
    assert.deepEqual(await b.emit("reportIce", { callId, state: "failed",
      localCandidates: { host: 1, srflx: 0, relay: 0 }, turnUris: 1,
      iceErrors: [{ url: "turn:127.0.0.1:3478?transport=udp", errorCode: 401 }] }),
    { ok: true, callId });
    await expectHistory(server, bob, callId, { status: "failed", endReason: "ice_failed" });
    assert.equal(await metric(server, "turnkey_ice_reports_total", { result: "failed" }), before + 2);
    assert.equal(await metric(server, "turnkey_ice_failures_total", { cause: "turn_auth" }),
      beforeAuth + 1);
    // Each side's cause is in the history, for `turnkey call show` and the apps.
    const ice = await eventually(async () => {
      const entry = await historyEntry(server, alice, callId);
      return entry && entry.ice.callee ? entry.ice : null;
    }, () => `${callId}: the callee's ICE report in the history`);
    assert.equal(ice.caller.failureCause, "unknown");
    assert.equal(ice.callee.failureCause, "turn_auth");
    assert.ok(await metric(server, "turnkey_calls_total", { status: "ice_failed" }) >= 1);
  });

  test("REST: initiate, accept, end drive the same calls; errors", async () => {
    const alice = await newUser(server, "restA");
    const bob = await newUser(server, "restB");
    let r = await api(server, "POST", "/api/calls/initiate", { receiverId: bob.id, callType: "audio" },
      alice.token);
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.code, "NOT_CONNECTED");
    const a = await connectTracked(alice);
    const b = await connectTracked(bob);
    r = await api(server, "POST", "/api/calls/initiate", { receiverHandle: bob.handle, callType: "audio" },
      alice.token);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.success, true);
    const callId = r.json.data.callId;
    assert.deepEqual(r.json.data, { ok: true, callId, receiverId: bob.id, callType: "audio" });
    await a.take("callInitiated", (p) => p.callId === callId);
    await b.take("incomingCall", (p) => p.callId === callId);

    r = await api(server, "POST", "/api/calls/accept", {}, bob.token);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.field, "callId");
    r = await api(server, "POST", "/api/calls/accept", { callId: "unknown" }, bob.token);
    assert.equal(r.status, 404, r.text);
    r = await api(server, "POST", "/api/calls/accept", { callId }, alice.token);
    assert.equal(r.status, 403, r.text);
    assert.equal(r.json.message, "Not authorized");
    r = await api(server, "POST", "/api/calls/accept", { callId }, bob.token);
    assert.equal(r.status, 200, r.text);
    await b.take("callAcceptedConfirm", (p) => p.callId === callId);
    await a.take("callAccepted", (p) => p.callId === callId);
    // The socket that REST picked is the callee's device now.
    assert.equal((await b.emit("sendAnswer", { callId, answer: kAnswer })).ok, true);

    r = await api(server, "POST", "/api/calls/end", { callId }, alice.token);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await a.take("callEnded"), { callId, endedBy: alice.id, reason: "hangup" });
    assert.deepEqual(await b.take("callEnded"), { callId, endedBy: alice.id, reason: "hangup" });
    r = await api(server, "POST", "/api/calls/end", { callId }, alice.token);
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.code, "CALL_CONFLICT");
    await expectHistory(server, bob, callId, { status: "completed", direction: "incoming" });

    // A reject over REST with the callee's socket connected elsewhere.
    const second = await ring(alice, a, bob, [b], "audio");
    r = await api(server, "POST", "/api/calls/reject", { callId: second }, bob.token);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await a.take("callRejected"), { callId: second, receiverId: bob.id, reason: "rejected" });
    assert.deepEqual(await b.take("callEnded"), { callId: second, endedBy: bob.id, reason: "rejected" });
  });

  test("a flood from one socket is rate limited while another call goes through", async () => {
    const [flooder, carol, dave] = await Promise.all(["flood", "flC", "flD"].map((l) => newUser(server, l)));
    const f = await connectTracked(flooder);
    const c = await connectTracked(carol);
    const d = await connectTracked(dave);
    const acks = await Promise.all(Array.from({ length: 250 }, (_, i) =>
      f.emit("sendIceCandidate", { callId: `bogus${i}`, candidate: kCandidate })));
    const limited = acks.filter((x) => x.error === "Rate limited").length;
    assert.ok(limited > 0, "some events were rate limited");
    const refused = f.all("callError", (p) => p.error === "Rate limited");
    assert.ok(refused.length > 0);
    // The contract's callError is {error, callId}: the refused event's callId.
    for (const told of refused) {
      assert.match(told.callId, /^bogus\d+$/, JSON.stringify(told));
      assert.equal(told.event, "sendIceCandidate");
    }
    const callId = await ring(carol, c, dave, [d], "audio");
    await accept(callId, d, c, dave);
    assert.equal((await d.emit("endCall", { callId })).ok, true);
  });

  test("malformed and oversized packets close only that connection", async () => {
    const user = await newUser(server, "raw");
    const watcher = await connectTracked(await newUser(server, "watch"));
    const url = `${server.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`;
    for (const bad of ["abc", "4" + "x".repeat(1_100_000)]) {
      const ws = new WebSocket(url);
      const closed = new Promise((resolve) => ws.on("close", (code) => resolve(code)));
      await new Promise((resolve) => ws.once("message", resolve)); // the open packet
      ws.send(`40${JSON.stringify({ token: user.token })}`);
      const connected = await new Promise((resolve) => ws.once("message", (m) => resolve(String(m))));
      assert.match(connected, /^40\{"sid":/);
      ws.send(bad);
      const code = await closed;
      assert.ok(code > 0);
    }
    assert.equal((await watcher.emit("getIceServers", {})).ok, true, "others are unaffected");
  });

  // socket.connect() called again just after the manager opens (an app's connect() on resume,
  // two code paths that both reconnect) sends a second CONNECT, which can reach turnkey while
  // the first is being authorized and while the client is moving from polling to the
  // WebSocket. Each such client ends up connected; none waits for its ping timeout.
  test("connect() repeated before the CONNECT answer: the client connects", async () => {
    const user = await newUser(server, "twice");
    for (let i = 0; i < 24; i++) {
      const socket = io(server.url, {
        forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 200, auth: { token: user.token },
      });
      let again = true;
      socket.io.on("open", () => {
        if (again) {
          again = false;
          setTimeout(() => socket.connect(), i % 4);
        }
      });
      try {
        await eventually(() => socket.connected, `client ${i} connected`, 5_000);
      } finally {
        socket.close();
      }
    }
  });

  test("metrics: connections by transport and calls by status", async () => {
    await eventually(async () => (await metric(server, "turnkey_signal_connections",
      { transport: "websocket" })) >= 1, "a websocket connection counted");
    const sockets = await metric(server, "turnkey_signal_sockets", {});
    const users = await metric(server, "turnkey_signal_users", {});
    assert.ok(sockets >= 1 && users >= 1 && users <= sockets, `sockets ${sockets}, users ${users}`);
    assert.ok(await metric(server, "turnkey_calls_total", { type: "video", status: "completed" }) >= 3);
    assert.ok(await metric(server, "turnkey_calls_total", { status: "busy" }) >= 1);
    assert.ok(await metric(server, "turnkey_ice_reports_total",
      { result: "connected", local_type: "relay", remote_type: "srflx" }) >= 3);
  });

  test("the demo page and only its files are served", async () => {
    let r = await api(server, "GET", "/");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /^text\/html/);
    assert.equal(r.headers.get("cache-control"), "no-cache");
    assert.match(r.text, /<script src="\/socket.io.min.js"><\/script>/);
    for (const path of ["/app.js", "/turnkey.js", "/socket.io.min.js", "/socket.io.esm.min.js"]) {
      r = await api(server, "GET", path);
      assert.equal(r.status, 200, path);
      assert.match(r.headers.get("content-type"), /^text\/javascript/, path);
    }
    r = await api(server, "GET", "/style.css");
    assert.match(r.headers.get("content-type"), /^text\/css/);
    for (const path of ["/package.json", "/README.md", "/node_modules/socket.io-client/package.json",
      "/e2e/call.test.mjs", "/%2e%2e/CMakeLists.txt"]) {
      r = await api(server, "GET", path);
      assert.equal(r.status, 404, path);
    }
  });
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

// Socket.IO connection-state recovery: CONNECT replies carry a pid, which
// socket.io-client sends back when it reconnects after a network failure.
describe("connection-state recovery", { concurrency: false }, () => {
  let server;
  const open = [];
  const connectTracked = async (user, options, at = server) => {
    const client = await connect(at, user, options);
    open.push(client);
    return client;
  };
  // A call from alice, connected through `relay`, to bob, answered.
  const callThrough = async (relay, label) => {
    const alice = await newUser(server, `${label}A`);
    const bob = await newUser(server, `${label}B`);
    const a = await connectTracked(alice, {}, { url: relay.url });
    const b = await connectTracked(bob);
    const callId = await ring(alice, a, bob, [b]);
    await accept(callId, b, a, bob);
    return { alice, bob, a, b, callId };
  };
  before(async () => {
    server = await startTurnkey({ reconnectGrace: "5s" });
  });
  after(async () => {
    open.forEach((c) => c.close());
    const status = await server.stop();
    assert.deepEqual(status, { code: 0, signal: null }, server.log().slice(-3000));
  });

  for (const transport of ["websocket", "polling"]) {
    test(`a dropped connection resumes its socket and what it sent offline is taken (${transport})`, async () => {
      const alice = await newUser(server, `rcA-${transport}`);
      const bob = await newUser(server, `rcB-${transport}`);
      const a = await connectTracked(alice, { transport });
      const b = await connectTracked(bob);
      const callId = await ring(alice, a, bob, [b]);
      await accept(callId, b, a, bob);
      await dropAndResume(a, alice, b, callId);
      assert.equal((await b.emit("sendAnswer", { callId, answer: kAnswer })).ok, true);
      assert.deepEqual(await a.take("receiveAnswer"), { callId, from: bob.id, answer: kAnswer });
      assert.equal((await a.emit("endCall", { callId })).ok, true);
      await expectHistory(server, bob, callId, { status: "completed" });
    });
  }

  test("a client that moves before the server saw its old connection fail keeps its call", async () => {
    const relay = await freezableRelay(server.url);
    try {
      const { alice, bob, a, b, callId } = await callThrough(relay, "mv");
      // The old path goes silent; the client gives up on it and reconnects
      // (through the relay, on a new connection that works). Without recovery
      // the candidate it sent meanwhile was "Not authorized": the server
      // still held the old socket as the caller's.
      const resumed = (how) => metric(server, "turnkey_signal_resumed_sockets_total", { how });
      const [lostBefore, replacedBefore] = [await resumed("lost"), await resumed("replaced")];
      const [old] = relay.freeze();
      await dropAndResume(a, alice, b, callId);
      assert.equal(await resumed("replaced"), replacedBefore + 1);
      assert.equal(await resumed("lost"), lostBefore);
      // The server closed the replaced connection.
      await old.closed;
      assert.equal((await b.emit("endCall", { callId })).ok, true);
      assert.deepEqual(await a.take("callEnded"), { callId, endedBy: bob.id, reason: "hangup" });
      await expectHistory(server, alice, callId, { status: "completed" });
    } finally {
      relay.close();
    }
  });

  test("a resumed socket hears of the end of a call that came while it was away", async () => {
    const alice = await newUser(server, "awA");
    const bob = await newUser(server, "awB");
    const a = await connectTracked(alice,
      { reconnectionDelay: 1000, reconnectionDelayMax: 1000, randomizationFactor: 0 });
    const b = await connectTracked(bob);
    const callId = await ring(alice, a, bob, [b]);
    await accept(callId, b, a, bob);
    const sessions = () => metric(server, "turnkey_signal_connections", { transport: "websocket" });
    const before = await sessions();
    a.socket.io.engine.close();
    await a.take("disconnect");
    await eventually(async () => (await sessions()) === before - 1, "the server saw alice go");
    assert.equal((await b.emit("endCall", { callId })).ok, true);
    await a.take("connect");
    assert.equal(a.socket.recovered, true);
    assert.deepEqual(await a.take("callEnded"), { callId, endedBy: bob.id, reason: "hangup" });
    await expectHistory(server, alice, callId, { status: "completed" });
  });

  test("a ringing caller whose connection drops hears of the cancel when it resumes", async () => {
    const alice = await newUser(server, "rgA");
    const bob = await newUser(server, "rgB");
    const a = await connectTracked(alice);
    const b = await connectTracked(bob);
    const callId = await ring(alice, a, bob, [b]);
    a.socket.io.engine.close();
    await a.take("disconnect");
    // The contract: a caller that drops while ringing cancels.
    assert.deepEqual(await b.take("callEnded"), { callId, endedBy: alice.id, reason: "cancelled" });
    await a.take("connect");
    assert.equal(a.socket.recovered, true);
    assert.deepEqual(await a.take("callEnded"), { callId, endedBy: alice.id, reason: "cancelled" });
  });

  test("the end of a call sent into a link that was already dead is told again on resume", async () => {
    const relay = await freezableRelay(server.url);
    try {
      const { bob, a, b, callId } = await callThrough(relay, "dl");
      relay.freeze();
      assert.equal((await b.emit("endCall", { callId })).ok, true); // lost on the way to alice
      a.socket.io.engine.close();
      await a.take("connect");
      assert.equal(a.socket.recovered, true);
      assert.deepEqual(await a.take("callEnded"), { callId, endedBy: bob.id, reason: "hangup" });
    } finally {
      relay.close();
    }
  });

  test("a client that disconnects itself gets a new socket", async () => {
    const alice = await newUser(server, "cdA");
    const a = await connectTracked(alice);
    const oldId = a.id;
    a.socket.disconnect();
    a.socket.connect();
    await a.take("connect");
    assert.notEqual(a.id, oldId);
    assert.equal(a.socket.recovered, false);
  });
});
