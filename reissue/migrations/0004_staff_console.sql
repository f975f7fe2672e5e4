-- The staff console: local staff accounts (dev; production logs in through OIDC)
-- and server-side sessions, so a logout or an expiry ends a session for good.

-- Every member of staff has a row here, whichever way they log in: it is what makes
-- them staff, holds their roles, and can disable them at once.
CREATE TABLE staff_users (
    user_id         text PRIMARY KEY CHECK (user_id ~ '^[a-z0-9._-]{2,32}$'),  -- lower case
    display_name    text NOT NULL,
    roles           text[] NOT NULL
        CHECK (cardinality(roles) > 0
               AND roles <@ ARRAY['reviewer', 'supervisor', 'operations', 'auditor']),
    password_argon2 text,                  -- argon2id hash; NULL: logs in only through OIDC
    oidc_subject    text UNIQUE,           -- "<issuer> <sub>" of their single sign-on account
    failed_logins   integer NOT NULL DEFAULT 0,  -- wrong passwords in a row
    locked_until    timestamptz,           -- after too many, no login until then
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);

CREATE TABLE staff_sessions (
    session_sha256  text PRIMARY KEY,      -- of the cookie's secret; the secret is never stored
    user_id         text NOT NULL,
    display_name    text NOT NULL,
    roles           text[] NOT NULL,
    csrf_token      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,  -- absolute end, whatever the activity
    ended_at        timestamptz            -- logged out
);
CREATE INDEX staff_sessions_user ON staff_sessions (user_id);
