// turnkey.js: the browser client for a turnkey server (accounts, Socket.IO signaling, WebRTC
// through turnkey's TURN relay). An ES module with no build step and no dependency other than a
// socket.io-client 4 `io` function, which is passed in, found as the global `io` (the
// /socket.io.min.js script), or imported from `socketIoUrl` (the ESM build turnkey serves).
//
//   import { TurnkeyClient } from '/turnkey.js';
//   const client = new TurnkeyClient({ iceTransportPolicy: 'all' });
//   await client.login({ email, password });        // also connects the socket
//   client.on('incomingCall', (call) => call.accept());
//   const call = await client.call({ handle: 'alice' }, { video: true });
//   call.on('remoteStream', (stream) => { videoElement.srcObject = stream; });
//   call.hangup();
//
// The call contract is turnkey's DESIGN.md section 5; the REST envelope is
// {success, message, data}. Types: turnkey.d.ts beside this file.

const kDefaults = {
  baseUrl: '',
  socketPath: '', // '' = `<baseUrl path>/socket.io/`
  socketIoUrl: '', // '' = `${baseUrl}/socket.io.esm.min.js`
  socketOptions: {},
  iceTransportPolicy: 'all',
  rtcConfiguration: {},
  storage: null,
  storageKey: 'turnkey.session',
  autoConnect: true,
  tokenRefreshMarginMs: 60_000,
  // A REST request with no answer this long fails (NETWORK) instead of hanging: a link that
  // drops packets neither answers nor errors, and a refresh stuck so would hold back the
  // socket's reconnection after the link is back.
  requestTimeoutMs: 15_000,
  iceRefreshMarginMs: 5 * 60_000,
  ackTimeoutMs: 10_000,
  // Media down after it worked (see TurnkeyCall "Keeping the media up"): the caller restarts ICE
  // after ICE 'disconnected' for disconnectedGraceMs (at once on 'failed'), and again when a
  // restart has not brought it back within iceRestartTimeoutMs, at most maxIceRestarts in a row;
  // then the call ends as 'ice_failed'. The callee ends it so when its media stays down for
  // 2 * iceRestartTimeoutMs with no new offer from the caller.
  disconnectedGraceMs: 2_500,
  maxIceRestarts: 3,
  iceRestartTimeoutMs: 10_000,
  // A call whose socket has been disconnected this long ends here as 'connection_lost'. The
  // server ends it after its signal.reconnect_grace (10 s by default), which a client cannot
  // know: keep this above it.
  callOfflineLimitMs: 30_000,
  // A call accepted but not connected (ICE) within this time ends as 'connect_timeout'.
  connectTimeoutMs: 30_000,
  // call() while the socket is down waits at most this long for it before failing 'OFFLINE'.
  callOfflineWaitMs: 3_000,
  // One tab, one session: see #claimTab. 'auto' = on when storage is this window's
  // sessionStorage; true/false force it. tabLockWaitMs: how long a reloaded page waits for its
  // previous document to let go.
  tabLock: 'auto',
  tabLockWaitMs: 1_500,
  locks: null, // null = navigator.locks
  audioConstraints: true,
  videoConstraints: { width: { ideal: 1280 }, height: { ideal: 720 } },
};

// setTimeout's delay is a signed 32-bit count of milliseconds.
const kMaxTimerMs = 2 ** 31 - 1;

// How long a gathering that completed with no local candidate waits for a candidate event
// queued behind that state change before it counts as failed (PeerLink 'gatheringFailed').
const kGatheringSettleMs = 500;

