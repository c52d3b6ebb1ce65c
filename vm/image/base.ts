/**
 * The guest's base image, from Debian's archive: a kernel (the `cloud` flavour: small, virtio
 * as modules) and a root file system made by debootstrap with Node.js, git, tini and Claude
 * Code from npm. Slow to build (minutes), so it is cached under ~/.cache/lia/image/base-<hash>,
 * keyed by everything that goes into it, and built once per change of those inputs.
 * Lia's own guest files (the sidecar, the guest's init) are not in it: they ride in the
 * initramfs (initrd.ts), so changing them does not rebuild this.
 *
 * The root file system is one raw ext4 file: Firecracker boots it as it is (a per-task copy),
 * QEMU through a qcow2 overlay per task. The agent gets a user of its own (`agent`, uid 1000):
 * the sidecar runs as root and the agent cannot signal or inspect it.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const GUEST_SUITE = 'bookworm';
export const KERNEL_PACKAGE = 'linux-image-cloud-amd64';
export const CLAUDE_CODE_VERSION = '2.1.331';
/** Packages of the guest beyond debootstrap's minbase. */
export const GUEST_PACKAGES = [
  'tini',
  'git',
  'ca-certificates',
  'curl',
  'iproute2',
  'procps',
  'e2fsprogs',
  // Node.js has no AF_VSOCK: under Firecracker, socat joins the vsock ports to the sidecar.
  'socat',
];
/** The agent's user in the guest. */
export const AGENT_USER = { name: 'agent', uid: 1000, home: '/home/agent' };
/** The image's own file system size; the task's disk (LIA__VM__DEFAULT_STORAGE_GB) may be larger. */
const ROOTFS_MB = 2048;

export interface BaseImage {
  dir: string;
  kernel: string;
  /** The kernel package's modules folder (lib/modules/<version>), for the initramfs. */
  modules: string;
  /** The root file system: raw ext4. */
  rootfs: string;
  /** A static busybox for the initramfs. */
  busybox: string;
  hash: string;
}

export type Say = (message: string) => void;

const here = import.meta.dirname;
const nodeBinary = () => fs.realpathSync(process.execPath);

export function cacheRoot(): string {
  const base = process.env.XDG_CACHE_HOME ?? path.join(process.env.HOME ?? '/root', '.cache');
  return path.join(base, 'lia', 'image');
}

function fileHash(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Everything the base image is made of; a change to any of it builds a new one. */
export function baseInputs(): Record<string, string> {
  return {
    suite: GUEST_SUITE,
    kernel: KERNEL_PACKAGE,
    packages: GUEST_PACKAGES.join(','),
    claudeCode: CLAUDE_CODE_VERSION,
    rootfsMb: String(ROOTFS_MB),
    node: `${process.version}:${fileHash(nodeBinary())}`,
    agent: `${AGENT_USER.name}:${AGENT_USER.uid}`,
    builder: fileHash(path.join(here, 'base.ts')),
  };
}

export function baseHash(): string {
  return createHash('sha256').update(JSON.stringify(baseInputs())).digest('hex').slice(0, 16);
}

/** Runs a command, streaming its output into `say` a line at a time (prefixed), failing loudly. */
export function run(say: Say, cmd: string, args: string[], opts: { cwd?: string; quiet?: boolean } = {}) {
  return new Promise<string>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let tail: string[] = [];
    const onLine = (chunk: Buffer) => {
      const text = chunk.toString();
      out += text;
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        tail = [...tail.slice(-19), line];
        if (!opts.quiet) say(`  ${cmd}: ${line.slice(0, 160)}`);
      }
    };
    child.stdout.on('data', onLine);
    child.stderr.on('data', onLine);
    child.on('error', (err) => reject(new Error(`${cmd}: ${err.message}`)));
    child.on('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}):\n${tail.join('\n')}`));
    });
  });
}

function requireTools(): void {
  const missing = ['debootstrap', 'mkfs.ext4', 'apt-get', 'dpkg-deb', 'npm'].filter(
    (t) => !(process.env.PATH ?? '').split(':').some((d) => fs.existsSync(path.join(d, t))),
  );
  if (missing.length)
    throw new Error(
      `building the guest image needs ${missing.join(', ')} (apt-get install debootstrap e2fsprogs dpkg; npm comes with Node)`,
    );
  if (process.getuid?.() !== 0)
    throw new Error('building the guest image needs root (debootstrap); run ./lia as root once to build it');
}

/** The debootstrap mirror: LIA_IMAGE_MIRROR, else the host's own Debian source. */
function mirror(): string {
  if (process.env.LIA_IMAGE_MIRROR) return process.env.LIA_IMAGE_MIRROR;
  for (const f of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    if (!fs.existsSync(f)) continue;
    const m = /(?:URIs:|deb)\s+(https?:\/\/\S+\/debian)\b(?!-security)/.exec(fs.readFileSync(f, 'utf8'));
    if (m) return m[1]!;
  }
  return 'http://deb.debian.org/debian';
}

