-- Vigil store, schema 1.
-- Nothing in this file may hold a patient identifier or a measured value in
-- the clear: values live in sealed chunks, patient identity in sealed blobs.

-- Data-encryption keys, each wrapped (AES-256-GCM) by the key-encryption key.
CREATE TABLE keys (
    purpose     TEXT PRIMARY KEY,      -- 'readings' | 'phi'
    nonce       BLOB NOT NULL,
    wrapped     BLOB NOT NULL
);

-- How the key-encryption key is derived from a passphrase (Argon2id).
CREATE TABLE kdf (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    salt        BLOB NOT NULL,
    m_cost_kib  INTEGER NOT NULL,
    t_cost      INTEGER NOT NULL,
    p_cost      INTEGER NOT NULL
);

-- One admission = one patient stay in one bed. Identity is sealed under the
-- PHI key; readings refer to the opaque id only.
CREATE TABLE admissions (
    id            TEXT PRIMARY KEY,
    bed           TEXT NOT NULL,
    admitted_at   INTEGER NOT NULL,    -- µs since epoch, UTC
    discharged_at INTEGER,
    nonce         BLOB NOT NULL,
    sealed        BLOB NOT NULL
);
CREATE INDEX admissions_open ON admissions(bed) WHERE discharged_at IS NULL;

-- A series is one measurement stream: admission × bed × device × code.
CREATE TABLE series (
    id          INTEGER PRIMARY KEY,
    admission   TEXT NOT NULL,      -- '' when the bed had no admission
    bed         TEXT NOT NULL,
    device      TEXT NOT NULL,
    code        INTEGER NOT NULL,      -- IEEE 11073 MDC
    unit        TEXT NOT NULL,         -- UCUM
    source      TEXT NOT NULL CHECK (source IN ('real', 'simulated')),
    UNIQUE (admission, bed, device, code, unit, source)
);

-- Sealed samples of one series between t0 and t1 (inclusive), n of them.
-- AAD binds the ciphertext to (series, t0, t1, n): a moved, swapped or edited
-- chunk fails to open.
CREATE TABLE chunks (
    id          INTEGER PRIMARY KEY,
    series_id   INTEGER NOT NULL REFERENCES series(id),
    t0          INTEGER NOT NULL,
    t1          INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    nonce       BLOB NOT NULL,
    sealed      BLOB NOT NULL
);
CREATE INDEX chunks_series_time ON chunks(series_id, t1);
