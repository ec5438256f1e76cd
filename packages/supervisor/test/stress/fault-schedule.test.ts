/**
 * A seeded random fault schedule against the real supervisor, under byte-verifying load with churn:
 * SIGHUP alone and in bursts; kill -9 of the serving worker, of a reload's starting worker, of the
 * old worker in the middle of a migration, and of the spare; a start-up hook that throws, hangs
 * past ready_timeout or awaits; a conf file that turns invalid and valid again; at the end
 * `netplex stop --graceful`. After every step, at rest:
 * - the processes alive are exactly those `status` lists, at most one starts, the listen socket is
 *   held by the supervisor and accepted on by the serving worker (checkInvariants);
 * - at most max_draining workers drain;
 * - a new connection is greeted and answered;
 * - no connection was lost, reset or refused and no byte was lost, duplicated or reordered, except
 *   on connections that were in a worker this schedule killed (they go with it).
 *
 * Size: NETPLEX_FAULT_STEPS (default 20) steps; NETPLEX_FAULT_SEED replays a schedule (a failure
 * names its seed and the steps so far); NETPLEX_FAULT_STREAMERS (default 8) persistent clients.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkInvariants, type WorkerRow } from '../helpers/invariants.js';
import { Churn, LineStreamer } from '../helpers/load.js';
import { ask, behaviour, cli, greet, type Proc, startTagged, tempDir, waitGone } from '../helpers/proc.js';
import { mulberry32, pick } from '../helpers/random.js';

const STEPS = Number(process.env.NETPLEX_FAULT_STEPS ?? 20);
const SEED = Number(process.env.NETPLEX_FAULT_SEED ?? Date.now() % 1_000_000);
const STREAMERS = Number(process.env.NETPLEX_FAULT_STREAMERS ?? 8);
/** NETPLEX_FAULT_VERBOSE=1 prints each step as it is done. */
const VERBOSE = process.env.NETPLEX_FAULT_VERBOSE === '1';
const MAX_DRAINING = 1;
/** Long enough for hooks that await up to 1.1 s on a loaded machine; a hanging hook costs this much. */
const READY_TIMEOUT_S = 5;

const CONF_VALID = 'port 127.0.0.1:0\nreload_mode migrate\n';
const CONF_INVALID = 'port 127.0.0.1:0\nreload_mode migrate\nmax_input_bufer 4096\n';

/** outcome is a reload's outcome line. */
const isOutcome = (l: { msg?: unknown }) =>
  String(l.msg).startsWith('reloaded in') || String(l.msg).startsWith('reload failed');

interface Run {
  proc: Proc;
  port: number;
  pidFile: string;
  behaviourFile: string;
  conf: string;
  dir: string;
  random: () => number;
  /** Intervals during which connections may be lost: from a kill -9 of a worker with clients until rest. */
  lossy: Array<[number, number]>;
  confValid: boolean;
  /** Connections lost with a worker this schedule killed. */
  lostWithKilled: number;
}

/** atRest waits until one worker serves, none starts, at most MAX_DRAINING drain; it checks the invariants on the way. */
async function atRest(run: Run, step: string): Promise<WorkerRow[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { status, workers } = await checkInvariants(run.pidFile, run.port, step);
    const roles = workers.map((w) => w.role);
    if (
      status.state === 'running' &&
      roles.includes('serving') &&
      !roles.includes('starting') &&
      !roles.includes('migrating-in') &&
      roles.filter((r) => r === 'draining').length <= MAX_DRAINING
    )
      return workers;
    if (Date.now() > deadline) throw new Error(`not at rest 30 s after ${step}: ${JSON.stringify(status)}`);
  }
}

/** outcomeAfter waits for the next reload outcome line after log line `mark`. */
function outcomeAfter(run: Run, mark: number, what: string) {
  return run.proc.waitLog(isOutcome, what, 30_000, mark);
}

/** lossyKill kills `pid` with SIGKILL and opens a lossy interval that closes at the next rest. */
function lossyKill(run: Run, pid: number): void {
  run.lossy.push([Date.now(), Number.POSITIVE_INFINITY]);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}

type Step = (run: Run, workers: WorkerRow[]) => Promise<string>;

