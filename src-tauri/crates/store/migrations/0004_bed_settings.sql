-- Vigil store, schema 4: each bed's clinical settings (patient-specific alarm
-- limits and who set them, nurse NEWS2 entries, NEWS2 history, latched
-- alarms), one sealed row per bed, so a restart never silently reverts them.
CREATE TABLE bed_settings (
    bed         TEXT PRIMARY KEY,
    admission   TEXT,
    saved_at    INTEGER NOT NULL,
    nonce       BLOB NOT NULL,
    sealed      BLOB NOT NULL
);
