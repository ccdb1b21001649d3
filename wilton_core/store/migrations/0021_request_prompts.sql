-- Opt-in capture of request prompt text, keyed by the ledger's request_id. The ledger never
-- holds prompt text; this table is only read by `wilton-insight --include-prompts` (for the
-- costliest requests of the window) and is empty unless a writer opts in to capturing prompts.
CREATE TABLE IF NOT EXISTS request_prompts (
    request_id TEXT PRIMARY KEY,
    ts         DOUBLE PRECISION NOT NULL,
    prompt     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS request_prompts_ts_idx ON request_prompts (ts);
