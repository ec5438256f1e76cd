/**
 * No descriptor leaks across migrating reloads: under load (a few byte-verifying streams, and short
 * connections coming and going during each reload), reloads in a row, every third one with its new
 * worker killed (SIGKILL) in the middle of the migration, its first muxThaw held. After each reload,
 * at rest, the descriptors open in the supervisor and in the serving worker are counted from
 * /proc/<pid>/fd; after a warm-up they must not grow (a small constant slack, no trend). Over each
 * migration transport: a direct migration's socket pair, a link control socket or a descriptor
 * passed in a batch that is not closed on either side shows here.
 *
 * A worker whose new worker was killed serves on: its own count must not grow across the failed
 * migration. A reload whose new worker was killed must not say it succeeded.
 *
 * Size: NETPLEX_LEAK_RELOADS (default 18) reloads over the direct transport, a third of them over
 * the relay (whose own tests cover it more).
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { isAlive } from '../../src/pidfile.js';
import { checkInvariants, type WorkerRow } from '../helpers/invariants.js';
import { Churn, LineStreamer } from '../helpers/load.js';
import { ask, behaviour, greet, type Proc, startTagged, statusJson, waitGone } from '../helpers/proc.js';
import { describeTransports, expectTransport, fallbacks, transportArg } from '../helpers/transports.js';

const DIRECT_RELOADS = Number(process.env.NETPLEX_LEAK_RELOADS ?? 18);
const reloadsOver = (t: string) =>
  t === 'direct' ? DIRECT_RELOADS : Math.max(3, Math.ceil(DIRECT_RELOADS / 3));
/** Reloads before the counts are taken as the baseline. */
const warmUp = (reloads: number) => Math.min(5, Math.max(1, Math.floor(reloads / 4)));
/** Descriptors a count may exceed the baseline by (a log write, a status connection closing). */
const SLACK = 3;
const STREAMERS = 4;

/** fdCount is how many descriptors `pid` has open: the least of three looks 20 ms apart (none once it is gone). */
async function fdCount(pid: number): Promise<number> {
  let least = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 20));
    try {
      least = Math.min(least, readdirSync(`/proc/${pid}/fd`).length);
    } catch {
      return 0;
    }
  }
  return least;
}

const isOutcome = (l: { msg?: unknown }) =>
  String(l.msg).startsWith('reloaded in') || String(l.msg).startsWith('reload failed');

/** atRest waits until one worker serves and none starts, migrates in or drains, checking the invariants. */
async function atRest(pidFile: string, port: number, step: string): Promise<WorkerRow> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { status, workers } = await checkInvariants(pidFile, port, step);
    const roles = workers.map((w) => w.role);
    if (status.state === 'running' && roles.every((r) => r === 'serving' || r === 'spare')) {
      const serving = workers.find((w) => w.role === 'serving');
      if (serving) return serving;
    }
    if (Date.now() > deadline) throw new Error(`not at rest 30 s after ${step}: ${JSON.stringify(status)}`);
  }
}

/** killNewMidMigration reloads with the new worker's first muxThaw held, and kills it there. */
async function killNewMidMigration(
  proc: Proc,
  pidFile: string,
  behaviourFile: string,
  gate: string,
): Promise<{ what: string; misreported?: string }> {
  behaviour(behaviourFile, { holdThaw: gate });
  const mark = proc.lines.length;
  proc.child.kill('SIGHUP');
  await proc.waitLog((l) => l.msg === 'thaw held', 'the new worker to hold its first thaw', 20_000, mark);
  const { workers } = { workers: (await statusJson(pidFile)).workers as WorkerRow[] };
  const neu = workers.find((w) => w.role === 'migrating-in');
  expect(neu, `a worker migrating in: ${JSON.stringify(workers)}`).toBeDefined();
  process.kill(neu!.pid, 'SIGKILL');
  const out = await proc.waitLog(isOutcome, 'the reload whose new worker is killed', 30_000, mark);
  behaviour(behaviourFile, {});
  writeFileSync(gate, '');
  await waitGone(neu!.pid, 'the killed new worker');
  if (String(out.msg).startsWith('reload failed'))
    return { what: `new worker ${neu!.pid} killed mid-migration` };
  // A reload whose new worker was killed must not report success (it is collected, and fails the
  // test once the counts are printed).
  const what = `new worker ${neu!.pid} killed mid-migration, and the reload said it succeeded, serving with worker ${String(out.worker)} (alive: ${isAlive(out.worker as number)}): ${JSON.stringify(out)}`;
  return { what, misreported: what };
}

