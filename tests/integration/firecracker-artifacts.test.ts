/**
 * Firecracker's boot artifacts, booted on this machine (no Firecracker, no working KVM) under
 * QEMU's microvm machine the way Firecracker boots them: the same uncompressed ELF kernel
 * (entered through its PVH note), the same initramfs, a raw copy of the same ext4 root, its
 * virtio-mmio devices described in ACPI tables (as Firecracker 1.8+ describes them; Debian's
 * kernel takes none from the command line). The VM passes the self-check (boot,
 * hello, suspend, restore), has no network card, and the real Claude Code in it gets its
 * answers from the model-API stand-in through the egress channel, with the host's key — a key
 * that is then in neither the snapshot nor the disk.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { agentCommand } from '../../activities/agent-command.js';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/logger.js';
import type { QemuDriver } from '../../vm/drivers/qemu/driver.js';
import { EgressProxy } from '../../vm/egress/proxy.js';
import { hasPvhEntry } from '../../vm/image/vmlinux.js';
import { qemuCandidate } from '../../vm/select.js';
import { selfCheck } from '../../vm/self-check.js';
import { SidecarConnection } from '../../vm/sidecar/client.js';
import { ModelStandIn } from '../standins/model/anthropic-standin.js';

const hasQemu = fs.existsSync('/usr/bin/qemu-system-x86_64');
const API_KEY = `sk-ant-lia-fcart-${randomBytes(16).toString('hex')}`;
const model = new ModelStandIn(API_KEY, {
  name: 'Bash',
  input: { command: 'echo fc-artifacts-$((6*7)) > tool-output.txt', description: 'Write the file' },
});
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-fcart-'));
const taskId = 't_fcartifact';
let driver: QemuDriver;
let proxy: EgressProxy;

/** Whether `needle` is anywhere in the file, read a piece at a time (disks are gigabytes). */
function fileContains(file: string, needle: string): boolean {
  const n = Buffer.from(needle);
  const chunk = 8 * 1024 * 1024;
  const buf = Buffer.alloc(chunk + n.length);
  const fd = fs.openSync(file, 'r');
  try {
    let pos = 0;
    let keep = 0;
    for (;;) {
      const got = fs.readSync(fd, buf, keep, chunk, pos);
      if (got <= 0) return false;
      const have = keep + got;
      if (buf.subarray(0, have).includes(n)) return true;
      pos += got;
      // A match may straddle two pieces: keep the last needle-length-1 bytes.
      keep = Math.min(n.length - 1, have);
      buf.copy(buf, 0, have - keep, have);
    }
  } finally {
    fs.closeSync(fd);
  }
}

