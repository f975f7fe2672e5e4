-- Finding a case from what staff know (the console's search): a card's loss reports,
-- and the cards of a person's accounts, without scanning either table.
CREATE INDEX loss_reports_card ON loss_reports (card_number, reported_at DESC);
CREATE INDEX cards_account ON cards (account_id);
-- The open report a case holds, by the case's workflow ID (any run): the front door
-- knows a case by that ID only (card-found, `/formal`, the ownership checks).
CREATE INDEX loss_reports_open_case ON loss_reports (split_part(case_id, ':', 1))
    WHERE status = 'open';
