-- Vigil store, schema 13: compaction finds its backlog without scanning the
-- table. Chunks without a summary are exactly those not yet compacted (the
-- writer's 0.5 s appends, late arrivals); this partial index holds only
-- them, so each pass costs in proportion to the backlog, not to the store.
CREATE INDEX chunks_unsummarised ON chunks(t1) WHERE summary IS NULL;