const serving = (workers: WorkerRow[]) => workers.find((w) => w.role === 'serving')!;

/** The steps, each returning what it did. */
const steps: Record<string, Step> = {
  async hup(run) {
    const mark = run.proc.lines.length;
    run.proc.child.kill('SIGHUP');
    const out = await outcomeAfter(run, mark, 'the reload');
    if (run.confValid) expect(String(out.msg), `the reload: ${JSON.stringify(out)}`).toMatch(/^reloaded in/);
    else expect(out.code).toBe('MPX_ERR_CONFIG_UNKNOWN_OPTION');
    return `SIGHUP: ${out.msg}`;
  },
  async hupBurst(run) {
    const n = 2 + Math.floor(run.random() * 20);
    const mark = run.proc.lines.length;
    for (let i = 0; i < n; i++) run.proc.child.kill('SIGHUP');
    await outcomeAfter(run, mark, 'the burst reload');
    await atRest(run, `a burst of ${n} SIGHUPs`);
    const outcomes = run.proc.lines.slice(mark).filter(isOutcome).length;
    expect(outcomes, `a burst of ${n} SIGHUPs coalesces`).toBeLessThanOrEqual(2);
    return `${n} SIGHUPs: ${outcomes} reloads`;
  },
  async killServing(run, workers) {
    const victim = serving(workers).pid;
    const mark = run.proc.lines.length;
    lossyKill(run, victim);
    await waitGone(victim, 'the killed serving worker');
    await run.proc.waitLog((l) => String(l.msg).includes('restarted'), 'the restart', 30_000, mark);
    return `kill -9 serving ${victim}`;
  },
  async killSpare(_run, workers) {
    const spare = workers.find((w) => w.role === 'spare');
    if (!spare) return 'no spare to kill';
    process.kill(spare.pid, 'SIGKILL');
    await waitGone(spare.pid, 'the killed spare');
    return `kill -9 spare ${spare.pid}`;
  },
  async killStarting(run) {
    behaviour(run.behaviourFile, { slowStartMs: 1500 });
    const mark = run.proc.lines.length;
    run.proc.child.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    let starting: WorkerRow | undefined;
    while (!starting && Date.now() < deadline && !run.proc.lines.slice(mark).some(isOutcome)) {
      const { workers } = await checkInvariants(run.pidFile, run.port, 'while a reload starts');
      starting = workers.find((w) => w.role === 'starting');
    }
    behaviour(run.behaviourFile, {});
    const killedAt = Date.now();
    if (starting) {
      try {
        process.kill(starting.pid, 'SIGKILL');
      } catch (err) {
        // Gone by itself already (with the conf invalid, a new worker exits at once): the outcome says so.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
    const out = await outcomeAfter(run, mark, 'the reload whose worker is killed');
    // A worker killed before it was ready had no connection to lose; one that got ready meanwhile may have.
    if (starting && !String(out.msg).includes('before it was ready'))
      run.lossy.push([killedAt, Number.POSITIVE_INFINITY]);
    if (starting) await waitGone(starting.pid, 'the killed starting worker');
    return `kill -9 starting ${starting?.pid ?? '(none seen)'}: ${out.msg}`;
  },
  async killOldMidMigration(run, workers) {
    if (!run.confValid) return 'no migration while the conf is invalid';
    // A connection whose muxFreeze waits for a file holds the old worker in the migration.
    const gate = join(run.dir, `gate-${Date.now()}`);
    const { socket } = await greet(run.port);
    expect(await ask(socket, `freeze-wait ${gate}`)).toBe('v1 will wait');
    const old = serving(workers).pid;
    const holder = (await ask(socket, 'whoami')).match(/pid (\d+)/)?.[1];
    const mark = run.proc.lines.length;
    const stderrMark = run.proc.stderr.length;
    run.proc.child.kill('SIGHUP');
    if (holder === String(old)) {
      await run.proc.until(() => run.proc.stderr.slice(stderrMark).includes('freezing'), 'the held freeze');
      lossyKill(run, old);
    }
    writeFileSync(gate, '');
    const out = await outcomeAfter(run, mark, 'the reload whose old worker is killed');
    await waitGone(old, 'the killed old worker');
    socket.destroy();
    return `kill -9 old ${old} mid-migration: ${out.msg}`;
  },
  async hookThrows(run) {
    behaviour(run.behaviourFile, { throwAtStart: true });
    const mark = run.proc.lines.length;
    run.proc.child.kill('SIGHUP');
    const out = await outcomeAfter(run, mark, 'the reload whose hook throws');
    behaviour(run.behaviourFile, {});
    expect(out.msg).toMatch(/^reload failed/);
    return `preLoopHook throws: ${out.code}`;
  },
  async hookHangs(run) {
    behaviour(run.behaviourFile, { slowStartMs: 60_000 });
    const mark = run.proc.lines.length;
    run.proc.child.kill('SIGHUP');
    const out = await outcomeAfter(run, mark, 'the reload whose hook hangs');
    behaviour(run.behaviourFile, {});
    expect(out.msg).toMatch(/^reload failed/);
    if (run.confValid) expect(out.code).toBe('MPX_ERR_HOOK_TIMEOUT');
    return `preLoopHook hangs: ${out.code}`;
  },
  async hookAwaits(run) {
    const bind = Math.floor(run.random() * 300);
    const start = Math.floor(run.random() * 800);
    behaviour(run.behaviourFile, { slowBindMs: bind, slowStartMs: start });
    const mark = run.proc.lines.length;
    run.proc.child.kill('SIGHUP');
    const out = await outcomeAfter(run, mark, 'the reload whose hooks await');
    behaviour(run.behaviourFile, {});
    if (run.confValid) expect(String(out.msg), `the reload: ${JSON.stringify(out)}`).toMatch(/^reloaded in/);
    return `hooks await ${bind} + ${start} ms: ${out.msg}`;
  },
  async confToggle(run) {
    run.confValid = !run.confValid;
    writeFileSync(run.conf, run.confValid ? CONF_VALID : CONF_INVALID);
    return steps.hup!(run, []).then((what) => `conf turns ${run.confValid ? 'valid' : 'invalid'}, ${what}`);
  },
  async hupThenKill(run, workers) {
    const delay = Math.floor(run.random() * 400);
    const target = pick(run.random, [
      [2, serving(workers)],
      [1, workers.find((w) => w.role === 'spare') ?? serving(workers)],
    ]);
    const mark = run.proc.lines.length;
    run.proc.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, delay));
    lossyKill(run, target.pid);
    await outcomeAfter(run, mark, 'the reload with a kill');
    await waitGone(target.pid, `the killed ${target.role} worker`);
    return `SIGHUP, kill -9 ${target.role} ${target.pid} after ${delay} ms`;
  },
};

