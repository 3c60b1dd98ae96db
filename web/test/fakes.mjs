// Fakes shared by the Node tests in this folder: a fake turnkey REST API (FakeServer, as fetch),
// a Socket.IO-like socket (FakeSocket), RTCPeerConnection (FakePeerConnection), Web Locks
// (FakeLocks), storage, and helpers for node:test's fake clock. Not a test itself (node --test
// runs it as an empty one).

import { mock } from 'node:test';

import { TurnkeyClient } from '../turnkey.js';

export function jwt(payload) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}.c2ln`;
}

function tokenExpired(token, nowMs) {
  const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  return payload.exp * 1000 <= nowMs;
}

export class MemoryStorage {
  #items = new Map();
  getItem(key) {
    return this.#items.has(key) ? this.#items.get(key) : null;
  }
  setItem(key, value) {
    this.#items.set(key, String(value));
  }
  removeItem(key) {
    this.#items.delete(key);
  }
  copy() {
    const other = new MemoryStorage();
    for (const [k, v] of this.#items) {
      other.setItem(k, v);
    }
    return other;
  }
}

/**
 * turnkey's REST API as far as the session goes. Access tokens last `ttlS` on a server clock
 * `skewMs` ahead of ours; refresh tokens rotate, and a reused one revokes the login. Login
 * refuses the password `wrongPassword` (401 INVALID_CREDENTIALS), and every attempt while
 * `loginRetryAfter` is set (429 RATE_LIMITED with that Retry-After); register signs up anyone;
 * the call history is `history` when set, else `historySize` made-up entries; contacts: none.
 */
export class FakeServer {
  constructor({ ttlS = 900, skewMs = 0, iceTtlS = 86_400 } = {}) {
    Object.assign(this, { ttlS, skewMs, iceTtlS });
    this.seq = 0;
    this.calls = [];
    this.live = new Set(); // access tokens that count
    this.refreshTokens = new Map(); // token -> 'live' | 'spent'
    this.revoked = false;
    this.fetch = (url, init) => this.#handle(url, init);
  }

  count(path) {
    return this.calls.filter((c) => c.path === path).length;
  }

  session(extra = {}) {
    const now = Date.now() + this.skewMs;
    const n = ++this.seq;
    const token = jwt({ sub: 'u1', n, iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + this.ttlS });
    const refreshToken = `r${n}`;
    this.live.add(token);
    this.refreshTokens.set(refreshToken, 'live');
    return { token, refreshToken, expiresIn: this.ttlS, ...extra };
  }

  revokeAll() {
    this.revoked = true;
    this.live.clear();
    for (const key of this.refreshTokens.keys()) {
      this.refreshTokens.set(key, 'revoked');
    }
  }

  #reply(status, data, code = '', message = code, headers = {}) {
    const body = status < 400 ? { success: true, message: 'OK', data } :
      { success: false, message, code, data: null };
    const named = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    return Promise.resolve({
      status, ok: status < 400, json: async () => body,
      headers: { get: (name) => named.get(name.toLowerCase()) ?? null },
    });
  }

  #handle(url, init) {
    const path = new URL(url, 'http://x').pathname;
    const body = init.body ? JSON.parse(init.body) : null;
    const token = (init.headers.Authorization ?? '').replace(/^Bearer /, '');
    const query = Object.fromEntries(new URL(url, 'http://x').searchParams);
    this.calls.push({ path, body, token, query });
    if (this.networkDown > 0) {
      this.networkDown -= 1;
      return Promise.reject(new TypeError('Failed to fetch'));
    }
    if (this.networkStall > 0) {
      // A link that carries nothing (packets dropped, not refused): no answer, no error, until
      // the caller gives up through its AbortSignal.
      this.networkStall -= 1;
      return new Promise((resolve, reject) => {
        init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
    }
    if (path === '/api/auth/login' && this.loginRetryAfter !== undefined) {
      return this.#reply(429, null, 'RATE_LIMITED', 'Too many attempts; try again later',
        { 'Retry-After': this.loginRetryAfter });
    }
    if (path === '/api/auth/login' && body?.password === this.wrongPassword) {
      return this.#reply(401, null, 'INVALID_CREDENTIALS', 'Invalid email or password');
    }
    if (path === '/api/auth/login' || path === '/api/auth/register') {
      return this.#reply(200, this.session({
        user: { id: 'u1', handle: 'ada' },
        iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: 'x', credential: 'y' }],
        iceServersTtl: this.iceTtlS,
      }));
    }
    if (path === '/api/auth/refresh') {
      const state = this.refreshTokens.get(body.refreshToken);
      if (state === 'spent') {
        this.revokeAll();
        return this.#reply(401, null, 'REFRESH_TOKEN_REUSED');
      }
      if (state !== 'live') {
        return this.#reply(401, null, 'REFRESH_TOKEN_REVOKED');
      }
      this.refreshTokens.set(body.refreshToken, 'spent');
      return this.#reply(200, this.session());
    }
    if (this.live.has(token) && tokenExpired(token, Date.now() + this.skewMs)) {
      return this.#reply(401, null, 'TOKEN_EXPIRED');
    }
    if (!this.live.has(token)) {
      return this.#reply(401, null, 'TOKEN_REVOKED');
    }
    if (path === '/api/auth/logout') {
      this.revokeAll();
      return this.#reply(200, { revokedTokens: 1 });
    }
    if (path === '/api/calls/missed' || path === '/api/calls/history') {
      const skip = Number(query.skip ?? 0);
      const limit = Number(query.limit ?? 20);
      const all = this.history ?? Array.from({ length: this.historySize ?? 0 }, (_, i) => ({ callId: `c${i}` }));
      return this.#reply(200, { calls: all.slice(skip, skip + limit), hasMore: all.length > skip + limit, limit, skip });
    }
    if (path === '/api/contacts') {
      return this.#reply(200, { contacts: [] });
    }
    if (path === '/api/users/me') {
      return this.#reply(200, { user: { id: 'u1', handle: 'ada' } });
    }
    if (path === '/api/turn/credentials') {
      return this.#reply(200, {
        ttl: this.iceTtlS,
        iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: 'x', credential: 'y' }],
      });
    }
    if (path === '/api/auth/password') {
      if (body.currentPassword !== 'old password') {
        return this.#reply(401, null, 'INVALID_CREDENTIALS');
      }
      this.revokeAll();
      this.revoked = false;
      const data = this.session();
      this.onPasswordChanged?.();
      return this.#reply(200, data);
    }
    return this.#reply(404, null, 'NOT_FOUND');
  }
}

/**
 * A socket.io-client Socket as far as turnkey.js uses it; `server(event, payload)` acks. The
 * server answers a CONNECT after `joinMs` (fake clock; 0: at once). Like socket.io-client,
 * connect() while the manager (`io`) is open and that answer is pending sends the CONNECT again:
 * counted in `duplicateConnects`. Events emitted while disconnected wait in `sendBuffer` (the
 * packet shape of socket.io-client 4) and go out on the next connect, before 'connect' fires;
 * `emitted` lists what went out.
 */
export const kNoAck = Symbol('no ack'); // a `server` answer that leaves the emit unacknowledged

export class FakeSocket {
  constructor(server) {
    this.server = server;
    this.handlers = new Map();
    this.connected = false;
    this.active = false;
    this.connects = 0;
    this.duplicateConnects = 0;
    this.joinMs = 0;
    this.io = { _readyState: 'closed' };
    this.emitted = [];
    this.sendBuffer = [];
    this.acks = {};
    this.ids = 0;
  }
  on(event, fn) {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), fn]);
  }
  off(event, fn) {
    this.handlers.set(event, (this.handlers.get(event) ?? []).filter((f) => f !== fn));
  }
  fire(event, ...args) {
    for (const fn of this.handlers.get(event) ?? []) {
      fn(...args);
    }
  }
  connect() {
    this.connects += 1;
    if (this.connected) {
      return;
    }
    if (this.active && this.io._readyState === 'open') {
      this.duplicateConnects += 1;
      return;
    }
    this.active = true;
    if (this.up !== false) {
      this.io._readyState = 'open';
      const join = () => {
        if (this.active && !this.connected) {
          this.connected = true;
          const buffered = this.sendBuffer;
          this.sendBuffer = [];
          for (const packet of buffered) {
            this.#send(packet.data[0], packet.data[1], this.acks[packet.id]);
            delete this.acks[packet.id];
          }
          this.fire('connect');
        }
      };
      if (this.joinMs > 0) {
        setTimeout(join, this.joinMs);
      } else {
        queueMicrotask(join);
      }
    }
  }
  disconnect() {
    this.active = false;
    this.connected = false;
    this.io._readyState = 'closed';
  }
  serverDisconnect() {
    this.active = false;
    this.connected = false;
    this.io._readyState = 'closed';
    this.fire('disconnect', 'io server disconnect');
  }
  drop() {
    this.connected = false;
    this.up = false;
    this.io._readyState = 'closed';
    this.fire('disconnect', 'transport close');
  }
  emit(event, payload, ack) {
    if (!this.connected && this.active) {
      const id = this.ids++;
      this.acks[id] = ack;
      this.sendBuffer.push({ type: 2, data: [event, payload], id });
      return;
    }
    this.#send(event, payload, ack);
  }
  #send(event, payload, ack) {
    this.emitted.push({ event, payload });
    const answer = this.server?.(event, payload) ?? { ok: true };
    if (answer !== kNoAck) {
      queueMicrotask(() => ack?.(answer));
    }
  }
  sent(event) {
    return this.emitted.filter((e) => e.event === event);
  }
}

/**
 * RTCPeerConnection without a network: descriptions must start with "v=0". `set(ice,
 * connection)` plays a state change; `gather(state)` a change of iceGatheringState;
 * `candidate()` a gathered local candidate; `turnError()` an icecandidateerror; `gatherNothing()` a gathering with only that; `offers` lists
 * createOffer's options.
 */
export class FakePeerConnection extends EventTarget {
  static last = null;
  constructor() {
    super();
    this.iceConnectionState = 'new';
    this.connectionState = 'new';
    this.iceGatheringState = 'new';
    this.signalingState = 'stable';
    this.localDescription = null;
    this.remoteDescription = null;
    this.offers = [];
    this.log = []; // setConfiguration and setRemoteDescription calls, in order
    FakePeerConnection.last = this;
  }
  set(ice, connection = ice) {
    if (ice !== this.iceConnectionState) {
      this.iceConnectionState = ice;
      this.dispatchEvent(new Event('iceconnectionstatechange'));
    }
    if (connection !== this.connectionState) {
      this.connectionState = connection;
      this.dispatchEvent(new Event('connectionstatechange'));
    }
  }
  gather(state) {
    this.iceGatheringState = state;
    this.dispatchEvent(new Event('icegatheringstatechange'));
  }
  candidate(text = 'candidate:1 1 udp 1 127.0.0.1 50000 typ relay') {
    const candidate = { candidate: text, toJSON: () => ({ candidate: text, sdpMid: '0' }) };
    this.dispatchEvent(Object.assign(new Event('icecandidate'), { candidate }));
  }
  turnError(errorCode = 701, url = 'turn:127.0.0.1:3478?transport=udp') {
    this.dispatchEvent(Object.assign(new Event('icecandidateerror'), { url, errorCode }));
  }
  // A whole gathering that yields no candidate, the TURN server answering `errorCode`.
  gatherNothing(errorCode = 701) {
    this.gather('gathering');
    this.turnError(errorCode);
    this.gather('complete');
  }
  addTrack() {}
  async createOffer(options = {}) {
    this.offers.push(options);
    return { type: 'offer', sdp: 'v=0\r\n' };
  }
  async createAnswer() {
    return { type: 'answer', sdp: 'v=0\r\n' };
  }
  async setLocalDescription(d) {
    this.localDescription = d;
  }
  async setRemoteDescription(d) {
    if (!String(d?.sdp ?? '').startsWith('v=0')) {
      throw new Error("Failed to execute 'setRemoteDescription': invalid SDP");
    }
    this.remoteDescription = d;
    this.log.push('setRemoteDescription');
  }
  async addIceCandidate() {}
  async getStats() {
    return new Map();
  }
  getConfiguration() {
    return {};
  }
  setConfiguration() {
    this.log.push('setConfiguration');
  }
  close() {
    this.signalingState = 'closed';
  }
}

/** navigator.locks for exclusive locks: request(name, {ifAvailable?, signal?}, callback). */
export class FakeLocks {
  #held = new Map(); // name -> release of the holder
  #queue = new Map(); // name -> [grant]
  request(name, options, callback) {
    return new Promise((resolve, reject) => {
      const grant = () => {
        let release;
        const done = new Promise((r) => {
          release = r;
        });
        this.#held.set(name, release);
        Promise.resolve(callback({ name })).then((value) => {
          release();
          resolve(value);
        });
        done.then(() => {
          this.#held.delete(name);
          const next = this.#queue.get(name)?.shift();
          next?.();
        });
      };
      if (!this.#held.has(name)) {
        grant();
        return;
      }
      if (options.ifAvailable) {
        Promise.resolve(callback(null)).then(resolve);
        return;
      }
      const waiting = this.#queue.get(name) ?? [];
      waiting.push(grant);
      this.#queue.set(name, waiting);
      options.signal?.addEventListener('abort', () => {
        const list = this.#queue.get(name) ?? [];
        const i = list.indexOf(grant);
        if (i >= 0) {
          list.splice(i, 1);
          reject(new DOMException('aborted', 'AbortError'));
        }
      });
    });
  }
  /** The page holding `name` goes away (reload, close): the browser drops its locks. */
  drop(name) {
    this.#held.get(name)?.();
  }
  names() {
    return [...this.#held.keys()];
  }
}

// Each test ends within seconds; a regression that hangs (a call waiting for a socket) fails.
export const kBounded = { timeout: 10_000 };

export const flush = () => new Promise((resolve) => setImmediate(resolve));

/** Advances the fake clock by `ms` in steps, letting promises run between steps. */
export async function advance(ms, step = 250) {
  for (let t = 0; t < ms; t += step) {
    mock.timers.tick(Math.min(step, ms - t));
    await flush();
  }
}

export function newClient(server, extra = {}) {
  return new TurnkeyClient({
    fetch: server.fetch,
    baseUrl: 'http://127.0.0.1:44080',
    autoConnect: false,
    tabLock: false,
    ...extra,
  });
}

/**
 * The little of the DOM that app.js uses, for loading the demo page in Node: elements with ids,
 * text, dataset, classList, children and events (no layout, no selectors but `#id`). Every
 * element counts as an HTMLInputElement (app.js only asks that of a key's target).
 */
export class FakeElement extends EventTarget {
  constructor(tag = 'div', id = '') {
    super();
    Object.assign(this, { tagName: tag.toUpperCase(), id, hidden: false, disabled: false, checked: false });
    Object.assign(this, { value: '', title: '', className: '', srcObject: null, tabIndex: 0 });
    this.dataset = {};
    this.children = [];
    this.attributes = new Map();
    this.isConnected = true;
    this.classes = new Set();
    this.classList = {
      add: (c) => this.classes.add(c),
      remove: (c) => this.classes.delete(c),
      contains: (c) => this.classes.has(c),
      toggle: (c, on = !this.classes.has(c)) => (on ? this.classes.add(c) : this.classes.delete(c), on),
    };
    this.text = '';
  }
  get textContent() {
    return this.text + this.children.map((c) => c.textContent).join(' ');
  }
  set textContent(value) {
    this.text = String(value);
    this.children = [];
  }
  setAttribute(name, value) {
    if (name.startsWith('data-')) {
      this.dataset[name.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = String(value);
    } else if (name === 'id') {
      this.id = String(value);
    }
    this.attributes.set(name, String(value));
  }
  getAttribute(name) {
    return this.attributes.get(name) ?? null;
  }
  append(...nodes) {
    this.children.push(...nodes.map((n) => (n instanceof FakeElement ? n : Object.assign(new FakeElement('#text'), { text: String(n) }))));
  }
  replaceChildren(...nodes) {
    this.children = [];
    this.text = '';
    this.append(...nodes);
  }
  /** This element or a descendant whose id is `id`, or null. */
  find(id) {
    return this.id === id ? this : this.children.map((c) => c.find(id)).find(Boolean) ?? null;
  }
  contains(node) {
    return node === this || this.children.some((c) => c.contains(node));
  }
  querySelectorAll() {
    return [];
  }
  getClientRects() {
    return [];
  }
  focus() {
    globalThis.document.activeElement = this;
  }
  click() {
    this.dispatchEvent(new Event('click'));
  }
}

/** A document whose `#id` lookups always find an element (made on first use). */
export class FakeDocument extends EventTarget {
  #byId = new Map();
  constructor() {
    super();
    this.body = new FakeElement('body');
    this.activeElement = this.body;
  }
  querySelector(selector) {
    const id = selector.replace(/^#/, '');
    if (!this.#byId.has(id)) {
      this.#byId.set(id, new FakeElement('div', id));
    }
    return this.#byId.get(id);
  }
  createElement(tag) {
    return new FakeElement(tag);
  }
}
