/**
 * The agent sidecar: owns the agent's PTY inside the VM (or, for the local driver, next to it),
 * numbers its output and keeps every chunk until the host acknowledges it. The host worker is
 * only ever a client, so a worker restart never touches the agent.
 *
 *   sidecar --listen unix:/path/sidecar.sock --workdir DIR [--pidfile FILE] [--spare WORKER_PID]
 *   sidecar --serial /dev/virtio-ports/lia.sidecar --workdir DIR
 * and in a VM, the egress (a guest has no network card; vm/channel/mux.ts):
 *   --egress-serial DEV | --egress-listen unix:PATH   the host's end of the egress streams
 *   --proxy-listen 127.0.0.1:3128                      where the agent's HTTP(S) clients go
 *   --agent-user NAME                                  run the agent as this user, not as root
 *   --agent-socket PATH    the agent's door (its permission hook, its conversation driver):
 *                          default /run/lia-agent/agent.sock with --agent-user, else ../agent.sock
 *
 * It works in DIR by relative paths only, so the local driver can start it ahead of time in a
 * spare folder and rename that folder to a task's (`--spare`: until a host first connects, it
 * also exits with the process that started it, so an unused spare never outlives its worker).
 *
 * Bundled into one file (vm/sidecar/build.ts); its only dependency is node-pty.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import * as pty from 'node-pty';
import { MuxSession } from '../channel/mux.js';
import { AGENT_SOCKET_ENV } from '../guest/agent-protocol.js';
import {
  encodeFrame,
  FrameDecoder,
  type GuestIdentity,
  type HostMessage,
  PROTOCOL_VERSION,
  type SidecarMessage,
  SYNC,
} from '../protocol.js';
import { AgentEndpoint } from './agent-endpoint.js';
import { workingDiff } from './diff.js';
import { checkoutRepo, commitAndPush, type GitUser, homeOf } from './repo.js';

/** Unacknowledged output beyond this pauses the PTY: the agent blocks instead of memory growing. */
const PAUSE_ABOVE_BYTES = 32 * 1024 * 1024;
const RESUME_BELOW_BYTES = 8 * 1024 * 1024;
/**
 * Bytes from several PTY reads within this window go out as one chunk (fewer rows under heavy
 * output). The first read after a quiet moment (a keystroke's echo) goes out at once.
 */
const COALESCE_MS = 2;
const MAX_CHUNK_BYTES = 256 * 1024;

const { values: opts } = parseArgs({
  options: {
    listen: { type: 'string' },
    serial: { type: 'string' },
    workdir: { type: 'string' },
    pidfile: { type: 'string' },
    /** The pid of the worker that started this spare: it exits when that one is gone. */
    spare: { type: 'string' },
    'egress-serial': { type: 'string' },
    'egress-listen': { type: 'string' },
    'proxy-listen': { type: 'string' },
    'agent-user': { type: 'string' },
    'agent-socket': { type: 'string' },
    /** In a VM: the start message's identity (hostname, machine-id, RNG seed, clock) is applied. */
    'apply-identity': { type: 'boolean' },
  },
});
if (!opts.workdir || (!opts.listen && !opts.serial)) {
  process.stderr.write(
    'usage: sidecar (--listen unix:PATH | --serial DEVICE) --workdir DIR [--pidfile FILE]\n',
  );
  process.exit(2);
}
/** The agent's user: its own uid, so it can neither signal nor inspect this (root) process. */
const agentUser = opts['agent-user'] ? lookupUser(opts['agent-user']) : undefined;
if (agentUser && process.getuid?.() === 0) process.setgroups?.([]);
fs.mkdirSync(opts.workdir, { recursive: true });
if (agentUser) fs.chownSync(opts.workdir, agentUser.uid, agentUser.gid);
process.chdir(opts.workdir);

function lookupUser(name: string): { uid: number; gid: number } {
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  process.stderr.write(`sidecar: no user ${name} in /etc/passwd\n`);
  process.exit(2);
}
/** Git runs as the agent (issue 20): the checkout is the agent's, and so is its git config. */
const gitUser: GitUser | undefined = agentUser
  ? { ...agentUser, home: homeOf(opts['agent-user']!) ?? `/home/${opts['agent-user']}` }
  : undefined;
