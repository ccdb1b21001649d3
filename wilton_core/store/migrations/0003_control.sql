-- The coherence daemon's published state (a single row, id = 1) and its step history.
CREATE TABLE IF NOT EXISTS control_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    phi_target   DOUBLE PRECISION NOT NULL,
    threshold    DOUBLE PRECISION NOT NULL,
    bias         DOUBLE PRECISION NOT NULL DEFAULT 0,
    measured_phi DOUBLE PRECISION,
    error        DOUBLE PRECISION,
    integral     DOUBLE PRECISION NOT NULL DEFAULT 0,
    updated_at   DOUBLE PRECISION NOT NULL DEFAULT 0,
    steps        BIGINT NOT NULL DEFAULT 0,
    extra        TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS control_history (
    ts           DOUBLE PRECISION NOT NULL,
    phi_target   DOUBLE PRECISION NOT NULL,
    measured_phi DOUBLE PRECISION,
    threshold    DOUBLE PRECISION NOT NULL,
    error        DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS control_history_ts_idx ON control_history (ts);