/** An error from turnkey (REST or Socket.IO ack) or from the call flow. */
export class TurnkeyError extends Error {
  constructor(message, { status = 0, code = '', data = null, retryAfterSeconds = null } = {}) {
    super(message || 'turnkey error');
    this.name = 'TurnkeyError';
    this.status = status;
    this.code = code;
    this.data = data;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * The wait a Retry-After header asks for (RFC 9110 section 10.2.3: delay-seconds or an
 * HTTP-date), in whole seconds; null when there is none or it does not read as either.
 */
export function retryAfterSeconds(value, now = Date.now()) {
  if (value === null || value === undefined) {
    return null;
  }
  const text = String(value).trim();
  if (/^\d+$/.test(text)) {
    return Number(text);
  }
  // An HTTP-date starts with the day's name ("Sun, 06 Nov 1994 08:49:37 GMT"); Date.parse alone
  // would take "-5" for a year.
  const at = /^[A-Za-z]{3}/.test(text) ? Date.parse(text) : NaN;
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/** A minimal event emitter; a throwing listener is logged and does not stop the others. */
export class Emitter {
  #handlers = new Map();

  on(event, fn) {
    if (!this.#handlers.has(event)) {
      this.#handlers.set(event, new Set());
    }
    this.#handlers.get(event).add(fn);
    return () => this.off(event, fn);
  }

  once(event, fn) {
    const off = this.on(event, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  off(event, fn) {
    this.#handlers.get(event)?.delete(fn);
  }

  emit(event, ...args) {
    const set = this.#handlers.get(event);
    if (!set) {
      return false;
    }
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        console.error(`turnkey: '${event}' listener threw`, e);
      }
    }
    return set.size > 0;
  }
}

// --- Pure helpers (exported for tests and for apps with their own signaling) ----------------

function base64UrlDecode(text) {
  const padded = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(padded + '='.repeat((4 - (padded.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

// A numeric claim of a JWT in milliseconds, or null.
function jwtTime(token, claim) {
  try {
    const payload = JSON.parse(base64UrlDecode(String(token).split('.')[1]));
    return typeof payload[claim] === 'number' ? payload[claim] * 1000 : null;
  } catch {
    return null;
  }
}

/** The `exp` of a JWT in milliseconds since the epoch, or null if it has none or is not a JWT. */
export function jwtExpiry(token) {
  return jwtTime(token, 'exp');
}

/** The `iat` of a JWT in milliseconds since the epoch, or null. */
export function jwtIssuedAt(token) {
  return jwtTime(token, 'iat');
}

/**
 * How long to wait before renewing something (an access token, TURN credentials) that lasts
 * `lifetimeMs` in all and has `remainingMs` left: `marginMs` before it ends, but never more than
 * `maxShare` of its lifetime before, and never sooner than `floorShare` of its lifetime (nor
 * than `minMs`).
 *
 * Both limits matter when the lifetime is short. A fixed margin as long as the lifetime made
 * every fresh token or credential due at once, and the renewal looped every second; capping
 * the margin renews at 80% of the lifetime by default, and the floor keeps renewals at least a
 * tenth of a lifetime apart even if `remainingMs` is wrong (a clock that jumped).
 */
export function renewalDelay({
  lifetimeMs, remainingMs, marginMs, maxShare = 0.2, floorShare = 0.1, minMs = 1_000,
}) {
  const lifetime = Math.max(0, Number(lifetimeMs) || 0);
  const margin = Math.min(Math.max(0, marginMs), lifetime * maxShare);
  const floor = Math.max(minMs, lifetime * floorShare);
  return Math.min(Math.max(remainingMs - margin, floor), kMaxTimerMs);
}

/**
 * Whether iceServers should be fetched again before use: with less than `marginMs` left, or
 * past half of their lifetime when that is shorter (docs/api.md "iceServers"). A lifetime
 * shorter than the margin then does not mean "fetch before every call".
 */
export function iceServersStale({ expireAt, lifetimeMs, nowMs = Date.now(), marginMs }) {
  if (!expireAt) {
    return false;
  }
  const margin = lifetimeMs > 0 ? Math.min(marginMs, lifetimeMs / 2) : marginMs;
  return expireAt - nowMs < margin;
}

/**
 * When a set of iceServers stops working, in milliseconds since the epoch: now + ttl when the
 * server gave a ttl (seconds), else the earliest expiry timestamp of the TURN REST usernames
 * ("<unix seconds>:<user>"), else null.
 */
export function iceServersExpiry(iceServers, ttlSeconds, nowMs = Date.now()) {
  if (typeof ttlSeconds === 'number' && ttlSeconds > 0) {
    return nowMs + ttlSeconds * 1000;
  }
  let earliest = null;
  for (const server of iceServers ?? []) {
    const match = /^(\d{9,})(?::|$)/.exec(server?.username ?? '');
    if (match) {
      const at = Number(match[1]) * 1000;
      earliest = earliest === null ? at : Math.min(earliest, at);
    }
  }
  return earliest;
}

/** The TURN REST API answer ({username, password, ttl, uris}) as RTCIceServer[]. */
export function iceServersFromTurnCredentials(credentials) {
  if (!credentials) {
    return [];
  }
  if (Array.isArray(credentials.iceServers)) {
    return credentials.iceServers;
  }
  const uris = credentials.uris ?? credentials.urls ?? [];
  const stun = uris.filter((u) => /^stuns?:/.test(u));
  const turn = uris.filter((u) => /^turns?:/.test(u));
  const servers = [];
  if (stun.length) {
    servers.push({ urls: stun });
  }
  if (turn.length) {
    servers.push({ urls: turn, username: credentials.username, credential: credentials.password });
  }
  return servers;
}

function statsById(report) {
  const byId = new Map();
  if (!report) {
    return byId;
  }
  if (typeof report.forEach === 'function') {
    report.forEach((value, key) => {
      const s = value && typeof value === 'object' ? value : key;
      byId.set(s.id ?? key, s);
    });
  } else {
    for (const s of Object.values(report)) {
      byId.set(s.id, s);
    }
  }
  return byId;
}

/**
 * The selected ICE candidate pair in an RTCStatsReport (or a Map / array / object of stats):
 * the transport's selectedCandidatePairId, else a candidate-pair marked `selected`, else a
 * nominated pair in state succeeded. Null before one is chosen.
 */
export function selectedCandidatePair(report) {
  const byId = statsById(report);
  let pair = null;
  for (const s of byId.values()) {
    if (s.type === 'transport' && s.selectedCandidatePairId && byId.has(s.selectedCandidatePairId)) {
      pair = byId.get(s.selectedCandidatePairId);
      break;
    }
  }
  if (!pair) {
    pair = [...byId.values()].find((s) => s.type === 'candidate-pair' && s.selected) ?? null;
  }
  if (!pair) {
    const nominated = [...byId.values()].filter(
      (s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded',
    );
    nominated.sort((a, b) => (b.bytesReceived ?? 0) - (a.bytesReceived ?? 0));
    pair = nominated[0] ?? null;
  }
  if (!pair) {
    return null;
  }
  const local = byId.get(pair.localCandidateId) ?? {};
  const remote = byId.get(pair.remoteCandidateId) ?? {};
  const rtt = pair.currentRoundTripTime;
  return {
    id: pair.id,
    state: pair.state ?? null,
    localType: local.candidateType ?? null,
    remoteType: remote.candidateType ?? null,
    relayProtocol: local.relayProtocol ?? null,
    localProtocol: local.protocol ?? null,
    localAddress: local.address ?? local.ip ?? null,
    localPort: local.port ?? null,
    remoteAddress: remote.address ?? remote.ip ?? null,
    remotePort: remote.port ?? null,
    rttMs: typeof rtt === 'number' ? Math.round(rtt * 1000) : null,
    bytesSent: pair.bytesSent ?? 0,
    bytesReceived: pair.bytesReceived ?? 0,
  };
}

/**
 * A summary of an RTCStatsReport: the selected pair and RTP byte/packet counts per direction and
 * kind ({inbound: {audio, video}, outbound: {audio, video}}, each {bytes, packets, frames}).
 */
export function summarizeStats(report, nowMs = Date.now()) {
  const byId = statsById(report);
  const blank = () => ({ bytes: 0, packets: 0, frames: 0 });
  const summary = {
    at: nowMs,
    pair: selectedCandidatePair(byId),
    inbound: { audio: blank(), video: blank() },
    outbound: { audio: blank(), video: blank() },
    inboundBytes: 0,
    outboundBytes: 0,
  };
  for (const s of byId.values()) {
    const kind = s.kind ?? s.mediaType;
    if (kind !== 'audio' && kind !== 'video') {
      continue;
    }
    if (s.type === 'inbound-rtp') {
      const slot = summary.inbound[kind];
      slot.bytes += s.bytesReceived ?? 0;
      slot.packets += s.packetsReceived ?? 0;
      slot.frames += s.framesDecoded ?? 0;
      summary.inboundBytes += s.bytesReceived ?? 0;
    } else if (s.type === 'outbound-rtp') {
      const slot = summary.outbound[kind];
      slot.bytes += s.bytesSent ?? 0;
      slot.packets += s.packetsSent ?? 0;
      slot.frames += s.framesEncoded ?? 0;
      summary.outboundBytes += s.bytesSent ?? 0;
    }
  }
  return summary;
}

// How long a client gathers before a TURN server that never answers can be told from one that
// answers late (the server's kSilentTurnMs).
const kSilentTurnMs = 5_000;

/**
 * Why a failed reportIce failed, read as the server reads it (docs/metrics.md,
 * turnkey_ice_failures_total): 'turn_auth', 'turn_refused', 'turn_unreachable', 'no_relay',
 * 'checks_failed' or 'unknown'; null for a report that is not 'failed'. The server's cause for
 * the same report (history `ice.caller/callee.failureCause`) is the same.
 */
export function iceFailureCause(report) {
  if (report?.state !== 'failed') {
    return null;
  }
  // Ended (by the other side, or a hang-up) before ICE's verdict and within a silent TURN
  // server's time: what had not come may only have been late.
  const cutShort = report.endedBeforeIce === true &&
    !(typeof report.gatheringMs === 'number' && report.gatheringMs >= kSilentTurnMs);
  if (Number(report.localCandidates?.relay) >= 1) {
    return cutShort ? 'unknown' : 'checks_failed';
  }
  let auth = false;
  let refused = false;
  let unreachable = false;
  for (const error of Array.isArray(report.iceErrors) ? report.iceErrors : []) {
    if (!String(error?.url ?? '').startsWith('turn') || typeof error?.errorCode !== 'number') {
      continue; // a STUN server's error says nothing about the relay
    }
    const code = error.errorCode;
    if (code === 401 || code === 431 || code === 441) {
      auth = true;
    } else if (code >= 700 && code < 800) {
      unreachable = true; // the browser's own: 701, no answer or no route
    } else {
      refused = true; // the server's: 403, 437, 486 quota, 508 capacity, Firefox's 65535
    }
  }
  if (auth) {
    return 'turn_auth';
  }
  if (refused) {
    return 'turn_refused';
  }
  if (unreachable) {
    return 'turn_unreachable';
  }
  if (typeof report.turnUris !== 'number') {
    return 'unknown';
  }
  if (report.turnUris < 1) {
    return 'no_relay';
  }
  const gathering = report.iceGatheringState;
  if (typeof gathering !== 'string' || gathering === 'new' || (cutShort && gathering === 'gathering')) {
    return 'unknown';
  }
  return 'turn_unreachable';
}

function iceUfrags(sdp) {
  return new Set([...String(sdp ?? '').matchAll(/^a=ice-ufrag:(\S+)/gm)].map((m) => m[1]));
}

function countTurnUris(iceServers) {
  let count = 0;
  for (const server of iceServers ?? []) {
    for (const url of [server?.urls ?? []].flat()) {
      count += /^turns?:/.test(String(url)) ? 1 : 0;
    }
  }
  return count;
}

function sameSet(a, b) {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

function descriptionJson(description) {
  return description ? { type: description.type, sdp: description.sdp } : null;
}

// --- PeerLink: one RTCPeerConnection, independent of how signals travel -------------------

/**
 * One RTCPeerConnection with the chores every call needs: local tracks, offer/answer, remote
 * candidates held back until a remote description with their ufrag is set (so candidates that
 * outrun their offer or an ICE restart are not lost), ICE server updates, restarts and stats.
 *
 * Events: 'signal' {type:'candidate', candidate} for every local candidate (send it to the peer),
 * 'remoteStream' (MediaStream), 'iceState' (RTCIceConnectionState), 'connectionState',
 * 'gatheringFailed' (the current gathering completed without a single local candidate: nothing
 * can connect until a restart gathers some).
 */
export class PeerLink extends Emitter {
  /** Candidates gathered here, by type ({host: 2, srflx: 1, relay: 0, ...}), every ICE generation. */
  gathered = {};
  /** TURN server errors met while gathering (icecandidateerror): [{url, errorCode}], at most 8. */
  iceErrors = [];
  /** turn: and turns: URIs in the configuration the link gathers with. */
  turnUris = 0;
  /** When the link was made (ms), about when its gathering began. */
  createdAt = Date.now();
  #pending = [];
  #remoteUfrags = new Set();
  #remoteStream = null;
  #remoteTypes = new Map(); // "address port" -> type, of the candidates the peer signaled
  // The gathering at work (a restart begins another): candidates seen since it began, and the
  // candidates of each local ufrag, so that a late event of one generation is not taken for
  // another's. See #onGatheringState.
  #gathering = 0;
  #sinceGathering = 0;
  #byUfrag = new Map();
  #gatheringCheck = null;

  constructor({ iceServers = [], iceTransportPolicy = 'all', rtcConfiguration = {}, RTCPeerConnection } = {}) {
    super();
    const Ctor = RTCPeerConnection ?? globalThis.RTCPeerConnection;
    if (!Ctor) {
      throw new TurnkeyError('RTCPeerConnection is not available here', { code: 'NO_WEBRTC' });
    }
    this.pc = new Ctor({ ...rtcConfiguration, iceServers, iceTransportPolicy });
    this.pc.addEventListener('icecandidate', (e) => {
      if (e.candidate && e.candidate.candidate) {
        const type = e.candidate.type ?? /\styp\s(\w+)/.exec(e.candidate.candidate)?.[1];
        if (type) {
          this.gathered[type] = (this.gathered[type] ?? 0) + 1;
        }
        this.#sinceGathering += 1;
        const ufrag = e.candidate.usernameFragment ?? /\sufrag\s(\S+)/.exec(e.candidate.candidate)?.[1];
        if (ufrag) {
          this.#byUfrag.set(ufrag, (this.#byUfrag.get(ufrag) ?? 0) + 1);
        }
        this.emit('signal', { type: 'candidate', candidate: e.candidate.toJSON() });
      }
    });
    this.pc.addEventListener('icegatheringstatechange', () => this.#onGatheringState());
    // Why no relay candidate came (a TURN server's 401, 701 for one out of reach): what the
    // server's failure metrics are made of (reportIce iceErrors).
    this.turnUris = countTurnUris(iceServers);
    this.pc.addEventListener('icecandidateerror', (e) => {
      const error = { url: String(e.url ?? ''), errorCode: Number(e.errorCode) || 0 };
      if (error.url.startsWith('turn') && this.iceErrors.length < 8 &&
          !this.iceErrors.some((x) => x.url === error.url && x.errorCode === error.errorCode)) {
        this.iceErrors.push(error);
      }
    });
    this.pc.addEventListener('track', (e) => {
      const stream = e.streams?.[0];
      if (stream) {
        this.#remoteStream = stream;
      } else {
        this.#remoteStream ??= new MediaStream();
        this.#remoteStream.addTrack(e.track);
      }
      this.emit('remoteStream', this.#remoteStream);
    });
    this.pc.addEventListener('iceconnectionstatechange', () => {
      this.emit('iceState', this.pc.iceConnectionState);
    });
    this.pc.addEventListener('connectionstatechange', () => {
      this.emit('connectionState', this.pc.connectionState);
    });
  }

  get remoteStream() {
    return this.#remoteStream;
  }

  get iceState() {
    return this.pc.iceConnectionState;
  }

  get connectionState() {
    return this.pc.connectionState;
  }

  /** Sends every track of `stream` to the peer. Call before the first offer or answer. */
  addLocalStream(stream) {
    for (const track of stream.getTracks()) {
      this.pc.addTrack(track, stream);
    }
  }

  /** Creates and applies a local offer; returns it as {type, sdp} for the peer. */
  async createOffer({ iceRestart = false } = {}) {
    const offer = await this.pc.createOffer({ iceRestart });
    await this.pc.setLocalDescription(offer);
    return descriptionJson(this.pc.localDescription);
  }

  /** Applies the peer's offer, creates and applies the answer; returns the answer {type, sdp}. */
  async acceptOffer(offer) {
    await this.#setRemote(offer);
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    return descriptionJson(this.pc.localDescription);
  }

  /** Applies the peer's answer to our offer. */
  async acceptAnswer(answer) {
    await this.#setRemote(answer);
  }

  /** Adds a peer candidate now, or once the remote description it belongs to is set. */
  async addRemoteCandidate(candidate) {
    if (!candidate || !candidate.candidate) {
      return;
    }
    this.#noteRemoteCandidate(candidate.candidate);
    if (!this.#canAdd(candidate)) {
      this.#pending.push(candidate);
      return;
    }
    await this.#add(candidate);
  }

  /** Uses new ICE servers from now on (for the next gathering, e.g. an ICE restart). */
  setIceServers(iceServers) {
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
      this.turnUris = countTurnUris(iceServers);
    } catch (e) {
      console.warn('turnkey: setConfiguration refused new iceServers', e);
    }
  }

  /** Marks ICE for restart; the next createOffer() carries new credentials. */
  restartIce() {
    if (typeof this.pc.restartIce === 'function') {
      this.pc.restartIce();
    }
  }

  async getStats() {
    return this.pc.getStats();
  }

  async stats() {
    return summarizeStats(await this.pc.getStats());
  }

  close() {
    this.#pending = [];
    clearTimeout(this.#gatheringCheck);
    this.#gatheringCheck = null;
    try {
      this.pc.close();
    } catch {
      // Already closed.
    }
  }

  // A gathering that completes without a single local candidate (TURN out of reach with a
  // relay-only policy, say) leaves ICE nothing to pair: no connection can come of it. Chromium
  // then never moves ICE to 'failed', so the link says 'gatheringFailed' itself. Only for the
  // gathering at work (an ICE restart starts another, counted afresh) and only once it is
  // complete; the verdict waits kGatheringSettleMs in case a candidate event was queued behind
  // the state change, and any candidate of the current local ufrag, or any since the gathering
  // began, means it did gather something.
  #onGatheringState() {
    const state = this.pc.iceGatheringState;
    if (state === 'gathering' || state === 'new') {
      this.#gathering += 1;
      this.#sinceGathering = 0;
      clearTimeout(this.#gatheringCheck);
      this.#gatheringCheck = null;
      return;
    }
    if (state !== 'complete' || this.#gatheredNow()) {
      return;
    }
    const gathering = this.#gathering;
    clearTimeout(this.#gatheringCheck);
    this.#gatheringCheck = setTimeout(() => {
      this.#gatheringCheck = null;
      if (gathering === this.#gathering && this.pc.iceGatheringState === 'complete' &&
          this.pc.signalingState !== 'closed' && !this.#gatheredNow()) {
        this.emit('gatheringFailed');
      }
    }, kGatheringSettleMs);
  }

  // Whether the gathering at work has produced a local candidate.
  #gatheredNow() {
    if (this.#sinceGathering > 0) {
      return true;
    }
    for (const ufrag of iceUfrags(this.pc.localDescription?.sdp)) {
      if ((this.#byUfrag.get(ufrag) ?? 0) > 0) {
        return true;
      }
    }
    return false;
  }

  #canAdd(candidate) {
    if (!this.pc.remoteDescription) {
      return false;
    }
    // A candidate of a newer ICE generation (a restart whose offer or answer is not applied yet)
    // would be refused now; hold it until that description arrives.
    const ufrag = candidate.usernameFragment;
    return !ufrag || this.#remoteUfrags.size === 0 || this.#remoteUfrags.has(ufrag);
  }

  async #add(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (e) {
      if (this.pc.signalingState !== 'closed') {
        console.warn('turnkey: addIceCandidate failed', e);
      }
    }
  }

  /**
   * The type the peer signaled for its candidate at `address`:`port`, or null. A candidate first
   * met in a connectivity check is peer-reflexive (prflx) to ICE; Chromium retypes it when the
   * signaled one arrives, Firefox keeps prflx, so the report looks it up here.
   */
  remoteCandidateType(address, port) {
    return this.#remoteTypes.get(`${address} ${port}`) ?? null;
  }

  // "candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host ...": address, port and type.
  #noteRemoteCandidate(line) {
    const fields = String(line).replace(/^a=/, '').trim().split(/\s+/);
    const typ = fields.indexOf('typ');
    if (fields.length >= 8 && typ === 6 && fields[7]) {
      this.#remoteTypes.set(`${fields[4]} ${fields[5]}`, fields[7]);
    }
  }

  async #setRemote(description) {
    await this.pc.setRemoteDescription(description);
    for (const line of String(description?.sdp ?? '').split(/\r?\n/)) {
      if (line.startsWith('a=candidate:')) {
        this.#noteRemoteCandidate(line);
      }
    }
    this.#remoteUfrags = iceUfrags(this.pc.remoteDescription?.sdp);
    const waiting = this.#pending;
    this.#pending = [];
    for (const candidate of waiting) {
      if (this.#canAdd(candidate)) {
        await this.#add(candidate);
      } else {
        this.#pending.push(candidate);
      }
    }
  }
}

// --- Calls ------------------------------------------------------------------------------

const kEndedStates = new Set(['ended']);

/**
 * One call, outgoing or incoming. Created by TurnkeyClient; apps listen and call methods.
 *
 * state: 'dialing' (initiateCall sent) -> 'ringing' -> 'connecting' (accepted, ICE running)
 *        -> 'active' (ICE connected) <-> 'reconnecting' -> 'ended'.
 * A call that stays 'connecting' for options.connectTimeoutMs, or whose peer sends a description
 * that cannot be used before it ever connected, ends as 'connect_timeout' / 'setup_failed'
 * (reported to the server as a failed ICE, then endCall). One whose gathering completes without a
 * single local candidate before it ever connected (PeerLink 'gatheringFailed') ends at once as
 * 'ice_failed', as on ICE 'failed'.
 *
 * Keeping the media up. The media is down when ICE is 'disconnected' or 'failed', or the
 * connection ('connectionState') is 'failed' (Chrome may leave iceConnectionState at
 * 'disconnected' while connectionState goes 'failed'); the call is then 'reconnecting'. Only the
 * caller restarts ICE (two offerers at once would collide): after disconnectedGraceMs of
 * 'disconnected', at once on 'failed', and again whenever a restart has not brought the media
 * back within iceRestartTimeoutMs; after maxIceRestarts restarts in a row it ends the call as
 * 'ice_failed' (reportIce 'failed', then endCall). The callee ends the call so when its media stays down for
 * 2 * iceRestartTimeoutMs without a new offer from the caller (each offer starts that time
 * again). While the socket is disconnected no offer can travel: these timers then wait for the
 * socket (the client's callOfflineLimitMs bounds that), and the first thing after it is back is a
 * restart (caller) or a fresh wait (callee). Media up again resets the restart count.
 *
 * Events: 'state' (state), 'ringing', 'accepted', 'localStream', 'remoteStream', 'iceState',
 *         'connectionState', 'connected', 'reconnecting', 'iceReport' (report), 'mute' (bool),
 *         'camera' (bool:off), 'ended' ({reason, endedBy}), 'error' (TurnkeyError).
 */
export class TurnkeyCall extends Emitter {
  #client;
  #link = null;
  #reportedState = null; // the state of the latest reportIce sent
  // When the TURN credential the link last gathered with expires (ms), if known.
  #iceExpireAt = null;
  #renewTimer = null; // the caller's check at 85% of that credential's life
  #everConnected = false;
  #restarts = 0;
  #restartInFlight = false;
  #restartGeneration = 0; // restarts begun: one whose offer was lost with the socket is let go
  #renewingFrom = null; // a renewal's restart in flight: the expiry of the credential it replaces
  #abandonReport = null; // the failed report #abandon sends before its endCall
  // One timer drives recovery: 'grace' (disconnected, not yet restarted), 'restart' (the time a
  // restart has to work) or 'wait' (callee: the time the caller has to send an offer).
  #recoveryTimer = null;
  #recoveryKind = null;
  #down = false;
  #waitingForSocket = false;
  #pendingCandidates = [];
  #pendingOffer = null;
  #offerGeneration = 0; // offers received, so a slow one never overtakes a newer one
  #settle = null;
  #connectTimer = null;
  #abandoning = false;

  constructor(client, { id = null, direction, type, peer = {}, localStream = null }) {
    super();
    this.#client = client;
    this.id = id;
    this.direction = direction;
    this.type = type;
    this.peer = { id: peer.id ?? null, handle: peer.handle ?? null, displayName: peer.displayName ?? null };
    this.state = direction === 'outgoing' ? 'dialing' : 'ringing';
    this.localStream = localStream;
    this.remoteStream = null;
    this.createdAt = Date.now();
    this.answeredAt = null;
    this.connectedAt = null;
    this.endedAt = null;
    this.endReason = null;
    this.endedBy = null;
    // The TurnkeyError a call ended with, when it ended on one (a refused initiateCall: its
    // message is the server's, e.g. "Cannot call yourself").
    this.endError = null;
    this.muted = false;
    this.cameraOff = false;
    this.iceReport = null;
    // Resolves when the callee accepts; rejects (TurnkeyError, code = end reason) if the call
    // ends first. Handled internally, so an unobserved rejection is not reported.
    this.answered = new Promise((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    this.answered.catch(() => {});
    // Resolves with {reason, endedBy} when the call ends.
    this.ended = new Promise((resolve) => this.once('ended', resolve));
  }

  get isEnded() {
    return kEndedStates.has(this.state);
  }

  get peerConnection() {
    return this.#link?.pc ?? null;
  }

  /** Accepts this incoming call: opens the microphone (and camera for video calls). */
  async accept({ stream } = {}) {
    if (this.direction !== 'incoming' || this.state !== 'ringing') {
      throw new TurnkeyError(`cannot accept a call in state ${this.state}`, { code: 'BAD_STATE' });
    }
    this.#setState('connecting');
    try {
      this.localStream = stream ?? (await this.#client._openMedia(this.type === 'video'));
    } catch (e) {
      // No microphone (or permission refused): still ringing, the user may reject or retry.
      if (!this.isEnded) {
        this.#setState('ringing');
      }
      throw toTurnkeyError(e);
    }
    if (this.isEnded) {
      this.#stopLocal();
      throw new TurnkeyError('the call ended before it was accepted', { code: this.endReason });
    }
    this.emit('localStream', this.localStream);
    try {
      await this.#makeLink();
      await this.#client._emitAck('acceptCall', { callId: this.id });
    } catch (e) {
      const error = toTurnkeyError(e);
      this._end('error', { error });
      throw error;
    }
    this.answeredAt ??= Date.now();
    this.#settle.resolve(this);
    this.emit('accepted');
  }

  /** Rejects this incoming call (stops it ringing on every device of this user). */
  async reject() {
    if (this.direction !== 'incoming' || this.state !== 'ringing') {
      return;
    }
    this._end('rejected', { endedBy: this.#client.user?.id ?? null });
    await this.#client._emitAck('rejectCall', { callId: this.id }).catch(() => {});
  }

  /** Ends the call: cancels while ringing, rejects an incoming one, hangs up an active one. */
  async hangup() {
    if (this.isEnded) {
      return;
    }
    if (this.direction === 'incoming' && this.state === 'ringing') {
      return this.reject();
    }
    const wasRinging = this.state === 'dialing' || this.state === 'ringing';
    const id = this.id;
    if (this.answeredAt !== null && !this.#everConnected) {
      // Hung up on "Connecting...": the media never came, so the call is not a completed one
      // (the report goes out before the endCall; Socket.IO keeps the order).
      this.#report('failed', { awaitAck: false, endedBeforeIce: true });
    }
    this._end(wasRinging ? 'cancelled' : 'hangup', { endedBy: this.#client.user?.id ?? null });
    if (id) {
      // Giving up on lost media (#abandon) may have its report on the way: the endCall follows it.
      if (this.#abandonReport) {
        await this.#abandonReport.catch(() => {});
      }
      await this.#client._emitAck('endCall', { callId: id }).catch(() => {});
    }
  }

  setMuted(muted) {
    this.muted = Boolean(muted);
    for (const track of this.localStream?.getAudioTracks() ?? []) {
      track.enabled = !this.muted;
    }
    this.emit('mute', this.muted);
    return this.muted;
  }

  toggleMute() {
    return this.setMuted(!this.muted);
  }

  setCameraOff(off) {
    this.cameraOff = Boolean(off);
    for (const track of this.localStream?.getVideoTracks() ?? []) {
      track.enabled = !this.cameraOff;
    }
    this.emit('camera', this.cameraOff);
    return this.cameraOff;
  }

  toggleCamera() {
    return this.setCameraOff(!this.cameraOff);
  }

  /** summarizeStats() of this call's RTCPeerConnection, or null before it exists. */
  async stats() {
    return this.#link ? this.#link.stats() : null;
  }

  async getStats() {
    return this.#link ? this.#link.getStats() : null;
  }

  // --- Driven by TurnkeyClient (not for apps) ---

  _setId(id) {
    this.id ??= id;
  }

  _ringing() {
    if (this.state === 'dialing') {
      this.#setState('ringing');
      this.emit('ringing');
    }
  }

  async _onAccepted() {
    if (this.direction !== 'outgoing' || (this.state !== 'ringing' && this.state !== 'dialing')) {
      return;
    }
    this.answeredAt = Date.now();
    this.#setState('connecting');
    this.#settle.resolve(this);
    this.emit('accepted');
    try {
      await this.#makeLink();
      const offer = await this.#link.createOffer();
      await this.#client._emitAck('sendOffer', { callId: this.id, offer });
    } catch (e) {
      this.#fail(e);
    }
  }

  /**
   * The server accepted this ringing incoming call for us: glare, when our own initiateCall to
   * the caller counted as acceptCall. Opens the media and waits for the caller's offer.
   */
  async _acceptedByServer() {
    if (this.direction !== 'incoming' || this.state !== 'ringing') {
      return;
    }
    this.#setState('connecting');
    this.answeredAt = Date.now();
    this.#settle.resolve(this);
    this.emit('accepted');
    try {
      this.localStream = await this.#client._openMedia(this.type === 'video');
      if (this.isEnded) {
        this.#stopLocal();
        return;
      }
      this.emit('localStream', this.localStream);
      await this.#makeLink();
    } catch (e) {
      this.#fail(e);
      await this.hangup();
    }
  }

  async _onOffer(offer) {
    if (this.isEnded) {
      return;
    }
    if (this.#down && this.direction !== 'outgoing') {
      // The caller restarts ICE: its restart gets the whole time.
      this.#awaitOffer();
    }
    if (!this.#link) {
      // Accepted by the server (glare) while our connection is still being set up.
      this.#pendingOffer = offer;
      return;
    }
    const generation = ++this.#offerGeneration;
    try {
      const current = this.#link.pc.remoteDescription;
      const restart = current && !sameSet(iceUfrags(current.sdp), iceUfrags(offer?.sdp));
      if (restart && this.#credentialUsed(0.3)) {
        // The caller's ICE restart: this side gathers anew, with a credential that outlasts
        // the caller's next renewal (#renewRelayCredentials) rather than the aging one. The
        // client's list is usually newer already (the server's push); else fetch one.
        const newer = (this.#client.iceServersExpireAt ?? 0) > this.#iceExpireAt;
        const iceServers = newer ? this.#client.iceServers
          : await this.#client.getIceServers().catch(() => null);
        if (this.isEnded || generation !== this.#offerGeneration) {
          return; // ended, or a newer offer came meanwhile: that one is answered
        }
        if (iceServers) {
          this.#link.setIceServers(iceServers);
          this.#useCredential(this.#client.iceServersExpireAt);
        }
      }
      const answer = await this.#link.acceptOffer(offer);
      await this.#client._emitAck('sendAnswer', { callId: this.id, answer });
    } catch (e) {
      this.#fail(e);
    }
  }

  // The TURN credential the link gathers with from now on. The caller also checks it at 85% of its
  // life: the server's push (at 80% of the ttl of the list it last sent) renews it first as a
  // rule, but not when the link gathered with an older list than the client's latest (one fetched
  // over REST while the socket was away puts the next push past this credential's end).
  #useCredential(expireAt) {
    this.#iceExpireAt = expireAt ?? null;
    clearTimeout(this.#renewTimer);
    this.#renewTimer = null;
    const lifetimeMs = this.#client.iceServersLifetimeMs;
    if (this.isEnded || this.direction !== 'outgoing' || !this.#iceExpireAt || !lifetimeMs) {
      return;
    }
    const delayMs = this.#iceExpireAt - 0.15 * lifetimeMs - Date.now();
    // Without a newer list there is nothing to do: this one is the client's latest, whose own
    // renewal (the push, or the client's fetch at 90%) reaches every call (_setIceServers).
    this.#renewTimer = setTimeout(() => {
      this.#renewTimer = null;
      if (!this.isEnded) {
        this.#renewRelayCredentials();
      }
    }, Math.min(Math.max(delayMs, 0), kMaxTimerMs));
  }

  // Whether the TURN credential the link gathered with has used up more than `fraction` of its life.
  #credentialUsed(fraction) {
    const lifetimeMs = this.#client.iceServersLifetimeMs;
    return Boolean(this.#iceExpireAt && lifetimeMs &&
      Date.now() >= this.#iceExpireAt - (1 - fraction) * lifetimeMs);
  }

  async _onAnswer(answer) {
    if (this.isEnded || !this.#link) {
      return;
    }
    try {
      await this.#link.acceptAnswer(answer);
    } catch (e) {
      this.#fail(e);
    }
  }

  async _onCandidate(candidate) {
    if (this.isEnded) {
      return;
    }
    if (!this.#link) {
      this.#pendingCandidates.push(candidate);
      return;
    }
    await this.#link.addRemoteCandidate(candidate);
  }

  _onPeerReconnected() {
    this.emit('peerReconnected');
    const health = this.#health();
    if (health !== 'disconnected' && health !== 'failed') {
      return;
    }
    if (this.direction === 'outgoing') {
      // The peer was away: offers of restarts meanwhile may not have reached it. Restart now.
      this.#recover();
    } else if (this.#down) {
      this.#awaitOffer();
    }
  }

  // The socket is connected again (and rejoinCall accepted): recovery that waited for it goes on.
  _onSocketBack() {
    if (this.isEnded) {
      return;
    }
    const waited = this.#waitingForSocket;
    this.#waitingForSocket = false;
    if (this.direction === 'outgoing') {
      // A restart offer unanswered when the socket went down travelled nowhere, or its ack was
      // to come on the old connection: with the media still down, restart again now rather than
      // after that restart's time.
      // A renewal's restart lost so (the media up) is due again, at once.
      const inFlight = this.#restartInFlight;
      const renewingFrom = this.#renewingFrom;
      if (inFlight) {
        this.#restartInFlight = false;
        this.#renewingFrom = null;
        ++this.#restartGeneration;
      }
      const lost = inFlight && this.#health() !== 'up';
      if (waited || lost) {
        this.#recover();
      } else if (inFlight && renewingFrom !== null) {
        this.#useCredential(renewingFrom);
        this.#renewRelayCredentials();
      }
    } else if (this.#down) {
      // The caller's offers could not reach us meanwhile: it gets the whole time again.
      this.#awaitOffer();
    }
  }

  _setIceServers(iceServers) {
    this.#link?.setIceServers(iceServers);
    this.#renewRelayCredentials();
  }

  // A long call: the relay candidates in use were allocated with the credential of the list the
  // link last gathered with, and their allocations end at most one allocation lifetime (minutes)
  // after it expires. When a new list comes as that one nears its end (the server sends one at
  // 80% of the ttl), the caller restarts ICE while the media is up, so that new relay
  // candidates carry the new credential. Not counted against maxIceRestarts.
  #renewRelayCredentials() {
    const nextExpireAt = this.#client.iceServersExpireAt;
    if (this.direction !== 'outgoing' || this.state !== 'active' || this.#down ||
        this.#restartInFlight || !this.#link || !this.#client.connected ||
        !(nextExpireAt > this.#iceExpireAt) || !this.#credentialUsed(0.7)) {
      return;
    }
    const previous = this.#iceExpireAt;
    this.#useCredential(nextExpireAt);
    this.#restartInFlight = true;
    this.#renewingFrom = previous;
    const generation = ++this.#restartGeneration;
    (async () => {
      try {
        await this.#offerRestart(generation);
      } catch (e) {
        // The media is up: a restart that did not go out changes nothing yet. The credential in
        // use is still the old one: its check (at once, it is past 85%) tries again.
        console.warn('turnkey: ICE restart for new TURN credentials failed', e);
        if (generation === this.#restartGeneration) {
          this.#restartInFlight = false;
          this.#renewingFrom = null;
          this.#useCredential(previous);
        }
      } finally {
        if (generation === this.#restartGeneration) {
          this.#restartInFlight = false;
          this.#renewingFrom = null;
        }
      }
    })();
  }

  // An end the server announces (callEnded, callRejected, ...). A call answered here whose media
  // never connected reports 'failed' first: the other side usually ended it for that reason
  // (its connect_timeout, setup_failed or ice_failed, then a plain hangup), and without this
  // side's report a failed call would count one leg instead of two.
  _endFromServer(reason, info) {
    if (this.isEnded) {
      return;
    }
    if (this.answeredAt !== null && !this.#everConnected) {
      this.#report('failed', { endedBeforeIce: true });
    }
    this._end(reason, info);
  }

  /** Ends locally (server told us, or we told it); idempotent. */
  _end(reason, { endedBy = null, error = null } = {}) {
    if (this.isEnded) {
      return;
    }
    this.#clearRecovery();
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#renewTimer);
    this.endReason = reason;
    this.endedBy = endedBy;
    this.endError = error;
    this.endedAt = Date.now();
    this.#link?.close();
    this.#stopLocal();
    this.#setState('ended');
    this.#settle.reject(
      error ?? new TurnkeyError(`call ended: ${reason}`, { code: reason }),
    );
    this.emit('ended', { reason, endedBy });
  }

  #stopLocal() {
    for (const track of this.localStream?.getTracks() ?? []) {
      track.stop();
    }
  }

  #setState(state) {
    if (this.state === state) {
      return;
    }
    this.state = state;
    if (state === 'ringing') {
      // Back from 'connecting' (no microphone at accept): the ring timeout applies again.
      clearTimeout(this.#connectTimer);
      this.#connectTimer = null;
    }
    if (state === 'connecting' && !this.#everConnected && this.#connectTimer === null) {
      // Nothing else bounds this state: the server's ring timeout stops at accept, and ICE
      // never reaches 'failed' if the peer never sends a usable description.
      this.#connectTimer = setTimeout(() => {
        if (this.state === 'connecting' && !this.#everConnected) {
          this.#abandon('connect_timeout',
            new TurnkeyError('the call did not connect in time', { code: 'CONNECT_TIMEOUT' }));
        }
      }, Math.min(this.#client.options.connectTimeoutMs, kMaxTimerMs));
    }
    this.emit('state', state);
  }

  #fail(e) {
    const error = toTurnkeyError(e);
    if (this.isEnded) {
      return;
    }
    this.emit('error', error);
    this.#client.emit('error', error);
    if (!this.#everConnected && this.state === 'connecting') {
      // The peer's offer or answer cannot be used (or ours could not be sent) before the media
      // ever worked: waiting would leave both users on "Connecting..." for nothing.
      this.#abandon('setup_failed', error);
    }
  }

  // Reports a failed ICE (so the history says why), then ends the call here and on the server.
  #abandon(reason, error) {
    if (this.#abandoning) {
      return;
    }
    this.#abandoning = true;
    // The report goes out before the endCall (Socket.IO keeps the order); its ack is not waited
    // for, so a call on a socket that died silently ends here at once.
    this.#abandonReport = this.#report('failed', { awaitAck: false });
    this.#abandonReport.finally(() => this.#giveUp(reason, error));
  }

  async #makeLink() {
    const iceServers = await this.#client.freshIceServers().catch(() => this.#client.iceServers ?? []);
    this.#useCredential(this.#client.iceServersExpireAt);
    this.#link = new PeerLink({
      iceServers,
      iceTransportPolicy: this.#client.options.iceTransportPolicy,
      rtcConfiguration: this.#client.options.rtcConfiguration,
    });
    if (this.localStream) {
      this.#link.addLocalStream(this.localStream);
    }
    this.#link.on('signal', ({ candidate }) => {
      if (!this.isEnded) {
        this.#client._emitAck('sendIceCandidate', { callId: this.id, candidate }).catch(() => {});
      }
    });
    this.#link.on('remoteStream', (stream) => {
      this.remoteStream = stream;
      this.emit('remoteStream', stream);
    });
    this.#link.on('iceState', (state) => {
      if (!this.isEnded) {
        this.emit('iceState', state);
        this.#onLinkState();
      }
    });
    this.#link.on('connectionState', (state) => {
      if (!this.isEnded) {
        this.emit('connectionState', state);
        this.#onLinkState();
      }
    });
    this.#link.on('gatheringFailed', () => {
      // Nothing gathered, so no pair can ever form: Chromium would sit in 'checking' until
      // connectTimeoutMs. Before the media ever worked this is ICE 'failed' (the report says what
      // was met: iceErrors such as 701, no relay candidate). After, a restart that gathered
      // nothing is left to its own timer, as a 'failed' meanwhile is.
      if (!this.isEnded && !this.#everConnected && this.state === 'connecting') {
        this.#abandon('ice_failed', null);
      }
    });
    const offer = this.#pendingOffer;
    this.#pendingOffer = null;
    if (offer) {
      await this._onOffer(offer);
    }
    const early = this.#pendingCandidates;
    this.#pendingCandidates = [];
    for (const candidate of early) {
      await this.#link.addRemoteCandidate(candidate);
    }
  }

  // ICE and DTLS as one: 'up' when ICE is connected (or completed) and the connection has not
  // failed; 'failed' when either says so; 'disconnected' when either says so; else 'other' (new,
  // checking: a restart at work, closed).
  #health() {
    const ice = this.#link?.iceState;
    const connection = this.#link?.connectionState;
    if (ice === 'failed' || connection === 'failed') {
      return 'failed';
    }
    if (ice === 'connected' || ice === 'completed') {
      return 'up';
    }
    if (ice === 'disconnected' || connection === 'disconnected') {
      return 'disconnected';
    }
    return 'other';
  }

  #onLinkState() {
    if (this.isEnded || !this.#link) {
      return;
    }
    const health = this.#health();
    if (health === 'up') {
      this.#clearRecovery();
      this.#waitingForSocket = false;
      clearTimeout(this.#connectTimer);
      this.connectedAt ??= Date.now();
      this.#restarts = 0;
      this.#down = false;
      const first = !this.#everConnected;
      this.#everConnected = true;
      this.#setState('active');
      if (first) {
        this.emit('connected');
        this.#report('connected');
      }
      return;
    }
    if (health === 'failed' && !this.#everConnected) {
      // No candidate pair ever worked; a restart with the same servers would not either.
      this.#abandon('ice_failed', null);
      return;
    }
    if (health === 'other') {
      return; // A restart at work (checking): the armed timer decides.
    }
    if (this.#everConnected && !this.#down) {
      this.#down = true;
      this.#setState('reconnecting');
      this.emit('reconnecting');
    }
    if (this.direction !== 'outgoing') {
      // The caller restarts; the callee bounds how long it waits for that (connectTimeoutMs
      // bounds a call that never connected).
      if (this.#down && this.#recoveryKind === null && !this.#waitingForSocket) {
        this.#awaitOffer();
      }
      return;
    }
    if (health === 'failed' && this.#recoveryKind !== 'restart') {
      // Failed: restart now, unless a restart is at work (it has its time; its failing is
      // often the old generation's state).
      this.#recover();
    } else if (this.#recoveryKind === null && !this.#waitingForSocket) {
      // A short disconnection often heals by itself (consent checks resume); restart only if
      // it lasts.
      this.#armRecovery('grace', this.#client.options.disconnectedGraceMs);
    }
  }

  // Callee: the caller has 2 * iceRestartTimeoutMs from now to send an offer that restarts ICE.
  #awaitOffer() {
    this.#armRecovery('wait', 2 * this.#client.options.iceRestartTimeoutMs);
  }

  #armRecovery(kind, ms) {
    clearTimeout(this.#recoveryTimer);
    this.#recoveryKind = kind;
    this.#recoveryTimer = setTimeout(() => {
      this.#recoveryTimer = null;
      this.#recoveryKind = null;
      this.#recover();
    }, Math.min(ms, kMaxTimerMs));
  }

  #clearRecovery() {
    clearTimeout(this.#recoveryTimer);
    this.#recoveryTimer = null;
    this.#recoveryKind = null;
  }

  // The media is still down when a grace, a restart's time or the callee's wait ran out, or ICE
  // failed: the caller restarts (or gives up after maxIceRestarts), the callee gives up.
  #recover() {
    this.#clearRecovery();
    if (this.isEnded || !this.#link || this.#health() === 'up') {
      return;
    }
    if (!this.#client.connected) {
      // No offer can travel now: wait for the socket (_onSocketBack), which the client's
      // callOfflineLimitMs bounds.
      this.#waitingForSocket = true;
      return;
    }
    if (this.direction === 'outgoing') {
      this.#restartIce();
    } else if (this.#everConnected) {
      this.#abandon('ice_failed', null);
    }
  }

  #giveUp(reason = 'ice_failed', error = null) {
    if (this.isEnded) {
      return;
    }
    const id = this.id;
    this._end(reason, { endedBy: this.#client.user?.id ?? null, error });
    this.#client._emitAck('endCall', { callId: id }).catch(() => {});
  }

  // The caller drives ICE restarts (RFC 8445 section 2.4): it restarts and sends a new offer;
  // the callee answers it through _onOffer. Two offerers at once would collide.
  async #restartIce() {
    if (this.isEnded || this.direction !== 'outgoing' || !this.#link) {
      return;
    }
    if (this.#restarts >= this.#client.options.maxIceRestarts) {
      this.#abandon('ice_failed', null);
      return;
    }
    if (this.#restartInFlight) {
      // One offer at a time: a second would take the first one's answer. Its own timer decides.
      this.#armRecovery('restart', this.#client.options.iceRestartTimeoutMs);
      return;
    }
    this.#restarts += 1;
    this.#restartInFlight = true;
    const generation = ++this.#restartGeneration;
    // The next restart, should this one not bring the media back in time.
    this.#armRecovery('restart', this.#client.options.iceRestartTimeoutMs);
    try {
      const iceServers = await this.#client.freshIceServers();
      if (generation !== this.#restartGeneration || this.isEnded) {
        return; // let go (its offer would collide with the one that replaced it)
      }
      this.#useCredential(this.#client.iceServersExpireAt);
      this.#link.setIceServers(iceServers);
      await this.#offerRestart(generation);
    } catch (e) {
      if (generation !== this.#restartGeneration) {
        return;
      }
      if (!this.#client.connected) {
        // The offer went with the socket: the next one goes once the socket is back.
        this.#waitingForSocket = true;
        return;
      }
      this.#fail(e);
    } finally {
      if (generation === this.#restartGeneration) {
        this.#restartInFlight = false;
      }
    }
  }

  // Restarts ICE here and sends the offer that restarts it on the other side, unless restart
  // `generation` was let go meanwhile (or, without one, the call ended).
  async #offerRestart(generation = null) {
    this.#link.restartIce();
    const offer = await this.#link.createOffer({ iceRestart: true });
    if (this.isEnded || (generation !== null && generation !== this.#restartGeneration)) {
      return;
    }
    await this.#client._emitAck('sendOffer', { callId: this.id, offer });
  }

  // One report per change of state: 'connected' once the media first connects, 'failed' when it
  // never does or when this side gives up on media that went down (so the call ends ice_failed,
  // not as a good call).
  async #report(state, { awaitAck = true, endedBeforeIce = false } = {}) {
    if (this.#reportedState === state || !this.#link) {
      return;
    }
    this.#reportedState = state;
    let pair = null;
    // Right after 'connected' the pair may not be in the stats yet, and a remote candidate first
    // seen as peer-reflexive takes its signaled type once that candidate arrives: wait a little
    // for a settled answer. A call ending before ICE connected has no pair to look for: that
    // report goes out at once, before the endCall that follows it.
    const link = this.#link;
    for (let attempt = 0; attempt < 10 && !this.isEnded && !endedBeforeIce; ++attempt) {
      pair = selectedCandidatePair(await settledStats(link, 1000));
      if (pair?.remoteType === 'prflx') {
        pair.remoteType = link.remoteCandidateType(pair.remoteAddress, pair.remotePort) ?? 'prflx';
      }
      if (state === 'failed' || (pair && pair.remoteType && pair.remoteType !== 'prflx')) {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const report = {
      callId: this.id,
      state,
      localCandidateType: pair?.localType ?? null,
      remoteCandidateType: pair?.remoteType ?? null,
      relayProtocol: pair?.relayProtocol ?? null,
      rttMs: pair?.rttMs ?? null,
    };
    if (state === 'failed' && this.#link) {
      // What this side gathered, and the errors that kept relay candidates away: why it failed.
      report.localCandidates = { host: 0, srflx: 0, relay: 0, ...this.#link.gathered };
      report.iceErrors = this.#link.iceErrors.slice();
      report.turnUris = this.#link.turnUris;
      report.iceGatheringState = this.#link.pc.iceGatheringState ?? null;
      report.gatheringMs = Math.max(0, Date.now() - this.#link.createdAt);
      if (endedBeforeIce) {
        // The call ended (the peer, or the user) before ICE came to a verdict here: what was not
        // gathered yet may only have been late.
        report.endedBeforeIce = true;
      }
    }
    this.iceReport = report;
    this.emit('iceReport', report);
    const sent = this.#client._emitAck('reportIce', report).catch((e) => {
      console.warn('turnkey: reportIce refused', e);
    });
    if (awaitAck) {
      await sent;
    }
  }
}

