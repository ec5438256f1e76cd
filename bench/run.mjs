#!/usr/bin/env node
// @ts-check
/**
 * run — `pnpm bench`: netplex against raw node:net, node:http, Perl's Net::Server::Multiplex and the
 * usual Node restarters, side by side in one run. Writes bench/results.md and bench/results.json.
 *
 *   pnpm bench                 the full suite (about 10 minutes on 2 cores)
 *   pnpm bench --quick         a few seconds per scenario; checks every scenario ran and verified
 *                              its bytes (exit 1 otherwise); writes bench/build/quick-results.*
 *   pnpm bench --only=echo,reload   run some scenarios (echo lines http memory reload migrate startup);
 *                              a full run with --only replaces just those in bench/results.*, and the
 *                              table says which scenarios were run again, and when
 *
 * This machine is shared and noisy, so every comparison is a ratio measured in the same run: the
 * systems alternate within each round (the order rotates), and results are the median and min–max
 * over the rounds. Servers run pinned to CPU 0, the load (bench/loadgen.c, wrk) to CPU 1.
 *
 * Every child this starts is tracked by pid and ended (SIGTERM, then SIGKILL) when its scenario
 * ends, and again on any exit path, so that no server outlives the run. All traffic is loopback.
 * BENCH_IDLE_CONNS sets the idle-memory connection count (default 10000; 1000 with --quick).
 * BENCH_BUSY_CONNS sets the busy migration scenario's connections with --quick (default 100).
 *
 * The reload scenario's PM2 baselines need PM2, which is not a workspace dependency: a full run
 * installs a pinned version with npm into bench/build/pm2 when it is missing; --quick runs them only
 * if it is there. Without it (no network) those rows are left out and the table says why.
 *
 * This file only orchestrates: the arguments, which scenarios run, and writing the results. Each
 * scenario is a function of the run's Context in bench/scenarios/, the helpers are in bench/lib/.
 */
/** @import { Context } from './lib/context.mjs' */
import { join, relative } from 'node:path';
import { configFor } from './lib/config.mjs';
import { pinCpus } from './lib/cpu.mjs';
import { messageOf } from './lib/errors.mjs';
import { ensureExamples } from './lib/examples.mjs';
import { failureRecorder } from './lib/failures.mjs';
import { buildLoadgen } from './lib/loadgen.mjs';
import { log } from './lib/log.mjs';
import { BENCH, BUILD, ROOT } from './lib/paths.mjs';
import { createResults, keepSoak, mergeInto, writeResults } from './lib/results.mjs';
import { detectTools } from './lib/tools.mjs';
import { Tracker } from './lib/tracker.mjs';
import { echo } from './scenarios/echo.mjs';
import { http } from './scenarios/http.mjs';
import { lines } from './scenarios/lines.mjs';
import { memory } from './scenarios/memory.mjs';
import { migrate } from './scenarios/migrate.mjs';
import { reload } from './scenarios/reload.mjs';
import { soak } from './scenarios/soak.mjs';
import { startup } from './scenarios/startup.mjs';

/** @type {[string, (ctx: Context) => Promise<object>][]} The scenarios, in the order they run. */
const SCENARIOS = [
  ['echo', echo],
  ['lines', lines],
  ['http', http],
  ['memory', memory],
  ['reload', reload],
  ['migrate', migrate],
  ['startup', startup],
];

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const only = argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
const soakArg = argv.find((a) => a.startsWith('--soak='));
const soakMinutes = soakArg ? Number(soakArg.slice(7)) : undefined;
if (argv.includes('--soak') || (soakMinutes !== undefined && !(soakMinutes > 0))) {
  log(`--soak=MINUTES needs a positive number of minutes, not ${soakArg ?? '--soak'}`);
  process.exit(2);
}
const cfg = configFor(quick, process.env);
const { BENCH_BUSY_CONNS } = process.env;

// Every child is tracked from here on, and ended on every exit path.
const tracker = new Tracker();
process.on('exit', () => tracker.killEverything());
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.on(sig, () => {
    log(`${sig}: stopping every server`);
    tracker.killEverything();
    process.exit(130);
  });
}

const cpu = pinCpus(log);
const tools = detectTools();
const results = createResults({ quick, cfg, cpu, skipped: tools.skipped });
const { failures, fail } = failureRecorder(log);
/** @type {Context} */
const ctx = {
  quick,
  cfg,
  tracker,
  cpu,
  tools,
  log,
  fail,
  quickBusyConns: Number(BENCH_BUSY_CONNS ?? 100),
};

async function main() {
  const began = Date.now();
  buildLoadgen();
  ensureExamples(log);
  log(
    `${quick ? 'quick' : 'full'} run on ${cpu.cores} cores, Node ${process.version}${cpu.pinned ? ', pinned' : ''}`,
  );
  for (const s of tools.skipped) log(`skipped: ${s}`);
  /** @type {[string, (ctx: Context) => Promise<object>][]} */
  const scenarios = soakMinutes ? [['soak', (c) => soak(c, soakMinutes)]] : SCENARIOS;
  for (const [name, run] of scenarios) {
    if (only && !soakMinutes && !only.includes(name)) continue;
    log(`--- ${name}`);
    try {
      results.scenarios[name] = await run(ctx);
    } catch (err) {
      results.scenarios[name] = { error: messageOf(err) };
      fail(name, messageOf(err));
    }
  }
  const seconds = Math.round((Date.now() - began) / 1000);
  results.seconds = seconds;
  const soakResult = /** @type {{ failures?: string[] } | undefined} */ (results.scenarios.soak);
  for (const f of soakResult?.failures ?? []) fail('soak', f);
  results.failures = failures;
  const base = quick && !soakMinutes ? join(BUILD, 'quick-results') : join(BENCH, 'results');
  // --only and --soak replace just their scenarios; a full run keeps the last soak.
  if (soakMinutes || (only && !quick)) mergeInto(results, `${base}.json`);
  else if (!quick) keepSoak(results, `${base}.json`);
  writeResults(results, base);
  // This run's time: merging --only results keeps the full run's `seconds`.
  log(`wrote ${relative(ROOT, base)}.md and .json in ${seconds} s`);
  if (failures.length) {
    log(`${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

try {
  await main();
} finally {
  tracker.killEverything();
}
