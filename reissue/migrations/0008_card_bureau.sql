-- The card bureau is a partner reached over HTTP: a standard order is sent to it
-- (sent_at: when the bureau accepted it), and the bureau may report that it could
-- not make the card (failed, with its reason); the case then orders again.
ALTER TABLE production_orders DROP CONSTRAINT production_orders_status_check;
ALTER TABLE production_orders ADD CONSTRAINT production_orders_status_check
    CHECK (status IN ('ordered', 'produced', 'cancelled', 'failed'));
ALTER TABLE production_orders ADD COLUMN sent_at timestamptz;
ALTER TABLE production_orders ADD COLUMN failed_at timestamptz;
ALTER TABLE production_orders ADD COLUMN failure_reason text;
-- Standard orders made before the bureau was reached over HTTP were produced by a
-- stand-in reading this table. Those already settled count as sent when they were
-- ordered; those still open are sent by `reissue confirm-partner-switch`.
UPDATE production_orders SET sent_at = ordered_at WHERE mode = 'standard' AND status <> 'ordered';
-- The bureau's keys may report a failure too.
UPDATE api_credentials SET scopes = array_append(scopes, 'production_failed')
    WHERE partner = 'card_bureau' AND NOT 'production_failed' = ANY(scopes);
