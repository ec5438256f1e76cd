/**
 * Running an example under the real supervisor (`netplex run`), for the examples' tests: the
 * process is ended by pid when the test ends, and what the supervisor says at start about the
 * migration transports is read the same way everywhere.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const netplex = join(here, '..', '..', 'supervisor', 'bin', 'netplex.js');

/** The migration transports, as in supervisor/test/helpers/transports.ts (this package cannot import it). */
export const TRANSPORTS = ['direct', 'relay'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** What the supervisor logs at start when migrations cannot go direct. */
export const NO_DIRECT =
  /live migration goes through the supervisor \(relay\): the native unix-socket module is unavailable \(([^)]*)\)/;

/** runNetplex starts `netplex run ENTRY ARGS` with its log (stderr) piped; it is stopped when the test ends. */
export function runNetplex(entry: string, args: string[]): ChildProcess {
  const proc = spawn(process.execPath, [netplex, 'run', entry, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  onTestFinished(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await gone;
  });
  return proc;
}
