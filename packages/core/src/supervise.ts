/**
 * supervise — the seam between core and @netplex/supervisor.
 *
 * Started directly (`tsx app.ts`), a server's run() hands the process to the supervisor, which
 * binds the ports and forks a worker of the same entry. Core does not depend on the supervisor
 * (the supervisor depends on core): the supervisor registers itself under a global symbol when it
 * is loaded, and otherwise core looks for it from the entry's own directory.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { superviseKey } from './ipc/globals.js';
import type { AnyMultiplexServer } from './multiplex-server.js';

export { inProcessEnv, superviseKey } from './ipc/globals.js';

/** Supervise runs a server under a supervisor in this process until it stops. */
export type Supervise = (server: AnyMultiplexServer, runArgs: Record<string, unknown>) => Promise<void>;

/** findSupervisor returns the supervisor's entry point, or undefined when it is not installed. */
export async function findSupervisor(): Promise<Supervise | undefined> {
  const registered = (globalThis as Record<symbol, unknown>)[superviseKey];
  if (typeof registered === 'function') return registered as Supervise;
  const entry = process.argv[1];
  if (!entry) return undefined;
  let resolved: string;
  try {
    resolved = createRequire(entry).resolve('@netplex/supervisor');
  } catch {
    return undefined;
  }
  const mod = (await import(pathToFileURL(resolved).href)) as { supervise?: Supervise };
  return mod.supervise;
}
