/**
 * server/launch — how a server's run() starts: as a worker under the supervisor (the supervisor
 * forked this process), handed to the supervisor (started directly, with @netplex/supervisor
 * installed), or in this process. The only module that knows all three.
 *
 * Core does not depend on the supervisor (the supervisor depends on core): the supervisor registers
 * itself under a global symbol when it is loaded, and otherwise core looks for it from the entry's
 * own directory.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { importModule } from '../dynamic-import.js';
import { isConfigurationError } from '../errors.js';
import { inProcessEnv, superviseKey, workerEnv } from '../ipc/globals.js';
import { runWorker } from '../ipc/worker.js';
import type { WorkerHost } from '../ipc/worker-host.js';
import type { LogLevel } from '../logger.js';
import type { StartOptions } from './types.js';

/** Supervise runs a server (a MultiplexServer) under a supervisor in this process until it stops. */
export type Supervise = (server: object, runArgs: Record<string, unknown>) => Promise<void>;

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
  const mod = (await importModule(pathToFileURL(resolved).href)) as { supervise?: Supervise };
  return mod.supervise;
}

/** Launchable is the server as run() launches it. */
export interface Launchable {
  help(): string;
  runInProcess(runArgs: Record<string, unknown>): Promise<void>;
}

/**
 * launch is run(): under the supervisor (a forked worker) it serves the handles the supervisor
 * passes; started directly, it hands the process to the supervisor when @netplex/supervisor is
 * installed, and otherwise serves in this process. `host` is the server as the worker drives it.
 */
export async function launch(
  server: Launchable,
  host: () => WorkerHost,
  runArgs: Record<string, unknown>,
): Promise<void> {
  if (process.env[workerEnv] === '1' && process.send) return runWorker(host(), runArgs);
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${server.help()}\n`);
    return;
  }
  if (process.env[inProcessEnv] !== '1') {
    const supervise = await findSupervisor();
    if (supervise) return supervise(server, runArgs);
  }
  return server.runInProcess(runArgs);
}

/** InProcess is the server as it serves in this process. */
export interface InProcess {
  start(options: StartOptions): Promise<unknown>;
  readonly done: Promise<void>;
  close(): Promise<void>;
  log(level: LogLevel, message: string): void;
}

/** runInProcess serves in this process, without a supervisor: SIGINT, SIGTERM and SIGQUIT stop it. */
export async function runInProcess(server: InProcess, runArgs: Record<string, unknown>): Promise<void> {
  const onSignal = (signal: NodeJS.Signals) => {
    server.log(2, `received SIG${signal.replace(/^SIG/, '')}, shutting down`);
    void server.close();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGQUIT'];
  for (const s of signals) process.on(s, onSignal);
  try {
    await server.start({ argv: process.argv.slice(2), run: runArgs });
    await server.done;
  } catch (err) {
    // A command-line user gets one line, not a stack: the reason, and exit 2 for bad configuration.
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = isConfigurationError(err) ? 2 : 1;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}
