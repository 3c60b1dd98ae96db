#!/usr/bin/env node
// The baseline bench/signaling/run.py measures turnkey against: a Node.js
// socket.io 4 server of our own with turnkey's call contract (DESIGN.md
// section 5) kept in memory, written the way such servers are usually written
// (one process, socket.io's defaults, no database).
//
//   node node_server.js [--listen 127.0.0.1:0] [--jwt-secret S] [--ring-timeout-ms 30000] ...
//
// Prints "listening IP:PORT" once bound. REST: POST /api/auth/register
// {email, password, handle?, displayName?} and POST /api/auth/login {email,
// password} answer {success, message, data: {token, expiresIn, user}} like
// turnkey; the token is an HS256 JWT the Socket.IO CONNECT `auth.token` must
// carry. Socket.IO events: initiateCall, acceptCall, rejectCall, endCall,
// sendOffer, sendAnswer, sendIceCandidate, reportIce, getIceServers, with an
// ack on every event and callError on failure; iceServers on connect.
// Users, presence and calls live in this process only; ended calls are
// counted, not stored (the baseline is "without any database").
//
// Passwords are salted SHA-256 here, not argon2id: registration cost is not
// what the bench compares, and it keeps setting up thousands of users quick.
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');
const { Server } = require('socket.io');

function parseArgs(argv) {
  const options = {
    listen: '127.0.0.1:0',
    jwtSecret: crypto.randomBytes(32).toString('hex'),
    accessTtlS: 3600,
    ringTimeoutMs: 30000,
    reconnectGraceMs: 10000,
    endedRetentionMs: 60000,
    // initiateCall token buckets, turnkey's defaults (signal/call_manager.h);
    // a rate of 0 means no limit.
    socketBurst: 5,
    socketRate: 0.5,
    userBurst: 10,
    userRate: 1,
    // Every client event, per socket (signal/socketio_server.h); 0 = off.
    eventRate: 50,
    eventBurst: 100,
    iceUrls: [],
    iceSecret: '',
    iceTtlS: 24 * 3600,
  };
  const names = {
    '--listen': ['listen', String],
    '--jwt-secret': ['jwtSecret', String],
    '--access-ttl-s': ['accessTtlS', Number],
    '--ring-timeout-ms': ['ringTimeoutMs', Number],
    '--reconnect-grace-ms': ['reconnectGraceMs', Number],
    '--socket-burst': ['socketBurst', Number],
    '--socket-rate': ['socketRate', Number],
    '--user-burst': ['userBurst', Number],
    '--user-rate': ['userRate', Number],
    '--event-rate': ['eventRate', Number],
    '--event-burst': ['eventBurst', Number],
    '--ice-urls': ['iceUrls', (v) => v.split(',').filter(Boolean)],
    '--ice-secret': ['iceSecret', String],
    '--ice-ttl-s': ['iceTtlS', Number],
  };
  for (let i = 2; i < argv.length; i += 2) {
    const spec = names[argv[i]];
    if (!spec || i + 1 >= argv.length) {
      throw new Error(`unknown option or missing value: ${argv[i]}`);
    }
    const value = spec[1](argv[i + 1]);
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new Error(`${argv[i]}: not a number`);
    }
    options[spec[0]] = value;
  }
  return options;
}

const options = parseArgs(process.argv);

// ---- Tokens: HS256 JWTs (RFC 7519), as turnkey's access tokens are.

const base64url = (data) => Buffer.from(data).toString('base64url');
const JWT_HEADER = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

function signToken(userId) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: userId,
    typ: 'access',
    iat: now,
    exp: now + options.accessTtlS,
    jti: crypto.randomBytes(12).toString('hex'),
  };
  const body = `${JWT_HEADER}.${base64url(JSON.stringify(claims))}`;
  const signature = crypto.createHmac('sha256', options.jwtSecret).update(body).digest();
  return `${body}.${base64url(signature)}`;
}

