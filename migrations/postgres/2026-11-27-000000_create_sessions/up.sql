-- Timestamps are UTC in `timestamp` (without time zone) columns, so the
-- server's TimeZone setting never shifts them.
-- `id` uses the "C" collation: ids are ASCII and byte order keeps prefix
-- ranges on the primary key index.
-- `updated_at` has no index: every write changes it, and only the inspector
-- sorts by it.
CREATE TABLE sessions (
    id          VARCHAR(36) COLLATE "C" PRIMARY KEY CHECK (length(id) = 36),
    user_id     TEXT,
    data        TEXT NOT NULL DEFAULT '{}',
    expires_at  TIMESTAMP(6) NOT NULL,
    created_at  TIMESTAMP(6) NOT NULL,
    updated_at  TIMESTAMP(6) NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at, id);
CREATE INDEX sessions_created_at_idx ON sessions (created_at, id);
