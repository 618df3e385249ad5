-- Vigil store, schema 15: ingest frames. The writer flushes every 0.5 s with
-- about one reading per series; sealing one chunk per series per flush cost
-- a sealed row, an index entry and a digest scope per reading. An append of
-- many series with a few readings each now writes ONE sealed frame holding
-- them all (series ids inside the sealed payload); compaction regroups
-- closed frames into per-series chunks. The frame's times and count are in
-- the clear like a chunk's (range selection), bound by the AAD and the MAC.
-- No index besides the rowid: compaction keeps this table to the open
-- window's frames (a few thousand rows), which a scan answers, and every
-- index would be one more page written per 0.5 s flush.
CREATE TABLE frames (
    id      INTEGER PRIMARY KEY,
    t0      INTEGER NOT NULL,
    t1      INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    nonce   BLOB NOT NULL,
    sealed  BLOB NOT NULL,
    key_id  INTEGER NOT NULL,
    mac     BLOB
);
