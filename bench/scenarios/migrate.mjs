// @ts-check
/**
 * migrate — live migration (reload_mode migrate) of netplex's echo.js on SIGHUP: with idle
 * connections held by the C client (how long moving them all takes, and that none is lost), and
 * under the echo load, every byte verified (how many moved, and the longest pause any client saw).
 */
/** @import { Context } from '../lib/context.mjs' */
/** @import { EchoReport } from '../lib/loadgen.mjs' */
import { join } from 'node:path';
import { sleep } from '../lib/clock.mjs';
import { holdIdle } from '../lib/idle.mjs';
import { runLoadgen } from '../lib/loadgen.mjs';
import { startNetplex, waitReloads } from '../lib/netplex.mjs';
import { EXAMPLES } from '../lib/paths.mjs';
import { summary } from '../lib/stats.mjs';

/**
 * migrateIdle holds `conns` idle connections to netplex echo.js, reloads (migrate) and reads how
 * long the migration took and how many moved; then checks that every connection is still there.
 * @param {Context} ctx
 * @param {number} conns
 */
async function migrateIdle(ctx, conns) {
  const server = await startNetplex(ctx, join(EXAMPLES, 'dist/echo.js'));
  try {
    const { held, release } = await holdIdle(ctx, server.port, conns);
    process.kill(server.supervisorPid, 'SIGHUP');
    const st = await waitReloads(server.pidFile, 1);
    const done = await release();
    return {
      conns,
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
 * migrateBusy runs the echo load (`conns` x 1, every byte verified) against netplex echo.js and
 * reloads (migrate) in the middle: the longest round trip any client saw is the longest pause the
 * migration caused; p99 covers the whole run.
 * @param {Context} ctx
 * @param {number} conns
 * @param {number} seconds
 */
async function migrateBusy(ctx, conns, seconds) {
  const server = await startNetplex(ctx, join(EXAMPLES, 'dist/echo.js'));
  try {
    const args = ['echo', '--port', String(server.port), '--conns', String(conns), '--depth', '1'];
    args.push('--duration', String(seconds), '--warmup', '0.5');
    /** @type {Promise<EchoReport>} */
    const load = runLoadgen(ctx, args, (seconds + 90) * 1000);
    load.catch(() => {}); // awaited below; this only keeps an early failure from being unhandled
    await sleep((0.5 + seconds / 2) * 1000);
    process.kill(server.supervisorPid, 'SIGHUP');
    const res = await load;
    const st = await waitReloads(server.pidFile, 1);
    return {
      conns,
      migrated: st.last_migration?.migrated ?? 0,
      migrate_ms: st.last_migration?.ms ?? null,
      max_pause_ms: res.max_us / 1000,
      p99_ms: res.p99_us / 1000,
      msgs_per_s: res.msgs_per_s,
      // Verification is about bytes; how many moved (rather than drained) is a result, reported.
      ok: res.ok === true,
    };
  } finally {
    await server.stop();
  }
}

/** @param {Context} ctx */
export async function migrate(ctx) {
  const { cfg, quick, log, fail } = ctx;
  const idleConns = quick ? 1000 : cfg.idleConns;
  const busyConns = quick ? ctx.quickBusyConns : 1000;
  /** @type {Awaited<ReturnType<typeof migrateIdle>>[]} */
  const idle = [];
  /** @type {Awaited<ReturnType<typeof migrateBusy>>[]} */
  const busy = [];
  for (let r = 0; r < cfg.rounds; r++) {
    const i = await migrateIdle(ctx, idleConns);
    idle.push(i);
    log(
      `migrate idle round ${r + 1}: ${i.migrated}/${idleConns} moved in ${i.migrate_ms} ms${i.ok ? '' : ' NOT ALL'}`,
    );
    if (!i.ok) fail('migrate', `idle: ${i.migrated} of ${idleConns} moved, ${i.failed} failed`);
    const b = await migrateBusy(ctx, busyConns, quick ? 2 : 6);
    busy.push(b);
    log(
      `migrate busy round ${r + 1}: ${b.migrated}/${busyConns} moved in ${b.migrate_ms} ms, longest pause ${b.max_pause_ms} ms, p99 ${b.p99_ms} ms${b.ok ? '' : ' NOT VERIFIED'}`,
    );
    if (!b.ok) fail('migrate', `busy: bytes not verified (${b.migrated} of ${busyConns} moved)`);
  }
  return {
    idle: {
      conns: idleConns,
      migrate_ms: summary(idle.map((x) => x.migrate_ms)),
      ok: idle.every((x) => x.ok),
    },
    busy: {
      conns: busyConns,
      migrated: summary(busy.map((x) => x.migrated)),
      migrate_ms: summary(busy.map((x) => x.migrate_ms)),
      max_pause_ms: summary(busy.map((x) => x.max_pause_ms)),
      p99_ms: summary(busy.map((x) => x.p99_ms)),
      ok: busy.every((x) => x.ok),
    },
  };
}
