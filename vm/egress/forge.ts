/**
 * The forge route of the egress proxy: a guest's git reaches its task's repository — and only
 * that — through the host, which adds the forge credential. The guest never holds the token.
 *
 * Shape: inside the guest, git rewrites the forge's URL to the sidecar's proxy endpoint,
 *
 *     git config --global url."http://127.0.0.1:3128/forge/".insteadOf "https://github.com/"
 *
 * so `https://github.com/acme/widgets.git` becomes `http://127.0.0.1:3128/forge/acme/widgets.git`
 * (plain HTTP inside the guest; the channel carries it to the host). The proxy forwards
 * `/forge/<owner>/<repo>[.git]/<git route>` to `<LIA__FORGE__GIT_URL>/<owner>/<repo>.git/<git route>`
 * over HTTPS with the credential added (for GitHub: Basic `x-access-token:<token>`).
 *
 * Least privilege, per task (`setTaskRepo`): only the task's repository; only the smart-HTTP
 * routes (`GET info/refs?service=git-upload-pack|git-receive-pack`, `POST git-upload-pack`,
 * `POST git-receive-pack`); a push may only update `refs/heads/<the task's branch>` (not delete
 * it): the ref-update commands at the start of the receive-pack body are read (bounded) before
 * anything is forwarded, and a push naming any other ref is refused with a report the git client
 * prints (` ! [remote rejected] main -> main (Lia: …)`). No forge API is reachable from a guest:
 * the host opens pull requests itself (activities/forge/).
 */
import http from 'node:http';
import https from 'node:https';
import {
  DEFAULT_HEAD_LIMITS,
  type HeadLimits,
  isValidBranchName,
  isZeroOid,
  parseReceivePackHead,
  refusedPushReport,
} from './pkt-line.js';

export interface TaskRepo {
  owner: string;
  repo: string;
  /** The task's own branch (without refs/heads/), e.g. lia/t_abc: the only ref a push may update. */
  branch: string;
  /** The branch the task started from (for the pull request; fetching is not limited to it). */
  base?: string;
}

export interface ForgeOptions {
  kind: 'github';
  /** Where git's smart HTTP lives, e.g. https://github.com */
  gitUrl: string;
  /** The host's forge credential; undefined: the forge route refuses with the reason. */
  token: string | undefined;
  /** owner/name or owner/* entries; a task's repository must match one. Empty: none allowed. */
  allowRepos: string[];
  head?: Partial<HeadLimits>;
  /** How long connecting to the forge may take. */
  connectTimeoutMs?: number;
}

const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPO = /^[A-Za-z0-9._-]{1,100}$/;

export function isValidRepoName(owner: string, repo: string): boolean {
  return OWNER.test(owner) && REPO.test(repo) && repo !== '.' && repo !== '..' && !repo.endsWith('.git');
}

/** An ALLOW_REPOS entry: `owner/name` or `owner/*`. */
export function isValidAllowEntry(entry: string): boolean {
  const [owner, repo, ...rest] = entry.split('/');
  if (rest.length || owner === undefined || repo === undefined) return false;
  return OWNER.test(owner) && (repo === '*' || isValidRepoName(owner, repo));
}

/** Whether `owner/repo` is on the allowlist (names compare as the forge does: case-insensitive). */
export function repoAllowed(allow: string[], owner: string, repo: string): boolean {
  const o = owner.toLowerCase();
  const r = repo.toLowerCase();
  return allow.some((e) => {
    const [eo, er] = e.toLowerCase().split('/');
    return eo === o && (er === '*' || er === r);
  });
}

/**
 * The guest's git configuration for the forge route: `git config --global <key> <value>`, so
 * that `<gitUrl>/owner/repo.git` (what the user and the agent see) goes to the proxy endpoint in
 * the guest. The remote URL in a clone stays the forge's, with no credential in it.
 */
export function guestGitRewrite(
  gitUrl: string,
  endpoint = 'http://127.0.0.1:3128',
): { key: string; value: string } {
  return {
    key: `url.${endpoint.replace(/\/$/, '')}/forge/.insteadOf`,
    value: `${gitUrl.replace(/\/$/, '')}/`,
  };
}

