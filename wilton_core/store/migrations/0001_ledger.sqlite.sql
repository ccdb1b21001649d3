-- The request ledger: one row per routed request (wilton_core.types.LedgerRecord).
-- Booleans are 0/1 integers in both dialects so the same queries sum them.
CREATE TABLE IF NOT EXISTS ledger (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ts             DOUBLE PRECISION NOT NULL,
    request_id     TEXT NOT NULL,
    model_id       TEXT NOT NULL,
    tier           TEXT NOT NULL,
    is_local       INTEGER NOT NULL,
    provider       TEXT NOT NULL,
    intent         TEXT,
    difficulty     DOUBLE PRECISION,
    latency_s      DOUBLE PRECISION NOT NULL DEFAULT 0,
    ttft_s         DOUBLE PRECISION,
    tokens_in      BIGINT NOT NULL DEFAULT 0,
    tokens_out     BIGINT NOT NULL DEFAULT 0,
    cost_usd       DOUBLE PRECISION NOT NULL DEFAULT 0,
    status         TEXT NOT NULL,
    error_class    TEXT,
    fallbacks      INTEGER NOT NULL DEFAULT 0,
    tried          TEXT NOT NULL DEFAULT '',
    stream         INTEGER NOT NULL DEFAULT 0,
    replica        TEXT NOT NULL DEFAULT '',
    attempt_errors TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ledger_ts_idx ON ledger (ts);
