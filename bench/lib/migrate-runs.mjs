// @ts-check
/**
 * migrate-runs — one live migration (reload_mode migrate) of netplex's echo.js on SIGHUP, over a
 * given transport: with idle connections held by the C client, or busy until the old worker is
 * empty (the echo load runs until the old worker holds no connection, then stops, every byte
 * verified).
 */
/** @import { Context } from './context.mjs' */
/** @import { EchoReport } from './loadgen.mjs' */
/** @import { ControlStatus } from './control.mjs' */
import { join } from 'node:path';
import { sleep } from './clock.mjs';
import { controlStatus, waitEmptied } from './control.mjs';
import { holdIdle } from './idle.mjs';
import { startLoadgen } from './loadgen.mjs';
import { startNetplex, waitReloads } from './netplex.mjs';
import { EXAMPLES } from './paths.mjs';

/** The migration transports, in the order of their rows; `auto` is netplex's default, not a row. */
export const TRANSPORTS = /** @type {const} */ (['direct', 'relay']);
/** @typedef {(typeof TRANSPORTS)[number]} Transport */

/**
 * How long the old worker may take to hand over every busy connection before the row fails: relay
 * moves about 40 busy connections a second on 2 cores (docs/reference/known-gaps.md), so 1,000 take
 * about 25 s, and a loaded machine needs room beyond that.
 */
export const EMPTY_WITHIN_MS = 60_000;

/**
 * How a row asks for its transport: `args` for the netplex command line (none while netplex has no
 * migration_transport option: its only transport, relay, then runs by default).
 * @typedef {{ transport: Transport, args: string[] }} Asked
 */

/**
 * asked is the command line that asks netplex for `transport` (`optionKnown`: netplex has the option).
 * @param {Transport} transport
 * @param {boolean} optionKnown
 * @returns {Asked}
 */
export const asked = (transport, optionKnown) => ({
  transport,
  args: optionKnown ? [`--migration_transport=${transport}`] : [],
});

/**
 * transportOf is the transport the last migration used by the status, else the one asked for.
 * @param {ControlStatus | import('./netplex.mjs').NetplexStatus | undefined} st
 * @param {Transport} fallback
 * @returns {string}
 */
const transportOf = (st, fallback) => st?.last_migration?.transport ?? fallback;

/**
 * BACKLOG is the listen backlog the migration rows ask for: with the default 511, 10,000 clients
 * that connect at once and start echoing at once leave thousands waiting in SYN retries (backing off
 * for seconds) while the worker is busy with the rest; the kernel caps it at somaxconn.
 */
const BACKLOG = 16_384;

/**
 * startEcho runs netplex echo.js with the transport's options.
 * @param {Context} ctx
 * @param {Asked} a
 */
const startEcho = (ctx, a) =>
  startNetplex(ctx, join(EXAMPLES, 'dist/echo.js'), { args: [...a.args, `--listen=${BACKLOG}`] });

/**
 * migrateIdle holds `conns` idle connections to netplex echo.js, reloads (migrate) and reads how
 * long the migration took and how many moved; then checks that every connection is still there.
 * @param {Context} ctx
 * @param {Asked} a
 * @param {number} conns
 */
export async function migrateIdle(ctx, a, conns) {
  const server = await startEcho(ctx, a);
  try {
    const { held, release } = await holdIdle(ctx, server.port, conns);
    process.kill(server.supervisorPid, 'SIGHUP');
    const st = await waitReloads(server.pidFile, 1);
    const done = await release();
    return {
      conns,
      transport: transportOf(st, a.transport),
      migrated: st.last_migration?.migrated ?? 0,
      failed: st.last_migration?.failed ?? 0,
      migrate_ms: st.last_migration?.ms ?? null,
      reload_ms: st.last_reload_ms,
      ok: done.ok === true && held.accepted === conns && st.last_migration?.migrated === conns,
    };
  } finally {
    await server.stop();
  }
}

/**
 * waitConnections polls the status until the serving worker holds `conns` connections (bounded).
 * @param {string} pidFile
 * @param {number} conns
 * @param {number} ms
 */
async function waitConnections(pidFile, conns, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const st = await controlStatus(pidFile);
    if ((st?.workers?.find((w) => w.role === 'serving')?.connections ?? 0) >= conns) return;
    await sleep(50);
  }
  throw new Error(`the worker did not hold ${conns} connections within ${ms} ms`);
}

/**
 * migrateBusy runs the echo load (`conns` x 1, every byte verified) against netplex echo.js,
 * reloads (migrate) once it is steady, and keeps the load running until the old worker holds no
 * connection (bounded by EMPTY_WITHIN_MS), then stops it. The longest round trip any client saw is
 * the longest pause the migration caused; p99 and msgs/s cover the whole measured window.
 * @param {Context} ctx
 * @param {Asked} a
 * @param {number} conns
 */
export async function migrateBusy(ctx, a, conns) {
  const server = await startEcho(ctx, a);
  try {
    const args = ['echo', '--port', String(server.port), '--conns', String(conns), '--depth', '1'];
    args.push('--duration', '600', '--warmup', '0.5');
    const load = startLoadgen(ctx, args, 660_000);
    /** @type {Promise<EchoReport>} */
    const report = load.done;
    report.catch(() => {}); // awaited below; this only keeps an early failure from being unhandled
    await waitConnections(server.pidFile, conns, 30_000);
    await sleep(ctx.quick ? 800 : 1500); // past the warm-up, into steady state
    const oldPid = server.pid;
    const t0 = performance.now();
    process.kill(server.supervisorPid, 'SIGHUP');
    const emptied = await waitEmptied(server.pidFile, oldPid, EMPTY_WITHIN_MS);
    load.stop();
    const res = await report;
    // The reload's counts, also when some connections stayed to drain (they say how many).
    const st = await waitReloads(server.pidFile, 1, 15_000).catch(() => undefined);
    const drained = st?.last_migration?.drained;
    const error =
      'at' in emptied
        ? undefined
        : `the old worker still held ${emptied.held ?? 'an unknown number of'} connections ${EMPTY_WITHIN_MS / 1000} s after the reload (${st?.last_migration?.migrated ?? 'an unknown number'} moved, ${drained ?? 'an unknown number'} left to drain)`;
    return {
      conns,
      transport: transportOf(st, a.transport),
      empty_ms: 'at' in emptied ? emptied.at - t0 : null,
      migrated: st?.last_migration?.migrated ?? 0,
      migrate_ms: st?.last_migration?.ms ?? null,
      max_pause_ms: res.max_us / 1000,
      p99_ms: res.p99_us / 1000,
      msgs_per_s: res.msgs_per_s,
      bytes_verified: res.bytes_verified,
      error,
      ok: res.ok === true && !error,
    };
  } finally {
    await server.stop();
  }
}
