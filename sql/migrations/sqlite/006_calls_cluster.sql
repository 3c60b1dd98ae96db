-- Whose call state a call is in: '' for a single signaling node, the
-- cluster's name (cluster.name) for a node of one. A start, or a node that
-- becomes a cluster's coordinator, ends the unfinished calls of its own
-- kind only (Store::EndUnfinishedCalls), so a node started with a mistyped
-- cluster.name against the database of a running service leaves that
-- service's live calls alone. Calls written before this migration are ''.
ALTER TABLE calls ADD COLUMN cluster TEXT NOT NULL DEFAULT '';
