// @ts-check
/**
 * reload — reloading a server under load: 50 persistent connections (a 64-byte message each per
 * 10 ms) and 200 new connections a second from the C client, while the server is reloaded
 * cfg.reloads times. Each kind (bench/lib/reload-kinds.mjs) is measured for refused, reset and failed
 * connections, bytes lost, the longest stall, and the reload's latency: signal (or save, or command)
 * to the first new connection served by a process not seen before it.
 */
/** @import { Context } from '../lib/context.mjs' */
/** @import { ReloadReport } from '../lib/loadgen.mjs' */
/** @import { ReloadKind } from '../lib/reload-kinds.mjs' */
import { nowNs, sleep } from '../lib/clock.mjs';
import { messageOf } from '../lib/errors.mjs';
import { runLoadgen } from '../lib/loadgen.mjs';
import { ensurePm2, PM2_VERSION } from '../lib/pm2.mjs';
import { waitServing } from '../lib/probe.mjs';
import { reloadKinds } from '../lib/reload-kinds.mjs';
import { percentile } from '../lib/stats.mjs';

/**
 * What one kind's run gave: the client's report, when each reload was issued, and the reloads that
 * failed.
 * @typedef {{ res: ReloadReport, signals: bigint[], reloadErrors: string[] }} ReloadRun
 */

/**
 * reloadOnce runs the reload-under-load client against one kind while reloading it cfg.reloads times.
 * @param {Context} ctx
 * @param {ReloadKind} kind
 * @returns {Promise<ReloadRun>}
 */
async function reloadOnce(ctx, kind) {
  const { cfg, tracker } = ctx;
  const server = await kind.start();
  try {
    await waitServing(server.port, server.child, kind.label, 16);
    const duration = 1.0 + cfg.reloads * cfg.reloadEvery + 1.5;
    /** @type {Promise<ReloadReport>} */
    const load = runLoadgen(
      ctx,
      [
        'reload',
        '--port',
        String(server.port),
        '--persist',
        '50',
        '--rate',
        '200',
        '--duration',
        String(duration),
      ],
      (duration + 60) * 1000,
    );
    load.catch(() => {}); // awaited below; this only keeps an early failure from being unhandled
    await sleep(1000);
    /** @type {bigint[]} */
    const signals = [];
    /** @type {string[]} */
    const reloadErrors = [];
    /** @type {Promise<unknown>[]} reloads that are commands (pm2 reload): their outcome comes later */
    const pending = [];
    for (let i = 0; i < cfg.reloads; i++) {
      signals.push(nowNs());
      const what = `reload ${i + 1}`;
      try {
        const p = server.reload();
        if (p instanceof Promise)
          pending.push(p.catch((err) => reloadErrors.push(`${what}: ${messageOf(err)}`)));
      } catch (err) {
        reloadErrors.push(`${what}: ${messageOf(err)}`);
      }
      await sleep(cfg.reloadEvery * 1000);
    }
    const res = await load;
    await Promise.all(pending);
    // Every pid the client saw is ours: remember them so that none outlives the run.
    const mark = server.mark === undefined ? 'pid-echo' : server.mark;
    if (mark) for (const [, , pid] of res.new) if (pid > 0 && pid < 2 ** 22) tracker.mark(pid, mark);
    return { res, signals, reloadErrors };
  } finally {
    await server.stop();
    // If anything above threw, the client may still run: it is ours to end.
    for (const child of tracker.children.values())
      if (child.spawnargs.includes('reload')) child.kill('SIGKILL');
  }
}

/**
 * analyzeReload matches each reload signal with the first new connection, started after it, that
 * was served by a process not seen before it: the reload's latency (signal to new code serving).
 * @param {ReloadRun} run
 */
function analyzeReload({ res, signals, reloadErrors }) {
  const events = res.new.map(([start, served, pid, outcome]) => ({
    start: BigInt(start),
    served: BigInt(served),
    pid,
    outcome,
  }));
  /** @type {(number | null)[]} */
  const latencies = [];
  for (const t of signals) {
    const seen = new Set(events.filter((e) => e.outcome === 0 && e.served < t).map((e) => e.pid));
    const first = events.find((e) => e.outcome === 0 && e.start >= t && !seen.has(e.pid));
    latencies.push(first ? Number(first.served - t) / 1e6 : null);
  }
  const observed = latencies.filter((x) => x !== null);
  const lastPid = events.filter((e) => e.outcome === 0).at(-1)?.pid;
  return {
    reloads: signals.length,
    reloads_observed: observed.length,
    reload_ms: {
      p50: percentile(observed, 0.5),
      p99: percentile(observed, 0.99),
      max: observed.length ? Math.max(...observed) : null,
    },
    new_started: res.new_started,
    new_ok: res.new_ok,
    refused: res.new_refused,
    reset: res.new_reset,
    failed: res.new_failed,
    persistent_alive: res.persistent_alive,
    persistent: res.persistent,
    persistent_on_old_code: res.persistent_alive_pids.filter((p) => p !== 0 && p !== lastPid).length,
    reload_errors: reloadErrors,
    bytes_lost: res.bytes_lost,
    bytes_verified: res.bytes_verified,
    mismatches: res.mismatches,
    longest_stall_ms: Math.max(res.max_persistent_rtt_ms, res.max_new_conn_ms),
  };
}

/** @param {Context} ctx */
export async function reload(ctx) {
  const { cfg, fail, log } = ctx;
  const out = {
    load: '50 persistent connections (a 64-byte message each per 10 ms) + 200 new connections/s',
    reloads: cfg.reloads,
    every_s: cfg.reloadEvery,
    /** @type {Record<string, { label: string } & (ReturnType<typeof analyzeReload> | { error: string })>} */
    kinds: {},
    /** @type {{ version: string, skipped?: string } | undefined} */
    pm2: undefined,
  };
  const pm2Missing = ensurePm2(ctx.quick, log);
  out.pm2 = pm2Missing ? { version: PM2_VERSION, skipped: pm2Missing } : { version: PM2_VERSION };
  if (pm2Missing) log(`skipped: the PM2 reload baselines: ${pm2Missing}`);
  for (const kind of reloadKinds(ctx, { pm2: !pm2Missing })) {
    try {
      const a = analyzeReload(await reloadOnce(ctx, kind));
      out.kinds[kind.id] = { label: kind.label, ...a };
      log(
        `reload ${kind.id}: ${a.reloads_observed}/${a.reloads} reloads seen, p50 ${a.reload_ms.p50?.toFixed(1)} ms; new ${a.new_ok}/${a.new_started} ok, ${a.refused} refused, ${a.reset} reset, ${a.failed} failed; persistent ${a.persistent_alive}/${a.persistent} alive, ${a.bytes_lost} bytes lost, stall ${a.longest_stall_ms.toFixed(1)} ms`,
      );
      if (a.mismatches)
        fail('reload', `${kind.id}: ${a.mismatches} echoed bytes differed from what was sent`);
      if (a.new_started === 0) fail('reload', `${kind.id}: no new connection was made`);
      if (a.reload_errors.length) fail('reload', `${kind.id}: ${a.reload_errors.join('; ')}`);
    } catch (err) {
      out.kinds[kind.id] = { label: kind.label, error: messageOf(err) };
      fail('reload', `${kind.id}: ${messageOf(err)}`);
    }
  }
  return out;
}
