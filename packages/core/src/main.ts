/**
 * main — tells whether a module is the program's entry, so an example can both be imported (by
 * tests) and run (by `tsx file.ts` or `netplex run file.ts`).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { entryKey } from './ipc/globals.js';

export { entryKey } from './ipc/globals.js';

/** isMain is true when `moduleUrl` (pass `import.meta.url`) is the entry of this process. */
export function isMain(moduleUrl: string): boolean {
  const registered = (globalThis as Record<symbol, unknown>)[entryKey];
  if (typeof registered === 'string') return registered === moduleUrl;
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
