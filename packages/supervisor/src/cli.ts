/**
 * cli — the `netplex` command: run, dev, reload, stop, status.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { formatBindTarget, formatHelp, isConfigurationError, serverOptions } from '@netplex/core';
import { commandKey, entryKey, superviseKey } from '@netplex/core/internal';
import { askControl, controlPathFor } from './control.js';
import { STATUS_ANSWER_TIMEOUT_MS, STOP_POLL_MS } from './defaults.js';
import { SupervisorError } from './errors.js';
import { isTypeScript } from './fork-worker.js';
import { readPidFile } from './pidfile.js';
import type { ReloadResult } from './reload.js';
import type { SupervisorStatus, WorkerInfo } from './status.js';
import { prewarm, supervise } from './supervise.js';

const USAGE = `Usage:
  netplex run ENTRY [options]        start ENTRY's server under the supervisor
  netplex dev ENTRY [options]        the same, reloading on every file save
  netplex reload --pid_file=F [--wait]   reload with zero downtime (SIGHUP); --wait reports the outcome
  netplex stop --pid_file=F [--graceful] [--timeout=S]
                                         stop (SIGTERM); --graceful drains connections first (SIGQUIT);
                                         waits up to S seconds (60) for it to be gone, else exits 1
  netplex status --pid_file=F [--json]   supervisor and worker figures
  netplex --help | --version

ENTRY is a .ts or .js file whose server class calls run(). Options for the server follow the entry
(--key=value, --key value, key=value); \`netplex run ENTRY --help\` adds the server's own options.`;

/** version is this package's version. */
export function version(): string {
  // By the package's own name: this module runs from dist/ or from dist/bundle/.
  const pkg = JSON.parse(
    readFileSync(new URL(import.meta.resolve('@netplex/supervisor/package.json')), 'utf8'),
  ) as {
    version: string;
  };
  return pkg.version;
}

