-- What a signaling connection needs of its user at CONNECT (id, handle,
-- display name), in an index that holds nothing else. Looked up through the
-- table, every CONNECT read one page of whole rows (with the email and the
-- password hash), and each pooled connection ended up caching most of the
-- users table; this index is about a quarter of its size and answers the
-- lookup alone (GetUserSummaryById).
CREATE INDEX users_summary ON users (id, handle, display_name);
