-- The demo's users. Version 20261128120000 sits beside the `sessions`
-- migrations (crate `migrations`) in the same __diesel_schema_migrations table.
CREATE TABLE users (
    id            INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(64) NOT NULL UNIQUE,
    password_hash TEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