const WEIGHTS: Array<[number, string]> = [
  [4, 'hup'],
  [1, 'hupBurst'],
  [2, 'killServing'],
  [1, 'killSpare'],
  [1, 'killStarting'],
  [1, 'killOldMidMigration'],
  [1, 'hookThrows'],
  [1, 'hookHangs'],
  [2, 'hookAwaits'],
  [1, 'confToggle'],
  [2, 'hupThenKill'],
];

/** fdCount is how many descriptors `pid` has open; rssKb its resident memory. */
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const rssKb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

/** lostOutside lists the failures (at `at`, with `why`) that no lossy interval covers. */
function lostOutside(run: Run, failures: Array<{ at: number; why: string }>): string[] {
  const outside = failures.filter(({ at }) => !run.lossy.some(([from, to]) => at >= from && at <= to));
  run.lostWithKilled += failures.length - outside.length;
  return outside.map(({ why }) => why);
}

describe('a random fault schedule under load', () => {
  it(
    `${STEPS} steps (NETPLEX_FAULT_STEPS), seed ${SEED} (NETPLEX_FAULT_SEED): the invariants hold after each, and only killed workers lose connections`,
    async () => {
      const dir = tempDir();
      const conf = join(dir, 'server.conf');
      writeFileSync(conf, CONF_VALID);
      const started = await startTagged(
        [
          '--conf_file',
          conf,
          '--pid_file={pid}',
          '--restart_backoff=0.05',
          '--restart_backoff_max=0.2',
          `--ready_timeout=${READY_TIMEOUT_S}`,
          `--max_draining=${MAX_DRAINING}`,
          '--drain_timeout=5',
        ],
        { dir, via: 'netplex' },
      );
      const run: Run = {
        ...started,
        conf,
        random: mulberry32(SEED),
        lossy: [],
        confValid: true,
        lostWithKilled: 0,
      };
      const history: string[] = [];
      const streamers: LineStreamer[] = [];
      const lost: string[] = [];
      const churn = new Churn(run.port, 40);
      const supervisor = run.proc.pid;
      const figures: string[] = [];
      const replaceFailed = () => {
        for (const [i, s] of streamers.entries()) {
          if (s.alive) continue;
          lost.push(...lostOutside(run, [{ at: s.failedAt, why: `streamer ${i}: ${s.failure}` }]));
          streamers[i] = new LineStreamer(run.port);
        }
      };
      try {
        for (let i = 0; i < STREAMERS; i++) streamers.push(new LineStreamer(run.port));
        const order = WEIGHTS.map(([, name]) => name)
          .map((name) => [run.random(), name] as const)
          .sort((a, b) => a[0] - b[0])
          .map(([, name]) => name);
        let workers = await atRest(run, 'start');
        for (let step = 0; step < STEPS; step++) {
          // Every kind of step once, in a random order, then random ones by weight.
          // An invalid conf file is made valid again within a few steps.
          const name =
            step < order.length
              ? order[step]!
              : !run.confValid && run.random() < 0.3
                ? 'confToggle'
                : pick(run.random, WEIGHTS);
          history.push(`${step}: ${name}`);
          history[history.length - 1] = `${step}: ${await steps[name]!(run, workers)}`;
          if (VERBOSE) process.stderr.write(`${history.at(-1)}\n`);
          workers = await atRest(run, history.at(-1)!);
          const now = Date.now();
          for (const interval of run.lossy) if (interval[1] === Number.POSITIVE_INFINITY) interval[1] = now;
          replaceFailed();
          lost.push(
            ...lostOutside(
              run,
              churn.failures.splice(0).map((f) => ({ at: f.failedAt, why: f.why })),
            ),
          );
          expect(lost, 'connections lost outside a killed worker').toEqual([]);
          const { line, socket } = await greet(run.port);
          expect(line).toBe('hello from v1');
          expect(await ask(socket, `witness ${step}`)).toBe(`v1 witness ${step}`);
          socket.destroy();
          if (step === 9 || step === STEPS - 1)
            figures.push(
              `after step ${step}: supervisor fds ${fdCount(supervisor)}, rss ${rssKb(supervisor)} kB`,
            );
        }
        for (const s of streamers) s.stop();
        await Promise.all(streamers.map((s, i) => s.drained(`streamer ${i}`)));
        await churn.stop();
        lost.push(
          ...lostOutside(
            run,
            churn.failures.map((f) => ({ at: f.failedAt, why: f.why })),
          ),
        );
        expect(lost, 'connections lost outside a killed worker').toEqual([]);
        // netplex stop --graceful: every process the supervisor started ends, and so does it.
        const { workers: last } = await checkInvariants(run.pidFile, run.port, 'before the stop');
        const stop = cli(['stop', `--pid_file=${run.pidFile}`, '--graceful']);
        for (const s of streamers) s.end();
        expect((await stop.waitExit(30_000)).code, stop.stderr).toBe(0);
        expect((await run.proc.waitExit(30_000)).code).toBe(0);
        for (const w of last) await waitGone(w.pid, `${w.role} worker ${w.pid} after the stop`);
        const served = churn.served;
        console.log(
          `fault schedule, seed ${SEED}: ${STEPS} steps; ${served} churn connections served; ${run.lossy.length} kills of workers with connections, which took ${run.lostWithKilled} connections with them; ${figures.join('; ')}`,
        );
      } catch (err) {
        throw new Error(
          `seed ${SEED} (NETPLEX_FAULT_SEED=${SEED} replays it), after ${history.join(' → ')}: ${(err as Error).message}`,
        );
      } finally {
        for (const s of streamers) s.end();
        await churn.stop();
      }
    },
    60_000 + STEPS * 20_000,
  );
});
