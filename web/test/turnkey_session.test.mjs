// Unit tests of TurnkeyClient's session and call logic in Node, against a fake turnkey (fetch,
// a Socket.IO-like socket, RTCPeerConnection, Web Locks) and node:test's fake clock: token and
// iceServers renewal cadence, sign-out from elsewhere, password change, duplicated tabs, calls
// that never connect (gatherings that yield no candidate among them), calling while offline, media lost during a call (ICE restarts, their
// limits, the callee's wait) and calls whose socket stays away.
//   cd web && node --test test/

import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';

import { iceFailureCause, iceServersStale, renewalDelay } from '../turnkey.js';
import {
  FakeLocks, FakePeerConnection, FakeServer, FakeSocket, MemoryStorage, advance, flush, kBounded,
  kNoAck, newClient,
} from './fakes.mjs';

// --- Pure scheduling -------------------------------------------------------------------------

test('renewalDelay: a margin longer than the lifetime is capped at a fifth of it', () => {
  const margin = 60_000;
  // access_ttl 20 s: after 16 s, not "now" (which looped every second).
  assert.equal(renewalDelay({ lifetimeMs: 20_000, remainingMs: 20_000, marginMs: margin }), 16_000);
  assert.equal(renewalDelay({ lifetimeMs: 60_000, remainingMs: 60_000, marginMs: margin }), 48_000);
  // 15 min: the whole margin.
  assert.equal(renewalDelay({ lifetimeMs: 900_000, remainingMs: 900_000, marginMs: margin }), 840_000);
  // Past due (a token restored late, a clock that jumped): the floor, a tenth of the lifetime.
  assert.equal(renewalDelay({ lifetimeMs: 20_000, remainingMs: -5_000, marginMs: margin }), 2_000);
  assert.equal(renewalDelay({ lifetimeMs: 900_000, remainingMs: 10_000, marginMs: margin }), 90_000);
  assert.equal(renewalDelay({ lifetimeMs: 1_000, remainingMs: 1_000, marginMs: margin }), 1_000);
  assert.equal(renewalDelay({ lifetimeMs: 0, remainingMs: 0, marginMs: margin }), 1_000);
  // Never over setTimeout's limit.
  assert.equal(renewalDelay({ lifetimeMs: 1e12, remainingMs: 1e12, marginMs: margin }), 2 ** 31 - 1);
});

test('iceServersStale: past half of a short ttl, within the margin of a long one', () => {
  const margin = 5 * 60_000;
  const now = 1_000_000;
  // ttl 60 s, 50 s left: fresh (it was "stale before every call" with a 5 min margin).
  assert.equal(iceServersStale({ expireAt: now + 50_000, lifetimeMs: 60_000, nowMs: now, marginMs: margin }), false);
  assert.equal(iceServersStale({ expireAt: now + 29_000, lifetimeMs: 60_000, nowMs: now, marginMs: margin }), true);
  // 24 h: only in the last 5 minutes.
  assert.equal(iceServersStale({ expireAt: now + 3_600_000, lifetimeMs: 86_400_000, nowMs: now, marginMs: margin }), false);
  assert.equal(iceServersStale({ expireAt: now + 200_000, lifetimeMs: 86_400_000, nowMs: now, marginMs: margin }), true);
  assert.equal(iceServersStale({ expireAt: null, lifetimeMs: null, nowMs: now, marginMs: margin }), false);
});

// --- The client on a fake clock --------------------------------------------------------------

beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_700_000_000_000 });
});

afterEach(() => {
  mock.timers.reset();
});

test('F1: a 20 s access token is refreshed about every 16 s, not every second', kBounded, async () => {
  const server = new FakeServer({ ttlS: 20 });
  const client = newClient(server);
  await client.login({ email: 'a@example.test', password: 'old password' });
  await advance(60_000);
  assert.equal(server.count('/api/auth/refresh'), 3);
  assert.ok(client.loggedIn);
});

test('a refused login carries the Retry-After of its 429', kBounded, async () => {
  const server = new FakeServer();
  server.loginRetryAfter = '20';
  const client = newClient(server);
  await assert.rejects(client.login({ email: 'a@example.test', password: 'a password' }),
    (e) => e.status === 429 && e.code === 'RATE_LIMITED' && e.retryAfterSeconds === 20);
  server.wrongPassword = 'wrong';
  delete server.loginRetryAfter;
  await assert.rejects(client.login({ email: 'a@example.test', password: 'wrong' }),
    (e) => e.status === 401 && e.retryAfterSeconds === null);
});

test('F1: the cadence holds when the server clock is an hour ahead of ours', kBounded, async () => {
  const server = new FakeServer({ ttlS: 60, skewMs: 3_600_000 });
  const client = newClient(server);
  await client.login({ email: 'a@example.test', password: 'old password' });
  await advance(120_000, 1_000);
  assert.equal(server.count('/api/auth/refresh'), 2); // at 48 s and 96 s
});

test('F1: a restored session keeps the cadence of the token it saved', kBounded, async () => {
  const server = new FakeServer({ ttlS: 20 });
  const storage = new MemoryStorage();
  const first = newClient(server, { storage });
  await first.login({ email: 'a@example.test', password: 'old password' });
  await advance(5_000);
  // A reload 5 s into the token's life (the old page gone): no refresh yet, the next at 16 s.
  const copy = storage.copy();
  server.networkDown = 1; // the logout stops its timer, and does not reach the server
  await first.logout();
  const second = newClient(server, { storage: copy });
  assert.ok(await second.restoreSession());
  assert.equal(server.count('/api/auth/refresh'), 0);
  await advance(10_500);
  assert.equal(server.count('/api/auth/refresh'), 0);
  await advance(1_000);
  assert.equal(server.count('/api/auth/refresh'), 1);
  assert.ok(second.loggedIn);
});

