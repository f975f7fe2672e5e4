-- Finding a case from what staff know (the console's search): a card's loss reports,
-- and the cards of a person's accounts, without scanning either table.
CREATE INDEX loss_reports_card ON loss_reports (card_number, reported_at DESC);
CREATE INDEX cards_account ON cards (account_id);
