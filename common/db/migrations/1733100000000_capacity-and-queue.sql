-- Up Migration
-- What a task's VM holds, counted against its host's capacity; when it began to wait for room
-- (the queue is first come, first served); when its first output was stored (for metrics).
ALTER TABLE tasks
  ADD COLUMN vcpus integer,
  ADD COLUMN memory_mib integer,
  ADD COLUMN storage_gb integer,
  ADD COLUMN queued_at timestamptz,
  ADD COLUMN first_output_at timestamptz;
CREATE INDEX tasks_queue ON tasks (queued_at, id) WHERE status = 'pending' AND queued_at IS NOT NULL;

-- A host's capacity: vCPUs it hands out, memory, and (when set) disk for task disks. The columns
-- vcpus and memory_mib held one VM's size before; they are the host's own from here on.
ALTER TABLE hosts ADD COLUMN disk_gb integer;

-- Down Migration
ALTER TABLE hosts DROP COLUMN disk_gb;
DROP INDEX tasks_queue;
ALTER TABLE tasks DROP COLUMN first_output_at, DROP COLUMN queued_at, DROP COLUMN storage_gb,
  DROP COLUMN memory_mib, DROP COLUMN vcpus;
