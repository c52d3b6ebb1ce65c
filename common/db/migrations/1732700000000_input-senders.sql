-- Up Migration
-- The last numbered input each terminal client (a browser page) got stored, per task. A client
-- sends again what it had no ack for when its connection dropped; this tells such a repeat from
-- new input, so a keystroke is stored exactly once.
CREATE TABLE input_senders (
  task_id     text NOT NULL,
  sender      text NOT NULL,
  last_seq    bigint NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, sender)
);

-- Down Migration
DROP TABLE input_senders;
