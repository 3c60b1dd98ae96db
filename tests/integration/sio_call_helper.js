// A Socket.IO side for the Python operations tests (test_operations.py):
// the stock npm socket.io-client (tests/js/node_modules) driven over stdin
// and stdout, one JSON object per line, so a Python test can hold sockets
// and a call open while it signals the turnkey process.
//
//   node sio_call_helper.js URL [--insecure]
//
// URL is the signaling base (http://127.0.0.1:PORT or https://...);
// --insecure accepts any server certificate (the tests' self-signed ones).
//
// Requests (stdin), answered by {"reply": id, "ok": true, ...} or
// {"reply": id, "ok": false, "error": "..."}:
//   {"id": 1, "op": "connect", "name": "a", "token": "<access JWT>", "transports": [...]}
//       connects a socket with auth {token} (transports optional, e.g.
//       ["polling"]; default: polling, then the upgrade to WebSocket);
//       answers once connected, or with the connect_error.
//   {"id": 2, "op": "emit", "name": "a", "event": "initiateCall", "payload": {...}}
//       emits with an ack; answers {"ack": <the ack's first argument>}.
//   {"id": 3, "op": "wait", "name": "b", "event": "incomingCall", "timeout_ms": 8000}
//       answers {"payload": ...} with the first received `event` of that
//       socket not handed out before (in order), or an error at the timeout.
// Every event a socket receives, including connect, disconnect and
// connect_error, is also written as {"event": name, "name": socket, "payload": ...}.
// When stdin closes, every socket is closed and the process exits 0.
"use strict";

const path = require("node:path");
const readline = require("node:readline");
const { io } = require(path.join(__dirname, "..", "js", "node_modules", "socket.io-client"));

const url = process.argv[2];
const insecure = process.argv.includes("--insecure");
if (!url) {
  process.stderr.write("usage: sio_call_helper.js URL [--insecure]\n");
  process.exit(2);
}

const sockets = new Map(); // name -> {socket, received: [{event, payload, taken}], waiters: []}

function write(object) {
  process.stdout.write(JSON.stringify(object) + "\n");
}

function record(entry, name, event, payload) {
  write({ event, name, payload: payload instanceof Error ? String(payload) : payload ?? null });
  const item = { event, payload, taken: false };
  entry.received.push(item);
  const waiter = entry.waiters.find((w) => w.event === event);
  if (waiter) {
    item.taken = true;
    entry.waiters.splice(entry.waiters.indexOf(waiter), 1);
    clearTimeout(waiter.timer);
    waiter.resolve(payload);
  }
}

function connect(name, token, transports) {
  const socket = io(url, {
    forceNew: true,
    reconnection: false, // a dropped socket must show, not heal quietly
    auth: { token },
    rejectUnauthorized: !insecure,
    ...(transports ? { transports } : {}),
  });
  const entry = { socket, received: [], waiters: [] };
  sockets.set(name, entry);
  socket.onAny((event, ...args) => record(entry, name, event, args[0]));
  for (const reserved of ["disconnect", "connect_error"]) {
    socket.on(reserved, (arg) => record(entry, name, reserved, arg));
  }
  return new Promise((resolve, reject) => {
    socket.once("connect", () => {
      record(entry, name, "connect", { id: socket.id });
      resolve({ sid: socket.id });
    });
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
}

function wait(name, event, ms) {
  const entry = sockets.get(name);
  const found = entry.received.find((e) => !e.taken && e.event === event);
  if (found) {
    found.taken = true;
    return Promise.resolve({ payload: found.payload });
  }
  return new Promise((resolve, reject) => {
    const waiter = { event, resolve: (payload) => resolve({ payload }) };
    waiter.timer = setTimeout(() => {
      entry.waiters.splice(entry.waiters.indexOf(waiter), 1);
      reject(new Error(`${name}: no ${event} within ${ms} ms`));
    }, ms);
    entry.waiters.push(waiter);
  });
}

async function handle(request) {
  const entry = sockets.get(request.name);
  if (request.op === "connect") {
    return connect(request.name, request.token, request.transports);
  }
  if (!entry) {
    throw new Error(`no socket named ${request.name}`);
  }
  if (request.op === "emit") {
    const ack = await entry.socket
      .timeout(request.timeout_ms ?? 8000)
      .emitWithAck(request.event, request.payload ?? {});
    return { ack };
  }
  if (request.op === "wait") {
    return wait(request.name, request.event, request.timeout_ms ?? 8000);
  }
  throw new Error(`unknown op ${request.op}`);
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) {
    return;
  }
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    write({ reply: null, ok: false, error: `bad request: ${err.message}` });
    return;
  }
  handle(request).then(
    (result) => write({ reply: request.id, ok: true, ...result }),
    (err) => write({ reply: request.id, ok: false, error: err.message }));
});
lines.on("close", () => {
  for (const { socket } of sockets.values()) {
    socket.disconnect();
  }
  process.exit(0);
});
