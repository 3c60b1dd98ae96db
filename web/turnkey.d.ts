// Type declarations for turnkey.js (the browser client for a turnkey server).

/** socket.io-client 4's `io` function (only the parts turnkey.js uses). */
export type IoFunction = (uri: string, options?: Record<string, unknown>) => SocketLike;

/** The parts of a socket.io-client Socket that turnkey.js uses. */
export interface SocketLike {
  readonly connected: boolean;
  readonly active?: boolean;
  connect(): unknown;
  disconnect(): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener?: (...args: any[]) => void): unknown;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface TurnkeyClientOptions {
  /** Server base URL, e.g. "https://calls.example.org"; '' (default) = the page's origin. */
  baseUrl?: string;
  /** socket.io-client's `io`; default: the global `io`, else imported from socketIoUrl. */
  io?: IoFunction;
  /** ES module exporting `io`; '' (default) = `${baseUrl}/socket.io.esm.min.js`. */
  socketIoUrl?: string;
  /** Socket.IO path; '' (default) = `<baseUrl path>/socket.io/`. */
  socketPath?: string;
  /** More socket.io-client options (e.g. {transports: ['websocket']}). */
  socketOptions?: Record<string, unknown>;
  /** 'relay' sends all media through TURN. Default 'all'. May be changed between calls. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Extra RTCPeerConnection configuration (iceServers and iceTransportPolicy are set by us). */
  rtcConfiguration?: RTCConfiguration;
  /** Where the session (tokens, user) is kept across reloads, e.g. sessionStorage. */
  storage?: StorageLike | null;
  storageKey?: string;
  /** Connect the socket after login/register/restore. Default true. */
  autoConnect?: boolean;
  /** Refresh the access token this long before it expires, at most a fifth of its lifetime. Default 60000. */
  tokenRefreshMarginMs?: number;
  /** Fetch new iceServers before a call when they expire within this (or are past half their ttl). Default 300000. */
  iceRefreshMarginMs?: number;
  /** A call accepted but not connected within this ends as 'connect_timeout'. Default 30000. */
  connectTimeoutMs?: number;
  /** call() while the socket is still connecting waits this long, then fails 'OFFLINE'. Default 3000. */
  callOfflineWaitMs?: number;
  /** One session per tab (a Web Lock per tab; a duplicated tab starts logged out). 'auto': when storage is sessionStorage. */
  tabLock?: boolean | 'auto';
  /** How long a reloaded page waits for its previous document's tab lock. Default 1500. */
  tabLockWaitMs?: number;
  /** Web Locks implementation; null (default) = navigator.locks. */
  locks?: { request(name: string, options: object, callback: (lock: unknown) => unknown): Promise<unknown> } | null;
  /** How long to wait for a Socket.IO ack. Default 10000. */
  ackTimeoutMs?: number;
  /** A REST request with no answer this long fails with code NETWORK (0 = wait forever). Default 15000. */
  requestTimeoutMs?: number;
  /** ICE 'disconnected' this long makes the caller restart ICE ('failed': at once). Default 2500. */
  disconnectedGraceMs?: number;
  /** ICE restarts in a row (without the media coming back) before the call ends as 'ice_failed'. Default 3. */
  maxIceRestarts?: number;
  /**
   * A restart that has not brought the media back within this is followed by the next one. The
   * callee ends a call whose media stays down twice this long without a new offer. Default 10000.
   */
  iceRestartTimeoutMs?: number;
  /** A call whose socket has been disconnected this long ends here as 'connection_lost'. Default 30000. */
  callOfflineLimitMs?: number;
  audioConstraints?: boolean | MediaTrackConstraints;
  videoConstraints?: boolean | MediaTrackConstraints;
  /** fetch implementation (default globalThis.fetch). */
  fetch?: typeof fetch;
}

export interface TurnkeyUser {
  id: string;
  email?: string;
  handle?: string | null;
  displayName?: string | null;
  [key: string]: unknown;
}

