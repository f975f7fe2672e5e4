-- The system of record as of release 1.0: the card registry, the case policy, the
-- casework the activities write down, money, card production, the notification
-- outbox, the audit log, the partner front door and the staff console.
--
-- Amounts are in fen (1/100 yuan). People are kept only as keyed hashes, never in
-- plaintext. Rules a caller must not be able to break (one active card, one open
-- report, no revival, an append-only log, policies never rewritten) are enforced
-- here, not only in the code that writes the rows.


-- ---------------------------------------------------------------------------------
-- Registry: insured accounts and their cards
-- ---------------------------------------------------------------------------------

-- A medical insurance account: the balance a new card carries over untouched.
CREATE TABLE insured_accounts (
    account_id       text PRIMARY KEY,
    person_key       text NOT NULL,          -- HMAC of the resident ID number
    insured_category text NOT NULL,
    district         text NOT NULL,
    balance_fen      bigint NOT NULL CHECK (balance_fen >= 0),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX insured_accounts_person ON insured_accounts (person_key);

-- Cards of an account. A new card is 'inactive_new' until collected; the old one is
-- 'replaced' then. A card whose case ended without a new card after its report became
-- formal is 'void': the card is still lost, so it must stay unusable.
CREATE TABLE cards (
    card_number     text PRIMARY KEY CHECK (card_number ~ '^[0-9A-Z]{9}$'),
    account_id      text NOT NULL REFERENCES insured_accounts,
    status          text NOT NULL
        CHECK (status IN ('active', 'frozen', 'replaced', 'inactive_new', 'void')),
    replaced_by     text REFERENCES cards,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- The bank that carries the card's account (NULL: not a third-generation card).
    -- The bank's accounts and their states are its own; we only know whom to ask.
    bank            text,
    -- The 32-character card identification code (识别码) the bureau or the counter's
    -- instant printer wrote on the chip of a card we issued (NULL on enrolled cards).
    card_id_code    text UNIQUE CHECK (card_id_code ~ '^[0-9A-Z]{32}$')
);
-- One active card per account: a reissue never leaves two cards that pay.
CREATE UNIQUE INDEX cards_one_active_per_account ON cards (account_id) WHERE status = 'active';

-- A replaced or void card is never usable again, whatever the code that writes it
-- believes (a void card may still be replaced by its reissue).
CREATE FUNCTION cards_no_revival() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND (OLD.status = 'replaced' OR (OLD.status = 'void' AND NEW.status <> 'replaced')) THEN
        RAISE EXCEPTION 'a % card cannot become %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER cards_no_revival BEFORE UPDATE OF status ON cards
    FOR EACH ROW EXECUTE FUNCTION cards_no_revival();

-- Card numbers for newly produced cards (the bureau and instant printers draw from it).
CREATE SEQUENCE card_number_seq;
CREATE FUNCTION next_card_number() RETURNS text LANGUAGE sql AS $$
    SELECT 'R' || lpad(nextval('card_number_seq')::text, 8, '0')
$$;

-- Transaction authorisation: what "prevents fraudulent use" means. Only an active
-- card pays; every attempt is kept, refused or not.
CREATE TABLE card_transactions (
    id              bigserial PRIMARY KEY,
    card_number     text NOT NULL,
    amount_fen      bigint NOT NULL,
    authorised      boolean NOT NULL,
    reason          text NOT NULL,
    attempted_at    timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION authorise_card_transaction(p_card text, p_amount_fen bigint)
RETURNS TABLE (authorised boolean, reason text) LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_ok boolean;
    v_reason text;
BEGIN
    SELECT c.status INTO v_status FROM cards c WHERE c.card_number = p_card;
    IF NOT FOUND THEN
        v_ok := false; v_reason := 'unknown card';
    ELSIF v_status <> 'active' THEN
        v_ok := false; v_reason := 'card is ' || v_status;
    ELSE
        v_ok := true; v_reason := 'ok';
    END IF;
    INSERT INTO card_transactions (card_number, amount_fen, authorised, reason)
        VALUES (p_card, p_amount_fen, v_ok, v_reason);
    RETURN QUERY SELECT v_ok, v_reason;
END $$;


-- ---------------------------------------------------------------------------------
-- Loss reports
-- ---------------------------------------------------------------------------------

-- A report's time is the liability cut-off (expenses before it are the insured's).
-- A temporary report (hotline, online) becomes formal in person or lifts itself.
-- It ends lifted (card found, or validity ran out), resolved by the reissue, or
-- closed without one (the case ended early after it became formal: the card is void).
CREATE SEQUENCE loss_report_seq;
CREATE TABLE loss_reports (
    report_number   text PRIMARY KEY,
    case_id         text NOT NULL UNIQUE,
    card_number     text NOT NULL REFERENCES cards,
    channel         text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('temporary', 'formal')),
    status          text NOT NULL
        CHECK (status IN ('open', 'lifted', 'resolved_by_reissue', 'closed_without_reissue')),
    reported_at     timestamptz NOT NULL,
    formalised_at   timestamptz,
    closed_at       timestamptz,
    close_reason    text
);
-- At most one open case per card: a second report is refused and names the case
-- that holds the card; nothing is ever superseded.
CREATE UNIQUE INDEX loss_reports_one_open_per_card ON loss_reports (card_number) WHERE status = 'open';


