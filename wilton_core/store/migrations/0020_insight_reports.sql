-- Insight reports (wilton_core.insight): one row per run, statistics-only runs included.
-- body is the report's JSON (numbers and the model's analysis kept apart); markdown is what
-- `wiltonctl insights show` prints. Times are Unix seconds.
CREATE TABLE IF NOT EXISTS insight_reports (
    id           TEXT PRIMARY KEY,
    created_at   DOUBLE PRECISION NOT NULL,
    window_start DOUBLE PRECISION NOT NULL,
    window_end   DOUBLE PRECISION NOT NULL,
    status       TEXT NOT NULL,
    reason       TEXT,
    backend      TEXT NOT NULL,
    model        TEXT,
    markdown     TEXT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS insight_reports_created_idx ON insight_reports (created_at);
