-- The calls a start (or a node taking over as coordinator) ends as missed or
-- failed: those still ringing or active (Store::EndUnfinishedCalls). Without
-- an index that read the whole calls table twice, at every start. This one
-- is partial: it holds only the unfinished calls, so a call whose row is
-- written already ended costs nothing here, and one written while ringing an
-- entry until its end is written. The query repeats the index's WHERE term
-- (SQLite uses a partial index only for a query whose WHERE holds it).
CREATE INDEX calls_unfinished ON calls (status, created_at)
  WHERE status IN ('ringing', 'active');
