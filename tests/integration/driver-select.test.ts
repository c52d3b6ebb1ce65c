/**
 * Which VM driver a host runs, and when it runs none. `auto` takes the first driver that
 * passes its self-check (a real boot, suspend and restore) and never one that failed it, and
 * never `local`; a host with no QEMU refuses to start, and a host whose driver fails its
 * self-check does not register (no row, so placement never gives it a task), each with the
 * reason. `local` runs only when named, and not with the bot on or the API off loopback unless
 * the operator accepts no isolation in a second setting.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/logger.js';
import type { VmDriver } from '../../vm/driver.js';
import { LocalDriver } from '../../vm/drivers/local.js';
import { type DriverCandidate, localRefusal, NoDriverError, selectDriver } from '../../vm/select.js';
import { repoRoot } from '../helpers/env.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

const logger = createLogger('driver-select', 'warn');
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-select-'));
after(() => fs.rmSync(stateDir, { recursive: true, force: true }));

/** A real driver (local: a real sidecar) under another name, made to fail one step if asked. */
function candidate(
  name: 'firecracker' | 'qemu',
  failAt?: 'boot' | 'restore',
): DriverCandidate & { made: VmDriver[] } {
  const made: VmDriver[] = [];
  return {
    name,
    made,
    async build() {
      const d = new LocalDriver({ stateDir, hostId: `h-${name}`, logger });
      const driver = Object.assign(Object.create(d), { name, acceleration: 'test' }) as VmDriver;
      if (failAt === 'boot') driver.boot = async () => Promise.reject(new Error('no VMM here (test)'));
      if (failAt === 'restore')
        driver.restore = async () => Promise.reject(new Error('the snapshot does not load (test)'));
      made.push(driver);
      return driver;
    },
  };
}

const config = (vars: Record<string, string> = {}) =>
  loadConfig({ LIA__STATE__DIR: stateDir, LIA__HOST__ID: 'select', ...vars });

describe('auto', () => {
  test('takes the first driver that passes its self-check, never one that failed it', async () => {
    const fc = candidate('firecracker', 'restore');
    const qemu = candidate('qemu');
    const d = await selectDriver(config(), logger, undefined, { candidates: [fc, qemu] });
    assert.equal(d.name, 'qemu', 'firecracker booted but did not restore: not chosen');
    assert.equal(fc.made.length, 1);
    assert.deepEqual(await fc.made[0]!.list(), [], 'its self-check VM was destroyed');
  });

  test('with none passing it refuses, with each reason, and never falls back to local', async () => {
    const err = await selectDriver(config(), logger, undefined, {
      candidates: [candidate('firecracker', 'boot'), candidate('qemu', 'restore')],
    }).catch((e: Error) => e);
    assert.ok(err instanceof NoDriverError, String(err));
    assert.match(err.message, /firecracker: the self-check failed: .*boot failed: no VMM here/);
    assert.match(err.message, /qemu: the self-check failed: .*restore failed: the snapshot does not load/);
    assert.match(err.message, /local: never chosen by auto/);
  });
});

describe('local', () => {
  test('is refused with the bot on or the API off loopback, unless no isolation is accepted', async () => {
    assert.equal(localRefusal(config({ LIA__VM__DRIVER: 'local' })), undefined);
    const bot = config({ LIA__VM__DRIVER: 'local', LIA__DISCORD__TOKEN: 'x'.repeat(30) });
    assert.match(String(localRefusal(bot)), /the Discord bot is on/);
    const exposed = config({ LIA__VM__DRIVER: 'local', LIA__SERVER__HOST: '0.0.0.0' });
    assert.match(String(localRefusal(exposed)), /listens on 0\.0\.0\.0, not on loopback/);
    const err = await selectDriver(bot, logger).catch((e: Error) => e);
    assert.ok(err instanceof NoDriverError);
    assert.match(err.message, /LIA__VM__LOCAL_ACCEPT_NO_ISOLATION=true/);
    const accepted = config({
      LIA__VM__DRIVER: 'local',
      LIA__DISCORD__TOKEN: 'x'.repeat(30),
      LIA__VM__LOCAL_ACCEPT_NO_ISOLATION: 'true',
    });
    const d = await selectDriver(accepted, logger);
    assert.equal(d.name, 'local', 'named and accepted: it runs (after its self-check)');
  });
});

describe('a host worker', () => {
  let s: TestStack;
  before(async () => {
    s = await startTestStack('driver_select');
  });
  after(() => s?.close());

  /** Runs a host worker with these variables and this PATH; its exit code and output. */
  async function hostWorker(vars: Record<string, string>, pathDirs: string) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'workers', 'main.ts'), 'host'],
      {
        cwd: repoRoot,
        env: { HOME: process.env.HOME, ...s.vars, ...vars, PATH: pathDirs },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    return { code, out };
  }

  /** This machine's programs, but for QEMU (or with a QEMU that fails as given). */
  function pathWithout(qemuScript?: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-path-'));
    // QEMU runs as the VM's own uid: it must be able to read the script.
    fs.chmodSync(dir, 0o755);
    for (const from of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'])
      for (const name of fs.existsSync(from) ? fs.readdirSync(from) : [])
        if (!name.startsWith('qemu-system') && !fs.existsSync(path.join(dir, name)))
          fs.symlinkSync(path.join(from, name), path.join(dir, name));
    if (qemuScript) fs.writeFileSync(path.join(dir, 'qemu-system-x86_64'), qemuScript, { mode: 0o755 });
    return dir;
  }

  const registered = async (hostId: string) =>
    (await s.pool.query('SELECT id FROM hosts WHERE id = $1', [hostId])).rowCount === 1;

  test('auto on a host without QEMU refuses to start, with the reason, and never registers', async () => {
    const { code, out } = await hostWorker(
      { LIA__VM__DRIVER: 'auto', LIA__HOST__ID: 'no-qemu' },
      pathWithout(),
    );
    assert.equal(code, 3, out);
    assert.match(out, /no VM driver works on this host, so it takes no tasks/);
    assert.match(out, /qemu-system-x86_64 is not installed/);
    assert.match(out, /local: never chosen by auto/);
    assert.equal(await registered('no-qemu'), false);
  });

  test('a host whose driver fails its self-check does not register, and says why', async () => {
    const broken = '#!/bin/sh\necho "qemu: this QEMU is broken on purpose (test)" >&2\nexit 1\n';
    const { code, out } = await hostWorker(
      { LIA__VM__DRIVER: 'qemu', LIA__HOST__ID: 'broken-qemu' },
      pathWithout(broken),
    );
    assert.equal(code, 3, out);
    assert.match(out, /qemu: the self-check failed: .*boot failed: QEMU did not start.*broken on purpose/);
    assert.equal(await registered('broken-qemu'), false);
    assert.equal(await registered(s.config.host.id), true, 'the stack’s own host did register');
  });
});
