// Unit tests of turnkey.js's pure helpers, in Node (no browser, no server):
//   cd web && node --test test/

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Emitter,
  iceFailureCause,
  iceServersExpiry,
  iceServersFromTurnCredentials,
  jwtExpiry,
  retryAfterSeconds,
  selectedCandidatePair,
  summarizeStats,
} from '../turnkey.js';

function jwt(payload) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}.c2ln`;
}

test('retryAfterSeconds reads delay-seconds and HTTP dates, else null', () => {
  const now = Date.parse('Thu, 26 Nov 2026 18:00:00 GMT');
  assert.equal(retryAfterSeconds('20', now), 20);
  assert.equal(retryAfterSeconds(' 0 ', now), 0);
  assert.equal(retryAfterSeconds('Thu, 26 Nov 2026 18:01:30 GMT', now), 90);
  assert.equal(retryAfterSeconds('Thu, 26 Nov 2026 17:59:00 GMT', now), 0); // already past
  assert.equal(retryAfterSeconds(null, now), null);
  assert.equal(retryAfterSeconds('soon', now), null);
  assert.equal(retryAfterSeconds('-5', now), null);
});

test('jwtExpiry reads exp in milliseconds', () => {
  assert.equal(jwtExpiry(jwt({ sub: 'u1', exp: 1_800_000_000 })), 1_800_000_000_000);
  // base64url with '-' and '_' and no padding.
  assert.equal(jwtExpiry(jwt({ sub: '>>>???', n: 'ÿÿ', exp: 1_700_000_001 })), 1_700_000_001_000);
});

test('jwtExpiry is null for tokens without exp or that are not JWTs', () => {
  assert.equal(jwtExpiry(jwt({ sub: 'u1' })), null);
  assert.equal(jwtExpiry('opaque-token'), null);
  assert.equal(jwtExpiry('a.%%%.c'), null);
  assert.equal(jwtExpiry(null), null);
});

test('iceServersExpiry prefers the ttl, else the TURN REST username timestamp', () => {
  const servers = [
    { urls: 'stun:127.0.0.1:3478' },
    { urls: 'turn:127.0.0.1:3478', username: '1800000000:u1', credential: 'x' },
    { urls: 'turns:127.0.0.1:5349', username: '1700000000:u1', credential: 'y' },
  ];
  assert.equal(iceServersExpiry(servers, 600, 1_000), 601_000);
  assert.equal(iceServersExpiry(servers, undefined), 1_700_000_000_000);
  assert.equal(iceServersExpiry([{ urls: 'turn:x', username: 'alice' }]), null);
  assert.equal(iceServersExpiry([], 0), null);
});

test('iceServersFromTurnCredentials splits STUN and TURN URIs', () => {
  const servers = iceServersFromTurnCredentials({
    username: '1800000000:u1',
    password: 'pw',
    ttl: 86400,
    uris: ['stun:h:3478', 'turn:h:3478?transport=udp', 'turns:h:5349?transport=tcp'],
  });
  assert.deepEqual(servers, [
    { urls: ['stun:h:3478'] },
    { urls: ['turn:h:3478?transport=udp', 'turns:h:5349?transport=tcp'], username: '1800000000:u1', credential: 'pw' },
  ]);
  assert.deepEqual(iceServersFromTurnCredentials({ iceServers: [{ urls: 'stun:x' }] }), [{ urls: 'stun:x' }]);
  assert.deepEqual(iceServersFromTurnCredentials(null), []);
});

// Stats shaped like Chromium's RTCStatsReport entries.
function chromeStats({ selected = 'CP2', withTransport = true } = {}) {
  return new Map(
    [
      withTransport && { id: 'T01', type: 'transport', selectedCandidatePairId: selected },
      { id: 'CP1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1', state: 'failed', nominated: false },
      {
        id: 'CP2', type: 'candidate-pair', localCandidateId: 'L2', remoteCandidateId: 'R2', state: 'succeeded',
        nominated: true, currentRoundTripTime: 0.0123, bytesSent: 1000, bytesReceived: 2000,
      },
      { id: 'L1', type: 'local-candidate', candidateType: 'host', protocol: 'udp', address: '192.0.2.2', port: 5000 },
      {
        id: 'L2', type: 'local-candidate', candidateType: 'relay', protocol: 'udp', relayProtocol: 'tcp',
        address: '127.0.0.1', port: 50000,
      },
      { id: 'R1', type: 'remote-candidate', candidateType: 'host', address: '192.0.2.3', port: 6000 },
      { id: 'R2', type: 'remote-candidate', candidateType: 'relay', address: '127.0.0.1', port: 50002 },
      { id: 'IA', type: 'inbound-rtp', kind: 'audio', bytesReceived: 300, packetsReceived: 3 },
      { id: 'IV', type: 'inbound-rtp', kind: 'video', bytesReceived: 5000, packetsReceived: 9, framesDecoded: 30 },
      { id: 'OA', type: 'outbound-rtp', kind: 'audio', bytesSent: 320, packetsSent: 4 },
      { id: 'OV', type: 'outbound-rtp', kind: 'video', bytesSent: 4800, packetsSent: 8, framesEncoded: 31 },
      { id: 'RA', type: 'remote-inbound-rtp', kind: 'audio', packetsLost: 0 },
    ]
      .filter(Boolean)
      .map((s) => [s.id, s]),
  );
}

test('selectedCandidatePair follows the transport to the selected pair', () => {
  const pair = selectedCandidatePair(chromeStats());
  assert.equal(pair.id, 'CP2');
  assert.equal(pair.localType, 'relay');
  assert.equal(pair.remoteType, 'relay');
  assert.equal(pair.relayProtocol, 'tcp');
  assert.equal(pair.rttMs, 12);
  assert.equal(pair.localAddress, '127.0.0.1');
  assert.equal(pair.remotePort, 50002);
});

test('selectedCandidatePair falls back to selected, then nominated and succeeded', () => {
  const noTransport = chromeStats({ withTransport: false });
  assert.equal(selectedCandidatePair(noTransport).id, 'CP2');
  // Firefox marks the pair itself.
  noTransport.set('CP1', { ...noTransport.get('CP1'), selected: true });
  assert.equal(selectedCandidatePair(noTransport).id, 'CP1');
  assert.equal(selectedCandidatePair(noTransport).localType, 'host');
});

test('selectedCandidatePair is null before a pair is chosen', () => {
  const stats = chromeStats({ withTransport: false });
  stats.set('CP2', { ...stats.get('CP2'), nominated: false, state: 'in-progress' });
  assert.equal(selectedCandidatePair(stats), null);
  assert.equal(selectedCandidatePair(new Map()), null);
  assert.equal(selectedCandidatePair(null), null);
});

test('selectedCandidatePair takes an array or a plain object of stats', () => {
  const list = [...chromeStats().values()];
  assert.equal(selectedCandidatePair(list).id, 'CP2');
  assert.equal(selectedCandidatePair(Object.fromEntries(chromeStats())).id, 'CP2');
});

test('summarizeStats sums RTP per kind and direction', () => {
  const s = summarizeStats(chromeStats(), 42);
  assert.equal(s.at, 42);
  assert.equal(s.pair.id, 'CP2');
  assert.deepEqual(s.inbound.audio, { bytes: 300, packets: 3, frames: 0 });
  assert.deepEqual(s.inbound.video, { bytes: 5000, packets: 9, frames: 30 });
  assert.deepEqual(s.outbound.audio, { bytes: 320, packets: 4, frames: 0 });
  assert.deepEqual(s.outbound.video, { bytes: 4800, packets: 8, frames: 31 });
  assert.equal(s.inboundBytes, 5300);
  assert.equal(s.outboundBytes, 5120);
});

test('Emitter: on, once, off, and a throwing listener does not stop the others', () => {
  const e = new Emitter();
  const seen = [];
  const off = e.on('x', (v) => seen.push(`a${v}`));
  e.once('x', (v) => seen.push(`b${v}`));
  const originalError = console.error;
  console.error = () => {};
  try {
    e.on('x', () => {
      throw new Error('boom');
    });
    e.on('x', (v) => seen.push(`c${v}`));
    e.emit('x', 1);
    off();
    e.emit('x', 2);
  } finally {
    console.error = originalError;
  }
  assert.deepEqual(seen, ['a1', 'b1', 'c1', 'c2']);
  assert.equal(e.emit('nobody'), false);
});

test('iceFailureCause reads a failed report as the server does (signal/call_payload.cc)', () => {
  const turn = 'turn:turn.example.org:3478?transport=udp';
  const failed = (extra) => ({ state: 'failed', localCandidates: { host: 1, srflx: 0, relay: 0 },
    iceErrors: [], turnUris: 2, iceGatheringState: 'complete', gatheringMs: 8_000, ...extra });
  const cases = [
    [{ state: 'connected' }, null],
    [null, null],
    [failed({ iceErrors: [{ url: turn, errorCode: 401 }, { url: turn, errorCode: 701 }] }), 'turn_auth'],
    [failed({ iceErrors: [{ url: turn, errorCode: 486 }, { url: turn, errorCode: 701 }] }), 'turn_refused'],
    [failed({ iceErrors: [{ url: turn, errorCode: 65535 }] }), 'turn_refused'],
    [failed({ iceErrors: [{ url: turn, errorCode: 701 }] }), 'turn_unreachable'],
    [failed({ iceErrors: [{ url: 'stun:stun.example.org:3478', errorCode: 401 }] }), 'turn_unreachable'],
    [failed({}), 'turn_unreachable'], // offered, complete, nothing came
    [failed({ turnUris: 0 }), 'no_relay'],
    [failed({ localCandidates: { relay: 2 } }), 'checks_failed'],
    [failed({ localCandidates: { relay: 2 }, endedBeforeIce: true, gatheringMs: 2_000 }), 'unknown'],
    [failed({ localCandidates: { relay: 2 }, endedBeforeIce: true, gatheringMs: 6_000 }), 'checks_failed'],
    [failed({ iceGatheringState: 'gathering', endedBeforeIce: true, gatheringMs: 2_000 }), 'unknown'],
    [failed({ iceGatheringState: 'new' }), 'unknown'],
    [{ state: 'failed' }, 'unknown'], // a client that sends no detail
  ];
  for (const [report, cause] of cases) {
    assert.equal(iceFailureCause(report), cause, JSON.stringify(report));
  }
});
