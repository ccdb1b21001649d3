-- Running aggregates, updated in the same transaction as each ledger batch, so that the
-- exporter and the control loop never scan the ledger. Key columns use '' rather than NULL
-- (NULLs never conflict, so ON CONFLICT upserts would duplicate keys).
CREATE TABLE IF NOT EXISTS ledger_agg (
    tier          TEXT NOT NULL,
    model_id      TEXT NOT NULL,
    provider      TEXT NOT NULL,
    intent        TEXT NOT NULL,
    status        TEXT NOT NULL,
    error_class   TEXT NOT NULL,
    requests      BIGINT NOT NULL DEFAULT 0,
    tokens_in     BIGINT NOT NULL DEFAULT 0,
    tokens_out    BIGINT NOT NULL DEFAULT 0,
    cost_usd      DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_sum_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    ttft_sum_s    DOUBLE PRECISION NOT NULL DEFAULT 0,
    ttft_count    BIGINT NOT NULL DEFAULT 0,
    fallbacks     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tier, model_id, provider, intent, status, error_class)
);

-- Prometheus-style CUMULATIVE bucket counts: `count` = observations <= le, for the fixed bounds
-- wilton_core.store.base.LATENCY_BUCKETS; the last bound is +Infinity (so its count is the total).
-- kind is 'latency' or 'ttft'. A (tier, model_id, kind) always has all its bucket rows.
CREATE TABLE IF NOT EXISTS latency_hist (
    tier     TEXT NOT NULL,
    model_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    le       DOUBLE PRECISION NOT NULL,
    count    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tier, model_id, kind, le)
);

-- Failed attempts per model and reason (a ProviderError.kind such as rate_limited).
CREATE TABLE IF NOT EXISTS fallback_agg (
    model_id TEXT NOT NULL,
    reason   TEXT NOT NULL,
    count    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (model_id, reason)
);

-- Per-second totals split by local/API: phi over any window reads whole seconds from here.
CREATE TABLE IF NOT EXISTS ledger_rollup (
    bucket_ts BIGINT NOT NULL,
    is_local  INTEGER NOT NULL,
    requests  BIGINT NOT NULL DEFAULT 0,
    tokens    BIGINT NOT NULL DEFAULT 0,
    errors    BIGINT NOT NULL DEFAULT 0,
    cost_usd  DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket_ts, is_local)
);
