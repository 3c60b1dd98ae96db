-- Why a side's ICE failed, as the server derived it from that side's failed
-- reportIce (the cause counted in turnkey_ice_failures_total: turn_auth,
-- turn_refused, turn_unreachable, no_relay, checks_failed, unknown). NULL
-- for a report that connected, a side that sent none, and calls written
-- before this migration.
ALTER TABLE calls ADD COLUMN caller_ice_cause VARCHAR(64) NULL,
  ADD COLUMN callee_ice_cause VARCHAR(64) NULL;
