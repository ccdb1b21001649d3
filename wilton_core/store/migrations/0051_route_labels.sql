-- Routing labels from live traffic (issue 16 §2): how well a tier answered a request.
-- source: 'feedback' (POST /v1/feedback from the app that got the answer) or 'shadow' (a sampled
-- request answered by a local and an API model and compared by a judge model).
-- id: '<source>:<request_id>' so a repeated feedback replaces the earlier one (upsert).
-- weak_score / strong_score: the local (weak) and API (strong) tier's answer quality in [0, 1];
-- NULL where that tier was not observed (feedback sees only the tier that answered).
-- prompt: the request's prompt text, kept only where prompt capture is enabled; a label without
-- it is counted and reported but cannot be learned from (the scorer learns from words).
-- detail: JSON (judge model, models compared, spend, the caller's comment), never secrets.
CREATE TABLE IF NOT EXISTS route_labels (
    id            TEXT PRIMARY KEY,
    ts            DOUBLE PRECISION NOT NULL,
    request_id    TEXT NOT NULL,
    source        TEXT NOT NULL,
    model         TEXT NOT NULL DEFAULT '',
    weak_score    DOUBLE PRECISION,
    strong_score  DOUBLE PRECISION,
    prompt        TEXT,
    key_id        TEXT,
    detail        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS route_labels_ts_idx ON route_labels (ts);