// The link's stats, or null when they do not come within `ms`: Firefox never settles a getStats()
// that was pending when its connection closed (the other side ended the call meanwhile).
function settledStats(link, ms) {
  let timer = null;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  return Promise.race([link.getStats().catch(() => null), timeout]).finally(() => clearTimeout(timer));
}

// An end reason for a refused initiateCall ("User busy", "Receiver not found", ...).
function reasonFromError(message) {
  const text = String(message ?? '');
  if (/busy/i.test(text)) {
    return 'busy';
  }
  if (/not available|offline|unavailable/i.test(text)) {
    return 'unavailable';
  }
  if (/not found/i.test(text)) {
    return 'not_found';
  }
  return 'error';
}

/**
 * socket.connect(), unless the socket is joining already. socket.io-client sends its CONNECT
 * again when connect() comes while the manager's connection is open and the server has not
 * answered yet; the server may close the connection for that (a CONNECT for a namespace already
 * joined), and a close during the transport upgrade leaves engine.io-client's polling paused
 * until its ping timeout. An active socket with an opening or open manager joins by itself; one
 * whose manager is closed (waiting to reconnect, or given up) is asked again.
 */
function joinSocket(socket) {
  if (socket.connected || (socket.active && socket.io?._readyState !== 'closed')) {
    return;
  }
  socket.connect();
}