-- ---------------------------------------------------------------------------------
-- Case policies
-- ---------------------------------------------------------------------------------

-- Case policies, versioned. A case resolves the policy in force for its district
-- when it opens (a district's own policy before the city-wide one, the latest
-- effective_from first) and records it in its history; no caller chooses it.
CREATE TABLE case_policies (
    version         text PRIMARY KEY CHECK (version ~ '^[A-Za-z0-9._-]{1,32}$'),
    district        text CHECK (district ~ '^500[0-9]{3}$'),   -- NULL: every district
    effective_from  timestamptz NOT NULL,
    effective_to    timestamptz,
    content         jsonb NOT NULL CHECK (content->>'version' = version),
    content_hash    text NOT NULL,                             -- sha256 of content::text
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (effective_to IS NULL OR effective_to > effective_from)
);
CREATE INDEX case_policies_in_force ON case_policies (district, effective_from DESC);

-- A policy's content never changes once written (cases were judged by it); only
-- its end may be set, once. The hash is the database's own, whatever was sent.
CREATE FUNCTION case_policies_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.content_hash := encode(sha256(convert_to(NEW.content::text, 'UTF8')), 'hex');
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE'
       AND NEW.version = OLD.version AND NEW.content = OLD.content
       AND NEW.content_hash = OLD.content_hash AND NEW.effective_from = OLD.effective_from
       AND NEW.district IS NOT DISTINCT FROM OLD.district
       AND OLD.effective_to IS NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'case_policies: a policy is never changed or deleted; only an open end may be set'
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER case_policies_guard BEFORE INSERT OR UPDATE OR DELETE ON case_policies
    FOR EACH ROW EXECUTE FUNCTION case_policies_guard();

-- The city-wide policy from 2026 on (the trigger fills in content_hash).
INSERT INTO case_policies (version, district, effective_from, content, content_hash) VALUES (
    'CQ-2026.1', NULL, '2026-01-01T00:00:00+08:00',
    '{
      "version": "CQ-2026.1",
      "temporary_report_validity": "P7D",
      "materials_reminder_interval": "P2D",
      "max_materials_reminders": 3,
      "formal_materials_deadline": "P30D",
      "resubmission_deadline": "P15D",
      "require_affiliation_confirmation": true,
      "affiliation_reminder_interval": "P3D",
      "affiliation_reminders_before_escalation": 2,
      "review_sla": "P5D",
      "review_claim_ttl": "PT4H",
      "max_correction_rounds": 2,
      "fee_schedule": "CQ-2006",
      "payment_reminder_after": "P3D",
      "payment_deadline": "P7D",
      "payment_final_reminder_before": "P1D",
      "production_overdue_after": "P30D",
      "pickup_reminder_interval": "P7D",
      "max_pickup_reminders": 3,
      "photo_min_width_px": 295,
      "photo_min_height_px": 413,
      "backdating_window": "PT72H",
      "required_materials": {
        "urban_employee": ["id_card_copy", "photo", "loss_report_proof", "application_form"],
        "urban_rural_resident": ["id_card_copy", "photo", "loss_report_proof", "application_form"],
        "student": ["id_card_copy", "photo", "loss_report_proof", "application_form", "student_id"],
        "retiree": ["id_card_copy", "photo", "loss_report_proof", "application_form"]
      }
    }', '');


-- ---------------------------------------------------------------------------------
-- Casework: what the case's steps wrote down (each keyed so a retry finds its row)
-- ---------------------------------------------------------------------------------

