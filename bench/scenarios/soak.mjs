// @ts-check
/**
 * soak — `pnpm bench --soak=MINUTES`: the chat example (samplechat.js) under the supervisor with
 * mixed load (bench/lib/soak-client.mjs) for MINUTES minutes, a migrating reload (SIGHUP) every
 * 10 s and a kill -9 of the serving worker every minute (35 s into it, between two reloads). Every
 * 10 s it samples the supervisor's and the serving worker's VmRSS and the supervisor's descriptors.
 * It fails when a byte is lost or a line comes back wrong on a connection that was not on a killed
 * worker, when a connection not on a killed worker ends unexpectedly, or when the supervisor grew:
 * its RSS more than RSS_BOUND_KB above its level after the first minute (half the run when that is
 * shorter), or its descriptors, once the load has closed, above their level before the load.
 */
/** @import { Context } from '../lib/context.mjs' */
/** @import { ConnEnd } from '../lib/soak-conn.mjs' */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { sleep } from '../lib/clock.mjs';
import { jsonLine } from '../lib/json-line.mjs';
import { startNetplex, statusAsync } from '../lib/netplex.mjs';
import { BENCH, EXAMPLES } from '../lib/paths.mjs';
import { descendantsOf, rssKb } from '../lib/proc.mjs';
import { fdCount, peerPortsOf } from '../lib/sockets.mjs';

/** How far the supervisor's RSS may rise above its level after the first minute, in KB. */
export const RSS_BOUND_KB = 10 * 1024;
const RELOAD_EVERY_S = 10;
const KILL_EVERY_S = 60;
const KILL_AT_S = 35;
const SAMPLE_EVERY_S = 10;
const CLIENT = join(BENCH, 'lib/soak-client.mjs');

/** @param {string | undefined} v @param {number} d */
const num = (v, d) => (v ? Number(v) : d);

/**
 * The load's sizes: BENCH_SOAK_TALKERS (default 30) long-lived connections sending
 * BENCH_SOAK_RATE (5) lines a second each, BENCH_SOAK_IDLE (100) idle ones, BENCH_SOAK_CHURN (10)
 * short connections a second; BENCH_SOAK_SEED seeds the payloads.
 * @param {NodeJS.ProcessEnv} env
 */
export function soakLoad(env) {
  return {
    talkers: num(env.BENCH_SOAK_TALKERS, 30),
    lines_per_s: num(env.BENCH_SOAK_RATE, 5),
    idle: num(env.BENCH_SOAK_IDLE, 100),
    churn_per_s: num(env.BENCH_SOAK_CHURN, 10),
    seed: num(env.BENCH_SOAK_SEED, Date.now() % 1_000_000),
  };
}

/**
 * @typedef {object} Sample
 * @property {number} t  seconds since the load started (-1 before it, `final` after it)
 * @property {boolean} [final]
 * @property {number} sup_rss_kb
 * @property {number} sup_fds
 * @property {number | null} worker_pid
 * @property {number | null} worker_rss_kb
 * @property {number | null} generation
 * @property {number | null} connections
 * @property {number} reloads
 * @property {number} restarts
 */

/**
 * @param {Context} ctx
 * @param {number} minutes
 */
