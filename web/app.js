// The turnkey demo page: sign up or log in, pick a handle, find people, call them (audio or
// video) and see the history. Everything it does goes through turnkey.js; read that first.
//
// Query parameters: ?relay=1 starts with "Relay only" ticked (iceTransportPolicy 'relay').
// Tests drive it by element id (web/README.md lists them) and read window.turnkeyDemo.

import { TurnkeyClient, iceFailureCause } from './turnkey.js';

const $ = (selector) => document.querySelector(selector);

const kRelayKey = 'turnkey.demo.relay';
const params = new URLSearchParams(location.search);
const relayOnly = params.has('relay')
  ? params.get('relay') === '1'
  : sessionStorage.getItem(kRelayKey) === '1';

// sessionStorage: each window keeps its own session, so two windows of one browser can be two
// different people calling each other.
const client = new TurnkeyClient({
  storage: sessionStorage,
  iceTransportPolicy: relayOnly ? 'relay' : 'all',
});

let lastStats = null;
let lastCall = null;
let statsTimer = null;
let clockTimer = null;
let resultTimer = null;
let profileMsgTimer = null;
let contactIds = new Set();
let searchSeq = 0;

function callInfo(call) {
  if (!call) {
    return null;
  }
  return {
    id: call.id,
    state: call.state,
    direction: call.direction,
    type: call.type,
    peer: { ...call.peer },
    endReason: call.endReason,
    endedBy: call.endedBy,
    answeredAt: call.answeredAt,
    connectedAt: call.connectedAt,
    endedAt: call.endedAt,
    muted: call.muted,
    cameraOff: call.cameraOff,
    iceReport: call.iceReport,
  };
}

window.turnkeyDemo = {
  client,
  /** The stats summary polled once a second during the last call (turnkey.js summarizeStats). */
  lastStats: () => lastStats,
  /** Fresh stats of the call in progress, or null. */
  stats: async () => (client.currentCall ? client.currentCall.stats() : null),
  /** A plain snapshot of the current or most recent call. */
  lastCall: () => callInfo(client.currentCall ?? lastCall),
  refreshHistory: () => refreshHistory(),
};

