// @ts-check
/**
 * migrate — live migration (reload_mode migrate) of netplex's echo.js on SIGHUP, over each
 * migration transport side by side (lib/migrate-runs.mjs: direct, the native seqpacket pair from
 * the old worker to the new, and relay, Node IPC through the supervisor), against two floors
 * measured in the same run (lib/migrate-floor.mjs): a warm raw node:net server accepting as many
 * connections, and a bare process building as many sockets from received descriptors.
 *
 * Rows: idle connections held by the C client (how long moving them all takes, and that none is
 * lost), and busy until empty: the echo load, every byte verified, runs until the old worker holds
 * no connection (how long that took, how many moved, the longest pause any client saw).
 */
/** @import { Context } from '../lib/context.mjs' */
/** @import { Summary } from '../lib/stats.mjs' */
/** @import { Asked, Transport } from '../lib/migrate-runs.mjs' */
import { join } from 'node:path';
import { messageOf } from '../lib/errors.mjs';
import { acceptFloor, descriptorFloor } from '../lib/migrate-floor.mjs';
import { asked, migrateBusy, migrateIdle, TRANSPORTS } from '../lib/migrate-runs.mjs';
import { loadNative } from '../lib/native.mjs';
import { startNetplex } from '../lib/netplex.mjs';
import { EXAMPLES } from '../lib/paths.mjs';
import { push, ratios, rotate, summary } from '../lib/stats.mjs';

/**
 * probeTransports finds which transports netplex can be asked for: it starts echo.js with each
 * transport's option. When netplex rejects the option for every transport it has none yet, and its
 * one transport (relay) runs without it.
 * @param {Context} ctx
 * @returns {Promise<{ rows: Asked[], note?: string }>}
 */
async function probeTransports(ctx) {
  /** @type {Asked[]} */
  const rows = [];
  /** @type {string[]} */
  const refused = [];
  for (const t of TRANSPORTS) {
    try {
      const server = await startNetplex(ctx, join(EXAMPLES, 'dist/echo.js'), { args: asked(t, true).args });
      await server.stop();
      rows.push(asked(t, true));
    } catch (err) {
      refused.push(`${t} (${messageOf(err).split('\n').slice(-1)[0].slice(0, 200)})`);
    }
  }
  if (rows.length === 0)
    return {
      rows: [asked('relay', false)],
      note: 'netplex has no migration_transport option: relay only (its one transport, run without the option)',
    };
  if (!rows.some((r) => r.transport === 'direct'))
    return {
      rows,
      note: `the direct transport is not available (netplex rejected ${refused.join(', ')}): relay only`,
    };
  return { rows };
}

/**
 * @typedef {object} Row  one row of the table: a load over a transport, every round's figures
 * @property {string} key
 * @property {'idle' | 'busy'} load
 * @property {number} conns
 * @property {Transport} asked  the transport asked for
 * @property {Record<string, any[]>} rounds  each figure, by round
 */

