-- The coherence daemon's API users, signing keys, refresh-token families, login throttling and
-- the audit log of phi target changes. Portable SQL (SQLite and PostgreSQL); booleans are 0/1.

CREATE TABLE IF NOT EXISTS coherence_users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);

-- HS256 secrets, hex. The newest non-retired key signs; every non-retired key verifies.
CREATE TABLE IF NOT EXISTS coherence_signing_keys (
    kid        TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    retired_at DOUBLE PRECISION
);

-- One row per refresh token issued. A token is good once: using it sets used_at; presenting a
-- used (or revoked) one revokes its whole family.
CREATE TABLE IF NOT EXISTS coherence_refresh_tokens (
    jti        TEXT PRIMARY KEY,
    family     TEXT NOT NULL,
    username   TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    issued_at  DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    used_at    DOUBLE PRECISION,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS coherence_refresh_tokens_family_idx ON coherence_refresh_tokens (family);

-- Failed logins per (username, client); `locked_until` is an epoch time.
CREATE TABLE IF NOT EXISTS coherence_login_failures (
    throttle_key TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    last_failure DOUBLE PRECISION NOT NULL,
    locked_until DOUBLE PRECISION NOT NULL DEFAULT 0
);

-- Every change of the phi target: who, when, from what, to what.
CREATE TABLE IF NOT EXISTS phi_audit_log (
    ts        DOUBLE PRECISION NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    old_value DOUBLE PRECISION,
    new_value DOUBLE PRECISION,
    client    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS phi_audit_log_ts_idx ON phi_audit_log (ts);