/** The repository's checkout (a `repo` message), done before the agent starts. */
let repoPrep: Promise<void> = Promise.resolve();
let repoPending = false;
let repoDir: string | undefined;
/** Typed while the agent waits for the checkout: given to it once it starts (bounded). */
let early: Buffer[] | undefined;
let earlyBytes = 0;
const EARLY_MAX_BYTES = 1024 * 1024;
/** Relative on purpose: the folder may be renamed under us (see above). */
const workdir = '.';
let hostSeen = false;
if (opts.spare) {
  // The worker names itself: a spare started just as its worker was killed would otherwise take
  // its new parent (init) for the worker, and never leave.
  const parent = Number(opts.spare);
  const watch = setInterval(() => {
    if (hostSeen) clearInterval(watch);
    else if (process.ppid !== parent) process.exit(0);
  }, 500);
}

// ---- agent state -------------------------------------------------------------------------------

let agent: pty.IPty | undefined;
let exited: { code: number | null; signal: string | null } | undefined;
let nextSeq = 1;
const unacked: { seq: number; data: Buffer }[] = [];
let unackedBytes = 0;
let paused = false;
let pendingOut: Buffer[] = [];
let pendingBytes = 0;
let coalesceTimer: NodeJS.Timeout | undefined;
let lastSealAt = 0;

/** The connected host (at most one) and the seq it wants next (undefined until it attaches). */
let host: { stream: Duplex; wantSeq?: number } | undefined;

function send(m: SidecarMessage, body?: Buffer): void {
  const h = host;
  if (!h || h.stream.destroyed) return;
  h.stream.write(encodeFrame(m, body));
}

/**
 * The agent's door (questions before tool uses, follow-up turns). An absolute path, resolved now:
 * the local driver may rename the folder above the working directory, and the socket moves with it.
 */
const agentDoor = new AgentEndpoint(
  path.resolve(opts['agent-socket'] ?? (agentUser ? '/run/lia-agent/agent.sock' : '../agent.sock')),
  (m, body) => send(m, body),
);
agentDoor.listen(agentUser);

function sealChunk(): void {
  if (coalesceTimer) clearTimeout(coalesceTimer);
  coalesceTimer = undefined;
  if (!pendingBytes) return;
  lastSealAt = performance.now();
  const data = pendingOut.length === 1 ? pendingOut[0]! : Buffer.concat(pendingOut);
  pendingOut = [];
  pendingBytes = 0;
  const chunk = { seq: nextSeq++, data };
  unacked.push(chunk);
  unackedBytes += data.length;
  if (!paused && unackedBytes > PAUSE_ABOVE_BYTES && agent) {
    agent.pause();
    paused = true;
  }
  if (host?.wantSeq !== undefined && chunk.seq >= host.wantSeq)
    send({ type: 'output', seq: chunk.seq }, data);
}

function onOutput(data: Buffer): void {
  pendingOut.push(data);
  pendingBytes += data.length;
  if (pendingBytes >= MAX_CHUNK_BYTES || performance.now() - lastSealAt > COALESCE_MS) sealChunk();
  else if (!coalesceTimer) coalesceTimer = setTimeout(sealChunk, COALESCE_MS);
}

function ack(seq: number): void {
  while (unacked.length && unacked[0]!.seq <= seq) unackedBytes -= unacked.shift()!.data.length;
  if (paused && unackedBytes < RESUME_BELOW_BYTES && agent) {
    agent.resume();
    paused = false;
  }
}

function safeName(name: string): string | undefined {
  const base = path.basename(name);
  if (base !== name || base === '.' || base === '..' || base.includes('\0') || base.length > 255)
    return undefined;
  return base;
}

