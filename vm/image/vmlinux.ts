/**
 * The uncompressed ELF kernel Firecracker boots, taken out of the distribution's own bzImage
 * (the same kernel QEMU boots): the bzImage header says where its compressed payload is, the
 * payload's magic says how it is compressed, the distribution's decompressor unpacks it. The
 * result must be an x86-64 ELF with a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), the 32-bit
 * entry point QEMU's microvm machine uses for an ELF kernel. Cached by the bzImage's hash.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { cacheRoot, type Say } from './base.js';

const DECOMPRESSORS: { name: string; magic: Buffer; cmd?: string[] }[] = [
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b]) },
  { name: 'lz4', magic: Buffer.from([0x02, 0x21, 0x4c, 0x18]), cmd: ['lz4', '-dc'] },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), cmd: ['zstd', '-dcq'] },
  {
    name: 'xz',
    magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
    cmd: ['xz', '-dc', '--single-stream'],
  },
  { name: 'bzip2', magic: Buffer.from('BZh'), cmd: ['bzip2', '-dc'] },
  { name: 'lzma', magic: Buffer.from([0x5d, 0x00, 0x00]), cmd: ['xz', '-dc', '--format=lzma'] },
];

/** The compressed kernel inside a bzImage, and how it is compressed. */
export function bzImagePayload(bz: Buffer): { payload: Buffer; compression: string } {
  if (bz.length < 0x260 || bz.readUInt32LE(0x202) !== 0x53726448) throw new Error('not a bzImage (no HdrS)');
  const setupSects = bz[0x1f1] || 4;
  const offset = bz.readUInt32LE(0x248);
  const length = bz.readUInt32LE(0x24c);
  const start = (setupSects + 1) * 512 + offset;
  const payload = bz.subarray(start, start + length);
  const d = DECOMPRESSORS.find((x) => payload.subarray(0, x.magic.length).equals(x.magic));
  if (!d) throw new Error(`unknown kernel compression (magic ${payload.subarray(0, 6).toString('hex')})`);
  return { payload, compression: d.name };
}

/** The ELF notes of a 64-bit little-endian ELF: [owner, type, desc] of every PT_NOTE. */
export function elfNotes(elf: Buffer): { owner: string; type: number; desc: Buffer }[] {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1)
    throw new Error('not a 64-bit little-endian ELF');
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  const notes: { owner: string; type: number; desc: Buffer }[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (elf.readUInt32LE(ph) !== 4) continue; // PT_NOTE
    let at = Number(elf.readBigUInt64LE(ph + 8));
    const end = at + Number(elf.readBigUInt64LE(ph + 32));
    while (at + 12 <= end) {
      const namesz = elf.readUInt32LE(at);
      const descsz = elf.readUInt32LE(at + 4);
      const type = elf.readUInt32LE(at + 8);
      const name = at + 12;
      const desc = name + Math.ceil(namesz / 4) * 4;
      notes.push({
        owner: elf.subarray(name, name + Math.max(0, namesz - 1)).toString('latin1'),
        type,
        desc: elf.subarray(desc, desc + descsz),
      });
      at = desc + Math.ceil(descsz / 4) * 4;
    }
  }
  return notes;
}

/** XEN_ELFNOTE_PHYS32_ENTRY: the PVH entry point. */
export const PVH_NOTE = 18;

export function hasPvhEntry(elf: Buffer): boolean {
  return elfNotes(elf).some((n) => n.owner === 'Xen' && n.type === PVH_NOTE);
}

function decompress(cmd: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    p.on('error', (e) =>
      reject(new Error(`${cmd[0]}: ${e.message} (it unpacks the guest kernel; apt-get install ${cmd[0]})`)),
    );
    // The payload may carry trailing bytes (the kernel's size); a decompressor that complains
    // about them after a whole stream is fine: the ELF check below decides.
    p.on('exit', (code) =>
      out.length
        ? resolve(Buffer.concat(out))
        : reject(new Error(`${cmd[0]} failed (${code}): ${err.trim()}`)),
    );
    p.stdin.on('error', () => {});
    p.stdin.end(input);
  });
}

/** The ELF `vmlinux` of this bzImage, extracted once and cached. */
export async function ensureVmlinux(bzImagePath: string, say: Say): Promise<string> {
  const bz = fs.readFileSync(bzImagePath);
  const hash = createHash('sha256').update(bz).digest('hex').slice(0, 16);
  const file = path.join(cacheRoot(), `vmlinux-${hash}`);
  if (fs.existsSync(file)) return file;
  const { payload, compression } = bzImagePayload(bz);
  say(`[image] extracting the ELF kernel (vmlinux) from the bzImage (${compression})…`);
  const d = DECOMPRESSORS.find((x) => x.name === compression)!;
  const elf = d.cmd ? await decompress(d.cmd, payload) : zlib.gunzipSync(payload);
  if (elf.readUInt32BE(0) !== 0x7f454c46) throw new Error('the unpacked kernel is not an ELF file');
  if (!hasPvhEntry(elf))
    throw new Error('the guest kernel has no PVH entry note (CONFIG_PVH): QEMU cannot boot it as an ELF');
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, elf, { mode: 0o644 });
  fs.renameSync(tmp, file);
  return file;
}