// --- Small DOM helpers -----------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key === 'class') {
      node.className = value;
    } else if (key === 'text') {
      node.textContent = value;
    } else if (key.startsWith('on')) {
      node.addEventListener(key.slice(2), value);
    } else if (key.startsWith('data')) {
      node.setAttribute(key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), String(value));
    } else {
      node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// Element ids carry user and call ids; keep them to characters CSS selectors take as they are.
function safeId(id) {
  return String(id).replace(/[^A-Za-z0-9_-]/g, '_');
}

function idOf(user) {
  return user?.id ?? user?.userId ?? user?._id ?? null;
}

function labelOf(user) {
  if (!user) {
    return 'someone';
  }
  if (user.displayName && user.handle) {
    return `${user.displayName} (@${user.handle})`;
  }
  return user.displayName || (user.handle ? `@${user.handle}` : String(idOf(user) ?? 'someone'));
}

function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

function formatTime(value) {
  if (value === undefined || value === null || value === '') {
    return '';
  }
  let date;
  if (typeof value === 'number') {
    date = new Date(value < 1e12 ? value * 1000 : value);
  } else {
    date = new Date(value);
  }
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

function showError(node, error) {
  const text = error?.message ?? String(error);
  // A 429 (or 503) says how long: "Too many attempts; try again later (in 20 s)."
  const wait = error?.retryAfterSeconds;
  node.textContent = wait > 0 ? `${text.replace(/[.]$/, '')} (in ${formatWait(wait)}).` : text;
  node.hidden = false;
}

function formatWait(seconds) {
  return seconds < 120 ? `${seconds} s` : `${Math.ceil(seconds / 60)} min`;
}

function setBusy(buttons, busy) {
  for (const b of buttons) {
    b.disabled = busy;
  }
}

// --- Session ---------------------------------------------------------------------------

const kSignedOutText = {
  revoked: 'You were signed out: this account logged out or changed its password on another device.',
  expired: 'Your session expired. Log in again.',
  duplicate_tab: 'This tab is a copy of another open tab, which keeps that session. Log in here to use a session of its own.',
};

function showAuth(reason = '') {
  // Whoever comes to this form after a session is a returning user: Enter logs in (the display
  // name typed at sign-up would otherwise make it sign up again, "already registered").
  $('#display-name').value = '';
  lastAuthMode = 'login';
  showEnterMode();
  const notice = $('#auth-notice');
  notice.textContent = kSignedOutText[reason] ?? '';
  notice.dataset.reason = kSignedOutText[reason] ? reason : '';
  notice.hidden = !kSignedOutText[reason];
  $('#auth-view').hidden = false;
  $('#app-view').hidden = true;
  $('#me-summary').hidden = true;
  $('#logout').hidden = true;
  $('#conn-status').dataset.state = 'offline';
  $('#conn-status').textContent = 'offline';
}

function renderMe(user) {
  $('#me-name').textContent = user?.displayName ?? '';
  $('#me-handle').textContent = user?.handle ? `@${user.handle}` : '(no handle yet)';
  $('#me-handle').dataset.handle = user?.handle ?? '';
  $('#handle').value = user?.handle ?? '';
  $('#profile-name').value = user?.displayName ?? '';
}

function showApp(user) {
  $('#auth-view').hidden = true;
  $('#app-view').hidden = false;
  $('#me-summary').hidden = false;
  $('#logout').hidden = false;
  $('#auth-error').hidden = true;
  $('#auth-notice').hidden = true;
  $('#relay-only').checked = client.options.iceTransportPolicy === 'relay';
  renderMe(user);
  refreshContacts();
  refreshHistory();
}

// Enter in the sign-in form signs up once a display name (asked for sign-up only) is typed, or
// when Sign up was the button used last; otherwise it logs in. The button Enter presses is the
// one shown as the primary one.
let lastAuthMode = 'login';

function enterMode() {
  return $('#display-name').value.trim() || lastAuthMode === 'register' ? 'register' : 'login';
}

function showEnterMode() {
  const register = enterMode() === 'register';
  $('#register').classList.toggle('secondary', !register);
  $('#login').classList.toggle('secondary', register);
}

async function authenticate(mode) {
  lastAuthMode = mode;
  showEnterMode();
  const email = $('#email').value.trim();
  const password = $('#password').value;
  const errorNode = $('#auth-error');
  errorNode.hidden = true;
  if (!email || !password) {
    showError(errorNode, new Error('Enter an email and a password.'));
    return;
  }
  const buttons = [$('#register'), $('#login')];
  setBusy(buttons, true);
  try {
    if (mode === 'register') {
      const displayName = $('#display-name').value.trim() || undefined;
      await client.register({ email, password, displayName });
    } else {
      await client.login({ email, password });
    }
    $('#password').value = '';
  } catch (e) {
    showError(errorNode, e);
    if (mode === 'login' && e.status === 401) {
      const said = errorNode.textContent.trimEnd();
      errorNode.textContent = `${said}${/[.!?]$/.test(said) ? '' : '.'} No account yet? Use Sign up.`;
    }
  } finally {
    setBusy(buttons, false);
  }
}

$('#register').addEventListener('click', () => authenticate('register'));
$('#auth-form').addEventListener('submit', (e) => {
  e.preventDefault();
  authenticate('login');
});
$('#auth-form').addEventListener('keydown', (e) => {
  // Enter in a field would press the form's submit button, Log in, whatever the user was doing.
  if (e.key === 'Enter' && e.target instanceof HTMLInputElement && !e.isComposing) {
    e.preventDefault();
    if (!$('#login').disabled) { // Not while a try is on its way.
      authenticate(enterMode());
    }
  }
});
$('#display-name').addEventListener('input', showEnterMode);
showEnterMode();
$('#logout').addEventListener('click', () => client.logout());

client.on('session', (user) => showApp(user));
client.on('loggedOut', ({ reason } = {}) => {
  closeCallScreen();
  closeDialog($('#incoming'));
  showAuth(reason);
});
client.on('connect', () => {
  $('#conn-status').dataset.state = 'online';
  $('#conn-status').textContent = 'online';
  // Calls may have ended (and been missed) while the socket was away, or a refresh may have
  // failed then: the history is read again on every (re)connection.
  refreshHistory();
});
client.on('disconnect', () => {
  $('#conn-status').dataset.state = 'offline';
  $('#conn-status').textContent = 'offline';
});
client.on('connectError', (e) => {
  $('#conn-status').dataset.state = 'error';
  $('#conn-status').textContent = 'connection error';
  $('#conn-status').title = e?.message ?? '';
});
client.on('warning', (e) => showResult(e.message, 'warning'));

// --- Profile ---------------------------------------------------------------------------

$('#profile-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const msg = $('#profile-msg');
  const changes = {};
  const handle = $('#handle').value.trim();
  const displayName = $('#profile-name').value.trim();
  if (handle && handle !== client.user?.handle) {
    changes.handle = handle;
  }
  if (displayName !== (client.user?.displayName ?? '')) {
    changes.displayName = displayName;
  }
  msg.hidden = false;
  msg.classList.remove('error');
  clearTimeout(profileMsgTimer);
  // A confirmation goes away by itself after a while; an error stays until the next try.
  const passing = (text) => {
    msg.textContent = text;
    profileMsgTimer = setTimeout(() => {
      msg.hidden = true;
    }, 4_000);
  };
  if (Object.keys(changes).length === 0) {
    passing('Nothing to change.');
    return;
  }
  $('#save-handle').disabled = true;
  try {
    const user = await client.updateMe(changes);
    renderMe(user);
    passing('Saved.');
  } catch (err) {
    msg.classList.add('error');
    msg.textContent = err.status === 409 ? 'That handle is taken.' : err.message;
  } finally {
    $('#save-handle').disabled = false;
  }
});

$('#password-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const msg = $('#password-msg');
  const current = $('#current-password').value;
  const next = $('#new-password').value;
  msg.hidden = false;
  msg.classList.remove('error');
  if (!current || next.length < 8) {
    msg.classList.add('error');
    msg.textContent = 'Enter your current password and a new one of at least 8 characters.';
    return;
  }
  $('#change-password').disabled = true;
  try {
    await client.changePassword(current, next);
    $('#current-password').value = '';
    $('#new-password').value = '';
    msg.textContent = 'Password changed. Your other devices were signed out.';
  } catch (err) {
    msg.classList.add('error');
    msg.textContent = err.code === 'INVALID_CREDENTIALS' ? 'The current password is wrong.' : err.message;
  } finally {
    $('#change-password').disabled = false;
  }
});

