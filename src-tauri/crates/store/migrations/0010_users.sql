-- Vigil store, schema 10: local user accounts (issue 14). One sealed row per
-- user: role, Argon2id password hash (PHC string), disabled flag, created
-- time. The AAD binds the name, so a row edited, or moved to another name,
-- fails to open: a role cannot be changed in the file without detection.
-- (Numbered 10: 7-9 are left to work on other branches.)
CREATE TABLE users (
    name    TEXT PRIMARY KEY,
    nonce   BLOB NOT NULL,
    sealed  BLOB NOT NULL,
    key_id  INTEGER NOT NULL
);