// The claims, or a string code as turnkey's CONNECT_ERROR data.code.
function verifyToken(token) {
  if (typeof token !== 'string') {
    return 'TOKEN_INVALID';
  }
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== JWT_HEADER) {
    return 'TOKEN_INVALID';
  }
  const expected = crypto
    .createHmac('sha256', options.jwtSecret)
    .update(`${parts[0]}.${parts[1]}`)
    .digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    return 'TOKEN_INVALID';
  }
  let claims;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return 'TOKEN_INVALID';
  }
  if (claims.typ !== 'access' || typeof claims.sub !== 'string') {
    return 'TOKEN_INVALID';
  }
  if (!(claims.exp > Date.now() / 1000)) {
    return 'TOKEN_EXPIRED';
  }
  return claims;
}

// TURN REST credentials (DESIGN.md section 4): username "<expiry>:<user>",
// password base64(HMAC-SHA1(secret, username)).
function iceServers(userId) {
  const ttl = options.iceTtlS;
  if (!options.iceSecret) {
    return { iceServers: options.iceUrls.length ? [{ urls: options.iceUrls }] : [], ttl };
  }
  const username = `${Math.floor(Date.now() / 1000) + ttl}:${userId}`;
  const credential = crypto.createHmac('sha1', options.iceSecret).update(username).digest('base64');
  const stun = options.iceUrls.filter((u) => u.startsWith('stun'));
  const turn = options.iceUrls.filter((u) => u.startsWith('turn'));
  const list = [];
  if (stun.length) {
    list.push({ urls: stun });
  }
  if (turn.length) {
    list.push({ urls: turn, username, credential });
  }
  return { iceServers: list, ttl };
}

// ---- Accounts, in memory.

const users = new Map(); // id -> user
const usersByEmail = new Map(); // lower-case email -> user
const usersByHandle = new Map(); // lower-case handle -> user

function hashPassword(password, salt) {
  return crypto.createHash('sha256').update(salt).update(password).digest('hex');
}

function userJson(user) {
  return { id: user.id, handle: user.handle, displayName: user.displayName };
}

function session(user) {
  return { token: signToken(user.id), expiresIn: options.accessTtlS, user: userJson(user) };
}

function register(body) {
  const { email, password } = body;
  if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email) || email.length > 254) {
    return [400, 'email is invalid'];
  }
  if (typeof password !== 'string' || password.length < 8 || password.length > 1024) {
    return [400, 'password must be 8 to 1024 characters'];
  }
  const key = email.toLowerCase();
  if (usersByEmail.has(key)) {
    return [409, 'Email already registered'];
  }
  let handle = body.handle;
  if (handle === undefined) {
    handle = `${email.split('@')[0].replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 24)}${
      crypto.randomInt(10000)}`;
  }
  if (typeof handle !== 'string' || !/^[A-Za-z0-9_.-]{3,32}$/.test(handle)) {
    return [400, 'handle is invalid'];
  }
  if (usersByHandle.has(handle.toLowerCase())) {
    return [409, 'Handle taken'];
  }
  const salt = crypto.randomBytes(16).toString('hex');
  const user = {
    id: crypto.randomUUID(),
    email,
    handle,
    displayName: typeof body.displayName === 'string' ? body.displayName : handle,
    salt,
    passwordHash: hashPassword(password, salt),
  };
  users.set(user.id, user);
  usersByEmail.set(key, user);
  usersByHandle.set(handle.toLowerCase(), user);
  return [201, 'Registered', session(user)];
}

function login(body) {
  const user = typeof body.email === 'string' ? usersByEmail.get(body.email.toLowerCase()) : null;
  if (!user || typeof body.password !== 'string' ||
      hashPassword(body.password, user.salt) !== user.passwordHash) {
    return [401, 'Invalid email or password'];
  }
  return [200, 'Logged in', session(user)];
}

