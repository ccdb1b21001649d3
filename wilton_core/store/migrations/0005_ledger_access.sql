-- Who asked and how it ended, per ledger row (issues 13 and 14):
--   http_status  the status the client saw (200, 4xx that reached routing, 429, 503, 500 ...);
--   key_id       the client key's id ('' when the gateway runs without keys, or for the master key);
--   local_only   1 when the request was held to local models (a --local-only key or the
--                x-wilton-privacy: local-only header): it never left the machine.
ALTER TABLE ledger ADD COLUMN http_status INTEGER NOT NULL DEFAULT 200;
ALTER TABLE ledger ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN local_only INTEGER NOT NULL DEFAULT 0;
