/**
 * fork-worker — how a worker process is started. It imports nothing but Node and core's list of
 * process-wide names (a module without imports), so that the `netplex` command can start the first
 * worker's runtime loading before it loads anything itself.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { workerEnv } from '@netplex/core/globals';

export { spareChildKey } from '@netplex/core/globals';

/** The bootstrap every worker runs: it loads the entry and reports a failure to load it. */
const workerMain = fileURLToPath(new URL('./worker-main.js', import.meta.url));

/** isTypeScript tells whether an entry needs the TypeScript loader. */
export function isTypeScript(entry: string): boolean {
  return /\.(ts|mts|cts|tsx)$/.test(entry);
}

/** workerExecArgv gives the Node flags a worker of `entry` needs: this process's, plus tsx for TypeScript. */
export function workerExecArgv(entry: string): string[] {
  const own = process.execArgv.filter((a) => !a.startsWith('--inspect'));
  if (!isTypeScript(entry) || own.some((a) => a.includes('tsx'))) return own;
  return [...own, '--import', import.meta.resolve('tsx')];
}

/** WorkerForkOptions are what a worker process is started with. */
export interface WorkerForkOptions {
  /** The entry to run; without one the worker is a spare that waits to be given one. */
  entry?: string | undefined;
  argv: string[];
  execArgv: string[];
  env?: NodeJS.ProcessEnv | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  /** Pipe stderr to the parent (netplex dev reads it line by line) instead of sharing it. */
  pipeStderr?: boolean;
}

/** forkWorker starts a worker process. A spare (no entry) does not keep its parent alive. */
export function forkWorker(opts: WorkerForkOptions): ChildProcess {
  const child = fork(workerMain, opts.entry === undefined ? [] : [opts.entry, ...opts.argv], {
    execArgv: opts.execArgv,
    env: { ...process.env, ...opts.env, [workerEnv]: '1' },
    stdio: ['ignore', 'inherit', opts.pipeStderr ? 'pipe' : 'inherit', 'ipc'],
    // Its own process group: Ctrl-C at a terminal reaches the supervisor only, which then stops
    // the worker in order (close hooks run) instead of both dying at once.
    detached: true,
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  if (opts.entry === undefined) {
    child.unref();
    (child.channel as { unref?: () => void } | null | undefined)?.unref?.();
  }
  return child;
}