test('F2: iceServers with a 60 s ttl are fetched once per ttl, and not before every call', kBounded, async () => {
  const server = new FakeServer({ iceTtlS: 60 });
  const client = newClient(server);
  await client.login({ email: 'a@example.test', password: 'old password' });
  await client.freshIceServers();
  assert.equal(server.count('/api/turn/credentials'), 0, 'the login list is fresh');
  await advance(120_000, 1_000);
  // Fallback timer at 90% of the ttl (the server's push, at 80%, does not come here).
  assert.equal(server.count('/api/turn/credentials'), 2);
  await advance(10_000, 1_000);
  await client.freshIceServers(); // 22 s into a 60 s list
  assert.equal(server.count('/api/turn/credentials'), 2);
});

test('F3: a REST answer TOKEN_REVOKED ends the session with reason revoked', kBounded, async () => {
  const server = new FakeServer();
  const storage = new MemoryStorage();
  const client = newClient(server, { storage });
  await client.login({ email: 'a@example.test', password: 'old password' });
  const out = [];
  client.on('loggedOut', (e) => out.push(e.reason));
  server.revokeAll(); // logout or password change on another device
  await assert.rejects(client.getMe(), (e) => e.code === 'TOKEN_REVOKED');
  assert.deepEqual(out, ['revoked']);
  assert.equal(client.loggedIn, false);
  assert.equal(storage.getItem('turnkey.session'), null);
});

test('F3: a server disconnect checks the session: over when revoked, reconnected otherwise', kBounded, async () => {
  const server = new FakeServer();
  let socket;
  const io = () => (socket = new FakeSocket());
  const client = newClient(server, { io });
  await client.login({ email: 'a@example.test', password: 'old password' });
  await client.connect();
  const out = [];
  client.on('loggedOut', (e) => out.push(e.reason));

  // The session still counts (e.g. an operator kicked this socket only): connect again.
  socket.serverDisconnect();
  await advance(500);
  assert.equal(socket.connects, 2);
  assert.ok(client.connected);

  // Signed out elsewhere.
  server.revokeAll();
  socket.serverDisconnect();
  await advance(500);
  assert.deepEqual(out, ['revoked']);
  assert.equal(client.loggedIn, false);
  assert.equal(socket.connects, 2);
});

test('F3: a reused refresh token ends the session as revoked', kBounded, async () => {
  const server = new FakeServer();
  const client = newClient(server);
  await client.login({ email: 'a@example.test', password: 'old password' });
  const out = [];
  client.on('loggedOut', (e) => out.push(e.reason));
  server.refreshTokens.set(client.refreshToken, 'spent');
  await assert.rejects(client.refreshSession());
  assert.deepEqual(out, ['revoked']);
});

test('F5: changePassword keeps the new session through the server disconnect', kBounded, async () => {
  const server = new FakeServer();
  const storage = new MemoryStorage();
  let socket;
  // Answered on a later tick, as over a network.
  const fetch = async (url, init) => {
    await null;
    return server.fetch(url, init);
  };
  const client = newClient(server, { storage, fetch, autoConnect: true, io: () => (socket = new FakeSocket()) });
  await client.login({ email: 'a@example.test', password: 'old password' });
  await client.connect();
  const out = [];
  client.on('loggedOut', (e) => out.push(e.reason));
  const oldToken = client.token;
  // The server disconnects every socket of the account before its answer arrives, and takes a
  // while to answer the next CONNECT: the socket is asked to join once, not again meanwhile.
  server.onPasswordChanged = () => socket.serverDisconnect();
  socket.joinMs = 200;

  await assert.rejects(client.changePassword('wrong', 'new password 1'), (e) => e.code === 'INVALID_CREDENTIALS');
  assert.ok(client.loggedIn);

  await client.changePassword('old password', 'new password 1');
  await flush(); // the disconnect's session check ends before the CONNECT is answered
  await advance(500);
  assert.deepEqual(out, []);
  assert.notEqual(client.token, oldToken);
  assert.ok(server.live.has(client.token));
  const saved = JSON.parse(storage.getItem('turnkey.session'));
  assert.equal(saved.refreshToken, client.refreshToken);
  assert.equal(server.refreshTokens.get(saved.refreshToken), 'live');
  assert.ok(client.connected, 'the socket connected again');
  assert.equal(socket.duplicateConnects, 0);
  await client.getMe();
});

test('F4: a copy of a live tab\'s session is not used; a reload\'s is', kBounded, async () => {
  mock.timers.reset(); // The lock wait runs on real timers, kept short.
  const server = new FakeServer();
  const locks = new FakeLocks();
  const storage = new MemoryStorage();
  const options = { storage, tabLock: true, locks, tabLockWaitMs: 200 };
  const original = newClient(server, options);
  await original.login({ email: 'a@example.test', password: 'old password' });
  assert.equal(locks.names().length, 1);

  // Duplicated tab: same storage contents, the original still open.
  const duplicate = newClient(server, { ...options, storage: storage.copy() });
  const out = [];
  duplicate.on('loggedOut', (e) => out.push(e.reason));
  assert.equal(await duplicate.restoreSession(), null);
  assert.deepEqual(out, ['duplicate_tab']);
  assert.equal(server.count('/api/auth/refresh'), 0);
  assert.ok(server.live.has(original.token), 'the original session is untouched');

  // Reload of the original: its old document lets go a moment later.
  const reloaded = newClient(server, { ...options, storage });
  const restoring = reloaded.restoreSession();
  setTimeout(() => locks.drop(locks.names()[0]), 50);
  assert.ok(await restoring);
  assert.equal(locks.names().length, 1);
  await reloaded.refreshSession();
  assert.ok(reloaded.loggedIn);
  // Real timers here: stop the refresh timers, or they keep node running.
  await reloaded.logout();
  await original.logout();
});

