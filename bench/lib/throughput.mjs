// @ts-check
/**
 * throughput — the echo and lines scenarios' measurement: the C client at each load point against
 * every system, the order rotating each round, every byte verified.
 */
/** @import { Context } from './context.mjs' */
/** @import { EchoReport } from './loadgen.mjs' */
/** @import { Server } from './servers.mjs' */
/** @import { Summary } from './stats.mjs' */
import { runLoadgen } from './loadgen.mjs';
import { push, ratios, rotate, summary } from './stats.mjs';

/**
 * A system under test: its id in the results, its label in the table, and how to start it.
 * @typedef {object} System
 * @property {string} id
 * @property {string} label
 * @property {() => Promise<Server>} start
 */

/**
 * One system at one load point, over the rounds.
 * @typedef {object} PointResult
 * @property {Summary | null} msgs_per_s
 * @property {Summary | null} p50_us
 * @property {Summary | null} p99_us
 * @property {Summary | null} client_cpu_pct
 * @property {boolean} verified  every round verified every byte
 * @property {number} bytes_verified
 * @property {Summary | null} [ratio_vs_perl]
 * @property {Summary | null} [ratio_vs_baseline]
 */

/**
 * What a throughput scenario gives: `points` by load point ("CONNSxDEPTH"), then by system id.
 * @typedef {object} ThroughputResult
 * @property {{ id: string, label: string }[]} systems
 * @property {string} baseline
 * @property {Record<string, Record<string, PointResult>>} points
 */

/**
 * throughput runs the C client at each load point ([connections, depth]) against every system,
 * alternating the order each round. `line` sends \n-terminated lines (each answered by the server).
 * @param {Context} ctx
 * @param {string} name  the scenario, for the log and failures
 * @param {System[]} systems
 * @param {[number, number][]} points
 * @param {{ line?: boolean, baseline: string }} options
 * @returns {Promise<ThroughputResult>}
 */
export async function throughput(ctx, name, systems, points, { line = false, baseline }) {
  const { cfg } = ctx;
  /** @type {Map<string, Server>} */
  const servers = new Map();
  /** @type {Record<string, Record<string, EchoReport[]>>} point -> system -> [result per round] */
  const samples = {};
  try {
    for (const sys of systems) servers.set(sys.id, await sys.start());
    for (let r = 0; r < cfg.rounds; r++) {
      for (const [conns, depth] of points) {
        const key = `${conns}x${depth}`;
        samples[key] ??= {};
        for (const sys of rotate(systems, r)) {
          const { port } = /** @type {Server} */ (servers.get(sys.id));
          const args = ['echo', '--port', String(port), '--conns', String(conns), '--depth', String(depth)];
          args.push('--duration', String(cfg.seconds), '--warmup', String(cfg.warmup));
          if (line) args.push('--line');
          /** @type {EchoReport} */
          const res = await runLoadgen(ctx, args, (cfg.seconds + cfg.warmup + 90) * 1000);
          push(samples[key], sys.id, res);
          ctx.log(
            `${name} ${key} ${sys.id} round ${r + 1}: ${Math.round(res.msgs_per_s)} msg/s p50 ${res.p50_us} us p99 ${res.p99_us} us client cpu ${res.client_cpu_pct}%${res.ok ? '' : ' NOT VERIFIED'}`,
          );
          if (!res.ok)
            ctx.fail(
              name,
              `${sys.id} at ${key}: ${res.mismatches} mismatches, ${res.errors} errors, ${res.connect_errors} connect errors, ${res.unanswered_bytes} bytes unanswered`,
            );
        }
      }
    }
  } finally {
    for (const s of servers.values()) await s.stop();
  }
  /** @type {ThroughputResult} */
  const out = { systems: systems.map(({ id, label }) => ({ id, label })), baseline, points: {} };
  for (const [key, bySys] of Object.entries(samples)) {
    /** @type {Record<string, PointResult>} */
    const point = {};
    for (const [id, rs] of Object.entries(bySys)) {
      point[id] = {
        msgs_per_s: summary(rs.map((r) => r.msgs_per_s)),
        p50_us: summary(rs.map((r) => r.p50_us)),
        p99_us: summary(rs.map((r) => r.p99_us)),
        client_cpu_pct: summary(rs.map((r) => r.client_cpu_pct)),
        verified: rs.every((r) => r.ok),
        bytes_verified: rs.reduce((a, r) => a + r.bytes_verified, 0),
      };
    }
    const base = bySys[baseline]?.map((r) => r.msgs_per_s) ?? [];
    for (const [id, rs] of Object.entries(bySys)) {
      if (bySys.perl && id !== 'perl')
        point[id].ratio_vs_perl = ratios(
          rs.map((r) => r.msgs_per_s),
          bySys.perl.map((r) => r.msgs_per_s),
        );
      if (id === baseline) continue;
      point[id].ratio_vs_baseline = ratios(
        rs.map((r) => r.msgs_per_s),
        base,
      );
    }
    out.points[key] = point;
  }
  return out;
}