export async function soak(ctx, minutes) {
  const { log, tracker } = ctx;
  const load = soakLoad(process.env);
  const seconds = Math.round(minutes * 60);
  log(`soak: ${minutes} min, ${JSON.stringify(load)}`);
  const entry = join(EXAMPLES, 'dist/samplechat.js');
  // chat_timeout is far beyond the run: idle connections stay (and are never told to leave).
  const server = await startNetplex(ctx, entry, { args: ['--chat_timeout=86400', '--reload_mode=migrate'] });
  const sup = server.supervisorPid;
  const status = () => statusAsync(tracker, server.pidFile);

  /** @type {Sample[]} */
  const samples = [];
  /** @param {number} t @param {boolean} [final] */
  const sample = async (t, final) => {
    const st = await status();
    const w = st?.workers?.find((x) => x.role === 'serving');
    let workerRss = null;
    try {
      workerRss = w ? rssKb(w.pid) : null;
    } catch {}
    /** @type {Sample} */
    const s = {
      t,
      ...(final ? { final } : {}),
      sup_rss_kb: rssKb(sup),
      sup_fds: fdCount(sup),
      worker_pid: w?.pid ?? null,
      worker_rss_kb: workerRss,
      generation: w?.generation ?? null,
      connections: w?.connections ?? null,
      reloads: st?.reloads ?? -1,
      restarts: st?.restarts ?? -1,
    };
    samples.push(s);
    return s;
  };
  /** @type {{ at: number, t: number, pid: number, ports: number[], restart_ms: number | null }[]} */
  const kills = [];
  let reloadsSent = 0;
  try {
    const before = await sample(-1);
    const [cmd, args] = ctx.cpu.onLoad(process.execPath, [
      CLIENT,
      String(server.port),
      String(seconds),
      String(load.talkers),
      String(load.idle),
      String(load.churn_per_s),
      String(load.lines_per_s),
      String(load.seed),
    ]);
    const client = tracker.track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] }));
    /** @type {Promise<any>} */
    const report = new Promise((resolve, reject) => {
      createInterface({ input: /** @type {import('node:stream').Readable} */ (client.stdout) }).on(
        'line',
        (line) => {
          const j = jsonLine(line);
          if (j?.progress) log(`soak ${JSON.stringify(j.progress)}`);
          if (j?.report) resolve(j.report);
        },
      );
      client.once('exit', (code) => reject(new Error(`the soak client exited (${code}) without a report`)));
    });
    report.catch(() => {}); // awaited below
    const began = Date.now();
    const at = (/** @type {number} */ t) => sleep(Math.max(0, began + t * 1000 - Date.now()));
    /** @type {{ t: number, what: 'sample' | 'reload' | 'kill' }[]} */
    const events = [];
    for (let t = 0; t < seconds; t += SAMPLE_EVERY_S) events.push({ t, what: 'sample' });
    for (let t = RELOAD_EVERY_S; t < seconds; t += RELOAD_EVERY_S) events.push({ t, what: 'reload' });
    for (let t = KILL_AT_S; t < seconds; t += KILL_EVERY_S) events.push({ t, what: 'kill' });
    events.sort((a, b) => a.t - b.t || (a.what === 'sample' ? -1 : 1));
    for (const ev of events) {
      await at(ev.t);
      if (ev.what === 'sample') {
        const s = await sample(ev.t);
        log(
          `soak t=${ev.t}s supervisor ${(s.sup_rss_kb / 1024).toFixed(1)} MB ${s.sup_fds} fds, worker ${s.worker_pid} ${s.worker_rss_kb === null ? '-' : (s.worker_rss_kb / 1024).toFixed(1)} MB ${s.connections} conns, ${s.reloads} reloads ${s.restarts} restarts`,
        );
      } else if (ev.what === 'reload') {
        process.kill(sup, 'SIGHUP');
        reloadsSent++;
      } else kills.push({ t: ev.t, ...(await killServing(ctx, status, server.port, sup)) });
    }
    const rep = await report;
    await settle(status);
    const final = await sample(seconds, true);
    // The supervisor's descriptors once the load has closed: back to their level before it.
    for (let i = 0; i < 50 && final.sup_fds > before.sup_fds; i++) {
      await sleep(200);
      final.sup_fds = fdCount(sup);
    }
    return analyze({ minutes, load, samples, kills, reloadsSent, rep, before, final });
  } finally {
    await server.stop();
  }
}

/**
 * killServing stops the serving worker (SIGSTOP, so that it accepts and moves nothing more), reads
 * the client ports of the connections it holds, kills it (SIGKILL) and waits for the supervisor's
 * restart to serve.
 * @param {Context} ctx
 * @param {() => ReturnType<typeof statusAsync>} status
 * @param {number} port
 * @param {number} sup  the supervisor's pid
 */
async function killServing(ctx, status, port, sup) {
  // Not in the middle of a reload: wait (up to 5 s) until only a serving worker (and a spare, and
  // workers draining) are left.
  let st = await status();
  for (
    let i = 0;
    i < 50 && st?.workers?.some((w) => w.role === 'starting' || w.role === 'migrating-in');
    i++
  ) {
    await sleep(100);
    st = await status();
  }
  const pid = st?.workers?.find((w) => w.role === 'serving')?.pid;
  // A worker that was the spare does not name the entry in its command line: it is ours if it runs
  // below our supervisor.
  if (!pid || !descendantsOf([sup]).includes(pid)) throw new Error('no serving worker to kill');
  process.kill(pid, 'SIGSTOP');
  /** @type {number[]} */
  let ports = [];
  try {
    ports = [...peerPortsOf(pid, port)];
  } finally {
    process.kill(pid, 'SIGKILL');
  }
  const at = Date.now();
  ctx.log(`soak: killed worker ${pid} (${ports.length} connections)`);
  let restart_ms = null;
  for (let i = 0; i < 300; i++) {
    const w = (await status())?.workers?.find((x) => x.role === 'serving');
    if (w && w.pid !== pid) {
      restart_ms = Date.now() - at;
      break;
    }
    await sleep(50);
  }
  return { at, pid, ports, restart_ms };
}

/**
 * settle waits (up to 10 s) until no worker is starting, migrating in or draining.
 * @param {() => ReturnType<typeof statusAsync>} status
 */
async function settle(status) {
  for (let i = 0; i < 50; i++) {
    const st = await status();
    if (st && !st.workers?.some((w) => !['serving', 'spare'].includes(w.role))) return;
    await sleep(200);
  }
}

