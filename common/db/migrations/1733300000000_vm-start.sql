-- Up Migration
-- How the task's VM was started: from a template (its key), or a cold boot and why (a template
-- that failed to restore says so here, in the task's status, as well as in the host's log).
ALTER TABLE tasks ADD COLUMN vm_start text;

-- Down Migration
ALTER TABLE tasks DROP COLUMN vm_start;
