-- Timestamps are UTC, stored as ISO-8601 text ("YYYY-MM-DD HH:MM:SS.ffffff"),
-- which sorts and compares correctly as text.
-- `updated_at` has no index: every write changes it, and only the inspector
-- sorts by it.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    user_id     TEXT,
    data        TEXT NOT NULL DEFAULT '{}',
    expires_at  TIMESTAMP NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at, id);
CREATE INDEX sessions_created_at_idx ON sessions (created_at, id);
