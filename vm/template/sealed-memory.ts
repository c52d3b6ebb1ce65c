/**
 * A template's memory, held by the host as a sealed memfd that every VM of the template maps
 * private (copy-on-write).
 *
 * Why not the template's memory file itself: QEMU 7.2 opens a `memory-backend-file` read-write
 * (`open(path, O_RDWR)`, also with `share=off`; only QEMU 8.2's `rom=off` opens it read-only),
 * and each VM's QEMU runs as a uid of its own. The file would have to be writable by every VM's
 * uid — one VMM taken over by its guest could then rewrite the memory every later VM starts
 * from. A memfd sealed against writes (F_SEAL_WRITE, GROW, SHRINK, SEAL) can be opened
 * read-write by anyone handed it (memfds are mode 0777) and mapped private, but never written,
 * grown or shrunk, by anyone, root included. Its pages are in shared memory once per host, and
 * VMs share every page none of them wrote.
 *
 * Only the pages the template's guest wrote take memory: zero pages stay holes.
 *
 * Node.js has no memfd_create: a short Perl helper makes the memfd, fills it from the file,
 * seals it and waits; the worker opens it through /proc/<helper>/fd/<n> (the same inode) and
 * the helper exits. The worker keeps the descriptor for its life (a restarted worker makes a
 * new one; running VMs keep theirs mapped).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';

const HELPER = String.raw`
use strict;
my ($src, $size) = @ARGV;
my $name = "lia-template-memory";
my $fd = syscall(319, $name, 2); # memfd_create(name, MFD_ALLOW_SEALING)
die "memfd_create: $!\n" if $fd < 0;
open(my $m, "+<&=", $fd) or die "fdopen: $!\n";
binmode $m;
open(my $in, "<", $src) or die "$src: $!\n";
binmode $in;
my $buf;
while (my $n = sysread($in, $buf, 1 << 16)) {
  # Pages the guest never wrote stay holes: no memory for them, here or in any VM.
  if ($buf =~ /\A\0*\z/) { sysseek($m, $n, 1) or die "seek: $!\n"; next; }
  my $off = 0;
  while ($off < $n) { my $w = syswrite($m, $buf, $n - $off, $off); die "write: $!\n" unless defined $w; $off += $w; }
}
truncate($m, $size) or die "truncate: $!\n";
# F_ADD_SEALS (1033): F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
fcntl($m, 1033, 15) or die "seal: $!\n";
$| = 1;
print "$$ $fd\n";
<STDIN>;
`;

/** Opens a sealed, read-only-forever copy of `file` in shared memory; returns its descriptor. */
export async function sealedMemory(file: string): Promise<number> {
  const size = fs.statSync(file).size;
  const p = spawn('perl', ['-e', HELPER, file, String(size)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => {
    out += d.toString();
  });
  p.stderr.on('data', (d) => {
    err += d.toString();
  });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      p.on('error', reject);
      p.on('exit', (code) => reject(new Error(`the memory helper exited (${code}): ${err.trim()}`)));
      const check = () => {
        if (out.includes('\n')) resolve(out.trim());
        else p.stdout.once('data', check);
      };
      check();
    });
    const [pid, n] = line.split(' ');
    const fd = fs.openSync(`/proc/${pid}/fd/${n}`, 'r');
    if (fs.fstatSync(fd).size !== size) throw new Error('the sealed memory has the wrong size');
    return fd;
  } finally {
    p.stdin.end();
    p.kill();
  }
}
