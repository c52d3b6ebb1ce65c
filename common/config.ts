/**
 * Lia's configuration: environment variables `LIA__SECTION__KEY`, validated once at start.
 *
 * The schema below is the single source of truth: `.env.example` and the README table are
 * checked against it by a test, so a variable can't be added here and forgotten there.
 */
import path from 'node:path';
import { z } from 'zod';
import { parseHostPort } from './host-port.js';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const num = (min: number, max: number) => z.coerce.number().min(min).max(max);
const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const optionalString = z.string().min(1).optional();
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** Each entry: the env key (after `LIA__SECTION__`), its schema, default, and a one-line description. */
interface Var {
  schema: z.ZodType;
  default?: string;
  secret?: boolean;
  doc: string;
}

export const CONFIG_VARS = {
  server: {
    host: { schema: z.string().min(1), default: '127.0.0.1', doc: 'Address the API listens on' },
    port: { schema: int(0, 65535), default: '3000', doc: 'Port of the API and web UI' },
    public_url: {
      schema: z.string().url().optional(),
      doc: 'Base URL put in links given to users (default http://<host>:<port>)',
    },
  },
  api: {
    service_token: {
      schema: z.string().min(16, 'must be at least 16 characters').optional(),
      secret: true,
      doc: 'Bearer token of trusted services (the bot); unset: generated and kept in the state folder',
    },
    link_secret: {
      schema: z.string().min(16, 'must be at least 16 characters').optional(),
      secret: true,
      doc: 'HMAC key that signs browser links; unset: generated and kept in the state folder',
    },
    link_ttl_minutes: {
      schema: int(1, 60 * 24 * 90),
      default: '1440',
      doc: 'How long a signed link is valid',
    },
    admin_users: { schema: list, default: '', doc: 'Comma-separated user ids that may act on every task' },
  },
  database: {
    url: {
      schema: z.string().url().optional(),
      secret: true,
      doc: 'PostgreSQL URL; unset: a private cluster in the state folder is started',
    },
  },
  temporal: {
    address: {
      schema: z.string().min(3).optional(),
      doc: 'Temporal frontend host:port; unset: a private dev server is started',
    },
    namespace: { schema: z.string().min(1), default: 'default', doc: 'Temporal namespace' },
    cli: { schema: optionalString, doc: 'Path to a `temporal` CLI binary (else PATH, else a cached build)' },
    port: { schema: int(1024, 65535), default: '7233', doc: 'Port of the private dev server' },
    ui_port: {
      schema: int(1024, 65535),
      default: '8233',
      doc: "Port of the private dev server's Temporal UI",
    },
    tls_cert_file: {
      schema: optionalString,
      doc: 'Client certificate (PEM file) for a Temporal cluster that requires mTLS; with TLS_KEY_FILE',
    },
    tls_key_file: { schema: optionalString, doc: 'Private key (PEM file) of TLS_CERT_FILE' },
    tls_ca_file: {
      schema: optionalString,
      doc: "CA (PEM file) to verify the Temporal server with (unset: the system's roots)",
    },
    tls_server_name: {
      schema: optionalString,
      doc: "The Temporal server's name in its certificate, when it differs from the address",
    },
    api_key: {
      schema: optionalString,
      secret: true,
      doc: 'API key for Temporal Cloud (sent over TLS, which it turns on)',
    },
    max_history_events: {
      schema: int(0, 50_000),
      default: '0',
      doc: 'A task continues as new past this many history events (0: when Temporal suggests it)',
    },
  },
  state: {
    dir: {
      schema: z.string().min(1),
      default: '.lia-state',
      doc: 'Project-local folder for databases, VMs, logs',
    },
  },
  host: {
    id: {
      schema: z.string().regex(/^[a-z0-9-]{1,40}$/, 'lower-case letters, digits and dashes, at most 40'),
      default: 'local',
      doc: "This KVM host's id; its worker polls task queue lia-host-<id>",
    },
    max_vms: { schema: int(1, 1000), default: '4', doc: 'VMs (running or suspended) this host accepts' },
    vcpus: {
      schema: int(1, 4096).optional(),
      doc: 'vCPUs this host hands out to VMs (unset: 4 per core: VMs mostly wait on the model)',
    },
    memory_mib: {
      schema: int(256, 64 * 1024 * 1024).optional(),
      doc: "Memory this host hands out to VMs, MiB (unset: three quarters of the host's)",
    },
    disk_gb: {
      schema: int(1, 1024 * 1024).optional(),
      doc: 'Disk this host hands out to task disks, GB (unset: not counted: disks are sparse overlays)',
    },
    heartbeat_seconds: {
      schema: num(0.5, 300),
      default: '5',
      doc: 'How often the host worker refreshes its record',
    },
    reconcile_seconds: {
      schema: num(1, 3600),
      default: '60',
      doc: 'How often the host worker removes what is left of ended tasks (VMs, disks, stray VMM processes)',
    },
    lost_after_seconds: {
      schema: num(5, 7 * 24 * 3600),
      default: '600',
      doc: 'A host silent this long, with nothing polling its queue, is declared lost and its tasks fail (a restart within it loses nothing)',
    },
  },
  queue: {
    max_wait_minutes: {
      schema: num(0.01, 7 * 24 * 60),
      default: '60',
      doc: 'A task that finds no host with room waits this long in the queue (first come, first served), then fails',
    },
  },
  control: {
    maintenance_seconds: {
      schema: num(1, 3600),
      default: '60',
      doc: 'How often the host watchdog and the task sweeper run (Temporal Schedules)',
    },
  },
  vm: {
    driver: {
      schema: z.enum(['auto', 'firecracker', 'qemu', 'local']),
      default: 'auto',
      doc: 'VM driver: auto picks the first of firecracker, qemu that passes its self-check (never local)',
    },
    local_accept_no_isolation: {
      schema: bool,
      default: 'false',
      doc: 'The operator accepts that the local driver isolates nothing: needed to run it with the bot on or the API off loopback',
    },
    require_kvm: {
      schema: bool,
      default: 'false',
      doc: 'Refuse software emulation (TCG), which is no security boundary: production hosts set it',
    },
    firecracker_bin: {
      schema: optionalString,
      doc: 'Path to the firecracker binary (else PATH; vm/setup.sh installs it)',
    },
    jailer_bin: { schema: optionalString, doc: "Path to Firecracker's jailer (else PATH)" },
    firecracker_jail_dir: {
      schema: optionalString,
      doc: "The jailer's chroot base, on the state folder's file system (default <state>/hosts/<host>/jail)",
    },
    uid_base: {
      schema: int(1000, 2 ** 31 - 20_000),
      default: '900000',
      doc: "First of the uids each VM's VMM runs as, one per VM (when Lia runs as root)",
    },
    idle_timeout_minutes: {
      schema: num(0.01, 60 * 24 * 30),
      default: '30',
      doc: 'Idle time before a task is suspended',
    },
    vcpus: { schema: int(1, 32), default: '1', doc: 'vCPUs per VM' },
    memory_mib: { schema: int(128, 65536), default: '512', doc: 'Memory per VM (MiB)' },
    default_storage_gb: { schema: int(1, 2048), default: '50', doc: 'Disk per VM (GB, copy-on-write)' },
    max_lifetime_hours: {
      schema: num(0.001, 24 * 365),
      default: '168',
      doc: 'A task ends (terminated, with the reason) this long after it was created',
    },
    max_suspended_hours: {
      schema: num(0.001, 24 * 365),
      default: '72',
      doc: 'A task suspended this long ends (terminated, with the reason): its disk and snapshot are freed',
    },
    templates: {
      schema: bool,
      default: 'true',
      doc: 'Start each VM from a template (booted once per image and VM size, snapshotted after the sidecar hello) instead of a cold boot',
    },
    template_pool: {
      schema: int(0, 64),
      default: '0',
      doc: 'VMs restored from the template ahead of demand, per host (0: none): a spawn takes one at once; each holds its memory while it waits, and counts against the host capacity',
    },
    template_dir: {
      schema: optionalString,
      doc: 'Where templates are cached, keyed by their inputs (default ~/.cache/lia/templates, beside the image)',
    },
    egress_allow: {
      schema: list.refine(
        (entries) => entries.every((e) => parseHostPort(e, 443)),
        'each entry must be host or host:port (a DNS name or IPv4 address, a port from 1 to 65535)',
      ),
      default: '',
      doc: 'host:port pairs a guest may reach through the egress proxy besides the model API (a bare host means port 443)',
    },
    egress_max_connections: {
      schema: int(1, 10_000),
      default: '64',
      doc: 'Connections one task may hold open through the egress proxy at once (more are refused with 503)',
    },
  },
  claude: {
    api_key: {
      schema: optionalString,
      secret: true,
      doc: 'Anthropic API key; added by the egress proxy on the host, never given to a guest',
    },
    base_url: {
      schema: z.string().url(),
      default: 'https://api.anthropic.com',
      doc: 'Model API the proxy forwards to',
    },
    request_idle_seconds: {
      schema: num(0.1, 3600),
      default: '300',
      doc: 'A model request with no byte either way for this long is ended (the task is then no longer busy)',
    },
    request_max_seconds: {
      schema: num(1, 24 * 3600),
      default: '1800',
      doc: 'The longest a model request may take before the proxy ends it',
    },
  },
  agent: {
    permission_mode: {
      schema: z.enum(['ask', 'edits', 'auto']),
      default: 'ask',
      doc: "Claude Code's permission mode when the spawner names none: ask (approve each command and edit), edits (edits go ahead, commands ask) or auto (nothing asks)",
    },
    question_timeout_minutes: {
      schema: num(0.05, 7 * 24 * 60),
      default: '1440',
      doc: 'A question the agent asks before a tool use is denied (and the agent told) after this long without an answer; the task may be suspended meanwhile',
    },
  },
  forge: {
    kind: {
      schema: z.enum(['github']),
      default: 'github',
      doc: 'Which forge the coding loop uses (GitHub or GitHub Enterprise; the design is open to GitLab and Gitea)',
    },
    api_url: {
      schema: z.string().url(),
      default: 'https://api.github.com',
      doc: "The forge's REST API (GitHub Enterprise: https://HOST/api/v3)",
    },
    git_url: {
      schema: z
        .string()
        .url()
        .refine((u) => /^https?:\/\//.test(u), 'an http(s) URL'),
      default: 'https://github.com',
      doc: "Base of the forge's git URLs (GIT_URL/OWNER/REPO.git); the egress proxy forwards a guest's git there",
    },
    token: {
      schema: optionalString,
      secret: true,
      doc: 'Forge token (a fine-grained token with contents and pull requests: read and write, on the allowed repositories); added on the host, never given to a guest. Unset: no repository can be used',
    },
    allow_repos: {
      schema: list.refine(
        (entries) =>
          entries.every((e) => /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/(?:\*|[A-Za-z0-9._-]{1,100})$/.test(e)),
        'each entry must be owner/name or owner/*',
      ),
      default: '',
      doc: 'Comma-separated repositories a task may use (owner/name or owner/*); empty: none',
    },
    user_logins: {
      schema: list.refine(
        (entries) => entries.every((e) => /^[^=\s]{1,100}=[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(e)),
        'each entry must be userId=login (a Lia user id, e.g. a Discord user id, and a forge login)',
      ),
      default: '',
      doc: "Comma-separated userId=login: the forge identity of a Lia user (e.g. 123456789012345678=octocat). A task's pull request is still opened with the host's token, but names that login and is assigned to it",
    },
    pull_request_after_turn: {
      schema: bool,
      default: 'true',
      doc: "After each turn of a headless task that changed its repository, push the task's branch and open or update its pull request (false: only when the owner asks: the button, the API, ./lia pr, or a follow-up saying so); a spawn may choose otherwise",
    },
  },
  output: {
    retention_bytes: {
      schema: int(64 * 1024, 1024 * 1024 * 1024),
      default: String(8 * 1024 * 1024),
      doc: 'Output kept per task; oldest chunks are dropped beyond it',
    },
    ended_retention_hours: {
      schema: num(0.001, 24 * 3650),
      default: '168',
      doc: "How long an ended task's output is kept (then the task sweeper deletes it)",
    },
  },
  quota: {
    live_tasks_per_user: {
      schema: int(1, 1000),
      default: '2',
      doc: "Tasks a user may have that are not ended (keep it below a host's VM slots)",
    },
    live_tasks_total: {
      schema: int(1, 100_000),
      default: '50',
      doc: 'Tasks not ended, all users together; past it a spawn is refused (a full host queues instead)',
    },
    running_tasks_per_user: {
      schema: int(1, 1000),
      default: '2',
      doc: 'Tasks a user may have running at once (a running VM holds CPU and memory; a suspended one does not)',
    },
    tokens_per_task: {
      schema: int(0, 1e12),
      default: '25000000',
      doc: 'Model tokens (input, cache reads and writes, output) one task may use; then its model calls are refused (0: no limit)',
    },
    tokens_per_user_per_day: {
      schema: int(0, 1e12),
      default: '50000000',
      doc: "Model tokens a user's tasks may use together per UTC day; then their model calls are refused until midnight UTC (0: no limit)",
    },
  },
  discord: {
    token: { schema: optionalString, secret: true, doc: 'Discord bot token; unset: the bot is not started' },
    application_id: { schema: optionalString, doc: 'Discord application id (for deploying commands)' },
    guild_id: { schema: optionalString, doc: 'Deploy commands to this guild only (development)' },
    api_url: {
      schema: z.string().url().optional(),
      doc: "Discord REST base URL, e.g. http://127.0.0.1:8900/api (unset: Discord's own; tests use a stand-in)",
    },
    admin_roles: {
      schema: list,
      default: '',
      doc: 'Comma-separated Discord role ids whose members may act on every task',
    },
    spawn_guilds: {
      schema: list,
      default: '',
      doc: 'Guild ids where /spawn is allowed (empty: any; spawning is closed until a list or SPAWN_OPEN)',
    },
    spawn_roles: { schema: list, default: '', doc: 'Role ids allowed to /spawn (empty: any role)' },
    spawn_open: {
      schema: z.enum(['true', 'false']).transform((v) => v === 'true'),
      default: 'false',
      doc: 'true: with no guild or role list, anyone in any guild may /spawn (closed by default)',
    },
    tail_seconds: {
      schema: num(0.2, 3600),
      default: '10',
      doc: "Least time between two output posts in a task's thread",
    },
  },
  metrics: {
    host: {
      schema: z.string().min(1),
      default: '127.0.0.1',
      doc: 'Address the metrics endpoint (/metrics) listens on',
    },
    port: {
      schema: int(0, 65535),
      default: '9464',
      doc: "Port of this process's /metrics (0: none); ./lia start gives its roles this port and the next three",
    },
  },
  log: {
    level: {
      schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
      default: 'info',
      doc: 'Log level',
    },
  },
} satisfies Record<string, Record<string, Var>>;

type Vars = typeof CONFIG_VARS;
export type Config = {
  [S in keyof Vars]: {
    [K in keyof Vars[S]]: Vars[S][K] extends { schema: infer T extends z.ZodType }
      ? Vars[S][K] extends { default: string }
        ? Exclude<z.output<T>, undefined>
        : z.output<T>
      : never;
  };
};

export function envName(section: string, key: string): string {
  return `LIA__${section.toUpperCase()}__${key.toUpperCase()}`;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the whole configuration. Throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const out: Record<string, Record<string, unknown>> = {};
  const known = new Set<string>();
  for (const [section, vars] of Object.entries(CONFIG_VARS)) {
    out[section] = {};
    for (const [key, v] of Object.entries(vars as Record<string, Var>)) {
      const name = envName(section, key);
      known.add(name);
      const raw = env[name] === '' ? undefined : env[name];
      const value = raw ?? v.default;
      const parsed = v.schema.safeParse(value);
      if (parsed.success) {
        (out[section] as Record<string, unknown>)[key] = parsed.data;
      } else {
        const shown = v.secret ? '(hidden)' : JSON.stringify(value);
        problems.push(`${name}=${shown}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
      }
    }
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('LIA__') && !known.has(name)) {
      problems.push(`${name}: unknown variable (see .env.example for the list)`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const config = out as Config;
  config.state.dir = path.resolve(config.state.dir);
  return config;
}

/** Loads the config or exits the process with a message naming each bad variable. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

export function publicUrl(config: Config): string {
  return config.server.public_url ?? `http://${config.server.host}:${config.server.port}`;
}
