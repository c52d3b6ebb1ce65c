/**
 * A real VM per task: the qemu driver (KVM where a vCPU really runs, TCG here), booting Lia's
 * guest image, through the real API, workflows, Temporal and PostgreSQL. Spawn → the guest
 * shell's output on the WebSocket → input round trip → a guest with no network card (only
 * `lo`), whose only way out is the sidecar's endpoint, carried over the VM's channel to the
 * host's proxy → idle suspend (machine state on disk, no QEMU left) → resume (same shell,
 * background job carried on, egress again) → terminate (nothing left). The model API key is
 * in neither the disk nor the snapshot. Every VM starts from the host's template (built or found
 * at the host's start); two of them differ in all that makes them themselves.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAlive } from '../../system/procs.js';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack, terminalLines } from '../helpers/stack.js';

const OWNER = 'u-vm';
const API_KEY = `sk-lia-test-${randomBytes(12).toString('hex')}`;
let s: TestStack;
/** A stand-in for the model API: records the key each request carried. */
const modelKeys: string[] = [];
const model = http.createServer((req, res) => {
  modelKeys.push(String(req.headers['x-api-key'] ?? ''));
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ reached: 'model-stand-in', path: req.url }));
});

before(async () => {
  await new Promise<void>((r) => model.listen(0, '127.0.0.1', r));
  const port = (model.address() as net.AddressInfo).port;
  s = await startTestStack('e2e_qemu', {
    LIA__VM__DRIVER: 'qemu',
    LIA__VM__MEMORY_MIB: '256',
    LIA__VM__DEFAULT_STORAGE_GB: '4',
    LIA__CLAUDE__API_KEY: API_KEY,
    LIA__CLAUDE__BASE_URL: `http://127.0.0.1:${port}`,
  });
});
after(async () => {
  await s?.close();
  model.close();
});

const statusOf = async (taskId: string) => (await s.api('GET', `/api/v1/tasks/${taskId}`, OWNER)).json;
const waitStatus = (taskId: string, status: string, timeoutMs = 120_000) =>
  waitFor(
    `task ${taskId} to be ${status}`,
    async () => (await statusOf(taskId)).status === status,
    timeoutMs,
    200,
  );
const vmDir = (taskId: string) => path.join(s.stateDir, 'hosts', s.config.host.id, 'vms', taskId);
/** Any QEMU process of this task, found by its -name (not by a pid file it may have removed). */
const qemuRunning = (taskId: string) =>
  fs.readdirSync('/proc').some((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      return cmd.includes('qemu-system') && cmd.includes(`lia-${taskId}`) && isAlive(Number(p));
    } catch {
      return false;
    }
  });
/** The template a task started from (`template <key>`), under the default cache. */
function templateDir(vmStart: string | undefined): string {
  const key = /^template ([0-9a-f]{16})$/.exec(vmStart ?? '')?.[1];
  assert.ok(key, `not started from a template: ${vmStart}`);
  const base = process.env.XDG_CACHE_HOME ?? path.join(process.env.HOME ?? '/root', '.cache');
  return path.join(base, 'lia', 'templates', key!);
}
/** Each file of a template with its size and modification time. */
function snapshotOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) {
    const st = fs.statSync(path.join(dir, f));
    out[f] = `${st.size} ${st.mtimeMs}`;
  }
  return out;
}
/** The value printed after `name=` on the last line that has it (not the echo of the command). */
function lastValue(text: string, name: string): number {
  const lines = terminalLines(text).filter((l) => new RegExp(`^${name}=\\d+`).test(l));
  assert.ok(lines.length, `no ${name}= line in the terminal`);
  return Number(lines[lines.length - 1]!.slice(name.length + 1));
}

