/**
 * A GitHub stand-in on loopback, for what the coding loop needs of a forge:
 *
 * - **git smart HTTP**, the real thing: `git http-backend` run as a CGI for
 *   `<url>/<owner>/<repo>.git/{info/refs,git-upload-pack,git-receive-pack}` over bare
 *   repositories it creates (`createRepo`). Auth as GitHub's: HTTP Basic whose password (or user
 *   name) is a token; none → `401` with `WWW-Authenticate: Basic realm="GitHub"`, an unknown token
 *   → `401`, a repository the token cannot see → `404` ("Repository not found."), a push with a
 *   read-only token → `403` ("Permission to o/r.git denied").
 * - **REST**, under `<url>/api/v3` (GitHub Enterprise's layout; Octokit's `baseUrl`), with
 *   GitHub's shapes and codes for: `GET /repos/{o}/{r}`; `GET|POST /repos/{o}/{r}/pulls`
 *   (filters `state`, `head=owner:branch`, `base`); `GET|PATCH /repos/{o}/{r}/pulls/{n}`;
 *   `GET|POST /repos/{o}/{r}/issues/{n}/comments`. `Authorization: Bearer|token <token>`;
 *   none → `401` "Requires authentication", unknown → `401` "Bad credentials", a repository the
 *   token cannot see → `404` "Not Found", a write with a read-only token → `403` "Resource not
 *   accessible by personal access token"; a second open PR for the same head and base → `422`
 *   "A pull request already exists for owner:branch."; a head branch that does not exist → `422`
 *   (field head, code invalid); head == base tip → `422` "No commits between base and head".
 *
 * Not implemented: everything else of GitHub (other routes answer `404` "Not Found"), forks
 * (head from another owner), merging, reviews, pagination beyond `per_page` (100 at most).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface StandinToken {
  /** Repositories (owner/name) this token sees; '*' for all. */
  repos: string[] | '*';
  /** May push and write pull requests and comments. */
  write: boolean;
  /** The login it acts as. */
  login?: string;
}

interface Pull {
  id: number;
  number: number;
  state: 'open' | 'closed';
  title: string;
  body: string | null;
  head: string;
  base: string;
  draft: boolean;
  user: string;
  assignees: string[];
  created_at: string;
  updated_at: string;
  closed_at: string | null;
}

interface Comment {
  id: number;
  issue: number;
  body: string;
  user: string;
  created_at: string;
}

interface RepoState {
  owner: string;
  name: string;
  id: number;
  defaultBranch: string;
  pulls: Pull[];
  comments: Comment[];
}

export interface ForgeStandin {
  /** Base of everything: git at `<url>/<owner>/<repo>.git`, REST at `apiUrl`. */
  url: string;
  apiUrl: string;
  gitUrl: string;
  root: string;
  /** Creates a bare repository with one commit on `defaultBranch` holding `files`. */
  createRepo(owner: string, name: string, files?: Record<string, string>, defaultBranch?: string): void;
  /** The commit a branch points to in the stand-in, or undefined. */
  branchSha(owner: string, name: string, branch: string): string | undefined;
  pulls(owner: string, name: string): Pull[];
  comments(owner: string, name: string): Comment[];
  /** Every request's method, path and authorization header, as received. */
  requests: { method: string; path: string; authorization?: string }[];
  close(): Promise<void>;
}

const DOCS = 'https://docs.github.com/rest';

function git(args: string[], cwd?: string): string {
  const r = spawnSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Stand-in',
      GIT_AUTHOR_EMAIL: 'standin@example.invalid',
      GIT_COMMITTER_NAME: 'Stand-in',
      GIT_COMMITTER_EMAIL: 'standin@example.invalid',
      GIT_CONFIG_NOSYSTEM: '1',
      HOME: os.tmpdir(),
    },
  });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Lia's forge settings for a stack that uses this stand-in with `token` on `allowRepos`. */
