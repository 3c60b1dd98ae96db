// Starts signal_protocol_test_server (path in TURNKEY_SIGNAL_TEST_SERVER) on
// a free loopback port and hands the tests its URL and controls.
"use strict";

const { spawn } = require("node:child_process");
const readline = require("node:readline");

const SERVER_ENV = "TURNKEY_SIGNAL_TEST_SERVER";

// Resolves to { url, closeAll(), stop() } once the server printed its port.
// `args` are extra command-line flags (e.g. ["--ping-interval", "200"]).
function startServer(args = []) {
  const binary = process.env[SERVER_ENV];
  if (!binary) {
    // Never skip: a missing binary is a failure of the test setup.
    return Promise.reject(new Error(`${SERVER_ENV} is not set (run the test through ctest)`));
  }
  const child = spawn(binary, ["0", ...args], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    exited.then(({ code, signal }) =>
      reject(new Error(`test server exited early (code ${code}, signal ${signal})`)),
    );
    const lines = readline.createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      const port = Number.parseInt(line, 10);
      if (!Number.isInteger(port) || port <= 0) {
        reject(new Error(`unexpected first line from the test server: ${line}`));
        return;
      }
      resolve({
        url: `http://127.0.0.1:${port}`,
        // Closes every Engine.IO session on the server ("forced close").
        closeAll() {
          child.stdin.write("close-all\n");
        },
        // Ends the server through end-of-stdin; resolves to its exit status
        // (0 unless it crashed or the sanitizers found something).
        async stop() {
          child.stdin.end();
          const { code, signal } = await exited;
          return signal ? `signal ${signal}` : code;
        },
      });
    });
  });
}

// Resolves with the arguments of the next `event` on `emitter`, or rejects
// after `ms` milliseconds.
function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`timed out waiting for "${event}"`));
    }, ms);
    function handler(...args) {
      clearTimeout(timer);
      resolve(args);
    }
    emitter.once(event, handler);
  });
}

module.exports = { startServer, once };
