// The official npm socket.io-client (4.x) against turnkey's protocol test
// app (signal/protocol_test_app.h): the stock client's view of our Engine.IO
// v4 / Socket.IO v5 server over each transport.
"use strict";

const assert = require("node:assert/strict");
const { describe, test, before, after } = require("node:test");
const { io } = require("socket.io-client");
const { startServer, once } = require("./test_server");

const TRANSPORTS = {
  default: undefined, // polling first, then the upgrade to WebSocket
  polling: ["polling"],
  websocket: ["websocket"],
};

function connect(server, nsp, options = {}) {
  return io(server.url + nsp, {
    forceNew: true,
    reconnectionDelay: 50,
    reconnectionDelayMax: 100,
    ...options,
  });
}

// Resolves once `socket` is connected and, for the default transports, has
// completed the upgrade, so that the test runs on the transport it names.
async function ready(socket, name) {
  // Registered before anything can happen: io() opened the engine synchronously.
  const upgraded = name === "default" ? once(socket.io.engine, "upgrade") : null;
  if (!socket.connected) {
    await once(socket, "connect");
  }
  if (upgraded) {
    await upgraded;
  }
}

describe("socket.io-client against the protocol test app", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    assert.equal(await server.stop(), 0, "the test server must exit cleanly");
  });

  for (const [name, transports] of Object.entries(TRANSPORTS)) {
    describe(`transports: ${name}`, () => {
      const options = transports ? { transports } : {};

      test("connect to / with auth gets auth back", async () => {
        const socket = connect(server, "/", { ...options, auth: { token: "123" } });
        try {
          const auth = once(socket, "auth");
          await ready(socket, name);
          assert.equal(typeof socket.id, "string");
          assert.deepEqual((await auth)[0], { token: "123" });
          const expected = name === "polling" ? "polling" : "websocket";
          assert.equal(socket.io.engine.transport.name, expected);
        } finally {
          socket.close();
        }
      });

      test("connect to /custom without auth gets {}", async () => {
        const socket = connect(server, "/custom", options);
        try {
          assert.deepEqual((await once(socket, "auth"))[0], {});
          assert.equal(socket.connected, true);
        } finally {
          socket.close();
        }
      });

      test("message comes back as message-back", async () => {
        const socket = connect(server, "/", options);
        try {
          await ready(socket, name);
          socket.emit("message", 1, "2", { 3: [true] });
          assert.deepEqual(await once(socket, "message-back"), [1, "2", { 3: [true] }]);
        } finally {
          socket.close();
        }
      });

      test("message-with-ack is acked with its arguments", async () => {
        const socket = connect(server, "/", options);
        try {
          await ready(socket, name);
          const args = await new Promise((resolve) => {
            socket.emit("message-with-ack", 1, "2", { 3: [false] }, (...reply) => resolve(reply));
          });
          assert.deepEqual(args, [1, "2", { 3: [false] }]);
          // With a timeout the client expects (err, ...args) and resolves to args[0].
          assert.equal(await socket.timeout(5000).emitWithAck("message-with-ack", "x"), "x");
          assert.equal(await socket.emitWithAck("message-with-ack", "first", "second"), "first");
        } finally {
          socket.close();
        }
      });

      test("binary round trip", async () => {
        const socket = connect(server, "/", options);
        try {
          await ready(socket, name);
          const first = Buffer.from([1, 2, 3]);
          const nested = Buffer.from([0, 255, 4, 5]);
          socket.emit("message", first, { nested, text: "x" });
          const [a, b] = await once(socket, "message-back");
          assert.ok(Buffer.from(a).equals(first));
          assert.ok(Buffer.from(b.nested).equals(nested));
          assert.equal(b.text, "x");
          const acked = await socket.emitWithAck("message-with-ack", Buffer.from([7, 8]));
          assert.ok(Buffer.from(acked).equals(Buffer.from([7, 8])));
        } finally {
          socket.close();
        }
      });

      test("an unknown namespace gets connect_error", async () => {
        const socket = connect(server, "/random", options);
        try {
          const [error] = await once(socket, "connect_error");
          assert.equal(error.message, "Invalid namespace");
          assert.equal(socket.connected, false);
        } finally {
          socket.close();
        }
      });

      test("reconnects after a server-side disconnect", async () => {
        const socket = connect(server, "/", { ...options, auth: { token: "again" } });
        try {
          const firstAuth = once(socket, "auth");
          await ready(socket, name);
          await firstAuth;
          const firstId = socket.id;
          const disconnected = once(socket, "disconnect");
          const secondAuth = once(socket, "auth");
          server.closeAll();
          const [reason] = await disconnected;
          assert.equal(reason, "transport close");
          // The Manager reconnects on its own: new session, new socket id,
          // the auth payload sent again.
          assert.deepEqual((await secondAuth)[0], { token: "again" });
          assert.equal(socket.connected, true);
          assert.notEqual(socket.id, firstId);
          socket.emit("message", "after");
          assert.deepEqual(await once(socket, "message-back"), ["after"]);
        } finally {
          socket.close();
        }
      });
    });
  }

  // A reader that waits for one WebSocket message at a time, as conformance
  // tools written against ws's "message" event do: ws emits every frame of
  // one TCP read at once, so `auth` must not share a read with the CONNECT
  // answer (ProtocolTestApp::kAuthDelay), or this reader never sees it.
  test("a reader awaiting one message at a time gets the CONNECT answer, then auth", async () => {
    const WebSocket = require("ws"); // engine.io-client's own dependency
    const nextMessage = (ws) =>
      new Promise((resolve) => ws.addEventListener("message", (e) => resolve(e.data), { once: true }));
    for (const nsp of ["", "/custom,"]) {
      const ws = new WebSocket(`${server.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
      try {
        await nextMessage(ws); // the Engine.IO open packet
        ws.send(`40${nsp}`);
        assert.match(await nextMessage(ws), new RegExp(`^40${nsp}\\{"sid":`));
        assert.equal(await nextMessage(ws), `42${nsp}["auth",{}]`);
      } finally {
        ws.close();
      }
    }
  });

  test("two namespaces share one Engine.IO connection", async () => {
    const root = connect(server, "/", { transports: ["websocket"] });
    const custom = root.io.socket("/custom");
    try {
      const auth = once(custom, "auth");
      await once(root, "connect");
      assert.deepEqual((await auth)[0], {});
      custom.emit("message", "on custom");
      assert.deepEqual(await once(custom, "message-back"), ["on custom"]);
    } finally {
      root.close();
      custom.close();
    }
  });
});

describe("heartbeats with a short ping interval", () => {
  let server;
  before(async () => {
    server = await startServer(["--ping-interval", "100", "--ping-timeout", "2000"]);
  });
  after(async () => {
    assert.equal(await server.stop(), 0, "the test server must exit cleanly");
  });

  for (const [name, transports] of Object.entries(TRANSPORTS)) {
    test(`transports: ${name}: the client answers pings and stays connected`, async () => {
      const socket = connect(server, "/", transports ? { transports } : {});
      try {
        await once(socket, "connect");
        for (let i = 0; i < 3; ++i) {
          await once(socket.io, "ping");
        }
        assert.equal(socket.connected, true);
        socket.emit("message", i18n());
        assert.deepEqual(await once(socket, "message-back"), [i18n()]);
      } finally {
        socket.close();
      }
    });
  }
});

// Non-ASCII text survives both transports.
function i18n() {
  return "héllo wörld ✓ 📞";
}
