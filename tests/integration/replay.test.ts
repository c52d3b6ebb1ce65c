/**
 * Determinism guard: workflow histories recorded from real runs (tests/histories/*.json, made by
 * `node --import tsx tests/tools/record-histories.ts`) must replay against the current workflow code.
 * A change that would break running tasks fails here.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { repoRoot, workflowBundle } from '../helpers/env.js';

const dir = path.join(repoRoot, 'tests', 'histories');

test('recorded histories replay against the current workflow code', async () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 3, `expected recorded histories in ${dir}`);
  const histories = files.map((f) => ({
    workflowId: f.replace(/\.json$/, ''),
    history: JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')),
  }));
  const results = Worker.runReplayHistories(
    { workflowBundle: { codePath: await workflowBundle() } },
    histories,
  );
  let n = 0;
  for await (const r of results) {
    assert.equal(r.error, undefined, `${r.workflowId}: ${r.error?.message}`);
    n++;
  }
  assert.equal(n, files.length);
});