/**
 * analyze splits the unexpected ends into those on a killed worker and the others, and checks the
 * bounds.
 * @param {{ minutes: number, load: ReturnType<typeof soakLoad>, samples: Sample[], kills: { at: number, t: number, pid: number, ports: number[], restart_ms: number | null }[], reloadsSent: number, rep: any, before: Sample, final: Sample }} run
 */
function analyze({ minutes, load, samples, kills, reloadsSent, rep, before, final }) {
  /** @type {ConnEnd[]} */
  const ends = rep.ends;
  const portSets = kills.map((k) => ({ ...k, set: new Set(k.ports) }));
  /** @param {ConnEnd} e */
  const onKilled = (e) =>
    portSets.some((k) => k.set.has(e.port) && e.at >= k.at - 100 && e.at <= k.at + 10_000);
  /** @param {ConnEnd} e */
  const nearKill = (e) => kills.some((k) => e.at >= k.at - 1000 && e.at <= k.at + 5000);
  const killed = ends.filter(onKilled);
  const others = ends.filter((e) => !onKilled(e));
  /** @param {ConnEnd[]} xs */
  const byHow = (xs) => {
    /** @type {Record<string, number>} */
    const out = {};
    for (const e of xs) {
      const k = `${e.kind} ${e.how}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  };
  const lostOthers = others.reduce((n, e) => n + e.unanswered, 0);
  const inRun = samples.filter((s) => s.t >= 0);
  const baseT = Math.min(60, (minutes * 60) / 2);
  const base = inRun.find((s) => s.t >= baseT) ?? inRun.at(-1) ?? final;
  const after = inRun.filter((s) => s.t >= base.t);
  const supMax = Math.max(...after.map((s) => s.sup_rss_kb));
  /** @param {(s: Sample) => number | null} f */
  const fml = (f) => {
    const v = inRun.map(f).filter((x) => x !== null);
    return { first: v[0] ?? null, last: v.at(-1) ?? null, max: v.length ? Math.max(...v) : null };
  };
  const lost_bytes = rep.lost_on_live + lostOthers;
  /** @type {string[]} */
  const failures = [];
  if (lost_bytes) failures.push(`${lost_bytes} bytes lost on connections not on a killed worker`);
  if (rep.mismatches) failures.push(`${rep.mismatches} own lines came back changed or out of order`);
  if (rep.id_mismatches) failures.push(`${rep.id_mismatches} own lines came back under another number`);
  if (rep.ack_mismatches) failures.push(`${rep.ack_mismatches} wrong or unexpected acks`);
  if (rep.gaps || rep.repeats) failures.push(`broadcast: ${rep.gaps} lines missed, ${rep.repeats} repeated`);
  if (others.length)
    failures.push(
      `${others.length} connections not on a killed worker ended: ${JSON.stringify(byHow(others))}`,
    );
  if (supMax > base.sup_rss_kb + RSS_BOUND_KB)
    failures.push(
      `supervisor RSS rose to ${supMax} KB, more than ${RSS_BOUND_KB} KB above ${base.sup_rss_kb} KB at ${base.t} s`,
    );
  if (final.sup_fds > before.sup_fds)
    failures.push(
      `supervisor holds ${final.sup_fds} descriptors after the load, ${before.sup_fds} before it`,
    );
  if (final.restarts < kills.length) failures.push(`${final.restarts} restarts for ${kills.length} kills`);
  return {
    minutes,
    load,
    reloads_sent: reloadsSent,
    reloads_done: final.reloads,
    kills: kills.map(({ t, pid, ports, restart_ms }) => ({ t, pid, connections: ports.length, restart_ms })),
    restarts: final.restarts,
    client: { ...rep, ends: undefined },
    lost_bytes,
    killed_with_worker: {
      connections: killed.length,
      unanswered_bytes: killed.reduce((n, e) => n + e.unanswered, 0),
      by_how: byHow(killed),
    },
    ended_otherwise: {
      connections: others.length,
      near_a_kill: others.filter(nearKill).length,
      by_how: byHow(others),
      list: others.slice(0, 20),
    },
    refused: ends.filter((e) => e.how === 'ECONNREFUSED').length,
    reset: ends.filter((e) => e.how === 'ECONNRESET').length,
    rss_bound: { kb: RSS_BOUND_KB, base_t: base.t, base_kb: base.sup_rss_kb, max_after_kb: supMax },
    fds: { before: before.sup_fds, after: final.sup_fds },
    supervisor_rss_kb: fml((s) => s.sup_rss_kb),
    supervisor_fds: fml((s) => s.sup_fds),
    worker_rss_kb: fml((s) => s.worker_rss_kb),
    samples,
    failures,
    ok: failures.length === 0,
  };
}
