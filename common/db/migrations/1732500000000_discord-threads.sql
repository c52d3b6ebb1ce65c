-- Up Migration
-- The Discord thread of each task the bot spawned: where its state changes and output tail go,
-- and whose messages (from the owner) become the agent's input. Outlives a bot restart.
CREATE TABLE discord_threads (
  task_id     text PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
  thread_id   text NOT NULL UNIQUE,
  channel_id  text NOT NULL,
  last_status text,
  posted_seq  bigint NOT NULL DEFAULT 0
);

-- Down Migration
DROP TABLE discord_threads;
