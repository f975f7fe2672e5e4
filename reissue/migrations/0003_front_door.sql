-- The front door: partner credentials (stored hashed) and the answers kept for
-- Idempotency-Key replays.

CREATE TABLE api_credentials (
    key_id      text PRIMARY KEY,
    key_sha256  text NOT NULL,          -- of the secret part; the secret itself is never stored
    partner     text NOT NULL,          -- hotline, counter, unit_portal, payment_platform, ...
    scopes      text[] NOT NULL,
    org_code    text,                   -- a unit's credit code or a school's code, for portals
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE api_idempotency (
    key_id        text NOT NULL,          -- the API key's ID, or the token's subject
    idem_key      text NOT NULL,
    request_sha256 text NOT NULL,       -- method, path and body: the same key must mean the same call
    status        int NOT NULL,
    body          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, idem_key)
);

-- Signatures of payment webhooks already delivered: a replay is refused.
CREATE TABLE api_webhooks_seen (
    signature   text PRIMARY KEY,
    seen_at     timestamptz NOT NULL DEFAULT now()
);