function handleHttp(req, res) {
  const routes = { '/api/auth/register': register, '/api/auth/login': login };
  const route = routes[req.url];
  const reply = (status, message, data) => {
    const body = JSON.stringify({ success: status < 300, message, data: data ?? null });
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  };
  if (req.url === '/healthz') {
    reply(200, 'ok');
    return;
  }
  if (!route || req.method !== 'POST') {
    reply(404, 'Not found');
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > 64 * 1024) {
      reply(413, 'Body too large');
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      reply(400, 'Invalid JSON');
      return;
    }
    if (body === null || typeof body !== 'object') {
      reply(400, 'Invalid JSON');
      return;
    }
    const [status, message, data] = route(body);
    reply(status, message, data);
  });
}

// ---- Token buckets: `rate` per second, at most `burst` saved; start full.

class TokenBucket {
  constructor(burst, now) {
    this.tokens = burst;
    this.last = now;
  }

  tryTake(now, rate, burst) {
    if (rate <= 0) {
      return true; // no limit
    }
    this.tokens = Math.min(burst, this.tokens + ((now - this.last) / 1000) * rate);
    this.last = now;
    if (this.tokens < 1) {
      return false;
    }
    this.tokens -= 1;
    return true;
  }
}

// ---- Presence and calls.

const socketsOf = new Map(); // user id -> Set of sockets
const calls = new Map(); // call id -> call
const callOfUser = new Map(); // user id -> call id of their live call
const ended = new Map(); // call id -> {callerId, calleeId, until}
const userBuckets = new Map(); // user id -> TokenBucket
const counts = { calls: 0, byStatus: {} };

const noop = () => {};

function emitToUser(userId, event, payload, except) {
  const sockets = socketsOf.get(userId);
  if (!sockets) {
    return;
  }
  for (const s of sockets) {
    if (s !== except) {
      s.emit(event, payload);
    }
  }
}

function fail(socket, ack, error, callId) {
  socket.emit('callError', { error, callId: callId ?? null });
  const answer = { ok: false, error };
  if (callId) {
    answer.callId = callId;
  }
  ack(answer);
}

function callEndedJson(call, endedBy, reason) {
  return { callId: call.id, endedBy: endedBy || null, reason };
}

function finish(call, status) {
  clearTimeout(call.ringTimer);
  clearTimeout(call.graceTimer);
  for (const user of [call.callerId, call.calleeId]) {
    if (callOfUser.get(user) === call.id) {
      callOfUser.delete(user);
    }
  }
  calls.delete(call.id);
  ended.set(call.id, {
    callerId: call.callerId,
    calleeId: call.calleeId,
    until: Date.now() + options.endedRetentionMs,
  });
  counts.calls += 1;
  counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1;
}

// Forget ended call ids after the retention (Map keeps insertion order).
setInterval(() => {
  const now = Date.now();
  for (const [id, tomb] of ended) {
    if (tomb.until > now) {
      break;
    }
    ended.delete(id);
  }
}, 1000).unref();

// The live call `payload.callId` names and which side `socket` is on, or
// null after failing the event.
function resolve(socket, payload, ack) {
  const callId = payload && typeof payload.callId === 'string' && payload.callId ? payload.callId : null;
  if (!callId) {
    fail(socket, ack, 'callId required');
    return null;
  }
  const user = socket.data.userId;
  const call = calls.get(callId);
  if (!call) {
    const tomb = ended.get(callId);
    if (!tomb) {
      fail(socket, ack, 'Call not found', callId);
    } else {
      const participant = user === tomb.callerId || user === tomb.calleeId;
      fail(socket, ack, participant ? 'Call already processed' : 'Not authorized', callId);
    }
    return null;
  }
  if (user === call.callerId) {
    return { call, side: 'caller' };
  }
  if (user === call.calleeId) {
    return { call, side: 'callee' };
  }
  fail(socket, ack, 'Not authorized', callId);
  return null;
}

