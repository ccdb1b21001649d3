-- Client keys of the gateway (issue 14) and what each key spent, per UTC day.
--
-- api_keys: virtual keys. Only a SHA-256 of the key is kept (keys are 32 random bytes, so a slow
-- password hash would add latency and buy nothing: there is no dictionary to guard against).
-- `prefix` is the first characters of the key, not secret, shown by `wiltonctl keys list`.
-- `models` is a comma-separated allow-list of globs ('' = every model); times are epoch seconds;
-- Rotation (`wiltonctl keys rotate`) replaces the hash in place, so the id, its spend and its
-- ledger history carry on; the old hash keeps working until `previous_until` (a grace period).
CREATE TABLE IF NOT EXISTS api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    key_hash      TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    expires_at    DOUBLE PRECISION,
    revoked_at    DOUBLE PRECISION,
    budget_usd    DOUBLE PRECISION,
    budget_period TEXT NOT NULL DEFAULT 'total',
    rpm           INTEGER,
    tpm           INTEGER,
    models        TEXT NOT NULL DEFAULT '',
    local_only    INTEGER NOT NULL DEFAULT 0,
    previous_hash TEXT,                    -- the hash before the last rotation
    previous_until DOUBLE PRECISION,       -- ... which keeps working until then (rotation grace)
    updated_at    DOUBLE PRECISION NOT NULL
);

-- Running totals per (key, UTC day), kept by a trigger on the ledger so that budgets and the
-- exporter read a few rows per key instead of scanning the ledger. Rows without a key cost
-- nothing (the trigger does not fire), except local-only ones (x-wilton-privacy), kept under ''.
CREATE TABLE IF NOT EXISTS api_key_usage (
    key_id    TEXT NOT NULL,
    day       INTEGER NOT NULL,            -- floor(ts / 86400), UTC
    requests  BIGINT NOT NULL DEFAULT 0,   -- every ledger row of the key
    refused   BIGINT NOT NULL DEFAULT 0,   -- rows the gate refused (error_class of a gate refusal)
    tokens    BIGINT NOT NULL DEFAULT 0,
    local_only BIGINT NOT NULL DEFAULT 0,
    cost_usd  DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day)
);

CREATE TRIGGER IF NOT EXISTS ledger_api_key_usage AFTER INSERT ON ledger
WHEN NEW.key_id <> '' OR NEW.local_only <> 0
BEGIN
    INSERT INTO api_key_usage (key_id, day, requests, refused, tokens, local_only, cost_usd)
    VALUES (NEW.key_id, CAST(NEW.ts / 86400 AS INTEGER), 1,
            CASE WHEN NEW.error_class IN ('invalid_api_key', 'model_not_allowed', 'model_not_local',
                'invalid_privacy_header', 'rate_limit_exceeded', 'insufficient_quota') THEN 1 ELSE 0 END,
            NEW.tokens_in + NEW.tokens_out, CASE WHEN NEW.local_only <> 0 THEN 1 ELSE 0 END, NEW.cost_usd)
    ON CONFLICT (key_id, day) DO UPDATE SET
        requests = requests + 1,
        refused = refused + excluded.refused,
        tokens = tokens + excluded.tokens,
        local_only = local_only + excluded.local_only,
        cost_usd = cost_usd + excluded.cost_usd;
END;
