-- Up Migration
-- Tokens counted by the host's egress proxy (not reported by the guest), an estimated cost, and
-- the summary of a headless run.
ALTER TABLE tasks
  ADD COLUMN input_tokens          bigint NOT NULL DEFAULT 0,
  ADD COLUMN output_tokens         bigint NOT NULL DEFAULT 0,
  ADD COLUMN cache_read_tokens     bigint NOT NULL DEFAULT 0,
  ADD COLUMN cache_creation_tokens bigint NOT NULL DEFAULT 0,
  ADD COLUMN cost_usd              numeric(14, 6) NOT NULL DEFAULT 0,
  ADD COLUMN summary               jsonb;
ALTER TABLE discord_threads ADD COLUMN summary_posted boolean NOT NULL DEFAULT false;

-- Down Migration
ALTER TABLE discord_threads DROP COLUMN summary_posted;
ALTER TABLE tasks
  DROP COLUMN summary,
  DROP COLUMN cost_usd,
  DROP COLUMN cache_creation_tokens,
  DROP COLUMN cache_read_tokens,
  DROP COLUMN output_tokens,
  DROP COLUMN input_tokens;
