/**
 * fork-worker — how a worker process is started. It imports nothing but Node, core's list of
 * process-wide names (a module without imports) and the native unix-socket module's loader, so that
 * the `netplex` command can start the first worker's runtime loading before it loads anything itself.
 *
 * When the native module is there, each worker gets one end of a unix socket pair of its own (the
 * link control socket, as descriptor LINK_FD): the supervisor hands it the end of each direct
 * migration link over it (see migration-relay.ts).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { linkFdEnv, workerEnv } from '@netplex/core/globals';
import { loadUnix } from '@netplex/unix';

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

/** The descriptor a worker has its end of the link control socket as. */
export const LINK_FD = 4;

/** The supervisor's end of each worker's link control socket. */
const linkControls = new WeakMap<ChildProcess, number>();

/** linkControlOf gives the supervisor's end of `child`'s link control socket, if it has one. */
export function linkControlOf(child: ChildProcess): number | undefined {
  return linkControls.get(child);
}

/** forkWorker starts a worker process. A spare (no entry) does not keep its parent alive. */
export function forkWorker(opts: WorkerForkOptions): ChildProcess {
  const unix = loadUnix();
  const pair = unix?.seqpacketPair();
  const control = Array.isArray(pair) ? pair : undefined;
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, [workerEnv]: '1' };
  if (control) env[linkFdEnv] = String(LINK_FD);
  else delete env[linkFdEnv];
  let child: ChildProcess;
  try {
    child = spawnWorker(opts, env, control?.[1]);
  } catch (err) {
    if (control) for (const fd of control) unix!.close(fd);
    throw err;
  }
  if (control) {
    // The worker has its own copy now.
    unix!.close(control[1]);
    linkControls.set(child, control[0]);
    child.once('exit', () => {
      unix!.close(control[0]);
      linkControls.delete(child);
    });
  }
  if (opts.entry === undefined) {
    child.unref();
    (child.channel as { unref?: () => void } | null | undefined)?.unref?.();
  }
  return child;
}

function spawnWorker(
  opts: WorkerForkOptions,
  env: NodeJS.ProcessEnv,
  linkEnd: number | undefined,
): ChildProcess {
  return fork(workerMain, opts.entry === undefined ? [] : [opts.entry, ...opts.argv], {
    execArgv: opts.execArgv,
    env,
    stdio: [
      'ignore',
      'inherit',
      opts.pipeStderr ? 'pipe' : 'inherit',
      'ipc',
      ...(linkEnd === undefined ? [] : [linkEnd]),
    ],
    // Its own process group: Ctrl-C at a terminal reaches the supervisor only, which then stops
    // the worker in order (close hooks run) instead of both dying at once.
    detached: true,
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
}
