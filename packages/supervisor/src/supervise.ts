/**
 * supervise — what a server's run() calls when it is started directly or by `netplex run`: become
 * the supervisor of that server, with signals, the control socket, and daemonizing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, realpathSync, unlinkSync } from 'node:fs';
import { type AnyMultiplexServer, isConfigurationError, isSyslogLogFile } from '@netplex/core';
import {
  commandKey,
  type DaemonMessage,
  daemonEnv,
  isDaemonMessage,
  spareChildKey,
  spareKey,
} from '@netplex/core/internal';
import { type ControlRequest, controlPathFor, serveControl } from './control.js';
import { workerExecArgv } from './fork-worker.js';
import { Supervisor } from './supervisor.js';
import { WorkerProcess } from './worker-process.js';

export { commandKey, spareChildKey } from '@netplex/core/internal';

/** SuperviseExtras lets `netplex run` and `netplex dev` adjust the supervisor. */
/**
 * prewarm starts a spare worker for `entry` while this process loads the entry itself, so that the
 * two loads overlap (`netplex run` calls it first). supervise() takes it as its first worker.
 */
export function prewarm(entry: string): void {
  const g = globalThis as Record<symbol, unknown>;
  // The `netplex` command may have forked it already, before loading anything.
  const child = g[spareChildKey] as ChildProcess | undefined;
  g[spareChildKey] = undefined;
  g[spareKey] = new WorkerProcess({ argv: [], execArgv: workerExecArgv(entry), ...(child ? { child } : {}) });
}

export interface SuperviseExtras {
  logDestination?: NodeJS.WritableStream;
  defaults?: Record<string, unknown>;
  workerStderrLine?: (line: string) => void;
  /** Called once the supervisor serves, with it (netplex dev attaches its watcher here). */
  onStarted?: (sup: Supervisor) => void | Promise<void>;
}

/**
 * supervise runs `server` under a supervisor in this process until it stops, then exits. A bad
 * configuration prints one line and exits 2; any other start failure prints its reason and exits 1.
 */
export async function supervise(
  server: AnyMultiplexServer,
  runArgs: Record<string, unknown>,
  extras: SuperviseExtras = {},
): Promise<void> {
  const entry = realpathSync(process.argv[1] ?? '');
  const argv = process.argv.slice(2);
  const g = globalThis as Record<symbol, unknown>;
  const initialSpare = g[spareKey] as WorkerProcess | undefined;
  g[spareKey] = undefined;
  const sup = new Supervisor({
    server,
    runArgs,
    argv,
    entry,
    execArgv: workerExecArgv(entry),
    ...(extras.logDestination ? { logDestination: extras.logDestination } : {}),
    ...(extras.defaults ? { defaults: extras.defaults } : {}),
    ...(extras.workerStderrLine ? { workerStderrLine: extras.workerStderrLine } : {}),
    ...(initialSpare ? { initialSpare } : {}),
  });

  let config: ReturnType<Supervisor['loadConfiguration']>;
  try {
    config = sup.loadConfiguration();
  } catch (err) {
    return await fail(err);
  }
  if ((config.background || config.setsid) && process.env[daemonEnv] !== '1') {
    // log_file Sys::Syslog is no file: the daemon's own output then goes nowhere, as with no log_file.
    await daemonize(isSyslogLogFile(config.log_file) ? undefined : config.log_file);
  }

  const onSignal: Record<string, () => void> = {
    SIGHUP: () => void sup.reload(),
    SIGTERM: () => void sup.stop(),
    SIGINT: () => void sup.stop(),
    SIGQUIT: () => void sup.stop({ graceful: true }),
    SIGUSR1: () => sup.reopenLogs(),
    SIGPIPE: () => {},
  };
  for (const [sig, fn] of Object.entries(onSignal)) process.on(sig, fn);

  // sig_passthrough: the signals it names at start go on to the workers, as Net::Server's parent
  // passes them to its children (the supervisor's own signals are not among them: see core's
  // net-server-options.ts). Handled from before the first worker starts, so that none of them can
  // end the supervisor (their default) once a worker serves.
  const passOn = (signal: NodeJS.Signals) => sup.signalWorkers(signal);
  const passed = [...config.sig_passthrough];
  for (const sig of passed) process.on(sig, passOn);

  try {
    await sup.start();
  } catch (err) {
    return await fail(err);
  }

  if (sup.config.pid_file) {
    await serveControl(controlPathFor(sup.config.pid_file), async (req: ControlRequest) => {
      switch (req.cmd) {
        case 'status':
          return sup.status();
        case 'reload':
          return sup.reload();
        case 'stop':
          setImmediate(() => void sup.stop({ graceful: req.graceful ?? false }));
          return { ok: true };
      }
    });
  }
  await extras.onStarted?.(sup);
  if (process.env[daemonEnv] === '1' && process.send) {
    const ready: DaemonMessage = { type: 'netplex:daemon-ready', pid: process.pid };
    process.send(ready);
    process.disconnect();
  }

  const code = await sup.stopped;
  if (sup.config.pid_file) {
    try {
      unlinkSync(controlPathFor(sup.config.pid_file));
    } catch {}
  }
  for (const [sig, fn] of Object.entries(onSignal)) process.off(sig, fn);
  for (const sig of passed) process.off(sig, passOn);
  process.exit(code);
}

/** fail prints a start-up error the way a user should see it (no stack trace) and exits. */
function fail(err: unknown): Promise<never> {
  const e = err as Error & { code?: string };
  const message = e.message ?? String(err);
  const code = isConfigurationError(e) ? 2 : 1;
  process.stderr.write(`netplex: ${message}\n`);
  if (process.env[daemonEnv] === '1' && process.send) {
    // The command that started this daemon prints the reason to the user.
    const failed: DaemonMessage = { type: 'netplex:daemon-failed', message, code };
    process.send(failed, () => process.exit(code));
    return new Promise<never>(() => {});
  }
  process.exit(code);
}

/**
 * daemonize runs this same command again detached, in a new session, with output to log_file, and
 * exits once it reports ready (0) or fails (its reason, non-zero). Node cannot fork(2), so the
 * daemon is a fresh process that starts over from the command line.
 */
async function daemonize(logFile: string | undefined): Promise<never> {
  const out = logFile ? openSync(logFile, 'a') : 'ignore';
  const command =
    ((globalThis as Record<symbol, unknown>)[commandKey] as string[] | undefined) ?? process.argv.slice(1);
  const child = spawn(process.execPath, [...process.execArgv, ...command], {
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
    env: { ...process.env, [daemonEnv]: '1' },
  });
  const outcome = await new Promise<{ ok: boolean; pid?: number; code?: number | null; message?: string }>(
    (resolve) => {
      child.on('message', (m: unknown) => {
        if (!isDaemonMessage(m)) return;
        if (m.type === 'netplex:daemon-ready') resolve({ ok: true, pid: m.pid });
        else resolve({ ok: false, code: m.code, message: m.message });
      });
      child.once('exit', (code) => resolve({ ok: false, code }));
    },
  );
  if (outcome.ok) {
    child.unref();
    child.disconnect();
    process.stdout.write(`netplex: running in the background, pid ${outcome.pid}\n`);
    process.exit(0);
  }
  process.stderr.write(
    outcome.message !== undefined
      ? `netplex: ${outcome.message}\n`
      : `netplex: the background server exited with code ${outcome.code} before it was ready${logFile ? `; see ${logFile}` : ''}\n`,
  );
  process.exit(outcome.code && outcome.code > 0 ? outcome.code : 1);
}