before(async () => {
  if (!hasQemu) return;
  await model.start();
  const config = loadConfig({
    LIA__STATE__DIR: stateDir,
    LIA__HOST__ID: 'fcart',
    LIA__CLAUDE__API_KEY: API_KEY,
    LIA__CLAUDE__BASE_URL: model.url,
  });
  proxy = new EgressProxy({ modelBaseUrl: model.url, apiKey: API_KEY, allowHosts: [] });
  driver = (await qemuCandidate(
    config,
    createLogger('fcart', 'warn'),
    proxy,
    'firecracker',
  ).build()) as QemuDriver;
});
after(async () => {
  await driver?.destroy(taskId).catch(() => {});
  await proxy?.closeAll();
  await model.close();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('the Firecracker artifacts under QEMU microvm', { skip: !hasQemu && 'no QEMU' }, () => {
  test('are an ELF kernel with a PVH entry, an initramfs with vsock and virtio-mmio, a raw ext4', () => {
    const a = driver.artifacts;
    assert.equal(a.kernel.type, 'elf-pvh');
    const elf = fs.readFileSync(a.kernel.path);
    assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
    assert.ok(hasPvhEntry(elf), 'the kernel has a PVH entry note');
    const files = execFileSync('cpio', ['-t', '--quiet'], { input: fs.readFileSync(a.initrd) }).toString();
    for (const m of ['virtio_mmio.ko', 'virtio_blk.ko', 'vmw_vsock_virtio_transport.ko', 'vsock.ko'])
      assert.ok(files.includes(`modules/${m}`), `the initramfs has ${m}`);
    assert.ok(files.includes('lia/sidecar.mjs') && files.includes('lia/init'));
    assert.equal(a.taskDisk, 'raw-copy');
    const magic = Buffer.alloc(2);
    const fd = fs.openSync(a.rootfs.path, 'r');
    fs.readSync(fd, magic, 0, 2, 1024 + 0x38);
    fs.closeSync(fd);
    assert.equal(magic.readUInt16LE(0), 0xef53, 'the root file system is a raw ext4');
  });

  test('pass the self-check: boot to hello, suspend, restore', async () => {
    const r = await selfCheck(driver, { memoryMib: 512 });
    assert.ok(r.ok, JSON.stringify(r));
  });

  test('boot a guest with no network card; Claude Code gets its answers through the channel', async () => {
    await driver.boot({ taskId, vcpus: 1, memoryMib: 1024, storageGb: 4 }, () => {});
    const vm = path.join(stateDir, 'hosts', 'fcart', 'vms', taskId);
    const pid = (JSON.parse(fs.readFileSync(path.join(vm, 'vmm.json'), 'utf8')) as { pid: number }).pid;
    // What QEMU was given: the ELF kernel, the raw copy.
    assert.equal(fs.readlinkSync(`/proc/${pid}/fd/3`), driver.artifacts.kernel.path);
    assert.equal(fs.readlinkSync(`/proc/${pid}/fd/5`), path.join(vm, 'disk.raw'));

    const conn = await SidecarConnection.open(await driver.connect(taskId), 30_000);
    let out = '';
    conn.onFrame(({ header, body }) => {
      if (header.type !== 'output') return;
      out += body.toString();
      conn.send({ type: 'ack', seq: header.seq });
    });
    conn.send({ type: 'attach', fromSeq: 1 });
    conn.send({ type: 'file', name: 'PROMPT.md' }, Buffer.from('Write the file, please.\n'));
    const config = loadConfig({ LIA__CLAUDE__API_KEY: API_KEY });
    conn.send({
      type: 'start',
      ...agentCommand('claude-headless', config, taskId, driver.guestEnv),
      cols: 120,
      rows: 40,
    });
    const until = async (what: string, re: RegExp, ms: number) => {
      const deadline = Date.now() + ms;
      while (!re.test(out)) {
        if (Date.now() > deadline) throw new Error(`no ${what} within ${ms / 1000} s:\n${out.slice(-1500)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await until('end of the Claude Code run', /turn 1 finished/, 400_000);
    const kinds = model.requests.map((r) => r.kind);
    assert.ok(kinds.includes('tool_call') && kinds.includes('final'), JSON.stringify(model.requests));
    assert.ok(
      model.requests.every((r) => r.key === API_KEY),
      'each request carried the host key',
    );
    conn.send(
      { type: 'stdin' },
      Buffer.from(
        // Between turns, a line starting with ! runs in a shell in the agent's working directory.
        "!cat tool-output.txt; echo links=$(ip -o link | awk -F': ' '{print $2}' | tr '\\n' ,); echo mmio=$(ls /sys/bus/acpi/devices | grep -c LNRO0005); echo checked-$((1+1))\r",
      ),
    );
    await until('the checks', /checked-2/, 60_000);
    assert.match(out, /fc-artifacts-42/, 'the tool ran in the guest');
    assert.match(out, /links=lo,/, 'lo is the only network interface');
    assert.match(out, /mmio=[1-9]/, 'the virtio-mmio devices came from ACPI tables, as under Firecracker');
    conn.close();

    await driver.suspend(taskId, () => {});
    assert.equal(fileContains(path.join(vm, 'state.bin'), API_KEY), false, 'the key is not in the snapshot');
    assert.equal(fileContains(path.join(vm, 'disk.raw'), API_KEY), false, 'nor on the disk');
    assert.equal(
      fileContains(path.join(vm, 'state.bin'), 'lia-placeholder'),
      true,
      'the search finds what is there',
    );
  });
});
