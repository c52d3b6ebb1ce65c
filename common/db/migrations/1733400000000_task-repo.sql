-- Up Migration
-- The coding loop (issue 20): the forge repository a task works on (checked out in its guest on
-- the branch lia/<task id>, from `repo_base`), and the pull request opened for it.
ALTER TABLE tasks ADD COLUMN repo_owner text;
ALTER TABLE tasks ADD COLUMN repo_name text;
ALTER TABLE tasks ADD COLUMN repo_base text;
ALTER TABLE tasks ADD COLUMN pr_url text;
ALTER TABLE tasks ADD COLUMN pr_number integer;

-- Down Migration
ALTER TABLE tasks DROP COLUMN pr_number;
ALTER TABLE tasks DROP COLUMN pr_url;
ALTER TABLE tasks DROP COLUMN repo_base;
ALTER TABLE tasks DROP COLUMN repo_name;
ALTER TABLE tasks DROP COLUMN repo_owner;