function toTurnkeyError(e) {
  if (e instanceof TurnkeyError) {
    return e;
  }
  return new TurnkeyError(e?.message ?? String(e), { code: e?.name ?? 'ERROR' });
}

// --- The client ---------------------------------------------------------------------------

function userIdOf(user) {
  return user?.id ?? user?.userId ?? user?._id ?? null;
}

function looksLikeId(text) {
  return (
    /^\d+$/.test(text) ||
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text) ||
    /^[0-9a-f]{24,}$/i.test(text)
  );
}

/**
 * A turnkey account session: REST, the Socket.IO connection and calls.
 *
 * Events: 'session' (user) after login/register/restore, 'tokenRefreshed', 'loggedOut'
 * ({reason}: 'logout', 'expired', 'revoked' -- signed out or password changed elsewhere, or the
 * refresh token was reused -- or 'duplicate_tab', see restoreSession), 'connect', 'disconnect' (reason), 'connectError' (Error with .data.code),
 * 'iceServers' (RTCIceServer[]), 'incomingCall' (TurnkeyCall), 'call' (every new TurnkeyCall),
 * 'callEnded' (TurnkeyCall, {reason, endedBy}), 'callError' ({error, callId}), 'error'.
 */
export class TurnkeyClient extends Emitter {
  #io = null;
  #refreshTimer = null;
  #iceTimer = null;
  #refreshing = null;
  #connecting = null;
  #socketRetried = false;
  #everConnected = false;
  #calls = new Map();
  #dialing = null;
  #placing = false;
  #tokenReceivedAt = null;
  #tokenLifetimeMs = null;
  #sessionChange = null;
  #endingSession = false;
  #tabId = null;
  #releaseTab = null;
  #offlineTimer = null;

