// ctest web_e2e_call: starts the real turnkey (TURNKEY_BINARY) the way
// web/e2e/call.test.mjs needs it -- TURN and signaling on loopback, loopback
// peers allowed, relay addresses on 127.0.0.1, a TURN URI on loopback in
// signal.ice_servers.urls, a short ring timeout, metrics on, the demo page
// from this tree's web/ -- then runs the browser test files (calls, sessions) in web/ and
// exits with its status. Screenshots go to TURNKEY_E2E_OUT (ctest sets it
// under the build directory).
"use strict";

const { spawn } = require("node:child_process");
const path = require("node:path");

const { startTurnkey, SOURCE_DIR } = require("./turnkey_process");

const kRingTimeoutSeconds = 5;

// The log is at debug level: its warnings and errors, then its end.
function printLogForFailure(log) {
  const lines = log.split("\n");
  // A text line is "<time> <level> <message>".
  const notable = lines.filter((line) => /^\S+ (warn|error|critical) /.test(line));
  console.error(`# turnkey log, warnings and errors (${notable.length}, last 100):\n` +
    notable.slice(-100).join("\n"));
  const tail = lines.slice(-200);
  console.error(`# turnkey log, last ${tail.length} of ${lines.length} lines:\n` + tail.join("\n"));
}

async function main() {
  const server = await startTurnkey({
    ringTimeout: `${kRingTimeoutSeconds}s`,
    webRoot: path.join(SOURCE_DIR, "web"),
  });
  let status = 1;
  try {
    console.log(`# turnkey at ${server.url}, metrics ${server.metricsUrl}, log in ${server.dir}`);
    const child = spawn(process.execPath,
      ["--test", "--test-concurrency=1", "e2e/call.test.mjs", "e2e/session.test.mjs"], {
        cwd: path.join(SOURCE_DIR, "web"),
        stdio: "inherit",
        env: {
          ...process.env,
          TURNKEY_URL: server.url,
          TURNKEY_METRICS_URL: server.metricsUrl,
          TURNKEY_RING_TIMEOUT_SECONDS: String(kRingTimeoutSeconds),
        },
      });
    status = await new Promise((resolve) => {
      child.on("exit", (code, signal) => resolve(signal ? 1 : code));
    });
  } finally {
    const exit = await server.stop();
    if (exit.code !== 0) {
      console.error(`turnkey exited with ${JSON.stringify(exit)}; last log lines:\n` +
        server.log().split("\n").slice(-60).join("\n"));
      status = status || 1;
    }
    if (status !== 0) {
      // CI keeps this output, not the state directory: what the server saw.
      printLogForFailure(server.log());
      console.error(`# turnkey log: ${server.dir}`);
    }
  }
  process.exit(status);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