$('#relay-only').addEventListener('change', (e) => {
  client.options.iceTransportPolicy = e.target.checked ? 'relay' : 'all';
  sessionStorage.setItem(kRelayKey, e.target.checked ? '1' : '0');
});

// --- People ----------------------------------------------------------------------------

function callButtons(user, prefix) {
  const id = safeId(idOf(user));
  return [
    el('button', {
      id: `${prefix}call-audio-${id}`, type: 'button', class: 'small',
      'aria-label': `Audio call ${labelOf(user)}`,
      onclick: () => startCall(user, false), text: 'Audio',
    }),
    el('button', {
      id: `${prefix}call-video-${id}`, type: 'button', class: 'small',
      'aria-label': `Video call ${labelOf(user)}`,
      onclick: () => startCall(user, true), text: 'Video',
    }),
  ];
}

function renderSearch(users, query = '') {
  const list = $('#search-results');
  if (users.length === 0 && query) {
    list.replaceChildren(el('li', { id: 'search-empty', class: 'hint', text: `No one found for “${query}”.` }));
    return;
  }
  list.replaceChildren(
    ...users.map((user) => {
      const id = safeId(idOf(user));
      const added = contactIds.has(String(idOf(user)));
      return el('li', { id: `result-${id}`, dataTestid: 'search-result', dataHandle: user.handle ?? '' },
        el('span', { class: 'who', text: labelOf(user) }),
        el('span', { class: 'actions' },
          el('button', {
            id: `add-contact-${id}`, type: 'button', class: 'small secondary', disabled: added,
            text: added ? 'Added' : 'Add', 'aria-label': `Add ${labelOf(user)} to contacts`,
            onclick: (e) => addContact(user, e.currentTarget),
          }),
          ...callButtons(user, 'search-'),
        ));
    }),
  );
}

let searchTimer = null;
$('#search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 250);
});
$('#search').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') {
    e.preventDefault();
    clearTimeout(searchTimer);
    runSearch();
  }
});

async function runSearch() {
  const q = $('#search').value.trim();
  const seq = ++searchSeq;
  if (!q) {
    renderSearch([]);
    return;
  }
  try {
    const users = await client.searchUsers(q);
    if (seq === searchSeq) {
      renderSearch(users, q);
    }
  } catch (e) {
    if (seq === searchSeq) {
      $('#search-results').replaceChildren(el('li', { class: 'error', text: e.message }));
    }
  }
}

