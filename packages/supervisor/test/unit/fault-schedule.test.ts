/**
 * The random fault schedule over the fake environment: many short episodes, each a supervisor whose
 * workers behave as a seeded generator says (ready soon or late, never, failing their start, dying
 * after ready, slow to drain or to stop, dying in a migration) while the schedule reloads, crashes
 * workers, turns the conf file invalid and valid, and lets time pass in steps from 0 ms to past
 * every bound; each episode ends with a stop at a random moment. Thousands of steps a second cover
 * the interleavings of reload, restart, stop, ready timeout and exit that the real-process tests
 * reach only by luck. After every step:
 * - the workers `status()` lists are exactly the fake workers alive;
 * - at most one serves, at most one starts or migrates in;
 * - at most max_draining drain, besides those told to stop;
 * - while the phase is serving, a worker serves.
 * After the stop: it settled, every reload asked for settled, every worker exited, no timer is left.
 *
 * Size: NETPLEX_SM_EPISODES (default 150) episodes of NETPLEX_SM_STEPS (default 40) steps;
 * NETPLEX_SM_SEED replays a run (a failure names its seed, episode and steps).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SupervisorStatus } from '../../src/status.js';
import { type FakeWorker, type Tracked, track, type WorkerScript } from '../helpers/fake-env.js';
import { mulberry32, pick } from '../helpers/random.js';
import { type Rig, rig, tempDir, useRigs } from '../helpers/rig.js';

useRigs();

const EPISODES = Number(process.env.NETPLEX_SM_EPISODES ?? 150);
const STEPS = Number(process.env.NETPLEX_SM_STEPS ?? 40);
const SEED = Number(process.env.NETPLEX_SM_SEED ?? Date.now() % 1_000_000);

const CONF_VALID = 'port 127.0.0.1:0\n';
const CONF_INVALID = 'port 127.0.0.1:0\nmax_input_bufer 4096\n';

type Random = () => number;

const upTo = (random: Random, n: number) => Math.floor(random() * (n + 1));

/** randomScript is how one worker behaves; most are healthy, as most workers are. */
function randomScript(random: Random): WorkerScript {
  const script: WorkerScript = {
    start: pick<WorkerScript['start']>(random, [
      [8, { ready: upTo(random, 300) }],
      [1, { ready: 6000 }],
      [1, 'hang'],
      [1, { fatal: { message: 'preLoopHook failed', code: 'MPX_ERR_HOOK' }, afterMs: upTo(random, 200) }],
      [1, { exit: 1, afterMs: upTo(random, 200) }],
    ]),
    leaveAfterMs: pick(random, [
      [4, upTo(random, 500)],
      [2, upTo(random, 5000)],
      [1, 40_000],
    ]),
    migrate: { afterMs: upTo(random, 500), die: random() < 0.1 },
  };
  if (random() < 0.15) script.exitAfterReady = { afterMs: upTo(random, 3000), code: 1 };
  if (random() < 0.1) script.stopAfterMs = 15_000;
  if (random() < 0.3) script.hook = 'preLoopHook';
  return script;
}

interface Episode {
  r: Rig;
  random: Random;
  conf: string;
  confValid: boolean;
  maxDraining: number;
  reloads: Array<Tracked<unknown>>;
  log: string[];
}

/** alive lists the fake workers that have not exited. */
const alive = (e: Episode) => e.r.env.workers.filter((w) => !w.exited);

/** statusNow asks status() and lets it finish; the fakes alive when it was asked come with it. */
async function statusNow(e: Episode): Promise<{ status: SupervisorStatus; aliveThen: FakeWorker[] }> {
  const asked = track(e.r.sup.status());
  const aliveThen = alive(e);
  await e.r.clock.settle();
  // A worker that exits meanwhile never answers: its figures time out.
  if (!asked.settled) await e.r.clock.advance(2_000);
  if (asked.error) throw asked.error;
  return { status: asked.value!, aliveThen };
}

/** check asserts the invariants of a running supervisor. */
async function check(e: Episode): Promise<void> {
  if (e.r.sup.state !== 'running') return;
  const phase = e.r.sup.phase.name;
  const { status, aliveThen } = await statusNow(e);
  const listed = status.workers.map((w) => w.pid).sort((a, b) => a - b);
  expect(listed, 'status lists exactly the workers alive').toEqual(aliveThen.map((w) => w.pid));
  const count = (...roles: string[]) => status.workers.filter((w) => roles.includes(w.role)).length;
  expect(count('serving'), 'at most one worker serves').toBeLessThanOrEqual(1);
  expect(count('starting', 'migrating-in'), 'at most one worker starts').toBeLessThanOrEqual(1);
  const stopped = new Set(
    e.r.env.workers.filter((w) => w.types().includes('netplex:stop')).map((w) => w.pid),
  );
  const draining = status.workers.filter((w) => w.role === 'draining' && !stopped.has(w.pid));
  expect(draining.length, `at most max_draining (${e.maxDraining}) drain`).toBeLessThanOrEqual(e.maxDraining);
  if (phase === 'serving') expect(count('serving'), 'a worker serves while the phase is serving').toBe(1);
}

