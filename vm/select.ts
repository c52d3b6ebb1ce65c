/**
 * Picks this host's VM driver and proves it. LIA__VM__DRIVER names one, or `auto` tries
 * firecracker (where KVM runs a vCPU and firecracker and jailer are installed), then qemu (KVM,
 * else software emulation), and takes the first that passes its self-check (vm/self-check.ts):
 * what is installed says what to try, only a VM that really booted, suspended and restored
 * says what works. `auto` never picks `local`, which isolates nothing: it runs only when named,
 * and not with the bot on or the API off loopback unless the operator says, in a second
 * setting, that they accept no isolation. A host with no driver that works does not start, and
 * says why for each.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import type { EgressSink } from './channel/egress-sink.js';
import type { DriverName, VmDriver } from './driver.js';
import { describeFailure, type SelfCheckReport, selfCheck } from './self-check.js';

export const LOCAL_WARNING =
  'VM driver "local": agents run as plain host processes with NO isolation. For development only.';

export interface DriverCandidate {
  name: DriverName;
  /** Makes the driver, or throws saying what this host lacks for it. */
  build(): Promise<VmDriver>;
}

/** No driver can run tasks here; `reasons` has one line per driver tried. */
export class NoDriverError extends Error {
  constructor(
    readonly reasons: string[],
    readonly reports: SelfCheckReport[] = [],
  ) {
    super(
      `no VM driver works on this host, so it takes no tasks:\n${reasons.map((r) => `  - ${r}`).join('\n')}`,
    );
    this.name = 'NoDriverError';
  }
}

export function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Why the local driver may not run with this configuration, if it may not. */
export function localRefusal(config: Config): string | undefined {
  if (config.vm.local_accept_no_isolation) return undefined;
  const exposed: string[] = [];
  if (config.discord.token) exposed.push('the Discord bot is on (LIA__DISCORD__TOKEN is set)');
  if (!LOOPBACK.test(config.server.host))
    exposed.push(`the API listens on ${config.server.host}, not on loopback (LIA__SERVER__HOST)`);
  if (!exposed.length) return undefined;
  return (
    `LIA__VM__DRIVER=local runs every agent as a plain process of this host, with no isolation: it can read ` +
    `.env, the state folder's secrets, this process's environment and the database. It is refused because ` +
    `${exposed.join(' and ')}. Use qemu or firecracker, or set LIA__VM__LOCAL_ACCEPT_NO_ISOLATION=true to ` +
    'accept that anyone who can spawn a task owns this host.'
  );
}

export interface SelectOptions {
  /** Drivers to try instead of this host's (tests). */
  candidates?: DriverCandidate[];
  /** Off only for tools that must not boot a VM (check-host runs its own). */
  selfCheck?: boolean;
}

export async function selectDriver(
  config: Config,
  logger: Logger,
  egress?: EgressSink,
  opts: SelectOptions = {},
): Promise<VmDriver> {
  const wanted = config.vm.driver;
  const candidates =
    opts.candidates ??
    (wanted === 'auto'
      ? [firecrackerCandidate(config, logger, egress), qemuCandidate(config, logger, egress)]
      : wanted === 'firecracker'
        ? [firecrackerCandidate(config, logger, egress)]
        : wanted === 'qemu'
          ? [qemuCandidate(config, logger, egress)]
          : [localCandidate(config, logger)]);
  const reasons: string[] = [];
  const reports: SelfCheckReport[] = [];
  for (const c of candidates) {
    let driver: VmDriver;
    try {
      driver = await c.build();
    } catch (err) {
      reasons.push(`${c.name}: ${(err as Error).message}`);
      continue;
    }
    if (opts.selfCheck === false) return driver;
    logger.info(
      { driver: driver.name, accel: driver.acceleration },
      'VM driver: self-check (boot, suspend, restore)',
    );
    // The size tasks get (memory capped): with templates, the self-check builds (or finds) the
    // template its tasks start from, and starts its VM from it.
    const report = await selfCheck(driver, {
      memoryMib: Math.min(config.vm.memory_mib, 512),
      vcpus: config.vm.vcpus,
      storageGb: config.vm.default_storage_gb,
      logger,
    });
    reports.push(report);
    if (report.ok) {
      await (driver as { adopt?: () => Promise<void> }).adopt?.();
      await (driver as { startPool?: () => Promise<void> }).startPool?.();
      logger.info(
        { driver: driver.name, accel: driver.acceleration, ms: report.ms },
        `VM driver selected: ${driver.name} (${driver.acceleration})`,
      );
      return driver;
    }
    reasons.push(`${c.name}: the self-check failed: ${describeFailure(report)}`);
  }
  if (wanted === 'auto')
    reasons.push('local: never chosen by auto (no isolation); only LIA__VM__DRIVER=local runs it');
  throw new NoDriverError(reasons, reports);
}

