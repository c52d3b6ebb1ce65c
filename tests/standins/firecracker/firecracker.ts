/**
 * A stand-in for the Firecracker VMM, started by the stand-in jailer: it drops to the VM's
 * uid:gid, serves Firecracker's REST API on its Unix socket with every request checked against
 * Firecracker's own schema (tests/fixtures/firecracker-api-v1.16.1.yaml) and refused with
 * Firecracker's error shape, follows Firecracker's state machine (configure, InstanceStart,
 * pause/resume, snapshot create only when paused, snapshot load only on a fresh VMM), opens
 * the kernel, initramfs and drives as that uid (so a file the driver left unreadable fails
 * here as it would there), and serves hybrid vsock (`CONNECT <port>` / `OK <port>`) to a
 * minimal guest: port 1024 answers the sidecar's hello, port 1025 the egress streams' hello.
 * The guest's "memory" is a counter of the hellos it answered: it goes into the snapshot's
 * memory file and comes back on load, so a restore is seen to carry the guest's state.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MuxSession } from '../../../vm/channel/mux.js';
import { encodeFrame, FrameDecoder, PROTOCOL_VERSION, SYNC } from '../../../vm/protocol.js';
import { checkRequest, loadRoutes } from './schema.js';

if (process.argv.includes('--version')) {
  process.stdout.write("Firecracker v1.16.1 (Lia's stand-in)\n");
  process.exit(0);
}
const { values } = parseArgs({
  options: {
    chroot: { type: 'string' },
    uid: { type: 'string' },
    gid: { type: 'string' },
    id: { type: 'string' },
    'api-sock': { type: 'string' },
  },
  strict: false,
});
const chroot = String(values.chroot);
const log = process.env.LIA_FC_STANDIN_LOG ? fs.openSync(process.env.LIA_FC_STANDIN_LOG, 'a') : undefined;
// The jail is its root: paths are taken from there (no chroot from Node.js, but no way out).
process.chdir(chroot);
// As the jailer does before exec: from here on, only what the VM's user may do.
process.setgroups?.([]);
process.setgid?.(Number(values.gid));
process.setuid?.(Number(values.uid));

/** A path as the jailed VMM sees it: inside the jail (the working directory), whatever it says. */
const inJail = (p: string) => `.${path.resolve('/', p)}`;
const routes = loadRoutes();

type State = 'Not started' | 'Running' | 'Paused';
let state: State = 'Not started';
interface Config {
  machine?: { vcpu_count: number; mem_size_mib: number };
  boot?: { kernel_image_path: string; initrd_path?: string; boot_args?: string };
  drives: Record<string, { path_on_host: string; is_read_only: boolean; is_root_device: boolean }>;
  vsock?: { guest_cid: number; uds_path: string };
}
let cfg: Config = { drives: {} };
let guest = { hellos: 0 };
let vsock: net.Server | undefined;
let configured = false;

class Fault extends Error {}

function openAs(p: string, flags: string, what: string): void {
  try {
    fs.closeSync(fs.openSync(inJail(p), flags));
  } catch (err) {
    throw new Fault(`Cannot open the ${what} ${p}: ${(err as NodeJS.ErrnoException).code}`);
  }
}

/** The guest side of vsock: Firecracker connects a host connection to a guest port. */
function startGuest(): void {
  if (!cfg.vsock) return;
  const uds = inJail(cfg.vsock.uds_path);
  vsock = net.createServer((sock) => {
    let head = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) {
        if (head.length > 64) sock.destroy();
        return;
      }
      sock.off('data', onData);
      const m = /^CONNECT (\d+)$/.exec(head.subarray(0, nl).toString('ascii'));
      const rest = head.subarray(nl + 1);
      // A paused guest does not accept; nothing listens on other ports.
      if (!m || state !== 'Running' || !['1024', '1025'].includes(m[1]!)) return void sock.destroy();
      sock.write(`OK ${1_073_741_824 + Math.floor(Math.random() * 1000)}\n`);
      if (m[1] === '1024') sidecar(sock, rest);
      else {
        new MuxSession(sock, { role: 'guest' });
        if (rest.length) sock.unshift(rest);
      }
    };
    sock.on('data', onData);
    sock.on('error', () => {});
  });
  vsock.listen(uds);
}

/** Just enough of the sidecar: SYNC, then a hello for each hello. */
function sidecar(sock: net.Socket, first: Buffer): void {
  const dec = new FrameDecoder<{ type: string }>(() => sock.write(SYNC));
  const feed = (d: Buffer) => {
    try {
      for (const f of dec.push(d))
        if (f.header.type === 'hello')
          sock.write(
            encodeFrame({ type: 'hello', version: PROTOCOL_VERSION, agent: 'idle', nextSeq: ++guest.hellos }),
          );
    } catch {
      sock.destroy();
    }
  };
  sock.on('data', feed);
  if (first.length) feed(first);
}

