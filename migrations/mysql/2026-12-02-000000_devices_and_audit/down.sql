DROP TABLE session_events;
ALTER TABLE sessions
    DROP COLUMN timeout_seconds,
    DROP COLUMN last_seen_at,
    DROP COLUMN user_agent,
    DROP COLUMN ip_address;