test('F7: a call accepted but never answered ends after connectTimeoutMs', kBounded, async () => {
  globalThis.RTCPeerConnection = FakePeerConnection;
  const server = new FakeServer();
  let socket;
  const client = newClient(server, {
    io: () => (socket = new FakeSocket((event) => (event === 'initiateCall' ? { ok: true, callId: 'c1' } : { ok: true }))),
  });
  await client.login({ email: 'a@example.test', password: 'old password' });
  await client.connect();
  const stream = { getTracks: () => [] };
  const call = await client.call({ handle: 'bob' }, { stream });
  socket.fire('callAccepted', { callId: 'c1' });
  await advance(1_000);
  assert.equal(call.state, 'connecting');
  await advance(30_000);
  assert.equal(call.state, 'ended');
  assert.equal(call.endReason, 'connect_timeout');
  assert.equal(socket.sent('reportIce')[0]?.payload.state, 'failed');
  assert.equal(socket.sent('endCall')[0]?.payload.callId, 'c1');
});

test('F7: an unusable answer ends the call at once', kBounded, async () => {
  globalThis.RTCPeerConnection = FakePeerConnection;
  const server = new FakeServer();
  let socket;
  const client = newClient(server, {
    io: () => (socket = new FakeSocket((event) => (event === 'initiateCall' ? { ok: true, callId: 'c2' } : { ok: true }))),
  });
  await client.login({ email: 'a@example.test', password: 'old password' });
  await client.connect();
  const call = await client.call({ handle: 'bob' }, { stream: { getTracks: () => [] } });
  socket.fire('callAccepted', { callId: 'c2' });
  await advance(500);
  socket.fire('receiveAnswer', { callId: 'c2', answer: { type: 'answer', sdp: 'garbage' } });
  await advance(500);
  assert.equal(call.endReason, 'setup_failed');
  assert.equal(socket.sent('endCall').length, 1);
});

test('a call the other side ends before its media connected reports failed; one that rang does not', kBounded, async () => {
  globalThis.RTCPeerConnection = FakePeerConnection;
  const server = new FakeServer();
  let socket;
  let next = 0;
  const client = newClient(server, {
    io: () => (socket = new FakeSocket((event) => (event === 'initiateCall' ? { ok: true, callId: `c${++next}` } : { ok: true }))),
  });
  await client.login({ email: 'a@example.test', password: 'old password' });
  await client.connect();
  const stream = { getTracks: () => [] };

  // Accepted, still connecting when the callee gives up (its connect_timeout, then endCall).
  const failed = await client.call({ handle: 'bob' }, { stream });
  socket.fire('callAccepted', { callId: 'c1' });
  await advance(1_000);
  assert.equal(failed.state, 'connecting');
  socket.fire('callEnded', { callId: 'c1', reason: 'hangup', endedBy: 'bob-id' });
  await advance(500);
  assert.equal(failed.state, 'ended');
  assert.equal(failed.endReason, 'hangup');
  assert.deepEqual(socket.sent('reportIce').map((e) => [e.payload.callId, e.payload.state]), [['c1', 'failed']]);
  assert.equal(socket.sent('endCall').length, 0);

  // Never answered: nothing to report.
  const unanswered = await client.call({ handle: 'bob' }, { stream });
  socket.fire('callRejected', { callId: 'c2', reason: 'rejected' });
  await advance(500);
  assert.equal(unanswered.endReason, 'rejected');

  // Connected, then hung up by the other side: its one report was 'connected'.
  const connected = await client.call({ handle: 'bob' }, { stream });
  socket.fire('callAccepted', { callId: 'c3' });
  await advance(500);
  const pc = FakePeerConnection.last;
  pc.iceConnectionState = 'connected';
  pc.connectionState = 'connected';
  pc.dispatchEvent(new Event('iceconnectionstatechange'));
  pc.dispatchEvent(new Event('connectionstatechange'));
  await advance(2_500);
  assert.equal(connected.state, 'active');
  socket.fire('callEnded', { callId: 'c3', reason: 'hangup', endedBy: 'bob-id' });
  await advance(500);
  assert.deepEqual(socket.sent('reportIce').map((e) => [e.payload.callId, e.payload.state]),
    [['c1', 'failed'], ['c3', 'connected']]);
});

test('F8: call() while the socket is down fails at once and is not placed later', kBounded, async () => {
  const server = new FakeServer();
  let socket;
  const client = newClient(server, { io: () => (socket = new FakeSocket()) });
  await client.login({ email: 'a@example.test', password: 'old password' });
  await client.connect();
  socket.drop();
  await assert.rejects(client.call({ handle: 'bob' }, { stream: { getTracks: () => [] } }), (e) => e.code === 'OFFLINE');
  socket.up = true;
  socket.connect();
  await advance(1_000);
  assert.ok(client.connected);
  assert.equal(socket.sent('initiateCall').length, 0, 'no ghost call');
});

test('F8: a second call() while the first is being placed is refused', kBounded, async () => {
  const server = new FakeServer();
  let socket;
  const client = newClient(server, {
    io: () => (socket = new FakeSocket((event) => (event === 'initiateCall' ? { ok: true, callId: 'c3' } : { ok: true }))),
  });
  await client.login({ email: 'a@example.test', password: 'old password' });
  await client.connect();
  const stream = { getTracks: () => [] };
  const first = client.call({ handle: 'bob' }, { stream });
  await assert.rejects(client.call({ handle: 'bob' }, { stream }), (e) => e.code === 'BUSY');
  await first;
  assert.equal(socket.sent('initiateCall').length, 1);
});

