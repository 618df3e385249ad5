-- Vigil store, schema 7: deletions, plaintext edits and rollbacks that show
-- (issue 13 §4). See src/integrity.rs.
--
-- * `mac`: HMAC-SHA256 under the store's integrity key over the row's id
--   and the plaintext columns that steer clinical behaviour (a chunk's
--   series, time range, count, key and nonce; an alarm's bed and time; a
--   device's bed and kind; an admission's bed, admission and discharge
--   times; an outbox row's sequence number, time and count; an outbox
--   reading's attempts and settled flag; a dead letter's time, kind and
--   outbox reading). Computed for existing rows at
--   the first open under schema 7 (in Rust: the key is not in SQL's reach).
-- * `integrity`: the integrity key, sealed under the key-log data key, and
--   the store's random id (names its counter mirror outside the data dir).
-- * `digests`: per scope a count and the sum mod 2^256 of its rows' MACs,
--   with a MAC binding scope, count, sum and the store counter; the scope
--   '#epoch' holds the counter itself.
ALTER TABLE chunks       ADD COLUMN mac BLOB;
ALTER TABLE alarm_log    ADD COLUMN mac BLOB;
ALTER TABLE devices      ADD COLUMN mac BLOB;
ALTER TABLE admissions   ADD COLUMN mac BLOB;
ALTER TABLE outbox       ADD COLUMN mac BLOB;
ALTER TABLE dead_letters ADD COLUMN mac BLOB;
ALTER TABLE outbox_items ADD COLUMN mac BLOB;

CREATE TABLE integrity (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    store_id  TEXT NOT NULL,
    key_id    INTEGER NOT NULL,
    nonce     BLOB NOT NULL,
    sealed    BLOB NOT NULL
);

CREATE TABLE digests (
    scope  TEXT PRIMARY KEY,
    n      INTEGER NOT NULL,
    sum    BLOB NOT NULL,
    mac    BLOB NOT NULL
);
