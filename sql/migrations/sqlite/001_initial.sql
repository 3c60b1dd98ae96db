-- Accounts, refresh tokens, contacts and call history (DESIGN.md section 6).
-- Times are Unix milliseconds. email_lower and handle_lower hold the
-- ASCII-lowercased value (computed by the store) that makes email and handle
-- unique regardless of case; handle_lower is NOCASE so SQLite can use its
-- index for the prefix search (LIKE ... ESCAPE '!'), see the LIKE optimization.
-- STRICT tables refuse values of the wrong type, as MySQL does.

CREATE TABLE users (
  id TEXT NOT NULL PRIMARY KEY,
  email TEXT NOT NULL,
  email_lower TEXT NOT NULL,
  handle TEXT NOT NULL,
  handle_lower TEXT NOT NULL COLLATE NOCASE,
  display_name TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_email_lower ON users (email_lower);
CREATE UNIQUE INDEX users_handle_lower ON users (handle_lower);

-- Stored hashed. revoked_at is NULL while the token is usable; replaced_by
-- names the successor once rotated. Revoked tokens stay until they expire so
-- that a reused one is recognised.
CREATE TABLE refresh_tokens (
  token_hash TEXT NOT NULL PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  family_id TEXT NOT NULL,
  replaced_by TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE contacts (
  owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  contact_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (owner_id, contact_id)
) STRICT;
CREATE INDEX contacts_contact ON contacts (contact_id);

-- One row per call. The ICE columns hold each side's reportIce (NULL until
-- reported).
CREATE TABLE calls (
  id TEXT NOT NULL PRIMARY KEY,
  caller_id TEXT NOT NULL REFERENCES users (id),
  callee_id TEXT NOT NULL REFERENCES users (id),
  call_type TEXT NOT NULL CHECK (call_type IN ('audio', 'video')),
  status TEXT NOT NULL CHECK (status IN ('ringing', 'active', 'completed', 'missed',
                                         'rejected', 'cancelled', 'busy', 'failed')),
  end_reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  answered_at INTEGER,
  ended_at INTEGER,
  duration_seconds INTEGER NOT NULL,
  caller_ice_state TEXT,
  caller_ice_local TEXT,
  caller_ice_remote TEXT,
  caller_ice_relay_protocol TEXT,
  caller_ice_rtt_ms INTEGER,
  caller_ice_reported_at INTEGER,
  callee_ice_state TEXT,
  callee_ice_local TEXT,
  callee_ice_remote TEXT,
  callee_ice_relay_protocol TEXT,
  callee_ice_rtt_ms INTEGER,
  callee_ice_reported_at INTEGER
) STRICT;
CREATE INDEX calls_caller ON calls (caller_id);
CREATE INDEX calls_callee ON calls (callee_id);

-- Each participant's view of a call: role, the other side, and whether they
-- deleted it from their history. created_at copies the call's so a user's
-- history is one index range. Room for group calls later.
CREATE TABLE call_participants (
  call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  peer_id TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('caller', 'callee')),
  hidden INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (call_id, user_id)
) STRICT;
CREATE INDEX call_participants_history ON call_participants (user_id, hidden, created_at, call_id);
