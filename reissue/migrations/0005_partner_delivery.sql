-- The notification outbox is delivered through the notification gateway: at least
-- once, deduplicated by message ID at the gateway; retries back off; after too many
-- failures a message goes to the dead letter and operations are told.

ALTER TABLE notifications
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_error      text,                 -- the failure's type, never personal data
    ADD COLUMN receipt         text,                 -- the gateway's delivery receipt
    ADD COLUMN dead_at         timestamptz;          -- given up: in the dead letter

ALTER TABLE notifications DROP CONSTRAINT notifications_recipient_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_recipient_check
    CHECK (recipient IN ('applicant', 'unit', 'supervisor', 'operations'));

-- What the dispatcher looks for: not sent, not given up, due.
CREATE INDEX notifications_due ON notifications (next_attempt_at)
    WHERE sent_at IS NULL AND dead_at IS NULL;
