-- Timestamps are UTC in DATETIME(6) (microseconds; no time-zone conversion).
-- `id` is ASCII with a binary collation: compact, and compared byte by byte.
-- `updated_at` has no index: every write changes it, and only the inspector
-- sorts by it.
CREATE TABLE sessions (
    id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    user_id     VARCHAR(255),
    data        MEDIUMTEXT NOT NULL,
    expires_at  DATETIME(6) NOT NULL,
    created_at  DATETIME(6) NOT NULL,
    updated_at  DATETIME(6) NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    INDEX sessions_user_id_idx (user_id, created_at),
    INDEX sessions_expires_at_idx (expires_at, id),
    INDEX sessions_created_at_idx (created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
