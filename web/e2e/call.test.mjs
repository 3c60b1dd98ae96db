// Browser end-to-end tests against a running turnkey: two people sign up on the demo page in two
// Chromium contexts (fake camera and microphone) and call each other with iceTransportPolicy
// 'relay', so the media has to cross turnkey's TURN server.
//
// Environment:
//   TURNKEY_URL                   required: the signaling base URL, e.g. http://127.0.0.1:28080
//   TURNKEY_METRICS_URL           required: the metrics URL, e.g. http://127.0.0.1:29641/metrics
//   TURNKEY_RING_TIMEOUT_SECONDS  the server's signal.ring_timeout (default 30); keep it short
//   TURNKEY_E2E_OUT               where screenshots go (default: a new directory under /tmp)
//   TURNKEY_E2E_MEDIA_SECONDS     how long media must flow in a call (default 4)
//   CHROMIUM_PATH                 default /usr/bin/chromium
//
// The server must relay between the two browsers' relay addresses on this host, i.e. allow
// loopback peers (turn.peers.allow: [127.0.0.1/32]) and hand out a TURN URI on loopback
// (signal.ice_servers.urls: ["turn:127.0.0.1:<port>?transport=udp"]).
//
//   cd web && npm ci && TURNKEY_URL=... TURNKEY_METRICS_URL=... node --test e2e/call.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { collectPageErrors, launchChromium, waitFor } from './browser.mjs';

const kUrl = (process.env.TURNKEY_URL ?? '').replace(/\/+$/, '');
const kMetricsUrl = process.env.TURNKEY_METRICS_URL ?? '';
const kRingTimeoutS = Number(process.env.TURNKEY_RING_TIMEOUT_SECONDS || 30);
const kMediaSeconds = Number(process.env.TURNKEY_E2E_MEDIA_SECONDS || 4);
const kPassword = 'e2e correct horse battery staple';
const kRun = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

let browser;
let outDir;
let userSeq = 0;

before(async () => {
  if (!kUrl || !kMetricsUrl) {
    throw new Error('set TURNKEY_URL and TURNKEY_METRICS_URL (see the top of this file)');
  }
  if (process.env.TURNKEY_E2E_OUT) {
    outDir = process.env.TURNKEY_E2E_OUT;
    mkdirSync(outDir, { recursive: true });
  } else {
    outDir = mkdtempSync(join(tmpdir(), 'turnkey-e2e-'));
  }
  console.log(`# screenshots in ${outDir}`);
  browser = await launchChromium({ secureOrigins: [new URL(kUrl).origin] });
});

after(async () => {
  await browser?.close();
});

// --- Helpers -------------------------------------------------------------------------------

function safeId(id) {
  return String(id).replace(/[^A-Za-z0-9_-]/g, '_');
}

async function shot(page, name) {
  await page.screenshot({ path: join(outDir, `${name}.png`) });
}

async function waitVisible(page, selector, timeout = 15_000) {
  await page.locator(selector).waitFor({ state: 'visible', timeout });
}

/** Signs a new person up on the demo page (relay only) and gives them a handle. */
async function signUp(label, viewport = { width: 412, height: 860 }) {
  const n = ++userSeq;
  const handle = `${label}_${kRun}${n}`;
  const email = `e2e-${kRun}-${n}-${label}@example.test`;
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = collectPageErrors(page, `${label}: `);
  await page.goto(`${kUrl}/?relay=1`);
  await page.fill('#email', email);
  await page.fill('#password', kPassword);
  await page.fill('#display-name', `E2E ${label}`);
  await page.click('#register');
  await waitVisible(page, '#app-view');
  await waitVisible(page, '#conn-status[data-state="online"]');
  await page.fill('#handle', handle);
  await page.click('#save-handle');
  await waitVisible(page, `#me-handle[data-handle="${handle}"]`);
  assert.equal(await page.isChecked('#relay-only'), true);
  assert.equal(await page.evaluate(() => window.turnkeyDemo.client.options.iceTransportPolicy), 'relay');
  const id = await page.evaluate(() => window.turnkeyDemo.client.user.id);
  assert.ok(id, 'the server returned the user id');
  return { label, handle, email, id, context, page, errors };
}

async function dialHandle(caller, callee, video) {
  await caller.page.fill('#call-handle', callee.handle);
  await caller.page.click(video ? '#call-handle-video' : '#call-handle-audio');
}

