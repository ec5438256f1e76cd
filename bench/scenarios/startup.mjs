// @ts-check
/**
 * startup — the time from spawning a server to its first accepted connection (an echoed line, not
 * the kernel's backlog): `netplex run` of echo.js (built) and echo.ts (tsx) against node running a
 * raw node:net echo (the baseline), on the server CPU only, and echo.js against raw node with both
 * cores free. The levers of start-up each have a row, all in the same run: netplex's runtime as
 * tsc's modules (`--conditions=netplex-modules`), bundled without the code cache
 * (NETPLEX_CODE_CACHE=0), and bundled with it (the default).
 */
/** @import { Context } from '../lib/context.mjs' */
/** @import { Summary } from '../lib/stats.mjs' */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { nowNs, sleep } from '../lib/clock.mjs';
import { EXAMPLES, NETPLEX, ROOT, SERVERS } from '../lib/paths.mjs';
import { freePort } from '../lib/ports.mjs';
import { echoOnce } from '../lib/probe.mjs';
import { push, ratios, rotate, summary } from '../lib/stats.mjs';
import { stopChild } from '../lib/tracker.mjs';

/**
 * A command to time: `args` gives node's arguments for a port; `both` runs it on every CPU;
 * `baseline` is the id it is compared with (raw when not given).
 * @typedef {object} StartupSystem
 * @property {string} id
 * @property {string} label
 * @property {(port: number) => string[]} args
 * @property {boolean} [both]
 * @property {string} [baseline]
 * @property {string[]} [node]  node's own flags, before the script
 * @property {Record<string, string>} [env]  added to the environment
 */

/**
 * startupOnce times spawn to the first echoed line (an accepted connection, not the backlog), with
 * the server pinned to one core, or free to use both (`both`: the supervisor and its first worker
 * then load side by side, as on any multi-core machine).
 * @param {Context} ctx
 * @param {string} cmd
 * @param {StartupSystem} sys
 * @param {number} [holdMs]  how long the server keeps running after it served, before it is stopped
 * @returns {Promise<number | null>} milliseconds, or null when it never served
 */
async function startupOnce(ctx, cmd, sys, holdMs = 0) {
  const port = await freePort();
  const args = [...(sys.node ?? []), ...sys.args(port)];
  // This process runs on the load CPU and its children inherit that: both cores must be asked for.
  const [c, a] = sys.both ? ctx.cpu.onEvery(cmd, args) : ctx.cpu.onServer(cmd, args);
  const t0 = nowNs();
  const env = { ...process.env, ...sys.env };
  const child = ctx.tracker.track(spawn(c, a, { cwd: ROOT, stdio: 'ignore', env }));
  try {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await echoOnce(port, 0, 1000)) {
        const ms = Number(nowNs() - t0) / 1e6;
        if (holdMs > 0) await sleep(holdMs);
        return ms;
      }
      await sleep(2);
    }
    return null;
  } finally {
    await stopChild(child);
  }
}

/** @param {Context} ctx */
export async function startup(ctx) {
  /** @param {string} entry */
  const npx = (entry) => (/** @type {number} */ port) => [NETPLEX, 'run', entry, `--port=127.0.0.1:${port}`];
  const echoJs = npx(join(EXAMPLES, 'dist/echo.js'));
  /** @type {StartupSystem[]} */
  const systems = [
    {
      id: 'netplex_js',
      label: 'netplex run echo.js (built): bundle and code cache, the default',
      args: echoJs,
    },
    {
      id: 'netplex_js_modules',
      label: 'netplex run echo.js, runtime as modules (no bundle)',
      args: echoJs,
      node: ['--conditions=netplex-modules'],
    },
    {
      id: 'netplex_js_no_cache',
      label: 'netplex run echo.js, bundle without code cache',
      args: echoJs,
      env: { NETPLEX_CODE_CACHE: '0' },
    },
    { id: 'netplex_ts', label: 'netplex run echo.ts (tsx)', args: npx(join(EXAMPLES, 'src/echo.ts')) },
    { id: 'raw', label: 'node raw-echo.mjs', args: (port) => [join(SERVERS, 'raw-echo.mjs'), String(port)] },
    {
      id: 'netplex_js_both',
      label: 'netplex run echo.js (built), both cores',
      args: echoJs,
      both: true,
      baseline: 'raw_both',
    },
    {
      id: 'raw_both',
      label: 'node raw-echo.mjs, both cores',
      args: (port) => [join(SERVERS, 'raw-echo.mjs'), String(port)],
      both: true,
    },
  ];
  /** @type {Record<string, (number | null)[]>} */
  const samples = {};
  // One start of each, not timed and kept running for 2 s: the code cache a worker writes a second
  // after it served (packages/core/src/runtime-loader.ts) is then in place, as after any real start.
  for (const sys of systems) await startupOnce(ctx, process.execPath, sys, 2000);
  for (let r = 0; r < ctx.cfg.startupTrials; r++) {
    for (const sys of rotate(systems, r)) {
      const ms = await startupOnce(ctx, process.execPath, sys);
      push(samples, sys.id, ms);
      if (ms === null) ctx.fail('startup', `${sys.id} never served`);
    }
  }
  const out = {
    systems: systems.map(({ id, label }) => ({ id, label })),
    baseline: 'raw',
    baselines: ['raw', 'raw_both'],
    trials: ctx.cfg.startupTrials,
    /** @type {Record<string, { ms: Summary | null, ratio_vs_baseline?: Summary | null }>} */
    results: {},
  };
  for (const [id, xs] of Object.entries(samples)) {
    out.results[id] = { ms: summary(xs) };
    const base = systems.find((sys) => sys.id === id)?.baseline ?? 'raw';
    if (!out.baselines.includes(id)) out.results[id].ratio_vs_baseline = ratios(xs, samples[base]);
    ctx.log(`startup ${id}: median ${out.results[id].ms?.median?.toFixed(1)} ms`);
  }
  return out;
}
