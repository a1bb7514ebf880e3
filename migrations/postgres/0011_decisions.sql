-- The engine decides inside the transaction that records a payment: its allocations carry the
-- rule that made them. The review queue's vocabulary loses an ambiguity: a credit the bank (or
-- the sender's list) reports with another amount than its notification is
-- `credited_amount_differs`, no longer the engine's `amount_mismatch`.

ALTER TABLE allocations ADD COLUMN rule TEXT;

UPDATE exceptions SET kind = 'credited_amount_differs'
WHERE kind = 'amount_mismatch'
  AND (reason LIKE 'the bank credited %' OR reason LIKE 'the sender''s transaction list says %');
