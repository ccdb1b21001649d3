-- Client keys of the gateway (issue 14) and what each key spent, per UTC day.
-- Same tables as 0011_api_keys.sqlite.sql (see the comments there); the trigger is PL/pgSQL.
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

CREATE TABLE IF NOT EXISTS api_key_usage (
    key_id    TEXT NOT NULL,
    day       INTEGER NOT NULL,
    requests  BIGINT NOT NULL DEFAULT 0,
    refused   BIGINT NOT NULL DEFAULT 0,
    tokens    BIGINT NOT NULL DEFAULT 0,
    local_only BIGINT NOT NULL DEFAULT 0,
    cost_usd  DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day)
);

CREATE OR REPLACE FUNCTION wilton_api_key_usage() RETURNS trigger AS $$
BEGIN
    INSERT INTO api_key_usage (key_id, day, requests, refused, tokens, local_only, cost_usd)
    VALUES (NEW.key_id, CAST(floor(NEW.ts / 86400) AS INTEGER), 1,
            CASE WHEN NEW.error_class IN ('invalid_api_key', 'model_not_allowed', 'model_not_local',
                'invalid_privacy_header', 'rate_limit_exceeded', 'insufficient_quota') THEN 1 ELSE 0 END,
            NEW.tokens_in + NEW.tokens_out, CASE WHEN NEW.local_only <> 0 THEN 1 ELSE 0 END, NEW.cost_usd)
    ON CONFLICT (key_id, day) DO UPDATE SET
        requests = api_key_usage.requests + 1,
        refused = api_key_usage.refused + excluded.refused,
        tokens = api_key_usage.tokens + excluded.tokens,
        local_only = api_key_usage.local_only + excluded.local_only,
        cost_usd = api_key_usage.cost_usd + excluded.cost_usd;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS ledger_api_key_usage ON ledger;
CREATE TRIGGER ledger_api_key_usage AFTER INSERT ON ledger
FOR EACH ROW WHEN (NEW.key_id <> '' OR NEW.local_only <> 0) EXECUTE FUNCTION wilton_api_key_usage();