/** The steps of the schedule. */
const steps: Record<string, (e: Episode) => Promise<string>> = {
  async reload(e) {
    e.reloads.push(track(e.r.sup.reload()));
    await e.r.clock.advance(0);
    return 'reload';
  },
  async crash(e) {
    const live = alive(e);
    if (live.length === 0) return 'crash: none alive';
    const victim = live[Math.floor(e.random() * live.length)]!;
    if (e.random() < 0.5) victim.crash(1);
    else victim.kill('SIGKILL');
    await e.r.clock.advance(0);
    return `crash ${victim.pid}`;
  },
  async advance(e) {
    const ms = pick(e.random, [
      [3, 0],
      [3, 1 + upTo(e.random, 20)],
      [3, 50 + upTo(e.random, 400)],
      [2, 1000 + upTo(e.random, 2000)],
      [1, 5000 + upTo(e.random, 30_000)],
    ]);
    await e.r.clock.advance(ms);
    return `advance ${ms}`;
  },
  async confToggle(e) {
    e.confValid = !e.confValid;
    writeFileSync(e.conf, e.confValid ? CONF_VALID : CONF_INVALID);
    return `conf ${e.confValid ? 'valid' : 'invalid'}`;
  },
};

const WEIGHTS: Array<[number, string]> = [
  [3, 'reload'],
  [2, 'crash'],
  [6, 'advance'],
  [1, 'confToggle'],
];

/** episode runs one supervisor through STEPS random steps and a stop. */
async function episode(random: Random, n: number, dir: string): Promise<void> {
  const conf = join(dir, `server-${n}.conf`);
  writeFileSync(conf, CONF_VALID);
  const maxDraining = upTo(random, 2);
  const mode = random() < 0.7 ? 'migrate' : 'drain';
  const scripts: WorkerScript[] = [];
  const r = rig(
    (i) => (scripts[i] ??= i === 0 ? { start: { ready: upTo(random, 100) } } : randomScript(random)),
    [`--conf_file=${conf}`, `--max_draining=${maxDraining}`, `--reload_mode=${mode}`],
  );
  const e: Episode = { r, random, conf, confValid: true, maxDraining, reloads: [], log: [] };
  const started = track(r.sup.start());
  await r.clock.advance(200);
  expect(started.settled, 'the first start settles within 200 ms').toBe(true);
  const stopAt = upTo(random, STEPS);
  let stop: Tracked<void> | undefined;
  for (let step = 0; step <= STEPS; step++) {
    if (step === stopAt) {
      e.log.push('stop');
      stop = track(r.sup.stop());
      await r.clock.advance(0);
    }
    if (step === STEPS) break;
    const name = pick(random, WEIGHTS);
    e.log.push(await steps[name]!(e));
    try {
      await check(e);
    } catch (err) {
      throw new Error(
        `episode ${n} (${mode}, max_draining ${maxDraining}) after ${e.log.join(', ')}: ${(err as Error).message}`,
      );
    }
  }
  // Everything settles once time runs past every bound.
  await r.clock.advance(120_000);
  const where = `episode ${n} (${mode}, max_draining ${maxDraining}) after ${e.log.join(', ')}`;
  expect(stop?.settled, `${where}: the stop settles`).toBe(true);
  expect(r.sup.state, where).toBe('stopped');
  expect(e.reloads.filter((t) => !t.settled).length, `${where}: every reload settles`).toBe(0);
  expect(
    alive(e).map((w) => w.pid),
    `${where}: every worker exits`,
  ).toEqual([]);
  expect(r.clock.pending(), `${where}: no timer is left`).toEqual([]);
}

describe('a random fault schedule over the fake environment', () => {
  it(`${EPISODES} episodes of ${STEPS} steps (NETPLEX_SM_EPISODES, NETPLEX_SM_STEPS), seed ${SEED} (NETPLEX_SM_SEED)`, async () => {
    const random = mulberry32(SEED);
    const dir = tempDir();
    const began = Date.now();
    for (let n = 0; n < EPISODES; n++) {
      try {
        await episode(random, n, dir);
      } catch (err) {
        throw new Error(`seed ${SEED} (NETPLEX_SM_SEED=${SEED} replays it), ${(err as Error).message}`);
      }
    }
    const seconds = (Date.now() - began) / 1000;
    console.log(
      `fake-env fault schedule, seed ${SEED}: ${EPISODES * STEPS} steps in ${seconds.toFixed(1)} s`,
    );
  }, 120_000);
});
