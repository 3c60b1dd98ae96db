// Browser checks that need no turnkey server: Chromium with fake media, turnkey.js loaded as an
// ES module from a loopback static server, two PeerLinks in one page wired to each other
// directly (the page plays the signaling server's part by handing offers, answers and
// candidates across), and the demo page loading cleanly.
//
//   cd web && npm ci && node --test e2e/local_pc.test.mjs
// A relay-only call through turnkey's own TURN server is e2e/call.test.mjs, against a real
// turnkey.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { collectPageErrors, launchChromium, waitFor } from './browser.mjs';
import { startStaticServer } from './static_server.mjs';

const kLoopbackPage = `<!doctype html><meta charset="utf-8"><title>loopback</title><link rel="icon" href="data:,">
<script type="module">
import * as turnkey from '/turnkey.js';
window.turnkey = turnkey;
window.ready = true;
</script>`;

let server;
let browser;
let page;
let errors;

before(async () => {
  server = await startStaticServer({ '/loopback.html': { type: 'text/html', body: kLoopbackPage } });
  browser = await launchChromium();
  page = await browser.newPage();
  errors = collectPageErrors(page);
  await page.goto(`${server.url}/loopback.html`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10_000 });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

// Builds two PeerLinks in the page (as window.a / window.b) with fake media on both and wires
// their candidates across through a queue the test controls (window.hold = true holds them).
async function makePair(options) {
  await page.evaluate(async ({ iceServers, iceTransportPolicy, video }) => {
    const { PeerLink } = window.turnkey;
    window.a?.close();
    window.b?.close();
    const a = new PeerLink({ iceServers, iceTransportPolicy });
    const b = new PeerLink({ iceServers, iceTransportPolicy });
    window.a = a;
    window.b = b;
    window.held = [];
    window.hold = true;
    window.states = { a: [], b: [] };
    a.on('iceState', (s) => window.states.a.push(s));
    b.on('iceState', (s) => window.states.b.push(s));
    const deliver = (to, candidate) => {
      if (window.hold) {
        window.held.push([to, candidate]);
      } else {
        to.addRemoteCandidate(candidate);
      }
    };
    a.on('signal', ({ candidate }) => deliver(b, candidate));
    b.on('signal', ({ candidate }) => deliver(a, candidate));
    window.release = async () => {
      window.hold = false;
      const held = window.held;
      window.held = [];
      for (const [to, c] of held) {
        await to.addRemoteCandidate(c);
      }
      return held.length;
    };
    a.addLocalStream(await navigator.mediaDevices.getUserMedia({ audio: true, video }));
    b.addLocalStream(await navigator.mediaDevices.getUserMedia({ audio: true, video }));
  }, options);
}

// Offer from a, answer from b. Every candidate (both ways) is handed over before the
// description it belongs to has been applied, so PeerLink must hold them.
async function negotiate({ iceRestart = false } = {}) {
  return page.evaluate(async (iceRestart) => {
    const { a, b } = window;
    window.hold = true;
    if (iceRestart) {
      a.restartIce();
    }
    const offer = await a.createOffer({ iceRestart });
    // Let a gather, then push its candidates to b before b has the offer.
    await new Promise((r) => setTimeout(r, 300));
    const early = window.held.length;
    await window.release();
    window.hold = true;
    const answer = await b.acceptOffer(offer);
    await new Promise((r) => setTimeout(r, 300));
    const earlyAnswer = window.held.length;
    await window.release();
    await a.acceptAnswer(answer);
    const ufrag = /a=ice-ufrag:(\S+)/.exec(offer.sdp)[1];
    return { early, earlyAnswer, ufrag };
  }, iceRestart);
}

async function waitConnected() {
  await page.waitForFunction(
    () => ['connected', 'completed'].includes(window.a.iceState) &&
      ['connected', 'completed'].includes(window.b.iceState),
    null,
    { timeout: 20_000 },
  );
}

// Waits until both sides have received `bytes` more RTP bytes than in `since`.
async function waitForMedia(since, bytes) {
  await waitFor(
    page,
    async ({ since, bytes }) => {
      const [sa, sb] = await Promise.all([window.a.stats(), window.b.stats()]);
      return sa.inboundBytes - (since?.a ?? 0) > bytes && sb.inboundBytes - (since?.b ?? 0) > bytes;
    },
    { since, bytes },
    { what: `${bytes} more RTP bytes received on both sides` },
  );
  return page.evaluate(async () => {
    const [a, b] = await Promise.all([window.a.stats(), window.b.stats()]);
    return { a, b };
  });
}

describe('Chromium with fake devices', () => {
  test('getUserMedia gives live fake audio and video tracks', async () => {
    const tracks = await page.evaluate(async () => {
      const s = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      const out = s.getTracks().map((t) => `${t.kind}:${t.readyState}`);
      s.getTracks().forEach((t) => t.stop());
      return out.sort();
    });
    assert.deepEqual(tracks, ['audio:live', 'video:live']);
  });
});

describe('PeerLink between two connections in one page', () => {
  test('connects directly with early candidates held, media flows both ways', async () => {
    await makePair({ iceServers: [], iceTransportPolicy: 'all', video: true });
    const { early, earlyAnswer } = await negotiate();
    assert.ok(early > 0, 'the offerer gathered candidates before the answerer had the offer');
    assert.ok(earlyAnswer > 0, 'the answerer gathered candidates before the offerer had the answer');
    await waitConnected();
    const { a, b } = await waitForMedia(null, 20_000);
    for (const side of [a, b]) {
      assert.equal(side.pair.localType, 'host');
      assert.equal(side.pair.remoteType, 'host');
      assert.ok(side.inbound.audio.bytes > 0, 'audio received');
      assert.ok(side.inbound.video.bytes > 0, 'video received');
      assert.ok(side.outbound.video.bytes > 0, 'video sent');
      assert.equal(typeof side.pair.rttMs, 'number');
    }
  });

  test('an ICE restart renegotiates new credentials and media keeps flowing', async () => {
    const before = await page.evaluate(async () => ({
      a: (await window.a.stats()).inboundBytes,
      b: (await window.b.stats()).inboundBytes,
      ufrag: /a=ice-ufrag:(\S+)/.exec(window.a.pc.localDescription.sdp)[1],
    }));
    const { ufrag, early } = await negotiate({ iceRestart: true });
    assert.notEqual(ufrag, before.ufrag, 'the restart offer carries a new ufrag');
    assert.ok(early > 0, 'new-generation candidates arrived before the restart offer was applied');
    await waitConnected();
    await waitForMedia(before, 20_000);
    assert.deepEqual(
      await page.evaluate(() => window.a.pc.getTransceivers().length),
      2,
      'the restart renegotiated, it did not add media sections',
    );
  });

  test('an audio-only pair carries audio and no video', async () => {
    await makePair({ iceServers: [], iceTransportPolicy: 'all', video: false });
    await negotiate();
    await waitConnected();
    const { a, b } = await waitForMedia(null, 2_000);
    for (const side of [a, b]) {
      assert.ok(side.inbound.audio.bytes > 0);
      assert.equal(side.inbound.video.bytes, 0);
      assert.equal(side.outbound.video.bytes, 0);
    }
  });

  test('relay-only with no TURN server gathers nothing and never connects', async () => {
    await makePair({ iceServers: [], iceTransportPolicy: 'relay', video: false });
    await negotiate();
    const gathered = await page.evaluate(async () => {
      await new Promise((r) => {
        if (window.a.pc.iceGatheringState === 'complete') {
          r();
        } else {
          window.a.pc.addEventListener('icegatheringstatechange', () => {
            if (window.a.pc.iceGatheringState === 'complete') {
              r();
            }
          });
        }
      });
      return { held: window.held.length, state: window.a.iceState };
    });
    assert.equal(gathered.held, 0, 'no candidates without a TURN server');
    assert.notEqual(gathered.state, 'connected');
  });
});

describe('TurnkeyCall toggles', () => {
  test('mute and camera switch the local tracks off and on', async () => {
    const result = await page.evaluate(async () => {
      const { TurnkeyCall } = window.turnkey;
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      const call = new TurnkeyCall({}, { direction: 'outgoing', type: 'video', localStream: stream });
      const seen = [];
      call.on('mute', (m) => seen.push(`mute:${m}`));
      call.on('camera', (c) => seen.push(`camera:${c}`));
      const audio = () => stream.getAudioTracks()[0].enabled;
      const video = () => stream.getVideoTracks()[0].enabled;
      const out = [];
      call.toggleMute();
      out.push([audio(), video()]);
      call.toggleCamera();
      out.push([audio(), video()]);
      call.toggleMute();
      call.toggleCamera();
      out.push([audio(), video()]);
      stream.getTracks().forEach((t) => t.stop());
      return { out, seen };
    });
    assert.deepEqual(result.out, [[false, true], [false, false], [true, true]]);
    assert.deepEqual(result.seen, ['mute:true', 'camera:true', 'mute:false', 'camera:false']);
  });
});

describe('the demo page', () => {
  test('loads with socket.io-client and turnkey.js, shows the sign-in form, no errors', async () => {
    const demo = await browser.newPage();
    const demoErrors = collectPageErrors(demo);
    await demo.goto(`${server.url}/`);
    await demo.waitForFunction(() => window.turnkeyDemo?.client, null, { timeout: 10_000 });
    assert.equal(await demo.evaluate(() => typeof window.io), 'function');
    for (const id of ['#email', '#password', '#register', '#login']) {
      assert.ok(await demo.isVisible(id), `${id} visible`);
    }
    assert.equal(await demo.isVisible('#app-view'), false);
    assert.equal(await demo.isVisible('#incoming'), false);
    assert.equal(await demo.isVisible('#call-screen'), false);
    await demo.setViewportSize({ width: 360, height: 740 });
    const overflow = await demo.evaluate(() => document.documentElement.scrollWidth > innerWidth);
    assert.equal(overflow, false, 'no horizontal scrolling on a phone-sized screen');
    await demo.close();
    assert.deepEqual(demoErrors, []);
  });

  test('signing up where there is no API shows the error in the form', async () => {
    const demo = await browser.newPage();
    const demoErrors = collectPageErrors(demo);
    await demo.goto(`${server.url}/`);
    await demo.waitForFunction(() => window.turnkeyDemo?.client, null, { timeout: 10_000 });
    await demo.click('#register');
    assert.match(await demo.textContent('#auth-error'), /email and a password/);
    await demo.fill('#email', 'nobody@example.test');
    await demo.fill('#password', 'a long enough password');
    await demo.click('#register');
    await demo.locator('#auth-error:has-text("HTTP 404")').waitFor({ timeout: 10_000 });
    assert.equal(await demo.isVisible('#app-view'), false);
    assert.equal(await demo.isEnabled('#register'), true, 'the form is usable again');
    await demo.close();
    // The 404 of the API request itself is the only console error.
    assert.deepEqual(demoErrors.filter((e) => !/404/.test(e)), []);
  });

  test('the loopback page logged no errors', () => {
    assert.deepEqual(errors, []);
  });
});
