// @ts-check
/**
 * migrate-markdown — the migrate scenario's section of bench/results.md: the floors and one row per
 * load and transport (bench/scenarios/migrate.mjs), or the older two-row table of a results.json
 * written before the transports and floors were measured.
 */
import { POLL_MS } from './control.mjs';
import { fmt1, fmt2, fmtInt, range } from './format.mjs';

/**
 * migrateMarkdown renders the migrate scenario's results as markdown lines.
 * @param {any} mg
 * @returns {string[]}
 */
export function migrateMarkdown(mg) {
  const L = ['', '## Live migration (reload_mode migrate): netplex echo.js, SIGHUP', ''];
  if (mg.error) return [...L, `Failed: ${mg.error}`];
  if (!mg.rows) return [...L, ...legacy(mg)];
  const f = mg.floor;
  L.push(
    '| row | connections | transport | moved | ms | vs floor | longest pause ms | p99 round trip ms | msgs/s | bytes verified |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  /** @param {'accept' | 'descriptors'} which */
  const isFloor = (which) => (f.against === which ? '1' : '–');
  L.push(
    `| floor: warm raw node:net server accepting | ${fmtInt(f.conns)} | – | – | ${range(f.accept_ms, fmt1)} | ${isFloor('accept')} | – | – | – | – |`,
  );
  if (f.descriptor_ms)
    L.push(
      `| floor: bare process building sockets from received descriptors | ${fmtInt(f.conns)} | seqpacket | – | ${range(f.descriptor_ms, fmt1)} | ${isFloor('descriptors')} | – | – | – | – |`,
    );
  for (const r of mg.rows) {
    const ok = r.ok ? 'yes' : '**no**';
    if (r.load === 'idle')
      L.push(
        `| idle | ${fmtInt(r.conns)} | ${r.transport} | ${r.ok ? 'all' : '**not all**'} | ${range(r.migrate_ms, fmtInt)} | ${range(r.ratio_vs_floor, fmt2)} | – | – | – | ${ok} |`,
      );
    else
      L.push(
        `| busy until empty (each echoing, 1 in flight) | ${fmtInt(r.conns)} | ${r.transport} | ${range(r.migrated, fmtInt)} | ${range(r.empty_ms, fmtInt)} | – | ${range(r.max_pause_ms, fmt1)} | ${range(r.p99_ms, fmt1)} | ${range(r.msgs_per_s, fmtInt)} | ${ok}${r.bytes_verified ? ` (${fmtInt(r.bytes_verified.median)} B)` : ''} |`,
      );
  }
  L.push(
    '',
    `**ms** is, for a floor, the time from its first to its last connection taken (a raw node:net server's 'connection' events, on a process that took as many once before), or from the first record of descriptors to the last socket built (a bare process reading them from a SOCK_SEQPACKET pair, up to 253 a record, and making a reading net.Socket of each), timed inside that process; for an idle row, the migration's time as the supervisor reports it; for a busy row, from the SIGHUP until the old worker holds no connection (the status read every ${POLL_MS} ms), the load running all along. **vs floor** is an idle row's time over the ${f.against === 'descriptors' ? 'descriptor' : 'accept'} floor's, round by round. **transport** is the one the status names for the migration: direct (the old worker sends its descriptors straight to the new one over a seqpacket pair) or relay (Node IPC through the supervisor, one socket a message). **moved** counts the connections that moved rather than drained; **longest pause** is the longest round trip any client saw, **p99** and **msgs/s** cover the whole measured window, every byte checked. Targets: 10,000 idle connections moved within 2× the floor; 1,000 busy connections all moved in under 1 s, the longest pause under 100 ms and the p99 round trip under 50 ms.`,
  );
  if (mg.note) L.push('', `Transports: ${mg.note}.`);
  if (mg.floor.descriptor_skipped) L.push('', `No descriptor floor: ${mg.floor.descriptor_skipped}.`);
  for (const r of mg.rows)
    for (const e of r.errors ?? []) L.push('', `${r.load} ${fmtInt(r.conns)} over ${r.transport}: ${e}.`);
  return L;
}

/**
 * legacy is the table of a results.json from before the transports: one idle and one busy row.
 * @param {any} mg
 * @returns {string[]}
 */
function legacy(mg) {
  return [
    '| load | connections | moved | migration ms | longest pause ms | p99 round trip ms | bytes verified |',
    '|---|---|---|---|---|---|---|',
    `| idle | ${fmtInt(mg.idle.conns)} | all | ${range(mg.idle.migrate_ms, fmtInt)} | – | – | ${mg.idle.ok ? 'yes' : 'no'} |`,
    `| busy (each echoing, 1 in flight) | ${fmtInt(mg.busy.conns)} | ${range(mg.busy.migrated, fmtInt)} | ${range(mg.busy.migrate_ms, fmtInt)} | ${range(mg.busy.max_pause_ms, fmt1)} | ${range(mg.busy.p99_ms, fmt1)} | ${mg.busy.ok ? 'yes' : 'no'} |`,
    '',
    'Longest pause is the longest round trip any client saw during the run, which the migration falls in the middle of. Busy: the load runs 3 s after the reload and then closes its connections; "moved" counts those that moved by then. Each connection is stopped only at its own turn, and the old worker goes on serving the rest meanwhile, so under this load about one connection moves per event-loop turn of the old worker; the migration ends when the load closes the others.',
  ];
}