async function addContact(user, button) {
  button.disabled = true;
  try {
    await client.addContact(idOf(user));
    button.textContent = 'Added';
    await refreshContacts();
  } catch (e) {
    button.disabled = false;
    showResult(e.message, 'error');
  }
}

async function refreshContacts() {
  let contacts = [];
  try {
    contacts = await client.listContacts();
  } catch (e) {
    showResult(`Contacts: ${e.message}`, 'error');
    return;
  }
  // A contact may be the user itself or wrap it ({user: {...}}).
  const users = contacts.map((c) => (c.user ? { ...c.user, ...c, user: undefined } : c));
  contactIds = new Set(users.map((u) => String(idOf(u))));
  $('#contacts-empty').hidden = users.length > 0;
  $('#contacts').replaceChildren(
    ...users.map((user) => {
      const id = safeId(idOf(user));
      const presence = typeof user.online === 'boolean' ? (user.online ? 'online' : 'offline') : null;
      return el('li', { id: `contact-${id}`, dataTestid: 'contact', dataHandle: user.handle ?? '' },
        el('span', { class: `who${presence ? ` ${presence}` : ''}`, text: labelOf(user) }),
        el('span', { class: 'actions' },
          ...callButtons(user, ''),
          el('button', {
            id: `remove-contact-${id}`, type: 'button', class: 'small ghost', text: 'Remove',
            'aria-label': `Remove ${labelOf(user)}`,
            onclick: async () => {
              try {
                await client.removeContact(idOf(user));
              } catch (e) {
                showResult(e.message, 'error');
              }
              refreshContacts();
            },
          }),
        ));
    }),
  );
}

// --- History ---------------------------------------------------------------------------

function historyFields(item) {
  const me = String(idOf(client.user) ?? '');
  const direction = item.direction ?? (String(item.callerId ?? '') === me ? 'outgoing' : 'incoming');
  const outgoing = direction === 'outgoing';
  const peer = item.peer ?? item.otherParty ?? item.contact ??
    (outgoing ? (item.callee ?? item.receiver) : item.caller) ?? {};
  return {
    id: item.callId ?? item.id ?? item._id,
    direction,
    status: item.status ?? '',
    endReason: item.endReason ?? null,
    cause: item.status === 'failed' ? historyCause(item, direction) : null,
    missed: item.isMissed === true,
    duration: Number(item.duration ?? 0),
    type: item.callType ?? item.type ?? 'audio',
    at: item.createdAt ?? item.startedAt ?? item.created_at,
    peer: {
      id: idOf(peer) ?? (outgoing ? (item.receiverId ?? item.calleeId) : item.callerId),
      handle: peer.handle ?? null,
      displayName: peer.displayName ?? null,
    },
  };
}

const kStatusText = {
  completed: 'Completed',
  missed: 'Missed',
  rejected: 'Declined',
  cancelled: 'Cancelled',
  busy: 'Busy',
  unavailable: 'Unavailable',
  failed: 'Failed',
  connection_lost: 'Connection lost',
  ringing: 'Ringing',
  active: 'In progress',
};

// Why the media failed, from a failed ICE report's cause (turnkey.js iceFailureCause, the
// history's ice.caller/callee.failureCause; docs/metrics.md). 'unknown' says nothing: no text.
const kFailureCauseText = {
  turn_auth: 'the TURN server refused the credentials',
  turn_refused: 'the TURN server refused to relay the call',
  turn_unreachable: 'the TURN server could not be reached',
  no_relay: 'no TURN server was offered',
  checks_failed: 'no network path to the other side worked',
};

// The reason a history entry's call failed: this user's side first, else the other side's.
function historyCause(item, direction) {
  const sides = direction === 'outgoing' ? ['caller', 'callee'] : ['callee', 'caller'];
  for (const side of sides) {
    const cause = item.ice?.[side]?.failureCause;
    if (kFailureCauseText[cause]) {
      return cause;
    }
  }
  return null;
}

// The status as the user of this page sees it: a call of ours that nobody answered is not a
// missed call (that is the callee's, marked apart).
function statusText(f) {
  if (f.direction === 'outgoing' && f.status === 'missed') {
    return f.endReason === 'unavailable' ? kStatusText.unavailable : 'No answer';
  }
  return kStatusText[f.status] ?? f.status;
}