/** The URL the guest clones: the forge's own (rewritten by guestGitRewrite on the way out). */
export function guestRemoteUrl(gitUrl: string, owner: string, repo: string): string {
  return `${gitUrl.replace(/\/$/, '')}/${owner}/${repo}.git`;
}

type GitRoute = 'upload-pack-refs' | 'receive-pack-refs' | 'upload-pack' | 'receive-pack';

export type ForgePath =
  | { ok: true; owner: string; repo: string; route: GitRoute; upstreamPath: string }
  | { ok: false; message: string };

/** The decision for `/forge/…` as sent (no decoding, no normalisation). */
export function parseForgePath(method: string | undefined, rawUrl: string): ForgePath {
  const m = (method ?? '').toUpperCase();
  const q = rawUrl.indexOf('?');
  const path = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  const query = q >= 0 ? rawUrl.slice(q + 1) : undefined;
  const shown = `${m} ${rawUrl.slice(0, 200)}`;
  const match = /^\/forge\/([^/]+)\/([^/]+)(\/.*)$/.exec(path);
  if (!match) {
    return { ok: false, message: `Lia: ${shown} is not a git URL (/forge/<owner>/<repo>.git/…)` };
  }
  const owner = match[1] as string;
  const repo = (match[2] as string).replace(/\.git$/, '');
  const rest = match[3] as string;
  if (!isValidRepoName(owner, repo)) {
    return { ok: false, message: `Lia: ${shown}: not an owner/repository name` };
  }
  let route: GitRoute | undefined;
  if (m === 'GET' && rest === '/info/refs') {
    if (query === 'service=git-upload-pack') route = 'upload-pack-refs';
    else if (query === 'service=git-receive-pack') route = 'receive-pack-refs';
  } else if (m === 'POST' && query === undefined) {
    if (rest === '/git-upload-pack') route = 'upload-pack';
    else if (rest === '/git-receive-pack') route = 'receive-pack';
  }
  if (!route) {
    return {
      ok: false,
      message: `Lia: ${shown}: only git's smart HTTP is forwarded to the forge (info/refs, git-upload-pack, git-receive-pack); no forge API is reachable from a task`,
    };
  }
  return {
    ok: true,
    owner,
    repo,
    route,
    upstreamPath: `/${owner}/${repo}.git${rest}${query ? `?${query}` : ''}`,
  };
}

/** Headers of a guest's git request that go on to the forge; everything else (credentials first) stays behind. */
const TO_FORGE = [
  'accept',
  'content-type',
  'content-encoding',
  'git-protocol',
  'user-agent',
  'accept-language',
];
/** Headers of the forge's answer that go back to the guest (never a challenge or a cookie). */
const TO_GUEST = ['content-type', 'content-encoding', 'cache-control', 'expires', 'pragma'];

export class ForgeRoute {
  private readonly repos = new Map<string, TaskRepo>();
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly head: HeadLimits;

  constructor(private readonly o: ForgeOptions) {
    this.base = new URL(o.gitUrl);
    if (this.base.protocol !== 'https:' && this.base.protocol !== 'http:') {
      throw new Error(`forge git URL must be http(s): ${o.gitUrl}`);
    }
    for (const e of o.allowRepos) {
      if (!isValidAllowEntry(e)) throw new Error(`forge allowlist: "${e}" is not owner/name or owner/*`);
    }
    this.head = { ...DEFAULT_HEAD_LIMITS, ...o.head };
    const agentOpts = { keepAlive: true, maxSockets: 64, maxFreeSockets: 8 };
    this.agent = this.base.protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
  }

  /** Says which repository and branch a task may use. Throws if the repository is not allowed. */
  setTaskRepo(taskId: string, r: TaskRepo): void {
    if (!isValidRepoName(r.owner, r.repo)) throw new Error(`not a repository name: ${r.owner}/${r.repo}`);
    if (!repoAllowed(this.o.allowRepos, r.owner, r.repo)) {
      throw new Error(`${r.owner}/${r.repo} is not on LIA__FORGE__ALLOW_REPOS`);
    }
    if (!isValidBranchName(r.branch)) throw new Error(`not a branch name: ${r.branch}`);
    if (r.base !== undefined && !isValidBranchName(r.base)) throw new Error(`not a branch name: ${r.base}`);
    this.repos.set(taskId, { ...r });
  }