describe('a shell task in a real VM (qemu)', () => {
  test('spawn, egress, idle suspend to a file, resume the same session, terminate clean', async () => {
    const res = await s.api('POST', '/api/v1/tasks', OWNER, {
      prompt: 'a VM for tests',
      runtime: 'shell',
      idleTimeoutSeconds: 12,
    });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const taskId: string = res.json.taskId;
    const token = decodeURIComponent(new URL(res.json.url).hash.slice('#token='.length));

    await waitStatus(taskId, 'running', 300_000);
    const st = await statusOf(taskId);
    assert.equal(st.driver, 'qemu');
    // Started from the template the host built (or found) at start, not booted.
    assert.match(st.vmStart ?? '', /^template [0-9a-f]{16}$/, `vmStart: ${st.vmStart}`);
    const template = templateDir(st.vmStart);
    const templateBefore = snapshotOf(template);
    // Under TCG the status says what that means.
    assert.match(st.acceleration, /^(kvm|tcg \(software emulation: not a security boundary\))$/);

    const c = await StreamClient.open(s.apiUrl, taskId, token);
    await c.waitForText('$ ', 60_000);
    c.type('X=42; uname -r; echo kernel-ok\r');
    await c.waitForText(/\nkernel-ok/, 60_000);
    assert.match(c.text(), /cloud-amd64/, 'the shell runs in the guest kernel, not on the host');

    // No network card: `lo` only, no route. The way out is the sidecar's endpoint in the guest
    // (127.0.0.1:3128), carried over the VM's egress port to the host's proxy: a host off the
    // allowlist refused, the model API reached with the host's key — on a route Claude Code
    // uses; another route is refused.
    c.type(
      "echo links=$(ip -o link | wc -l); echo names=$(ip -o link | awk -F': ' '{print $2}'); " +
        'echo routes=$(ip route | wc -l); ' +
        "curl -s -m 20 -o /dev/null -w 'web=%{http_code}\\n' http://example.com/; " +
        "curl -s -m 5 --noproxy '*' http://93.184.216.34/ >/dev/null 2>&1; echo direct=$?; " +
        "curl -s -m 20 -o /dev/null -w 'files=%{http_code}\\n' $ANTHROPIC_BASE_URL/v1/files; " +
        "curl -s -m 20 -X POST -H 'content-type: application/json' -d '{}' $ANTHROPIC_BASE_URL/v1/messages/count_tokens; echo; echo egress-done\r",
    );
    await c.waitForText(/\negress-done/, 90_000);
    const text = c.text();
    assert.equal(lastValue(text, 'links'), 1, 'one network interface in the guest');
    assert.ok(terminalLines(text).includes('names=lo'), 'and it is lo');
    assert.equal(lastValue(text, 'routes'), 0, 'the guest has no route at all');
    assert.equal(lastValue(text, 'web'), 403, 'a host off the allowlist is refused');
    assert.notEqual(lastValue(text, 'direct'), 0, 'a direct connection goes nowhere');
    assert.equal(lastValue(text, 'files'), 403, "the model API's other routes are refused");
    assert.match(text, /model-stand-in/, 'the model API is reached through the channel');
    assert.ok(modelKeys.includes(API_KEY), 'the proxy added the host key');

    // A background counter and a variable, then leave it idle.
    c.type(
      '(i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.2; done) & echo before=$(cat /tmp/counter 2>/dev/null || echo 0)\r',
    );
    await c.waitForText(/before=\d+/, 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    c.type('echo before=$(cat /tmp/counter)\r');
    await c.waitForText(/before=[1-9]\d*/, 60_000);
    const before = lastValue(c.text(), 'before');
    await c.close();

    await waitStatus(taskId, 'suspended', 120_000);
    const state = path.join(vmDir(taskId), 'state.bin');
    assert.ok(fs.existsSync(state), 'the machine state is on disk');
    assert.equal(qemuRunning(taskId), false, 'no QEMU process while suspended');
    const snapshot = fs.readFileSync(state);
    assert.ok(snapshot.length > 1024 * 1024, 'the snapshot holds the guest memory');
    assert.equal(snapshot.indexOf(API_KEY), -1, 'the API key is not in the snapshot');
    assert.equal(
      fs.readFileSync(path.join(vmDir(taskId), 'disk.qcow2')).indexOf(API_KEY),
      -1,
      'nor on the disk',
    );

    // The task's own snapshot; the template is as it was.
    assert.deepEqual(snapshotOf(template), templateBefore, 'suspending a task leaves its template untouched');
    // Asleep long enough for a stale clock to show after the restore.
    await new Promise((r) => setTimeout(r, 20_000));
    const r = await s.api('POST', `/api/v1/tasks/${taskId}/resume`, OWNER);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.status, 'running');
    assert.ok(qemuRunning(taskId));
    const c2 = await StreamClient.open(s.apiUrl, taskId, token);
    const reached = modelKeys.length;
    c2.type(
      'echo after-$X; echo after=$(cat /tmp/counter); ' +
        "curl -s -m 20 -X POST -H 'content-type: application/json' -d '{}' $ANTHROPIC_BASE_URL/v1/messages/count_tokens; echo\r",
    );
    await c2.waitForText(/after=\d+/, 60_000);
    assert.ok(terminalLines(c2.text()).includes('after-42'), 'the same shell: the variable holds');
    await waitFor('the model API through the restored VM', () => modelKeys.length > reached, 60_000);
    const afterValue = lastValue(c2.text(), 'after');
    assert.ok(afterValue >= before, `the counter carried on (${before} → ${afterValue}), not restarted`);
    await new Promise((r) => setTimeout(r, 1500));
    c2.type('echo later=$(cat /tmp/counter)\r');
    await c2.waitForText(/later=\d+/, 60_000);
    assert.ok(lastValue(c2.text(), 'later') > afterValue, 'and keeps counting');
    // The clock is the host's again, not the snapshot's (the host refreshes it, and the RNG, on attach).
    c2.type('echo clock=$(date +%s)\r');
    await c2.waitForText(/clock=\d+/, 60_000);
    const skew = lastValue(c2.text(), 'clock') - Date.now() / 1000;
    assert.ok(Math.abs(skew) < 10, `the guest clock is off by ${skew.toFixed(1)} s after the restore`);
    await c2.close();

    const d = await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
    assert.equal(d.status, 202);
    await waitStatus(taskId, 'terminated');
    assert.equal(fs.existsSync(vmDir(taskId)), false, 'no disk, snapshot or socket left');
    assert.equal(qemuRunning(taskId), false, 'no QEMU left');
    assert.deepEqual(snapshotOf(template), templateBefore, 'and the template is still there, unchanged');
  });

  test('two tasks from one template: each its own hostname, machine-id, random stream, clock and disk', async () => {
    const spawn = async () => {
      const res = await s.api('POST', '/api/v1/tasks', OWNER, { prompt: 'a twin', runtime: 'shell' });
      assert.equal(res.status, 201, JSON.stringify(res.json));
      const taskId: string = res.json.taskId;
      const token = decodeURIComponent(new URL(res.json.url).hash.slice('#token='.length));
      return { taskId, token };
    };
    const a = await spawn();
    const b = await spawn();
    await waitStatus(a.taskId, 'running', 300_000);
    await waitStatus(b.taskId, 'running', 300_000);
    const [sa, sb] = [await statusOf(a.taskId), await statusOf(b.taskId)];
    assert.match(sa.vmStart ?? '', /^template /);
    assert.equal(sa.vmStart, sb.vmStart, 'both from the same template');
    const ask = async (t: { taskId: string; token: string }, mark: string) => {
      const c = await StreamClient.open(s.apiUrl, t.taskId, t.token);
      await c.waitForText('$ ', 60_000);
      c.type(
        `echo ${mark} > ~/mark-${mark}; echo "id: $(hostname) $(cat /etc/machine-id) $(cat /proc/sys/kernel/random/uuid) ` +
          `$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n') $(date -u +%s) $(ls ~ | grep -c mark-)"; echo id-done\r`,
      );
      await c.waitForText(/\nid-done/, 60_000);
      const line = terminalLines(c.text()).find((l) => /^id: \S+ [0-9a-f]{32} /.test(l));
      assert.ok(line, `no identity line in ${JSON.stringify(c.text().slice(-400))}`);
      await c.close();
      const [, hostname, machineId, uuid, bytes, clock, marks] = line!.split(' ');
      return { hostname, machineId, uuid, bytes, clock: Number(clock), marks: Number(marks) };
    };
    const ia = await ask(a, 'A');
    const ib = await ask(b, 'B');
    assert.notEqual(ia.hostname, ib.hostname, 'hostnames differ');
    assert.match(ia.hostname!, new RegExp(a.taskId.toLowerCase().replace(/_/g, '-')));
    assert.notEqual(ia.machineId, ib.machineId, 'machine-ids differ');
    assert.notEqual(ia.uuid, ib.uuid, 'kernel uuids differ');
    assert.notEqual(ia.bytes, ib.bytes, '/dev/urandom differs');
    const now = Date.now() / 1000;
    for (const i of [ia, ib])
      assert.ok(Math.abs(i.clock - now) < 120, `the guest's clock is the host's (${i.clock} vs ${now})`);
    // B's disk has only B's mark: nothing A wrote is in B's disk (nor in the template under both).
    assert.equal(ia.marks, 1);
    assert.equal(ib.marks, 1, "B sees none of A's files");
    for (const t of [a, b]) {
      assert.equal((await s.api('DELETE', `/api/v1/tasks/${t.taskId}`, OWNER)).status, 202);
      await waitStatus(t.taskId, 'terminated');
      assert.equal(fs.existsSync(vmDir(t.taskId)), false);
    }
    assert.ok(fs.existsSync(templateDir(sa.vmStart)), 'the template stays');
  });

  test('a stop while the VM boots cold cancels the boot, and leaves nothing', async () => {
    // From a template the boot takes well under a second: there is no boot to stop midway.
    // The cold boot (what a template that fails falls back to) on a host of its own.
    const cold = await startTestStack('e2e_qemu_cold', {
      LIA__VM__DRIVER: 'qemu',
      LIA__VM__MEMORY_MIB: '256',
      LIA__VM__DEFAULT_STORAGE_GB: '4',
      LIA__VM__TEMPLATES: 'false',
    });
    try {
      await stopWhileBooting(cold);
    } finally {
      await cold.close();
    }
  });
});