function acceptRinging(call, socket, ack, glare) {
  call.state = 'active';
  call.answeredAt = Date.now();
  clearTimeout(call.ringTimer);
  call.calleeSocket = socket;
  socket.emit('callAcceptedConfirm', {
    callId: call.id, callerId: call.callerId, callType: call.callType,
  });
  call.callerSocket?.emit('callAccepted', { callId: call.id, receiverId: call.calleeId });
  emitToUser(call.calleeId, 'callAnsweredElsewhere', { callId: call.id }, socket);
  for (const [event, message] of call.held.splice(0)) {
    socket.emit(event, message);
  }
  const answer = { ok: true, callId: call.id, callerId: call.callerId, callType: call.callType };
  if (glare) {
    answer.glare = true;
  }
  ack(answer);
}

function rejectRinging(call, socket, ack, confirmEvent) {
  socket.emit(confirmEvent, { callId: call.id });
  call.callerSocket?.emit('callRejected', {
    callId: call.id, receiverId: call.calleeId, reason: 'rejected',
  });
  emitToUser(call.calleeId, 'callEnded', callEndedJson(call, call.calleeId, 'rejected'), socket);
  finish(call, 'rejected');
  ack({ ok: true, callId: call.id });
}

const handlers = {
  initiateCall(socket, payload, ack) {
    const user = socket.data.userId;
    const now = Date.now();
    if (!socket.data.initiateBucket.tryTake(now, options.socketRate, options.socketBurst)) {
      fail(socket, ack, 'Rate limited');
      return;
    }
    let userBucket = userBuckets.get(user);
    if (!userBucket) {
      userBucket = new TokenBucket(options.userBurst, now);
      userBuckets.set(user, userBucket);
    }
    if (!userBucket.tryTake(now, options.userRate, options.userBurst)) {
      fail(socket, ack, 'Rate limited');
      return;
    }
    const p = payload && typeof payload === 'object' ? payload : {};
    let receiver;
    if (typeof p.receiverId === 'string' && p.receiverId) {
      receiver = users.get(p.receiverId);
    } else if (typeof p.receiverHandle === 'string' && p.receiverHandle) {
      receiver = usersByHandle.get(p.receiverHandle.toLowerCase());
    } else {
      fail(socket, ack, 'receiverId required');
      return;
    }
    const callType = p.callType === undefined ? 'audio' : p.callType;
    if (callType !== 'audio' && callType !== 'video') {
      fail(socket, ack, 'Invalid callType');
      return;
    }
    if (!receiver) {
      fail(socket, ack, 'Receiver not found');
      return;
    }
    if (receiver.id === user) {
      fail(socket, ack, 'Cannot call yourself');
      return;
    }
    const mine = calls.get(callOfUser.get(user));
    if (mine) {
      if (mine.state === 'ringing' && mine.calleeId === user && mine.callerId === receiver.id) {
        acceptRinging(mine, socket, ack, true); // glare: both called each other
        return;
      }
      fail(socket, ack, 'Already in a call', mine.id);
      return;
    }
    const call = {
      id: crypto.randomBytes(16).toString('hex'),
      callerId: user,
      calleeId: receiver.id,
      callType,
      state: 'ringing',
      createdAt: now,
      answeredAt: null,
      callerSocket: socket,
      calleeSocket: null,
      held: [],
      ringTimer: null,
      graceTimer: null,
    };
    calls.set(call.id, call);
    if (!socketsOf.has(receiver.id)) {
      socket.emit('userNotAvailable', { callId: call.id, receiverId: receiver.id });
      finish(call, 'unavailable');
      fail(socket, ack, 'User not available', call.id);
      return;
    }
    if (callOfUser.has(receiver.id)) {
      socket.emit('callRejected', { callId: call.id, receiverId: receiver.id, reason: 'busy' });
      finish(call, 'busy');
      fail(socket, ack, 'User busy', call.id);
      return;
    }
    callOfUser.set(user, call.id);
    callOfUser.set(receiver.id, call.id);
    call.ringTimer = setTimeout(() => {
      call.callerSocket?.emit('callTimeout', { callId: call.id, receiverId: call.calleeId });
      emitToUser(call.calleeId, 'callEnded', callEndedJson(call, null, 'timeout'));
      finish(call, 'missed');
    }, options.ringTimeoutMs);
    socket.emit('callInitiated', { callId: call.id, receiverId: receiver.id, callType });
    const caller = users.get(user);
    emitToUser(receiver.id, 'incomingCall', {
      callId: call.id, callerId: user, callType, caller: userJson(caller),
    });
    ack({ ok: true, callId: call.id, receiverId: receiver.id, callType });
  },

  acceptCall(socket, payload, ack) {
    const target = resolve(socket, payload, ack);
    if (!target) {
      return;
    }
    if (target.side !== 'callee') {
      fail(socket, ack, 'Not authorized', target.call.id);
    } else if (target.call.state !== 'ringing') {
      fail(socket, ack, 'Call already processed', target.call.id);
    } else {
      acceptRinging(target.call, socket, ack, false);
    }
  },

  rejectCall(socket, payload, ack) {
    const target = resolve(socket, payload, ack);
    if (!target) {
      return;
    }
    if (target.side !== 'callee') {
      fail(socket, ack, 'Not authorized', target.call.id);
    } else if (target.call.state !== 'ringing') {
      fail(socket, ack, 'Call already processed', target.call.id);
    } else {
      rejectRinging(target.call, socket, ack, 'callRejectedConfirm');
    }
  },

  endCall(socket, payload, ack) {
    const target = resolve(socket, payload, ack);
    if (!target) {
      return;
    }
    const { call, side } = target;
    if (call.state === 'ringing' && side === 'callee') {
      rejectRinging(call, socket, ack, 'callEndedConfirm');
      return;
    }
    const ringing = call.state === 'ringing';
    const reason = ringing ? 'cancelled' : 'hangup';
    socket.emit('callEndedConfirm', { callId: call.id });
    const message = callEndedJson(call, socket.data.userId, reason);
    for (const s of [call.callerSocket, call.calleeSocket]) {
      if (s && s !== socket) {
        s.emit('callEnded', message);
      }
    }
    if (ringing) {
      emitToUser(call.calleeId, 'callEnded', message, socket);
    }
    finish(call, ringing ? 'cancelled' : 'completed');
    ack({ ok: true, callId: call.id });
  },

  reportIce(socket, payload, ack) {
    const target = resolve(socket, payload, ack);
    if (!target) {
      return;
    }
    const { call, side } = target;
    if ((side === 'caller' ? call.callerSocket : call.calleeSocket) !== socket) {
      fail(socket, ack, 'Not authorized', call.id);
    } else if (call.state !== 'active') {
      fail(socket, ack, 'Call not active', call.id);
    } else if (payload.state !== 'connected' && payload.state !== 'failed') {
      fail(socket, ack, 'Invalid ICE state', call.id);
    } else {
      call[`${side}Ice`] = payload.state;
      ack({ ok: true, callId: call.id });
    }
  },

  getIceServers(socket, payload, ack) {
    ack(iceServers(socket.data.userId));
  },
};

