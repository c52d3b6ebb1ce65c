/**
 * The operator's tools: vm/check-host.sh reports KVM, QEMU, Firecracker and its jailer (with
 * versions), the guest image's artifacts, cgroups and vsock, runs each driver's self-check and
 * says which driver `auto` would take; vm/setup.sh prepares a Firecracker host from binaries
 * the operator brings and says what it did — here, where KVM runs no vCPU, it refuses before
 * changing anything, and its dry run lists what it would do.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { probeKvm } from '../../vm/kvm-probe.js';
import { repoRoot } from '../helpers/env.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-hostsetup-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The stand-in Firecracker binaries (tests/standins/firecracker), as executables. */
function standIns(): { fc: string; jailer: string } {
  const bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const loader = path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs');
  const make = (name: string) => {
    const f = path.join(bin, name);
    fs.writeFileSync(
      f,
      `#!/bin/sh\nexec ${process.execPath} --import ${loader} ${path.join(repoRoot, 'tests/standins/firecracker', `${name}.ts`)} "$@"\n`,
      { mode: 0o755 },
    );
    return f;
  };
  return { fc: make('firecracker'), jailer: make('jailer') };
}

function run(script: string, args: string[], env: Record<string, string>) {
  const child = spawn('bash', [path.join(repoRoot, 'vm', script), ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  return new Promise<{ code: number | null; out: string }>((r) =>
    child.on('exit', (code) => r({ code, out })),
  );
}

describe('vm/check-host.sh', () => {
  let kvmUsable = false;
  before(async () => {
    kvmUsable = (await probeKvm()).usable;
  });

  test('reports the host and proves the drivers it can run', async () => {
    const { fc, jailer } = standIns();
    const { code, out } = await run('check-host.sh', [], {
      LIA__STATE__DIR: path.join(tmp, 'state-check'),
      LIA__VM__FIRECRACKER_BIN: fc,
      LIA__VM__JAILER_BIN: jailer,
    });
    assert.equal(code, 0, out);
    assert.match(out, kvmUsable ? /✔ KVM/ : /✖ KVM .*vCPU ran no guest code/);
    assert.match(out, /✔ QEMU +QEMU emulator version \d/);
    assert.match(out, /✔ firecracker +Firecracker v1\.16\.1 \(Lia's stand-in\)/);
    assert.match(out, /✔ jailer +Jailer v1\.16\.1/);
    assert.match(out, /✔ cgroups +cgroup v[12]/);
    assert.match(out, /· vsock +.*Firecracker brings its own vsock/);
    assert.match(out, /✔ image: vmlinux +uncompressed ELF with a PVH entry/);
    assert.match(out, /✔ image: initrd +.*vmw_vsock_virtio_transport/);
    assert.match(out, /✔ image: rootfs +raw ext4/);
    if (!kvmUsable) assert.match(out, /· self-check: firecracker not tried: needs working KVM/);
    assert.match(
      out,
      /✔ self-check: qemu +passed .*boot \d+ ms, hello \d+ ms, suspend \d+ ms, restore \d+ ms/,
    );
    assert.match(out, /✔ LIA__VM__DRIVER=auto +would run (firecracker|qemu)/);
  });
});

describe('vm/setup.sh', () => {
  let kvmUsable = false;
  before(async () => {
    kvmUsable = (await probeKvm()).usable;
  });

  test('refuses a host where KVM runs no vCPU, before changing anything', async (t) => {
    if (kvmUsable) return t.skip('KVM works here: a real setup would change this machine');
    const { fc, jailer } = standIns();
    const prefix = fs.mkdtempSync(path.join(tmp, 'prefix-'));
    const state = path.join(tmp, 'state-refused');
    const { code, out } = await run('setup.sh', ['--firecracker', fc, '--jailer', jailer], {
      PREFIX: prefix,
      LIA__STATE__DIR: state,
    });
    assert.equal(code, 1, out);
    assert.match(out, /error: KVM does not run a vCPU here .*Firecracker cannot run on this host/);
    assert.deepEqual(fs.readdirSync(prefix), [], 'nothing installed');
    assert.equal(fs.existsSync(state), false, 'nothing created');
  });

  test('a dry run says what it would do, and does none of it', async () => {
    const { fc, jailer } = standIns();
    const prefix = fs.mkdtempSync(path.join(tmp, 'prefix-'));
    const state = path.join(tmp, 'state-dry');
    const { code, out } = await run('setup.sh', ['--dry-run', '--firecracker', fc, '--jailer', jailer], {
      PREFIX: prefix,
      LIA__STATE__DIR: state,
      LIA__HOST__ID: 'h1',
    });
    assert.equal(code, 0, out);
    assert.match(out, /cgroups: v[12]/);
    assert.match(
      out,
      new RegExp(
        `\\(dry run\\) installed firecracker \\(Firecracker v1\\.16\\.1 \\(Lia's stand-in\\)\\) as ${prefix}/firecracker`,
      ),
    );
    assert.match(
      out,
      new RegExp(
        `\\(dry run\\) installed jailer \\(Jailer v1\\.16\\.1 \\(Lia's stand-in\\)\\) as ${prefix}/jailer`,
      ),
    );
    assert.match(out, new RegExp(`\\(dry run\\) created ${state} \\(0700\\)`));
    assert.match(out, new RegExp(`\\(dry run\\) created ${state}/hosts/h1/jail \\(0700\\)`));
    assert.match(out, /the VMs' uids 900000–909999 belong to no account and no subordinate range/);
    assert.match(out, /would do:\n( {2}- .*\n)+/);
    assert.deepEqual(fs.readdirSync(prefix), []);
    assert.equal(fs.existsSync(state), false);
  });

  test('a uid range that overlaps an account is refused', async () => {
    const { fc, jailer } = standIns();
    const { code, out } = await run('setup.sh', ['--dry-run', '--firecracker', fc, '--jailer', jailer], {
      PREFIX: fs.mkdtempSync(path.join(tmp, 'prefix-')),
      LIA__STATE__DIR: path.join(tmp, 'state-uids'),
      LIA__VM__UID_BASE: '0',
    });
    assert.equal(code, 1, out);
    assert.match(out, /an account has a uid in 0–9999 \(the VMs' range\)/);
  });
});