/** @param {Context} ctx */
export async function migrate(ctx) {
  const { cfg, quick, log, fail } = ctx;
  const idleConns = quick ? 1000 : cfg.idleConns;
  const busyConns = quick ? ctx.quickBusyConns : 1000;
  const bigBusyConns = 10_000;
  const native = await loadNative();
  if (!native.unix) log(`migrate: no descriptor floor: ${native.reason}`);
  const probe = await probeTransports(ctx);
  if (probe.note) log(`migrate: ${probe.note}`);
  let available = probe.rows;

  /** @type {Row[]} */
  const rows = [];
  for (const a of available)
    rows.push({ key: `idle-${a.transport}`, load: 'idle', conns: idleConns, asked: a.transport, rounds: {} });
  for (const a of available)
    rows.push({ key: `busy-${a.transport}`, load: 'busy', conns: busyConns, asked: a.transport, rounds: {} });
  if (!quick && available.some((a) => a.transport === 'direct'))
    rows.push({ key: 'busy-big-direct', load: 'busy', conns: bigBusyConns, asked: 'direct', rounds: {} });
  /** @type {Record<string, any[]>} */
  const floor = {};

  /** @type {{ key: string, run: () => Promise<void> }[]} */
  const jobs = [
    {
      key: 'floor-accept',
      run: async () => {
        const f = await acceptFloor(ctx, idleConns);
        push(floor, 'accept_ms', f.ms);
        push(floor, 'ok', f.ok);
        log(
          `migrate floor: a warm raw node:net server accepted ${idleConns} in ${f.ms.toFixed(1)} ms (first burst ${f.warmup_ms.toFixed(1)} ms)`,
        );
        if (!f.ok) fail('migrate', `accept floor: not every connection was accepted and held`);
      },
    },
  ];
  const { unix } = native;
  if (unix)
    jobs.push({
      key: 'floor-descriptors',
      run: async () => {
        const f = await descriptorFloor(ctx, idleConns, unix);
        push(floor, 'descriptor_ms', f.ms);
        push(floor, 'ok', f.ok);
        log(
          `migrate floor: ${idleConns} sockets built from received descriptors in ${f.ms.toFixed(1)} ms (${f.records} records)`,
        );
        if (!f.ok) fail('migrate', 'descriptor floor: not every socket was built and held');
      },
    });
  for (const row of rows)
    jobs.push({
      key: row.key,
      run: async () => {
        const a = available.find((x) => x.transport === row.asked);
        if (!a) return; // found unavailable in an earlier row
        const label = `migrate ${row.load} ${row.conns} over ${row.asked}`;
        const r =
          row.load === 'idle' ? await migrateIdle(ctx, a, row.conns) : await migrateBusy(ctx, a, row.conns);
        if (r.transport !== row.asked) {
          log(
            `migrate: the direct transport is not available (status says ${r.transport} when ${row.asked} was asked): relay only`,
          );
          probe.note = `the direct transport is not available (status said ${r.transport} when ${row.asked} was asked): relay only`;
          available = available.filter((x) => x.transport !== row.asked);
          return;
        }
        for (const [k, v] of Object.entries(r)) push(row.rounds, k, v);
        if ('empty_ms' in r) {
          log(
            `${label}: old worker empty ${r.empty_ms === null ? 'NEVER' : `${r.empty_ms.toFixed(0)} ms`} after SIGHUP, ${r.migrated}/${row.conns} moved, longest pause ${r.max_pause_ms.toFixed(1)} ms, p99 ${r.p99_ms.toFixed(1)} ms, ${Math.round(r.msgs_per_s)} msgs/s${r.ok ? '' : ' NOT OK'}`,
          );
          if (!r.ok)
            fail(
              'migrate',
              `${label}: ${r.error ?? 'bytes not verified'} (${r.migrated} of ${row.conns} moved)`,
            );
        } else {
          log(`${label}: ${r.migrated}/${row.conns} moved in ${r.migrate_ms} ms${r.ok ? '' : ' NOT ALL'}`);
          if (!r.ok) fail('migrate', `${label}: ${r.migrated} of ${row.conns} moved, ${r.failed} failed`);
        }
      },
    });

  for (let round = 0; round < cfg.rounds; round++) for (const job of rotate(jobs, round)) await job.run();

  const floorMs = floor.descriptor_ms ?? floor.accept_ms ?? [];
  return {
    note: probe.note,
    floor: {
      conns: idleConns,
      accept_ms: summary(floor.accept_ms ?? []),
      descriptor_ms: summary(floor.descriptor_ms ?? []),
      descriptor_skipped: native.reason,
      against: floor.descriptor_ms ? 'descriptors' : 'accept',
      ok: (floor.ok ?? []).every(Boolean),
    },
    rows: rows
      .filter((row) => available.some((a) => a.transport === row.asked) && row.rounds.ok?.length)
      .map((row) => summarize(row, floorMs)),
  };
}

/**
 * summarize is a row's figures over the rounds: the median (min–max) of each, the transport the
 * status named, and for idle rows the migration time against the floor, round by round.
 * @param {Row} row
 * @param {number[]} floorMs
 */
function summarize(row, floorMs) {
  const r = row.rounds;
  /** @param {string} k */
  const s = (k) => summary(r[k] ?? []);
  /** @type {Record<string, Summary | null>} */
  const figures =
    row.load === 'idle'
      ? { migrate_ms: s('migrate_ms'), ratio_vs_floor: ratios(r.migrate_ms ?? [], floorMs) }
      : {
          empty_ms: s('empty_ms'),
          migrated: s('migrated'),
          migrate_ms: s('migrate_ms'),
          max_pause_ms: s('max_pause_ms'),
          p99_ms: s('p99_ms'),
          msgs_per_s: s('msgs_per_s'),
          bytes_verified: s('bytes_verified'),
        };
  return {
    key: row.key,
    load: row.load,
    conns: row.conns,
    transport: r.transport?.[0] ?? row.asked,
    ...figures,
    errors: (r.error ?? []).filter(Boolean),
    ok: r.ok.every(Boolean),
  };
}