function renderHistory(calls) {
  $('#history-empty').hidden = calls.length > 0;
  $('#history').replaceChildren(
    ...calls.map((item) => {
      const f = historyFields(item);
      const id = safeId(f.id);
      const canCall = f.peer.id || f.peer.handle;
      return el('li', {
        id: `history-${id}`,
        class: `history ${f.missed ? 'missed' : ''}`,
        dataTestid: 'history-item',
        dataCallId: f.id,
        dataStatus: f.status,
        dataDirection: f.direction,
        dataMissed: String(f.missed),
        dataDuration: String(f.duration),
        dataCallType: f.type,
      },
      el('span', { class: 'dir', 'aria-label': f.direction, text: f.direction === 'outgoing' ? '↗' : '↙' }),
      el('span', { class: 'who' },
        el('strong', { text: labelOf(f.peer) }),
        el('small', { text: `${f.type} · ${formatTime(f.at)}` })),
      el('span', { class: 'what' },
        f.missed ? el('span', { class: 'missed-mark', text: 'Missed' }) :
          el('span', { class: 'status', text: statusText(f) }),
        f.status === 'completed' ? el('small', { class: 'duration', text: formatDuration(f.duration) }) : null,
        f.cause ? el('small', { class: 'cause', dataCause: f.cause, text: kFailureCauseText[f.cause] }) : null),
      el('span', { class: 'actions' },
        canCall ? el('button', {
          id: `history-call-${id}`, type: 'button', class: 'small', text: 'Call',
          'aria-label': `Call ${labelOf(f.peer)}`,
          onclick: () => startCall(f.peer, f.type === 'video'),
        }) : null,
        el('button', {
          id: `delete-call-${id}`, type: 'button', class: 'small ghost', text: 'Delete',
          'aria-label': `Delete the call with ${labelOf(f.peer)} from your history`,
          onclick: async () => {
            try {
              await client.deleteCall(f.id);
            } catch (e) {
              showResult(e.message, 'error');
            }
            refreshHistory();
          },
        })));
    }),
  );
}

async function refreshHistory() {
  if (!client.loggedIn) {
    return;
  }
  // Errors show in the history card: the toast holds the result of the call that just ended,
  // which a failed refresh right after it must not replace.
  const errorNode = $('#history-error');
  try {
    const [{ calls }, missed] = await Promise.all([
      client.callHistory({ limit: 50 }),
      client.missedCalls({ limit: 100 }).catch(() => null),
    ]);
    renderHistory(calls);
    const count = missed ? missed.calls.length : calls.filter((c) => c.isMissed).length;
    // The server pages missed calls 100 at a time: more than that shows as "100+".
    const more = Boolean(missed?.hasMore);
    const badge = $('#missed-count');
    badge.textContent = `${count}${more ? '+' : ''}`;
    badge.dataset.count = String(count);
    badge.hidden = count === 0;
    badge.title = `${more ? 'over ' : ''}${count} missed`;
    errorNode.hidden = true;
  } catch (e) {
    if (client.loggedIn) {
      showError(errorNode, new Error(`Could not load the history: ${e.message}`));
    }
  }
}
$('#refresh-history').addEventListener('click', () => refreshHistory());

// --- Calls -----------------------------------------------------------------------------

const kStateText = {
  dialing: 'Calling…',
  ringing: 'Ringing…',
  connecting: 'Connecting…',
  active: 'Connected',
  reconnecting: 'Reconnecting…',
  ended: 'Ended',
};

// Why this side's media failed, as words, when its ICE report says (else '').
function failureCauseText(call) {
  return kFailureCauseText[iceFailureCause(call.iceReport)] ?? '';
}

