// @ts-check
/** idle — idle connections held open by the C load client (`loadgen idle`). */
/** @import { Context } from './context.mjs' */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { jsonLine } from './json-line.mjs';
import { LOADGEN } from './paths.mjs';

/** How many bursts of idle connections a memory round opens: the first is on a fresh process. */
export const IDLE_BURSTS = 3;

/**
 * What `loadgen idle` reports once every connection is open (`held`) and once they are let go.
 * @typedef {object} IdleReport
 * @property {number} accepted
 * @property {number} failed
 * @property {number} accept_s
 * @property {boolean} [ok]  (when let go) every connection was still there
 */

/**
 * holdIdle opens `conns` idle connections with loadgen and holds them: `held` is loadgen's report once
 * they are all open, `release()` lets them go and resolves with its final report (ok: every one was
 * still there).
 * @param {Pick<Context, 'tracker' | 'cpu'>} ctx
 * @param {number} port
 * @param {number} conns
 * @returns {Promise<{ held: IdleReport, release: () => Promise<{ ok?: boolean }> }>}
 */
export async function holdIdle(ctx, port, conns) {
  const [c, a] = ctx.cpu.onLoad(LOADGEN, [
    'idle',
    '--port',
    String(port),
    '--conns',
    String(conns),
    '--hold',
    '120',
  ]);
  const child = ctx.tracker.track(spawn(c, a, { stdio: ['pipe', 'pipe', 'inherit'] }));
  const rl = createInterface({ input: child.stdout });
  /** @type {string[]} */
  const lines = [];
  /** @type {((line: string) => void)[]} */
  const waiting = [];
  rl.on('line', (l) => (waiting.length ? waiting.shift()?.(l) : lines.push(l)));
  /**
   * @param {number} ms
   * @returns {Promise<string | undefined>}
   */
  const next = (ms) =>
    lines.length
      ? Promise.resolve(lines.shift())
      : new Promise((resolve) => {
          const timer = setTimeout(() => resolve(undefined), ms);
          waiting.push((l) => {
            clearTimeout(timer);
            resolve(l);
          });
        });
  /** @type {IdleReport | undefined} */
  const held = jsonLine((await next(150_000)) ?? '');
  if (!held) throw new Error('loadgen idle printed nothing');
  return {
    held,
    release: async () => {
      child.stdin.end();
      const done = jsonLine((await next(60_000)) ?? '') ?? { ok: false };
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      return done;
    },
  };
}