// sendOffer / sendAnswer / sendIceCandidate: relayed to the other side's
// chosen device, held while the callee has not answered yet.
for (const [event, field, out] of [
  ['sendOffer', 'offer', 'receiveOffer'],
  ['sendAnswer', 'answer', 'receiveAnswer'],
  ['sendIceCandidate', 'candidate', 'receiveIceCandidate'],
]) {
  handlers[event] = (socket, payload, ack) => {
    const target = resolve(socket, payload, ack);
    if (!target) {
      return;
    }
    const { call, side } = target;
    if ((side === 'caller' ? call.callerSocket : call.calleeSocket) !== socket) {
      fail(socket, ack, 'Not authorized', call.id);
      return;
    }
    if (payload[field] === undefined || payload[field] === null) {
      fail(socket, ack, `${field} required`, call.id);
      return;
    }
    const to = side === 'caller' ? call.calleeSocket : call.callerSocket;
    const message = { callId: call.id, from: socket.data.userId, [field]: payload[field] };
    if (to) {
      to.emit(out, message);
    } else if (call.held.length >= 64) {
      fail(socket, ack, 'Rate limited', call.id);
      return;
    } else {
      call.held.push([out, message]);
    }
    ack({ ok: true, callId: call.id });
  };
}

function onDisconnect(socket) {
  const user = socket.data.userId;
  const sockets = socketsOf.get(user);
  sockets.delete(socket);
  if (sockets.size === 0) {
    socketsOf.delete(user);
    userBuckets.delete(user);
  }
  const call = calls.get(callOfUser.get(user));
  if (!call) {
    return;
  }
  if (call.state === 'ringing') {
    if (call.callerSocket === socket) {
      call.callerSocket = null;
      emitToUser(call.calleeId, 'callEnded', callEndedJson(call, call.callerId, 'cancelled'));
      finish(call, 'cancelled');
    }
    return;
  }
  const side = call.callerSocket === socket ? 'caller' : call.calleeSocket === socket ? 'callee' : null;
  if (!side) {
    return;
  }
  call[`${side}Socket`] = null;
  clearTimeout(call.graceTimer);
  call.graceTimer = setTimeout(() => {
    const lost = side === 'caller' ? call.callerId : call.calleeId;
    const other = side === 'caller' ? call.calleeSocket : call.callerSocket;
    other?.emit('callEnded', callEndedJson(call, lost, 'connection_lost'));
    finish(call, 'connection_lost');
  }, options.reconnectGraceMs);
}