export interface PeerInfo {
  id: string | null;
  handle: string | null;
  displayName: string | null;
}

export type CallType = 'audio' | 'video';
export type CallDirection = 'outgoing' | 'incoming';
export type CallState = 'dialing' | 'ringing' | 'connecting' | 'active' | 'reconnecting' | 'ended';
/**
 * Why a call ended: the server's reason (callEnded.reason, callRejected.reason) or one of these
 * local ones.
 */
export type EndReason =
  | 'hangup'
  | 'cancelled'
  | 'rejected'
  | 'busy'
  | 'timeout'
  | 'unavailable'
  | 'answered_elsewhere'
  | 'connection_lost'
  | 'ice_failed'
  /** Accepted, but the media did not connect within connectTimeoutMs. */
  | 'connect_timeout'
  /** The peer's offer or answer could not be used before the media ever connected. */
  | 'setup_failed'
  | 'not_found'
  | 'logout'
  /** Our outgoing call merged into the callee's call to us, which call() returned instead. */
  | 'glare'
  | 'error'
  | (string & {});

export interface EndInfo {
  reason: EndReason;
  endedBy: string | null;
}

export interface IceReport {
  callId: string;
  state: 'connected' | 'failed';
  localCandidateType: RTCIceCandidateType | null;
  remoteCandidateType: RTCIceCandidateType | null;
  relayProtocol: 'udp' | 'tcp' | 'tls' | null;
  rttMs: number | null;
  /** Failed reports only: the candidates this side gathered, by type. */
  localCandidates?: Partial<Record<RTCIceCandidateType, number>>;
  /** Failed reports only: ICE server errors met while gathering (icecandidateerror), at most 8. */
  iceErrors?: { url: string; errorCode: number }[];
  /** Failed reports only: turn:/turns: URIs configured; the gathering state; ms gathering. */
  turnUris?: number;
  iceGatheringState?: RTCIceGatheringState | null;
  gatheringMs?: number;
  /** Failed reports only: the call ended before ICE came to a verdict here. */
  endedBeforeIce?: boolean;
}

/** Why a failed ICE leg failed (docs/metrics.md turnkey_ice_failures_total). */
export type IceFailureCause =
  'turn_auth' | 'turn_refused' | 'turn_unreachable' | 'no_relay' | 'checks_failed' | 'unknown';

export interface SelectedPair {
  id: string;
  state: RTCStatsIceCandidatePairState | null;
  localType: RTCIceCandidateType | null;
  remoteType: RTCIceCandidateType | null;
  relayProtocol: string | null;
  localProtocol: string | null;
  localAddress: string | null;
  localPort: number | null;
  remoteAddress: string | null;
  remotePort: number | null;
  rttMs: number | null;
  bytesSent: number;
  bytesReceived: number;
}

export interface RtpCounts {
  bytes: number;
  packets: number;
  frames: number;
}

export interface StatsSummary {
  at: number;
  pair: SelectedPair | null;
  inbound: { audio: RtpCounts; video: RtpCounts };
  outbound: { audio: RtpCounts; video: RtpCounts };
  inboundBytes: number;
  outboundBytes: number;
}

/** One side's last reportIce on a call (fields it left out are null). */
export interface CallIceReport {
  state: 'connected' | 'failed' | null;
  localCandidateType: string | null;
  remoteCandidateType: string | null;
  relayProtocol: string | null;
  rttMs: number | null;
  /** Why a failed report failed, as the server read it; null for a connected one. */
  failureCause: IceFailureCause | null;
  reportedAt: string | null;
}

