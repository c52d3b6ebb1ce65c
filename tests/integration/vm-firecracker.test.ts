/**
 * The Firecracker driver. Its API client against Firecracker's own schema; the hybrid vsock
 * handshake; the jailer's arguments; and the driver's whole lifecycle against a stand-in VMM
 * that serves Firecracker's API from that schema and a stand-in jailer that forks the way the
 * jailer does (the VMM's pid in <jail>/firecracker.pid, the jailer gone), on this machine's
 * real cgroups, uids and files: boot, a retried boot, suspend (no VMM left), restore (a clean
 * jail, the same limits, the guest's state back), a worker restart, a refused snapshot, destroy
 * (nothing left). Where a real firecracker and working KVM exist, the same lifecycle runs on
 * them; here it is skipped, with the reason.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../common/logger.js';
import { isAlive } from '../../system/procs.js';
import { connectVsock } from '../../vm/channel/vsock.js';
import { FirecrackerApi, FirecrackerApiError } from '../../vm/drivers/firecracker/api.js';
import { FirecrackerDriver, jailerArgs, jailId } from '../../vm/drivers/firecracker/driver.js';
import { ensureGuestImage } from '../../vm/image/ensure.js';
import { probeKvm } from '../../vm/kvm-probe.js';
import { detectCgroups } from '../../vm/process/cgroup.js';
import { isRunning, type VmmRecord } from '../../vm/process/supervisor.js';
import { UidPool } from '../../vm/process/uids.js';
import { which } from '../../vm/select.js';
import { SidecarConnection } from '../../vm/sidecar/client.js';
import { repoRoot } from '../helpers/env.js';
import { checkRequest, loadRoutes } from '../standins/firecracker/schema.js';

/** Firecracker's API on a Unix socket, checking every request against the schema (no VM). */
class SchemaOnlyStandIn {
  readonly calls: { method: string; path: string; body: any }[] = [];
  private server!: http.Server;
  constructor(readonly socketPath: string) {}
  async start(): Promise<void> {
    const routes = loadRoutes();
    this.server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d) => parts.push(d));
      req.on('end', () => {
        const r = checkRequest(routes, req.method!, req.url ?? '/', Buffer.concat(parts).toString('utf8'));
        if ('fault' in r) {
          res.writeHead(400, { 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ fault_message: r.fault }));
        }
        this.calls.push({ method: req.method!, path: req.url!, body: r.body });
        res.writeHead(204);
        res.end();
      });
    });
    await new Promise<void>((r) => this.server.listen(this.socketPath, r));
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('the Firecracker API client against Firecracker’s own schema', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-fc-'));
  const standIn = new SchemaOnlyStandIn(path.join(dir, 'api.sock'));
  before(() => standIn.start());
  after(async () => {
    await standIn.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('boot, pause, snapshot and load: every request is valid', async () => {
    const api = new FirecrackerApi(standIn.socketPath);
    await api.putMachineConfig({ vcpu_count: 2, mem_size_mib: 512, smt: false });
    await api.putBootSource({
      kernel_image_path: 'vmlinux',
      initrd_path: 'initrd.img',
      boot_args: 'console=ttyS0',
    });
    await api.putDrive({
      drive_id: 'rootfs',
      path_on_host: 'rootfs.ext4',
      is_root_device: true,
      is_read_only: false,
    });
    await api.putVsock({ guest_cid: 3, uds_path: 'v.sock' });
    await api.instanceStart();
    await api.pause();
    await api.createSnapshot('snapshot.state', 'snapshot.mem');
    await api.loadSnapshot('snapshot.state', 'snapshot.mem', true);
    await api.resume();
    assert.deepEqual(
      standIn.calls.map((c) => `${c.method} ${c.path}`),
      [
        'PUT /machine-config',
        'PUT /boot-source',
        'PUT /drives/rootfs',
        'PUT /vsock',
        'PUT /actions',
        'PATCH /vm',
        'PUT /snapshot/create',
        'PUT /snapshot/load',
        'PATCH /vm',
      ],
    );
    assert.deepEqual(standIn.calls[7]!.body.mem_backend, {
      backend_type: 'File',
      backend_path: 'snapshot.mem',
    });
  });

  test('the stand-in really checks: a request off the schema is refused with Firecracker’s error shape', async () => {
    const api = new FirecrackerApi(standIn.socketPath);
    await assert.rejects(
      api.putMachineConfig({ vcpu_count: 'two' as unknown as number, mem_size_mib: 512 }),
      (err: unknown) =>
        err instanceof FirecrackerApiError && err.status === 400 && /vcpu_count/.test(err.faultMessage),
    );
    await assert.rejects(
      api.putDrive({ drive_id: 'rootfs', path_on_host: 'x' } as unknown as Parameters<
        typeof api.putDrive
      >[0]),
      (err: unknown) => err instanceof FirecrackerApiError && /is_root_device/.test(err.faultMessage),
    );
  });
});

describe('hybrid vsock', () => {
  test('CONNECT <port> / OK, then a plain stream; a refusal is an error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-vsock-'));
    const uds = path.join(dir, 'v.sock');
    const server = net.createServer((s) => {
      s.once('data', (d) => {
        if (d.toString() === 'CONNECT 1024\n') {
          s.write('OK 1073741824\nhello-from-guest');
          s.on('data', (x) => s.write(x));
        } else s.end('FAILURE\n');
      });
    });
    await new Promise<void>((r) => server.listen(uds, r));
    const sock = await connectVsock(uds, 1024);
    const got = await new Promise<string>((resolve) => {
      let acc = '';
      sock.on('data', (d: Buffer) => {
        acc += d.toString();
        if (acc.endsWith('ping')) resolve(acc);
      });
      sock.write('ping');
    });
    assert.equal(got, 'hello-from-guestping');
    sock.destroy();
    await assert.rejects(connectVsock(uds, 9), /refused/);
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

test('the jailer runs firecracker chrooted, as the VM’s uid, in a new pid namespace, in cgroups with the limits', () => {
  const limits = FirecrackerDriver.limits({ taskId: 't_abcdefg234', vcpus: 2, memoryMib: 512, storageGb: 1 });
  const o = { firecrackerBin: '/usr/local/bin/firecracker', jailBase: '/srv/jail', hostId: 'h1' };
  const args = jailerArgs(o, 't_abcdefg234', 900001, 2, limits);
  const at = (flag: string) => args[args.indexOf(flag) + 1];
  assert.equal(at('--id'), 't-abcdefg234');
  assert.equal(at('--uid'), '900001');
  assert.equal(at('--chroot-base-dir'), '/srv/jail');
  assert.equal(at('--parent-cgroup'), 'lia/h1');
  assert.ok(args.includes('--new-pid-ns'));
  assert.ok(args.includes('cpu.max=250000 100000'));
  assert.ok(args.includes(`memory.max=${640 * 2 ** 20}`));
  assert.ok(args.includes('pids.max=128'));
  const v1 = jailerArgs(o, 't_abcdefg234', 900001, 1, limits);
  assert.ok(v1.includes('cpu.cfs_quota_us=250000') && v1.includes(`memory.limit_in_bytes=${640 * 2 ** 20}`));
  assert.deepEqual(args.slice(args.indexOf('--')), ['--', '--api-sock', '/run/api.sock']);
});

interface ApiCall {
  pid: number;
  method: string;
  url: string;
  body: any;
  status: number;
}

/** The driver's lifecycle against a VMM: the stand-in here, a real Firecracker where there is one. */
function lifecycle(kind: 'stand-in' | 'real', skip: () => Promise<string | false>) {
  describe(`the Firecracker driver’s lifecycle (${kind} VMM)`, () => {
    let reason: string | false = 'not checked';
    let stateDir = '';
    let d: FirecrackerDriver;
    let make: () => FirecrackerDriver;
    let apiLog = '';
    const taskId = 't_fclifecyc1';
    const spec = { taskId, vcpus: 1, memoryMib: 256, storageGb: 2 };
    const cgroups = detectCgroups().system;
    const rel = `lia/fcl/${jailId(taskId)}`;

    before(async () => {
      reason = await skip();
      if (reason) return;
      stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-fcl-'));
      let firecrackerBin: string;
      let jailerBin: string;
      if (kind === 'stand-in') {
        const bin = path.join(stateDir, 'bin');
        fs.mkdirSync(bin);
        const loader = path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs');
        const script = (ts: string) =>
          `#!/bin/sh\nexec ${process.execPath} --import ${loader} ${path.join(repoRoot, 'tests/standins/firecracker', ts)} "$@"\n`;
        firecrackerBin = path.join(bin, 'firecracker');
        jailerBin = path.join(bin, 'jailer');
        fs.writeFileSync(firecrackerBin, script('firecracker.ts'), { mode: 0o755 });
        fs.writeFileSync(jailerBin, script('jailer.ts'), { mode: 0o755 });
        apiLog = path.join(stateDir, 'api.log');
        fs.writeFileSync(apiLog, '');
        process.env.LIA_FC_STANDIN_LOG = apiLog;
      } else {
        firecrackerBin = which('firecracker')!;
        jailerBin = which('jailer')!;
      }
      const image = await ensureGuestImage(() => {});
      make = () =>
        new FirecrackerDriver({
          firecrackerBin,
          jailerBin,
          stateDir,
          hostId: 'fcl',
          image,
          uids: new UidPool(path.join(stateDir, 'uids'), 900_500),
          cgroups: cgroups!,
          egress: { accept: (_t, conn) => conn.destroy() },
          logger: createLogger('fcl', 'warn'),
          // The cold lifecycle; templates have their own test below.
          templates: false,
        });
      d = make();
    });
    after(async () => {
      delete process.env.LIA_FC_STANDIN_LOG;
      await d?.destroy(taskId).catch(() => {});
      if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
    });

    const t = (name: string, fn: () => Promise<void>) =>
      test(name, async (c) => {
        if (reason) {
          c.diagnostic(`skipped: ${reason}`);
          c.skip(reason);
          return;
        }
        await fn();
      });
    const vmDir = () => path.join(stateDir, 'hosts', 'fcl', 'vms', taskId);
    const jail = () => path.join(stateDir, 'hosts', 'fcl', 'jail', 'firecracker', jailId(taskId));
    const vmm = () => JSON.parse(fs.readFileSync(path.join(vmDir(), 'vmm.json'), 'utf8')) as VmmRecord;
    const calls = (): ApiCall[] =>
      kind === 'stand-in'
        ? fs
            .readFileSync(apiLog, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as ApiCall)
        : [];
    const uidOf = (pid: number) =>
      Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    const ppidOf = (pid: number) =>
      Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    const hello = async (driver = d) => {
      const conn = await SidecarConnection.open(await driver.connect(taskId), 15_000);
      conn.close();
      return conn.hello;
    };
    let firstPid = 0;
    let nextSeq = 0;

    t(
      'boot: the VMM the jailer forked, as the VM’s uid, in the VM’s cgroup with its limits; sidecar and egress over vsock',
      async () => {
        await d.boot(spec, () => {});
        const rec = vmm();
        firstPid = rec.pid;
        assert.ok(isRunning(rec), 'the recorded VMM runs');
        assert.equal(fs.existsSync(path.join(jail(), 'root', 'firecracker.pid')), true);
        assert.equal(Number(fs.readFileSync(path.join(jail(), 'root', 'firecracker.pid'), 'utf8')), rec.pid);
        assert.notEqual(
          ppidOf(rec.pid),
          process.pid,
          'the jailer forked it and left: not the worker’s child',
        );
        assert.ok(uidOf(rec.pid) >= 900_500, 'it runs as the VM’s own uid');
        assert.ok(cgroups!.contains(rel, rec.pid), 'in the VM’s cgroup');
        assert.deepEqual(cgroups!.limits(rel), FirecrackerDriver.limits(spec));
        nextSeq = (await hello()).nextSeq;
        assert.ok(d.egressConnected(taskId), 'the egress port answered');
        if (kind === 'stand-in') {
          const mine = calls().filter((c) => c.pid === rec.pid && c.method !== 'GET');
          assert.deepEqual(
            mine.map((c) => `${c.method} ${c.url} ${c.status}`),
            [
              'PUT /machine-config 204',
              'PUT /boot-source 204',
              'PUT /drives/rootfs 204',
              'PUT /vsock 204',
              'PUT /actions 204',
            ],
            'configured through the API, no network interface',
          );
          assert.equal(mine[1]!.body.initrd_path, 'initrd.img');
        }
      },
    );

    t(
      'a retried boot keeps a VM that runs; after a VMM died in a half-built jail it starts over clean',
      async () => {
        const configCalls = () => calls().filter((c) => c.method !== 'GET').length;
        const before = configCalls();
        await d.boot(spec, () => {});
        assert.equal(vmm().pid, firstPid, 'the same VMM');
        assert.equal(configCalls(), before, 'and nothing configured again');
        process.kill(firstPid, 'SIGKILL');
        fs.writeFileSync(path.join(jail(), 'root', 'left-by-a-dead-boot'), 'x');
        await d.boot(spec, () => {});
        const rec = vmm();
        assert.notEqual(rec.pid, firstPid);
        assert.equal(fs.existsSync(path.join(jail(), 'root', 'left-by-a-dead-boot')), false, 'a fresh jail');
        assert.deepEqual(cgroups!.pids(rel), [rec.pid], 'one VMM in the cgroup');
        nextSeq = (await hello()).nextSeq;
      },
    );

    let suspendedPid = 0;
    t(
      'suspend leaves no VMM process (nor its jail or cgroup); the snapshot is in the task’s folder',
      async () => {
        suspendedPid = vmm().pid;
        const { snapshotBytes } = await d.suspend(taskId, () => {});
        assert.ok(snapshotBytes > 0);
        assert.equal(isAlive(suspendedPid), false, 'the VMM is gone, RAM and all');
        assert.equal(cgroups!.exists(rel), false, 'its cgroup is gone');
        assert.equal(fs.existsSync(jail()), false, 'its jail is gone');
        for (const f of ['snapshot.state', 'snapshot.mem', 'disk.raw']) {
          const st = fs.statSync(path.join(vmDir(), f));
          assert.equal(st.mode & 0o077, 0, `${f} is private`);
        }
        if (kind === 'stand-in')
          assert.deepEqual(
            calls()
              .filter((c) => c.pid === suspendedPid)
              .slice(-2)
              .map((c) => `${c.method} ${c.url} ${c.status}`),
            ['PATCH /vm 204', 'PUT /snapshot/create 204'],
          );
      },
    );

    t(
      'restore relaunches into a clean jail with the same uid and limits, and the guest’s state is back',
      async () => {
        fs.mkdirSync(path.join(jail(), 'root'), { recursive: true });
        fs.writeFileSync(path.join(jail(), 'root', 'planted'), 'x');
        await d.restore(taskId, () => {});
        const rec = vmm();
        assert.notEqual(rec.pid, suspendedPid);
        assert.equal(fs.existsSync(path.join(jail(), 'root', 'planted')), false, 'the jail was rebuilt');
        assert.deepEqual(cgroups!.limits(rel), FirecrackerDriver.limits(spec), 'the same limits');
        assert.deepEqual(cgroups!.pids(rel), [rec.pid]);
        const h = await hello();
        if (kind === 'stand-in') {
          // The stand-in guest counts the hellos it answered, in its memory: a fresh one starts at 1.
          assert.ok(
            h.nextSeq > nextSeq,
            `the guest counts on (${nextSeq} → ${h.nextSeq}): its memory came back`,
          );
          const mine = calls().filter((c) => c.pid === rec.pid && c.method !== 'GET');
          assert.equal(`${mine[0]!.method} ${mine[0]!.url} ${mine[0]!.status}`, 'PUT /snapshot/load 204');
        }
        for (const f of ['snapshot.state', 'snapshot.mem', 'suspended'])
          assert.equal(fs.existsSync(path.join(vmDir(), f)), false, `${f} went once the guest answered`);
      },
    );

    t('a worker restart (a new driver) finds the VM by its record and cgroup, and suspends it', async () => {
      const d2 = make();
      assert.deepEqual(await d2.list(), [taskId]);
      await d2.adopt();
      assert.ok(d2.egressConnected(taskId), 'the new worker re-attached the egress port');
      await hello(d2);
      const pid = vmm().pid;
      await d2.suspend(taskId, () => {});
      assert.equal(isAlive(pid), false);
      d = d2;
    });

    t('a snapshot the VMM refuses leaves the task suspended, the snapshot kept, no VMM', async () => {
      fs.writeFileSync(path.join(vmDir(), 'snapshot.state'), 'not a snapshot');
      await assert.rejects(
        d.restore(taskId, () => {}),
        /did not load the snapshot \(it is kept\)/,
      );
      assert.ok(fs.existsSync(path.join(vmDir(), 'snapshot.state')));
      assert.ok(fs.existsSync(path.join(vmDir(), 'suspended')));
      assert.equal(cgroups!.exists(rel) && cgroups!.pids(rel).length > 0, false, 'no VMM left');
    });

    t('destroy leaves nothing: no process, jail, cgroup, folder or uid', async () => {
      await d.destroy(taskId);
      assert.equal(fs.existsSync(vmDir()), false);
      assert.equal(fs.existsSync(jail()), false);
      assert.equal(cgroups!.exists(rel), false);
      assert.deepEqual(fs.readdirSync(path.join(stateDir, 'uids')), []);
      await d.destroy(taskId);
    });
  });
}

lifecycle('stand-in', async () => {
  if (process.getuid?.() !== 0) return 'the jailer (and its stand-in) needs root';
  if (!detectCgroups().system) return `no usable cgroups: ${detectCgroups().reason}`;
  return false;
});

lifecycle('real', async () => {
  const fc = which('firecracker');
  const jailer = which('jailer');
  if (!fc || !jailer) return 'no firecracker and jailer on this machine (vm/setup.sh installs them)';
  const kvm = await probeKvm();
  if (!kvm.usable) return `KVM is not usable here: ${kvm.reason}`;
  if (process.getuid?.() !== 0) return 'the jailer needs root';
  if (!detectCgroups().system) return `no usable cgroups: ${detectCgroups().reason}`;
  return false;
});

describe('Firecracker templates (stand-in VMM): built once, each VM from /snapshot/load of it', () => {
  const root = process.getuid?.() === 0 && detectCgroups().system;
  let stateDir = '';
  let apiLog = '';
  let d: FirecrackerDriver;
  const size = { vcpus: 1, memoryMib: 256, storageGb: 2 };
  const calls = (): ApiCall[] =>
    fs
      .readFileSync(apiLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ApiCall);
  const hello = async (taskId: string) => {
    const conn = await SidecarConnection.open(await d.connect(taskId), 15_000);
    conn.close();
    return conn.hello;
  };
  const vmmPid = (taskId: string) =>
    (
      JSON.parse(
        fs.readFileSync(path.join(stateDir, 'hosts', 'fct', 'vms', taskId, 'vmm.json'), 'utf8'),
      ) as VmmRecord
    ).pid;

  before(async () => {
    if (!root) return;
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-fct-'));
    const bin = path.join(stateDir, 'bin');
    fs.mkdirSync(bin);
    const loader = path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs');
    const script = (ts: string) =>
      `#!/bin/sh\nexec ${process.execPath} --import ${loader} ${path.join(repoRoot, 'tests/standins/firecracker', ts)} "$@"\n`;
    fs.writeFileSync(path.join(bin, 'firecracker'), script('firecracker.ts'), { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'jailer'), script('jailer.ts'), { mode: 0o755 });
    apiLog = path.join(stateDir, 'api.log');
    fs.writeFileSync(apiLog, '');
    process.env.LIA_FC_STANDIN_LOG = apiLog;
    d = new FirecrackerDriver({
      firecrackerBin: path.join(bin, 'firecracker'),
      jailerBin: path.join(bin, 'jailer'),
      stateDir,
      hostId: 'fct',
      image: await ensureGuestImage(() => {}),
      uids: new UidPool(path.join(stateDir, 'uids'), 900_700),
      cgroups: detectCgroups().system!,
      egress: { accept: (_t, conn) => conn.destroy() },
      logger: createLogger('fct', 'warn'),
      // On the jail's file system: its snapshot files are linked into each jail.
      templateDir: path.join(stateDir, 'templates'),
    });
  });
  after(async () => {
    delete process.env.LIA_FC_STANDIN_LOG;
    for (const id of (await d?.list()) ?? []) await d.destroy(id).catch(() => {});
    if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test('template: boot + pause + snapshot once; two VMs loaded from it; suspend/resume of one leaves it as it was', {
    skip: !root && 'the jailer (and its stand-in) needs root and cgroups',
  }, async () => {
    const t = await d.ensureTemplate(size, () => {});
    const built = calls()
      .map((c) => `${c.method} ${c.url} ${c.status}`)
      .filter((c) => !c.startsWith('GET'));
    assert.deepEqual(built, [
      'PUT /machine-config 204',
      'PUT /boot-source 204',
      'PUT /drives/rootfs 204',
      'PUT /vsock 204',
      'PUT /actions 204',
      'PATCH /vm 204',
      'PUT /snapshot/create 204',
    ]);
    const before = Object.fromEntries(
      [t.state, t.mem, t.disk].map((f) => [f, `${fs.statSync(f).size} ${fs.statSync(f).mtimeMs}`]),
    );
    fs.writeFileSync(apiLog, '');
    for (const id of ['t_fctwin0001', 't_fctwin0002']) {
      const info = await d.boot({ taskId: id, ...size }, () => {});
      assert.deepEqual(info, { from: 'template', template: t.key });
      const mine = calls().filter((c) => c.pid === vmmPid(id) && c.method !== 'GET');
      // Nothing configured: the template's snapshot, its memory file as the backend.
      assert.deepEqual(
        mine.map((c) => `${c.method} ${c.url} ${c.status}`),
        ['PUT /snapshot/load 204'],
      );
      assert.deepEqual(mine[0]!.body.mem_backend, { backend_type: 'File', backend_path: 'template.mem' });
      assert.equal(mine[0]!.body.resume_vm, true);
      assert.ok((await hello(id)).version >= 1, 'the guest answers');
    }
    // A VM of the template suspends to a snapshot of its own, and comes back from it.
    const { snapshotBytes } = await d.suspend('t_fctwin0001', () => {});
    assert.ok(snapshotBytes > 0);
    await d.restore('t_fctwin0001', () => {});
    const loads = calls().filter((c) => c.pid === vmmPid('t_fctwin0001') && c.url === '/snapshot/load');
    assert.equal(loads.at(-1)!.body.mem_backend.backend_path, 'snapshot.mem', 'its own snapshot');
    await hello('t_fctwin0001');
    for (const id of ['t_fctwin0001', 't_fctwin0002']) await d.destroy(id);
    const after = Object.fromEntries(
      [t.state, t.mem, t.disk].map((f) => [f, `${fs.statSync(f).size} ${fs.statSync(f).mtimeMs}`]),
    );
    assert.deepEqual(after, before, 'the template is untouched, and outlives its VMs');
    // Found again: not rebuilt.
    fs.writeFileSync(apiLog, '');
    assert.equal((await d.ensureTemplate(size, () => {})).key, t.key);
    assert.deepEqual(calls(), []);
  });
});