test('a scheduled refresh that fails on the network is tried again, with back-off', kBounded, async () => {
  const server = new FakeServer({ ttlS: 20 });
  const client = newClient(server);
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  await client.login({ email: 'a@example.test', password: 'old password' });
  server.networkDown = 3; // the refresh at 16 s and the retries 1 s and 2 s after it
  await advance(16_000);
  assert.equal(server.count('/api/auth/refresh'), 1);
  await advance(1_000);
  assert.equal(server.count('/api/auth/refresh'), 2);
  await advance(2_000);
  assert.equal(server.count('/api/auth/refresh'), 3);
  await advance(4_000); // the third retry gets through, past the old token's expiry
  assert.equal(server.count('/api/auth/refresh'), 4);
  assert.deepEqual(errors, ['NETWORK', 'NETWORK', 'NETWORK']);
  assert.ok(client.loggedIn);
  await client.getMe(); // the new token counts
  // Back on the normal cadence: the next refresh 16 s after the one that worked.
  await advance(15_500);
  assert.equal(server.count('/api/auth/refresh'), 4);
  await advance(1_000);
  assert.equal(server.count('/api/auth/refresh'), 5);
});

test('a refresh that hangs on a dead link gives up after requestTimeoutMs and is tried again', kBounded, async () => {
  const server = new FakeServer({ ttlS: 20 });
  const client = newClient(server);
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  await client.login({ email: 'a@example.test', password: 'old password' });
  server.networkStall = 1; // the refresh at 16 s gets no answer at all
  await advance(16_000);
  assert.equal(server.count('/api/auth/refresh'), 1);
  await advance(15_000); // requestTimeoutMs: it fails instead of hanging (and blocking the next)
  assert.deepEqual(errors, ['NETWORK']);
  await advance(1_000);
  assert.equal(server.count('/api/auth/refresh'), 2);
  assert.ok(client.loggedIn);
  await client.getMe();
});

test('logout with an expired access token refreshes it and still reaches the server', kBounded, async () => {
  const server = new FakeServer({ ttlS: 20 });
  const client = newClient(server);
  await client.login({ email: 'a@example.test', password: 'old password' });
  server.networkDown = 100; // no refresh gets through: the token expires
  await advance(30_000, 1_000);
  server.networkDown = 0;
  const out = [];
  client.on('loggedOut', (e) => out.push(e.reason));
  await client.logout();
  assert.equal(server.count('/api/auth/logout'), 2, 'refused as expired, then sent again');
  assert.ok(server.revoked, 'the server ended the session');
  assert.deepEqual(out, ['logout']);
  assert.equal(client.loggedIn, false);
});

test('logout whose refresh finds the session revoked still says logout', kBounded, async () => {
  const server = new FakeServer({ ttlS: 20 });
  const client = newClient(server);
  await client.login({ email: 'a@example.test', password: 'old password' });
  server.networkDown = 100;
  await advance(30_000, 1_000);
  server.networkDown = 0;
  for (const key of server.refreshTokens.keys()) {
    server.refreshTokens.set(key, 'revoked'); // signed out elsewhere meanwhile
  }
  const out = [];
  client.on('loggedOut', (e) => out.push(e.reason));
  await client.logout();
  assert.deepEqual(out, ['logout']);
  assert.equal(client.loggedIn, false);
});

test('missedCalls and callHistory page with the documented query and report hasMore', kBounded, async () => {
  const server = new FakeServer();
  server.historySize = 27;
  const client = newClient(server);
  await client.login({ email: 'a@example.test', password: 'old password' });
  const first = await client.missedCalls({ type: 'video', limit: 20 });
  assert.equal(first.calls.length, 20);
  assert.equal(first.hasMore, true);
  const rest = await client.missedCalls({ limit: 20, skip: 20 });
  assert.equal(rest.calls.length, 7);
  assert.equal(rest.hasMore, false);
  await client.callHistory({ direction: 'incoming', type: 'audio', limit: 5 });
  const queries = server.calls.filter((c) => c.path.startsWith('/api/calls/')).map((c) => c.query);
  assert.deepEqual(queries, [
    { type: 'video', limit: '20' },
    { limit: '20', skip: '20' },
    { type: 'audio', direction: 'incoming', limit: '5' },
  ]);
});

// --- Keeping the media up, and calls while the socket is away ---------------------------------

const kStream = { getTracks: () => [] };
const kSdp = { sdp: 'v=0\r\n' };

/** A call in state 'active': outgoing (we are the caller) or incoming (we are the callee). */
async function activeCall(direction, extra = {}, serverOptions = {}) {
  globalThis.RTCPeerConnection = FakePeerConnection;
  const server = new FakeServer(serverOptions);
  let socket;
  const client = newClient(server, {
    io: () => (socket = new FakeSocket((event) => (event === 'initiateCall' ? { ok: true, callId: 'k1' } : { ok: true }))),
    ...extra,
  });
  await client.login({ email: 'a@example.test', password: 'old password' });
  await client.connect();
  let call;
  if (direction === 'outgoing') {
    call = await client.call({ handle: 'bob' }, { stream: kStream });
    socket.fire('callAccepted', { callId: 'k1' });
    await advance(250);
    socket.fire('receiveAnswer', { callId: 'k1', answer: { type: 'answer', ...kSdp } });
  } else {
    socket.fire('incomingCall', { callId: 'k1', callerId: 'bob-id', callType: 'audio', caller: { id: 'bob-id', handle: 'bob' } });
    call = client.calls.find((c) => c.id === 'k1');
    await call.accept({ stream: kStream });
    socket.fire('receiveOffer', { callId: 'k1', offer: { type: 'offer', ...kSdp } });
  }
  await advance(250);
  const pc = FakePeerConnection.last;
  pc.set('connected');
  await advance(3_000); // the 'connected' reportIce (its stats wait gives up after 2 s)
  assert.equal(socket.sent('reportIce').length, 1);
  assert.equal(call.state, 'active');
  const restarts = () => pc.offers.filter((o) => o.iceRestart).length;
  return { client, socket, call, pc, restarts };
}

