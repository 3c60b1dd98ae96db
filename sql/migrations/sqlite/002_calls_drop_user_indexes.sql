-- Every call row paid two random index pages for these (a WAL frame each at
-- commit and again at checkpoint), and no query reads them: a user's calls
-- are found through call_participants_history. Users are never deleted, so
-- the foreign keys on caller_id and callee_id need no index to be checked.
DROP INDEX IF EXISTS calls_caller;
DROP INDEX IF EXISTS calls_callee;
