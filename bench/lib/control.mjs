// @ts-check
/**
 * control — the supervisor's status read straight from its control socket (`PIDFILE.sock`, one JSON
 * object a line: what `netplex status --json` prints), cheap enough to poll every few tens of milliseconds
 * while a migration runs, and the wait for a retired worker to hold no connection.
 */
/** @import { NetplexStatus } from './netplex.mjs' */
import net from 'node:net';
import { sleep } from './clock.mjs';

/** How often waitEmptied reads the status: the time it reports is up to this late. */
export const POLL_MS = 25;

/**
 * One process row of the status (docs/reference/status.md).
 * @typedef {{ pid: number, role: string, generation: number | null, connections: number | null }} WorkerRow
 */

/** @typedef {NetplexStatus & { workers?: WorkerRow[] }} ControlStatus */

/**
 * controlStatus asks the supervisor of `pidFile` for its status, or undefined when it does not
 * answer within `ms`.
 * @param {string} pidFile
 * @param {number} [ms]
 * @returns {Promise<ControlStatus | undefined>}
 */
export function controlStatus(pidFile, ms = 5000) {
  return new Promise((resolve) => {
    const socket = net.connect({ path: `${pidFile}.sock` });
    let buf = '';
    /** @param {ControlStatus | undefined} v */
    const done = (v) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), ms);
    socket.setEncoding('utf8');
    socket.on('error', () => done(undefined));
    socket.on('connect', () => socket.write(`${JSON.stringify({ cmd: 'status' })}\n`));
    socket.on('data', (chunk) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      try {
        done(JSON.parse(buf.slice(0, nl)));
      } catch {
        done(undefined);
      }
    });
    socket.on('end', () => done(undefined));
  });
}

/**
 * waitEmptied polls the status until worker `oldPid` is gone or holds no connection, for at most
 * `ms`: resolves with the moment it was first seen so (performance.now()) and that status, or
 * `timedOut` with the connections it still held.
 * @param {string} pidFile
 * @param {number} oldPid
 * @param {number} ms
 * @returns {Promise<{ at: number, status: ControlStatus } | { timedOut: true, held: number | null }>}
 */
export async function waitEmptied(pidFile, oldPid, ms) {
  const deadline = performance.now() + ms;
  /** @type {number | null} */
  let held = null;
  while (performance.now() < deadline) {
    const st = await controlStatus(pidFile);
    const row = st?.workers?.find((w) => w.pid === oldPid);
    if (st?.workers && (!row || row.connections === 0)) return { at: performance.now(), status: st };
    if (row && row.connections !== null) held = row.connections;
    await sleep(POLL_MS);
  }
  return { timedOut: true, held };
}
