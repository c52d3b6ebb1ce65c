/**
 * The Firecracker driver's requests, checked against Firecracker's own API schema
 * (shared/reference/firecracker-api-v1.16.1.yaml) by a stand-in that serves that API on a Unix
 * socket; the hybrid vsock handshake; the jailer's arguments. Against a real Firecracker only
 * where one and a working KVM exist.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import YAML from 'yaml';
import { connectVsock } from '../../vm/channel/vsock.js';
import { FirecrackerApi, FirecrackerApiError } from '../../vm/drivers/firecracker/api.js';
import { type FirecrackerOptions, jailerArgs } from '../../vm/drivers/firecracker/driver.js';
import { probeKvm } from '../../vm/kvm-probe.js';
import { repoRoot } from '../helpers/env.js';

const specFile = path.join(repoRoot, 'tests', 'fixtures', 'firecracker-api-v1.16.1.yaml');

interface Route {
  re: RegExp;
  params: string[];
  method: string;
  schema?: object;
}

/** A stand-in Firecracker: every request must match a path, a method and the body schema. */
function loadRoutes(): { routes: Route[]; ajv: Ajv } {
  const spec = YAML.parse(fs.readFileSync(specFile, 'utf8'));
  const ajv = new Ajv({ strict: false, allErrors: true });
  // Swagger 2 integer widths; JSON numbers carry them, so they only need to be known.
  for (const f of ['int32', 'int64']) ajv.addFormat(f, true);
  ajv.addSchema({ definitions: spec.definitions }, 'fc');
  const routes: Route[] = [];
  for (const [p, ops] of Object.entries<
    Record<string, { parameters?: { in: string; schema?: { $ref?: string } }[] }>
  >(spec.paths)) {
    const params: string[] = [];
    const re = new RegExp(
      `^${p.replace(/\{(\w+)\}/g, (_m, name) => {
        params.push(name);
        return '([^/]+)';
      })}$`,
    );
    for (const [method, op] of Object.entries(ops)) {
      const body = op.parameters?.find((x) => x.in === 'body')?.schema;
      const schema = body?.$ref ? { $ref: `fc${body.$ref}` } : body;
      routes.push({ re, params, method: method.toUpperCase(), schema });
    }
  }
  return { routes, ajv };
}

class FirecrackerStandIn {
  readonly calls: { method: string; path: string; body: any }[] = [];
  private server!: http.Server;
  constructor(readonly socketPath: string) {}

  async start(): Promise<void> {
    const { routes, ajv } = loadRoutes();
    this.server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d) => parts.push(d));
      req.on('end', () => {
        const fail = (status: number, msg: string) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ fault_message: msg }));
        };
        const url = req.url ?? '/';
        const route = routes.find((r) => r.method === req.method && r.re.test(url));
        if (!route) return fail(400, `no such route in the schema: ${req.method} ${url}`);
        let body: any;
        try {
          body = parts.length ? JSON.parse(Buffer.concat(parts).toString('utf8')) : undefined;
        } catch {
          return fail(400, 'body is not JSON');
        }
        if (route.schema) {
          const validate = ajv.compile(route.schema);
          if (!validate(body)) return fail(400, `schema: ${ajv.errorsText(validate.errors)}`);
          // Firecracker requires a path id to equal the body's id.
          const m = route.re.exec(url)!;
          for (const [i, name] of route.params.entries()) {
            if ((body as Record<string, unknown>)[name] !== decodeURIComponent(m[i + 1]!))
              return fail(400, `${name} in the path and body differ`);
          }
        }
        this.calls.push({ method: req.method!, path: url, body });
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
  const standIn = new FirecrackerStandIn(path.join(dir, 'api.sock'));
  before(() => standIn.start());
  after(async () => {
    await standIn.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('boot, pause, snapshot and load: every request is valid', async () => {
    const api = new FirecrackerApi(standIn.socketPath);
    await api.putMachineConfig({ vcpu_count: 2, mem_size_mib: 512, smt: false });
    await api.putBootSource({ kernel_image_path: 'vmlinux', boot_args: 'console=ttyS0' });
    await api.putDrive({
      drive_id: 'rootfs',
      path_on_host: 'rootfs.ext4',
      is_root_device: true,
      is_read_only: false,
    });
    await api.putNetworkInterface({ iface_id: 'eth0', host_dev_name: 'tap0' });
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
        'PUT /network-interfaces/eth0',
        'PUT /vsock',
        'PUT /actions',
        'PATCH /vm',
        'PUT /snapshot/create',
        'PUT /snapshot/load',
        'PATCH /vm',
      ],
    );
    assert.deepEqual(standIn.calls[8]!.body.mem_backend, {
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
    // A required field missing is refused too.
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
        const line = d.toString();
        if (line === 'CONNECT 1024\n') {
          s.write('OK 1073741824\nhello-from-guest');
          s.on('data', (x) => s.write(x));
        } else s.end('FAILURE\n');
      });
    });
    await new Promise<void>((r) => server.listen(uds, r));
    const sock = await connectVsock(uds, 1024);
    const got = await new Promise<string>((resolve) => {
      let acc = '';
      sock.on('data', (d) => {
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

test('the jailer runs firecracker chrooted, as an unprivileged user, in cgroups', () => {
  const o: FirecrackerOptions = {
    firecrackerBin: '/usr/local/bin/firecracker',
    jailerBin: '/usr/local/bin/jailer',
    chrootBase: '/srv/jailer',
    kernelPath: 'k',
    rootfsPath: 'r',
    uid: 1234,
    gid: 1234,
  };
  const args = jailerArgs(o, 't_abcdefg234', {
    taskId: 't_abcdefg234',
    vcpus: 2,
    memoryMib: 512,
    storageGb: 1,
  });
  const at = (flag: string) => args[args.indexOf(flag) + 1];
  assert.equal(at('--id'), 't-abcdefg234');
  assert.equal(at('--uid'), '1234');
  assert.equal(at('--chroot-base-dir'), '/srv/jailer');
  assert.ok(args.includes('cpu.max=200000 100000'));
  assert.ok(args.includes(`memory.max=${576 * 1024 * 1024}`));
  assert.deepEqual(args.slice(args.indexOf('--')), ['--', '--api-sock', '/run/api.sock']);
});

test('a real Firecracker, where one and working KVM exist', async (t) => {
  const kvm = await probeKvm();
  const fc = ['/usr/local/bin/firecracker', '/usr/bin/firecracker'].find((p) => fs.existsSync(p));
  if (!fc || !kvm.usable) {
    const reason = !fc ? 'no firecracker binary on this machine' : `KVM is not usable: ${kvm.reason}`;
    t.diagnostic(`skipped: ${reason}`);
    t.skip(reason);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-fc-real-'));
  const { spawn } = await import('node:child_process');
  const sock = path.join(dir, 'api.sock');
  const child = spawn(fc, ['--api-sock', sock], { stdio: 'ignore' });
  try {
    while (!fs.existsSync(sock)) await new Promise((r) => setTimeout(r, 20));
    const api = new FirecrackerApi(sock);
    await api.putMachineConfig({ vcpu_count: 1, mem_size_mib: 128 });
    assert.ok(await api.describe());
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
