/**
 * Git's pkt-line framing, as far as the egress proxy needs it: reading the ref-update commands at
 * the start of a `git-receive-pack` request (hostile input: bounded, incremental, never more than
 * `maxHeadBytes` held) and writing the report a git client shows when a push is refused.
 *
 * A pkt-line is four hex digits giving its length (the four included), then the payload; `0000`
 * is a flush. A push request is: optional `shallow <oid>` lines, the commands
 * `<old-oid> <new-oid> <ref>` (the first one followed by NUL and the client's capabilities), a
 * flush, then push options (if negotiated) and the pack, which the proxy does not read. Before a
 * push too large for one buffer, git sends a probe: a flush alone.
 */

/** A pkt-line is at most this long (git's LARGE_PACKET_MAX). */
export const PKT_MAX = 65520;

export interface RefUpdate {
  oldOid: string;
  newOid: string;
  ref: string;
}

export type ReceivePackHead =
  /** `need`: nothing can be decided before the body holds at least this many bytes. */
  | { kind: 'more'; need: number }
  | {
      kind: 'done';
      commands: RefUpdate[];
      capabilities: string[];
      /** How many bytes of the body the commands and their flush took. */
      headLength: number;
    }
  | { kind: 'bad'; message: string };

export interface HeadLimits {
  /** Bytes of commands (flush included) held at most before the request is refused. */
  maxHeadBytes: number;
  /** Ref updates one push may carry. */
  maxCommands: number;
}

export const DEFAULT_HEAD_LIMITS: HeadLimits = { maxHeadBytes: 64 * 1024, maxCommands: 64 };

const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** A ref name as git's check-ref-format allows (a subset: printable ASCII without the forbidden characters). */
const REF = /^refs\/[\x21-\x7e]{1,1000}$/;
const FORBIDDEN_IN_REF = /[~^:?*[\\]|\.\.|@\{|\/\/|\/\.|\.lock(?:\/|$)|\/$|\.$/;

export function isZeroOid(oid: string): boolean {
  return /^0+$/.test(oid);
}

/** True for a full ref name git would accept (refs/…), false for anything odd. */
export function isValidRefName(ref: string): boolean {
  return REF.test(ref) && !FORBIDDEN_IN_REF.test(ref);
}

/** A branch name (without refs/heads/) that is a valid ref under refs/heads/. */
export function isValidBranchName(branch: string): boolean {
  return branch.length <= 200 && !branch.startsWith('/') && isValidRefName(`refs/heads/${branch}`);
}

function hexLength(b: Buffer, at: number): number | undefined {
  const s = b.toString('latin1', at, at + 4);
  return /^[0-9a-f]{4}$/.test(s) ? Number.parseInt(s, 16) : undefined;
}

/**
 * Reads the commands at the start of a receive-pack body. Feed it everything received so far
 * (the caller keeps at most `maxHeadBytes`): `more` until the flush after the commands arrives,
 * then `done`, or `bad` the moment the bytes cannot be a valid push or pass a limit.
 */
export function parseReceivePackHead(buf: Buffer, limits: HeadLimits = DEFAULT_HEAD_LIMITS): ReceivePackHead {
  const commands: RefUpdate[] = [];
  let capabilities: string[] = [];
  let at = 0;
  const bad = (message: string): ReceivePackHead => ({ kind: 'bad', message });
  for (;;) {
    if (at >= limits.maxHeadBytes) {
      return bad(`the ref updates take more than ${limits.maxHeadBytes} bytes`);
    }
    if (buf.length - at < 4) {
      return buf.length > limits.maxHeadBytes
        ? bad(`the ref updates take more than ${limits.maxHeadBytes} bytes`)
        : { kind: 'more', need: at + 4 };
    }
    const len = hexLength(buf, at);
    if (len === undefined) return bad('the request does not start with pkt-lines');
    if (len === 0) {
      // No ref update: git's probe (`0000` alone, sent before a large push to check auth);
      // receive-pack does nothing with it.
      return { kind: 'done', commands, capabilities, headLength: at + 4 };
    }
    if (len < 5) return bad(`a pkt-line of length ${len} is not allowed here`);
    if (len > PKT_MAX) return bad(`a pkt-line of ${len} bytes is longer than git allows (${PKT_MAX})`);
    if (at + len > limits.maxHeadBytes) {
      return bad(`the ref updates take more than ${limits.maxHeadBytes} bytes`);
    }
    if (buf.length < at + len) return { kind: 'more', need: at + len };
    let line = buf.subarray(at + 4, at + len);
    at += len;
    if (line[line.length - 1] === 0x0a) line = line.subarray(0, line.length - 1);
    const nul = line.indexOf(0);
    const text = (nul >= 0 ? line.subarray(0, nul) : line).toString('latin1');
    if (text.startsWith('shallow ')) {
      if (commands.length) return bad('a shallow line after the ref updates');
      if (!OID.test(text.slice(8))) return bad('a shallow line without an object id');
      continue;
    }
    if (text.startsWith('push-cert')) return bad('signed pushes are not supported');
    const parts = text.split(' ');
    if (parts.length !== 3) return bad('a ref update is not "<old> <new> <ref>"');
    const [oldOid, newOid, ref] = parts as [string, string, string];
    if (!OID.test(oldOid) || !OID.test(newOid) || oldOid.length !== newOid.length) {
      return bad('a ref update does not carry two object ids');
    }
    if (!isValidRefName(ref)) return bad(`"${ref.slice(0, 100)}" is not a valid ref name`);
    if (commands.length === 0) {
      if (nul >= 0) {
        capabilities = line
          .subarray(nul + 1)
          .toString('latin1')
          .split(' ')
          .filter(Boolean)
          .slice(0, 64)
          .map((c) => c.slice(0, 200));
      }
    } else if (nul >= 0) return bad('capabilities after the first ref update');
    commands.push({ oldOid, newOid, ref });
    if (commands.length > limits.maxCommands) {
      return bad(`a push may update at most ${limits.maxCommands} refs`);
    }
  }
}

/** One pkt-line holding `payload`. */
export function pkt(payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  if (body.length + 4 > PKT_MAX) throw new Error('pkt-line too long');
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0')), body]);
}

export const FLUSH = Buffer.from('0000');

/**
 * The answer to a refused push that a git client shows: every ref `ng` with its reason (git
 * prints ` ! [remote rejected] <ref> (<reason>)`), and with side-band, `message` on the progress
 * band (git prints it as `remote: <message>`). Without report-status the client would show
 * nothing of it: the caller answers 403 with a text body instead.
 */
export function refusedPushReport(
  capabilities: string[],
  refused: { ref: string; reason: string }[],
  message: string,
): Buffer {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const clean = (s: string) => s.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 400);
  const report = Buffer.concat([
    pkt('unpack ok\n'),
    ...refused.map((r) => pkt(`ng ${r.ref} ${clean(r.reason)}\n`)),
    FLUSH,
  ]);
  const sideband = capabilities.includes('side-band-64k') || capabilities.includes('side-band');
  if (!sideband) return report;
  const out: Buffer[] = [];
  for (const l of message.split('\n').filter(Boolean)) {
    out.push(pkt(Buffer.concat([Buffer.from([2]), Buffer.from(`${clean(l)}\n`)])));
  }
  const max = capabilities.includes('side-band-64k') ? PKT_MAX - 5 : 995;
  for (let i = 0; i < report.length; i += max) {
    out.push(pkt(Buffer.concat([Buffer.from([1]), report.subarray(i, i + max)])));
  }
  out.push(FLUSH);
  return Buffer.concat(out);
}