/**
 * The identity helper: a Perl process (perl-base is in every Debian) started with the sidecar,
 * so it is already running — parsed, loaded — in a template's snapshot, and setting a restored
 * VM's identity costs no process start (hundreds of ms under emulation). Node.js has no ioctl
 * nor settimeofday; Perl has both. For each line `SEEDHEX SECONDS NANOSECONDS` it:
 *   - RNDADDENTROPY: mixes the host's seed into the kernel's pool, credited;
 *   - RNDRESEEDCRNG: makes the CRNG (and every per-CPU one) take new keys from the pool now,
 *     not at its next scheduled reseed — until then two VMs restored from one template would
 *     give the same "random" bytes (/dev/urandom, getrandom(), /proc/sys/kernel/random/uuid);
 *   - clock_settime(CLOCK_REALTIME): the host's clock (a template's is as old as the template);
 * and answers `ok` or what failed.
 */
const IDENTITY_HELPER = String.raw`
$| = 1;
while (my $line = <STDIN>) {
  chomp $line;
  my ($hex, $sec, $nsec) = split / /, $line;
  my @err;
  my $seed = pack("H*", $hex);
  if (open(my $r, ">", "/dev/urandom")) {
    my $info = pack("ii", length($seed) * 8, length($seed)) . $seed;
    ioctl($r, 0x40085203, $info) or push @err, "RNDADDENTROPY: $!";
    ioctl($r, 0x5207, 0) or push @err, "RNDRESEEDCRNG: $!";
    close $r;
  } else { push @err, "/dev/urandom: $!"; }
  my $ts = pack("q q", $sec, $nsec);
  syscall(227, 0, $ts) == 0 or push @err, "clock_settime: $!";
  print(@err ? "err " . join("; ", @err) . "\n" : "ok\n");
}
`;

let identityHelper: ChildProcessWithoutNullStreams | undefined;
if (opts['apply-identity']) {
  identityHelper = spawn('perl', ['-e', IDENTITY_HELPER], { stdio: ['pipe', 'pipe', 'pipe'] });
  identityHelper.on('error', (err) => {
    process.stderr.write(`sidecar: identity helper: ${err.message}\n`);
    identityHelper = undefined;
  });
  identityHelper.on('exit', () => {
    identityHelper = undefined;
  });
}

/** One request to the identity helper; resolves with its answer (or why there is none). */
function askIdentityHelper(line: string): Promise<string> {
  const h = identityHelper;
  if (!h) return Promise.resolve('err the identity helper is not running');
  return new Promise((resolve) => {
    let got = '';
    const timer = setTimeout(() => done('err the identity helper did not answer within 10 s'), 10_000);
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) done(got.trim());
    };
    const done = (answer: string) => {
      clearTimeout(timer);
      h.stdout.off('data', onData);
      resolve(answer);
    };
    h.stdout.on('data', onData);
    h.stdin.write(`${line}\n`);
  });
}

/** Makes this VM itself, not a copy of its template: hostname, machine-id, RNG, clock. */
async function applyIdentity(id: GuestIdentity): Promise<string[]> {
  const problems: string[] = [];
  const attempt = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
  };
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id.hostname)) problems.push('hostname: refused');
  else
    attempt('hostname', () => {
      fs.writeFileSync('/proc/sys/kernel/hostname', id.hostname);
      fs.writeFileSync('/etc/hostname', `${id.hostname}\n`);
    });
  if (!/^[0-9a-f]{32}$/.test(id.machineId)) problems.push('machine-id: refused');
  else attempt('machine-id', () => fs.writeFileSync('/etc/machine-id', `${id.machineId}\n`, { mode: 0o444 }));
  problems.push(...(await seedAndSetClock(id.seed, id.timeMs)));
  return problems;
}

/** Mixes the host's seed into the kernel's pool (credited, then a reseed) and sets the clock. */
async function seedAndSetClock(seed: string, timeMs: number): Promise<string[]> {
  if (!/^([0-9a-f]{2}){16,256}$/.test(seed) || !Number.isSafeInteger(timeMs) || timeMs <= 0)
    return ['seed or clock: refused'];
  const problems: string[] = [];
  // Mixed in at once by a plain write (uncredited), whatever happens to the helper.
  try {
    fs.writeFileSync('/dev/urandom', Buffer.from(seed, 'hex'));
  } catch (err) {
    problems.push(`rng: ${(err as Error).message}`);
  }
  const answer = await askIdentityHelper(
    `${seed} ${Math.floor(timeMs / 1000)} ${(timeMs % 1000) * 1_000_000}`,
  );
  if (answer !== 'ok') problems.push(answer.replace(/^err /, ''));
  return problems;
}

