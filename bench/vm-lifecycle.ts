/**
 * One VM's life, timed at the driver (no Temporal in the way), with the driver Lia picks here
 * and its acceleration named:
 *   boot      launch → the guest's sidecar answers hello
 *   suspend   pause → machine state written to a file → QEMU gone
 *   restore   a new QEMU from that file → the sidecar answers hello
 *   output    … → a typed command's output back (restore to first output)
 *   snapshot  state file size against guest memory
 * Run: ./lia bench bench/vm-lifecycle.ts [rounds] [memoryMib]   (defaults 5 and 256)
 * LIA__VM__DRIVER picks the driver as for Lia itself (default here: qemu); LIA_BENCH_PROFILE=firecracker
 * boots Firecracker's artifacts (ELF vmlinux, raw disk) under QEMU's microvm instead.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import type { VmDriver } from '../vm/driver.js';
import { qemuCandidate, selectDriver } from '../vm/select.js';
import { SidecarConnection } from '../vm/sidecar/client.js';

const rounds = Number(process.argv[2] ?? 5);
const memoryMib = Number(process.argv[3] ?? 256);
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-bench-vm-'));
const config = loadConfig({
  ...process.env,
  LIA__VM__DRIVER: process.env.LIA__VM__DRIVER ?? 'qemu',
  LIA__STATE__DIR: stateDir,
  LIA__HOST__ID: 'bench',
});
const logger = createLogger('bench', 'warn');
const driver: VmDriver =
  process.env.LIA_BENCH_PROFILE === 'firecracker'
    ? await qemuCandidate(config, logger, undefined, 'firecracker').build()
    : await selectDriver(config, logger);
const quiet = () => {};

/** Types a command and resolves when its marker comes back from the PTY. */
async function roundTrip(conn: SidecarConnection, fromSeq: number, marker: string): Promise<void> {
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${marker}" from the guest within 60 s`)), 60_000);
    conn.onFrame(({ header, body }) => {
      if (header.type !== 'output') return;
      out += body.toString();
      conn.send({ type: 'ack', seq: header.seq });
      if (out.includes(`${marker}-42`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    conn.send({ type: 'attach', fromSeq });
    conn.send({ type: 'stdin' }, Buffer.from(`echo ${marker}-$((6*7))\r`));
  });
}

interface Round {
  boot: number;
  suspend: number;
  restore: number;
  output: number;
  snapshotBytes: number;
}
const results: Round[] = [];
try {
  for (let i = 0; i < rounds; i++) {
    const taskId = `t_bench${i}`;
    let t = performance.now();
    await driver.boot({ taskId, vcpus: 1, memoryMib, storageGb: 4 }, quiet);
    const boot = performance.now() - t;

    let conn = await SidecarConnection.open(await driver.connect(taskId), 30_000);
    conn.send({
      type: 'start',
      command: 'bash',
      args: ['--noprofile', '--norc', '-i'],
      env: { TERM: 'xterm', PATH: '/usr/local/bin:/usr/bin:/bin', PS1: '$ ' },
      cols: 80,
      rows: 24,
    });
    await roundTrip(conn, 1, 'first');
    const nextSeq = conn.hello.nextSeq;
    conn.close();

    t = performance.now();
    const { snapshotBytes } = await driver.suspend(taskId, quiet);
    const suspend = performance.now() - t;

    t = performance.now();
    await driver.restore(taskId, quiet);
    conn = await SidecarConnection.open(await driver.connect(taskId), 30_000);
    const restore = performance.now() - t;
    await roundTrip(conn, Math.max(nextSeq, conn.hello.nextSeq), 'back');
    const output = performance.now() - t;
    conn.close();
    await driver.destroy(taskId);
    results.push({ boot, suspend, restore, output, snapshotBytes });
    console.error(
      `round ${i + 1}/${rounds}: boot ${boot.toFixed(0)} ms, suspend ${suspend.toFixed(0)} ms, restore ${restore.toFixed(0)} ms, first output ${output.toFixed(0)} ms`,
    );
  }
} finally {
  for (let i = 0; i < rounds; i++) await driver.destroy(`t_bench${i}`).catch(() => {});
  fs.rmSync(stateDir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const col = (k: keyof Round) => results.map((r) => r[k]);
const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
console.log(
  `VM lifecycle: driver ${driver.name}${process.env.LIA_BENCH_PROFILE === 'firecracker' ? ' (Firecracker artifacts)' : ''}, acceleration ${driver.acceleration}, ${memoryMib} MiB guest, 1 vCPU, ${rounds} rounds (median, min–max)`,
);
for (const k of ['boot', 'suspend', 'restore', 'output'] as const)
  console.log(
    `${k.padEnd(8)} ${median(col(k)).toFixed(0).padStart(6)} ms   (${Math.min(...col(k)).toFixed(0)}–${Math.max(...col(k)).toFixed(0)})`,
  );
const snap = median(col('snapshotBytes'));
console.log(
  `snapshot ${mib(snap).padStart(6)} MiB  = ${((snap / (memoryMib * 1024 * 1024)) * 100).toFixed(0)}% of guest memory`,
);
process.exit(0);
