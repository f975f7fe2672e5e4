-- The system of record decides what callers must not: the policy in force, where
-- every payment goes, and that a lost card is never revived.

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

-- Refunds through the payment platform, one per payment at most.
CREATE SEQUENCE refund_seq;
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

-- Money recorded before the ledger existed: each paid or refunded order had one payment.
INSERT INTO payments (payment_ref, case_id, order_id, amount_fen, paid_at, received_at, disposition)
    SELECT payment_ref, case_id, order_id, amount_fen, paid_at, paid_at, 'applied'
      FROM payment_orders WHERE payment_ref IS NOT NULL AND status IN ('paid', 'refunded');
INSERT INTO refunds (refund_id, payment_ref, case_id, amount_fen, status, reason, requested_at,
                     refunded_at)
    SELECT 'RF' || lpad(nextval('refund_seq')::text, 10, '0'), payment_ref, case_id, amount_fen,
           'refunded', coalesce(close_reason, 'refunded'), closed_at, closed_at
      FROM payment_orders WHERE payment_ref IS NOT NULL AND status = 'refunded';

-- A case that ends without a new card after the report became formal leaves the
-- old card void: it stays unusable and no open report is left behind.
ALTER TABLE loss_reports DROP CONSTRAINT loss_reports_status_check;
ALTER TABLE loss_reports ADD CONSTRAINT loss_reports_status_check CHECK (status IN (
    'open', 'lifted', 'resolved_by_reissue', 'closed_without_reissue',
    'superseded'  -- written by earlier code only; nothing is superseded any more
));

-- Cases that ended under earlier code after their report became formal left it open
-- and the card frozen; today's rule closes such a report and leaves the card void.
UPDATE loss_reports l
   SET status = 'closed_without_reissue', closed_at = e.occurred_at,
       close_reason = 'ended ' || (e.detail->>'outcome') || ' before the void rule'
  FROM case_events e
 WHERE e.case_id = l.case_id AND e.event_type = 'case_closed' AND l.status = 'open';
UPDATE cards c SET status = 'void', updated_at = now()
 WHERE c.status = 'frozen'
   AND NOT EXISTS (SELECT 1 FROM loss_reports l
                    WHERE l.card_number = c.card_number AND l.status = 'open')
   AND EXISTS (SELECT 1 FROM loss_reports l
                WHERE l.card_number = c.card_number AND l.status = 'closed_without_reissue');

-- A replaced or void card is never usable again (a void card may still be replaced).
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