test('caller: a restart that does not bring the media back is followed by the next, then the call ends as ice_failed', kBounded, async () => {
  const { socket, call, pc, restarts } = await activeCall('outgoing');
  pc.candidate('candidate:1 1 udp 1 192.0.2.7 50000 typ host');
  pc.dispatchEvent(Object.assign(new Event('icecandidateerror'), { url: 'turn:127.0.0.1:3478?transport=udp', errorCode: 701 }));
  pc.dispatchEvent(Object.assign(new Event('icecandidateerror'), { url: 'turn:127.0.0.1:3478?transport=udp', errorCode: 701 }));
  pc.set('disconnected');
  await advance(1_000);
  assert.equal(call.state, 'reconnecting');
  assert.equal(restarts(), 0, 'a short disconnection gets disconnectedGraceMs to heal');
  await advance(1_500);
  assert.equal(restarts(), 1);
  assert.equal(socket.sent('sendOffer').length, 2);
  // The new generation gathers nothing (TURN out of reach): Chrome leaves ICE 'disconnected'
  // and fails the connection. The restart at work keeps its time.
  pc.set('disconnected', 'failed');
  await advance(5_000);
  assert.equal(restarts(), 1);
  await advance(5_000);
  assert.equal(restarts(), 2, 'iceRestartTimeoutMs after the first');
  await advance(10_000);
  assert.equal(restarts(), 3);
  assert.equal(call.state, 'reconnecting');
  assert.equal(socket.sent('endCall').length, 0);
  await advance(10_000);
  assert.equal(call.state, 'ended');
  assert.equal(call.endReason, 'ice_failed');
  assert.equal(restarts(), 3, 'maxIceRestarts');
  assert.deepEqual(socket.sent('endCall').map((e) => e.payload), [{ callId: 'k1' }]);
  // The server is told the media failed before the endCall: the call ends ice_failed there too.
  const order = socket.emitted.map((e) => (e.event === 'reportIce' ? `reportIce ${e.payload.state}` : e.event))
    .filter((e) => e.startsWith('reportIce') || e === 'endCall');
  assert.deepEqual(order, ['reportIce connected', 'reportIce failed', 'endCall']);
  // The failed report says what this side gathered and which ICE server errors it met.
  const failed = socket.sent('reportIce')[1].payload;
  assert.deepEqual(failed.localCandidates, { host: 1, srflx: 0, relay: 0 });
  assert.deepEqual(failed.iceErrors, [{ url: 'turn:127.0.0.1:3478?transport=udp', errorCode: 701 }]);
  assert.equal(socket.sent('reportIce')[0].payload.iceErrors, undefined);
});

test('caller: new iceServers near the end of the call\'s TURN credential restart ICE while the media is up', kBounded, async () => {
  const { socket, call, restarts } = await activeCall('outgoing', {}, { iceTtlS: 100 });
  const fresh = { iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: 'x2', credential: 'y2' }], ttl: 100 };
  // Early in the credential's life (a socket reconnect brings a list too): nothing to renew.
  socket.fire('iceServers', fresh);
  await advance(250);
  assert.equal(restarts(), 0);
  // At 80% of the ttl, as the server sends it: one restart, the call stays active.
  await advance(77_000);
  socket.fire('iceServers', fresh);
  await advance(250);
  assert.equal(restarts(), 1);
  assert.equal(socket.sent('sendOffer').length, 2);
  assert.equal(call.state, 'active');
  // The same list again (or the next push of the new credential's early life): no more.
  socket.fire('iceServers', fresh);
  await advance(250);
  assert.equal(restarts(), 1);
});

test('caller: a newer list that came early renews the call\'s credential at 85% of its life, with no push', kBounded, async () => {
  const { socket, call, restarts } = await activeCall('outgoing', {}, { iceTtlS: 100 });
  const fresh = { iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: 'x2', credential: 'y2' }], ttl: 100 };
  // Half way (a reconnect's list, say): too early to restart, and the server's next push comes
  // at 80% of this list, 30 s after the call's credential has expired.
  await advance(50_000);
  socket.fire('iceServers', fresh);
  await advance(30_000);
  assert.equal(restarts(), 0);
  await advance(6_000);
  assert.equal(restarts(), 1);
  assert.equal(call.state, 'active');
  assert.equal(socket.sent('getIceServers').length, 0, 'the newer list was there already');
  await advance(40_000); // the renewed credential is at 40%: nothing more
  assert.equal(restarts(), 1);
});

test('callee: answering the caller\'s ICE restart, an aging TURN credential is fetched anew first', kBounded, async () => {
  const { socket, pc } = await activeCall('incoming', {}, { iceTtlS: 100 });
  const offer = (ufrag) => ({ callId: 'k1', offer: { type: 'offer', sdp: `v=0\r\na=ice-ufrag:${ufrag}\r\n` } });
  socket.fire('receiveOffer', offer('r1')); // a restart early in the credential's life: as it is
  await advance(250);
  assert.equal(socket.sent('getIceServers').length, 0);
  assert.equal(socket.sent('sendAnswer').length, 2);
  await advance(40_000);
  socket.fire('receiveOffer', offer('r1')); // a re-offer, not a restart: nothing gathered anew
  await advance(250);
  assert.equal(socket.sent('getIceServers').length, 0);
  socket.server = (event) => (event === 'getIceServers'
    ? { ok: true, iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: 'x2', credential: 'y2' }], ttl: 100 }
    : undefined);
  pc.log.length = 0;
  socket.fire('receiveOffer', offer('r2'));
  await advance(250);
  assert.equal(socket.sent('getIceServers').length, 1);
  assert.equal(socket.sent('sendAnswer').length, 4);
  // The new servers are in place before the offer that restarts ICE is applied.
  assert.deepEqual(pc.log.slice(-2), ['setConfiguration', 'setRemoteDescription']);
});

