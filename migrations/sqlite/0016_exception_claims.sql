-- The invoices an open review claims (its top suggestion's, ids joined by commas), beside the
-- suggestions they come from, so that reading every open review's claims parses no JSON.
-- Reviews opened before this column existed have NULL here and are read from their suggestions.
ALTER TABLE exceptions ADD COLUMN claims TEXT;
