-- Vigil store, schema 12: the signed audit trail (issue 14). See src/audit.rs.
--
-- * `audit_key`: the trail's Ed25519 signing key (its 32-byte seed), sealed
--   under the key-log data key like the integrity key, so a key rotation
--   re-wraps it; the public key beside it for exports (checked against the
--   seed at every verify).
-- * `audit_log`: one sealed record per row (who, what, which admission,
--   when, which workstation, its predecessor's hash and its signature); the
--   AAD binds `seq`, so a row moved to another position fails to open.
-- * `audit_head`: the signed chain head (record count and last hash); a
--   copy is mirrored outside the data directory beside the store counter.
-- (Numbered 12: 11 is left to another branch; nothing here depends on it.)
CREATE TABLE audit_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    public_key  BLOB NOT NULL,
    key_id      INTEGER NOT NULL,
    nonce       BLOB NOT NULL,
    sealed      BLOB NOT NULL
);

CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY,
    key_id  INTEGER NOT NULL,
    nonce   BLOB NOT NULL,
    sealed  BLOB NOT NULL
);

CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    n     INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    sig   BLOB NOT NULL
);