test('a side that gives up on lost media ends at once, without waiting for its reportIce ack', kBounded, async () => {
  const { socket, call, pc } = await activeCall('incoming');
  socket.server = (event) => (event === 'reportIce' ? kNoAck : undefined); // a silently dead socket
  pc.set('disconnected', 'failed');
  await advance(20_000);
  await advance(500);
  assert.equal(call.state, 'ended');
  assert.equal(call.endReason, 'ice_failed');
  const order = socket.emitted.map((e) => (e.event === 'reportIce' ? `reportIce ${e.payload.state}` : e.event))
    .filter((e) => e.startsWith('reportIce') || e === 'endCall');
  assert.deepEqual(order, ['reportIce connected', 'reportIce failed', 'endCall']);
});

test('caller: connectionState failed restarts at once; media back resets the count', kBounded, async () => {
  const { call, pc, restarts } = await activeCall('outgoing');
  pc.set('disconnected', 'failed');
  await advance(250);
  assert.equal(restarts(), 1, 'no grace for a failed connection');
  assert.equal(call.state, 'reconnecting');
  await advance(10_000);
  assert.equal(restarts(), 2);
  pc.set('connected', 'connected');
  await advance(250);
  assert.equal(call.state, 'active');
  await advance(60_000);
  assert.equal(restarts(), 2);
  // Down again later: three more restarts in a row before it gives up.
  pc.set('failed', 'failed');
  await advance(250);
  await advance(20_000);
  assert.equal(restarts(), 5);
  assert.equal(call.state, 'reconnecting');
  await advance(10_000);
  assert.equal(call.endReason, 'ice_failed');
});

test('callee: media down and no restart offer from the caller in time ends the call as ice_failed', kBounded, async () => {
  const { socket, call, pc } = await activeCall('incoming');
  pc.set('disconnected', 'failed');
  await advance(15_000);
  assert.equal(call.state, 'reconnecting');
  // The caller's restart: answered, and the wait starts over.
  socket.fire('receiveOffer', { callId: 'k1', offer: { type: 'offer', ...kSdp } });
  await advance(250);
  assert.equal(socket.sent('sendAnswer').length, 2);
  await advance(19_000);
  assert.equal(call.state, 'reconnecting');
  await advance(1_000);
  assert.equal(call.state, 'ended');
  assert.equal(call.endReason, 'ice_failed');
  assert.deepEqual(socket.sent('endCall').map((e) => e.payload), [{ callId: 'k1' }]);
  assert.equal(socket.sent('sendOffer').length, 0, 'the callee never offers');
});

test('callee: a restart offer that brings the media back keeps the call', kBounded, async () => {
  const { socket, call, pc } = await activeCall('incoming');
  pc.set('disconnected');
  await advance(3_000);
  socket.fire('receiveOffer', { callId: 'k1', offer: { type: 'offer', ...kSdp } });
  await advance(250);
  pc.set('checking', 'connecting');
  await advance(2_000);
  pc.set('connected', 'connected');
  await advance(60_000);
  assert.equal(call.state, 'active');
  assert.equal(socket.sent('endCall').length, 0);
});

test('a call whose socket stays down ends as connection_lost after callOfflineLimitMs; only its endCall is sent later', kBounded, async () => {
  const { socket, call, pc, restarts } = await activeCall('outgoing');
  const before = socket.emitted.length;
  socket.drop();
  pc.set('disconnected');
  await advance(2_500);
  assert.equal(restarts(), 0, 'no restart while no offer can travel');
  pc.candidate(); // gathered meanwhile: socket.io-client holds it
  assert.deepEqual(socket.sendBuffer.map((p) => p.data[0]), ['sendIceCandidate']);
  await advance(27_000);
  assert.equal(call.state, 'reconnecting');
  await advance(500);
  assert.equal(call.state, 'ended');
  assert.equal(call.endReason, 'connection_lost');
  assert.equal(call.endedBy, 'u1');
  // The candidate is dropped; a hang-up waits, in case the server still has the call live.
  assert.deepEqual(socket.sendBuffer.map((p) => p.data), [['endCall', { callId: 'k1' }]]);
  socket.up = true;
  socket.connect();
  await advance(1_000);
  assert.ok(socket.connected);
  assert.deepEqual(socket.emitted.slice(before).map((e) => e.event), ['endCall'],
    'only the hang-up of the call is sent');
});

test('a short socket loss: the restart waits for the socket, goes out once it is back, and the call goes on', kBounded, async () => {
  const { socket, call, pc, restarts } = await activeCall('outgoing');
  socket.drop();
  pc.set('disconnected');
  await advance(5_000);
  assert.equal(restarts(), 0);
  socket.up = true;
  socket.connect();
  await advance(250);
  assert.deepEqual(socket.sent('rejoinCall').map((e) => e.payload), [{ callId: 'k1' }]);
  assert.equal(restarts(), 1, 'restarted once rejoinCall was accepted');
  pc.set('connected', 'connected');
  await advance(40_000);
  assert.equal(call.state, 'active', 'not ended by the offline limit');
});

// A logged-in client with its socket connected, on fake peer connections; its socket's server
// answers `initiateCall` with call k1 and everything else with ok.
async function connectedClient() {
  globalThis.RTCPeerConnection = FakePeerConnection;
  let socket;
  const client = newClient(new FakeServer(), {
    io: () => (socket = new FakeSocket((event) => (event === 'initiateCall' ? { ok: true, callId: 'k1' } : { ok: true }))),
  });
  await client.login({ email: 'a@example.test', password: 'old password' });
  await client.connect();
  return { client, socket };
}

