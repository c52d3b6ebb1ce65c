-- Up Migration
-- The coding loop's second half (issue 20). The last diff a task's guest gave (its working tree
-- against the base: on the page, and its stat in the thread), and the request the API makes for
-- a fresh one (the host's pump takes it, like input).
CREATE TABLE task_diffs (
  task_id       text PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
  requested_at  timestamptz,
  -- The guest's last answer (a diff or an error).
  taken_at      timestamptz,
  -- common/diff.ts GuestDiff, checked when it arrived, and when the guest took it.
  doc           jsonb,
  doc_at        timestamptz,
  -- Why the last request got no diff (git failed in the guest, no checkout).
  error         text
);

-- A pull request after every headless turn that changed the repository (else only when asked),
-- and a turn whose text asked for one.
ALTER TABLE tasks ADD COLUMN auto_pr boolean NOT NULL DEFAULT false;
ALTER TABLE task_turns ADD COLUMN open_pr boolean NOT NULL DEFAULT false;

-- Every push-and-open, in order, for the thread: what came of it (opened, updated, nothing to
-- open, failed) and the stat of what the pull request holds.
ALTER TABLE tasks ADD COLUMN pr_events integer NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN pr_last jsonb;
ALTER TABLE discord_threads ADD COLUMN pr_posted integer NOT NULL DEFAULT 0;

-- Down Migration
ALTER TABLE discord_threads DROP COLUMN pr_posted;
ALTER TABLE tasks DROP COLUMN pr_last;
ALTER TABLE tasks DROP COLUMN pr_events;
ALTER TABLE task_turns DROP COLUMN open_pr;
ALTER TABLE tasks DROP COLUMN auto_pr;
DROP TABLE task_diffs;