function handle(method: string, url: string, body: any): { status: number; json?: unknown } {
  const started = state !== 'Not started';
  const before = () => {
    if (started) throw new Fault('The requested operation is not supported after starting the microVM.');
    configured = true;
  };
  if (method === 'GET' && url === '/')
    return { status: 200, json: { id: values.id, state, vmm_version: '1.16.1', app_name: 'Firecracker' } };
  if (method === 'PUT' && url === '/machine-config') {
    before();
    cfg.machine = body;
    return { status: 204 };
  }
  if (method === 'PUT' && url === '/boot-source') {
    before();
    cfg.boot = body;
    return { status: 204 };
  }
  if (method === 'PUT' && url.startsWith('/drives/')) {
    before();
    cfg.drives[body.drive_id] = body;
    return { status: 204 };
  }
  if (method === 'PUT' && url === '/vsock') {
    before();
    cfg.vsock = body;
    return { status: 204 };
  }
  if (method === 'PUT' && url.startsWith('/network-interfaces/')) {
    before();
    return { status: 204 };
  }
  if (method === 'PUT' && url === '/actions') {
    if (body.action_type !== 'InstanceStart') return { status: 204 };
    if (started) throw new Fault('The microVM is already running.');
    if (!cfg.boot) throw new Fault('Cannot start microvm without kernel configuration.');
    openAs(cfg.boot.kernel_image_path, 'r', 'kernel');
    if (cfg.boot.initrd_path) openAs(cfg.boot.initrd_path, 'r', 'initrd');
    for (const d of Object.values(cfg.drives)) openAs(d.path_on_host, d.is_read_only ? 'r' : 'r+', 'drive');
    state = 'Running';
    startGuest();
    return { status: 204 };
  }
  if (method === 'PATCH' && url === '/vm') {
    if (!started) throw new Fault('The microVM is not running.');
    state = body.state === 'Paused' ? 'Paused' : 'Running';
    return { status: 204 };
  }
  if (method === 'PUT' && url === '/snapshot/create') {
    if (state !== 'Paused') throw new Fault('Create snapshot error: the microVM must be paused.');
    fs.writeFileSync(inJail(body.snapshot_path), JSON.stringify({ magic: 'fc-standin-snapshot', cfg }), {
      mode: 0o600,
    });
    // The guest's memory: its state, then the rest of its RAM (sparse).
    const mem = inJail(body.mem_file_path);
    fs.writeFileSync(mem, JSON.stringify(guest), { mode: 0o600 });
    fs.truncateSync(mem, (cfg.machine?.mem_size_mib ?? 128) * 2 ** 20);
    return { status: 204 };
  }
  if (method === 'PUT' && url === '/snapshot/load') {
    if (started || configured)
      throw new Fault('Loading a microVM snapshot not allowed after configuring boot-specific resources.');
    let snap: { magic?: string; cfg?: Config };
    try {
      snap = JSON.parse(fs.readFileSync(inJail(body.snapshot_path), 'utf8'));
    } catch (err) {
      throw new Fault(`Load snapshot error: cannot read the snapshot: ${(err as Error).message}`);
    }
    if (snap.magic !== 'fc-standin-snapshot' || !snap.cfg)
      throw new Fault('Load snapshot error: the snapshot is not a Firecracker snapshot (bad magic)');
    const memPath = body.mem_backend?.backend_path ?? body.mem_file_path;
    const raw = Buffer.alloc(4096);
    const fd = fs.openSync(inJail(memPath), 'r');
    fs.readSync(fd, raw, 0, raw.length, 0);
    fs.closeSync(fd);
    try {
      guest = JSON.parse(raw.subarray(0, raw.indexOf(0)).toString('utf8'));
    } catch {
      throw new Fault('Load snapshot error: the memory file does not hold the guest');
    }
    cfg = snap.cfg;
    // The drives are opened again by the path the snapshot holds.
    for (const d of Object.values(cfg.drives)) openAs(d.path_on_host, d.is_read_only ? 'r' : 'r+', 'drive');
    state = body.resume_vm ? 'Running' : 'Paused';
    startGuest();
    return { status: 204 };
  }
  throw new Fault(`${method} ${url} is in Firecracker's API but not in this stand-in`);
}

const server = http.createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (d: Buffer) => parts.push(d));
  req.on('end', () => {
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    const reply = (status: number, json?: unknown) => {
      res.writeHead(status, json === undefined ? {} : { 'content-type': 'application/json' });
      res.end(json === undefined ? undefined : JSON.stringify(json));
    };
    const checked = checkRequest(routes, method, url, Buffer.concat(parts).toString('utf8'));
    if ('fault' in checked) return reply(400, { fault_message: checked.fault });
    let out: { status: number; json?: unknown };
    try {
      out = handle(method, url, checked.body);
    } catch (err) {
      if (!(err instanceof Fault)) throw err;
      out = { status: 400, json: { fault_message: err.message } };
    }
    if (log !== undefined)
      fs.writeSync(
        log,
        `${JSON.stringify({ pid: process.pid, method, url, body: checked.body, status: out.status })}\n`,
      );
    reply(out.status, out.json);
  });
});
server.listen(inJail(String(values['api-sock'] ?? '/run/firecracker.socket')));
process.on('SIGTERM', () => process.exit(0));
