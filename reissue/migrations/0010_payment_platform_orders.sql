-- Payment orders are opened at the payment platform, where the payer pays them
-- (PATCH_PAYMENT_PLATFORM): the platform's reference of each order. Orders of cases
-- started before have none (they were ours alone).
ALTER TABLE payment_orders ADD COLUMN platform_ref text UNIQUE;