describeTransports('descriptors across migrating reloads', (t) => {
  const RELOADS = reloadsOver(t);
  const WARM_UP = warmUp(RELOADS);
  it(
    `${RELOADS} reloads under load (NETPLEX_LEAK_RELOADS), every third one's new worker killed mid-migration: the supervisor's and the serving worker's descriptors do not grow`,
    async () => {
      const { proc, port, pidFile, behaviourFile, dir } = await startTagged([
        '--port=127.0.0.1:0',
        '--pid_file={pid}',
        transportArg(t),
        '--restart_backoff=0.05',
        '--ready_timeout=10',
        '--drain_timeout=5',
      ]);
      const supervisor = proc.pid;
      const streamers = Array.from({ length: STREAMERS }, () => new LineStreamer(port));
      /** Streams that went with a killed worker, and why. */
      const lostWithKilled: string[] = [];
      const lost: string[] = [];
      /** Reloads that said they succeeded although their new worker was killed. */
      const misreported: string[] = [];
      const rows: Array<{ reload: number; supervisor: number; worker: number; pid: number; what: string }> =
        [];
      try {
        let serving = await atRest(pidFile, port, 'start');
        rows.push({
          reload: 0,
          supervisor: await fdCount(supervisor),
          worker: await fdCount(serving.pid),
          pid: serving.pid,
          what: 'start',
        });
        for (let i = 1; i <= RELOADS; i++) {
          const churn = new Churn(port, 30);
          let what: string;
          const killing = i % 3 === 0;
          if (killing) {
            const killed = await killNewMidMigration(proc, pidFile, behaviourFile, join(dir, `gate-${i}`));
            what = killed.what;
            if (killed.misreported) misreported.push(`reload ${i}: ${killed.misreported}`);
          } else {
            const mark = proc.lines.length;
            const out = await proc.hup(`reload ${i}`);
            expect(String(out.msg), `reload ${i}: ${JSON.stringify(out)}`).toMatch(/^reloaded in/);
            expectTransport(out, t, proc, mark);
            what = String(out.msg);
          }
          await churn.stop();
          serving = await atRest(pidFile, port, `reload ${i}: ${what}`);
          // Streams in a killed new worker may go with it; any other loss is netplex's.
          for (const [k, s] of streamers.entries()) {
            if (s.alive) continue;
            (killing ? lostWithKilled : lost).push(`reload ${i}, stream ${k}: ${s.failure}`);
            s.end();
            streamers[k] = new LineStreamer(port);
          }
          const churnLost = churn.failures.map((f) => `reload ${i}, churn: ${f.why}`);
          if (killing) lostWithKilled.push(...churnLost);
          else lost.push(...churnLost);
          expect(lost, 'connections lost other than with a killed worker').toEqual([]);
          // Every stream goes on, and a new connection is served.
          await Promise.all(
            streamers.map(async (s, k) => {
              const from = s.verified;
              const deadline = Date.now() + 10_000;
              while (s.alive && s.verified === from && Date.now() < deadline)
                await new Promise((r) => setTimeout(r, 10));
              expect(
                s.verified > from,
                `stream ${k} served after reload ${i} (${s.failure ?? 'alive'})`,
              ).toBe(true);
            }),
          );
          const { socket } = await greet(port);
          expect(await ask(socket, `witness ${i}`)).toBe(`v1 witness ${i}`);
          socket.destroy();
          rows.push({
            reload: i,
            supervisor: await fdCount(supervisor),
            worker: await fdCount(serving.pid),
            pid: serving.pid,
            what,
          });
        }
        for (const s of streamers) s.stop();
        await Promise.all(streamers.map((s, k) => s.drained(`stream ${k} at the end`)));
      } finally {
        for (const s of streamers) s.end();
      }
      const base = rows[WARM_UP]!;
      const after = rows.slice(WARM_UP);
      const last = rows.at(-1)!;
      console.log(
        `descriptors over ${t}, ${RELOADS} reloads (${Math.floor(RELOADS / 3)} new workers killed mid-migration, ${lostWithKilled.length} connections lost with them): supervisor ${rows[0]!.supervisor} at start, ${base.supervisor} after warm-up, ${last.supervisor} at the end (max ${Math.max(...after.map((r) => r.supervisor))}); serving worker ${rows[0]!.worker} at start, ${base.worker} after warm-up, ${last.worker} at the end (max ${Math.max(...after.map((r) => r.worker))})`,
      );
      const table = rows
        .map((r) => `${r.reload}: sup ${r.supervisor}, worker ${r.pid} ${r.worker} (${r.what})`)
        .join('\n');
      expect(fallbacks(proc), `no fallback from ${t}`).toEqual([]);
      // A worker that serves on after a failed migration out holds what it held before it.
      const grew = rows.filter(
        (r, k) => k > 0 && r.pid === rows[k - 1]!.pid && r.worker > rows[k - 1]!.worker + 1,
      );
      expect(grew, `a worker's descriptors grow across a failed migration:\n${table}`).toEqual([]);
      expect(
        misreported,
        'reloads whose new worker was killed mid-migration and that said they succeeded',
      ).toEqual([]);
      expect(
        after.filter((r) => r.supervisor > base.supervisor + SLACK),
        `the supervisor's descriptors grow past ${base.supervisor} + ${SLACK}:\n${table}`,
      ).toEqual([]);
      expect(
        after.filter((r) => r.worker > base.worker + SLACK),
        `the serving worker's descriptors grow past ${base.worker} + ${SLACK}:\n${table}`,
      ).toEqual([]);
    },
    120_000 + RELOADS * 3_000,
  );
});
