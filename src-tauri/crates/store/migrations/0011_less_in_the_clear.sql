-- Vigil store, schema 11: less of the file in the clear (issue 13 §6).
--
-- Bed ids, device addresses, series descriptors and admission times leave
-- the plaintext columns. Where a lookup needs them, a keyed hash takes
-- their place: HMAC-SHA256 (first 16 bytes) under the store's lookup key
-- (`lookup_key`, sealed under the key-log data key like the integrity key;
-- it never changes, so tags stay valid across key rotations). The labels
-- themselves are sealed beside the tags. See docs/in-the-clear.md.
--
-- This file only creates the new shapes (`*_next`); the rows are moved by
-- the store at the first open under schema 11 (src/upgrade.rs), in one
-- transaction, since tags and seals need keys SQL cannot reach. The old
-- tables are then dropped and the new ones take their names.

CREATE TABLE lookup_key (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    key_id  INTEGER NOT NULL,
    nonce   BLOB NOT NULL,
    sealed  BLOB NOT NULL
);

-- Sealed (PHI key): patient, bed, admission and discharge times.
-- `open` = 1 while not discharged: the open admission of a bed is found by
-- (bed_tag, open).
CREATE TABLE admissions_next (
    id       TEXT PRIMARY KEY,
    bed_tag  BLOB NOT NULL,
    open     INTEGER NOT NULL CHECK (open IN (0, 1)),
    nonce    BLOB NOT NULL,
    sealed   BLOB NOT NULL,
    key_id   INTEGER NOT NULL,
    mac      BLOB
);
CREATE INDEX admissions_open_bed ON admissions_next(bed_tag) WHERE open = 1;

-- Sealed (readings key): admission, bed, device, code, unit, source.
-- tag: of the whole descriptor (finding a series on append);
-- bed_tag, bed_code_tag: what queries select by (a bed; a bed's measurement).
CREATE TABLE series_next (
    id            INTEGER PRIMARY KEY,
    tag           BLOB NOT NULL UNIQUE,
    bed_tag       BLOB NOT NULL,
    bed_code_tag  BLOB NOT NULL,
    nonce         BLOB NOT NULL,
    sealed        BLOB NOT NULL,
    key_id        INTEGER NOT NULL
);
CREATE INDEX series_bed ON series_next(bed_tag);
CREATE INDEX series_bed_code ON series_next(bed_code_tag);

-- Sealed (readings key): bed and the alarm event.
CREATE TABLE alarm_log_next (
    id       INTEGER PRIMARY KEY,
    bed_tag  BLOB NOT NULL,
    at       INTEGER NOT NULL,
    nonce    BLOB NOT NULL,
    sealed   BLOB NOT NULL,
    key_id   INTEGER NOT NULL,
    mac      BLOB
);
CREATE INDEX alarm_log_tag_at ON alarm_log_next(bed_tag, at);

-- Sealed (readings key): address, bed, kind, Device Information.
CREATE TABLE devices_next (
    address_tag  BLOB PRIMARY KEY,
    bed_tag      BLOB NOT NULL,
    added_at     INTEGER NOT NULL,
    nonce        BLOB NOT NULL,
    sealed       BLOB NOT NULL,
    key_id       INTEGER NOT NULL,
    mac          BLOB
);

-- Sealed (readings key): bed and its settings.
CREATE TABLE bed_settings_next (
    bed_tag    BLOB PRIMARY KEY,
    admission  TEXT,
    saved_at   INTEGER NOT NULL,
    nonce      BLOB NOT NULL,
    sealed     BLOB NOT NULL,
    key_id     INTEGER NOT NULL
);
