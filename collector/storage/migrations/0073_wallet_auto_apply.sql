-- Wallet consumption at finalize: when set, the customer's available credits pay each invoice
-- in the transaction that finalizes it (collector/billing/wallet_on_finalize.py).
ALTER TABLE wallets ADD COLUMN auto_apply_wallet boolean NOT NULL DEFAULT false;