// Our call to bob, accepted and answered (ICE not connected yet).
async function answeredCall(client, socket) {
  const call = await client.call({ handle: 'bob' }, { stream: kStream });
  socket.fire('callAccepted', { callId: 'k1' });
  await advance(250);
  socket.fire('receiveAnswer', { callId: 'k1', answer: { type: 'answer', ...kSdp } });
  return call;
}

// bob's call to us, accepted, with his offer in (ICE not connected yet).
async function acceptedIncomingCall(client, socket) {
  socket.fire('incomingCall', { callId: 'k1', callerId: 'bob-id', callType: 'audio', caller: { id: 'bob-id', handle: 'bob' } });
  const call = client.calls.find((c) => c.id === 'k1');
  await call.accept({ stream: kStream });
  socket.fire('receiveOffer', { callId: 'k1', offer: { type: 'offer', ...kSdp } });
  await advance(250);
  return call;
}

// An active outgoing call whose media fails; its restart offer goes into a socket that is dead
// (nobody knows yet) and is lost, then the socket drops.
async function lostRestartOffer() {
  const active = await activeCall('outgoing');
  const errors = [];
  active.call.on('error', (e) => errors.push(e));
  active.socket.server = (event) => (event === 'sendOffer' ? kNoAck : { ok: true });
  active.pc.set('failed', 'failed');
  await advance(250);
  assert.equal(active.restarts(), 1);
  active.socket.drop();
  return { ...active, errors };
}

test('a restart offer sent into a socket that was already dead goes out again once the socket is back', kBounded, async () => {
  const { socket, call, pc, restarts, errors } = await lostRestartOffer();
  await advance(2_000);
  socket.server = undefined;
  socket.up = true;
  socket.connect();
  await advance(250);
  assert.deepEqual(socket.sent('rejoinCall').map((e) => e.payload), [{ callId: 'k1' }]);
  assert.equal(restarts(), 2, 'restarted again once rejoinCall was accepted, not 10 s later');
  assert.equal(socket.sent('sendOffer').length, 3); // the call's offer, the lost one, the new one
  pc.set('connected', 'connected');
  await advance(15_000); // the lost offer's ack timeout passes without ending anything
  assert.equal(call.state, 'active');
  assert.equal(restarts(), 2);
  assert.deepEqual(errors, [], 'the restart let go reports nothing');
});

test('a restart offer whose ack times out while the socket is down is no error: it goes again when the socket is back', kBounded, async () => {
  const { socket, call, pc, restarts, errors } = await lostRestartOffer();
  await advance(12_000); // past the ack timeout, the socket still away
  assert.deepEqual(errors, []);
  assert.equal(call.state, 'reconnecting');
  socket.server = undefined;
  socket.up = true;
  socket.connect();
  await advance(250);
  assert.equal(restarts(), 2, 'restarted once rejoinCall was accepted');
  pc.set('connected', 'connected');
  await advance(1_000);
  assert.equal(call.state, 'active');
  assert.deepEqual(errors, []);
});

test('a renewal restart lost with the socket is sent again once the socket is back', kBounded, async () => {
  const { socket, call, restarts } = await activeCall('outgoing', {}, { iceTtlS: 100 });
  const fresh = { iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: 'x2', credential: 'y2' }], ttl: 100 };
  await advance(77_000);
  socket.server = (event) => (event === 'sendOffer' ? kNoAck : { ok: true });
  socket.fire('iceServers', fresh); // the push at 80%: the renewal's offer goes into a dead socket
  await advance(250);
  assert.equal(restarts(), 1);
  socket.drop();
  await advance(2_000);
  socket.server = undefined;
  socket.up = true;
  socket.connect();
  await advance(250);
  assert.equal(restarts(), 2, 'the renewal went out again');
  assert.equal(socket.sent('sendOffer').length, 3);
  assert.equal(call.state, 'active');
});

test('the other side ends an answered call that never connected: failed is reported though getStats never settles', kBounded, async () => {
  const { client, socket } = await connectedClient();
  const call = await acceptedIncomingCall(client, socket);
  const pc = FakePeerConnection.last;
  pc.getStats = () => new Promise(() => {}); // Firefox: pending at close(), never settled
  pc.dispatchEvent(Object.assign(new Event('icecandidateerror'), { url: 'turn:127.0.0.1:3478?transport=udp', errorCode: 401 }));
  socket.fire('callEnded', { callId: 'k1', endedBy: 'bob-id', reason: 'hangup' });
  assert.equal(call.state, 'ended');
  await advance(1_500);
  const reports = socket.sent('reportIce').map((e) => e.payload);
  assert.equal(reports.length, 1);
  assert.equal(reports[0].state, 'failed');
  assert.deepEqual(reports[0].iceErrors, [{ url: 'turn:127.0.0.1:3478?transport=udp', errorCode: 401 }]);
});

test('a hang-up on "Connecting..." reports failed before its endCall, flagged as ended before ICE', kBounded, async () => {
  const { client, socket } = await connectedClient();
  const call = await answeredCall(client, socket);
  await advance(3_000);
  assert.equal(call.state, 'connecting');
  await call.hangup();
  const order = socket.emitted.map((e) => e.event).filter((e) => e === 'reportIce' || e === 'endCall');
  assert.deepEqual(order, ['reportIce', 'endCall']);
  const report = socket.sent('reportIce')[0].payload;
  assert.equal(report.state, 'failed');
  assert.equal(report.endedBeforeIce, true);
  assert.ok(report.gatheringMs >= 3_000 && report.gatheringMs < 4_000, String(report.gatheringMs));
});

