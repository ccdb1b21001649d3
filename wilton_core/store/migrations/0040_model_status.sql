-- Model registry: the last test result per configured model (wiltonctl models test, setup wizard).
-- tested_at is a Unix timestamp (seconds); failures counts consecutive failed tests, for re-test backoff.
-- error holds an error kind and a short scrubbed message, never a key.
CREATE TABLE IF NOT EXISTS model_status (
    model_id    TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    latency_ms  DOUBLE PRECISION,
    tested_at   DOUBLE PRECISION,
    error       TEXT,
    failures    INTEGER NOT NULL DEFAULT 0
);