/** While the identity is being set, what the host sends waits (in order) for the agent. */
let startQueue: { m: HostMessage; body: Buffer }[] | undefined;

function start(m: Extract<HostMessage, { type: 'start' }>): void {
  if (agent || exited) {
    send({ type: 'started', pid: agent?.pid ?? 0 }); // a retried start: already done
    return;
  }
  if (opts['apply-identity'] && m.identity && !startQueue) {
    const identity = m.identity;
    startQueue = [];
    void applyIdentity(identity).then((problems) => {
      if (problems.length) process.stderr.write(`sidecar: identity: ${problems.join('; ')}\n`);
      const queued = startQueue ?? [];
      startQueue = undefined;
      start({ ...m, identity: undefined });
      for (const q of queued) handle(q.m, q.body);
    });
    return;
  }
  try {
    // The agent's environment is exactly what the host sent: nothing of the sidecar's leaks in.
    agent = pty.spawn(m.command, m.args, {
      name: m.env.TERM ?? 'xterm-256color',
      cols: m.cols,
      rows: m.rows,
      cwd: m.cwd ?? workdir,
      // The one thing the sidecar adds: where its door is (the folder may have been renamed).
      env: { ...m.env, [AGENT_SOCKET_ENV]: agentSocketPath() },
      encoding: null,
      ...(agentUser ? { uid: agentUser.uid, gid: agentUser.gid } : {}),
    });
  } catch (err) {
    exited = { code: 127, signal: null };
    const msg = `could not start ${m.command}: ${(err as Error).message}`;
    onOutput(Buffer.from(`${msg}\r\n`));
    sealChunk();
    send({ type: 'error', message: msg });
    send({ type: 'exit', code: 127, signal: null, message: msg });
    return;
  }
  if (opts.pidfile) fs.writeFileSync(opts.pidfile, String(agent.pid));
  // What was typed while the checkout ran goes to the agent now that it exists (start may have
  // waited for the identity as well, so this is the one place that knows).
  for (const b of early ?? []) agent.write(b);
  early = undefined;
  earlyBytes = 0;
  agent.onData((d) => onOutput(typeof d === 'string' ? Buffer.from(d, 'utf8') : (d as Buffer)));
  agent.onExit(({ exitCode, signal }) => {
    // Let the last reads of the PTY arrive before the exit is reported after them.
    setTimeout(() => {
      sealChunk();
      exited = { code: signal ? null : exitCode, signal: signal ? `signal ${signal}` : null };
      agent = undefined;
      if (host?.wantSeq !== undefined) send({ type: 'exit', ...exited });
    }, 50);
  });
  send({ type: 'started', pid: agent.pid });
}

/** The door's path as it is now (a local sidecar's folder is renamed after it started). */
function agentSocketPath(): string {
  if (opts['agent-socket'] || agentUser) return agentDoor.socketPath;
  return path.resolve(process.cwd(), '..', 'agent.sock');
}

