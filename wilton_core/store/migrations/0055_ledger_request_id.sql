-- POST /v1/feedback (issue 16 §2) finds the ledger row of a request by its id: without an index
-- that lookup would scan the whole ledger on every feedback. One index, both dialects.
CREATE INDEX IF NOT EXISTS ledger_request_id_idx ON ledger (request_id);
