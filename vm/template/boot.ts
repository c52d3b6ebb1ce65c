/**
 * A VM's boot with templates on: from the template, else cold. A template that cannot be built
 * or restored costs the task a cold boot, never the task itself; why is said in the log, in the
 * boot's progress and in what the boot returns.
 */
import type { Logger } from '../../common/logger.js';
import type { BootInfo, Progress } from '../driver.js';

export interface TemplateOrCold {
  /** Templates are on (and the driver's artifacts can have one). */
  templates: boolean;
  /** The driver's name, in the log. */
  driver: string;
  taskId: string;
  progress: Progress;
  signal?: AbortSignal;
  logger?: Logger;
  /** Starts the VM from its template; returns the template's key. */
  fromTemplate(): Promise<string>;
  /** Removes what a failed start from the template left (its VMM, its disk). */
  undo(): Promise<void>;
  cold(): Promise<void>;
}

export async function templateOrCold(o: TemplateOrCold): Promise<BootInfo> {
  let coldReason: string | undefined;
  if (o.templates) {
    try {
      return { from: 'template', template: await o.fromTemplate() };
    } catch (err) {
      if (o.signal?.aborted) throw err;
      coldReason = (err as Error).message;
      o.logger?.warn(
        { taskId: o.taskId, reason: coldReason },
        `${o.driver}: the template did not start; booting the VM cold`,
      );
      o.progress(`booting: the template did not start (${coldReason}); booting cold`);
      await o.undo();
    }
  }
  await o.cold();
  return coldReason
    ? { from: 'cold', reason: `the template did not start: ${coldReason}` }
    : { from: 'cold' };
}
