-- 0002: the front door decides from the credential (issue 24).

-- ---------------------------------------------------------------------------------
-- Idempotency-Key: a reservation is one statement, and it is the request's own
-- ---------------------------------------------------------------------------------

-- Who holds a reserved key: a token only the reserving request knows, so that it
-- keeps or frees its own reservation and never another request's (one taken after a
-- stuck reservation was pruned, say). NULL for the answers kept before this column.
ALTER TABLE api_idempotency ADD COLUMN reservation text;