/** An entry of GET /api/calls/history and /api/calls/missed (docs/api.md). */
export interface CallHistoryItem {
  callId: string;
  type: CallType;
  status: 'ringing' | 'active' | 'completed' | 'missed' | 'rejected' | 'cancelled' | 'busy' | 'failed';
  direction: CallDirection;
  isMissed: boolean;
  /** Whole seconds from answer to end (0 if never answered). */
  duration: number;
  /** The reason of the call's end; null while it rings or is active. */
  endReason: string | null;
  callerId: string;
  receiverId: string;
  /** The other participant; null if that account no longer exists. */
  peer: { id: string; handle: string | null; displayName: string | null } | null;
  createdAt: string;
  answeredAt: string | null;
  endedAt: string | null;
  ice: { caller: CallIceReport | null; callee: CallIceReport | null };
  [key: string]: unknown;
}

export interface CallHistoryPage {
  calls: CallHistoryItem[];
  /** More entries exist past skip + limit. */
  hasMore: boolean;
}

export interface TurnCredentials {
  username: string;
  password: string;
  ttl: number;
  uris: string[];
}

export type CallTarget = string | number | { id?: string; userId?: string; handle?: string; displayName?: string };

export class TurnkeyError extends Error {
  constructor(
    message: string,
    init?: { status?: number; code?: string; data?: unknown; retryAfterSeconds?: number | null },
  );
  /** HTTP status for REST errors, else 0. */
  status: number;
  /** The server's error code (e.g. "TOKEN_EXPIRED"), an end reason, or a local code. */
  code: string;
  data: unknown;
  /** Seconds the server asked to wait before trying again (Retry-After of a 429 or 503), else null. */
  retryAfterSeconds: number | null;
}

/** A Retry-After value (delay-seconds or an HTTP-date) as whole seconds from `now`; null if neither. */
export function retryAfterSeconds(value: string | null | undefined, now?: number): number | null;

export class Emitter {
  /** Adds a listener; returns a function that removes it. */
  on(event: string, fn: (...args: any[]) => void): () => void;
  once(event: string, fn: (...args: any[]) => void): () => void;
  off(event: string, fn: (...args: any[]) => void): void;
  emit(event: string, ...args: unknown[]): boolean;
}

/** One RTCPeerConnection with candidate buffering, restarts and stats; signaling-agnostic. */
export class PeerLink extends Emitter {
  constructor(options?: {
    iceServers?: RTCIceServer[];
    iceTransportPolicy?: RTCIceTransportPolicy;
    rtcConfiguration?: RTCConfiguration;
    RTCPeerConnection?: typeof RTCPeerConnection;
  });
  readonly pc: RTCPeerConnection;
  /** Candidates gathered here, by type, over every ICE generation. */
  readonly gathered: Partial<Record<RTCIceCandidateType, number>>;
  /** ICE server errors met while gathering (icecandidateerror), at most 8. */
  readonly iceErrors: { url: string; errorCode: number }[];
  readonly remoteStream: MediaStream | null;
  readonly iceState: RTCIceConnectionState;
  readonly connectionState: RTCPeerConnectionState;
  addLocalStream(stream: MediaStream): void;
  createOffer(options?: { iceRestart?: boolean }): Promise<RTCSessionDescriptionInit>;
  acceptOffer(offer: RTCSessionDescriptionInit): Promise<RTCSessionDescriptionInit>;
  acceptAnswer(answer: RTCSessionDescriptionInit): Promise<void>;
  addRemoteCandidate(candidate: RTCIceCandidateInit): Promise<void>;
  setIceServers(iceServers: RTCIceServer[]): void;
  restartIce(): void;
  getStats(): Promise<RTCStatsReport>;
  stats(): Promise<StatsSummary>;
  close(): void;

  on(event: 'signal', fn: (signal: { type: 'candidate'; candidate: RTCIceCandidateInit }) => void): () => void;
  on(event: 'remoteStream', fn: (stream: MediaStream) => void): () => void;
  on(event: 'iceState', fn: (state: RTCIceConnectionState) => void): () => void;
  on(event: 'connectionState', fn: (state: RTCPeerConnectionState) => void): () => void;
  /** The current gathering completed without a single local candidate. */
  on(event: 'gatheringFailed', fn: () => void): () => void;
}

