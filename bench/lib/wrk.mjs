// @ts-check
/** wrk — the HTTP load (wrk -t1 -c100) on the load CPU, and reading its report. */
/** @import { Context } from './context.mjs' */
import { spawn } from 'node:child_process';

/**
 * What one wrk run gave.
 * @typedef {object} WrkResult
 * @property {number | null} requests_per_s
 * @property {number | null} p50_us
 * @property {number | null} p99_us
 * @property {number} socket_errors  connect, read, write and timeout errors together
 * @property {number} non_2xx
 */

/**
 * parseWrk reads wrk's --latency report.
 * @param {string} text
 * @returns {WrkResult}
 */
export function parseWrk(text) {
  /** @param {RegExp} re */
  const num = (re) => {
    const m = text.match(re);
    return m ? Number(m[1]) : null;
  };
  /** @type {Record<string, number>} */
  const unit = { us: 1, ms: 1000, s: 1e6 };
  /** @param {number} p */
  const lat = (p) => {
    const m = text.match(new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm'));
    if (!m) return null;
    return Number(m[1]) * unit[m[2]];
  };
  const sock = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    requests_per_s: num(/Requests\/sec:\s+([\d.]+)/),
    p50_us: lat(50),
    p99_us: lat(99),
    socket_errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non_2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0,
  };
}

/**
 * runWrk runs wrk against 127.0.0.1:`port` for `seconds` (SIGKILL 30 s later) and parses its report.
 * @param {Pick<Context, 'tracker' | 'cpu'>} ctx
 * @param {number} port
 * @param {number} seconds
 * @returns {Promise<WrkResult>}
 */
export function runWrk(ctx, port, seconds) {
  const [c, a] = ctx.cpu.onLoad('wrk', [
    '-t1',
    '-c100',
    `-d${seconds}s`,
    '--latency',
    `http://127.0.0.1:${port}/`,
  ]);
  const child = ctx.tracker.track(spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
  return new Promise((resolve) =>
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(parseWrk(out));
    }),
  );
}
