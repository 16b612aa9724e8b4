-- Devices, remember me and the audit log.
-- The new `sessions` columns are filled by the writes the app makes anyway
-- (creation, saves, renewals). Devices are listed with
-- `WHERE user_id = ?`, which `sessions_user_id_idx` already serves; the
-- per-user cap sorts those few rows by `last_seen_at` in memory, so no column
-- added here is indexed (each index is paid for on every renewal).
ALTER TABLE sessions
    ADD COLUMN ip_address      VARCHAR(45) CHARACTER SET ascii COLLATE ascii_bin,
    -- Truncated to 512 bytes by the writer.
    ADD COLUMN user_agent      VARCHAR(512),
    ADD COLUMN last_seen_at    DATETIME(6),
    -- The session's own idle timeout ("remember me"); NULL = the configured one.
    ADD COLUMN timeout_seconds BIGINT;

-- Lifecycle events, written only when the app enables `audit`, in the same
-- transaction as the change they record. `detail` is JSON text holding key
-- names and counts, never values or tokens.
CREATE TABLE session_events (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at          DATETIME(6) NOT NULL,
    session_id  CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id     VARCHAR(255),
    kind        VARCHAR(32) NOT NULL,
    actor       VARCHAR(16) NOT NULL,
    ip_address  VARCHAR(45) CHARACTER SET ascii COLLATE ascii_bin,
    user_agent  VARCHAR(512),
    detail      TEXT NOT NULL,
    -- A session's history, a user's history, and the retention trim.
    INDEX session_events_session_idx (session_id, id),
    INDEX session_events_user_idx (user_id, id),
    INDEX session_events_at_idx (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