export class TurnkeyCall extends Emitter {
  /** Server call id; null while an outgoing call is dialing. */
  readonly id: string | null;
  readonly direction: CallDirection;
  readonly type: CallType;
  readonly peer: PeerInfo;
  readonly state: CallState;
  readonly isEnded: boolean;
  readonly localStream: MediaStream | null;
  readonly remoteStream: MediaStream | null;
  readonly peerConnection: RTCPeerConnection | null;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly answeredAt: number | null;
  readonly connectedAt: number | null;
  readonly endedAt: number | null;
  readonly endReason: EndReason | null;
  readonly endedBy: string | null;
  /** The error the call ended on (e.g. the server's refusal of initiateCall), or null. */
  readonly endError: TurnkeyError | null;
  readonly muted: boolean;
  readonly cameraOff: boolean;
  /** What was sent with reportIce (once per call), or null. */
  readonly iceReport: IceReport | null;
  /** Resolves when accepted; rejects with a TurnkeyError (code = end reason) if it ends first. */
  readonly answered: Promise<TurnkeyCall>;
  /** Resolves when the call ends. */
  readonly ended: Promise<EndInfo>;

  /** Incoming, ringing: opens the microphone (and camera for video) and accepts. */
  accept(options?: { stream?: MediaStream }): Promise<void>;
  /** Incoming, ringing: rejects on every device of this user. */
  reject(): Promise<void>;
  /** Cancels (ringing out), rejects (ringing in) or hangs up (in progress). */
  hangup(): Promise<void>;
  setMuted(muted: boolean): boolean;
  toggleMute(): boolean;
  setCameraOff(off: boolean): boolean;
  toggleCamera(): boolean;
  stats(): Promise<StatsSummary | null>;
  getStats(): Promise<RTCStatsReport | null>;

  on(event: 'state', fn: (state: CallState) => void): () => void;
  on(event: 'ringing' | 'accepted' | 'connected' | 'reconnecting' | 'peerReconnected', fn: () => void): () => void;
  on(event: 'localStream' | 'remoteStream', fn: (stream: MediaStream) => void): () => void;
  on(event: 'iceState', fn: (state: RTCIceConnectionState) => void): () => void;
  on(event: 'connectionState', fn: (state: RTCPeerConnectionState) => void): () => void;
  on(event: 'iceReport', fn: (report: IceReport) => void): () => void;
  on(event: 'mute' | 'camera', fn: (on: boolean) => void): () => void;
  on(event: 'ended', fn: (info: EndInfo) => void): () => void;
  on(event: 'error', fn: (error: TurnkeyError) => void): () => void;
}

export class TurnkeyClient extends Emitter {
  constructor(options?: TurnkeyClientOptions);
  readonly options: Required<Omit<TurnkeyClientOptions, 'io' | 'fetch'>> & TurnkeyClientOptions;
  readonly token: string | null;
  readonly refreshToken: string | null;
  readonly user: TurnkeyUser | null;
  readonly loggedIn: boolean;
  /** Whether the Socket.IO connection is up. */
  readonly connected: boolean;
  readonly iceServers: RTCIceServer[] | null;
  /** Milliseconds since the epoch, or null when unknown. */
  readonly iceServersExpireAt: number | null;
  readonly socket: SocketLike | null;
  /** The most recent call that has not ended, or null. */
  readonly currentCall: TurnkeyCall | null;
  readonly calls: TurnkeyCall[];

  register(input: { email: string; password: string; handle?: string; displayName?: string }): Promise<TurnkeyUser>;
  login(input: { email: string; password: string }): Promise<TurnkeyUser>;
  logout(): Promise<void>;
  restoreSession(): Promise<TurnkeyUser | null>;
  refreshSession(): Promise<string>;
  /** POST /api/auth/password; adopts the new session the server returns (other devices are signed out). */
  changePassword(currentPassword: string, newPassword: string): Promise<void>;
  /** One REST call; resolves with the envelope's data. Refreshes and retries once on an expired token. */
  request<T = any>(method: string, path: string, body?: unknown, options?: { auth?: boolean; retry?: boolean }): Promise<T>;

