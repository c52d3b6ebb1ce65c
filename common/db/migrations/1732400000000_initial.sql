-- Up Migration
CREATE TABLE hosts (
  id            text PRIMARY KEY,
  task_queue    text NOT NULL,
  driver        text NOT NULL,
  acceleration  text NOT NULL,
  max_vms       integer NOT NULL CHECK (max_vms > 0),
  vcpus         integer NOT NULL,
  memory_mib    integer NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
  id                 text PRIMARY KEY,
  owner              text NOT NULL,
  runtime            text NOT NULL,
  status             text NOT NULL CHECK (status IN ('pending', 'starting', 'running', 'suspended', 'terminated', 'failed')),
  prompt_first_line  text NOT NULL,
  host_id            text,
  driver             text,
  acceleration       text,
  error              text,
  exit_code          integer,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_owner_created ON tasks (owner, created_at DESC);
CREATE INDEX tasks_host_status ON tasks (host_id, status);

-- The prompt (as PROMPT.md) and the owner's files; read by the host when the agent starts.
CREATE TABLE task_files (
  task_id  text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  name     text NOT NULL,
  data     bytea NOT NULL,
  PRIMARY KEY (task_id, name)
);

-- The PTY's output, numbered by the sidecar. (task_id, seq) is the idempotency key.
CREATE TABLE output_chunks (
  task_id     text NOT NULL,
  seq         bigint NOT NULL,
  data        bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, seq)
);

-- Input waiting for the host that holds the VM (kept while a task is suspended).
CREATE TABLE task_input (
  id          bigserial PRIMARY KEY,
  task_id     text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('stdin', 'resize')),
  data        bytea,
  cols        integer,
  rows        integer,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_input_task ON task_input (task_id, id);

-- Down Migration
DROP TABLE task_input;
DROP TABLE output_chunks;
DROP TABLE task_files;
DROP TABLE tasks;
DROP TABLE hosts;