  constructor(options = {}) {
    super();
    this.options = { ...kDefaults, ...options };
    this.token = null;
    this.refreshToken = null;
    this.user = null;
    this.iceServers = null;
    this.iceServersExpireAt = null;
    this.iceServersLifetimeMs = null;
    this.socket = null;
  }

  // --- Session ---

  get loggedIn() {
    return Boolean(this.token);
  }

  /** Whether the Socket.IO connection is up (calls can be placed and received). */
  get connected() {
    return Boolean(this.socket?.connected);
  }

  /** Creates an account; resolves with the user once the session is set up. */
  async register({ email, password, handle, displayName } = {}) {
    const body = { email, password };
    if (handle) {
      body.handle = handle;
    }
    if (displayName) {
      body.displayName = displayName;
    }
    const data = await this.request('POST', '/api/auth/register', body, { auth: false });
    return this.#startSession(data);
  }

  async login({ email, password } = {}) {
    const data = await this.request('POST', '/api/auth/login', { email, password }, { auth: false });
    return this.#startSession(data);
  }

  /** Ends the session on the server (revokes the refresh token) and locally. */
  async logout() {
    // The server disconnects our socket for this logout too; that is not news to report.
    this.#endingSession = true;
    try {
      await Promise.all(this.calls.map((c) => c.hangup().catch(() => {})));
      if (this.token) {
        // An expired access token is refreshed first (request's retry): the logout must reach
        // the server, or the refresh token would stay valid there. Without a network it
        // ends the session here only.
        const body = this.refreshToken ? { refreshToken: this.refreshToken } : {};
        await this.request('POST', '/api/auth/logout', body).catch(() => {});
      }
      this.#endSession('logout');
    } finally {
      this.#endingSession = false;
    }
  }

  /**
   * POST /api/auth/password. The server ends every session of the account, this one included,
   * and answers with a new one for this device: its tokens replace ours, and the socket (which
   * the server disconnects) connects again with them. Rejects with a TurnkeyError (401
   * INVALID_CREDENTIALS, field currentPassword, for a wrong current password; 400
   * VALIDATION_ERROR; 429 RATE_LIMITED) and keeps the session then.
   */
  async changePassword(currentPassword, newPassword) {
    const change = (async () => {
      const data = await this.request(
        'POST', '/api/auth/password', { currentPassword, newPassword }, { _changing: true },
      );
      if (!(data?.token ?? data?.accessToken)) {
        throw new TurnkeyError('the server sent no token', { code: 'NO_TOKEN', data });
      }
      this.#adoptTokens(data);
      this.#save();
      this.#scheduleRefresh();
      this.emit('tokenRefreshed', this.token);
    })();
    // While it runs, a server disconnect or a TOKEN_REVOKED is this change, not a sign-out.
    this.#sessionChange = change;
    try {
      await change;
    } finally {
      if (this.#sessionChange === change) {
        this.#sessionChange = null;
      }
    }
    if (this.socket && !this.socket.connected && this.options.autoConnect) {
      this.connect().catch(() => {});
    }
  }

