-- Up Migration
-- A task's links are valid only if issued at or after this instant: a new link (or a stop)
-- revokes every link given before it.
ALTER TABLE tasks ADD COLUMN links_not_before timestamptz;

-- Down Migration
ALTER TABLE tasks DROP COLUMN links_not_before;
