-- The calls a start (or a node taking over as coordinator) ends as missed or
-- failed: those still ringing or active (Store::EndUnfinishedCalls). Without
-- an index that UPDATE read, and locked, every row of calls. MySQL and
-- MariaDB have no partial index, so this one holds every call; a call's
-- entry moves when its status changes.
CREATE INDEX calls_unfinished ON calls (status, created_at);
