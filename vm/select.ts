/**
 * Picks the VM driver: LIA__VM__DRIVER, or for `auto` the best that really works here —
 * firecracker (KVM) > qemu (KVM) > qemu (TCG) > local. Local never comes silently.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import type { VmDriver } from './driver.js';
import type { EgressProxy } from './egress/proxy.js';

export const LOCAL_WARNING =
  'VM driver "local": agents run as plain host processes with NO isolation. For development only.';

function hasBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export async function selectDriver(config: Config, logger: Logger, egress?: EgressProxy): Promise<VmDriver> {
  const stateDir = config.state.dir;
  const hostId = config.host.id;
  const wanted = config.vm.driver;
  const local = async () => {
    const { LocalDriver } = await import('./drivers/local.js');
    logger.warn(LOCAL_WARNING);
    return new LocalDriver({ stateDir, hostId, logger });
  };
  if (wanted === 'local') return local();

  const { probeKvm } = await import('./kvm-probe.js');
  const kvm = await probeKvm();
  if (
    wanted === 'firecracker' ||
    (wanted === 'auto' && kvm.usable && hasBinary('firecracker') && hasBinary('jailer'))
  ) {
    if (!kvm.usable) throw new Error(`LIA__VM__DRIVER=firecracker needs working KVM: ${kvm.reason}`);
    const which = (name: string) =>
      spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
    if (!which('firecracker') || !which('jailer'))
      throw new Error('firecracker and jailer must be on PATH (see vm/setup.sh)');
    const { ensureGuestImage } = await import('./image/ensure.js');
    const image = await ensureGuestImage((m: string) => logger.info(m));
    const user = spawnSync('id', ['-u', 'lia-vm'], { encoding: 'utf8' });
    if (user.status !== 0) throw new Error('the user lia-vm is missing (vm/setup.sh creates it)');
    const uid = Number(user.stdout.trim());
    const { FirecrackerDriver } = await import('./drivers/firecracker/driver.js');
    logger.info({ driver: 'firecracker', accel: 'kvm' }, 'VM driver selected');
    return new FirecrackerDriver({
      firecrackerBin: which('firecracker'),
      jailerBin: which('jailer'),
      chrootBase: '/srv/lia/jailer',
      kernelPath: image.vmlinux ?? image.kernel,
      rootfsPath: image.rootfs,
      uid,
      gid: uid,
      logger,
    });
  }
  if (wanted === 'qemu' || wanted === 'auto') {
    if (!hasBinary('qemu-system-x86_64')) {
      if (wanted === 'qemu')
        throw new Error(
          'LIA__VM__DRIVER=qemu but qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)',
        );
      logger.warn('qemu-system-x86_64 not found; falling back to the local driver');
      return local();
    }
    const accel = kvm.usable ? 'kvm' : 'tcg';
    if (!kvm.usable)
      logger.warn({ reason: kvm.reason }, 'KVM does not run a vCPU here: QEMU uses software emulation (TCG)');
    const { ensureGuestImage } = await import('./image/ensure.js');
    const image = await ensureGuestImage((m: string) => logger.info(m));
    const { QemuDriver } = await import('./drivers/qemu/driver.js');
    logger.info({ driver: 'qemu', accel }, 'VM driver selected');
    const driver = new QemuDriver({ stateDir: path.resolve(stateDir), hostId, image, accel, logger, egress });
    await driver.adopt();
    return driver;
  }
  return local();
}
