-- The demo's users. Version 20261128120000 sits beside the `sessions`
-- migrations (crate `migrations`) in the same __diesel_schema_migrations table.
CREATE TABLE users (
    id            SERIAL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL
);