-- Confirmation asked of the applicant's employer unit or school.
CREATE TABLE affiliation_requests (
    case_id         text NOT NULL,
    step            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('employer', 'school')),
    org_code        text NOT NULL,
    requested_at    timestamptz NOT NULL,
    PRIMARY KEY (case_id, step)
);

-- The automatic pre-check of each round of materials (references, never images).
CREATE TABLE material_submissions (
    case_id         text NOT NULL,
    round           integer NOT NULL,
    documents       jsonb NOT NULL,
    passed          boolean NOT NULL,
    problems        jsonb NOT NULL,
    checked_at      timestamptz NOT NULL,
    PRIMARY KEY (case_id, round)
);

-- A named reviewer's decision, one per round.
CREATE TABLE review_decisions (
    case_id         text NOT NULL,
    round           integer NOT NULL,
    reviewer        text NOT NULL,
    verdict         text NOT NULL CHECK (verdict IN ('approve', 'request_correction', 'reject')),
    reasons         jsonb NOT NULL,
    waive_fee       boolean NOT NULL,
    waiver_reason   text,
    decided_at      timestamptz NOT NULL,
    PRIMARY KEY (case_id, round)
);


-- ---------------------------------------------------------------------------------
-- Fees and money
-- ---------------------------------------------------------------------------------

-- Fee schedules and their exemptions; a policy names the schedule its cases use.
CREATE TABLE fee_schedule (
    schedule        text NOT NULL,
    item            text NOT NULL,
    amount_fen      bigint NOT NULL CHECK (amount_fen >= 0),
    note            text NOT NULL,
    PRIMARY KEY (schedule, item)
);
CREATE TABLE fee_exemptions (
    schedule        text NOT NULL,
    exemption       text NOT NULL,
    note            text NOT NULL,
    PRIMARY KEY (schedule, exemption)
);
INSERT INTO fee_schedule VALUES
    ('CQ-2006', 'card_reissue', 2500, 'Chongqing price rule 2006: 25 yuan per card, also for reissue'),
    ('CQ-2006', 'loss_report', 0, 'Reporting a loss is free');
INSERT INTO fee_exemptions VALUES
    ('CQ-2006', 'minimum_living_allowance', 'Recipients of the urban minimum living allowance'),
    ('CQ-2006', 'special_care', 'Recipients of regular pensions or subsidies for special care');

-- Our payment orders. Each is written down here first, then opened at the payment
-- platform (keyed by order_id), where the payer pays it.
CREATE SEQUENCE payment_order_seq;
CREATE TABLE payment_orders (
    order_id        text PRIMARY KEY,
    case_id         text NOT NULL,
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
    status          text NOT NULL CHECK (status IN ('open', 'paid', 'cancelled', 'refunded')),
    due_at          timestamptz,
    payment_ref     text UNIQUE,             -- the payment applied to it
    created_at      timestamptz NOT NULL,
    paid_at         timestamptz,
    closed_at       timestamptz,
    close_reason    text,
    platform_ref    text UNIQUE              -- the platform's reference, once it opened the order
);
CREATE INDEX payment_orders_case ON payment_orders (case_id);

-- The money ledger: every payment that reaches the system, whatever the case did
-- with it. A payment is either applied to its case's fee (its order is paid with
-- it) or refunded; per case, received = applied + refunded + refund pending.
CREATE TABLE payments (
    payment_ref     text PRIMARY KEY,        -- the payment platform's reference
    case_id         text NOT NULL,
    order_id        text NOT NULL,           -- the order the platform named (maybe not ours)
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
    paid_at         timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    disposition     text NOT NULL CHECK (disposition IN ('applied', 'refund')),
    reason          text                     -- why it was not applied
);
CREATE INDEX payments_case ON payments (case_id);

