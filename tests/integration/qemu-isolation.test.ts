/**
 * QEMU's defence in depth, at the driver (a real VM): each QEMU runs as a uid of its own, with
 * no capabilities, no new privileges and its seccomp sandbox, in a cgroup of its own with the
 * VM's CPU, memory and task limits; its files are private; inside, the agent is an unprivileged
 * user that cannot see or signal the sidecar; and a fork bomb in the guest stays inside the
 * VM's cgroup (the host gains no process, the VM gets no more CPU than its limit).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/logger.js';
import { QemuDriver } from '../../vm/drivers/qemu/driver.js';
import { detectCgroups } from '../../vm/process/cgroup.js';
import { selectDriver } from '../../vm/select.js';
import { SidecarConnection } from '../../vm/sidecar/client.js';

const hasQemu = fs.existsSync('/usr/bin/qemu-system-x86_64');
const root = process.getuid?.() === 0;
const skip = !hasQemu ? 'no QEMU' : !root ? 'needs root (a uid and a cgroup per VM)' : false;
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-iso-'));
const taskId = 't_isolation1';
const spec = { taskId, vcpus: 1, memoryMib: 256, storageGb: 2 };
const cgroups = detectCgroups().system;
let driver: QemuDriver;
let conn: SidecarConnection;
let output = '';

const vmDir = path.join(stateDir, 'hosts', 'iso', 'vms', taskId);
const qemuPid = () =>
  (JSON.parse(fs.readFileSync(path.join(vmDir, 'vmm.json'), 'utf8')) as { pid: number }).pid;
const status = (pid: number) => fs.readFileSync(`/proc/${pid}/status`, 'utf8');
const field = (st: string, name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(st)?.[1]?.trim();
const rel = `lia/iso/${taskId}`;

/** Types a command in the guest's shell and waits for its marker line. */
async function run(command: string, marker: string, timeoutMs = 60_000): Promise<string> {
  const from = output.length;
  conn.send({ type: 'stdin' }, Buffer.from(`${command}; echo ${marker}-$((40+2))\r`));
  const deadline = Date.now() + timeoutMs;
  while (!output.slice(from).includes(`${marker}-42`)) {
    if (Date.now() > deadline) throw new Error(`no ${marker} from the guest:\n${output.slice(-800)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return output.slice(from);
}

before(async () => {
  if (skip) return;
  const config = loadConfig({
    LIA__VM__DRIVER: 'qemu',
    LIA__STATE__DIR: stateDir,
    LIA__HOST__ID: 'iso',
    // The test counts the host's processes of the VM's uid: a range of its own, so another
    // suite's VMs on this machine (whose uids start at the default, 900000) are not counted.
    LIA__VM__UID_BASE: '961000',
  });
  driver = (await selectDriver(config, createLogger('iso', 'warn'), undefined, {
    selfCheck: false,
  })) as QemuDriver;
  await driver.boot(spec, () => {});
  conn = await SidecarConnection.open(await driver.connect(taskId), 30_000);
  conn.onFrame(({ header, body }) => {
    if (header.type !== 'output') return;
    output += body.toString();
    conn.send({ type: 'ack', seq: header.seq });
  });
  conn.send({ type: 'attach', fromSeq: 1 });
  conn.send({
    type: 'start',
    command: 'bash',
    args: ['--noprofile', '--norc', '-i'],
    env: { TERM: 'dumb', PATH: '/usr/local/bin:/usr/bin:/bin', PS1: '$ ', ...driver.guestEnv },
    cols: 200,
    rows: 40,
  });
});
after(async () => {
  conn?.close();
  await driver?.destroy(taskId).catch(() => {});
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('QEMU on the host', { skip }, () => {
  test('runs as a uid of its own, no capabilities, no new privileges, sandboxed (ps shows it)', () => {
    const pid = qemuPid();
    const st = status(pid);
    const uid = field(st, 'Uid')!.split(/\s+/);
    assert.ok(Number(uid[0]) >= 900000, `a VM uid, not ${uid[0]}`);
    assert.deepEqual(new Set(uid), new Set([uid[0]]), 'real, effective, saved and fs uid alike');
    assert.equal(field(st, 'Groups'), '', 'no supplementary groups');
    assert.equal(field(st, 'CapEff'), '0000000000000000');
    assert.equal(field(st, 'CapBnd'), '0000000000000000');
    assert.equal(field(st, 'NoNewPrivs'), '1');
    assert.equal(field(st, 'Seccomp'), '2', 'the -sandbox seccomp filter is on');
    const ps = execFileSync('ps', ['-o', 'user=,pid=,args=', '-p', String(pid)], { encoding: 'utf8' });
    assert.match(ps, new RegExp(`^${uid[0]}\\s+${pid}\\s+qemu-system-x86_64 -name lia-${taskId}`));
  });

  test('is in a cgroup of its own with the VM’s limits', () => {
    assert.ok(cgroups, 'this host has cgroups');
    const pid = qemuPid();
    assert.ok(cgroups!.contains(rel, pid), 'QEMU is in lia/<host>/<task> (every controller)');
    assert.match(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`/${rel}$`, 'm'));
    const l = cgroups!.limits(rel);
    const want = QemuDriver.limits(spec, driver.acceleration === 'kvm' ? 'kvm' : 'tcg');
    assert.equal(l.cpuPercent, want.cpuPercent);
    assert.equal(l.memoryBytes, want.memoryBytes);
    assert.equal(l.pids, want.pids);
  });

  test('its files are its own: the task folder and everything in it private', () => {
    assert.equal(fs.statSync(vmDir).mode & 0o777, 0o700);
    for (const name of fs.readdirSync(vmDir)) {
      const mode = fs.statSync(path.join(vmDir, name)).mode & 0o777;
      assert.equal(mode & 0o077, 0, `${name} is ${mode.toString(8)}`);
    }
  });
});

describe('inside the guest', { skip }, () => {
  test('the agent is an unprivileged user that cannot see or signal the sidecar', async () => {
    const out = await run(
      'echo uid=$(id -u); echo procs=$(ps -e -o user= | sort -u | tr "\\n" ,); ' +
        'kill -0 1 2>/dev/null; echo kill1=$?; cat /proc/1/environ >/dev/null 2>&1; echo environ=$?',
      'guest-user',
    );
    assert.match(out, /\nuid=1000\r?\n/);
    assert.match(out, /\nprocs=agent,\r?\n/, 'the agent sees its own processes only');
    assert.match(out, /\nkill1=1\r?\n/);
    assert.match(out, /\nenviron=1\r?\n/);
  });

  test('a fork bomb stays inside the VM’s cgroup', async () => {
    assert.ok(cgroups);
    const pid = qemuPid();
    const uid = field(status(pid), 'Uid')!.split(/\s+/)[0]!;
    const tasksBefore = cgroups!.pids(rel).length;
    const ownedBy = (u: string) =>
      fs.readdirSync('/proc').filter((p) => {
        if (!/^\d+$/.test(p)) return false;
        try {
          return field(status(Number(p)), 'Uid')!.split(/\s+/)[0] === u;
        } catch {
          return false;
        }
      }).length;
    // QEMU is the cgroup's one process: its CPU time is the VM's (utime + stime, in ticks of 10 ms).
    const cpuMs = () => {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) * 10;
    };
    await run('echo bomb-ready', 'ready');
    const cpu0 = cpuMs();
    const t0 = Date.now();
    conn.send({ type: 'stdin' }, Buffer.from('b(){ b|b& }; b\r'));
    let maxTasks = 0;
    let maxOwned = 0;
    while (Date.now() - t0 < 15_000) {
      maxTasks = Math.max(maxTasks, cgroups!.pids(rel).length);
      maxOwned = Math.max(maxOwned, ownedBy(uid));
      await new Promise((r) => setTimeout(r, 500));
    }
    const cpuShare = (cpuMs() - cpu0) / (Date.now() - t0);
    const limit = QemuDriver.limits(spec, 'tcg');
    assert.equal(maxOwned, 1, 'the host has one process of the VM’s uid: QEMU, and no other');
    assert.ok(
      maxTasks <= tasksBefore,
      `the VM's cgroup holds its ${tasksBefore} task(s), not more (${maxTasks})`,
    );
    assert.ok(
      cpuShare <= (limit.cpuPercent / 100) * 1.1,
      `the VM used ${(cpuShare * 100).toFixed(0)}% of a CPU, at most its limit (${limit.cpuPercent}%)`,
    );
    assert.ok(fs.existsSync(`/proc/${pid}`), 'QEMU itself is still there');
    await driver.destroy(taskId);
    assert.equal(cgroups!.exists(rel), false, 'destroy removes the cgroup');
    assert.equal(ownedBy(uid), 0, 'and leaves no process of the VM’s uid');
  });
});
