-- The card registry, the cooperating bank, payments, production, outbox and audit log.
-- Amounts are in fen (1/100 yuan). Personal data is kept only as keyed hashes.

CREATE TABLE insured_accounts (
    account_id      text PRIMARY KEY,
    person_key      text NOT NULL,           -- HMAC of the resident ID number
    insured_category text NOT NULL,
    district        text NOT NULL,
    balance_fen     bigint NOT NULL CHECK (balance_fen >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX insured_accounts_person ON insured_accounts (person_key);

CREATE TABLE cards (
    card_number     text PRIMARY KEY CHECK (card_number ~ '^[0-9A-Z]{9}$'),
    account_id      text NOT NULL REFERENCES insured_accounts,
    status          text NOT NULL CHECK (status IN ('active', 'frozen', 'replaced', 'inactive_new', 'void')),
    replaced_by     text REFERENCES cards,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Invariant: one active card per account.
CREATE UNIQUE INDEX cards_one_active_per_account ON cards (account_id) WHERE status = 'active';

-- The cooperating bank's side of third-generation cards: a separate system.
CREATE TABLE bank_accounts (
    card_number     text PRIMARY KEY REFERENCES cards,
    bank            text NOT NULL,
    status          text NOT NULL CHECK (status IN ('active', 'frozen', 'closed')),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Availability of the bank's interface (operations and tests switch it).
CREATE TABLE bank_service (
    id              smallint PRIMARY KEY CHECK (id = 1),
    available       boolean NOT NULL DEFAULT true,
    latency_ms      integer NOT NULL DEFAULT 0 CHECK (latency_ms >= 0)
);
INSERT INTO bank_service (id) VALUES (1);

CREATE SEQUENCE loss_report_seq;
CREATE TABLE loss_reports (
    report_number   text PRIMARY KEY,
    case_id         text NOT NULL UNIQUE,
    card_number     text NOT NULL REFERENCES cards,
    channel         text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('temporary', 'formal')),
    status          text NOT NULL CHECK (status IN ('open', 'lifted', 'resolved_by_reissue', 'superseded')),
    reported_at     timestamptz NOT NULL,
    formalised_at   timestamptz,
    closed_at       timestamptz,
    close_reason    text
);
CREATE UNIQUE INDEX loss_reports_one_open_per_card ON loss_reports (card_number) WHERE status = 'open';

CREATE TABLE affiliation_requests (
    case_id         text NOT NULL,
    step            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('employer', 'school')),
    org_code        text NOT NULL,
    requested_at    timestamptz NOT NULL,
    PRIMARY KEY (case_id, step)
);

CREATE TABLE material_submissions (
    case_id         text NOT NULL,
    round           integer NOT NULL,
    documents       jsonb NOT NULL,
    passed          boolean NOT NULL,
    problems        jsonb NOT NULL,
    checked_at      timestamptz NOT NULL,
    PRIMARY KEY (case_id, round)
);

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

CREATE SEQUENCE payment_order_seq;
CREATE TABLE payment_orders (
    order_id        text PRIMARY KEY,
    case_id         text NOT NULL,
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
    status          text NOT NULL CHECK (status IN ('open', 'paid', 'cancelled', 'refunded')),
    due_at          timestamptz,
    payment_ref     text UNIQUE,
    created_at      timestamptz NOT NULL,
    paid_at         timestamptz,
    closed_at       timestamptz,
    close_reason    text
);
CREATE INDEX payment_orders_case ON payment_orders (case_id);

CREATE SEQUENCE production_order_seq;
CREATE SEQUENCE card_number_seq;
CREATE TABLE production_orders (
    order_id        text PRIMARY KEY,
    case_id         text NOT NULL,
    account_id      text NOT NULL REFERENCES insured_accounts,
    old_card_number text NOT NULL REFERENCES cards,
    mode            text NOT NULL CHECK (mode IN ('instant', 'standard')),
    status          text NOT NULL CHECK (status IN ('ordered', 'produced', 'cancelled')),
    district        text NOT NULL,
    new_card_number text REFERENCES cards,
    ordered_at      timestamptz NOT NULL,
    produced_at     timestamptz
);
CREATE INDEX production_orders_pending ON production_orders (status) WHERE status = 'ordered';

-- Outbox: a sender service delivers these; the message carries no personal data.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    case_id         text NOT NULL,
    recipient       text NOT NULL CHECK (recipient IN ('applicant', 'unit', 'supervisor')),
    recipient_ref   text NOT NULL,
    template        text NOT NULL,
    message         text NOT NULL,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz
);
CREATE INDEX notifications_case ON notifications (case_id);

-- Activity idempotency: a step that ran keeps its result here.
CREATE TABLE activity_runs (
    key             text PRIMARY KEY,
    activity        text NOT NULL,
    result          jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Append-only audit log.
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

CREATE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER case_events_no_update BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION case_events_append_only();
CREATE TRIGGER case_events_no_truncate BEFORE TRUNCATE ON case_events
    FOR EACH STATEMENT EXECUTE FUNCTION case_events_append_only();

-- Transaction authorisation: what "prevents fraudulent use" means.
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
    v_bank text;
    v_ok boolean;
    v_reason text;
BEGIN
    SELECT c.status, b.status INTO v_status, v_bank
      FROM cards c LEFT JOIN bank_accounts b ON b.card_number = c.card_number
     WHERE c.card_number = p_card;
    IF NOT FOUND THEN
        v_ok := false; v_reason := 'unknown card';
    ELSIF v_status <> 'active' THEN
        v_ok := false; v_reason := 'card is ' || v_status;
    ELSIF v_bank IS NOT NULL AND v_bank <> 'active' THEN
        v_ok := false; v_reason := 'bank account is ' || v_bank;
    ELSE
        v_ok := true; v_reason := 'ok';
    END IF;
    INSERT INTO card_transactions (card_number, amount_fen, authorised, reason)
        VALUES (p_card, p_amount_fen, v_ok, v_reason);
    RETURN QUERY SELECT v_ok, v_reason;
END $$;

-- Card numbers for newly produced cards (the bureau and instant printers draw from it).
CREATE FUNCTION next_card_number() RETURNS text LANGUAGE sql AS $$
    SELECT 'R' || lpad(nextval('card_number_seq')::text, 8, '0')
$$;