function handle(m: HostMessage, body: Buffer): void {
  if (startQueue && m.type !== 'hello' && m.type !== 'ping' && m.type !== 'ack' && m.type !== 'attach') {
    startQueue.push({ m, body });
    return;
  }
  switch (m.type) {
    case 'hello':
      if (host) host.wantSeq = undefined;
      send({
        type: 'hello',
        version: PROTOCOL_VERSION,
        agent: agent ? 'running' : exited ? 'exited' : 'idle',
        nextSeq,
        pid: agent?.pid,
      });
      return;
    case 'attach': {
      if (!host) return;
      sealChunk();
      host.wantSeq = m.fromSeq;
      for (const c of unacked) if (c.seq >= m.fromSeq) send({ type: 'output', seq: c.seq }, c.data);
      if (exited && !agent) send({ type: 'exit', ...exited });
      agentDoor.onAttach();
      return;
    }
    case 'ack':
      ack(m.seq);
      return;
    case 'start':
      if (!repoPending) {
        start(repoDir && !m.cwd ? { ...m, cwd: repoDir } : m);
        return;
      }
      // After the repository's checkout; the agent then works in it, and gets what was typed.
      early ??= [];
      void repoPrep.then(() => start(repoDir && !m.cwd ? { ...m, cwd: repoDir } : m));
      return;
    case 'repo':
      if (agent || exited) return;
      repoPending = true;
      repoPrep = repoPrep.then(async () => {
        // The kernel's realpath, not path.resolve: Node caches the cwd, and a local sidecar's folder is renamed under it.
        repoDir ??= await checkoutRepo(m, fs.realpathSync.native(workdir), gitUser, (b) => onOutput(b)).catch(
          (err: Error) => {
            onOutput(Buffer.from(`Lia: the checkout failed: ${err.message}\r\n`));
            return undefined;
          },
        );
        repoPending = false;
      });
      return;
    case 'refresh':
      // Only in a VM, and not while the start's identity is being applied (it sets both).
      if (!opts['apply-identity'] || startQueue) return;
      void seedAndSetClock(m.seed, m.timeMs).then((problems) => {
        if (problems.length) process.stderr.write(`sidecar: refresh: ${problems.join('; ')}\n`);
      });
      return;
    case 'git':
      if (m.op === 'diff') {
        void workingDiff(repoDir, gitUser).then(
          (r) =>
            r.ok
              ? send({ type: 'diff-result', id: m.id, ok: true }, r.body)
              : send({ type: 'diff-result', id: m.id, ok: false, error: r.error.slice(0, 3900) }),
          (err: Error) =>
            send({ type: 'diff-result', id: m.id, ok: false, error: err.message.slice(0, 3900) }),
        );
        return;
      }
      void commitAndPush(m, repoDir, gitUser).then(
        (r) => send({ type: 'git-result', id: m.id, ...r }),
        (err: Error) => send({ type: 'git-result', id: m.id, ok: false, output: err.message }),
      );
      return;
    case 'file': {
      const name = safeName(m.name);
      if (!name) {
        send({ type: 'error', message: `refused file name ${JSON.stringify(m.name)}` });
        return;
      }
      fs.writeFileSync(path.join(workdir, name), body, { mode: m.mode ?? 0o644 });
      if (agentUser) fs.chownSync(path.join(workdir, name), agentUser.uid, agentUser.gid);
      return;
    }
    case 'stdin':
      if (!agent && early && earlyBytes + body.length <= EARLY_MAX_BYTES) {
        early.push(Buffer.from(body));
        earlyBytes += body.length;
      } else agent?.write(body);
      return;
    case 'resize':
      if (agent && m.cols > 0 && m.rows > 0) agent.resize(m.cols, m.rows);
      return;
    case 'ping':
      send({ type: 'pong', id: m.id });
      return;
    case 'answer':
      agentDoor.answer(m);
      return;
    case 'turn':
      agentDoor.turn(m.n, body.toString('utf8'));
      return;
  }
}

/**
 * A connection becomes the host when its SYNC arrives (a bare connect, e.g. a readiness probe,
 * takes nothing over); everything before the SYNC is discarded.
 */
function serve(stream: Duplex): void {
  const decoder = new FrameDecoder<HostMessage>(() => {
    hostSeen = true;
    if (host && host.stream !== stream) host.stream.destroy();
    host = { stream };
    stream.write(SYNC);
  });
  stream.on('data', (chunk: Buffer) => {
    let frames: ReturnType<typeof decoder.push>;
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      process.stderr.write(`sidecar: dropping a bad connection: ${(err as Error).message}\n`);
      stream.destroy();
      return;
    }
    for (const f of frames) if (host?.stream === stream) handle(f.header, f.body);
  });
  const gone = () => {
    if (host?.stream === stream) host = undefined;
  };
  stream.on('close', gone);
  stream.on('error', gone);
}

