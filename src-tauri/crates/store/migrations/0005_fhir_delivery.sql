-- Vigil store, schema 5: FHIR delivery state that must survive a restart.
--
-- A dead letter names the outbox reading it came from (row, index), so that
-- dead-lettering the same reading twice (a crash between the dead letter and
-- the outbox update) keeps one; its kind ('refused': the server will not
-- take it; 'parked': it kept failing and was set aside so the queue moves on);
-- and a log-safe summary (HTTP status, issue codes: no values) for the sync
-- status. Older dead letters have none of these (NULL row: not unique).
ALTER TABLE dead_letters ADD COLUMN outbox_row INTEGER;
ALTER TABLE dead_letters ADD COLUMN outbox_index INTEGER;
ALTER TABLE dead_letters ADD COLUMN kind TEXT NOT NULL DEFAULT 'refused';
ALTER TABLE dead_letters ADD COLUMN summary TEXT;
CREATE UNIQUE INDEX dead_letters_outbox_item ON dead_letters(outbox_row, outbox_index);

-- Per reading of a pending outbox row: failed upload attempts (to find a
-- reading the server always fails on), and whether it has left the queue
-- (dead-lettered or parked) while others of its row are still pending.
-- Deleted with its row.
CREATE TABLE outbox_items (
    outbox_row    INTEGER NOT NULL,
    outbox_index  INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    settled       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (outbox_row, outbox_index)
);
