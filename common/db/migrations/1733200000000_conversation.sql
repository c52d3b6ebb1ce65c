-- Up Migration
-- The agent as a conversation: a task's permission mode (NULL: a task from before modes, which
-- ran without asking), and when its questions, decisions or turns last changed (readers watch it).
ALTER TABLE tasks
  ADD COLUMN permission_mode text CHECK (permission_mode IN ('ask', 'edits', 'auto')),
  ADD COLUMN conversation_at timestamptz;

-- Every question an agent asked before a tool use, and how it was settled (who, when, what). The
-- workflow decides and writes here; the host's pump delivers decided answers to the guest.
CREATE TABLE task_questions (
  task_id       text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  id            text NOT NULL,
  tool          text NOT NULL,
  summary       text NOT NULL,
  detail        text NOT NULL DEFAULT '',
  asked_at      timestamptz NOT NULL,
  deadline      timestamptz NOT NULL,
  decision      text CHECK (decision IN ('allow', 'deny')),
  how           text,
  decided_by    text,
  decided_at    timestamptz,
  -- What the agent is told with the decision.
  message       text,
  -- The answer reached the guest's sidecar.
  delivered_at  timestamptz,
  PRIMARY KEY (task_id, id)
);
CREATE INDEX task_questions_undelivered ON task_questions (task_id)
  WHERE decision IS NOT NULL AND delivered_at IS NULL;

-- The turns of a headless task's conversation: the prompt (1), then each follow-up, in order.
-- queued (here) → delivered (in the VM, waiting for the turn before it) → running → done.
CREATE TABLE task_turns (
  task_id      text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  n            integer NOT NULL CHECK (n >= 1),
  text         text NOT NULL,
  author       text NOT NULL,
  status       text NOT NULL CHECK (status IN ('queued', 'delivered', 'running', 'done')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz,
  result       jsonb,
  PRIMARY KEY (task_id, n)
);

-- The bot's side: the last turn whose summary is posted in the thread, and the message of each
-- question there (its buttons go when it is settled).
ALTER TABLE discord_threads ADD COLUMN turns_posted integer NOT NULL DEFAULT 0;
CREATE TABLE discord_question_posts (
  task_id      text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  question_id  text NOT NULL,
  message_id   text NOT NULL,
  settled      boolean NOT NULL DEFAULT false,
  PRIMARY KEY (task_id, question_id)
);

-- Down Migration
DROP TABLE discord_question_posts;
ALTER TABLE discord_threads DROP COLUMN turns_posted;
DROP TABLE task_turns;
DROP TABLE task_questions;
ALTER TABLE tasks DROP COLUMN conversation_at, DROP COLUMN permission_mode;