export function forgeEnv(forge: ForgeStandin, token: string, allowRepos: string): Record<string, string> {
  return {
    LIA__FORGE__API_URL: forge.apiUrl,
    LIA__FORGE__GIT_URL: forge.gitUrl,
    LIA__FORGE__TOKEN: token,
    LIA__FORGE__ALLOW_REPOS: allowRepos,
  };
}

export async function startForgeStandin(tokens: Record<string, StandinToken>): Promise<ForgeStandin> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-forge-'));
  const repos = new Map<string, RepoState>();
  const requests: ForgeStandin['requests'] = [];
  let nextId = 1000;
  let port = 0;
  const key = (o: string, r: string) => `${o.toLowerCase()}/${r.toLowerCase()}`;
  const bare = (s: RepoState) => path.join(root, s.owner, `${s.name}.git`);
  const sha = (s: RepoState, branch: string): string | undefined => {
    const r = spawnSync(
      'git',
      ['--git-dir', bare(s), 'rev-parse', '--verify', '-q', `refs/heads/${branch}`],
      {
        encoding: 'utf8',
      },
    );
    return r.status === 0 ? r.stdout.trim() : undefined;
  };

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'x-github-media-type': 'github.v3; format=json',
    });
    res.end(text);
  };
  const error = (res: http.ServerResponse, status: number, message: string, extra: object = {}) =>
    json(res, status, { message, documentation_url: DOCS, status: String(status), ...extra });

  const who = (
    header: string | undefined,
    scheme: 'rest' | 'git',
  ): { token?: StandinToken; missing?: boolean } => {
    if (!header) return { missing: true };
    let t: string | undefined;
    const m = /^(Bearer|token|Basic)\s+(\S+)$/i.exec(header);
    if (m) {
      const kind = (m[1] as string).toLowerCase();
      const v = m[2] as string;
      if (kind === 'basic') {
        const [u, p] = Buffer.from(v, 'base64').toString('utf8').split(':');
        t = p && tokens[p] ? p : u;
      } else if (scheme === 'rest') t = v;
    }
    const token = t ? tokens[t] : undefined;
    return token ? { token } : {};
  };
  const sees = (t: StandinToken, s: RepoState) =>
    t.repos === '*' || t.repos.some((r) => r.toLowerCase() === key(s.owner, s.name));

  const userJson = (login: string) => ({
    login,
    id: 1,
    node_id: 'U_standin',
    type: 'User',
    html_url: `http://127.0.0.1:${port}/${login}`,
  });
  const repoJson = (s: RepoState) => ({
    id: s.id,
    node_id: `R_${s.id}`,
    name: s.name,
    full_name: `${s.owner}/${s.name}`,
    owner: { ...userJson(s.owner), type: 'Organization' },
    private: true,
    html_url: `http://127.0.0.1:${port}/${s.owner}/${s.name}`,
    url: `http://127.0.0.1:${port}/api/v3/repos/${s.owner}/${s.name}`,
    clone_url: `http://127.0.0.1:${port}/${s.owner}/${s.name}.git`,
    default_branch: s.defaultBranch,
    visibility: 'private',
    fork: false,
  });
  const pullJson = (s: RepoState, p: Pull) => {
    const api = `http://127.0.0.1:${port}/api/v3/repos/${s.owner}/${s.name}`;
    const side = (ref: string) => ({
      label: `${s.owner}:${ref}`,
      ref,
      sha: sha(s, ref) ?? '0'.repeat(40),
      user: userJson(s.owner),
      repo: repoJson(s),
    });
    return {
      url: `${api}/pulls/${p.number}`,
      id: p.id,
      node_id: `PR_${p.id}`,
      html_url: `http://127.0.0.1:${port}/${s.owner}/${s.name}/pull/${p.number}`,
      diff_url: `http://127.0.0.1:${port}/${s.owner}/${s.name}/pull/${p.number}.diff`,
      issue_url: `${api}/issues/${p.number}`,
      number: p.number,
      state: p.state,
      locked: false,
      title: p.title,
      user: userJson(p.user),
      assignees: p.assignees.map(userJson),
      body: p.body,
      created_at: p.created_at,
      updated_at: p.updated_at,
      closed_at: p.closed_at,
      merged_at: null,
      draft: p.draft,
      head: side(p.head),
      base: side(p.base),
      merged: false,
      author_association: 'MEMBER',
    };
  };
  const commentJson = (s: RepoState, c: Comment) => ({
    id: c.id,
    node_id: `IC_${c.id}`,
    url: `http://127.0.0.1:${port}/api/v3/repos/${s.owner}/${s.name}/issues/comments/${c.id}`,
    html_url: `http://127.0.0.1:${port}/${s.owner}/${s.name}/pull/${c.issue}#issuecomment-${c.id}`,
    issue_url: `http://127.0.0.1:${port}/api/v3/repos/${s.owner}/${s.name}/issues/${c.issue}`,
    body: c.body,
    user: userJson(c.user),
    created_at: c.created_at,
    updated_at: c.created_at,
    author_association: 'MEMBER',
  });

  const readJson = (req: http.IncomingMessage): Promise<Record<string, unknown> | undefined> =>
    new Promise((resolve) => {
      const parts: Buffer[] = [];
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n <= 1024 * 1024) parts.push(c);
      });
      req.on('end', () => {
        try {
          const v = JSON.parse(Buffer.concat(parts).toString('utf8') || '{}');
          resolve(v && typeof v === 'object' && !Array.isArray(v) ? v : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });

  async function rest(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const auth = who(req.headers.authorization, 'rest');
    if (auth.missing) return error(res, 401, 'Requires authentication');
    if (!auth.token) return error(res, 401, 'Bad credentials');
    const t = auth.token;
    const login = t.login ?? 'lia-bot';
    const m = /^\/api\/v3\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (!m) return error(res, 404, 'Not Found');
    const s = repos.get(key(m[1] as string, m[2] as string));
    if (!s || !sees(t, s)) return error(res, 404, 'Not Found');
    const rest = m[3] ?? '';
    const denied = () => error(res, 403, 'Resource not accessible by personal access token');
    const now = new Date().toISOString();
    if (rest === '' && method === 'GET') return json(res, 200, repoJson(s));
    if (rest === '/pulls' && method === 'GET') {
      const state = url.searchParams.get('state') ?? 'open';
      const head = url.searchParams.get('head');
      const base = url.searchParams.get('base');
      const perPage = Math.min(100, Number(url.searchParams.get('per_page') ?? 30) || 30);
      const list = s.pulls
        .filter((p) => state === 'all' || p.state === state)
        .filter((p) => !head || `${s.owner}:${p.head}`.toLowerCase() === head.toLowerCase())
        .filter((p) => !base || p.base === base)
        .sort((a, b) => b.number - a.number)
        .slice(0, perPage);
      return json(
        res,
        200,
        list.map((p) => pullJson(s, p)),
      );
    }
    if (rest === '/pulls' && method === 'POST') {
      if (!t.write) return denied();
      const b = await readJson(req);
      if (!b) return error(res, 400, 'Problems parsing JSON');
      const title = b.title;
      const headRaw = b.head;
      const base = b.base;
      if (typeof title !== 'string' || typeof headRaw !== 'string' || typeof base !== 'string') {
        return error(res, 422, 'Invalid request.\n\n"title", "head" and "base" are required.');
      }
      const head = headRaw.includes(':') ? headRaw.slice(headRaw.indexOf(':') + 1) : headRaw;
      const owner = headRaw.includes(':') ? headRaw.slice(0, headRaw.indexOf(':')) : s.owner;
      const failed = (errors: object[]) =>
        error(res, 422, 'Validation Failed', {
          errors,
          documentation_url: `${DOCS}/pulls/pulls#create-a-pull-request`,
        });
      if (owner.toLowerCase() !== s.owner.toLowerCase() || !sha(s, head)) {
        return failed([{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
      }
      if (!sha(s, base)) return failed([{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
      if (s.pulls.some((p) => p.state === 'open' && p.head === head && p.base === base)) {
        return failed([
          {
            resource: 'PullRequest',
            code: 'custom',
            message: `A pull request already exists for ${s.owner}:${head}.`,
          },
        ]);
      }
      if (sha(s, head) === sha(s, base)) {
        return failed([
          { resource: 'PullRequest', code: 'custom', message: `No commits between ${base} and ${head}` },
        ]);
      }
      const p: Pull = {
        id: nextId++,
        number: Math.max(0, ...s.pulls.map((x) => x.number)) + 1,
        state: 'open',
        title,
        body: typeof b.body === 'string' ? b.body : null,
        head,
        base,
        draft: b.draft === true,
        user: login,
        assignees: [],
        created_at: now,
        updated_at: now,
        closed_at: null,
      };
      s.pulls.push(p);
      return json(res, 201, pullJson(s, p));
    }
    const pm = /^\/pulls\/(\d+)$/.exec(rest);
    if (pm) {
      const p = s.pulls.find((x) => x.number === Number(pm[1]));
      if (!p) return error(res, 404, 'Not Found');
      if (method === 'GET') return json(res, 200, pullJson(s, p));
      if (method === 'PATCH') {
        if (!t.write) return denied();
        const b = await readJson(req);
        if (!b) return error(res, 400, 'Problems parsing JSON');
        if (typeof b.title === 'string') p.title = b.title;
        if (typeof b.body === 'string') p.body = b.body;
        if (typeof b.base === 'string') {
          if (!sha(s, b.base)) {
            return error(res, 422, 'Validation Failed', {
              errors: [{ resource: 'PullRequest', field: 'base', code: 'invalid' }],
            });
          }
          p.base = b.base;
        }
        if (b.state === 'open' || b.state === 'closed') {
          p.state = b.state;
          p.closed_at = b.state === 'closed' ? now : null;
        }
        p.updated_at = now;
        return json(res, 200, pullJson(s, p));
      }
    }
    // Assignees: GitHub drops, without an error, logins that cannot be assigned (here: none).
    const am = /^\/issues\/(\d+)\/assignees$/.exec(rest);
    if (am && method === 'POST') {
      const p = s.pulls.find((x) => x.number === Number(am[1]));
      if (!p) return error(res, 404, 'Not Found');
      if (!t.write) return denied();
      const b = await readJson(req);
      if (!b || !Array.isArray(b.assignees) || b.assignees.some((a: unknown) => typeof a !== 'string'))
        return error(res, 422, 'Invalid request.\n\n"assignees" must be an array of strings.');
      for (const a of b.assignees as string[]) if (!p.assignees.includes(a)) p.assignees.push(a);
      p.updated_at = now;
      return json(res, 201, pullJson(s, p));
    }
    const cm = /^\/issues\/(\d+)\/comments$/.exec(rest);
    if (cm) {
      const n = Number(cm[1]);
      if (!s.pulls.some((p) => p.number === n)) return error(res, 404, 'Not Found');
      if (method === 'GET') {
        return json(
          res,
          200,
          s.comments.filter((c) => c.issue === n).map((c) => commentJson(s, c)),
        );
      }
      if (method === 'POST') {
        if (!t.write) return denied();
        const b = await readJson(req);
        if (!b || typeof b.body !== 'string') {
          return error(res, 422, 'Invalid request.\n\n"body" wasn\'t supplied.');
        }
        const c: Comment = { id: nextId++, issue: n, body: b.body, user: login, created_at: now };
        s.comments.push(c);
        return json(res, 201, commentJson(s, c));
      }
    }
    return error(res, 404, 'Not Found');
  }

  function gitHttp(req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
    const m = /^\/([^/]+)\/([^/]+?)(?:\.git)?(\/(?:info\/refs|git-upload-pack|git-receive-pack))$/.exec(
      url.pathname,
    );
    const plain = (status: number, text: string, headers: http.OutgoingHttpHeaders = {}) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
      res.end(`${text}\n`);
      req.resume();
    };
    if (!m) return plain(404, 'Not Found');
    const auth = who(req.headers.authorization, 'git');
    if (auth.missing) {
      return plain(401, 'Authentication required', { 'www-authenticate': 'Basic realm="GitHub"' });
    }
    if (!auth.token) {
      return plain(
        401,
        'Invalid username or token. Password authentication is not supported for Git operations.',
        {
          'www-authenticate': 'Basic realm="GitHub"',
        },
      );
    }
    const s = repos.get(key(m[1] as string, m[2] as string));
    if (!s || !sees(auth.token, s)) return plain(404, 'Repository not found.');
    const pushing = m[3] === '/git-receive-pack' || url.searchParams.get('service') === 'git-receive-pack';
    if (pushing && !auth.token.write) {
      return plain(403, `Permission to ${s.owner}/${s.name}.git denied to ${auth.token.login ?? 'lia-bot'}.`);
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_NOSYSTEM: '1',
      HOME: root,
      PATH_INFO: `/${s.owner}/${s.name}.git${m[3]}`,
      QUERY_STRING: url.search.replace(/^\?/, ''),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_USER: auth.token.login ?? 'lia-bot',
      REMOTE_ADDR: '127.0.0.1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
    };
    if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);
    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let head = Buffer.alloc(0);
    let started = false;
    cgi.stderr.resume();
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (started) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      let end = head.indexOf('\r\n\r\n');
      let sep = 4;
      if (end < 0) {
        end = head.indexOf('\n\n');
        sep = 2;
      }
      if (end < 0) return;
      started = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim().toLowerCase();
        const value = line.slice(i + 1).trim();
        if (name === 'status') status = Number.parseInt(value, 10) || 500;
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + sep));
    });
    cgi.stdout.on('end', () => {
      if (!started) res.writeHead(500);
      res.end();
    });
    cgi.on('error', () => res.destroy());
    cgi.stdin.on('error', () => {});
    req.pipe(cgi.stdin);
    res.on('close', () => {
      if (!res.writableFinished) cgi.kill();
    });
  }

  const server = http.createServer((req, res) => {
    requests.push({
      method: req.method ?? '',
      path: req.url ?? '',
      authorization: req.headers.authorization,
    });
    const url = new URL(req.url ?? '/', 'http://standin');
    if (url.pathname.startsWith('/api/v3/')) {
      rest(req, res, url).catch((err) => error(res, 500, (err as Error).message));
      return;
    }
    gitHttp(req, res, url);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;

  return {
    url: base,
    apiUrl: `${base}/api/v3`,
    gitUrl: base,
    root,
    requests,
    createRepo(owner, name, files = { 'README.md': `# ${name}\n` }, defaultBranch = 'main') {
      const s: RepoState = { owner, name, id: nextId++, defaultBranch, pulls: [], comments: [] };
      const dir = bare(s);
      fs.mkdirSync(dir, { recursive: true });
      git(['init', '-q', '--bare', '-b', defaultBranch, dir]);
      git(['--git-dir', dir, 'config', 'http.receivepack', 'true']);
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-forge-seed-'));
      git(['init', '-q', '-b', defaultBranch, work]);
      for (const [f, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(work, f)), { recursive: true });
        fs.writeFileSync(path.join(work, f), text);
      }
      git(['add', '-A'], work);
      git(['commit', '-q', '-m', 'initial commit'], work);
      git(['push', '-q', dir, `${defaultBranch}:${defaultBranch}`], work);
      fs.rmSync(work, { recursive: true, force: true });
      repos.set(key(owner, name), s);
    },
    branchSha(owner, name, branch) {
      const s = repos.get(key(owner, name));
      return s ? sha(s, branch) : undefined;
    },
    pulls(owner, name) {
      return repos.get(key(owner, name))?.pulls ?? [];
    },
    comments(owner, name) {
      return repos.get(key(owner, name))?.comments ?? [];
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
