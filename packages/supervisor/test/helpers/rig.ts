/**
 * rig — a Supervisor over the fake environment (fake-env.ts) for unit tests: `rig` builds one whose
 * forks follow a list of worker scripts, `serving` also starts it, and `useRigs` stops every one
 * after each test. Its listen sockets are real (127.0.0.1 port 0, or a unix socket in a temporary
 * directory).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MultiplexServer } from '@netplex/core';
import { afterEach, expect } from 'vitest';
import type { SupervisorStatus } from '../../src/status.js';
import { Supervisor } from '../../src/supervisor.js';
import { FakeClock, type FakeEnv, fakeEnv, LogSink, track, type WorkerScript } from './fake-env.js';

/** Plain is a server class for its option schema and defaults; no instance of it serves here. */
export class Plain extends MultiplexServer {
  override muxInput(): void {}
}

/** Options every test runs with: restarts back off from 100 ms up to 500 ms, 5 s to get ready. */
export const BASE_ARGV = [
  '--restart_backoff=0.1',
  '--restart_backoff_max=0.5',
  '--ready_timeout=5',
  '--log_level=4',
];
export const TCP_PORT = ['--port=127.0.0.1:0'];

export interface Rig {
  clock: FakeClock;
  env: FakeEnv;
  sup: Supervisor;
  log: LogSink;
}

const rigs: Rig[] = [];
const dirs: string[] = [];

/**
 * useRigs registers, in the calling test file, the clean-up after each test: every supervisor is
 * stopped, which closes its real sockets (the clock runs past every bound), and every temporary
 * directory goes.
 */
export function useRigs(): void {
  afterEach(async () => {
    for (const r of rigs.splice(0)) {
      const stopped = track(r.sup.stop());
      await r.clock.advance(60_000);
      expect(stopped.settled, 'the supervisor stops').toBe(true);
    }
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
}

/** rig builds a supervisor on a fake env whose forks follow `workers`. */
export function rig(
  workers: WorkerScript[] | ((index: number) => WorkerScript),
  argv: string[] = TCP_PORT,
): Rig {
  const clock = new FakeClock();
  const env = fakeEnv(clock, workers);
  const log = new LogSink();
  const sup = new Supervisor({
    server: new Plain(),
    runArgs: {},
    argv: [...argv, ...BASE_ARGV],
    entry: 'fake.js',
    execArgv: [],
    env,
    spare: false,
    logDestination: log,
  });
  const r = { clock, env, sup, log };
  rigs.push(r);
  return r;
}

/** serving builds a supervisor and starts it, its first worker ready at once. */
export async function serving(workers: WorkerScript[], argv?: string[]): Promise<Rig> {
  const r = rig(workers, argv);
  const started = track(r.sup.start());
  await r.clock.advance(0);
  expect(started.error).toBeUndefined();
  expect(started.settled).toBe(true);
  expect(r.log.phases()).toEqual(['starting → serving']);
  return r;
}

/** roles lists status's workers as [pid, role]. */
export function roles(status: SupervisorStatus): Array<[number, string]> {
  return status.workers.map((w) => [w.pid, w.role]);
}

/** worker is the n-th worker forked (from 0). */
export function worker(r: Rig, n: number) {
  const w = r.env.workers[n];
  if (!w) throw new Error(`only ${r.env.workers.length} workers were forked, not ${n + 1}`);
  return w;
}

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'netplex-sm-'));
  dirs.push(dir);
  return dir;
}

/** connectOutcome connects to a unix socket: 'connected', or the error's code. */
export function connectOutcome(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no outcome connecting to ${path} within 2 s`));
    }, 2000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
  });
}
