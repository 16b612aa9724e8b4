-- Devices, remember me and the audit log.
-- The new `sessions` columns are filled by the writes the app makes anyway
-- (creation, saves, renewals). Devices are listed with
-- `WHERE user_id = ?`, which `sessions_user_id_idx` already serves; the
-- per-user cap sorts those few rows by `last_seen_at` in memory, so no column
-- added here is indexed (each index is paid for on every renewal).
ALTER TABLE sessions ADD COLUMN ip_address TEXT;
-- Truncated to 512 bytes by the writer.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at TIMESTAMP;
-- The session's own idle timeout ("remember me"); NULL = the configured one.
ALTER TABLE sessions ADD COLUMN timeout_seconds BIGINT;

-- Lifecycle events, written only when the app enables `audit`, in the same
-- transaction as the change they record. `detail` is JSON text holding key
-- names and counts, never values or tokens.
CREATE TABLE session_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    at          TIMESTAMP NOT NULL,
    session_id  TEXT NOT NULL CHECK (length(session_id) = 36),
    user_id     TEXT,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    ip_address  TEXT,
    user_agent  TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);

-- A session's history, a user's history, and the retention trim.
CREATE INDEX session_events_session_idx ON session_events (session_id, id);
CREATE INDEX session_events_user_idx ON session_events (user_id, id);
CREATE INDEX session_events_at_idx ON session_events (at);