/**
 * A virtio-serial port as a stream. The port is one long-lived stream; host sessions are told
 * apart by SYNC. While no host is connected a read returns 0 at once (and a write blocks), so
 * reads are retried on a short timer rather than ending the stream.
 */
function openSerial(device: string): Duplex {
  const fd = fs.openSync(device, 'r+');
  const writeAll = (chunk: Buffer, cb: (err?: Error | null) => void): void => {
    fs.write(fd, chunk, (err, n) => {
      if (err) return cb(err);
      if (n < chunk.length) return writeAll(chunk.subarray(n), cb);
      cb(null);
    });
  };
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      writeAll(chunk, cb);
    },
  });
  const buf = Buffer.alloc(256 * 1024);
  const readLoop = (): void => {
    fs.read(fd, buf, 0, buf.length, null, (err, n) => {
      if (err) {
        process.stderr.write(`sidecar: reading ${device}: ${err.message}\n`);
        setTimeout(readLoop, 200);
        return;
      }
      if (n === 0) {
        setTimeout(readLoop, 50);
        return;
      }
      stream.push(Buffer.from(buf.subarray(0, n)));
      readLoop();
    });
  };
  readLoop();
  return stream;
}

function listenUnix(where: string, onConn: (s: net.Socket) => void): void {
  fs.rmSync(where, { force: true });
  const server = net.createServer({ allowHalfOpen: false }, onConn);
  server.listen(where, () => fs.chmodSync(where, 0o600));
}

if (opts.listen) listenUnix(opts.listen.replace(/^unix:/, ''), (sock) => serve(sock));
else if (opts.serial) serve(openSerial(opts.serial));

// ---- egress: the agent's connections, carried as streams to the host's proxy ------------------

/** Connections accepted while no host is attached wait this long, this many at most. */
const EGRESS_WAIT_MS = 30_000;
const EGRESS_MAX_WAITING = 32;

if (opts['proxy-listen'] && (opts['egress-serial'] || opts['egress-listen'])) {
  let current: MuxSession | undefined;
  const waiting: net.Socket[] = [];
  const bridge = (sock: net.Socket, session: MuxSession) => {
    let st: ReturnType<MuxSession['open']>;
    try {
      st = session.open();
    } catch {
      sock.destroy();
      return;
    }
    sock.setNoDelay(true);
    st.on('error', () => sock.destroy());
    sock.on('error', () => st.destroy());
    // The agent's socket is gone: nothing here can read what the host still sends.
    sock.on('close', () => st.destroy());
    st.on('close', () => sock.destroy());
    sock.pipe(st);
    st.pipe(sock);
    sock.resume();
  };
  const adopt = (channel: Duplex) => {
    const s = new MuxSession(channel, { role: 'guest' });
    s.on('ready', () => {
      if (current && current !== s) current.close();
      current = s;
      for (const sock of waiting.splice(0)) if (!sock.destroyed) bridge(sock, s);
    });
    s.on('close', () => {
      if (current === s) current = undefined;
    });
  };
  if (opts['egress-serial']) adopt(openSerial(opts['egress-serial']));
  else listenUnix(opts['egress-listen']!.replace(/^unix:/, ''), (sock) => adopt(sock));

  const [host, port] = opts['proxy-listen'].split(':');
  net
    .createServer({ pauseOnConnect: true, allowHalfOpen: true }, (sock) => {
      if (current?.isReady) return bridge(sock, current);
      if (waiting.length >= EGRESS_MAX_WAITING) return void sock.destroy();
      waiting.push(sock);
      setTimeout(() => {
        const i = waiting.indexOf(sock);
        if (i < 0) return; // bridged meanwhile
        waiting.splice(i, 1);
        sock.destroy();
      }, EGRESS_WAIT_MS).unref();
    })
    .listen(Number(port), host);
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(sig, () => {
    agent?.kill('SIGKILL');
    process.exit(0);
  });
}