/** Waits for the incoming-call screen on `callee` from `caller`; returns the call id. */
async function expectRinging(caller, callee, video) {
  await waitVisible(callee.page, '#incoming');
  assert.match(await callee.page.textContent('#incoming-caller'), new RegExp(caller.handle));
  assert.equal(await callee.page.getAttribute('#incoming-type', 'data-type'), video ? 'video' : 'audio');
  await waitVisible(caller.page, '#call-screen[data-state="ringing"]');
  const callId = await caller.page.getAttribute('#call-screen', 'data-call-id');
  assert.ok(callId, 'the caller knows the call id');
  assert.equal(await callee.page.getAttribute('#incoming', 'data-call-id'), callId);
  return callId;
}

async function stats(page) {
  return page.evaluate(() => window.turnkeyDemo.stats());
}

/**
 * Waits until media has flowed for kMediaSeconds on both pages and each has received audio
 * (and video) bytes in that time; returns the last stats of both.
 */
async function expectMediaBothWays(pages, video) {
  const start = await Promise.all(pages.map(stats));
  const startedAt = Date.now();
  const deadline = startedAt + kMediaSeconds * 1000 + 20_000;
  for (;;) {
    const now = await Promise.all(pages.map(stats));
    const flowing = now.every((s, i) =>
      s && s.inbound.audio.bytes - start[i].inbound.audio.bytes > 1_000 &&
      s.outbound.audio.bytes - start[i].outbound.audio.bytes > 1_000 &&
      (!video || (s.inbound.video.bytes - start[i].inbound.video.bytes > 20_000 &&
        s.inbound.video.frames > start[i].inbound.video.frames)));
    if (flowing && Date.now() - startedAt >= kMediaSeconds * 1000) {
      return now;
    }
    if (Date.now() > deadline) {
      assert.fail(`media did not flow both ways: start ${JSON.stringify(start)} now ${JSON.stringify(now)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function expectRelayPair(s, who) {
  assert.ok(s.pair, `${who}: a selected candidate pair`);
  assert.equal(s.pair.localType, 'relay', `${who}: local candidate is relay`);
  assert.equal(s.pair.remoteType, 'relay', `${who}: remote candidate is relay`);
  assert.ok(s.pair.relayProtocol, `${who}: relayProtocol reported`);
}

/** Refreshes the history until the call shows with a final status; returns its data-* values. */
async function historyEntry(page, callId, { timeout = 15_000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    await page.click('#refresh-history');
    const entry = await page.evaluate((id) => {
      const li = [...document.querySelectorAll('#history [data-testid="history-item"]')]
        .find((node) => node.dataset.callId === id);
      return li ? { ...li.dataset, missedClass: li.classList.contains('missed') } : null;
    }, callId);
    // The server writes the call history asynchronously: a call that just ended may still
    // read as ringing or active for a moment.
    if (entry && entry.status && entry.status !== 'ringing' && entry.status !== 'active') {
      return entry;
    }
    if (Date.now() > deadline) {
      assert.fail(`call ${callId} not in the history: ${JSON.stringify(entry)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function endOf(page) {
  await page.locator('#call-result').waitFor({ state: 'attached' });
  return waitFor(page, () => {
    const c = window.turnkeyDemo.lastCall();
    return c && c.state === 'ended' ? c : null;
  }, null, { timeout: kRingTimeoutS * 1000 + 20_000, what: 'the call to end' });
}

// Prometheus text exposition -> [{name, labels, value}].
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || line.startsWith('#')) {
      continue;
    }
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2];
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape() {
  const response = await fetch(kMetricsUrl);
  assert.equal(response.status, 200, 'metrics endpoint answers');
  return parseMetrics(await response.text());
}

function sum(samples, name, match = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

const kIce = 'turnkey_ice_reports_total';
const kRelayed = 'turnkey_turn_relayed_bytes_total';
const kConnectedRelay = { result: 'connected', local_type: 'relay', remote_type: 'relay' };

/** Waits until turnkey counted at least `n` more relay/relay connected ICE reports than `base`. */
async function expectIceReports(base, n) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const now = await scrape();
    const delta = sum(now, kIce, kConnectedRelay) - sum(base, kIce, kConnectedRelay);
    if (delta >= n) {
      return now;
    }
    if (Date.now() > deadline) {
      assert.fail(`${kIce}{result="connected",local_type="relay",remote_type="relay"} rose by ${delta}, want ${n}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function expectIceReport(call, who) {
  assert.ok(call.iceReport, `${who}: reportIce was sent`);
  assert.equal(call.iceReport.state, 'connected');
  assert.equal(call.iceReport.localCandidateType, 'relay');
  assert.equal(call.iceReport.remoteCandidateType, 'relay');
  assert.equal(call.iceReport.callId, call.id);
}

async function closeAll(...users) {
  for (const u of users) {
    await u?.context.close().catch(() => {});
  }
}

function expectNoPageErrors(...users) {
  for (const u of users) {
    const uncaught = u.errors.filter((e) => e.includes('pageerror'));
    assert.deepEqual(uncaught, [], `${u.label}: no uncaught errors`);
    if (u.errors.length) {
      console.log(`# ${u.label} console errors:\n#   ${u.errors.join('\n#   ')}`);
    }
  }
}

// --- Tests ---------------------------------------------------------------------------------

describe('calls between two browsers through turnkey', { concurrency: false }, () => {
  test('video call by handle, relay on both sides, media both ways, history and metrics', { timeout: 180_000 }, async () => {
    const alice = await signUp('alice');
    const bob = await signUp('bob', { width: 1280, height: 800 });
    try {
      const base = await scrape();
      await dialHandle(alice, bob, true);
      const callId = await expectRinging(alice, bob, true);
      await shot(bob.page, 'video-incoming-callee');
      await bob.page.click('#accept');
      await waitVisible(alice.page, '#call-screen[data-state="active"]', 30_000);
      await waitVisible(bob.page, '#call-screen[data-state="active"]', 30_000);

      const [a, b] = await expectMediaBothWays([alice.page, bob.page], true);
      expectRelayPair(a, 'caller');
      expectRelayPair(b, 'callee');
      assert.ok(Number(await alice.page.getAttribute('#timer', 'data-seconds')) >= kMediaSeconds - 1);
      await shot(alice.page, 'video-call-caller');
      await shot(bob.page, 'video-call-callee');

      // Mute and camera toggle the local tracks.
      await alice.page.click('#mute');
      await alice.page.click('#camera');
      assert.deepEqual(
        await alice.page.evaluate(() => {
          const s = window.turnkeyDemo.client.currentCall.localStream;
          return [s.getAudioTracks()[0].enabled, s.getVideoTracks()[0].enabled];
        }),
        [false, false],
      );
      assert.equal(await alice.page.getAttribute('#mute', 'aria-pressed'), 'true');
      await shot(alice.page, 'video-call-caller-muted');
      await alice.page.click('#mute');
      await alice.page.click('#camera');
      assert.equal(await alice.page.getAttribute('#camera', 'aria-pressed'), 'false');

      // The last stats before hanging up bound what turnkey must have relayed.
      const [a2, b2] = await Promise.all([stats(alice.page), stats(bob.page)]);
      await alice.page.click('#hangup');
      const aliceCall = await endOf(alice.page);
      const bobCall = await endOf(bob.page);
      assert.equal(aliceCall.id, callId);
      assert.equal(aliceCall.endReason, 'hangup');
      assert.equal(bobCall.id, callId);
      assert.equal(await alice.page.isVisible('#call-screen'), false);
      assert.equal(await bob.page.isVisible('#call-screen'), false);
      expectIceReport(aliceCall, 'caller');
      expectIceReport(bobCall, 'callee');

      const wallSeconds = (aliceCall.endedAt - aliceCall.answeredAt) / 1000;
      for (const [who, dir] of [[alice, 'outgoing'], [bob, 'incoming']]) {
        const h = await historyEntry(who.page, callId);
        assert.equal(h.status, 'completed', `${who.label}: status`);
        assert.equal(h.direction, dir, `${who.label}: direction`);
        assert.equal(h.missed, 'false', `${who.label}: not missed`);
        assert.equal(h.callType, 'video');
        const duration = Number(h.duration);
        assert.ok(duration >= kMediaSeconds - 1 && duration <= wallSeconds + 2,
          `${who.label}: duration ${duration}s for a call of ${wallSeconds}s`);
      }
      await shot(alice.page, 'video-history-caller');

      const after = await expectIceReports(base, 2);
      const c2p = sum(after, kRelayed, { direction: 'client_to_peer' }) - sum(base, kRelayed, { direction: 'client_to_peer' });
      const p2c = sum(after, kRelayed, { direction: 'peer_to_client' }) - sum(base, kRelayed, { direction: 'peer_to_client' });
      // Every RTP payload byte a browser received went out of one allocation to the other
      // browser's relay address (client_to_peer) and came in there (peer_to_client), inside a
      // larger SRTP packet.
      const received = a2.inboundBytes + b2.inboundBytes;
      assert.ok(c2p >= received, `relayed client_to_peer ${c2p} >= received RTP ${received}`);
      assert.ok(p2c >= received, `relayed peer_to_client ${p2c} >= received RTP ${received}`);
      expectNoPageErrors(alice, bob);
    } finally {
      await closeAll(alice, bob);
    }
  });

  test('audio-only call from a contact, callee hangs up', { timeout: 120_000 }, async () => {
    const carol = await signUp('carol');
    const dave = await signUp('dave');
    try {
      const base = await scrape();
      // Find dave by handle prefix, add him as a contact, call him from the contact list.
      await carol.page.fill('#search', dave.handle.slice(0, -1));
      await carol.page.press('#search', 'Enter');
      await waitVisible(carol.page, `#result-${safeId(dave.id)}`);
      await carol.page.click(`#add-contact-${safeId(dave.id)}`);
      await waitVisible(carol.page, `#contact-${safeId(dave.id)}`);
      await carol.page.click(`#call-audio-${safeId(dave.id)}`);
      const callId = await expectRinging(carol, dave, false);
      await dave.page.click('#accept');
      await waitVisible(carol.page, '#call-screen[data-state="active"]', 30_000);
      await waitVisible(dave.page, '#call-screen[data-state="active"]', 30_000);
      assert.equal(await carol.page.isDisabled('#camera'), true, 'no camera button in an audio call');

      const [c, d] = await expectMediaBothWays([carol.page, dave.page], false);
      expectRelayPair(c, 'caller');
      expectRelayPair(d, 'callee');
      for (const s of [c, d]) {
        assert.equal(s.inbound.video.bytes, 0, 'no video in an audio call');
        assert.equal(s.outbound.video.bytes, 0, 'no video in an audio call');
      }
      await shot(carol.page, 'audio-call-caller');

      await dave.page.click('#hangup');
      const daveCall = await endOf(dave.page);
      const carolCall = await endOf(carol.page);
      assert.equal(daveCall.endReason, 'hangup');
      assert.equal(carolCall.id, callId);
      assert.equal(carolCall.endedBy, dave.id, 'the caller is told who hung up');
      for (const [who, dir] of [[carol, 'outgoing'], [dave, 'incoming']]) {
        const h = await historyEntry(who.page, callId);
        assert.equal(h.status, 'completed');
        assert.equal(h.direction, dir);
        assert.equal(h.callType, 'audio');
        assert.ok(Number(h.duration) >= kMediaSeconds - 1);
      }
      await expectIceReports(base, 2);
      expectNoPageErrors(carol, dave);
    } finally {
      await closeAll(carol, dave);
    }
  });

  test('rejected call', { timeout: 90_000 }, async () => {
    const erin = await signUp('erin');
    const frank = await signUp('frank');
    try {
      await dialHandle(erin, frank, true);
      const callId = await expectRinging(erin, frank, true);
      await frank.page.click('#reject');
      const erinCall = await endOf(erin.page);
      assert.equal(erinCall.endReason, 'rejected');
      assert.equal(await erin.page.getAttribute('#call-result', 'data-reason'), 'rejected');
      assert.equal(erinCall.connectedAt, null, 'no media was set up');
      await shot(erin.page, 'rejected-caller');
      assert.equal(await frank.page.isVisible('#incoming'), false);
      const mine = await historyEntry(erin.page, callId);
      assert.equal(mine.status, 'rejected');
      assert.equal(mine.direction, 'outgoing');
      const theirs = await historyEntry(frank.page, callId);
      assert.equal(theirs.status, 'rejected');
      assert.equal(theirs.direction, 'incoming');
      expectNoPageErrors(erin, frank);
    } finally {
      await closeAll(erin, frank);
    }
  });

  test('callee closes the page while it rings: missed after the ring timeout', { timeout: (kRingTimeoutS + 90) * 1000 }, async () => {
    const gina = await signUp('gina');
    const hank = await signUp('hank');
    try {
      await dialHandle(gina, hank, false);
      const callId = await expectRinging(gina, hank, false);
      await hank.page.close();
      const ginaCall = await endOf(gina.page);
      assert.equal(ginaCall.id, callId);
      assert.equal(ginaCall.endReason, 'timeout');
      assert.equal(await gina.page.getAttribute('#call-result', 'data-reason'), 'timeout');
      await shot(gina.page, 'missed-caller');
      const mine = await historyEntry(gina.page, callId);
      assert.equal(mine.status, 'missed');
      assert.equal(mine.direction, 'outgoing');

      // hank comes back (a new tab, so logged out) and finds the missed call marked.
      const page = await hank.context.newPage();
      const errors = collectPageErrors(page, 'hank again: ');
      await page.goto(`${kUrl}/`);
      await page.fill('#email', hank.email);
      await page.fill('#password', kPassword);
      await page.click('#login');
      await waitVisible(page, '#app-view');
      const theirs = await historyEntry(page, callId);
      assert.equal(theirs.status, 'missed');
      assert.equal(theirs.direction, 'incoming');
      assert.equal(theirs.missed, 'true');
      assert.equal(theirs.missedClass, true, 'shown as missed');
      assert.ok(Number(await page.getAttribute('#missed-count', 'data-count')) >= 1, 'missed badge');
      await shot(page, 'missed-history-callee');
      expectNoPageErrors(gina, { label: 'hank again', errors });
    } finally {
      await closeAll(gina, hank);
    }
  });
});
