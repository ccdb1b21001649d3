-- hpc: batches of LLM tasks scheduled with `wiltonctl hpc schedule-task`, persisted before they run
-- so that a crash or a restart loses nothing (`wiltonctl hpc resume BATCH` picks pending ones up).

CREATE TABLE IF NOT EXISTS task_batches (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    source        TEXT NOT NULL DEFAULT '',
    created_at    DOUBLE PRECISION NOT NULL,
    concurrency   INTEGER NOT NULL DEFAULT 4,
    status        TEXT NOT NULL DEFAULT 'pending',   -- pending | running | done
    -- the runner holding the batch renews its lease; an expired lease means it died
    lease_owner   TEXT,
    lease_until   DOUBLE PRECISION NOT NULL DEFAULT 0,
    finished_at   DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS tasks (
    batch_id      TEXT NOT NULL,
    idx           INTEGER NOT NULL,                  -- position in the task file
    priority      INTEGER NOT NULL DEFAULT 0,
    intent        TEXT,                              -- declared in the file (the router detects its own)
    request       TEXT NOT NULL,                     -- JSON body sent to /v1/chat/completions
    status        TEXT NOT NULL DEFAULT 'pending',   -- pending | running | ok | error
    attempts      INTEGER NOT NULL DEFAULT 0,
    started_at    DOUBLE PRECISION,
    finished_at   DOUBLE PRECISION,
    response_text TEXT,
    model_id      TEXT,
    tier          TEXT,
    is_local      INTEGER,
    routed_intent TEXT,
    difficulty    DOUBLE PRECISION,
    fallbacks     INTEGER,
    latency_s     DOUBLE PRECISION,
    tokens_in     INTEGER,
    tokens_out    INTEGER,
    cost_usd      DOUBLE PRECISION,
    http_status   INTEGER,
    error         TEXT,
    PRIMARY KEY (batch_id, idx)
);

CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (batch_id, status, priority);
CREATE INDEX IF NOT EXISTS task_batches_by_created ON task_batches (created_at);
