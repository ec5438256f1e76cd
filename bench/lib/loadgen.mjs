// @ts-check
/** loadgen — the C load client (bench/loadgen.c): building it, and running it on the load CPU. */
/** @import { Context } from './context.mjs' */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCaptured } from './capture.mjs';
import { jsonLine } from './json-line.mjs';
import { BENCH, BUILD, LOADGEN } from './paths.mjs';

/**
 * What `loadgen echo` reports (its last line).
 * @typedef {object} EchoReport
 * @property {number} msgs_per_s
 * @property {number} p50_us
 * @property {number} p99_us
 * @property {number} max_us
 * @property {number} client_cpu_pct
 * @property {boolean} ok  every byte came back as sent
 * @property {number} bytes_verified
 * @property {number} mismatches
 * @property {number} errors
 * @property {number} connect_errors
 * @property {number} unanswered_bytes
 */

/**
 * What `loadgen reload` reports: `new` lists each new connection as [start ns, served ns, pid of its
 * greeting, outcome (0 served)].
 * @typedef {object} ReloadReport
 * @property {[number, number, number, number][]} new
 * @property {number} new_started
 * @property {number} new_ok
 * @property {number} new_refused
 * @property {number} new_reset
 * @property {number} new_failed
 * @property {number} persistent
 * @property {number} persistent_alive
 * @property {number[]} persistent_alive_pids
 * @property {number} bytes_lost
 * @property {number} bytes_verified
 * @property {number} mismatches
 * @property {number} max_persistent_rtt_ms
 * @property {number} max_new_conn_ms
 */

/** buildLoadgen compiles bench/loadgen.c into bench/build/loadgen unless the binary is newer. */
export function buildLoadgen() {
  mkdirSync(BUILD, { recursive: true });
  const src = join(BENCH, 'loadgen.c');
  if (existsSync(LOADGEN) && statSync(LOADGEN).mtimeMs > statSync(src).mtimeMs) return;
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', LOADGEN, src], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('could not compile bench/loadgen.c with cc');
}

/**
 * runLoadgen runs the C client on the load CPU and resolves with its last JSON line.
 * @param {Pick<Context, 'tracker' | 'cpu'>} ctx
 * @param {string[]} args
 * @param {number} ms
 * @returns {Promise<any>}
 */
export async function runLoadgen(ctx, args, ms) {
  const [c, a] = ctx.cpu.onLoad(LOADGEN, args);
  const { code, signal, out, err } = await runCaptured(ctx.tracker, c, a, {}, ms);
  const j = jsonLine(out.trim().split('\n').pop() ?? '');
  if (j) return j;
  throw new Error(`loadgen ${args.join(' ')} failed (${signal ?? code}): ${err.trim()}`);
}

/**
 * startLoadgen runs the C client on the load CPU like runLoadgen, but hands back a way to end its
 * measured window early: `stop()` sends SIGUSR1 (loadgen then lets the in-flight messages come
 * back, verifies them and reports), `done` resolves with its last JSON line.
 * @param {Pick<Context, 'tracker' | 'cpu'>} ctx
 * @param {string[]} args
 * @param {number} ms  SIGKILL after this long
 * @returns {{ stop: () => void, done: Promise<any> }}
 */
export function startLoadgen(ctx, args, ms) {
  const [c, a] = ctx.cpu.onLoad(LOADGEN, args);
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let child;
  const done = runCaptured(ctx.tracker, c, a, {}, ms, (ch) => {
    child = ch;
  }).then(({ code, signal, out, err }) => {
    const j = jsonLine(out.trim().split('\n').pop() ?? '');
    if (j) return j;
    throw new Error(`loadgen ${args.join(' ')} failed (${signal ?? code}): ${err.trim()}`);
  });
  return {
    // taskset execs loadgen in place, so the child's pid is loadgen's.
    stop: () => child?.kill('SIGUSR1'),
    done,
  };
}
