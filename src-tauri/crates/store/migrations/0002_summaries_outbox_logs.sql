-- Vigil store, schema 2.
-- * Chunks sealed from now on bind their own id into the AAD (a copied chunk
--   fails to open); ids are never reused (high-water mark in meta).
-- * Compacted chunks carry a sealed summary (count/min/max/sum) so trend
--   queries read one small blob per chunk instead of every sample.
-- * Outbox for FHIR upload, alarm log and device registry, all sealed.

ALTER TABLE chunks ADD COLUMN aad_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE chunks ADD COLUMN summary_nonce BLOB;
ALTER TABLE chunks ADD COLUMN summary BLOB;

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO meta (key, value) SELECT 'chunk_id_hw', coalesce(max(id), 0) FROM chunks;

-- Readings waiting for upload to the FHIR server, in insertion order (seq),
-- never measurement order. Each row is a sealed copy of the admitted readings
-- of one append (one transaction), so the parts of one measurement (a blood
-- pressure's systolic, diastolic and mean) always travel together.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    created     INTEGER NOT NULL,      -- µs UTC, when queued
    n           INTEGER NOT NULL,
    nonce       BLOB NOT NULL,
    sealed      BLOB NOT NULL
);

-- Readings the FHIR server refused (4xx): kept, visible, never retried blindly.
CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    nonce       BLOB NOT NULL,
    sealed      BLOB NOT NULL          -- reading + server's OperationOutcome
);

-- Alarm log: every condition's start/end, acknowledgements and pauses.
CREATE TABLE alarm_log (
    id          INTEGER PRIMARY KEY,
    bed         TEXT NOT NULL,
    at          INTEGER NOT NULL,
    nonce       BLOB NOT NULL,
    sealed      BLOB NOT NULL
);
CREATE INDEX alarm_log_bed_at ON alarm_log(bed, at);

-- Bluetooth devices assigned to beds, remembered across restarts.
CREATE TABLE devices (
    address     TEXT PRIMARY KEY,      -- Bluetooth address (not patient data)
    bed         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    added_at    INTEGER NOT NULL,
    nonce       BLOB,
    sealed      BLOB                   -- Device Information, when known
);