// ---- Wiring.

const httpServer = http.createServer(handleHttp);
const io = new Server(httpServer, { serveClient: false });

io.use((socket, next) => {
  const claims = verifyToken(socket.handshake.auth?.token);
  if (typeof claims === 'string') {
    const error = new Error(claims === 'TOKEN_EXPIRED' ? 'Token expired' : 'Not authorized');
    error.data = { code: claims };
    next(error);
    return;
  }
  if (!users.has(claims.sub)) {
    const error = new Error('Not authorized');
    error.data = { code: 'TOKEN_INVALID' };
    next(error);
    return;
  }
  socket.data.userId = claims.sub;
  next();
});

io.on('connection', (socket) => {
  const user = socket.data.userId;
  const now = Date.now();
  socket.data.initiateBucket = new TokenBucket(options.socketBurst, now);
  const eventBucket = new TokenBucket(options.eventBurst, now);
  let sockets = socketsOf.get(user);
  if (!sockets) {
    sockets = new Set();
    socketsOf.set(user, sockets);
  }
  sockets.add(socket);
  // A device that connects while its user's call rings rings too.
  const ringing = calls.get(callOfUser.get(user));
  if (ringing && ringing.state === 'ringing' && ringing.calleeId === user) {
    socket.emit('incomingCall', {
      callId: ringing.id, callerId: ringing.callerId, callType: ringing.callType,
      caller: userJson(users.get(ringing.callerId)),
    });
  }
  socket.emit('iceServers', iceServers(user));

  socket.onAny((event, ...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : noop;
    if (options.eventRate > 0 &&
        !eventBucket.tryTake(Date.now(), options.eventRate, options.eventBurst)) {
      socket.emit('callError', { error: 'Rate limited', event });
      ack({ ok: false, error: 'Rate limited' });
      return;
    }
    const handler = Object.hasOwn(handlers, event) ? handlers[event] : null;
    if (!handler) {
      ack({ ok: false, error: 'Unknown event' });
      return;
    }
    handler(socket, args[0], ack);
  });
  socket.on('disconnect', () => onDisconnect(socket));
});

const [host, port] = (() => {
  const i = options.listen.lastIndexOf(':');
  return [options.listen.slice(0, i), Number(options.listen.slice(i + 1))];
})();

httpServer.listen({ host, port, backlog: 4096 }, () => {
  const address = httpServer.address();
  process.stdout.write(`listening ${address.address}:${address.port}\n`);
});

const stop = () => {
  process.stderr.write(`node_server: ${counts.calls} calls ended ${JSON.stringify(counts.byStatus)}\n`);
  io.close();
  httpServer.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
