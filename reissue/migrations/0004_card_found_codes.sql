-- 0004: lifting a temporary report takes proof the holder of a found card lacks (issue 24).

-- ---------------------------------------------------------------------------------
-- The mobile number on record in the registry
-- ---------------------------------------------------------------------------------

-- The owner's mobile number, sealed (AES-256-GCM under a key derived from the
-- registry's hash secret, bound to the account; `schemas/hashing.py`): the database
-- alone does not show it. One-time codes for lifting a report by hotline or online go
-- to this number only. NULL: none on record (the person lifts a report at a counter).
ALTER TABLE insured_accounts ADD COLUMN mobile_sealed text;


-- ---------------------------------------------------------------------------------
-- One-time codes for lifting a temporary report by hotline or online
-- ---------------------------------------------------------------------------------

-- The code live for a case (a new one replaces it): only its keyed hash, bound to the
-- case, never the code. It is spent by its first right use; wrong tries are counted
-- in the statement that checks one, and past the limit it is dead. `sends` counts the
-- codes sent for the case since `window_started_at` (each is an SMS to the owner).
CREATE TABLE card_found_codes (
    case_id           text PRIMARY KEY,        -- the case's workflow ID (a keyed hash)
    code_hash         text NOT NULL,           -- HMAC of the case ID and the code
    sent_at           timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    used_at           timestamptz,             -- spent: the report was asked to be lifted
    sends             integer NOT NULL CHECK (sends > 0),
    window_started_at timestamptz NOT NULL
);
