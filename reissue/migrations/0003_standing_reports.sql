-- 0003: the owner's report stands, whatever happens to the case (issue 24, finding 3).

-- A temporary report is valid until `valid_until` (its time plus the policy's validity;
-- NULL for a formal report). A case that ends early without the owner's word (cancelled
-- by operations or through Temporal) leaves its temporary report **standing**: the card
-- stays frozen until the owner lifts it (a new case on the card continues the report)
-- or the validity runs out (the registry then lifts it itself). A report a later case
-- took over is `continued`.
ALTER TABLE loss_reports ADD COLUMN valid_until timestamptz;
ALTER TABLE loss_reports DROP CONSTRAINT loss_reports_status_check;
ALTER TABLE loss_reports ADD CONSTRAINT loss_reports_status_check
    CHECK (status IN ('open', 'standing', 'continued', 'lifted', 'resolved_by_reissue',
                      'closed_without_reissue'));
CREATE INDEX loss_reports_standing ON loss_reports (valid_until) WHERE status = 'standing';

-- The registry enforces a temporary report's validity by its own clock: while it is
-- valid the card pays nothing; once it has run out, the card pays again, even before
-- anyone (the case, or the sweep of standing reports) has lifted it.
CREATE OR REPLACE FUNCTION authorise_card_transaction(p_card text, p_amount_fen bigint)
RETURNS TABLE (authorised boolean, reason text) LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_ok boolean;
    v_reason text;
BEGIN
    SELECT c.status INTO v_status FROM cards c WHERE c.card_number = p_card;
    IF NOT FOUND THEN
        v_ok := false; v_reason := 'unknown card';
    -- Frozen under reports that are all temporary and run out (none: NULL, refused).
    ELSIF v_status = 'frozen' AND (
        SELECT bool_and(l.kind = 'temporary' AND coalesce(l.valid_until <= now(), false))
          FROM loss_reports l WHERE l.card_number = p_card AND l.status IN ('open', 'standing')
    ) THEN
        v_ok := true; v_reason := 'ok: the temporary loss report has run out';
    ELSIF v_status <> 'active' THEN
        v_ok := false; v_reason := 'card is ' || v_status;
    ELSE
        v_ok := true; v_reason := 'ok';
    END IF;
    INSERT INTO card_transactions (card_number, amount_fen, authorised, reason)
        VALUES (p_card, p_amount_fen, v_ok, v_reason);
    RETURN QUERY SELECT v_ok, v_reason;
END $$;