  clearTaskRepo(taskId: string): void {
    this.repos.delete(taskId);
  }

  taskRepo(taskId: string): TaskRepo | undefined {
    return this.repos.get(taskId);
  }

  /**
   * Handles one `/forge/…` request of a guest of `taskId`. Refusals are `403`/`400` with a
   * text/plain body (git shows it as `remote: …` when discovery fails) or, for a push, a
   * report-status git prints per ref. Resolves when the answer is under way.
   */
  handle(
    taskId: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    refused: (status: number) => void,
  ) {
    const text = (status: number, message: string) => {
      refused(status);
      if (res.headersSent || res.destroyed) return void res.destroy();
      const body = `${message}\n`;
      res.writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
      // What the guest still sends is read and dropped (bounded by the connection's idle timer).
      drain(req, res);
    };
    const p = parseForgePath(req.method, req.url ?? '');
    if (!p.ok) return text(403, p.message);
    const mine = this.repos.get(taskId);
    if (!mine) return text(403, 'Lia: this task has no repository; the forge is not reachable from it');
    if (
      p.owner.toLowerCase() !== mine.owner.toLowerCase() ||
      p.repo.toLowerCase() !== mine.repo.toLowerCase()
    ) {
      return text(
        403,
        `Lia: this task may only use ${mine.owner}/${mine.repo}; ${p.owner}/${p.repo} was refused`,
      );
    }
    if (!this.o.token)
      return text(503, 'Lia: no forge credential is configured on the host (LIA__FORGE__TOKEN)');
    if (p.route === 'receive-pack') return this.receivePack(mine, p.upstreamPath, req, res, refused);
    if (p.route === 'upload-pack' || p.route === 'receive-pack-refs' || p.route === 'upload-pack-refs') {
      const up = this.forward(p.upstreamPath, req, res);
      req.pipe(up);
    }
  }

