/**
 * max_draining over the fake environment: each reload leaves its old worker draining for up to
 * drain_timeout, and a reload that would pass max_draining tells the oldest drainers to close their
 * connections and exit now. They stay listed as draining until they have exited.
 */
import { describe, expect, it } from 'vitest';
import { type FakeWorker, track, type WorkerScript } from '../helpers/fake-env.js';
import { roles, serving, TCP_PORT, useRigs, worker } from '../helpers/rig.js';

useRigs();

/** A worker whose drain lasts 30 s, which stops in 200 ms when told to. */
const SLOW_DRAIN: WorkerScript = { leaveAfterMs: 30_000, stopAfterMs: 200 };

describe('max_draining', () => {
  it('by default (2), the third reload in a row stops the oldest drainer; it is listed until it exits', async () => {
    const r = await serving([SLOW_DRAIN, SLOW_DRAIN, SLOW_DRAIN, {}], [...TCP_PORT, '--reload_mode=drain']);
    for (let n = 0; n < 2; n++) {
      const reload = track(r.sup.reload());
      await r.clock.advance(0);
      expect(reload.value).toMatchObject({ ok: true });
    }
    expect(r.env.workers[0]!.types()).not.toContain('netplex:stop');
    const mark = r.log.mark();
    const third = track(r.sup.reload());
    await r.clock.advance(0);
    expect(third.value).toMatchObject({ ok: true });
    const [w0, w1, w2, w3] = [0, 1, 2, 3].map((n) => worker(r, n)) as [
      FakeWorker,
      FakeWorker,
      FakeWorker,
      FakeWorker,
    ];
    expect(w0.types()).toContain('netplex:stop');
    expect(w1.types()).not.toContain('netplex:stop');
    expect(r.log.records.slice(mark).filter((l) => l.msg.startsWith('max_draining'))).toEqual([
      expect.objectContaining({
        msg: "max_draining (2) reached: closing the oldest draining worker's connections",
        worker: w0.pid,
        generation: 1,
        draining: 3,
      }),
    ]);
    expect(roles(await r.sup.status())).toEqual([
      [w3.pid, 'serving'],
      [w0.pid, 'draining'],
      [w1.pid, 'draining'],
      [w2.pid, 'draining'],
    ]);
    await r.clock.advance(200);
    expect(w0.exited).toBe(true);
    expect(roles(await r.sup.status())).toEqual([
      [w3.pid, 'serving'],
      [w1.pid, 'draining'],
      [w2.pid, 'draining'],
    ]);
  });

  it('a drainer that does not exit when told is killed after the stop bound', async () => {
    const stuck: WorkerScript = { leaveAfterMs: 60_000, stopAfterMs: 60_000 };
    const r = await serving([stuck, {}], [...TCP_PORT, '--reload_mode=drain', '--max_draining=0']);
    const reload = track(r.sup.reload());
    await r.clock.advance(0);
    expect(reload.value).toMatchObject({ ok: true });
    const w0 = r.env.workers[0]!;
    expect(w0.types()).toEqual(expect.arrayContaining(['netplex:retire', 'netplex:stop']));
    await r.clock.advance(9_999);
    expect(w0.exited).toBe(false);
    await r.clock.advance(1);
    expect(w0.kills).toEqual(['SIGKILL']);
    expect(roles(await r.sup.status())).toEqual([[r.env.workers[1]!.pid, 'serving']]);
  });

  it('counts only the drainers not already told to stop', async () => {
    const r = await serving(
      [SLOW_DRAIN, SLOW_DRAIN, SLOW_DRAIN, SLOW_DRAIN, {}],
      [...TCP_PORT, '--reload_mode=drain', '--max_draining=1'],
    );
    const w = (n: number) => r.env.workers[n]!;
    const reload = async () => {
      const done = track(r.sup.reload());
      await r.clock.advance(0);
      expect(done.value).toMatchObject({ ok: true });
    };
    await reload();
    await reload();
    // Two drainers with max_draining 1: the older one is told to stop, once.
    expect(w(0).got('netplex:stop')).toHaveLength(1);
    expect(w(1).types()).not.toContain('netplex:stop');
    await reload();
    expect(w(0).got('netplex:stop')).toHaveLength(1);
    expect(w(1).got('netplex:stop')).toHaveLength(1);
    expect(w(2).types()).not.toContain('netplex:stop');
    await r.clock.advance(200);
    expect([w(0).exited, w(1).exited, w(2).exited]).toEqual([true, true, false]);
  });
});