function endText(call, { reason, endedBy }) {
  const who = labelOf(call.peer);
  const incoming = call.direction === 'incoming';
  const cause = failureCauseText(call);
  switch (reason) {
    case 'hangup':
      // The other side gave up on "Connecting..." (its timeout or failure): say why, if known.
      if (cause && call.answeredAt && !call.connectedAt && endedBy !== idOf(client.user)) {
        return `Call ended: the media never connected (${cause})`;
      }
      return 'Call ended';
    case 'rejected':
      return incoming ? 'Call declined' : `${who} declined`;
    case 'busy':
      return `${who} is busy`;
    case 'timeout':
      return incoming ? `Missed call from ${who}` : 'No answer';
    case 'cancelled':
      // The history records it as cancelled, not missed.
      return incoming ? `${who} cancelled the call` : 'Call cancelled';
    case 'unavailable':
      return `${who} is not available`;
    case 'answered_elsewhere':
      return 'Answered on another device';
    case 'connection_lost':
      // Ended here (callOfflineLimitMs) while this page had no connection to the server.
      return client.connected ? 'Connection lost' : 'Call ended: no connection to the server';
    case 'ice_failed':
      if (call.connectedAt) {
        return `Call dropped: the media connection could not be restored${cause ? ` (${cause})` : ''}`;
      }
      return cause ? `Could not connect the media: ${cause}` : 'Could not connect the media';
    case 'connect_timeout':
      return `Could not connect to ${who}: no media after ${Math.round(client.options.connectTimeoutMs / 1000)} s` +
        (cause ? ` (${cause})` : '');
    case 'setup_failed':
      return `Could not connect to ${who}: their device sent an unusable answer`;
    case 'not_found':
      return 'No such user';
    case 'server_shutdown':
      return 'The server restarted: call ended';
    case 'rejoined_elsewhere':
      return 'The call moved to your other device';
    case 'logout':
      return 'Call ended: signed out';
    case 'error':
      // The server's refusal ("Cannot call yourself", "Already in a call"), shown as text.
      return call.endError?.message ? `Call failed: ${call.endError.message}` : 'Call failed';
    default:
      return 'Call ended';
  }
}

function showResult(text, reason, callId = '') {
  const node = $('#call-result');
  node.textContent = text;
  node.dataset.reason = reason;
  node.dataset.callId = callId ?? '';
  node.hidden = false;
  clearTimeout(resultTimer);
  // Hidden after a while; data-reason stays until the next result, for tests and screen readers.
  resultTimer = setTimeout(() => {
    node.hidden = true;
  }, 10_000);
}
$('#call-result').addEventListener('click', () => {
  $('#call-result').hidden = true;
});

function updateCallScreen(call) {
  const screen = $('#call-screen');
  screen.dataset.state = call.state;
  screen.dataset.callId = call.id ?? '';
  screen.dataset.callType = call.type;
  screen.dataset.direction = call.direction;
  screen.classList.toggle('audio-only', call.type !== 'video');
  $('#call-peer').textContent = labelOf(call.peer);
  $('#call-status').textContent = kStateText[call.state] ?? call.state;
  $('#mute').setAttribute('aria-pressed', String(call.muted));
  $('#mute').textContent = call.muted ? 'Unmute' : 'Mute';
  $('#camera').setAttribute('aria-pressed', String(call.cameraOff));
  $('#camera').textContent = call.cameraOff ? 'Camera on' : 'Camera off';
  $('#camera').disabled = call.type !== 'video';
}

function tick(call) {
  const since = call.connectedAt ?? call.answeredAt;
  const seconds = since ? Math.floor((Date.now() - since) / 1000) : 0;
  $('#timer').textContent = formatDuration(seconds);
  $('#timer').dataset.seconds = String(seconds);
}

async function pollStats(call) {
  const summary = await call.stats().catch(() => null);
  if (!summary || call.isEnded) {
    return;
  }
  lastStats = { ...summary, callId: call.id, callState: call.state, iceReport: call.iceReport };
  const p = summary.pair;
  const kb = (n) => `${Math.round(n / 1024)} kB`;
  $('#call-info').textContent = p
    ? `${p.localType}/${p.remoteType}${p.relayProtocol ? ` (${p.relayProtocol})` : ''}` +
      `${p.rttMs !== null ? ` · ${p.rttMs} ms` : ''} · ↓ ${kb(summary.inboundBytes)} ↑ ${kb(summary.outboundBytes)}`
    : '';
  $('#call-info').dataset.localType = p?.localType ?? '';
  $('#call-info').dataset.remoteType = p?.remoteType ?? '';
}

// --- Dialogs (the incoming call, the call screen) ----------------------------------------
//
// Both are modal: when one opens, focus moves into it (incoming: Accept; call screen: Hang up);
// Tab and Shift+Tab go round its controls and never into the page underneath; when it closes,
// focus goes back to where it was before it opened. Escape rejects an incoming call; on the call
// screen it does nothing (hanging up on a stray key would be worse). A held Enter or Space does
// not press a dialog's button again: an Enter held on Accept must not go on to press Hang up.

