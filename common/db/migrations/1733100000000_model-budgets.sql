-- Up Migration
-- Token budgets: what each user's tasks used per UTC day (the per-task figures are on the task's
-- row already), and the task's budget notice — why its model calls are refused, while they are.
CREATE TABLE usage_daily (
  owner    text NOT NULL,
  day      date NOT NULL,
  tokens   bigint NOT NULL DEFAULT 0,
  cost_usd numeric(14, 6) NOT NULL DEFAULT 0,
  PRIMARY KEY (owner, day)
);
ALTER TABLE tasks ADD COLUMN budget_notice text;

-- Down Migration
ALTER TABLE tasks DROP COLUMN budget_notice;
DROP TABLE usage_daily;
