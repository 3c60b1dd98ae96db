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
import { createServer } from 'node:net';

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

  test('relay-only with a TURN server out of reach: the link says gatheringFailed, with the 701', async () => {
    // A loopback port nothing listens on (taken, then let go): TCP to it is refused at once.
    const closed = createServer();
    await new Promise((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address();
    await new Promise((r) => closed.close(r));
    const iceServers = [{ urls: [`turn:127.0.0.1:${port}?transport=tcp`], username: 'u', credential: 'p' }];
    await makePair({ iceServers, iceTransportPolicy: 'relay', video: false });
    const failed = page.evaluate(() => new Promise((r) => window.a.once('gatheringFailed', () => r({
      gathering: window.a.pc.iceGatheringState, gathered: window.a.gathered, errors: window.a.iceErrors,
    }))));
    await negotiate();
    const verdict = await Promise.race([failed, new Promise((r) => setTimeout(() => r(null), 15_000))]);
    assert.ok(verdict, 'gatheringFailed within 15 s');
    assert.equal(verdict.gathering, 'complete');
    assert.deepEqual(verdict.gathered, {});
    assert.deepEqual(verdict.errors.map((e) => e.errorCode), [701]);
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

  // The demo page with a session of its own making: `client` signed in with a made-up token,
  // and the API answered by `api(path, method)` (null: 404).
  async function demoPage(api = () => null) {
    const demo = await browser.newPage();
    const demoErrors = collectPageErrors(demo);
    await demo.route('**/api/**', async (route) => {
      const request = route.request();
      const data = api(new URL(request.url()).pathname, request.method(), request.postDataJSON?.());
      await route.fulfill(data === null ?
        { status: 404, contentType: 'application/json', body: '{"success":false,"code":"NOT_FOUND"}' } :
        { status: 200, contentType: 'application/json', body: JSON.stringify({ success: true, data }) });
    });
    await demo.goto(`${server.url}/`);
    await demo.waitForFunction(() => window.turnkeyDemo?.client, null, { timeout: 10_000 });
    return { demo, demoErrors };
  }

  test('Enter in the sign-in form logs in, or signs up once a display name is typed', async () => {
    const seen = [];
    const { demo, demoErrors } = await demoPage((path) => {
      seen.push(path);
      return null;
    });
    await demo.route('**/api/auth/login', (route) => route.fulfill({
      status: 401, contentType: 'application/json',
      body: JSON.stringify({ success: false, message: 'Invalid email or password', code: 'INVALID_CREDENTIALS' }),
    }));
    await demo.fill('#email', 'new@example.test');
    await demo.fill('#password', 'a long enough password');
    assert.equal(await demo.getAttribute('#login', 'class'), '', 'Log in is the button Enter presses');
    await demo.press('#password', 'Enter');
    await demo.locator('#auth-error:has-text("No account yet? Use Sign up.")').waitFor({ timeout: 10_000 });
    await demo.fill('#display-name', 'New Person');
    assert.equal(await demo.getAttribute('#register', 'class'), '', 'now Sign up is');
    assert.match(await demo.getAttribute('#login', 'class'), /secondary/);
    await demo.press('#display-name', 'Enter');
    await demo.locator('#auth-error:has-text("HTTP 404")').waitFor({ timeout: 10_000 });
    assert.deepEqual(seen, ['/api/auth/register']);
    await demo.close();
    assert.deepEqual(demoErrors.filter((e) => !/40[14]/.test(e)), []);
  });

  test('the call dialogs take focus, keep Tab inside and give focus back; Escape rejects a ringing call', async () => {
    const { demo, demoErrors } = await demoPage();
    const focused = () => demo.evaluate(() => document.activeElement?.id ?? null);
    await demo.focus('#email');
    await demo.evaluate(async () => {
      const { TurnkeyCall } = await import('/turnkey.js');
      const { client } = window.turnkeyDemo;
      const call = new TurnkeyCall(client, { id: 'c-in', direction: 'incoming', type: 'audio', peer: { handle: 'bob' } });
      window.ringing = call;
      Object.defineProperty(client, 'calls', { get: () => [call], configurable: true });
      client.emit('call', call);
      client.emit('incomingCall', call);
    });
    assert.equal(await demo.isVisible('#incoming'), true);
    assert.equal(await focused(), 'accept');
    const order = [];
    for (const key of ['Tab', 'Tab', 'Shift+Tab', 'Shift+Tab']) {
      await demo.keyboard.press(key);
      order.push(await focused());
    }
    assert.deepEqual(order, ['reject', 'accept', 'reject', 'accept']);
    await demo.keyboard.press('Escape');
    assert.equal(await demo.isVisible('#incoming'), false);
    assert.deepEqual(await demo.evaluate(() => [window.ringing.state, window.ringing.endReason]), ['ended', 'rejected']);
    assert.equal(await focused(), 'email', 'focus back where it was');

    // The call screen of an audio call: Mute and Hang up (Camera is disabled).
    await demo.focus('#password');
    await demo.evaluate(async () => {
      const { TurnkeyCall } = await import('/turnkey.js');
      const { client } = window.turnkeyDemo;
      const call = new TurnkeyCall(client, { direction: 'outgoing', type: 'audio', peer: { handle: 'bob' } });
      window.outgoing = call;
      Object.defineProperty(client, 'calls', { get: () => [call], configurable: true });
      client.emit('call', call);
    });
    assert.equal(await demo.isVisible('#call-screen'), true);
    assert.equal(await focused(), 'hangup');
    order.length = 0;
    for (const key of ['Tab', 'Tab', 'Shift+Tab', 'Shift+Tab', 'Escape']) {
      await demo.keyboard.press(key);
      order.push(await focused());
    }
    assert.deepEqual(order, ['mute', 'hangup', 'mute', 'hangup', 'hangup']);
    assert.equal(await demo.isVisible('#call-screen'), true, 'Escape does not hang up');
    // An ordinary outcome the server reports (callError) is no warning; a real fault is.
    const logged = [];
    demo.on('console', (m) => logged.push([m.type(), m.text()]));
    await demo.evaluate(async () => {
      const { TurnkeyError } = await import('/turnkey.js');
      window.outgoing.emit('error', new TurnkeyError('User busy', { code: 'CALL_ERROR' }));
      window.outgoing.emit('error', new TurnkeyError('Not authorized', { code: 'CALL_ERROR' }));
    });
    assert.deepEqual(logged, [['info', 'call error User busy'], ['warning', 'call error Not authorized']]);
    await demo.evaluate(() => window.outgoing._end('hangup'));
    assert.equal(await demo.isVisible('#call-screen'), false);
    assert.equal(await focused(), 'password');
    await demo.close();
    assert.deepEqual(demoErrors, []);
  });

  test('empty search, empty handle, outgoing calls nobody answered, and a passing "Saved."', async () => {
    const { demo, demoErrors } = await demoPage((path, method, body) => {
      if (path === '/api/users/search') {
        return { users: [] };
      }
      if (path === '/api/contacts') {
        return { contacts: [] };
      }
      if (path === '/api/calls/history') {
        const call = (callId, status, endReason) => ({
          callId, type: 'audio', status, direction: 'outgoing', isMissed: false, duration: 0, endReason,
          callerId: 'me', receiverId: 'bob-id', peer: { id: 'bob-id', handle: 'bob' }, createdAt: '2026-05-01T12:00:00.000Z',
        });
        return { calls: [call('h1', 'missed', 'timeout'), call('h2', 'missed', 'unavailable')], hasMore: false };
      }
      if (path === '/api/calls/missed') {
        return { calls: [], hasMore: false };
      }
      if (path === '/api/users/me' && method === 'PATCH') {
        return { user: { id: 'me', handle: 'me', ...body } };
      }
      return null;
    });
    await demo.evaluate(() => {
      const { client } = window.turnkeyDemo;
      client.token = 'made-up';
      client.user = { id: 'me', handle: 'me', displayName: 'Me' };
      client.emit('session', client.user);
    });
    await demo.locator('#app-view').waitFor({ timeout: 10_000 });

    await demo.fill('#search', 'nobody-here');
    await demo.press('#search', 'Enter');
    await demo.locator('#search-empty:has-text("No one found")').waitFor({ timeout: 10_000 });

    await demo.click('#call-handle-audio');
    assert.match(await demo.textContent('#dial-error'), /Enter the handle/);
    assert.equal(await demo.isVisible('#dial-error'), true);
    assert.equal(await demo.isVisible('#call-screen'), false);
    await demo.fill('#call-handle', 'b');
    assert.equal(await demo.isVisible('#dial-error'), false);

    await demo.locator('#history-h1').waitFor({ timeout: 10_000 });
    assert.equal(await demo.textContent('#history-h1 .status'), 'No answer');
    assert.equal(await demo.textContent('#history-h2 .status'), 'Unavailable');
    assert.equal(await demo.locator('#history .missed-mark').count(), 0);

    await demo.fill('#profile-name', 'Me Again');
    await demo.click('#save-handle');
    await demo.locator('#profile-msg:has-text("Saved.")').waitFor({ timeout: 10_000 });
    await demo.locator('#profile-msg').waitFor({ state: 'hidden', timeout: 10_000 });
    await demo.close();
    assert.deepEqual(demoErrors, []);
  });

  test('the loopback page logged no errors', () => {
    assert.deepEqual(errors, []);
  });
});
