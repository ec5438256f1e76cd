// @ts-check
/** netplex — running a server under the supervisor (`netplex run`, `netplex dev`) and reading its status. */
/** @import { Context } from './context.mjs' */
/** @import { Server, ServerChild } from './servers.mjs' */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runCaptured } from './capture.mjs';
import { sleep } from './clock.mjs';
import { jsonLine } from './json-line.mjs';
import { BUILD, NETPLEX, ROOT } from './paths.mjs';
import { pidOf, spawnServer, waitLine } from './servers.mjs';
import { stopChild } from './tracker.mjs';

/**
 * A server under the supervisor: `pid` is its worker's, `supervisorPid` the supervisor's (the one to
 * signal), `pidFile` where `netplex status` finds it.
 * @typedef {Server & { pidFile: string, supervisorPid: number, child: ServerChild }} NetplexServer
 */

/**
 * What `netplex status --json` reports, in the parts the bench reads.
 * @typedef {object} NetplexStatus
 * @property {number} [worker_pid]
 * @property {{ port: number }[]} [ports]
 * @property {number} reloads
 * @property {number} [last_reload_ms]
 * @property {{ migrated: number, drained: number, failed: number, ms: number, transport?: 'direct' | 'relay' }} [last_migration]
 *   (`transport`: how the connections moved, once netplex has the migration_transport option)
 */

/**
 * startNetplex runs ENTRY under the supervisor (`netplex run`, or `netplex dev`).
 * @param {Pick<Context, 'tracker' | 'cpu'>} ctx
 * @param {string} entry
 * @param {{ dev?: boolean, port?: number, args?: string[] }} [options]  `args`: more options for the server
 * @returns {Promise<NetplexServer>}
 */
export async function startNetplex(ctx, entry, { dev = false, port = 0, args = [] } = {}) {
  const pidFile = join(BUILD, `netplex-${process.pid}-${Math.random().toString(36).slice(2)}.pid`);
  const child = spawnServer(ctx, process.execPath, [
    NETPLEX,
    dev ? 'dev' : 'run',
    entry,
    `--port=127.0.0.1:${port}`,
    `--pid_file=${pidFile}`,
    ...args,
  ]);
  // The log format is the supervisor's to change (JSON, or pretty under `dev`): only the message is
  // relied on, and the port and worker come from `netplex status --json`.
  await waitLine(
    child,
    (line) => (/serving with worker \d+/.test(line) ? true : undefined),
    `netplex ${relative(ROOT, entry)}`,
  );
  const ready = await netplexStatus(pidFile);
  ctx.tracker.mark(ready.worker, entry);
  return {
    pidFile,
    port: ready.port,
    pid: ready.worker,
    supervisorPid: pidOf(child),
    child,
    stop: async () => {
      await stopChild(child);
      ctx.tracker.killStray('SIGKILL', entry);
      rmSync(pidFile, { force: true });
    },
  };
}

/**
 * netplexStatus asks the supervisor for its port and worker pid (its control socket may lag the log line).
 * @param {string} pidFile
 * @returns {Promise<{ port: number, worker: number }>}
 */
export async function netplexStatus(pidFile) {
  for (let i = 0; i < 50; i++) {
    const j = statusJson(pidFile);
    if (j?.worker_pid && j.ports?.[0]?.port) return { port: j.ports[0].port, worker: j.worker_pid };
    await sleep(100);
  }
  throw new Error(`netplex status --pid_file=${pidFile} gave no port and worker`);
}

/**
 * statusJson reads `netplex status --json` (the whole object), or undefined when it fails.
 * @param {string} pidFile
 * @returns {NetplexStatus | undefined}
 */
export function statusJson(pidFile) {
  const r = spawnSync(process.execPath, [NETPLEX, 'status', `--pid_file=${pidFile}`, '--json'], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  return r.status === 0 ? jsonLine(r.stdout.trim()) : undefined;
}

/**
 * waitReloads polls the status until `n` reloads are done (bounded), and returns it.
 * @param {string} pidFile
 * @param {number} n
 * @param {number} [ms]
 * @returns {Promise<NetplexStatus>}
 */
export async function waitReloads(pidFile, n, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const st = statusJson(pidFile);
    if (st && st.reloads >= n) return st;
    await sleep(100);
  }
  throw new Error(`no reload ${n} within ${ms} ms`);
}

/**
 * statusAsync reads `netplex status --json` without blocking the event loop, or undefined when it
 * fails.
 * @param {import('./tracker.mjs').Tracker} tracker
 * @param {string} pidFile
 * @returns {Promise<(NetplexStatus & { restarts?: number, workers?: { pid: number, role: string, generation: number | null, connections: number | null }[] }) | undefined>}
 */
export async function statusAsync(tracker, pidFile) {
  const r = await runCaptured(
    tracker,
    process.execPath,
    [NETPLEX, 'status', `--pid_file=${pidFile}`, '--json'],
    {},
    15_000,
  );
  return r.code === 0 ? jsonLine(r.out.trim()) : undefined;
}