function localCandidate(config: Config, logger: Logger): DriverCandidate {
  return {
    name: 'local',
    async build() {
      const refused = localRefusal(config);
      if (refused) throw new Error(refused);
      const { LocalDriver } = await import('./drivers/local.js');
      logger.warn(LOCAL_WARNING);
      return new LocalDriver({ stateDir: config.state.dir, hostId: config.host.id, logger });
    },
  };
}

export function qemuCandidate(
  config: Config,
  logger: Logger,
  egress: EgressSink | undefined,
  profile: 'qemu' | 'firecracker' = 'qemu',
): DriverCandidate {
  return {
    name: 'qemu',
    async build() {
      if (!which('qemu-system-x86_64'))
        throw new Error('qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)');
      const { probeKvm } = await import('./kvm-probe.js');
      const kvm = await probeKvm();
      const { TCG_WARNING, QemuDriver } = await import('./drivers/qemu/driver.js');
      if (!kvm.usable) {
        if (config.vm.require_kvm)
          throw new Error(
            `KVM does not run a vCPU here (${kvm.reason}), and software emulation is refused (LIA__VM__REQUIRE_KVM=true)`,
          );
        logger.warn({ reason: kvm.reason }, `KVM does not run a vCPU here: QEMU uses TCG, ${TCG_WARNING}`);
      }
      const isolation = await vmmIsolation(config, logger);
      const { ensureGuestImage } = await import('./image/ensure.js');
      const image = await ensureGuestImage((m: string) => logger.info(m));
      return new QemuDriver({
        stateDir: path.resolve(config.state.dir),
        hostId: config.host.id,
        image,
        accel: kvm.usable ? 'kvm' : 'tcg',
        logger,
        egress,
        profile,
        templates: config.vm.templates,
        templateDir: config.vm.template_dir,
        pool: {
          size: config.vm.template_pool,
          spec: {
            vcpus: config.vm.vcpus,
            memoryMib: config.vm.memory_mib,
            storageGb: config.vm.default_storage_gb,
          },
        },
        ...isolation,
      });
    },
  };
}

/** A uid and a cgroup per VM where Lia can make them (as root), and a warning where it cannot. */
async function vmmIsolation(config: Config, logger: Logger) {
  const { detectCgroups } = await import('./process/cgroup.js');
  const { UidPool } = await import('./process/uids.js');
  const root = process.getuid?.() === 0;
  const cg = root ? detectCgroups() : { system: undefined, reason: 'Lia does not run as root' };
  if (!cg.system)
    logger.warn({ reason: cg.reason }, 'VMs get no cgroup of their own (no CPU, memory or task cap)');
  if (!root) logger.warn('VMMs run as Lia’s own user, not one uid per VM (Lia does not run as root)');
  return {
    cgroups: cg.system,
    uids: root
      ? new UidPool(path.join(config.state.dir, 'hosts', config.host.id, 'uids'), config.vm.uid_base)
      : undefined,
  };
}

export function firecrackerCandidate(
  config: Config,
  logger: Logger,
  egress: EgressSink | undefined,
): DriverCandidate {
  return {
    name: 'firecracker',
    async build() {
      const firecrackerBin = config.vm.firecracker_bin ?? which('firecracker');
      const jailerBin = config.vm.jailer_bin ?? which('jailer');
      if (!firecrackerBin || !jailerBin)
        throw new Error('firecracker and jailer are not installed (vm/setup.sh installs them)');
      const { probeKvm } = await import('./kvm-probe.js');
      const kvm = await probeKvm();
      if (!kvm.usable) throw new Error(`needs working KVM: ${kvm.reason}`);
      if (process.getuid?.() !== 0) throw new Error('the jailer needs root');
      const { detectCgroups } = await import('./process/cgroup.js');
      const cg = detectCgroups();
      if (!cg.system) throw new Error(`the jailer's cgroups: ${cg.reason}`);
      const { UidPool } = await import('./process/uids.js');
      const { ensureGuestImage } = await import('./image/ensure.js');
      const image = await ensureGuestImage((m: string) => logger.info(m));
      const { FirecrackerDriver } = await import('./drivers/firecracker/driver.js');
      return new FirecrackerDriver({
        firecrackerBin,
        jailerBin,
        stateDir: path.resolve(config.state.dir),
        hostId: config.host.id,
        jailBase: config.vm.firecracker_jail_dir,
        image,
        uids: new UidPool(path.join(config.state.dir, 'hosts', config.host.id, 'uids'), config.vm.uid_base),
        cgroups: cg.system,
        egress,
        logger,
        templates: config.vm.templates,
        templateDir: config.vm.template_dir,
      });
    },
  };
}