  getMe(): Promise<TurnkeyUser>;
  updateMe(changes: { displayName?: string; handle?: string }): Promise<TurnkeyUser>;
  searchUsers(q: string): Promise<TurnkeyUser[]>;
  listContacts(): Promise<TurnkeyUser[]>;
  addContact(target: string | { id?: string; userId?: string; handle?: string }): Promise<unknown>;
  removeContact(userId: string): Promise<unknown>;
  /** Replaces the whole contact list; resolves with {contacts, notFound}. */
  syncContacts(list: { userIds?: string[]; handles?: string[] }): Promise<{ contacts: TurnkeyUser[]; notFound: string[] }>;
  /** Newest first; type 'audio' | 'video' | 'all', direction 'incoming' | 'outgoing' | 'all', limit 1-100 (default 20). */
  callHistory(query?: { type?: CallType | 'all'; direction?: CallDirection | 'all'; limit?: number; skip?: number }): Promise<CallHistoryPage>;
  /** Incoming missed calls, newest first; the same paging as callHistory. */
  missedCalls(query?: { type?: CallType | 'all'; limit?: number; skip?: number }): Promise<CallHistoryPage>;
  deleteCall(callId: string): Promise<unknown>;
  turnCredentials(): Promise<TurnCredentials>;

  freshIceServers(): Promise<RTCIceServer[]>;
  getIceServers(): Promise<RTCIceServer[]>;

  connect(): Promise<void>;
  disconnect(): void;

  /** Rings a user (see turnkey.js for how a string target is read). Resolves once the server took the call. */
  call(target: CallTarget, options?: { video?: boolean; stream?: MediaStream; by?: 'id' | 'handle' }): Promise<TurnkeyCall>;
  accept(call?: TurnkeyCall): Promise<TurnkeyCall>;
  reject(call?: TurnkeyCall): Promise<void>;
  hangup(call?: TurnkeyCall): Promise<void>;
  toggleMute(): boolean;
  toggleCamera(): boolean;

  on(event: 'session', fn: (user: TurnkeyUser | null) => void): () => void;
  on(event: 'tokenRefreshed', fn: (token: string) => void): () => void;
  on(event: 'loggedOut', fn: (info: { reason: 'logout' | 'expired' | 'revoked' | 'duplicate_tab' }) => void): () => void;
  on(event: 'connect', fn: () => void): () => void;
  on(event: 'disconnect', fn: (reason: string) => void): () => void;
  on(event: 'connectError', fn: (error: Error & { data?: { code?: string } }) => void): () => void;
  on(event: 'iceServers', fn: (iceServers: RTCIceServer[]) => void): () => void;
  on(event: 'incomingCall' | 'call', fn: (call: TurnkeyCall) => void): () => void;
  on(event: 'callEnded', fn: (call: TurnkeyCall, info: EndInfo) => void): () => void;
  on(event: 'callError', fn: (payload: { error: string; callId?: string }) => void): () => void;
  on(event: 'error' | 'warning', fn: (error: TurnkeyError) => void): () => void;
}

export function jwtExpiry(token: string): number | null;
export function iceServersExpiry(iceServers: RTCIceServer[], ttlSeconds?: number, nowMs?: number): number | null;
export function iceServersFromTurnCredentials(credentials: TurnCredentials | { iceServers: RTCIceServer[] }): RTCIceServer[];
export function selectedCandidatePair(report: RTCStatsReport | Map<string, any> | any[] | Record<string, any>): SelectedPair | null;
export function summarizeStats(report: RTCStatsReport | Map<string, any> | any[] | Record<string, any>, nowMs?: number): StatsSummary;
/** The cause the server gives a failed report (null unless report.state is 'failed'). */
export function iceFailureCause(report: Partial<IceReport> | null | undefined): IceFailureCause | null;