/** main runs the netplex command with `argv` (without node and the script). */
export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(
          `${USAGE}\n\n${formatHelp(serverOptions, { usage: 'netplex run ENTRY [--key=value ...]' })}\n`,
        );
        return;
      case '-v':
      case '--version':
      case 'version':
        process.stdout.write(`netplex ${version()}\n`);
        return;
      case 'run':
        return await runEntry(rest, 'run');
      case 'dev':
        return await runEntry(rest, 'dev');
      case 'reload':
        return await reload(rest);
      case 'stop':
        return await stop(rest);
      case 'status':
        return await status(rest);
      default:
        throw new SupervisorError('SUP_ERR_USAGE', `unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    process.stderr.write(`netplex: ${e.message}\n`);
    process.exitCode = e.code === 'SUP_ERR_USAGE' || isConfigurationError(e) ? 2 : 1;
  }
}

async function runEntry(args: string[], mode: 'run' | 'dev'): Promise<void> {
  const [entryArg, ...options] = args;
  if (!entryArg || entryArg.startsWith('-')) {
    throw new SupervisorError('SUP_ERR_USAGE', `netplex ${mode} needs an entry file\n\n${USAGE}`);
  }
  const entry = resolve(entryArg);
  const url = pathToFileURL(entry).href;
  const g = globalThis as Record<symbol, unknown>;
  // Kept for daemonizing, which starts this same command again.
  g[commandKey] = process.argv.slice(1);
  // The entry sees the command line as if it had been started directly: `node ENTRY options...`.
  process.argv = [process.argv[0]!, entry, ...options];
  g[entryKey] = url;
  if (mode === 'dev') {
    const { devSupervise } = await import('./dev.js');
    g[superviseKey] = devSupervise;
  } else {
    g[superviseKey] = supervise;
    // The first worker's runtime loads while this process loads the entry (but not for --help,
    // and not when daemonizing, where this process does not stay).
    if (!options.some((o) => /^(-h|--help|--background|--setsid)(=|$)/.test(o))) prewarm(entry);
  }
  if (isTypeScript(entry)) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  await import(url);
}

function controlOptions(args: string[], extra: Record<string, { type: 'boolean' | 'string' }>) {
  const normalized = args.map((a) =>
    a.replace(/^--pid-file(=|$)/, '--pid_file$1').replace(/^pid_file=/, '--pid_file='),
  );
  const { values } = parseArgs({
    args: normalized,
    options: { pid_file: { type: 'string' }, ...extra },
    strict: true,
    allowPositionals: false,
  });
  const pidFile = values.pid_file as string | undefined;
  if (!pidFile) throw new SupervisorError('SUP_ERR_USAGE', `this command needs --pid_file=FILE\n\n${USAGE}`);
  return { pidFile: resolve(pidFile), values: values as Record<string, unknown> };
}

async function reload(args: string[]): Promise<void> {
  const { pidFile, values } = controlOptions(args, { wait: { type: 'boolean' } });
  if (!values.wait) {
    const state = readPidFile(pidFile);
    if (state.kind !== 'live')
      throw new SupervisorError('SUP_ERR_CONTROL', `no running server in ${pidFile}`);
    process.kill(state.pid, 'SIGHUP');
    process.stdout.write(`netplex: sent SIGHUP to ${state.pid}\n`);
    return;
  }
  const result = await askControl<ReloadResult>(controlPathFor(pidFile), { cmd: 'reload' });
  if (result.ok) {
    process.stdout.write(`netplex: reloaded in ${result.ms} ms, worker ${result.workerPid}\n`);
    return;
  }
  process.stderr.write(`netplex: reload failed (${result.code}): ${result.error}\n`);
  process.exitCode = 1;
}

async function stop(args: string[]): Promise<void> {
  const { pidFile, values } = controlOptions(args, {
    graceful: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  const seconds = values.timeout === undefined ? 60 : Number(values.timeout);
  if (!Number.isFinite(seconds) || seconds < 0 || String(values.timeout).trim() === '')
    throw new SupervisorError(
      'SUP_ERR_USAGE',
      `--timeout must be a number of seconds >= 0, got ${JSON.stringify(values.timeout)}`,
    );
  const state = readPidFile(pidFile);
  if (state.kind !== 'live') throw new SupervisorError('SUP_ERR_CONTROL', `no running server in ${pidFile}`);
  const signal = values.graceful ? 'SIGQUIT' : 'SIGTERM';
  process.kill(state.pid, signal);
  // Wait until it is gone, so that a script can rely on the port being free afterwards.
  const deadline = Date.now() + seconds * 1000;
  while (readPidFile(pidFile).kind === 'live' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, STOP_POLL_MS));
  }
  if (readPidFile(pidFile).kind === 'live') {
    const doing = values.graceful ? 'still serving its open connections' : 'still running';
    throw new SupervisorError(
      'SUP_ERR_CONTROL',
      `server ${state.pid} is ${doing} ${seconds} s after ${signal}; run netplex stop again without --graceful, or check its log`,
    );
  }
  process.stdout.write(`netplex: stopped ${state.pid}\n`);
}

async function status(args: string[]): Promise<void> {
  const { pidFile, values } = controlOptions(args, { json: { type: 'boolean' } });
  const s = await askControl<SupervisorStatus>(
    controlPathFor(pidFile),
    { cmd: 'status' },
    STATUS_ANSWER_TIMEOUT_MS,
  );
  if (values.json) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  const ports = s.ports.map(formatBindTarget);
  const lines = [
    `state           ${s.state}`,
    `supervisor pid  ${s.supervisor_pid}`,
    `worker pid      ${s.worker_pid ?? '-'}`,
    `started at      ${s.started_at}`,
    `reloads         ${s.reloads}${s.last_reload_ms === null ? '' : ` (last took ${s.last_reload_ms} ms)`}`,
    `last error      ${s.last_reload_error ?? '-'}`,
    `restarts        ${s.restarts}`,
    `connections     ${s.connections ?? '-'} open, ${s.requests ?? '-'} accepted by this worker`,
    `ports           ${ports.join(' ')}`,
    '',
    ...formatWorkers(s.workers ?? []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** formatWorkers lays out status's worker list as a table, one row per process. */
export function formatWorkers(workers: readonly WorkerInfo[]): string[] {
  const rows = [
    ['pid', 'role', 'generation', 'connections', 'started at'],
    ...workers.map((w) => [
      String(w.pid),
      w.role,
      w.generation === null ? '-' : String(w.generation),
      w.connections === null ? '-' : String(w.connections),
      w.started_at,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '),
  );
}