const returnFocus = new Map(); // dialog -> the element that had focus before it opened

function focusables(dialog) {
  return [...dialog.querySelectorAll('button, [href], input, select, textarea, [tabindex]')]
    .filter((node) => !node.disabled && node.tabIndex >= 0 && node.getClientRects().length > 0);
}

function openDialog(dialog, first) {
  if (dialog.hidden) {
    returnFocus.set(dialog, document.activeElement);
    dialog.hidden = false;
  }
  (first && !first.disabled ? first : focusables(dialog)[0])?.focus();
}

function closeDialog(dialog) {
  if (dialog.hidden) {
    return;
  }
  const active = document.activeElement;
  const hadFocus = !active || active === document.body || dialog.contains(active);
  dialog.hidden = true;
  const back = returnFocus.get(dialog);
  returnFocus.delete(dialog);
  if (hadFocus && back && back !== document.body && back.isConnected && back.getClientRects().length > 0) {
    back.focus();
  }
}

function topDialog() {
  return [$('#call-screen'), $('#incoming')].find((dialog) => !dialog.hidden) ?? null;
}

document.addEventListener('keydown', (e) => {
  const dialog = topDialog();
  if (!dialog) {
    return;
  }
  if (e.repeat && (e.key === 'Enter' || e.key === ' ') && dialog.contains(e.target)) {
    e.preventDefault();
    return;
  }
  if (e.key === 'Escape' && dialog.id === 'incoming') {
    e.preventDefault();
    rejectIncoming();
    return;
  }
  if (e.key !== 'Tab') {
    return;
  }
  const nodes = focusables(dialog);
  const at = nodes.indexOf(document.activeElement);
  e.preventDefault();
  if (nodes.length === 0) {
    return;
  }
  const next = at < 0 ? (e.shiftKey ? nodes.length - 1 : 0) :
    (at + (e.shiftKey ? -1 : 1) + nodes.length) % nodes.length;
  nodes[next].focus();
});

function showIncoming(call) {
  $('#incoming-caller').textContent = labelOf(call.peer);
  $('#incoming-type').textContent = call.type === 'video' ? 'Incoming video call' : 'Incoming audio call';
  $('#incoming-type').dataset.type = call.type;
  $('#incoming').dataset.callId = call.id;
  openDialog($('#incoming'), $('#accept'));
}

function openCallScreen(call) {
  lastCall = call;
  closeDialog($('#incoming'));
  $('#call-result').hidden = true;
  $('#remote-video').srcObject = call.remoteStream;
  $('#local-video').srcObject = call.localStream;
  $('#timer').textContent = '0:00';
  $('#timer').dataset.seconds = '0';
  $('#call-info').textContent = '';
  lastStats = null;
  updateCallScreen(call);
  openDialog($('#call-screen'), $('#hangup'));
  clearInterval(clockTimer);
  clearInterval(statsTimer);
  clockTimer = setInterval(() => tick(call), 1000);
  statsTimer = setInterval(() => pollStats(call), 1000);
}

function closeCallScreen() {
  clearInterval(clockTimer);
  clearInterval(statsTimer);
  closeDialog($('#call-screen'));
  $('#remote-video').srcObject = null;
  $('#local-video').srcObject = null;
}

// Whether the call screen shows `call` (an outgoing call has no id until the server names it).
function onScreen(call) {
  const screen = $('#call-screen');
  const shown = screen.dataset.callId ?? '';
  return !screen.hidden && (shown === '' || shown === String(call.id ?? ''));
}

const kOrdinaryCallErrors =
  /^(User busy|User not available|Receiver not found|Cannot call yourself|Already in a call|Call already processed|Call not found)$/;

