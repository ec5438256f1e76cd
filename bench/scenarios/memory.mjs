// @ts-check
/**
 * memory — the idle cost of a connection: cfg.idleConns idle connections held by the C client, and
 * the serving process's VmRSS before and after; also how long accepting them all takes on a fresh
 * process and, IDLE_BURSTS bursts later, on the same warm one. netplex's echo.js worker against a
 * raw node:net echo (the baseline).
 */
/** @import { Context } from '../lib/context.mjs' */
/** @import { Server } from '../lib/servers.mjs' */
/** @import { Summary } from '../lib/stats.mjs' */
/** @import { System } from '../lib/throughput.mjs' */
import { join } from 'node:path';
import { sleep } from '../lib/clock.mjs';
import { holdIdle, IDLE_BURSTS } from '../lib/idle.mjs';
import { startNetplex } from '../lib/netplex.mjs';
import { EXAMPLES, SERVERS } from '../lib/paths.mjs';
import { waitServing } from '../lib/probe.mjs';
import { rssKb } from '../lib/proc.mjs';
import { startNode } from '../lib/servers.mjs';
import { push, ratios, rotate, summary } from '../lib/stats.mjs';

/**
 * One round of one system.
 * @typedef {object} IdleRound
 * @property {number} accepted
 * @property {number} failed
 * @property {number} accept_s  the first burst's (a fresh process)
 * @property {number} accept_warm_s  the last burst's
 * @property {number} rss_before_kb
 * @property {number} rss_after_kb
 * @property {number | null} kb_per_conn
 * @property {boolean} ok  every connection of every burst was accepted and still there when let go
 */

/**
 * One system over the rounds.
 * @typedef {object} MemorySystemResult
 * @property {Summary | null} kb_per_conn
 * @property {Summary | null} accept_s
 * @property {Summary | null} accept_warm_s
 * @property {Summary | null} rss_after_kb
 * @property {boolean} all_accepted
 * @property {Summary | null} [ratio_vs_baseline]
 * @property {Summary | null} [accept_ratio_vs_baseline]
 * @property {Summary | null} [accept_warm_ratio_vs_baseline]
 */

/**
 * idleOnce opens `conns` idle connections to a fresh server and measures the serving process's RSS;
 * then, after they close, opens them again (IDLE_BURSTS in all) on the same process, whose code is
 * compiled and whose heap has grown by then: the last burst's accept time is the warm one.
 * @param {Context} ctx
 * @param {() => Promise<Server>} start
 * @param {number} conns
 * @returns {Promise<IdleRound>}
 */
async function idleOnce(ctx, start, conns) {
  const server = await start();
  try {
    await waitServing(server.port, server.child, 'server');
    await sleep(500);
    const before = rssKb(server.pid);
    const { held, release } = await holdIdle(ctx, server.port, conns);
    await sleep(1000); // let the server settle after the burst of accepts
    const after = rssKb(server.pid);
    const done = await release();
    let warm = { accepted: conns, accept_s: held.accept_s, ok: true };
    for (let b = 1; b < IDLE_BURSTS; b++) {
      await sleep(1000); // the server closes the last burst's connections meanwhile
      const again = await holdIdle(ctx, server.port, conns);
      const ended = await again.release();
      warm = { ...again.held, ok: ended.ok === true && again.held.accepted === conns };
    }
    return {
      accepted: held.accepted,
      failed: held.failed,
      accept_s: held.accept_s,
      accept_warm_s: warm.accept_s,
      rss_before_kb: before,
      rss_after_kb: after,
      kb_per_conn: held.accepted ? (after - before) / held.accepted : null,
      ok: done.ok === true && held.accepted === conns && warm.ok,
    };
  } finally {
    await server.stop();
  }
}

/** @param {Context} ctx */
export async function memory(ctx) {
  const { cfg } = ctx;
  /** @type {System[]} */
  const systems = [
    {
      id: 'netplex',
      label: 'netplex echo.js worker',
      start: () => startNetplex(ctx, join(EXAMPLES, 'dist/echo.js')),
    },
    { id: 'raw', label: 'raw node:net echo', start: () => startNode(ctx, join(SERVERS, 'raw-echo.mjs')) },
  ];
  /** @type {Record<string, IdleRound[]>} */
  const samples = {};
  for (let r = 0; r < cfg.rounds; r++) {
    for (const sys of rotate(systems, r)) {
      const res = await idleOnce(ctx, sys.start, cfg.idleConns);
      push(samples, sys.id, res);
      ctx.log(
        `memory ${sys.id} round ${r + 1}: ${res.accepted}/${cfg.idleConns} accepted in ${res.accept_s} s (burst ${IDLE_BURSTS}: ${res.accept_warm_s} s), ${res.kb_per_conn?.toFixed(2)} KB/conn (RSS ${res.rss_before_kb} -> ${res.rss_after_kb} KB)`,
      );
      if (!res.ok)
        ctx.fail(
          'memory',
          `${sys.id}: ${res.accepted} of ${cfg.idleConns} accepted, ${res.failed} failed or dropped`,
        );
    }
  }
  const out = {
    systems: systems.map(({ id, label }) => ({ id, label })),
    conns: cfg.idleConns,
    bursts: IDLE_BURSTS,
    baseline: 'raw',
    /** @type {Record<string, MemorySystemResult>} */
    results: {},
  };
  for (const [id, rs] of Object.entries(samples)) {
    out.results[id] = {
      kb_per_conn: summary(rs.map((r) => r.kb_per_conn)),
      accept_s: summary(rs.map((r) => r.accept_s)),
      accept_warm_s: summary(rs.map((r) => r.accept_warm_s)),
      rss_after_kb: summary(rs.map((r) => r.rss_after_kb)),
      all_accepted: rs.every((r) => r.ok),
    };
  }
  if (samples.netplex && samples.raw) {
    out.results.netplex.ratio_vs_baseline = ratios(
      samples.netplex.map((r) => r.kb_per_conn),
      samples.raw.map((r) => r.kb_per_conn),
    );
    out.results.netplex.accept_ratio_vs_baseline = ratios(
      samples.netplex.map((r) => r.accept_s),
      samples.raw.map((r) => r.accept_s),
    );
    out.results.netplex.accept_warm_ratio_vs_baseline = ratios(
      samples.netplex.map((r) => r.accept_warm_s),
      samples.raw.map((r) => r.accept_warm_s),
    );
  }
  return out;
}
