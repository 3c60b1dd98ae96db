-- Logins that ended (every refresh token of the family revoked) are read by
-- revocation time: at start-up, so a restart keeps refusing the access
-- tokens they bought, and every few seconds while serving, so a sign-out
-- made by `turnkey user` or another node takes effect here too.
CREATE INDEX refresh_tokens_revoked ON refresh_tokens (revoked_at);
