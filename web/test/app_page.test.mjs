// Unit tests of the demo page (app.js) in Node: the page loaded into a fake DOM (fakes.mjs
// FakeDocument), its TurnkeyClient talking to the same fake turnkey, socket and
// RTCPeerConnection as the SDK's tests, on node:test's fake clock. The tests share one page and
// run in order (signed up, signed out, signed in again, then calls and the history).
//   cd web && node --test test/

import { after, before, mock, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  FakeDocument, FakeElement, FakePeerConnection, FakeServer, FakeSocket, MemoryStorage, advance,
  kBounded,
} from './fakes.mjs';

const kStream = { getTracks: () => [] };
const server = new FakeServer();
let socket;
let client;
let nextCallId = 0;

const $ = (selector) => globalThis.document.querySelector(selector);

// The descendants of `node` whose class list has `name`.
function byClass(node, name) {
  const found = String(node.className).split(/\s+/).includes(name) ? [node] : [];
  return found.concat(...node.children.map((c) => byClass(c, name)));
}

function press(form, key) {
  form.dispatchEvent(Object.assign(new Event('keydown'), { key }));
}

before(async () => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_700_000_000_000 });
  Object.assign(globalThis, {
    window: globalThis,
    document: new FakeDocument(),
    location: new URL('http://127.0.0.1:44080/'),
    sessionStorage: new MemoryStorage(),
    HTMLInputElement: FakeElement,
    RTCPeerConnection: FakePeerConnection,
    fetch: server.fetch,
    io: () => (socket = new FakeSocket((event) =>
      (event === 'initiateCall' ? { ok: true, callId: `k${++nextCallId}` } : { ok: true }))),
  });
  await import('../app.js');
  client = globalThis.turnkeyDemo.client;
});

after(() => {
  mock.timers.reset();
});

test('after a logout the form is back in login mode: Enter logs in, it does not sign up again', kBounded, async () => {
  $('#email').value = 'ada@example.test';
  $('#password').value = 'a password';
  $('#display-name').value = 'Ada';
  $('#register').click();
  await advance(500);
  assert.ok(client.loggedIn);
  assert.equal(server.count('/api/auth/register'), 1);

  $('#logout').click();
  await advance(500);
  assert.equal(client.loggedIn, false);
  assert.equal($('#auth-view').hidden, false);
  assert.equal($('#display-name').value, '');
  assert.ok($('#register').classList.contains('secondary'), 'Log in is the primary button');

  $('#password').value = 'a password';
  press($('#auth-form'), 'Enter');
  await advance(500);
  assert.equal(server.count('/api/auth/login'), 1);
  assert.equal(server.count('/api/auth/register'), 1, 'no second sign-up');
  assert.ok(client.loggedIn);
});

// Logs out, signs in as ada with `password`, which the server is set to refuse, and returns
// the error the form shows; then, after `restore`, signs in again (the tests after need the
// session).
async function refusedSignIn(password, restore = () => {}) {
  $('#logout').click();
  await advance(500);
  $('#email').value = 'ada@example.test';
  $('#password').value = password;
  $('#auth-form').dispatchEvent(new Event('submit'));
  await advance(500);
  const shown = $('#auth-error').hidden ? null : $('#auth-error').textContent;
  restore();
  $('#password').value = 'a password';
  $('#auth-form').dispatchEvent(new Event('submit'));
  await advance(500);
  assert.ok(client.loggedIn);
  return shown;
}

test('too many attempts: the page says how long to wait', kBounded, async () => {
  server.loginRetryAfter = '20';
  const shown = await refusedSignIn('a password', () => delete server.loginRetryAfter);
  assert.equal(shown, 'Too many attempts; try again later (in 20 s).');
});

test('a wrong password: two sentences, with a full stop between them', kBounded, async () => {
  server.wrongPassword = 'wrong password';
  const shown = await refusedSignIn('wrong password');
  assert.equal(shown, 'Invalid email or password. No account yet? Use Sign up.');
});

test('the history says "Ringing" and "In progress", and why a failed call failed', kBounded, async () => {
  const bob = { id: 'bob-id', handle: 'bob', displayName: 'Bob' };
  const entry = (callId, status, direction, ice = { caller: null, callee: null }) =>
    ({ callId, status, direction, type: 'audio', peer: bob, ice, createdAt: '2026-11-26T10:00:00Z' });
  server.history = [
    entry('h1', 'ringing', 'incoming'),
    entry('h2', 'active', 'outgoing'),
    entry('h3', 'failed', 'outgoing', { caller: { state: 'failed', failureCause: 'turn_unreachable' }, callee: null }),
    // This user was the callee: its own side's cause first.
    entry('h4', 'failed', 'incoming', {
      caller: { state: 'failed', failureCause: 'checks_failed' },
      callee: { state: 'failed', failureCause: 'turn_auth' },
    }),
    entry('h5', 'failed', 'outgoing', { caller: { state: 'failed', failureCause: 'unknown' }, callee: null }),
  ];
  await globalThis.turnkeyDemo.refreshHistory();
  const line = (id) => $('#history').find(`history-${id}`);
  const status = (id) => byClass(line(id), 'status')[0]?.textContent;
  const cause = (id) => byClass(line(id), 'cause')[0]?.textContent ?? null;
  assert.equal(status('h1'), 'Ringing');
  assert.equal(status('h2'), 'In progress');
  assert.equal(status('h3'), 'Failed');
  assert.equal(cause('h3'), 'the TURN server could not be reached');
  assert.equal(cause('h4'), 'the TURN server refused the credentials');
  assert.equal(cause('h5'), null, 'an unknown cause says nothing');
  assert.equal(cause('h2'), null);
  server.history = [];
});

test('TURN out of reach: the call ends at once and the page says why', kBounded, async () => {
  const call = await client.call({ handle: 'bob' }, { stream: kStream });
  socket.fire('callAccepted', { callId: call.id });
  await advance(250);
  const pc = FakePeerConnection.last;
  pc.gatherNothing(701);
  await advance(1_000);
  assert.equal(call.endReason, 'ice_failed');
  assert.equal($('#call-result').textContent, 'Could not connect the media: the TURN server could not be reached');
});

test('no media after 30 s, and the other side giving up on "Connecting...", say why when it is known', kBounded, async () => {
  socket.fire('incomingCall', { callId: 'in1', callerId: 'bob-id', callType: 'audio', caller: { id: 'bob-id', handle: 'bob' } });
  const incoming = client.calls.find((c) => c.id === 'in1');
  await incoming.accept({ stream: kStream });
  socket.fire('receiveOffer', { callId: 'in1', offer: { type: 'offer', sdp: 'v=0\r\n' } });
  await advance(250);
  FakePeerConnection.last.gather('gathering');
  FakePeerConnection.last.turnError(701); // and no answer from TURN after that, for good
  await advance(31_000, 1_000);
  assert.equal(incoming.endReason, 'connect_timeout');
  assert.equal($('#call-result').textContent,
    'Could not connect to @bob: no media after 30 s (the TURN server could not be reached)');

  const outgoing = await client.call({ handle: 'bob' }, { stream: kStream });
  socket.fire('callAccepted', { callId: outgoing.id });
  await advance(250);
  FakePeerConnection.last.gather('gathering');
  FakePeerConnection.last.turnError(701);
  await advance(6_000);
  socket.fire('callEnded', { callId: outgoing.id, reason: 'hangup', endedBy: 'bob-id' });
  await advance(250);
  assert.equal($('#call-result').textContent,
    'Call ended: the media never connected (the TURN server could not be reached)');
});
