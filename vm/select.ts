/**
 * Picks the VM driver: LIA__VM__DRIVER, or for `auto` the best that really works here —
 * firecracker (KVM) > qemu (KVM) > qemu (TCG) > local. Local never comes silently.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import type { VmDriver } from './driver.js';

export const LOCAL_WARNING =
  'VM driver "local": agents run as plain host processes with NO isolation. For development only.';

function hasBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export async function selectDriver(config: Config, logger: Logger): Promise<VmDriver> {
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
  if (wanted === 'firecracker' || (wanted === 'auto' && kvm.usable && hasBinary('firecracker'))) {
    if (!kvm.usable) throw new Error(`LIA__VM__DRIVER=firecracker needs working KVM: ${kvm.reason}`);
    throw new Error('the firecracker driver is not available in this build; use LIA__VM__DRIVER=qemu');
  }
  if (wanted === 'qemu' || wanted === 'auto') {
    if (!hasBinary('qemu-system-x86_64')) {
      if (wanted === 'qemu') throw new Error('LIA__VM__DRIVER=qemu but qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)');
      logger.warn('qemu-system-x86_64 not found; falling back to the local driver');
      return local();
    }
    const accel = kvm.usable ? 'kvm' : 'tcg';
    if (!kvm.usable) logger.warn({ reason: kvm.reason }, 'KVM does not run a vCPU here: QEMU uses software emulation (TCG)');
    const { ensureGuestImage } = await import('./image/ensure.js');
    const image = await ensureGuestImage((m: string) => logger.info(m));
    const { QemuDriver } = await import('./drivers/qemu.js');
    logger.info({ driver: 'qemu', accel }, 'VM driver selected');
    return new QemuDriver({ stateDir: path.resolve(stateDir), hostId, image, accel, logger });
  }
  return local();
}
