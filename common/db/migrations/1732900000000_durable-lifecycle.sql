-- Up Migration
-- Transitional states an operator and a user can see (the workflow is cleaning up, suspending
-- or restoring), and the idle deadline projected from the workflow, so a task's status is read
-- from this row without asking Temporal.
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check CHECK (status IN (
  'pending', 'starting', 'running', 'suspending', 'suspended', 'resuming', 'terminating', 'failing',
  'terminated', 'failed'));
ALTER TABLE tasks ADD COLUMN idle_deadline timestamptz;
CREATE INDEX tasks_open ON tasks (updated_at) WHERE status NOT IN ('terminated', 'failed');

-- A host's liveness is an explicit fact: active (takes tasks), draining (keeps its tasks, takes
-- no new ones), lost (its heartbeat went stale past the grace period and nothing polls its
-- queue: its tasks were told and ended).
ALTER TABLE hosts
  ADD COLUMN state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'lost')),
  ADD COLUMN state_reason text,
  ADD COLUMN state_changed_at timestamptz NOT NULL DEFAULT now();

-- Down Migration
ALTER TABLE hosts DROP COLUMN state_changed_at, DROP COLUMN state_reason, DROP COLUMN state;
DROP INDEX tasks_open;
ALTER TABLE tasks DROP COLUMN idle_deadline;
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check CHECK (status IN (
  'pending', 'starting', 'running', 'suspended', 'terminated', 'failed'));
