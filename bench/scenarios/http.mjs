// @ts-check
/**
 * http — HTTP/1.1 keep-alive with a fixed small answer, under wrk -t1 -c100: netplex's httpd.js
 * under the supervisor, node:http (the baseline) and a raw node:net responder. Each answers two
 * requests on one connection correctly before it is measured, then gets an unmeasured warm-up.
 */
/** @import { Context } from '../lib/context.mjs' */
/** @import { Server } from '../lib/servers.mjs' */
/** @import { Summary } from '../lib/stats.mjs' */
/** @import { System } from '../lib/throughput.mjs' */
/** @import { WrkResult } from '../lib/wrk.mjs' */
import { join } from 'node:path';
import { startNetplex } from '../lib/netplex.mjs';
import { EXAMPLES, SERVERS } from '../lib/paths.mjs';
import { httpGetTwice } from '../lib/probe.mjs';
import { startNode } from '../lib/servers.mjs';
import { push, ratios, rotate, summary } from '../lib/stats.mjs';
import { runWrk } from '../lib/wrk.mjs';

/**
 * One system over the rounds.
 * @typedef {object} HttpSystemResult
 * @property {Summary | null} requests_per_s
 * @property {Summary | null} p50_us
 * @property {Summary | null} p99_us
 * @property {number} errors  socket errors and non-2xx answers, all rounds
 * @property {Summary | null} [ratio_vs_baseline]  requests/s vs node:http
 * @property {Summary | null} [ratio_vs_raw]  (netplex) requests/s vs the raw responder
 */

/**
 * @param {Context} ctx
 * @returns {Promise<{ skipped: string } | { systems: { id: string, label: string }[], baseline: string, load: string, results: Record<string, HttpSystemResult> }>}
 */
export async function http(ctx) {
  const { cfg, fail } = ctx;
  if (!ctx.tools.wrk) return { skipped: 'wrk is missing' };
  /** @type {System[]} */
  const systems = [
    {
      id: 'netplex',
      label: 'netplex httpd.js under the supervisor',
      start: () => startNetplex(ctx, join(EXAMPLES, 'dist/httpd.js')),
    },
    { id: 'node_http', label: 'node:http', start: () => startNode(ctx, join(SERVERS, 'node-http.mjs')) },
    {
      id: 'raw',
      label: 'raw node:net responder',
      start: () => startNode(ctx, join(SERVERS, 'raw-http.mjs')),
    },
  ];
  /** @type {Map<string, Server>} */
  const servers = new Map();
  /** @type {Record<string, WrkResult[]>} */
  const samples = {};
  const seconds = Math.max(1, Math.round(cfg.seconds + cfg.warmup));
  try {
    for (const sys of systems) {
      const s = await sys.start();
      servers.set(sys.id, s);
      const answers = await httpGetTwice(s.port).catch((e) => [{ status: 0, body: String(e) }]);
      if (!answers.every((x) => x.status === 200 && x.body === 'Hello, world!\n'))
        fail('http', `${sys.id} answered ${JSON.stringify(answers)}`);
      // Unmeasured warm-up: otherwise whichever system goes first pays for the JIT in round 1.
      await runWrk(ctx, s.port, 1);
    }
    for (let r = 0; r < cfg.rounds; r++) {
      for (const sys of rotate(systems, r)) {
        const res = await runWrk(ctx, /** @type {Server} */ (servers.get(sys.id)).port, seconds);
        push(samples, sys.id, res);
        ctx.log(
          `http ${sys.id} round ${r + 1}: ${res.requests_per_s} req/s p50 ${res.p50_us} us p99 ${res.p99_us} us`,
        );
        if (!res.requests_per_s) fail('http', `${sys.id}: wrk reported no requests`);
        if (res.socket_errors || res.non_2xx)
          fail('http', `${sys.id}: ${res.socket_errors} socket errors, ${res.non_2xx} non-2xx answers`);
      }
    }
  } finally {
    for (const s of servers.values()) await s.stop();
  }
  const out = {
    systems: systems.map(({ id, label }) => ({ id, label })),
    baseline: 'node_http',
    load: 'wrk -t1 -c100',
    /** @type {Record<string, HttpSystemResult>} */
    results: {},
  };
  for (const [id, rs] of Object.entries(samples)) {
    out.results[id] = {
      requests_per_s: summary(rs.map((r) => r.requests_per_s)),
      p50_us: summary(rs.map((r) => r.p50_us)),
      p99_us: summary(rs.map((r) => r.p99_us)),
      errors: rs.reduce((a, r) => a + r.socket_errors + r.non_2xx, 0),
    };
    if (id !== 'node_http')
      out.results[id].ratio_vs_baseline = ratios(
        rs.map((r) => r.requests_per_s),
        samples.node_http.map((r) => r.requests_per_s),
      );
    if (id === 'netplex')
      out.results[id].ratio_vs_raw = ratios(
        rs.map((r) => r.requests_per_s),
        samples.raw.map((r) => r.requests_per_s),
      );
  }
  return out;
}