async function stopWhileBooting(s: TestStack): Promise<void> {
  const statusOf = async (taskId: string) => (await s.api('GET', `/api/v1/tasks/${taskId}`, OWNER)).json;
  const waitStatus = (taskId: string, status: string, timeoutMs = 120_000) =>
    waitFor(
      `task ${taskId} to be ${status}`,
      async () => (await statusOf(taskId)).status === status,
      timeoutMs,
      200,
    );
  const vmDir = (taskId: string) => path.join(s.stateDir, 'hosts', s.config.host.id, 'vms', taskId);
  const res = await s.api('POST', '/api/v1/tasks', OWNER, { prompt: 'stopped early', runtime: 'shell' });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  const taskId: string = res.json.taskId;
  await waitStatus(taskId, 'starting', 60_000);
  await waitFor('QEMU to be started', () => qemuRunning(taskId), 60_000, 50);
  assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER)).status, 202);
  await waitStatus(taskId, 'terminated', 120_000);
  // The boot activity was cancelled (the first workflow waited for it to finish).
  const events = (await s.temporal.client.workflow.getHandle(taskId).fetchHistory()).events ?? [];
  const boot = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'bootVm');
  assert.ok(boot, 'bootVm was scheduled');
  const bootId = String(boot!.eventId);
  const ofBoot = (e: (typeof events)[number]) =>
    [e.activityTaskCanceledEventAttributes, e.activityTaskCompletedEventAttributes].some(
      (a) => a && String(a.scheduledEventId) === bootId,
    );
  const end = events.find(ofBoot);
  assert.ok(end?.activityTaskCanceledEventAttributes, 'bootVm ended cancelled, not completed');
  assert.equal(qemuRunning(taskId), false);
  assert.equal(fs.existsSync(vmDir(taskId)), false);
}
