/**
 * Optional JSON persistence of the emulator's tables, so that `npm run fortigate-emulator` keeps its
 * configuration across restarts like a real box. Saves are debounced (a burst of writes costs one file
 * write) and atomic (temp file + rename), and never overlap.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StateSnapshot } from './state';

const DEBOUNCE_MS = 100;

export class StateFile {
  private timer?: NodeJS.Timeout;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly snapshot: () => StateSnapshot,
  ) {}

  /** The saved snapshot, or undefined when there is none yet. */
  load(): StateSnapshot | undefined {
    if (!existsSync(this.path)) return undefined;
    try {
      return JSON.parse(readFileSync(this.path, 'utf8')) as StateSnapshot;
    } catch (err) {
      throw new Error(`cannot read emulator state file ${this.path}: ${(err as Error).message}`);
    }
  }

  scheduleSave(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.save();
    }, DEBOUNCE_MS);
  }

  /** Writes any pending change now (on close). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      await this.save();
    }
    await this.saving;
  }

  private save(): Promise<void> {
    const text = JSON.stringify(this.snapshot(), null, 2);
    this.saving = this.saving
      .then(async () => {
        await mkdir(dirname(this.path), { recursive: true });
        const temp = `${this.path}.tmp`;
        await writeFile(temp, text);
        await rename(temp, this.path);
      })
      // A failed save must not break the emulator (nor leave an unhandled rejection); the next one retries.
      .catch((err: Error) => process.emitWarning(`emulator state not saved to ${this.path}: ${err.message}`));
    return this.saving;
  }
}
