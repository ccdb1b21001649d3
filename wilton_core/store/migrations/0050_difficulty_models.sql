-- Difficulty scorer versions adapted to a deployment's own labels (wiltonctl route learn).
-- Exactly one row has active = 1, or none: then routers use the scorer shipped in the package.
-- artefact: the model's .npz bytes, base64 (TEXT reads the same in SQLite and PostgreSQL).
-- summary: JSON (rows learned from, held-back PGR before/after, parent version, config).
CREATE TABLE IF NOT EXISTS difficulty_models (
    version     INTEGER PRIMARY KEY,
    created_at  DOUBLE PRECISION NOT NULL,
    parent      INTEGER,
    active      INTEGER NOT NULL DEFAULT 0,
    summary     TEXT NOT NULL,
    artefact    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS difficulty_models_active ON difficulty_models (active);
