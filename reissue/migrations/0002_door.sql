-- 0002: the front door decides from the credential (issue 24).

-- ---------------------------------------------------------------------------------
-- Idempotency-Key: a reservation is one statement, and it is the request's own
-- ---------------------------------------------------------------------------------

-- Who holds a reserved key: a token only the reserving request knows, so that it
-- keeps or frees its own reservation and never another request's (one taken after a
-- stuck reservation was pruned, say). NULL for the answers kept before this column.
ALTER TABLE api_idempotency ADD COLUMN reservation text;


-- ---------------------------------------------------------------------------------
-- Partner credentials carry what the body may not choose
-- ---------------------------------------------------------------------------------

-- The channel a reporting partner's key reports on (a hotline key: which hotline;
-- the counter system's: counter; the online service's: online), and the one clerk or
-- officer a dev key acts for (production names the person in each token instead).
ALTER TABLE api_credentials
    ADD COLUMN channel text
        CHECK (channel IN ('hotline_12333', 'hotline_12393', 'online', 'counter')),
    ADD COLUMN acts_for text CHECK (acts_for ~ '^[a-z0-9._-]{2,32}$');
-- Keys made before this: a hotline key reported on 12333 (what `reissue dev` and the
-- examples used), the counter system's on counter.
UPDATE api_credentials SET channel = 'hotline_12333' WHERE partner = 'hotline';
UPDATE api_credentials SET channel = 'counter' WHERE partner = 'counter';


-- ---------------------------------------------------------------------------------
-- Ownership answers are not an oracle
-- ---------------------------------------------------------------------------------

-- Failed ownership checks at the front door (an applicant who is not the card's
-- owner, a card-found or a /formal by someone else), per card and per credential.
-- Each check is counted before it runs (so parallel guesses meet the same limit) and
-- taken back if it passes; past the limit the subject is locked for a while, and
-- operations are told. Subjects carry no personal data: a card by its case ID (a
-- keyed hash of its number), a credential by its name in the audit log.
CREATE TABLE ownership_failures (
    subject           text PRIMARY KEY,       -- 'card:<case ID>' or 'credential:<actor>'
    failures          integer NOT NULL CHECK (failures >= 0),
    window_started_at timestamptz NOT NULL,   -- the failures count from here
    locked_until      timestamptz             -- past the limit: no check until then
);