export async function ensureBaseImage(say: Say): Promise<BaseImage> {
  const hash = baseHash();
  const dir = path.join(cacheRoot(), `base-${hash}`);
  const image: BaseImage = {
    dir,
    hash,
    kernel: path.join(dir, 'vmlinuz'),
    modules: path.join(dir, 'modules'),
    rootfs: path.join(dir, 'rootfs.ext4'),
    busybox: path.join(dir, 'busybox'),
  };
  if (fs.existsSync(path.join(dir, 'manifest.json'))) return image;
  requireTools();
  const started = Date.now();
  fs.mkdirSync(cacheRoot(), { recursive: true });
  const work = fs.mkdtempSync(path.join(cacheRoot(), `.build-${hash}-`));
  const step = (n: number, what: string) =>
    say(`[image] (${n}/6, ${((Date.now() - started) / 1000).toFixed(0)} s) ${what}`);
  try {
    step(1, `kernel: ${KERNEL_PACKAGE} from Debian ${GUEST_SUITE}`);
    const debs = path.join(work, 'debs');
    fs.mkdirSync(debs);
    // The meta package names the current kernel; download that one.
    const depends = await run(say, 'apt-cache', ['depends', KERNEL_PACKAGE], { quiet: true });
    const kpkg = /Depends:\s+(linux-image-\S+)/.exec(depends)?.[1];
    if (!kpkg) throw new Error(`apt-cache knows no ${KERNEL_PACKAGE}; run apt-get update`);
    await run(say, 'apt-get', ['download', '-q', kpkg, 'busybox-static'], { cwd: debs, quiet: true });
    const deb = (prefix: string) => path.join(debs, fs.readdirSync(debs).find((f) => f.startsWith(prefix))!);
    const kdir = path.join(work, 'kernel');
    await run(say, 'dpkg-deb', ['-x', deb('linux-image-'), kdir]);
    await run(say, 'dpkg-deb', ['-x', deb('busybox-static'), kdir]);
    const vmlinuz = fs.readdirSync(path.join(kdir, 'boot')).find((f) => f.startsWith('vmlinuz-'))!;
    const kver = vmlinuz.slice('vmlinuz-'.length);

    step(2, `root file system: debootstrap ${GUEST_SUITE} (minbase + ${GUEST_PACKAGES.join(' ')})`);
    const root = path.join(work, 'root');
    await run(say, 'debootstrap', [
      '--variant=minbase',
      `--include=${GUEST_PACKAGES.join(',')}`,
      GUEST_SUITE,
      root,
      mirror(),
    ]);

    step(3, `Node.js ${process.version} and Claude Code ${CLAUDE_CODE_VERSION}`);
    // The host's own Node binary: the sidecar's native module (node-pty) is built for it.
    fs.copyFileSync(nodeBinary(), path.join(root, 'usr/local/bin/node'));
    fs.chmodSync(path.join(root, 'usr/local/bin/node'), 0o755);
    await run(say, 'npm', [
      'install',
      '--global',
      '--prefix',
      path.join(root, 'usr/local'),
      '--no-audit',
      '--no-fund',
      '--os=linux',
      '--cpu=x64',
      '--libc=glibc',
      `@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}`,
    ]);

    step(4, `the agent's user (${AGENT_USER.name}, uid ${AGENT_USER.uid}) and clean-up`);
    await run(say, 'chroot', [
      root,
      '/usr/sbin/useradd',
      '--create-home',
      '--home-dir',
      AGENT_USER.home,
      '--uid',
      String(AGENT_USER.uid),
      '--user-group',
      '--shell',
      '/bin/bash',
      AGENT_USER.name,
    ]);
    fs.mkdirSync(path.join(root, 'work'), { mode: 0o755 });
    fs.chownSync(path.join(root, 'work'), AGENT_USER.uid, AGENT_USER.uid);
    fs.writeFileSync(path.join(root, 'etc/hostname'), 'lia-vm\n');
    fs.writeFileSync(path.join(root, 'etc/fstab'), '/dev/vda / ext4 rw 0 1\n');
    // No host resolver config in the guest: it resolves nothing itself, the proxy does.
    fs.writeFileSync(path.join(root, 'etc/resolv.conf'), '');
    for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists', 'root/.npm'])
      fs.rmSync(path.join(root, d), { recursive: true, force: true });

    step(5, `disk image: raw ext4 of ${ROOTFS_MB} MiB`);
    const out = path.join(work, 'out');
    fs.mkdirSync(out);
    // Sparse: the file takes the space of what is in it, not ROOTFS_MB.
    await run(say, 'mkfs.ext4', [
      '-q',
      '-F',
      '-L',
      'liaroot',
      '-d',
      root,
      path.join(out, 'rootfs.ext4'),
      `${ROOTFS_MB}M`,
    ]);
    fs.chmodSync(path.join(out, 'rootfs.ext4'), 0o644);
    fs.copyFileSync(path.join(kdir, 'boot', vmlinuz), path.join(out, 'vmlinuz'));
    fs.cpSync(path.join(kdir, 'lib/modules', kver), path.join(out, 'modules'), { recursive: true });
    fs.copyFileSync(path.join(kdir, 'bin/busybox'), path.join(out, 'busybox'));
    fs.chmodSync(path.join(out, 'busybox'), 0o755);

    step(6, 'done; caching it');
    const seconds = Math.round((Date.now() - started) / 1000);
    const manifest = {
      hash,
      inputs: baseInputs(),
      kernelPackage: kpkg,
      kernelVersion: kver,
      rootfsBytes: fs.statSync(path.join(out, 'rootfs.ext4')).blocks * 512,
      buildSeconds: seconds,
      builtAt: new Date().toISOString(),
    };
    fs.writeFileSync(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(out, dir);
    say(
      `[image] guest base image ${hash} built in ${seconds} s (${(manifest.rootfsBytes / 2 ** 20).toFixed(0)} MiB) → ${dir}`,
    );
    return image;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