function attachCall(call) {
  lastCall = call;
  call.on('state', () => {
    if (onScreen(call)) {
      updateCallScreen(call);
    }
  });
  call.on('localStream', (stream) => {
    $('#local-video').srcObject = stream;
  });
  call.on('remoteStream', (stream) => {
    $('#remote-video').srcObject = stream;
  });
  call.on('connected', () => pollStats(call));
  // Accepted without the Accept button: we called someone who was calling us (glare).
  call.on('accepted', () => {
    if (call.direction === 'incoming' && !onScreen(call)) {
      openCallScreen(call);
    }
  });
  call.on('ended', (info) => {
    if (onScreen(call)) {
      tick(call);
      closeCallScreen();
    }
    if (info.reason === 'glare') {
      return; // Our call merged into theirs, which goes on.
    }
    if ($('#incoming').dataset.callId === String(call.id)) {
      closeDialog($('#incoming'));
    }
    const reason = call.direction === 'incoming' && !call.answeredAt && info.reason === 'timeout'
      ? 'missed' : info.reason;
    showResult(endText(call, info), reason, call.id);
    refreshHistory();
    // The server may record the call a moment after telling us it ended.
    setTimeout(refreshHistory, 1500);
  });
  call.on('error', (e) => {
    // The server's answers for ordinary outcomes (busy, offline, no such user, an event that came
    // after the call was over) are no fault of the page, and the call's result shows them.
    (kOrdinaryCallErrors.test(e.message) ? console.info : console.warn)('call error', e.message);
  });
}

client.on('call', (call) => {
  attachCall(call);
  if (call.direction === 'outgoing') {
    openCallScreen(call);
  }
});

client.on('incomingCall', (call) => {
  const active = client.calls.find((c) => c !== call && !c.isEnded && c.state !== 'ringing');
  if (active) {
    return; // Busy here; the server tells the caller.
  }
  showIncoming(call);
});

function ringingIncoming() {
  const id = $('#incoming').dataset.callId;
  return client.calls.find((c) => String(c.id) === id && c.state === 'ringing') ?? null;
}

$('#accept').addEventListener('click', async () => {
  const call = ringingIncoming();
  if (!call) {
    closeDialog($('#incoming'));
    return;
  }
  openCallScreen(call);
  try {
    await call.accept();
  } catch (e) {
    if (call.state === 'ringing') {
      closeCallScreen();
      showIncoming(call);
    }
    showResult(`Could not answer: ${e.message}`, 'error', call.id);
  }
});

async function rejectIncoming() {
  const call = ringingIncoming();
  closeDialog($('#incoming'));
  await call?.reject();
}
$('#reject').addEventListener('click', () => rejectIncoming());

$('#hangup').addEventListener('click', () => client.currentCall?.hangup());
$('#mute').addEventListener('click', () => {
  const call = client.currentCall;
  if (call) {
    call.toggleMute();
    updateCallScreen(call);
  }
});
$('#camera').addEventListener('click', () => {
  const call = client.currentCall;
  if (call) {
    call.toggleCamera();
    updateCallScreen(call);
  }
});

let placing = false;

async function startCall(target, video) {
  if (placing) {
    return; // A double click: the first click's call is on its way.
  }
  const active = client.calls.find((c) => !c.isEnded && !(c.direction === 'incoming' && c.state === 'ringing'));
  if (active) {
    showResult('You are already in a call.', 'busy-here');
    return;
  }
  if (client.socket && !client.connected) {
    // Said now, and not queued: a call placed when the connection comes back would ring
    // someone long after the click.
    showResult('Not connected to the server: the call was not placed. Try again once online.', 'offline');
    return;
  }
  const before = lastCall;
  placing = true;
  try {
    await client.call(target, { video });
  } catch (e) {
    // A call that was created and ended has shown its result already (its 'ended' event).
    if (lastCall === before) {
      closeCallScreen();
      const reason = { BUSY: 'busy-here', OFFLINE: 'offline' }[e.code] ?? 'error';
      showResult(e.code === 'OFFLINE' ? 'Not connected to the server: the call was not placed.' : e.message, reason);
    }
  } finally {
    placing = false;
  }
}

// The handle typed in "Call a handle", or '' after saying that one is needed.
function dialHandle() {
  const handle = $('#call-handle').value.trim().replace(/^@/, '');
  const error = $('#dial-error');
  error.hidden = Boolean(handle);
  if (!handle) {
    error.textContent = 'Enter the handle of the person to call.';
    $('#call-handle').focus();
  }
  return handle;
}
$('#call-handle').addEventListener('input', () => {
  $('#dial-error').hidden = true;
});
$('#call-handle-audio').addEventListener('click', () => {
  const handle = dialHandle();
  if (handle) {
    startCall({ handle }, false);
  }
});
$('#dial-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const handle = dialHandle();
  if (handle) {
    startCall({ handle }, true);
  }
});

// --- Start -----------------------------------------------------------------------------

showAuth();
client.restoreSession().catch((e) => {
  showError($('#auth-error'), e);
});
