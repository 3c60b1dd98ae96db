-- Accounts, refresh tokens, contacts and call history (DESIGN.md section 6).
-- InnoDB, utf8mb4. Times are Unix milliseconds.
--
-- Collation choice: text is utf8mb4 with utf8mb4_bin, and the columns the
-- store compares or indexes by value are binary-exact so MySQL behaves like
-- SQLite's BINARY comparison (utf8mb4_bin is PAD SPACE: it would make 'a'
-- and 'a ' equal): ids and enum strings are ASCII (the store only accepts
-- [A-Za-z0-9_-]), email_lower and handle_lower are VARBINARY holding the
-- ASCII-lowercased value computed by the store, which makes email and handle
-- unique regardless of case.
--
-- DDL commits implicitly in MySQL, so every statement here is written to be
-- re-runnable (IF NOT EXISTS, indexes inside CREATE TABLE): a migration that
-- stopped half way completes when run again.

CREATE TABLE IF NOT EXISTS users (
  id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  email VARCHAR(320) NOT NULL,
  email_lower VARBINARY(1280) NOT NULL,
  handle VARCHAR(64) NOT NULL,
  handle_lower VARBINARY(256) NOT NULL,
  display_name VARCHAR(256) NOT NULL,
  password_hash VARCHAR(512) NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY users_email_lower (email_lower),
  UNIQUE KEY users_handle_lower (handle_lower)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Stored hashed. revoked_at is NULL while the token is usable; replaced_by
-- names the successor once rotated. Revoked tokens stay until they expire so
-- that a reused one is recognised.
CREATE TABLE IF NOT EXISTS refresh_tokens (
  token_hash VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  family_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  replaced_by VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT NULL,
  PRIMARY KEY (token_hash),
  KEY refresh_tokens_user (user_id),
  KEY refresh_tokens_family (family_id),
  KEY refresh_tokens_expires (expires_at),
  CONSTRAINT refresh_tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS contacts (
  owner_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  contact_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (owner_id, contact_id),
  KEY contacts_contact (contact_id),
  CONSTRAINT contacts_owner_fk FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT contacts_contact_fk FOREIGN KEY (contact_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per call. The ICE columns hold each side's reportIce (NULL until
-- reported).
CREATE TABLE IF NOT EXISTS calls (
  id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  caller_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  callee_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  call_type VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  status VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  end_reason VARCHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  answered_at BIGINT NULL,
  ended_at BIGINT NULL,
  duration_seconds BIGINT NOT NULL,
  caller_ice_state VARCHAR(64) NULL,
  caller_ice_local VARCHAR(64) NULL,
  caller_ice_remote VARCHAR(64) NULL,
  caller_ice_relay_protocol VARCHAR(64) NULL,
  caller_ice_rtt_ms BIGINT NULL,
  caller_ice_reported_at BIGINT NULL,
  callee_ice_state VARCHAR(64) NULL,
  callee_ice_local VARCHAR(64) NULL,
  callee_ice_remote VARCHAR(64) NULL,
  callee_ice_relay_protocol VARCHAR(64) NULL,
  callee_ice_rtt_ms BIGINT NULL,
  callee_ice_reported_at BIGINT NULL,
  PRIMARY KEY (id),
  KEY calls_caller (caller_id),
  KEY calls_callee (callee_id),
  CONSTRAINT calls_caller_fk FOREIGN KEY (caller_id) REFERENCES users (id),
  CONSTRAINT calls_callee_fk FOREIGN KEY (callee_id) REFERENCES users (id),
  CONSTRAINT calls_type_check CHECK (call_type IN ('audio', 'video')),
  CONSTRAINT calls_status_check CHECK (status IN ('ringing', 'active', 'completed', 'missed',
                                                  'rejected', 'cancelled', 'busy', 'failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Each participant's view of a call: role, the other side, and whether they
-- deleted it from their history. created_at copies the call's so a user's
-- history is one index range. Room for group calls later.
CREATE TABLE IF NOT EXISTS call_participants (
  call_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  peer_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  role VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  hidden TINYINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (call_id, user_id),
  KEY call_participants_history (user_id, hidden, created_at, call_id),
  CONSTRAINT call_participants_call_fk FOREIGN KEY (call_id) REFERENCES calls (id)
    ON DELETE CASCADE,
  CONSTRAINT call_participants_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
    ON DELETE CASCADE,
  CONSTRAINT call_participants_role_check CHECK (role IN ('caller', 'callee'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