  /** Resumes a session saved in options.storage; resolves with the user or null. */
  async restoreSession() {
    const storage = this.options.storage;
    if (!storage) {
      return null;
    }
    let saved = null;
    try {
      saved = JSON.parse(storage.getItem(this.options.storageKey) ?? 'null');
    } catch {
      saved = null;
    }
    if (!saved?.refreshToken) {
      return null;
    }
    if (!(await this.#claimTab(saved.tab ?? null))) {
      // A copy of a tab that is still open (duplicated, or opened by it): that tab owns the
      // refresh token, and presenting it from here too would revoke both. Forget the copy.
      try {
        storage.removeItem(this.options.storageKey);
      } catch {
        // Nothing to forget then.
      }
      this.emit('loggedOut', { reason: 'duplicate_tab' });
      return null;
    }
    this.token = saved.token ?? null;
    this.refreshToken = saved.refreshToken;
    this.user = saved.user ?? null;
    this.#tokenReceivedAt = typeof saved.receivedAt === 'number' ? saved.receivedAt : null;
    this.#tokenLifetimeMs = typeof saved.lifetimeMs === 'number' ? saved.lifetimeMs : null;
    try {
      const timing = this.#tokenTiming();
      if (!this.token || (timing && renewalDelay({
        ...timing, marginMs: this.options.tokenRefreshMarginMs, floorShare: 0, minMs: 0,
      }) <= 0)) {
        await this.refreshSession();
      }
      this.user = (await this.getMe()) ?? this.user;
    } catch (e) {
      if (e instanceof TurnkeyError && (e.status === 401 || e.status === 403)) {
        this.#endSession('expired');
        return null;
      }
      throw e;
    }
    this.#save();
    this.#scheduleRefresh();
    this.emit('session', this.user);
    if (this.options.autoConnect) {
      this.connect().catch(() => {});
    }
    return this.user;
  }

  /** Trades the refresh token for a new access token (one request at a time). */
  async refreshSession() {
    if (!this.refreshToken) {
      throw new TurnkeyError('not logged in', { status: 401, code: 'NO_SESSION' });
    }
    this.#refreshing ??= (async () => {
      const presented = this.refreshToken;
      try {
        const data = await this.request(
          'POST', '/api/auth/refresh', { refreshToken: presented }, { auth: false },
        );
        this.#adoptTokens(data);
        this.#save();
        this.#scheduleRefresh();
        this.emit('tokenRefreshed', this.token);
        return this.token;
      } catch (e) {
        // Only if the session is still the one that failed (a password change may have
        // replaced it meanwhile).
        if (e instanceof TurnkeyError && (e.status === 401 || e.status === 403) &&
            this.refreshToken === presented) {
          // Within logout() (its token had expired) the user's own sign-out, whatever
          // became of the refresh token.
          this.#endSession(this.#endingSession ? 'logout' :
            /REVOKED|REUSED/i.test(e.code) ? 'revoked' : 'expired');
        }
        throw e;
      } finally {
        this.#refreshing = null;
      }
    })();
    return this.#refreshing;
  }

  /**
   * One REST call; resolves with the envelope's `data`. With a token, a 401 whose code says the
   * token expired (or whose token has passed its exp) refreshes the token and is retried once.
   */
  async request(method, path, body, { auth = true, retry = true, _changing = false } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined && method !== 'GET') {
      headers['Content-Type'] = 'application/json';
    }
    if (auth) {
      if (!this.token) {
        throw new TurnkeyError('not logged in', { status: 401, code: 'NO_SESSION' });
      }
      headers.Authorization = `Bearer ${this.token}`;
    }
    const presented = this.token;
    const fetchImpl = this.options.fetch ?? globalThis.fetch;
    const abort = new AbortController();
    const timeoutMs = this.options.requestTimeoutMs;
    const timer = timeoutMs > 0 ? setTimeout(() => abort.abort(), Math.min(timeoutMs, kMaxTimerMs)) : null;
    let response;
    let json = null;
    try {
      try {
        response = await fetchImpl(this.#url(path), {
          method,
          headers,
          body: body !== undefined && method !== 'GET' ? JSON.stringify(body) : undefined,
          signal: abort.signal,
        });
      } catch (e) {
        const why = abort.signal.aborted ? `no answer in ${timeoutMs} ms` : (e?.message ?? e);
        throw new TurnkeyError(`network error: ${why}`, { code: 'NETWORK' });
      }
      try {
        json = await response.json();
      } catch {
        if (abort.signal.aborted) {
          throw new TurnkeyError(`network error: no answer in ${timeoutMs} ms`, { code: 'NETWORK' });
        }
        json = null;
      }
    } finally {
      clearTimeout(timer);
    }
    const code = String(json?.code ?? json?.data?.code ?? json?.error?.code ?? json?.error ?? '');
    if (response.status === 401 && auth && retry && this.refreshToken) {
      const expiry = jwtExpiry(this.token);
      if (/TOKEN_EXPIRED/i.test(code) || (expiry && expiry <= Date.now())) {
        await this.refreshSession();
        return this.request(method, path, body, { auth, retry: false });
      }
    }
    if (response.status === 401 && auth && /TOKEN_REVOKED|TOKEN_INVALID/i.test(code)) {
      // Signed out (or the password changed) on another device: this session is over, unless
      // it is our own password change at work, whose new token then gets one more try.
      if (!_changing) {
        await this.#sessionChange?.catch(() => {});
      }
      if (this.token && this.token !== presented && retry) {
        return this.request(method, path, body, { auth, retry: false });
      }
      if (this.token === presented && !this.#endingSession) {
        this.#endSession('revoked');
      }
    }
    if (!response.ok || json?.success === false) {
      throw new TurnkeyError(json?.message ?? `HTTP ${response.status}`, {
        status: response.status,
        code,
        data: json?.data ?? null,
        // 429 and 503 say when to come back (exposed to other origins by the server's CORS).
        retryAfterSeconds: retryAfterSeconds(response.headers?.get?.('Retry-After') ?? null),
      });
    }
    return json && 'data' in json ? json.data : json;
  }

  // --- REST helpers ---

  async getMe() {
    const data = await this.request('GET', '/api/users/me');
    return data?.user ?? data;
  }

  /** PATCH /api/users/me with {displayName?, handle?}; resolves with the updated user. */
  async updateMe(changes) {
    const data = await this.request('PATCH', '/api/users/me', changes);
    this.user = { ...this.user, ...(data?.user ?? data ?? changes) };
    this.#save();
    return this.user;
  }

  async searchUsers(q) {
    const data = await this.request('GET', `/api/users/search?q=${encodeURIComponent(q)}`);
    return listOf(data, 'users');
  }

  async listContacts() {
    return listOf(await this.request('GET', '/api/contacts'), 'contacts');
  }

  /** POST /api/contacts: `target` is a user id, or {id} / {userId} / {handle}. */
  async addContact(target) {
    if (target && typeof target === 'object') {
      const id = userIdOf(target);
      return this.request('POST', '/api/contacts', id ? { userId: id } : { handle: target.handle });
    }
    return this.request('POST', '/api/contacts', { userId: target });
  }

  async removeContact(userId) {
    return this.request('DELETE', `/api/contacts/${encodeURIComponent(userId)}`);
  }

  /** PUT /api/contacts: replaces the whole list; resolves with {contacts, notFound}. */
  async syncContacts({ userIds = [], handles = [] } = {}) {
    return this.request('PUT', '/api/contacts', { userIds, handles });
  }

  /** GET /api/calls/history?type&direction&limit&skip; resolves with {calls, hasMore}. */
  async callHistory({ type, direction, limit, skip } = {}) {
    return this.#historyPage('/api/calls/history', { type, direction, limit, skip });
  }

  /** GET /api/calls/missed?type&limit&skip; resolves with {calls, hasMore}. */
  async missedCalls({ type, limit, skip } = {}) {
    return this.#historyPage('/api/calls/missed', { type, limit, skip });
  }

  async #historyPage(path, query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') {
        params.set(key, String(value));
      }
    }
    const search = params.toString();
    const data = await this.request('GET', `${path}${search ? `?${search}` : ''}`);
    return { calls: listOf(data, 'calls'), hasMore: Boolean(data?.hasMore) };
  }

  async deleteCall(callId) {
    return this.request('DELETE', `/api/calls/history/${encodeURIComponent(callId)}`);
  }

  async turnCredentials() {
    return this.request('GET', '/api/turn/credentials');
  }

  // --- ICE servers ---

  /** The current iceServers, fetched first if missing or about to expire. */
  async freshIceServers() {
    if (!this.iceServers || iceServersStale({
      expireAt: this.iceServersExpireAt,
      lifetimeMs: this.iceServersLifetimeMs,
      marginMs: this.options.iceRefreshMarginMs,
    })) {
      await this.getIceServers();
    }
    return this.iceServers ?? [];
  }

  /** Asks turnkey for fresh iceServers (socket `getIceServers`, or REST when offline). */
  async getIceServers() {
    if (this.socket?.connected) {
      const ack = await this._emitAck('getIceServers', {});
      this.#setIceServers(ack.iceServers ?? ack.data?.iceServers, ack.ttl ?? ack.data?.ttl);
    } else {
      const credentials = await this.turnCredentials();
      this.#setIceServers(iceServersFromTurnCredentials(credentials), credentials?.ttl);
    }
    return this.iceServers;
  }

  // --- Socket ---

  /** Connects the Socket.IO socket with the access token; resolves once connected. */
  async connect() {
    if (!this.token) {
      throw new TurnkeyError('not logged in', { status: 401, code: 'NO_SESSION' });
    }
    if (this.socket?.connected) {
      return;
    }
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  disconnect() {
    this.socket?.disconnect();
  }

  async #connect() {
    const expiry = jwtExpiry(this.token);
    if (expiry && expiry - Date.now() < 5_000) {
      await this.refreshSession();
    }
    if (!this.socket) {
      const io = await this.#resolveIo();
      const { origin, path } = this.#socketTarget();
      this.socket = io(origin, {
        path,
        ...this.options.socketOptions,
        autoConnect: false,
        // A function, so every reconnection presents the token current at that moment.
        auth: (cb) => cb({ token: this.token }),
      });
      this.#bindSocket(this.socket);
    }
    const socket = this.socket;
    await new Promise((resolve, reject) => {
      const cleanup = () => {
        socket.off('connect', onConnect);
        this.off('_connectFailed', onFail);
      };
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onFail = (err) => {
        cleanup();
        reject(err);
      };
      socket.on('connect', onConnect);
      this.on('_connectFailed', onFail);
      joinSocket(socket);
    });
  }

  async #resolveIo() {
    if (this.#io) {
      return this.#io;
    }
    let io = this.options.io ?? globalThis.io;
    if (typeof io !== 'function') {
      const url = this.options.socketIoUrl || this.#url('/socket.io.esm.min.js');
      const module = await import(url);
      io = module.io ?? module.default;
    }
    if (typeof io !== 'function') {
      throw new TurnkeyError('socket.io-client `io` not found', { code: 'NO_SOCKET_IO' });
    }
    this.#io = io;
    return io;
  }

  #socketTarget() {
    const base = new URL(this.options.baseUrl || '/', globalThis.location?.href);
    const prefix = this.options.baseUrl ? base.pathname.replace(/\/+$/, '') : '';
    return { origin: base.origin, path: this.options.socketPath || `${prefix}/socket.io/` };
  }

  #bindSocket(socket) {
    socket.on('connect', () => {
      clearTimeout(this.#offlineTimer);
      this.#offlineTimer = null;
      this.#socketRetried = false;
      const reconnected = this.#everConnected;
      this.#everConnected = true;
      this.emit('connect');
      if (reconnected) {
        // A call may have ended while we were away (a caller's socket lost while it rang
        // cancels it); rejoinCall moves live calls to this socket or says they are over.
        for (const call of this.#calls.values()) {
          if (!call.isEnded && call.id) {
            this._emitAck('rejoinCall', { callId: call.id }).then(() => call._onSocketBack(), (e) => {
              call._end('connection_lost', { error: toTurnkeyError(e) });
            });
          }
        }
      }
    });
    socket.on('disconnect', (reason) => {
      // The server keeps a call for signal.reconnect_grace; past callOfflineLimitMs it has surely
      // ended it (#offlineTooLong).
      clearTimeout(this.#offlineTimer);
      this.#offlineTimer = setTimeout(() => this.#offlineTooLong(socket),
        Math.min(this.options.callOfflineLimitMs, kMaxTimerMs));
      this.emit('disconnect', reason);
      if (reason === 'io server disconnect') {
        this.#afterServerDisconnect(socket);
      }
    });
    socket.on('connect_error', (err) => this.#onConnectError(socket, err));

    socket.on('iceServers', (p) => this.#setIceServers(p?.iceServers, p?.ttl));
    socket.on('incomingCall', (p) => this.#onIncoming(p ?? {}));
    socket.on('callInitiated', (p) => {
      const call = this.#named(p?.callId);
      if (call && p?.receiverId) {
        call.peer.id ??= p.receiverId;
      }
      call?._ringing();
    });
    socket.on('userNotAvailable', (p) => this.#endFrom(p, 'unavailable'));
    socket.on('callAccepted', (p) => this.#named(p?.callId)?._onAccepted());
    socket.on('callAcceptedConfirm', () => {});
    socket.on('callAnsweredElsewhere', (p) => this.#endFrom(p, 'answered_elsewhere'));
    socket.on('callRejected', (p) => this.#endFrom(p, p?.reason || 'rejected', p?.receiverId));
    socket.on('callRejectedConfirm', (p) => this.#endFrom(p, 'rejected', this.user?.id));
    socket.on('callEnded', (p) => this.#endFrom(p, p?.reason || 'ended', p?.endedBy));
    socket.on('callEndedConfirm', (p) => this.#endFrom(p, 'hangup', this.user?.id));
    socket.on('callTimeout', (p) => this.#endFrom(p, 'timeout'));
    socket.on('receiveOffer', (p) => this.#find(p?.callId)?._onOffer(p.offer));
    socket.on('receiveAnswer', (p) => this.#find(p?.callId)?._onAnswer(p.answer));
    socket.on('receiveIceCandidate', (p) => this.#find(p?.callId)?._onCandidate(p.candidate));
    socket.on('peerReconnected', (p) => this.#find(p?.callId)?._onPeerReconnected());
    socket.on('callError', (p) => {
      this.emit('callError', p);
      this.#find(p?.callId)?.emit('error', new TurnkeyError(p?.error, { code: 'CALL_ERROR', data: p }));
    });
  }

  // The socket has been down for callOfflineLimitMs: the calls end here as 'connection_lost'
  // (the server ended them after its reconnect grace; no endCall is needed, and #track drops what
  // the socket still holds for them).
  #offlineTooLong(socket) {
    this.#offlineTimer = null;
    if (this.socket !== socket || socket.connected) {
      return;
    }
    for (const call of this.#calls.values()) {
      if (!call.isEnded) {
        call._end('connection_lost', { endedBy: this.user?.id ?? null });
        // The server may not have ended it yet (it notices a silent loss only after its ping
        // timeout, then waits reconnect_grace): this hang-up goes out once the socket is back,
        // so a resumed socket does not leave the call live there. An ended call answers an
        // error, which is ignored.
        if (call.id) {
          socket.emit('endCall', { callId: call.id });
        }
      }
    }
  }

  /**
   * Drops the events socket.io-client holds while disconnected (its sendBuffer: emitted while
   * down, sent as soon as it connects again, before anything else) for which `drop(event,
   * payload)` is true, and forgets their ack callbacks (each _emitAck settles by its own
   * timeout). Not only while socket.connected is false: socket.io-client 4.8 also buffers while
   * it still says connected, in the moment before a ping timeout closes it.
   */
  #dropBuffered(drop) {
    const socket = this.socket;
    if (!socket || !Array.isArray(socket.sendBuffer)) {
      return;
    }
    socket.sendBuffer = socket.sendBuffer.filter((packet) => {
      const [event, payload] = Array.isArray(packet?.data) ? packet.data : [];
      const dropped = drop(event, payload);
      if (dropped && packet.id !== undefined && socket.acks) {
        delete socket.acks[packet.id];
      }
      return !dropped;
    });
  }

  async #onConnectError(socket, err) {
    this.emit('connectError', err);
    const refused = socket.active === false || (socket.active === undefined && err?.data);
    if (!refused) {
      return; // A transport failure: the manager reconnects by itself.
    }
    const code = String(err?.data?.code ?? '');
    if (/TOKEN_REVOKED|TOKEN_INVALID/i.test(code) && !this.#sessionChange) {
      this.emit('_connectFailed', new TurnkeyError(err?.message ?? 'connection refused', { code }));
      // Checked over REST first, which ends the session if it really is over.
      this.getMe().catch(() => {});
      return;
    }
    if (/TOKEN_EXPIRED/i.test(code) && !this.#socketRetried && this.refreshToken) {
      this.#socketRetried = true;
      try {
        await this.refreshSession();
        joinSocket(socket);
        return;
      } catch (e) {
        this.emit('_connectFailed', toTurnkeyError(e));
        return;
      }
    }
    this.emit(
      '_connectFailed',
      new TurnkeyError(err?.message ?? 'connection refused', { code, data: err?.data ?? null }),
    );
  }

  // The server closed our socket and will not take it back by itself: a logout or a password
  // change on some device, a reused refresh token, an operator's revoke (docs/api.md "Socket.IO
  // connection"). Asking for our profile tells which: TOKEN_REVOKED ends the session (request()),
  // an expired token is refreshed, and a session that still counts connects again.
  async #afterServerDisconnect(socket) {
    if (this.#endingSession) {
      return;
    }
    await this.#sessionChange?.catch(() => {});
    if (this.socket !== socket || !this.token) {
      return;
    }
    try {
      await this.getMe();
    } catch (e) {
      if (!(e instanceof TurnkeyError) || e.code !== 'NETWORK') {
        return; // Over (request() ended it), or an answer we cannot act on.
      }
      // The server is unreachable (shutting down?): let the manager retry with back-off.
    }
    if (this.socket === socket && !socket.connected && this.token) {
      joinSocket(socket);
    }
  }

  /**
   * Emits a client event and resolves with its ack ({ok:true,...}); rejects with a TurnkeyError
   * for {ok:false, error} or when no ack arrives within options.ackTimeoutMs.
   */
  _emitAck(event, payload) {
    const socket = this.socket;
    if (!socket) {
      return Promise.reject(new TurnkeyError('not connected', { code: 'NOT_CONNECTED' }));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new TurnkeyError(`no answer to ${event}`, { code: 'ACK_TIMEOUT' }));
      }, this.options.ackTimeoutMs);
      socket.emit(event, payload, (ack) => {
        clearTimeout(timer);
        if (ack && ack.ok === false) {
          reject(new TurnkeyError(ack.error ?? `${event} refused`, { code: 'REFUSED', data: ack }));
        } else {
          resolve(ack ?? {});
        }
      });
    });
  }

  // --- Calls ---

  /** The call in progress or ringing (the most recent one that has not ended), or null. */
  get currentCall() {
    let current = null;
    for (const call of this.#calls.values()) {
      if (!call.isEnded) {
        current = call;
      }
    }
    return current;
  }

  get calls() {
    return [...this.#calls.values()];
  }

  /**
   * Rings a user. `target` is {id} / {userId} / {handle}, or a string: a handle (a leading '@' is
   * dropped) unless it looks like an id (digits, a UUID, long hex) or options.by says otherwise.
   * Opens the microphone (and camera when video) first. Resolves with the TurnkeyCall once the
   * server has taken the call; `call.answered` settles when it is accepted or ends.
   */
  async call(target, { video = false, stream, by } = {}) {
    const busy = (c) => !c.isEnded && !(c.direction === 'incoming' && c.state === 'ringing');
    if (this.#placing || this.#dialing || [...this.#calls.values()].some(busy)) {
      // #placing: a second call() (a double click) while the first still opens the socket or
      // the microphone.
      throw new TurnkeyError('already in a call', { code: 'BUSY' });
    }
    this.#placing = true;
    try {
      return await this.#place(target, { video, stream, by });
    } finally {
      this.#placing = false;
    }
  }

  async #place(target, { video, stream, by }) {
    const payload = { callType: video ? 'video' : 'audio' };
    const peer = {};
    if (target && typeof target === 'object') {
      if (target.handle && !userIdOf(target)) {
        payload.receiverHandle = target.handle;
      } else {
        payload.receiverId = userIdOf(target);
      }
      Object.assign(peer, { id: userIdOf(target), handle: target.handle, displayName: target.displayName });
    } else {
      const text = String(target ?? '').trim();
      const asHandle = by ? by === 'handle' : text.startsWith('@') || !looksLikeId(text);
      if (asHandle) {
        payload.receiverHandle = text.replace(/^@/, '');
        peer.handle = payload.receiverHandle;
      } else {
        payload.receiverId = text;
        peer.id = text;
      }
    }
    if (!payload.receiverId && !payload.receiverHandle) {
      throw new TurnkeyError('receiverId required', { code: 'BAD_TARGET' });
    }
    await this.#connectedForCall();
    const localStream = stream ?? (await this._openMedia(video));
    const call = new TurnkeyCall(this, { direction: 'outgoing', type: payload.callType, peer, localStream });
    // The call the server has not named yet: the first event or ack with a callId names it.
    this.#dialing = call;
    // Listed under a private key until the server names the call (ack or callInitiated).
    this.#calls.set(Symbol('dialing'), call);
    this.#track(call);
    this.emit('call', call);
    try {
      const ack = await this._emitAck('initiateCall', payload);
      const callId = ack.callId ?? ack.call?.callId ?? ack.call?.id ?? ack.data?.callId;
      if (ack.glare && callId) {
        return this.#glare(call, callId, ack);
      }
      if (ack.receiverId) {
        call.peer.id ??= ack.receiverId;
      }
      if (callId && !call.id) {
        this.#named(callId);
      }
      call._ringing();
    } catch (e) {
      const error = toTurnkeyError(e);
      if (this.#dialing === call) {
        this.#dialing = null;
      }
      // Still held by socket.io-client (the socket dropped before it left): sent on reconnect,
      // it would ring the callee for a call given up here.
      this.#dropBuffered((event, data) => data === payload);
      call._end(reasonFromError(error.message), { error });
      throw error;
    }
    return call;
  }

  // A call is placed now or not at all: while the socket is down, waiting for it would place the
  // call whenever it comes back (minutes or hours later, with nobody expecting it). A socket
  // still connecting (just logged in) gets options.callOfflineWaitMs.
  async #connectedForCall() {
    if (this.socket?.connected) {
      return;
    }
    const offline = () => new TurnkeyError('not connected to the server', { code: 'OFFLINE' });
    if (this.socket && !this.#connecting) {
      throw offline(); // Down, the manager reconnecting in the background.
    }
    let timer = null;
    const late = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(offline()), this.options.callOfflineWaitMs);
    });
    try {
      await Promise.race([this.connect(), late]);
    } finally {
      clearTimeout(timer);
    }
    if (!this.socket?.connected) {
      throw offline();
    }
  }

  /** Accepts `call` or the latest ringing incoming call. */
  async accept(call) {
    const target = call ?? this.#latest((c) => c.direction === 'incoming' && c.state === 'ringing');
    if (!target) {
      throw new TurnkeyError('no call to accept', { code: 'NO_CALL' });
    }
    await target.accept();
    return target;
  }

  async reject(call) {
    const target = call ?? this.#latest((c) => c.direction === 'incoming' && c.state === 'ringing');
    await target?.reject();
  }

  async hangup(call) {
    await (call ?? this.currentCall)?.hangup();
  }

  toggleMute() {
    return this.currentCall?.toggleMute() ?? false;
  }

  toggleCamera() {
    return this.currentCall?.toggleCamera() ?? false;
  }

  // The callee of our call was ringing us at the same time: the server made no second call and
  // accepted theirs for us (ack {glare:true, callId: theirs}). Our dialing call goes away
  // quietly (reason 'glare'); theirs goes on as the call, which call() returns.
  async #glare(dialing, callId, ack) {
    if (this.#dialing === dialing) {
      this.#dialing = null;
    }
    for (const [key, c] of this.#calls) {
      if (c === dialing) {
        this.#calls.delete(key);
      }
    }
    dialing._end('glare');
    let call = this.#find(callId);
    if (!call) {
      call = new TurnkeyCall(this, {
        id: callId,
        direction: 'incoming',
        type: ack.callType === 'video' ? 'video' : 'audio',
        peer: { id: ack.callerId ?? dialing.peer.id, handle: dialing.peer.handle, displayName: dialing.peer.displayName },
      });
      this.#calls.set(callId, call);
      this.#track(call);
      this.emit('call', call);
    }
    await call._acceptedByServer();
    return call;
  }

  async _openMedia(video) {
    const media = globalThis.navigator?.mediaDevices;
    if (!media?.getUserMedia) {
      throw new TurnkeyError('getUserMedia is not available (a secure context is required)', {
        code: 'NO_MEDIA',
      });
    }
    const audio = this.options.audioConstraints;
    if (!video) {
      return media.getUserMedia({ audio, video: false });
    }
    try {
      return await media.getUserMedia({ audio, video: this.options.videoConstraints });
    } catch (e) {
      if (['NotFoundError', 'OverconstrainedError', 'NotReadableError'].includes(e?.name)) {
        this.emit('warning', new TurnkeyError('no usable camera; sending audio only', { code: e.name }));
        return media.getUserMedia({ audio, video: false });
      }
      throw e;
    }
  }

  #latest(predicate) {
    return [...this.#calls.values()].filter(predicate).pop() ?? null;
  }

  #find(callId) {
    return callId ? (this.#calls.get(callId) ?? null) : null;
  }

  #track(call) {
    call.once('ended', (info) => {
      // Offers, answers and candidates of an ended call would only be refused; after a local
      // 'connection_lost' nothing of it is sent (an endCall queued after this still is). An
      // endCall, rejectCall or reportIce of a call ended otherwise tells the server something
      // true.
      const keep = info.reason === 'connection_lost' ? new Set() :
        new Set(['endCall', 'rejectCall', 'reportIce']);
      if (call.id) {
        this.#dropBuffered((event, data) => data?.callId === call.id && !keep.has(event));
      }
      this.emit('callEnded', call, info);
      // Keep a few ended calls so late events find them (and are ignored), but not forever.
      setTimeout(() => {
        for (const [id, c] of this.#calls) {
          if (c === call) {
            this.#calls.delete(id);
          }
        }
      }, 60_000);
    });
  }

  /**
   * The call with this id; an unknown id names the dialing call (the server's events and the
   * initiateCall ack may come in either order). A dialing call the user hung up before it was
   * named is cancelled on the server now.
   */
  #named(callId) {
    const known = this.#find(callId);
    if (known || !callId || !this.#dialing) {
      return known;
    }
    const call = this.#dialing;
    this.#dialing = null;
    call._setId(callId);
    for (const [key, c] of this.#calls) {
      if (c === call) {
        this.#calls.delete(key);
      }
    }
    this.#calls.set(callId, call);
    if (call.isEnded) {
      this._emitAck('endCall', { callId }).catch(() => {});
    }
    return call;
  }

  #onIncoming(p) {
    if (!p.callId || this.#calls.has(p.callId)) {
      return;
    }
    const caller = p.caller ?? {};
    const call = new TurnkeyCall(this, {
      id: p.callId,
      direction: 'incoming',
      type: p.callType === 'video' ? 'video' : 'audio',
      peer: { id: p.callerId ?? userIdOf(caller), handle: caller.handle, displayName: caller.displayName },
    });
    this.#calls.set(p.callId, call);
    this.#track(call);
    this.emit('call', call);
    this.emit('incomingCall', call);
  }

  #endFrom(p, reason, endedBy = null) {
    const call = p?.callId ? this.#named(p.callId) : this.#dialing;
    if (call && !call.isEnded) {
      call._endFromServer(reason, { endedBy: endedBy ?? null });
    }
  }

  #setIceServers(iceServers, ttl) {
    if (!Array.isArray(iceServers)) {
      return;
    }
    const now = Date.now();
    this.iceServers = iceServers;
    this.iceServersExpireAt = iceServersExpiry(iceServers, ttl, now);
    this.iceServersLifetimeMs = this.iceServersExpireAt ? this.iceServersExpireAt - now : null;
    for (const call of this.#calls.values()) {
      if (!call.isEnded) {
        call._setIceServers(iceServers);
      }
    }
    this.emit('iceServers', iceServers);
    clearTimeout(this.#iceTimer);
    if (this.iceServersExpireAt) {
      // The server pushes new ones at 80% of the ttl; ask ourselves at 90% if that push does
      // not come.
      const delay = renewalDelay({
        lifetimeMs: this.iceServersLifetimeMs,
        remainingMs: this.iceServersExpireAt - now,
        marginMs: this.options.iceRefreshMarginMs / 2,
        maxShare: 0.1,
      });
      this.#iceTimer = setTimeout(() => {
        if (this.token) {
          this.getIceServers().catch((e) => this.emit('error', toTurnkeyError(e)));
        }
      }, delay);
    }
  }

  // --- Session internals ---

  #startSession(data) {
    this.refreshToken = null;
    this.#adoptTokens(data);
    this.user = data?.user ?? null;
    if (!this.token) {
      throw new TurnkeyError('the server sent no token', { code: 'NO_TOKEN', data });
    }
    if (!this.#tabId) {
      this.#tabId = randomId();
      this.#claimTab(null).catch(() => {});
    }
    if (Array.isArray(data?.iceServers)) {
      this.#setIceServers(data.iceServers, data.ttl ?? data.iceServersTtl);
    }
    this.#save();
    this.#scheduleRefresh();
    this.emit('session', this.user);
    if (this.options.autoConnect) {
      this.connect().catch(() => {});
    }
    return this.user;
  }

  // Takes the tokens of a login, refresh or password change, and when they arrived: the token's
  // lifetime (exp - iat, both the server's clock) counted on our clock from its arrival schedules
  // the refresh, whatever the offset between the two clocks.
  #adoptTokens(data) {
    this.token = data?.token ?? data?.accessToken ?? null;
    this.refreshToken = data?.refreshToken ?? this.refreshToken;
    const now = Date.now();
    const expiry = jwtExpiry(this.token);
    const issued = jwtIssuedAt(this.token);
    this.#tokenReceivedAt = now;
    if (expiry && issued && expiry > issued) {
      this.#tokenLifetimeMs = expiry - issued;
    } else if (typeof data?.expiresIn === 'number' && data.expiresIn > 0) {
      this.#tokenLifetimeMs = data.expiresIn * 1000;
    } else {
      this.#tokenLifetimeMs = expiry ? Math.max(0, expiry - now) : null;
    }
  }

  // {lifetimeMs, remainingMs} of the access token, or null if it does not say when it expires.
  #tokenTiming(now = Date.now()) {
    const expiry = jwtExpiry(this.token);
    if (!expiry) {
      return null;
    }
    if (this.#tokenLifetimeMs !== null && this.#tokenReceivedAt !== null) {
      return {
        lifetimeMs: this.#tokenLifetimeMs,
        remainingMs: this.#tokenLifetimeMs - (now - this.#tokenReceivedAt),
      };
    }
    const issued = jwtIssuedAt(this.token);
    return { lifetimeMs: issued ? expiry - issued : Math.max(0, expiry - now), remainingMs: expiry - now };
  }

  /**
   * Whether this page may use the session saved under tab id `savedTab` (null: a new session,
   * or one saved before tab ids), holding a Web Lock named after the tab while it does.
   *
   * Why: sessionStorage is per tab, but a duplicated tab (and a page opened by window.open or a
   * same-origin link) starts with a copy of it, refresh token included. The refresh token
   * rotates, so the two tabs would present the same one and the second would be taken for a
   * thief (REFRESH_TOKEN_REUSED): the server revokes the whole login. A marker in the storage
   * alone cannot tell a copy from a reload of the same tab (both see it); what only the
   * original holds is a lock taken for its lifetime, which the browser drops when that document
   * goes (reload, close, crash). So a page that finds the lock of its saved tab held by a live
   * page is a copy and starts logged out; a reload waits up to options.tabLockWaitMs for its
   * previous document to let go. Sharing one session between such tabs (one refresher,
   * BroadcastChannel to hand out the new tokens) was not chosen: in the demo each tab is its own
   * person, and a logout in one tab would then end the other. Without Web Locks (old browsers,
   * insecure contexts) every page keeps its copy, as before.
   */
  async #claimTab(savedTab) {
    const locks = this.options.locks ?? globalThis.navigator?.locks;
    const mode = this.options.tabLock;
    const perTab = mode === true ||
      (mode === 'auto' && Boolean(this.options.storage) &&
        this.options.storage === globalThis.sessionStorage);
    if (!perTab || typeof locks?.request !== 'function') {
      this.#tabId ??= savedTab ?? randomId();
      return true;
    }
    const id = savedTab ?? this.#tabId ?? randomId();
    this.#releaseTab?.();
    this.#releaseTab = null;
    const held = await new Promise((resolve) => {
      const hold = (lock) => {
        clearTimeout(timer);
        if (!lock) {
          resolve(false);
          return undefined;
        }
        resolve(true);
        return new Promise((release) => {
          this.#releaseTab = release;
        });
      };
      let timer = null;
      if (!savedTab) {
        locks.request(`turnkey.tab.${id}`, { ifAvailable: true }, hold).catch(() => resolve(false));
        return;
      }
      const abort = new AbortController();
      timer = setTimeout(() => abort.abort(), this.options.tabLockWaitMs);
      locks.request(`turnkey.tab.${id}`, { signal: abort.signal }, hold).catch(() => resolve(false));
    });
    if (held) {
      this.#tabId = id;
    } else {
      this.#tabId = null;
    }
    return held;
  }

  #endSession(reason) {
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#iceTimer);
    this.#tokenReceivedAt = null;
    this.#tokenLifetimeMs = null;
    for (const call of this.#calls.values()) {
      call._end('logout');
    }
    if (this.socket) {
      this.socket.disconnect();
      this.socket = null;
      this.#everConnected = false;
    }
    clearTimeout(this.#offlineTimer); // armed by that disconnect, with no call left to end
    this.#offlineTimer = null;
    const had = Boolean(this.token || this.refreshToken);
    this.token = null;
    this.refreshToken = null;
    this.user = null;
    this.iceServers = null;
    this.iceServersExpireAt = null;
    this.iceServersLifetimeMs = null;
    this.#releaseTab?.();
    this.#releaseTab = null;
    this.#tabId = null;
    try {
      this.options.storage?.removeItem(this.options.storageKey);
    } catch {
      // Storage unavailable (private mode); nothing was saved then.
    }
    if (had) {
      this.emit('loggedOut', { reason });
    }
  }

  #save() {
    try {
      this.options.storage?.setItem(
        this.options.storageKey,
        JSON.stringify({
          token: this.token,
          refreshToken: this.refreshToken,
          user: this.user,
          receivedAt: this.#tokenReceivedAt,
          lifetimeMs: this.#tokenLifetimeMs,
          tab: this.#tabId,
        }),
      );
    } catch {
      // Storage unavailable; the session just does not survive a reload.
    }
  }

  #scheduleRefresh(retryMs = 0) {
    clearTimeout(this.#refreshTimer);
    const timing = this.#tokenTiming();
    if (!timing || !this.refreshToken) {
      return;
    }
    // tokenRefreshMarginMs before expiry, at most a fifth of the lifetime before (see
    // renewalDelay): a 20 s token is refreshed after 16 s, not every second. A refresh that
    // failed without ending the session on something that passes (no network, a 5xx, a 429)
    // is tried again after 1 s, 2 s, 4 s ... at most 30 s apart: the refresh token outlives
    // the access token by far. `retryMs` > 0: this is such a retry, after that long.
    const delay = retryMs > 0 ? retryMs :
      renewalDelay({ ...timing, marginMs: this.options.tokenRefreshMarginMs });
    this.#refreshTimer = setTimeout(() => {
      const presented = this.refreshToken;
      this.refreshSession().catch((e) => {
        this.emit('error', toTurnkeyError(e));
        // What may pass: no network, a 5xx, a 429. Another refusal would only repeat.
        const passing = e?.code === 'NETWORK' || e?.status === 429 || (e?.status ?? 0) >= 500;
        if (passing && this.refreshToken && this.refreshToken === presented) {
          this.#scheduleRefresh(Math.min(Math.max(2 * retryMs, 1_000), 30_000));
        }
      });
    }, delay);
  }

  #url(path) {
    const base = this.options.baseUrl || globalThis.location?.origin || '';
    return `${base.replace(/\/+$/, '')}${path}`;
  }
}

function randomId() {
  if (typeof globalThis.crypto?.randomUUID === 'function') {
    return globalThis.crypto.randomUUID();
  }
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function listOf(data, key) {
  if (Array.isArray(data)) {
    return data;
  }
  for (const k of [key, 'items', 'results', 'list']) {
    if (Array.isArray(data?.[k])) {
      return data[k];
    }
  }
  return [];
}
