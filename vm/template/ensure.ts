/**
 * A driver's templates, found where built, built where missing. Concurrent boots of one size in
 * a worker share one build; builds by other workers wait for the machine's build lock, and the
 * template built while this one waited is found, not built again.
 */
import type { Progress } from '../driver.js';
import { findTemplate, type TemplateMeta, withTemplateLock } from './template.js';

export interface Found {
  dir: string;
  meta: TemplateMeta;
}

export class TemplateBuilds<T> {
  private readonly pending = new Map<string, Promise<T>>();

  /** The template `key` under `root`: `found` describes a built one, `build` makes it. */
  async ensure(
    root: string,
    key: string,
    progress: Progress,
    o: { found: (t: Found) => T; build: () => Promise<T> },
  ): Promise<T> {
    const found = findTemplate(root, key);
    if (found) return o.found(found);
    let p = this.pending.get(key);
    if (!p) {
      p = withTemplateLock(root, progress, async () => {
        const again = findTemplate(root, key);
        if (again) return o.found(again);
        return o.build();
      });
      this.pending.set(key, p);
      p.finally(() => this.pending.delete(key)).catch(() => {});
    }
    return p;
  }
}