-- Refunds through the payment platform, one per payment at most (the refund's ID
-- is derived from the payment's, so a retry never asks for a second one).
CREATE TABLE refunds (
    refund_id       text PRIMARY KEY,
    payment_ref     text NOT NULL UNIQUE REFERENCES payments,
    case_id         text NOT NULL,
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
    status          text NOT NULL CHECK (status IN ('pending', 'refunded')),
    reason          text NOT NULL,
    requested_at    timestamptz NOT NULL,
    refunded_at     timestamptz,
    platform_ref    text                     -- the platform's reference for the refund
);
CREATE INDEX refunds_case ON refunds (case_id);


-- ---------------------------------------------------------------------------------
-- Card production
-- ---------------------------------------------------------------------------------

-- A new card is made at once at a counter that can ('instant'), or by the card
-- bureau ('standard'): sent_at is when the bureau accepted the order; the bureau may
-- report that it could not make the card ('failed', with its reason), and the case
-- then orders again.
CREATE SEQUENCE production_order_seq;
CREATE TABLE production_orders (
    order_id        text PRIMARY KEY,
    case_id         text NOT NULL,
    account_id      text NOT NULL REFERENCES insured_accounts,
    old_card_number text NOT NULL REFERENCES cards,
    mode            text NOT NULL CHECK (mode IN ('instant', 'standard')),
    status          text NOT NULL CHECK (status IN ('ordered', 'produced', 'cancelled', 'failed')),
    district        text NOT NULL,
    new_card_number text REFERENCES cards,
    ordered_at      timestamptz NOT NULL,
    produced_at     timestamptz,
    sent_at         timestamptz,
    failed_at       timestamptz,
    failure_reason  text
);
CREATE INDEX production_orders_pending ON production_orders (status) WHERE status = 'ordered';


-- ---------------------------------------------------------------------------------
-- Notification outbox
-- ---------------------------------------------------------------------------------

-- Steps write here; the dispatcher delivers each message through the notification
-- gateway at least once (the gateway deduplicates by message ID), backing off between
-- attempts; after too many failures a message goes to the dead letter and operations
-- are told. The message carries no personal data.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    case_id         text NOT NULL,
    recipient       text NOT NULL
        CHECK (recipient IN ('applicant', 'unit', 'supervisor', 'operations')),
    recipient_ref   text NOT NULL,
    template        text NOT NULL,
    message         text NOT NULL,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,                    -- the failure's type, never personal data
    receipt         text,                    -- the gateway's delivery receipt
    dead_at         timestamptz              -- given up: in the dead letter
);
CREATE INDEX notifications_case ON notifications (case_id);
-- What the dispatcher looks for: not sent, not given up, due.
CREATE INDEX notifications_due ON notifications (next_attempt_at)
    WHERE sent_at IS NULL AND dead_at IS NULL;


-- ---------------------------------------------------------------------------------
-- Audit log and activity idempotency
-- ---------------------------------------------------------------------------------

-- The case's audit trail, append-only: auditors read it as the case's timeline.
CREATE TABLE case_events (
    id              bigserial PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    case_id         text NOT NULL,
    event_type      text NOT NULL,
    actor           text NOT NULL,
    detail          jsonb NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_events_case ON case_events (case_id, id);

-- Refuse every change to what was recorded, including TRUNCATE, which row triggers
-- do not see.
CREATE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER case_events_no_update BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION case_events_append_only();
CREATE TRIGGER case_events_no_truncate BEFORE TRUNCATE ON case_events
    FOR EACH STATEMENT EXECUTE FUNCTION case_events_append_only();

-- Activity idempotency: a step that ran keeps its result here, under a key the
-- workflow derives (workflow ID plus step), so a retry or duplicate finds it.
CREATE TABLE activity_runs (
    key             text PRIMARY KEY,
    activity        text NOT NULL,
    result          jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);


-- ---------------------------------------------------------------------------------
-- Partner front door
-- ---------------------------------------------------------------------------------

-- Partner credentials, stored hashed.
CREATE TABLE api_credentials (
    key_id      text PRIMARY KEY,
    key_sha256  text NOT NULL,          -- of the secret part; the secret itself is never stored
    partner     text NOT NULL,          -- hotline, counter, unit_portal, payment_platform, ...
    scopes      text[] NOT NULL,
    org_code    text,                   -- a unit's credit code or a school's code, for portals
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The answers kept for Idempotency-Key replays.
CREATE TABLE api_idempotency (
    key_id         text NOT NULL,       -- the API key's ID, or the token's subject
    idem_key       text NOT NULL,
    request_sha256 text NOT NULL,       -- method, path and body: the same key must mean the same call
    status         integer NOT NULL,
    body           jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, idem_key)
);

-- Signatures of payment webhooks already delivered: a replay is refused.
CREATE TABLE api_webhooks_seen (
    signature   text PRIMARY KEY,
    seen_at     timestamptz NOT NULL DEFAULT now()
);


-- ---------------------------------------------------------------------------------
-- Staff console
-- ---------------------------------------------------------------------------------

-- Every member of staff has a row here, whichever way they log in (a local password
-- in dev, OIDC in production): it is what makes them staff, holds their roles, and
-- can disable them at once.
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

-- Server-side sessions, so a logout or an expiry ends a session for good.
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
