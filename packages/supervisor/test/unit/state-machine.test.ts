/**
 * The supervisor's state machine over a fake environment (test/helpers/fake-env.ts): fake worker
 * processes that speak the worker's side of the IPC protocol as each test says, and a fake clock
 * the tests advance. The listen sockets are real (bound on 127.0.0.1 port 0, or a unix socket in a
 * temporary directory). Each test checks what an operator sees: the reload's result, `status()`,
 * the log lines, and the phase changes from the debug lines (`phase: A → B`).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RETIRE_ACK_MS } from '../../src/defaults.js';
import { supervisorCodes } from '../../src/errors.js';
import { type Phase, type PhaseName, type Request, requests, stateOf, verdict } from '../../src/phase.js';
import { track, type WorkerScript } from '../helpers/fake-env.js';
import { connectOutcome, rig, roles, serving, TCP_PORT, tempDir, useRigs, worker } from '../helpers/rig.js';

/** The phase changes every reload begins with. */
const RELOAD_BEGINS = [
  'serving → reloading (reload-configuration)',
  'reloading (reload-configuration) → reloading (rebind)',
  'reloading (rebind) → reloading (start-new-worker)',
];

useRigs();

describe('a reload whose new worker is never ready', () => {
  it('fails with SUP_ERR_READY_TIMEOUT after ready_timeout; the new worker is killed, the old one serves on', async () => {
    const r = await serving([{}, { start: 'hang' }]);
    const old = worker(r, 0);
    const mark = r.log.mark();
    const reload = track(r.sup.reload());
    await r.clock.advance(0);
    const neu = worker(r, 1);
    expect(r.sup.phase).toEqual({ name: 'reloading', step: 'start-new-worker' });
    expect(roles(await r.sup.status())).toEqual([
      [old.pid, 'serving'],
      [neu.pid, 'starting'],
    ]);

    await r.clock.advance(4999);
    expect(reload.settled).toBe(false);
    await r.clock.advance(1);
    const error = `worker ${neu.pid} was not ready within 5000 ms`;
    expect(reload.value).toEqual({ ok: false, code: 'SUP_ERR_READY_TIMEOUT', error });
    expect(neu.kills).toEqual(['SIGKILL']);
    expect(neu.exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(old.exited).toBe(false);
    expect(old.types()).not.toContain('netplex:migrate');
    expect(old.types()).not.toContain('netplex:retire');

    const status = await r.sup.status();
    expect(status).toMatchObject({
      state: 'running',
      worker_pid: old.pid,
      reloads: 0,
      restarts: 0,
      last_reload_error: error,
    });
    expect(roles(status)).toEqual([[old.pid, 'serving']]);
    const failed = r.log.find(`reload failed, the old worker keeps serving: ${error}`, mark);
    expect(failed).toMatchObject({ level: 50, code: 'SUP_ERR_READY_TIMEOUT', ms: 5000 });
    expect(r.log.phases(mark)).toEqual([
      ...RELOAD_BEGINS,
      'reloading (start-new-worker) → reloading (handle-failure)',
      'reloading (handle-failure) → serving',
    ]);
    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(2);
  });

  it('names the start-up hook that never settled: MPX_ERR_HOOK_TIMEOUT', async () => {
    const r = await serving([{}, { start: 'hang', hook: 'preLoopHook' }]);
    const old = worker(r, 0);
    const reload = track(r.sup.reload());
    await r.clock.advance(5000);
    const neu = worker(r, 1);
    const error =
      'hook preLoopHook did not settle within 5000 ms: did it return a promise that never resolves?';
    expect(reload.value).toEqual({ ok: false, code: 'MPX_ERR_HOOK_TIMEOUT', error });
    expect(neu.kills).toEqual(['SIGKILL']);
    const status = await r.sup.status();
    expect(status).toMatchObject({ worker_pid: old.pid, reloads: 0, last_reload_error: error });
    expect(roles(status)).toEqual([[old.pid, 'serving']]);
    expect(r.log.messages()).toContain(`reload failed, the old worker keeps serving: ${error}`);
    expect(r.sup.phase).toEqual({ name: 'serving' });
  });
});

describe('a worker that exits during a reload', () => {
  it('start-new-worker: the new worker exits before it is ready; the old one serves on', async () => {
    const r = await serving([{}, { start: { exit: 3, afterMs: 10 } }]);
    const old = worker(r, 0);
    const mark = r.log.mark();
    const reload = track(r.sup.reload());
    await r.clock.advance(9);
    expect(reload.settled).toBe(false);
    await r.clock.advance(1);
    const neu = worker(r, 1);
    const error = `worker ${neu.pid} exited with code 3 before it was ready`;
    expect(reload.value).toEqual({ ok: false, code: 'SUP_ERR_WORKER_FAILED', error });
    const status = await r.sup.status();
    expect(status).toMatchObject({ worker_pid: old.pid, reloads: 0, restarts: 0, last_reload_error: error });
    expect(roles(status)).toEqual([[old.pid, 'serving']]);
    expect(r.log.phases(mark)).toEqual([
      ...RELOAD_BEGINS,
      'reloading (start-new-worker) → reloading (handle-failure)',
      'reloading (handle-failure) → serving',
    ]);
    // The new worker was never the current one: its exit restarts nothing.
    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(2);
    expect(r.log.messages().filter((m) => m.includes('died'))).toEqual([]);
  });

  it("start-new-worker: the new worker's own fatal report is the reload's error, with its code", async () => {
    const fatal = { message: '/etc/x.conf:3: unknown option mottto', code: 'MPX_ERR_CONFIG_UNKNOWN_OPTION' };
    const r = await serving([{}, { start: { fatal } }]);
    const old = worker(r, 0);
    const reload = track(r.sup.reload());
    await r.clock.advance(0);
    expect(reload.value).toEqual({ ok: false, code: fatal.code, error: fatal.message });
    expect(worker(r, 1).exit).toEqual({ code: 1, signal: null });
    expect(await r.sup.status()).toMatchObject({ worker_pid: old.pid, last_reload_error: fatal.message });
  });

  it('hand-over: the new worker dies during the migration; the old one gets its handles again and resumes', async () => {
    const r = await serving([{ migrate: { afterMs: 50 } }, {}]);
    const old = worker(r, 0);
    const mark = r.log.mark();
    const reload = track(r.sup.reload());
    await r.clock.advance(0);
    const neu = worker(r, 1);
    expect(neu.startMessage?.migrate).toBe(true);
    expect(old.types()).toContain('netplex:migrate');
    expect(r.sup.phase).toEqual({ name: 'reloading', step: 'hand-over' });
    expect(roles(await r.sup.status())).toEqual([
      [old.pid, 'serving'],
      [neu.pid, 'migrating-in'],
    ]);

    neu.crash();
    await r.clock.advance(0);
    // The old worker has not said the migration is over yet.
    expect(reload.settled).toBe(false);
    await r.clock.advance(50);
    const error = `the new worker ${neu.pid} failed during the migration`;
    expect(reload.value).toEqual({ ok: false, code: 'SUP_ERR_WORKER_FAILED', error });

    const afterMigrate = old.received
      .slice(old.types().indexOf('netplex:migrate'))
      .filter((m) => m.message.type !== 'netplex:status');
    expect(afterMigrate.map((m) => [m.message.type, m.handle])).toEqual([
      ['netplex:migrate', false],
      ['netplex:handle', true],
      ['netplex:resume', false],
      ['netplex:peers', false],
    ]);
    expect(old.got('netplex:handle').at(-1)?.key).toBe(old.got('netplex:handle')[0]?.key);
    expect(old.got('netplex:peers').at(-1)).toEqual({ type: 'netplex:peers', on: false });
    expect(old.exited).toBe(false);

    const status = await r.sup.status();
    expect(status).toMatchObject({ worker_pid: old.pid, reloads: 0, restarts: 0, last_reload_error: error });
    expect(roles(status)).toEqual([[old.pid, 'serving']]);
    expect(r.log.phases(mark)).toEqual([
      ...RELOAD_BEGINS,
      'reloading (start-new-worker) → reloading (hand-over)',
      'reloading (hand-over) → reloading (handle-failure)',
      'reloading (handle-failure) → serving',
    ]);
    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(2);
  });

  it('start-new-worker: the old worker dies; the reload still succeeds, and nothing restarts after it', async () => {
    const r = await serving([{}, { start: { ready: 100 } }]);
    const old = worker(r, 0);
    const mark = r.log.mark();
    const reload = track(r.sup.reload());
    await r.clock.advance(50);
    old.crash();
    await r.clock.advance(0);
    const neu = worker(r, 1);
    expect(r.log.messages(mark)).toContain(`worker ${old.pid} died (exit code 1); restarting in 100 ms`);
    expect(r.sup.phase).toEqual({ name: 'reloading', step: 'start-new-worker' });
    const during = await r.sup.status();
    expect(during.worker_pid).toBeNull();
    expect(roles(during)).toEqual([[neu.pid, 'starting']]);

    await r.clock.advance(50);
    expect(reload.value).toMatchObject({ ok: true, workerPid: neu.pid });
    expect(r.log.messages(mark)).toContain(
      'the pending restart is cancelled: the reload put a worker in place',
    );
    // The new worker, told to wait for the old one's state, is told there is none, and that it is over.
    expect(neu.got('netplex:server-state')).toEqual([{ type: 'netplex:server-state', data: null }]);
    expect(neu.types()).toContain('netplex:migration-end');

    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(2);
    const status = await r.sup.status();
    expect(status).toMatchObject({ state: 'running', worker_pid: neu.pid, restarts: 0, reloads: 1 });
    expect(roles(status)).toEqual([[neu.pid, 'serving']]);
    expect(r.log.phases(mark)).toEqual([
      ...RELOAD_BEGINS,
      'reloading (start-new-worker) → reloading (hand-over)',
      'reloading (hand-over) → reloading (close-removed-ports)',
      'reloading (close-removed-ports) → serving',
    ]);
  });

  it('hand-over: the old worker dies during the migration; the reload succeeds and the new worker is told it is over', async () => {
    const r = await serving([{ migrate: { afterMs: 20, die: true } }, {}]);
    const old = worker(r, 0);
    const mark = r.log.mark();
    const reload = track(r.sup.reload());
    await r.clock.advance(0);
    const neu = worker(r, 1);
    expect(old.types()).toContain('netplex:migrate');
    expect(reload.settled).toBe(false);
    await r.clock.advance(20);
    expect(old.exit).toEqual({ code: 1, signal: null });
    expect(reload.value).toMatchObject({ ok: true, workerPid: neu.pid });
    expect(neu.got('netplex:server-state')).toEqual([{ type: 'netplex:server-state', data: null }]);
    expect(neu.types().filter((t) => t === 'netplex:migration-end')).toHaveLength(1);
    const messages = r.log.messages(mark);
    expect(messages).toContain(`worker ${old.pid} died (exit code 1); restarting in 100 ms`);
    expect(messages).toContain('the pending restart is cancelled: the reload put a worker in place');

    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(2);
    const status = await r.sup.status();
    expect(status).toMatchObject({
      worker_pid: neu.pid,
      restarts: 0,
      reloads: 1,
      // The fake new worker took none in; the migration lasted until the old worker died.
      last_migration: { migrated: 0, drained: 0, failed: 0, ms: 20, transport: 'relay' },
    });
    expect(roles(status)).toEqual([[neu.pid, 'serving']]);
    expect(r.log.phases(mark)).toEqual([
      ...RELOAD_BEGINS,
      'reloading (start-new-worker) → reloading (hand-over)',
      'reloading (hand-over) → reloading (close-removed-ports)',
      'reloading (close-removed-ports) → serving',
    ]);
  });

  it('close-removed-ports: a port removed from the configuration closes only once the draining old worker exits', async () => {
    const dir = tempDir();
    const conf = join(dir, 'server.conf');
    const sock = join(dir, 'extra.sock');
    writeFileSync(conf, `port 127.0.0.1:0\nport ${sock}|unix\n`);
    const r = await serving([{ leaveAfterMs: 30_000 }, {}], [`--conf_file=${conf}`]);
    const old = worker(r, 0);
    const [tcp] = r.sup.addresses;
    expect(r.sup.addresses).toEqual([
      { proto: 'tcp', address: '127.0.0.1', port: expect.any(Number), family: 4 },
      { proto: 'unix', path: sock },
    ]);
    expect((tcp as { port: number }).port).toBeGreaterThan(0);
    // Held by the supervisor (bound; nothing accepts on it in this test).
    expect(await connectOutcome(sock)).toBe('ECONNREFUSED');

    writeFileSync(conf, 'port 127.0.0.1:0\n');
    const mark = r.log.mark();
    const reload = track(r.sup.reload());
    await r.clock.advance(0);
    const neu = worker(r, 1);
    expect(reload.value).toMatchObject({ ok: true, workerPid: neu.pid });
    expect(neu.startMessage?.targets.map((t) => t.proto)).toEqual(['tcp']);
    expect(neu.got('netplex:handle')).toHaveLength(1);
    expect(old.types()).toContain('netplex:retire');
    const draining = await r.sup.status();
    expect(draining.ports).toEqual([tcp]);
    expect(roles(draining)).toEqual([
      [neu.pid, 'serving'],
      [old.pid, 'draining'],
    ]);
    await r.clock.advance(1000);
    expect(existsSync(sock)).toBe(true);
    expect(await connectOutcome(sock)).toBe('ECONNREFUSED');

    old.crash();
    await r.clock.advance(0);
    expect(existsSync(sock)).toBe(false);
    expect(await connectOutcome(sock)).toBe('ENOENT');
    const status = await r.sup.status();
    expect(status).toMatchObject({ worker_pid: neu.pid, restarts: 0, reloads: 1, ports: [tcp] });
    expect(roles(status)).toEqual([[neu.pid, 'serving']]);
    // A replaced worker's exit, even a crash, restarts nothing.
    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(2);
    expect(r.log.messages(mark).filter((m) => m.includes('died'))).toEqual([]);
    expect(r.log.phases(mark)).toEqual([
      ...RELOAD_BEGINS,
      'reloading (start-new-worker) → reloading (hand-over)',
      'reloading (hand-over) → reloading (close-removed-ports)',
      'reloading (close-removed-ports) → serving',
    ]);
  });
});

describe('a reload in drain mode', () => {
  it('is over once the old worker says it stopped accepting', async () => {
    const r = await serving(
      [{ leaveAfterMs: 10_000, retireAckMs: 300 }, {}],
      [...TCP_PORT, '--reload_mode=drain'],
    );
    const old = worker(r, 0);
    const reload = track(r.sup.reload());
    await r.clock.advance(0);
    expect(old.got('netplex:retire')).toHaveLength(1);
    await r.clock.advance(299);
    expect(reload.settled).toBe(false);
    await r.clock.advance(1);
    expect(reload.value).toMatchObject({ ok: true, workerPid: worker(r, 1).pid });
  });

  it('is over after RETIRE_ACK_MS when the old worker never says so; the new worker serves meanwhile', async () => {
    const r = await serving(
      [{ leaveAfterMs: 10_000, retireAckMs: 'never' }, {}],
      [...TCP_PORT, '--reload_mode=drain'],
    );
    const reload = track(r.sup.reload());
    await r.clock.advance(0);
    const neu = worker(r, 1);
    expect(r.sup.phase).toEqual({ name: 'reloading', step: 'hand-over' });
    expect(roles(await r.sup.status())[0]).toEqual([neu.pid, 'serving']);
    await r.clock.advance(RETIRE_ACK_MS - 1);
    expect(reload.settled).toBe(false);
    await r.clock.advance(1);
    expect(reload.value).toMatchObject({ ok: true, workerPid: neu.pid });
  });
});

describe("a reload during a crash restart's backoff", () => {
  it('goes ahead at once and, when it succeeds, cancels the pending restart', async () => {
    const r = await serving([{}, { start: { ready: 10 } }]);
    const first = worker(r, 0);
    const mark = r.log.mark();
    const t0 = r.clock.now();
    first.crash();
    await r.clock.advance(0);
    expect(r.log.messages(mark)).toContain(`worker ${first.pid} died (exit code 1); restarting in 100 ms`);
    expect(r.sup.phase).toEqual({ name: 'backoff', attempt: 1, dueAt: t0 + 100 });
    const backoff = await r.sup.status();
    expect(backoff).toMatchObject({ state: 'running', worker_pid: null, workers: [] });

    await r.clock.advance(20);
    const reload = track(r.sup.reload());
    await r.clock.advance(0);
    const neu = worker(r, 1);
    expect(neu.forkedAt).toBe(t0 + 20);
    // No worker is alive to migrate from.
    expect(neu.startMessage?.migrate).toBe(false);
    await r.clock.advance(10);
    expect(reload.value).toMatchObject({ ok: true, workerPid: neu.pid });
    expect(r.log.messages(mark)).toContain(
      'the pending restart is cancelled: the reload put a worker in place',
    );

    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(2);
    const status = await r.sup.status();
    expect(status).toMatchObject({ worker_pid: neu.pid, restarts: 0, reloads: 1 });
    expect(roles(status)).toEqual([[neu.pid, 'serving']]);
    expect(r.log.phases(mark)).toEqual([
      'serving → backoff (restart 1 in 100 ms)',
      'backoff (restart 1 in 80 ms) → reloading (reload-configuration)',
      ...RELOAD_BEGINS.slice(1),
      'reloading (start-new-worker) → reloading (hand-over)',
      'reloading (hand-over) → reloading (close-removed-ports)',
      'reloading (close-removed-ports) → serving',
    ]);
  });

  it('when it fails, the restart happens once the backoff ends', async () => {
    const r = await serving([{}, { start: { exit: 1, afterMs: 10 } }, {}]);
    const first = worker(r, 0);
    const mark = r.log.mark();
    const t0 = r.clock.now();
    first.crash();
    await r.clock.advance(20);
    const reload = track(r.sup.reload());
    await r.clock.advance(10);
    const neu = worker(r, 1);
    expect(reload.value).toEqual({
      ok: false,
      code: 'SUP_ERR_WORKER_FAILED',
      error: `worker ${neu.pid} exited with code 1 before it was ready`,
    });
    expect(r.sup.phase).toEqual({ name: 'backoff', attempt: 1, dueAt: t0 + 100 });

    await r.clock.advance(69);
    expect(r.env.workers).toHaveLength(2);
    await r.clock.advance(1);
    const restarted = worker(r, 2);
    expect(restarted.forkedAt).toBe(t0 + 100);
    expect(r.log.messages(mark)).toContain(`worker ${restarted.pid} restarted`);
    expect(r.log.messages(mark)).not.toContain(
      'the pending restart is cancelled: the reload put a worker in place',
    );
    const status = await r.sup.status();
    expect(status).toMatchObject({ worker_pid: restarted.pid, restarts: 1, reloads: 0 });
    expect(roles(status)).toEqual([[restarted.pid, 'serving']]);
    expect(r.log.phases(mark)).toEqual([
      'serving → backoff (restart 1 in 100 ms)',
      'backoff (restart 1 in 80 ms) → reloading (reload-configuration)',
      ...RELOAD_BEGINS.slice(1),
      'reloading (start-new-worker) → reloading (handle-failure)',
      'reloading (handle-failure) → backoff (restart 1 in 70 ms)',
      'backoff (restart 1 in 0 ms) → restarting (restart 1)',
      'restarting (restart 1) → serving',
    ]);
    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(3);
  });

  it('when it fails after the backoff has ended, the restart happens right after it', async () => {
    const r = await serving([{}, { start: 'hang' }, {}]);
    const first = worker(r, 0);
    const mark = r.log.mark();
    const t0 = r.clock.now();
    first.crash();
    await r.clock.advance(20);
    const reload = track(r.sup.reload());
    // The backoff ends while the reload's worker starts: the restart waits for the reload's outcome.
    await r.clock.advance(1000);
    expect(r.env.workers).toHaveLength(2);
    expect(r.sup.phase).toEqual({ name: 'reloading', step: 'start-new-worker' });

    await r.clock.advance(4000);
    expect(reload.value).toMatchObject({ ok: false, code: 'SUP_ERR_READY_TIMEOUT' });
    const restarted = worker(r, 2);
    expect(restarted.forkedAt).toBe(t0 + 20 + 5000);
    const status = await r.sup.status();
    expect(status).toMatchObject({ worker_pid: restarted.pid, restarts: 1, reloads: 0 });
    expect(roles(status)).toEqual([[restarted.pid, 'serving']]);
    expect(r.log.phases(mark)).toEqual([
      'serving → backoff (restart 1 in 100 ms)',
      'backoff (restart 1 in 80 ms) → reloading (reload-configuration)',
      ...RELOAD_BEGINS.slice(1),
      'reloading (start-new-worker) → reloading (handle-failure)',
      'reloading (handle-failure) → backoff (restart 1 in 0 ms)',
      'backoff (restart 1 in 0 ms) → restarting (restart 1)',
      'restarting (restart 1) → serving',
    ]);
    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(3);
  });
});

describe('a reload while a restarted worker is starting', () => {
  it('waits until that worker is ready, then migrates from it', async () => {
    const r = await serving([{}, { start: { ready: 50 } }, {}]);
    const first = worker(r, 0);
    const mark = r.log.mark();
    first.crash();
    await r.clock.advance(100);
    const restarted = worker(r, 1);
    expect(r.sup.phase).toEqual({ name: 'restarting', attempt: 1 });

    await r.clock.advance(20);
    const reload = track(r.sup.reload());
    await r.clock.advance(29);
    expect(reload.settled).toBe(false);
    expect(r.env.workers).toHaveLength(2);
    expect(r.sup.phase).toEqual({ name: 'restarting', attempt: 1 });
    const waiting = await r.sup.status();
    expect(waiting.worker_pid).toBe(restarted.pid);
    expect(roles(waiting)).toEqual([[restarted.pid, 'starting']]);

    await r.clock.advance(1);
    const neu = worker(r, 2);
    expect(neu.forkedAt).toBe(restarted.readyAt);
    expect(reload.value).toMatchObject({ ok: true, workerPid: neu.pid });
    expect(neu.startMessage?.migrate).toBe(true);
    expect(restarted.types()).toContain('netplex:migrate');
    expect(restarted.types()).toContain('netplex:retire');
    const messages = r.log.messages(mark);
    expect(messages.indexOf(`worker ${restarted.pid} restarted`)).toBeGreaterThan(-1);
    expect(messages.indexOf(`worker ${restarted.pid} restarted`)).toBeLessThan(messages.indexOf('reloading'));

    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(3);
    const status = await r.sup.status();
    expect(status).toMatchObject({ worker_pid: neu.pid, restarts: 1, reloads: 1 });
    expect(roles(status)).toEqual([[neu.pid, 'serving']]);
    expect(r.log.phases(mark)).toEqual([
      'serving → backoff (restart 1 in 100 ms)',
      'backoff (restart 1 in 0 ms) → restarting (restart 1)',
      'restarting (restart 1) → serving',
      ...RELOAD_BEGINS,
      'reloading (start-new-worker) → reloading (hand-over)',
      'reloading (hand-over) → reloading (close-removed-ports)',
      'reloading (close-removed-ports) → serving',
    ]);
  });

  it('goes ahead once that worker has failed and is gone, and cancels the next restart', async () => {
    const r = await serving([{}, { start: { exit: 1, afterMs: 50 } }, { start: { ready: 10 } }]);
    const first = worker(r, 0);
    const mark = r.log.mark();
    const t0 = r.clock.now();
    first.crash();
    await r.clock.advance(100);
    const restarted = worker(r, 1);
    await r.clock.advance(20);
    const reload = track(r.sup.reload());
    await r.clock.advance(29);
    expect(r.env.workers).toHaveLength(2);
    await r.clock.advance(1);
    const messages = r.log.messages(mark);
    expect(messages).toContain(`worker ${restarted.pid} died (exit code 1); restarting in 200 ms`);
    expect(messages).toContain(
      `worker ${restarted.pid} failed to start: worker ${restarted.pid} exited with code 1 before it was ready`,
    );
    const neu = worker(r, 2);
    expect(neu.forkedAt).toBe(t0 + 150);
    expect(neu.startMessage?.migrate).toBe(false);
    await r.clock.advance(10);
    expect(reload.value).toMatchObject({ ok: true, workerPid: neu.pid });
    expect(r.log.messages(mark)).toContain(
      'the pending restart is cancelled: the reload put a worker in place',
    );

    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(3);
    const status = await r.sup.status();
    expect(status).toMatchObject({ worker_pid: neu.pid, restarts: 0, reloads: 1 });
    expect(roles(status)).toEqual([[neu.pid, 'serving']]);
    expect(r.log.phases(mark)).toEqual([
      'serving → backoff (restart 1 in 100 ms)',
      'backoff (restart 1 in 0 ms) → restarting (restart 1)',
      'restarting (restart 1) → backoff (restart 2 in 200 ms)',
      'backoff (restart 2 in 200 ms) → reloading (reload-configuration)',
      ...RELOAD_BEGINS.slice(1),
      'reloading (start-new-worker) → reloading (hand-over)',
      'reloading (hand-over) → reloading (close-removed-ports)',
      'reloading (close-removed-ports) → serving',
    ]);
  });
});

describe('a stop during a reload', () => {
  it('waits for the reload; no worker survives; a reload asked meanwhile or after is refused', async () => {
    const r = await serving([{ leaveAfterMs: 10 }, { start: { ready: 100 }, leaveAfterMs: 10 }]);
    const old = worker(r, 0);
    const mark = r.log.mark();
    const reload = track(r.sup.reload());
    await r.clock.advance(10);
    const queued = track(r.sup.reload());
    await r.clock.advance(40);
    const neu = worker(r, 1);
    const stop = track(r.sup.stop());
    await r.clock.advance(0);
    expect(r.sup.state).toBe('stopping');
    expect(stop.settled).toBe(false);
    expect(reload.settled).toBe(false);
    expect(await r.sup.reload()).toEqual({
      ok: false,
      code: 'SUP_ERR_SHUTTING_DOWN',
      error: 'cannot reload: the supervisor is stopping',
    });

    await r.clock.advance(50);
    expect(reload.value).toMatchObject({ ok: true, workerPid: neu.pid });
    expect(queued.value).toEqual({
      ok: false,
      code: 'SUP_ERR_SHUTTING_DOWN',
      error: 'cannot reload: the supervisor is stopping',
    });
    expect(stop.settled).toBe(false);
    await r.clock.advance(100);
    expect(stop.settled).toBe(true);
    expect(r.env.workers).toHaveLength(2);
    expect(r.env.workers.map((w) => w.exit)).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
    expect(old.types()).toContain('netplex:retire');
    expect(neu.types()).toContain('netplex:stop');
    expect(r.sup.state).toBe('stopped');
    expect(r.sup.phase).toEqual({ name: 'stopped' });
    const status = await r.sup.status();
    expect(status).toMatchObject({ state: 'stopped', worker_pid: null, workers: [], reloads: 1 });
    expect(await r.sup.reload()).toEqual({
      ok: false,
      code: 'SUP_ERR_SHUTTING_DOWN',
      error: 'cannot reload: the supervisor is stopped',
    });
    expect(await r.sup.stopped).toBe(0);
    const messages = r.log.messages(mark);
    expect(messages).toContain('netplex supervisor stopped');
    expect(messages.filter((m) => m.startsWith('netplex bug'))).toEqual([]);
    expect(r.log.phases(mark)).toEqual([
      ...RELOAD_BEGINS,
      'reloading (start-new-worker) → stopping',
      'stopping → stopped',
    ]);
  });
});

describe('reloads asked during a reload', () => {
  it('are coalesced into one more reload after it, whose result each gets', async () => {
    const r = await serving([{}, { start: { ready: 100 } }, { start: { ready: 100 } }]);
    const mark = r.log.mark();
    const first = track(r.sup.reload());
    await r.clock.advance(10);
    const asked = [track(r.sup.reload()), track(r.sup.reload()), track(r.sup.reload())];
    await r.clock.advance(89);
    expect(first.settled).toBe(false);
    expect(r.env.workers).toHaveLength(2);

    await r.clock.advance(1);
    expect(first.value).toMatchObject({ ok: true, workerPid: worker(r, 1).pid });
    // The one more reload began at once.
    expect(r.env.workers).toHaveLength(3);
    expect(asked.map((a) => a.settled)).toEqual([false, false, false]);

    await r.clock.advance(100);
    expect(asked[0]!.value).toMatchObject({ ok: true, workerPid: worker(r, 2).pid });
    expect(asked[1]!.value).toBe(asked[0]!.value);
    expect(asked[2]!.value).toBe(asked[0]!.value);
    expect(worker(r, 1).types()).toContain('netplex:migrate');

    await r.clock.advance(10_000);
    expect(r.env.workers).toHaveLength(3);
    const status = await r.sup.status();
    expect(status).toMatchObject({ worker_pid: worker(r, 2).pid, reloads: 2 });
    expect(r.log.messages(mark).filter((m) => m === 'reloading')).toHaveLength(2);
    expect(r.log.phases(mark).filter((p) => p === RELOAD_BEGINS[0])).toHaveLength(2);
  });
});

describe('crash restarts', () => {
  it('back off 100, 200, 400, 500, 500 ms, and start over once a worker ran restart_backoff_reset', async () => {
    const r = await serving([], [...TCP_PORT, '--restart_backoff_reset=1']);
    const mark = r.log.mark();
    const gaps: number[] = [];
    for (let n = 1; n <= 5; n++) {
      const current = worker(r, n - 1);
      const crashedAt = r.clock.now();
      current.crash();
      await r.clock.advance(0);
      const delay = r.sup.phase.name === 'backoff' ? r.sup.phase.dueAt - crashedAt : Number.NaN;
      await r.clock.advance(delay - 1);
      expect(r.env.workers, `no restart ${n} before its backoff ends`).toHaveLength(n);
      await r.clock.advance(1);
      gaps.push(worker(r, n).forkedAt - crashedAt);
      expect(r.sup.phase).toEqual({ name: 'serving' });
    }
    const said = r.log
      .messages(mark)
      .map((m) => /died \(exit code 1\); restarting in (\d+) ms$/.exec(m)?.[1])
      .filter((d) => d !== undefined)
      .map(Number);
    expect(said).toEqual([100, 200, 400, 500, 500]);
    expect(gaps).toEqual([100, 200, 400, 500, 500]);
    expect(await r.sup.status()).toMatchObject({ restarts: 5, worker_pid: worker(r, 5).pid });

    // This one runs restart_backoff_reset (1 s) before it crashes: its restart is the first again.
    await r.clock.advance(1000);
    const stable = worker(r, 5);
    const crashedAt = r.clock.now();
    stable.crash();
    await r.clock.advance(100);
    expect(worker(r, 6).forkedAt - crashedAt).toBe(100);
    expect(r.log.messages(mark)).toContain(`worker ${stable.pid} died (exit code 1); restarting in 100 ms`);
    expect(await r.sup.status()).toMatchObject({ restarts: 6, worker_pid: worker(r, 6).pid });
    expect(r.log.phases(mark).filter((p) => p.startsWith('serving → backoff'))).toEqual([
      'serving → backoff (restart 1 in 100 ms)',
      'serving → backoff (restart 2 in 200 ms)',
      'serving → backoff (restart 3 in 400 ms)',
      'serving → backoff (restart 4 in 500 ms)',
      'serving → backoff (restart 5 in 500 ms)',
      'serving → backoff (restart 1 in 100 ms)',
    ]);
  });
});

describe('requests the phase refuses', () => {
  it('a reload while starting is refused with SUP_ERR_NOT_READY', async () => {
    const r = rig([{ start: { ready: 100 } }]);
    const started = track(r.sup.start());
    await r.clock.advance(0);
    expect(r.sup.state).toBe('starting');
    expect(await r.sup.reload()).toEqual({
      ok: false,
      code: 'SUP_ERR_NOT_READY',
      error: 'cannot reload: the supervisor is starting',
    });
    await r.clock.advance(100);
    expect(started.settled).toBe(true);
    expect(r.env.workers).toHaveLength(1);
    expect(await r.sup.status()).toMatchObject({ state: 'running', reloads: 0, last_reload_error: null });
  });

  it('a reload while stopping or stopped is refused with SUP_ERR_SHUTTING_DOWN', async () => {
    const r = await serving([{ leaveAfterMs: 50 }]);
    const stop = track(r.sup.stop());
    await r.clock.advance(0);
    expect(r.sup.state).toBe('stopping');
    expect(await r.sup.reload()).toEqual({
      ok: false,
      code: 'SUP_ERR_SHUTTING_DOWN',
      error: 'cannot reload: the supervisor is stopping',
    });
    await r.clock.advance(50);
    expect(stop.settled).toBe(true);
    expect(await r.sup.reload()).toEqual({
      ok: false,
      code: 'SUP_ERR_SHUTTING_DOWN',
      error: 'cannot reload: the supervisor is stopped',
    });
    expect(r.env.workers).toHaveLength(1);
    expect(worker(r, 0).exit).toEqual({ code: 0, signal: null });
  });

  it('has a verdict for every request in every phase', () => {
    // One phase of each name: a name added to Phase and left out here does not compile.
    const phases = {
      starting: { name: 'starting' },
      serving: { name: 'serving' },
      reloading: { name: 'reloading', step: 'rebind' },
      backoff: { name: 'backoff', attempt: 1, dueAt: 0 },
      restarting: { name: 'restarting', attempt: 1 },
      stopping: { name: 'stopping' },
      stopped: { name: 'stopped' },
    } satisfies { [P in PhaseName]: Extract<Phase, { name: P }> };
    const asked = { reload: true, stop: true, restart: true } satisfies Record<Request, true>;
    const names = Object.keys(phases).sort();
    expect(Object.keys(requests).sort()).toEqual(Object.keys(asked).sort());
    const codes = new Set<string>(supervisorCodes);
    for (const request of Object.keys(asked) as Request[]) {
      expect(Object.keys(requests[request]).sort(), `the phases of ${request}`).toEqual(names);
      for (const phase of Object.values(phases) as Phase[]) {
        const v = verdict(request, phase);
        const where = `${request} in ${phase.name}`;
        expect(v, where).toBe(requests[request][phase.name]);
        expect(['run', 'queue', 'join', 'drop', 'refuse'], where).toContain(v.do);
        if (v.do === 'refuse') expect(codes.has(v.code), where).toBe(true);
        if (v.do === 'queue') expect(v.until, where).not.toBe('');
        if (v.do === 'drop') expect(v.why, where).not.toBe('');
      }
    }
    // What the README promises of reload and stop, by the public state of each phase.
    for (const phase of Object.values(phases) as Phase[]) {
      const state = stateOf(phase);
      const reload = verdict('reload', phase);
      if (state === 'starting') expect(reload).toEqual({ do: 'refuse', code: 'SUP_ERR_NOT_READY' });
      if (state === 'stopping' || state === 'stopped')
        expect(reload).toEqual({ do: 'refuse', code: 'SUP_ERR_SHUTTING_DOWN' });
      if (state === 'running') expect(reload.do).not.toBe('refuse');
      expect(['run', 'join']).toContain(verdict('stop', phase).do);
    }
  });
});

describe('interleavings across reloads and restarts', () => {
  /** withUnixPort starts a supervisor on a tcp port and a unix socket given by a conf file. */
  async function withUnixPort(workers: WorkerScript[]) {
    const dir = tempDir();
    const conf = join(dir, 'server.conf');
    const sock = join(dir, 'extra.sock');
    writeFileSync(conf, `port 127.0.0.1:0\nport ${sock}|unix\n`);
    const r = await serving(workers, [`--conf_file=${conf}`]);
    return { ...r, conf, sock };
  }

  it('a port removed by one reload and added back by the next stays open when the first old worker exits', async () => {
    const { conf, sock, clock, env, sup } = await withUnixPort([{ leaveAfterMs: 30_000 }, {}, {}]);
    writeFileSync(conf, 'port 127.0.0.1:0\n');
    const first = track(sup.reload());
    await clock.advance(0);
    expect(first.value).toMatchObject({ ok: true });
    writeFileSync(conf, `port 127.0.0.1:0\nport ${sock}|unix\n`);
    const second = track(sup.reload());
    await clock.advance(0);
    expect(second.value).toMatchObject({ ok: true });
    expect(env.workers[2]!.startMessage?.handleKeys).toHaveLength(2);
    // The first reload's old worker ends its drain: the port the configuration serves again stays.
    await clock.advance(30_000);
    expect(env.workers[0]!.exited).toBe(true);
    expect((await sup.status()).ports).toEqual([
      expect.objectContaining({ proto: 'tcp' }),
      { proto: 'unix', path: sock },
    ]);
    expect(existsSync(sock), 'the configured unix socket is still there').toBe(true);
    // Held by the supervisor, listened on by no fake: the kernel refuses rather than the file missing.
    expect(await connectOutcome(sock)).toBe('ECONNREFUSED');
  });

  it('the phase names the step of the reload under way, not an earlier reload closing its ports', async () => {
    const { conf, clock, env, sup, log } = await withUnixPort([
      { leaveAfterMs: 30_000 },
      {},
      { start: { ready: 1000 } },
    ]);
    writeFileSync(conf, 'port 127.0.0.1:0\n');
    const first = track(sup.reload());
    await clock.advance(0);
    expect(first.value).toMatchObject({ ok: true });
    const second = track(sup.reload());
    await clock.advance(0);
    expect(sup.phase).toEqual({ name: 'reloading', step: 'start-new-worker' });
    env.workers[0]!.crash();
    await clock.advance(0);
    expect(sup.phase).toEqual({ name: 'reloading', step: 'start-new-worker' });
    await clock.advance(1000);
    expect(second.value).toMatchObject({ ok: true });
    // No phase line goes from a phase to itself.
    expect(log.phases().filter((change) => /^(.*) → \1$/.test(change))).toEqual([]);
  });

  it('a reload coalesced before the backoff ended waits for the restart that follows the failed reload', async () => {
    const { clock, env, sup } = await serving([{}, { start: 'hang' }, { start: { ready: 50 } }, {}]);
    env.workers[0]!.crash();
    await clock.advance(20);
    const a = track(sup.reload());
    await clock.advance(10);
    const b = track(sup.reload());
    await clock.advance(4990);
    expect(a.value).toMatchObject({ ok: false, code: 'SUP_ERR_READY_TIMEOUT' });
    // The restart's worker is starting: the coalesced reload waits for it, and forks nothing yet.
    expect(env.workers).toHaveLength(3);
    expect(sup.phase).toEqual({ name: 'restarting', attempt: 1 });
    await clock.advance(50);
    expect(b.value).toMatchObject({ ok: true, workerPid: env.workers[3]?.pid });
    expect(env.workers[3]!.forkedAt).toBe(env.workers[2]!.readyAt);
    expect(await sup.status()).toMatchObject({ restarts: 1, reloads: 1 });
  });

  it('a start that fails by ready_timeout stops its first worker', async () => {
    const r = rig([{ start: 'hang' }]);
    const started = track(r.sup.start());
    await r.clock.advance(5000);
    expect(started.settled).toBe(true);
    expect((started.error as { code?: string }).code).toBe('SUP_ERR_READY_TIMEOUT');
    expect(r.sup.state).toBe('stopped');
    const first = worker(r, 0);
    expect(first.received.map((m) => m.message.type)).toContain('netplex:stop');
    expect(first.exited).toBe(true);
  });
});
