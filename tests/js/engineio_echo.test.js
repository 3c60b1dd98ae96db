// The official npm engine.io-client (6.x) against the raw Engine.IO echo
// server at /engine.io/ of turnkey's protocol test app.
"use strict";

const assert = require("node:assert/strict");
const { describe, test, before, after } = require("node:test");
const { Socket } = require("engine.io-client");
const { startServer, once } = require("./test_server");

describe("engine.io-client against the /engine.io/ echo server", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    assert.equal(await server.stop(), 0, "the test server must exit cleanly");
  });

  for (const [name, transports] of Object.entries({
    default: undefined,
    polling: ["polling"],
    websocket: ["websocket"],
  })) {
    test(`transports: ${name}: text and binary come back unchanged`, async () => {
      const socket = new Socket(server.url, transports ? { transports } : {});
      try {
        const upgraded = name === "default" ? once(socket, "upgrade") : null;
        await once(socket, "open");
        assert.equal(typeof socket.id, "string");
        if (upgraded) {
          await upgraded;
        }
        assert.equal(socket.transport.name, name === "polling" ? "polling" : "websocket");

        socket.send("hello ✓");
        assert.deepEqual(await once(socket, "message"), ["hello ✓"]);
        const bytes = Buffer.from([0, 1, 2, 254, 255]);
        socket.send(bytes);
        const [echoed] = await once(socket, "message");
        assert.equal(typeof echoed, "object", "binary must stay binary");
        assert.ok(Buffer.from(echoed).equals(bytes));
      } finally {
        socket.close();
      }
    });
  }

  test("the server closing the session closes the client", async () => {
    const socket = new Socket(server.url, { transports: ["websocket"] });
    try {
      await once(socket, "open");
      const closed = once(socket, "close");
      server.closeAll();
      const [reason] = await closed;
      assert.equal(reason, "transport close");
    } finally {
      socket.close();
    }
  });
});
