-- Vigil store, schema 6: data keys that really rotate (issue 13 §3, §6).
--
-- * Any number of data-encryption keys (DEKs) per purpose, each with an id;
--   one is active per purpose (new data is sealed under it), the others
--   stay only while a row (or a spill file) still references them. Every
--   sealed row names the key it was sealed under (`key_id`).
-- * `wrap_version` 1: wrapped with the AAD of schema 1 (purpose only),
--   re-wrapped at the first open; 2: the AAD also binds the key id and the
--   KDF record (salt and Argon2id parameters), so edited parameters fail.
-- * `seals`: how many times the key has sealed (NIST SP 800-38D §8.3 allows
--   2^32 with random 96-bit nonces); NULL for a key from before schema 6,
--   whose count is unknown: it is treated as spent and replaced.
-- * `key_log`: every key operation, sealed under the 'log' key.
--
-- Rows written before schema 6 were sealed under the store's only two DEKs,
-- which become keys 1 (readings) and 2 (phi).

CREATE TABLE data_keys (
    id            INTEGER PRIMARY KEY,
    purpose       TEXT NOT NULL CHECK (purpose IN ('readings', 'phi', 'log')),
    nonce         BLOB NOT NULL,
    wrapped       BLOB NOT NULL,
    wrap_version  INTEGER NOT NULL,
    created       INTEGER NOT NULL,      -- µs UTC (0: before schema 6)
    seals         INTEGER,
    active        INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX data_keys_active ON data_keys(purpose) WHERE active = 1;

INSERT INTO data_keys (id, purpose, nonce, wrapped, wrap_version, created, seals, active)
    SELECT CASE purpose WHEN 'readings' THEN 1 ELSE 2 END, purpose, nonce, wrapped, 1, 0, NULL, 1
    FROM keys;
DROP TABLE keys;
-- Key ids are never reused, even after a key is destroyed.
INSERT INTO meta (key, value) SELECT 'data_key_hw', coalesce(max(id), 0) FROM data_keys;

ALTER TABLE chunks       ADD COLUMN key_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE outbox       ADD COLUMN key_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE dead_letters ADD COLUMN key_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE alarm_log    ADD COLUMN key_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE devices      ADD COLUMN key_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE bed_settings ADD COLUMN key_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE admissions   ADD COLUMN key_id INTEGER NOT NULL DEFAULT 2;
ALTER TABLE fhir_links   ADD COLUMN key_id INTEGER NOT NULL DEFAULT 2;

-- Every key operation: created, rotated, auto-rotated, re-wrapped, destroyed.
-- `at` is a copy of the sealed time for ordering; the sealed body (AAD: id)
-- is what counts, and ids are contiguous so a deleted entry shows.
CREATE TABLE key_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    key_id  INTEGER NOT NULL,
    nonce   BLOB NOT NULL,
    sealed  BLOB NOT NULL
);