test('a remote candidate ICE met as peer-reflexive is reported with the type the peer signaled (Firefox keeps prflx)', kBounded, async () => {
  const { client, socket } = await connectedClient();
  await answeredCall(client, socket);
  await advance(250);
  const pc = FakePeerConnection.last;
  pc.getStats = async () => new Map([
    ['t', { id: 't', type: 'transport', selectedCandidatePairId: 'p' }],
    ['p', { id: 'p', type: 'candidate-pair', localCandidateId: 'l', remoteCandidateId: 'r', state: 'succeeded', currentRoundTripTime: 0.02 }],
    ['l', { id: 'l', type: 'local-candidate', candidateType: 'host', address: '10.0.0.2', port: 40000 }],
    ['r', { id: 'r', type: 'remote-candidate', candidateType: 'prflx', address: '203.0.113.9', port: 61000 }],
  ]);
  socket.fire('receiveIceCandidate', { callId: 'k1', from: 'bob-id',
    candidate: { candidate: 'candidate:7 1 udp 16777215 203.0.113.9 61000 typ relay raddr 0.0.0.0 rport 0', sdpMid: '0' } });
  await advance(50);
  pc.set('connected');
  await advance(250); // no 2 s wait for a retype that Firefox never does
  const reports = socket.sent('reportIce').map((e) => e.payload);
  assert.equal(reports.length, 1);
  assert.equal(reports[0].remoteCandidateType, 'relay');
  assert.equal(reports[0].localCandidateType, 'host');
});

test('a hang-up while the socket is down keeps its endCall and drops the rest of the call', kBounded, async () => {
  const { socket, call, pc } = await activeCall('outgoing');
  const before = socket.emitted.length;
  socket.drop();
  pc.candidate();
  const done = call.hangup();
  assert.equal(call.endReason, 'hangup');
  assert.deepEqual(socket.sendBuffer.map((p) => p.data[0]), ['endCall']);
  socket.up = true;
  socket.connect();
  await advance(250);
  await done;
  assert.deepEqual(socket.emitted.slice(before).map((e) => e.event), ['endCall']);
});

// --- A gathering that yields no candidate (TURN out of reach, relay only) ---------------------

// Chromium completes such a gathering and then leaves ICE in 'checking' for good: without a
// verdict of its own the call waited connectTimeoutMs (30 s) and ended with no reason.
test('no local candidate at all once gathering completes: the call fails at once, reported as TURN out of reach', kBounded, async () => {
  const { client, socket } = await connectedClient();
  const call = await answeredCall(client, socket);
  await advance(250);
  const pc = FakePeerConnection.last;
  pc.gather('gathering');
  pc.turnError(701);
  await advance(5_000);
  assert.equal(call.state, 'connecting', 'not while gathering');
  pc.gather('complete');
  await advance(1_000);
  assert.equal(call.state, 'ended');
  assert.equal(call.endReason, 'ice_failed');
  const reports = socket.sent('reportIce').map((e) => e.payload);
  assert.equal(reports.length, 1);
  assert.equal(reports[0].state, 'failed');
  assert.deepEqual(reports[0].localCandidates, { host: 0, srflx: 0, relay: 0 });
  assert.deepEqual(reports[0].iceErrors, [{ url: 'turn:127.0.0.1:3478?transport=udp', errorCode: 701 }]);
  assert.equal(reports[0].iceGatheringState, 'complete');
  assert.equal(reports[0].endedBeforeIce, undefined);
  assert.equal(iceFailureCause(reports[0]), 'turn_unreachable');
  assert.deepEqual(socket.sent('endCall').map((e) => e.payload), [{ callId: 'k1' }]);
});

test('the callee too: an accepted call whose gathering completes empty ends as ice_failed, not after 30 s', kBounded, async () => {
  const { client, socket } = await connectedClient();
  const call = await acceptedIncomingCall(client, socket);
  const pc = FakePeerConnection.last;
  pc.gatherNothing(401);
  await advance(1_000);
  assert.equal(call.endReason, 'ice_failed');
  assert.equal(iceFailureCause(call.iceReport), 'turn_auth');
  assert.equal(socket.sent('endCall').length, 1);
});

test('a candidate right before or right after "complete" keeps the call; a restart\'s gathering is judged on its own', kBounded, async () => {
  const { client, socket } = await connectedClient();
  const call = await answeredCall(client, socket);
  await advance(250);
  const pc = FakePeerConnection.last;
  // A candidate event that comes a moment after the state change.
  pc.gather('gathering');
  pc.gather('complete');
  await advance(100, 100);
  pc.candidate('candidate:1 1 udp 1 192.0.2.7 50000 typ host');
  await advance(2_000);
  assert.equal(call.state, 'connecting');
  // A candidate just before it.
  pc.gather('gathering');
  pc.candidate('candidate:2 1 udp 1 192.0.2.7 50001 typ host');
  pc.gather('complete');
  await advance(2_000);
  assert.equal(call.state, 'connecting');
  // A gathering that completed empty and was replaced by a restart's before the verdict.
  pc.gather('gathering');
  pc.gather('complete');
  pc.gather('gathering');
  await advance(5_000);
  assert.equal(call.state, 'connecting', 'not while the restart gathers');
  // The restart's gathering yields nothing: earlier generations' candidates do not count.
  pc.gather('complete');
  await advance(1_000);
  assert.equal(call.endReason, 'ice_failed');
  assert.deepEqual(socket.sent('reportIce')[0].payload.localCandidates, { host: 2, srflx: 0, relay: 0 });
});

test('a call that had connected and whose restart gathers nothing is left to the restart\'s timer', kBounded, async () => {
  const { call, pc, restarts } = await activeCall('outgoing');
  pc.set('disconnected');
  await advance(2_500);
  assert.equal(restarts(), 1);
  pc.gather('gathering');
  pc.gather('complete');
  await advance(2_000);
  assert.equal(call.state, 'reconnecting');
  await advance(8_000);
  assert.equal(restarts(), 2);
});