  private receivePack(
    mine: TaskRepo,
    upstreamPath: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    refused: (status: number) => void,
  ) {
    const enc = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
    const fail = (status: number, message: string) => {
      refused(status);
      req.pause();
      if (res.headersSent || res.destroyed) return void res.destroy();
      const body = `${message}\n`;
      res.writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        connection: 'close',
      });
      res.end(body);
      // The rest of the body is not read: the connection goes once the answer has had time to leave.
      const sock = req.socket;
      setTimeout(() => sock.destroy(), 1000).unref();
    };
    if (enc !== 'identity') return fail(415, 'Lia: a push must not be content-encoded');
    const allowedRef = `refs/heads/${mine.branch}`;
    // The head is copied into one buffer of fixed size (never more held, and linear however the
    // guest slices its body) and parsed only once a whole pkt-line may be there.
    const cap = this.head.maxHeadBytes + 4;
    const store = Buffer.alloc(cap);
    let filled = 0;
    let need = 4;
    let overflow: Buffer | undefined;
    let decided = false;
    const onData = (chunk: Buffer) => {
      if (decided) return;
      const take = Math.min(chunk.length, cap - filled);
      chunk.copy(store, filled, 0, take);
      filled += take;
      if (take < chunk.length) overflow = chunk.subarray(take);
      if (filled < need && filled < cap) return;
      const head = parseReceivePackHead(store.subarray(0, filled), this.head);
      if (head.kind === 'more') {
        need = head.need;
        if (filled >= cap) {
          decided = true;
          req.off('data', onData);
          fail(400, `Lia: the push's ref updates take more than ${this.head.maxHeadBytes} bytes`);
        }
        return;
      }
      decided = true;
      req.off('data', onData);
      req.pause();
      if (head.kind === 'bad')
        return fail(400, `Lia: refused a push that is not a valid git push (${head.message})`);
      const wrong = head.commands.filter((c) => c.ref !== allowedRef || isZeroOid(c.newOid));
      if (wrong.length) {
        refused(403);
        const why = (c: { ref: string; newOid: string }) =>
          c.ref === allowedRef
            ? `Lia: this task may not delete its branch`
            : `Lia: this task may push only to ${allowedRef}`;
        const message = `Lia: this task may push only to its own branch ${mine.branch} (not delete it); refused: ${wrong
          .map((c) => c.ref)
          .join(', ')
          .slice(0, 300)}`;
        if (!head.capabilities.includes('report-status') && !head.capabilities.includes('report-status-v2')) {
          return fail(403, message);
        }
        const report = refusedPushReport(
          head.capabilities,
          head.commands.map((c) => ({
            ref: c.ref,
            reason: wrong.includes(c)
              ? why(c)
              : 'Lia: the push was refused as a whole (another ref in it is not allowed)',
          })),
          message,
        );
        res.writeHead(200, {
          'content-type': 'application/x-git-receive-pack-result',
          'cache-control': 'no-cache',
          'content-length': report.length,
        });
        res.end(report);
        drain(req, res);
        return;
      }
      // Allowed: what was read goes first, the rest (the pack) streams after it.
      const up = this.forward(upstreamPath, req, res);
      up.write(store.subarray(0, filled));
      if (overflow) up.write(overflow);
      req.pipe(up);
      req.resume();
    };
    req.on('data', onData);
    req.on('end', () => {
      if (!decided) {
        decided = true;
        fail(
          400,
          'Lia: refused a push that is not a valid git push (the request ended before its ref updates did)',
        );
      }
    });
  }

  /** Sends the guest's request on to the forge with the host's credential; pipes the answer back. */
  private forward(
    upstreamPath: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): http.ClientRequest {
    const headers: http.OutgoingHttpHeaders = {};
    const pushing =
      upstreamPath.endsWith('/git-receive-pack') || upstreamPath.endsWith('service=git-receive-pack');
    for (const h of TO_FORGE) {
      // Protocol v2 is for fetching; a push speaks v0, whose ref updates were read above.
      if (h === 'git-protocol' && pushing) continue;
      const v = req.headers[h];
      if (typeof v === 'string' && v.length <= 1000) headers[h] = v;
    }
    if (req.headers['content-length'] !== undefined)
      headers['content-length'] = req.headers['content-length'];
    else if (req.method === 'POST') headers['transfer-encoding'] = 'chunked';
    headers.authorization = `Basic ${Buffer.from(`x-access-token:${this.o.token}`).toString('base64')}`;
    const target = new URL(this.base.href.replace(/\/$/, '') + upstreamPath);
    const client = target.protocol === 'https:' ? https : http;
    const up = client.request(target, {
      method: req.method,
      headers,
      agent: this.agent,
      timeout: this.o.connectTimeoutMs ?? 15_000,
    });
    up.on('socket', (s) => {
      if ((s as { connecting?: boolean }).connecting) s.once('connect', () => up.setTimeout(0));
      else up.setTimeout(0);
    });
    up.on('timeout', () => up.destroy(new Error('connect timeout')));
    up.on('response', (r) => {
      const status = r.statusCode ?? 502;
      if (status === 401 || status === 403 || (status >= 300 && status < 400)) {
        r.resume();
        const message =
          status >= 300 && status < 400
            ? 'Lia: the forge redirected this repository (renamed or moved?); ask the operator'
            : `Lia: the forge refused the host's credential for this repository (${status}); ask the operator`;
        if (res.headersSent) return void res.destroy();
        const body = `${message}\n`;
        res.writeHead(status === 401 || status >= 300 ? 502 : 403, {
          'content-type': 'text/plain; charset=utf-8',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      const out: http.OutgoingHttpHeaders = {};
      for (const h of TO_GUEST) if (r.headers[h] !== undefined) out[h] = r.headers[h];
      if (r.headers['content-length'] !== undefined) out['content-length'] = r.headers['content-length'];
      res.writeHead(status, out);
      r.on('error', () => res.destroy());
      r.pipe(res);
    });
    up.on('error', (err) => {
      if (res.headersSent) return void res.destroy();
      const body = `Lia: the forge could not be reached: ${err.message}\n`;
      res.writeHead(502, {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.on('error', () => up.destroy());
    return up;
  }
}

/** Reads and drops what a refused guest still sends (at most 64 MiB, then the connection is closed). */
function drain(req: http.IncomingMessage, res: http.ServerResponse): void {
  let dropped = 0;
  req.on('data', (c: Buffer) => {
    dropped += c.length;
    if (dropped > 64 * 1024 * 1024) {
      req.destroy();
      res.destroy();
    }
  });
  req.resume();
}
