DROP TABLE session_events;
ALTER TABLE sessions DROP COLUMN timeout_seconds;
ALTER TABLE sessions DROP COLUMN last_seen_at;
ALTER TABLE sessions DROP COLUMN user_agent;
ALTER TABLE sessions DROP COLUMN ip_address;
