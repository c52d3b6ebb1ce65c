import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CONFIG_VARS, ConfigError, envName, loadConfig } from '../../common/config.js';
import { renderEnvExample, renderReadme } from '../../scripts/gen-env-example.js';
import { repoRoot } from '../helpers/env.js';

test('defaults load and nest by section', () => {
  const c = loadConfig({});
  assert.equal(c.server.port, 3000);
  assert.equal(c.vm.idle_timeout_minutes, 30);
  assert.equal(c.vm.default_storage_gb, 50);
  assert.equal(c.vm.driver, 'auto');
  assert.equal(c.database.url, undefined);
});

test('a bad value names the variable and says what is wrong', () => {
  assert.throws(
    () => loadConfig({ LIA__SERVER__PORT: 'eighty', LIA__VM__DRIVER: 'vmware' }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.problems.length === 2 &&
      /LIA__SERVER__PORT="eighty"/.test(err.message) &&
      /LIA__VM__DRIVER="vmware".*firecracker/.test(err.message),
  );
});

test('an unknown LIA__ variable is refused (typos do not pass silently)', () => {
  assert.throws(() => loadConfig({ LIA__SERVER__PROT: '1' }), /LIA__SERVER__PROT: unknown variable/);
});

test('a secret with a bad value is not echoed', () => {
  assert.throws(
    () => loadConfig({ LIA__API__SERVICE_TOKEN: 'short' }),
    (err: unknown) =>
      err instanceof Error &&
      !err.message.includes('short') &&
      /LIA__API__SERVICE_TOKEN=\(hidden\)/.test(err.message),
  );
});

test('a process with a bad value stops at start with the variable named', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'workers/main.ts', 'control'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, LIA__HOST__MAX_VMS: '0' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /LIA__HOST__MAX_VMS="0"/);
});

test('.env.example and the README list every variable with its default and meaning', () => {
  assert.equal(fs.readFileSync(path.join(repoRoot, '.env.example'), 'utf8'), renderEnvExample());
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  assert.equal(readme, renderReadme(readme), 'README.md: run node --import tsx scripts/gen-env-example.ts');
  for (const [section, vars] of Object.entries(CONFIG_VARS)) {
    for (const key of Object.keys(vars)) {
      const name = envName(section, key);
      assert.ok(
        readme.split('\n').some((l) => l.startsWith(`| \`${name}\``)),
        `README has a row for ${name}`,
      );
    }
  }
});
