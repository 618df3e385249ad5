-- Vigil store, schema 14: the NEWS2 log (issue 15). See src/news2.rs.
--
-- One sealed row per stored NEWS2 score (when the total, a sub-score, what
-- it was computed from or its validity changed, and at least once per clock
-- hour while unchanged) and per nurse NEWS2 entry. Append-only, like the
-- alarm log: sealed under the readings key (bed, admission and the record
-- in the body), the AAD binding the id and both tags, a row MAC over id,
-- tags and time, and the `news2_log` scope digest.
--
-- bed_tag / admission_tag: keyed tags (src/lookup.rs) for "this stay's
-- NEWS2" and "this bed's NEWS2 in a range"; admission_tag is NULL for a bed
-- with no patient admitted.
CREATE TABLE news2_log (
    id             INTEGER PRIMARY KEY,
    bed_tag        BLOB NOT NULL,
    admission_tag  BLOB,
    at             INTEGER NOT NULL,
    nonce          BLOB NOT NULL,
    sealed         BLOB NOT NULL,
    key_id         INTEGER NOT NULL,
    mac            BLOB
);
CREATE INDEX news2_log_bed_at ON news2_log(bed_tag, at);
CREATE INDEX news2_log_admission_at ON news2_log(admission_tag, at) WHERE admission_tag IS NOT NULL;
