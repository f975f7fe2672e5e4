-- Every new card carries its 32-character card identification code (识别码), which
-- the card bureau (or the counter's instant printer) writes on the chip.
ALTER TABLE cards ADD COLUMN card_id_code text UNIQUE
    CHECK (card_id_code ~ '^[0-9A-Z]{32}$');
