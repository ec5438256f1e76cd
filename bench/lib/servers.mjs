// @ts-check
/**
 * servers — starting the servers under test on the server CPU, tracked: node:net and node:http
 * baselines, the Perl baseline and the C echo server. Each start function resolves to a Server.
 */
/** @import { ChildProcess, SpawnOptions } from 'node:child_process' */
/** @import { Context } from './context.mjs' */
import { spawn } from 'node:child_process';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { jsonLine } from './json-line.mjs';
import { LOADGEN, ROOT, SERVERS } from './paths.mjs';
import { freePort } from './ports.mjs';
import { waitServing } from './probe.mjs';
import { stopChild } from './tracker.mjs';

/**
 * A server's process, its output read line by line: `onLine` are called with each line, `tail`
 * keeps the last lines to explain a failure.
 * @typedef {ChildProcess & { onLine: Set<(line: string) => void>, tail: string[] }} ServerChild
 */

/**
 * A started server: `port`, `pid` (the process that serves, whose memory counts) and `stop()`.
 * @typedef {object} Server
 * @property {number} port
 * @property {number} pid
 * @property {ServerChild} [child]  the process started, when there is one
 * @property {() => Promise<void>} stop
 */

/**
 * pidOf is the pid of a child that was spawned.
 * @param {ChildProcess} child
 */
export const pidOf = (child) => /** @type {number} */ (child.pid);

/**
 * spawnServer starts a server on the server CPU (or the load CPU, `on: 'load'`), tracked, its output kept.
 * @param {Pick<Context, 'tracker' | 'cpu'>} ctx
 * @param {string} cmd
 * @param {string[]} args
 * @param {SpawnOptions} [opts]
 * @param {'server' | 'load'} [on]
 * @returns {ServerChild}
 */
export function spawnServer(ctx, cmd, args, opts = {}, on = 'server') {
  const [c, a] = (on === 'load' ? ctx.cpu.onLoad : ctx.cpu.onServer)(cmd, args);
  const spawned = ctx.tracker.track(spawn(c, a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...opts }));
  /** @type {string[]} */
  const tail = [];
  /** @param {string} line */
  const keep = (line) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
  };
  /** @type {Set<(line: string) => void>} */
  const onLine = new Set();
  const child = Object.assign(spawned, { onLine, tail });
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      keep(line);
      for (const f of child.onLine) f(line);
    });
  }
  return child;
}

/**
 * waitLine resolves with the first line for which `pick` returns a value.
 * @template T
 * @param {ServerChild} child
 * @param {(line: string) => T | undefined} pick
 * @param {string} what
 * @param {number} [ms]
 * @returns {Promise<T>}
 */
export function waitLine(child, pick, what, ms = 30_000) {
  return new Promise((resolve, reject) => {
    /**
     * @param {Error | null} err
     * @param {T} [v]
     */
    const done = (err, v) => {
      clearTimeout(timer);
      child.onLine.delete(onLine);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(/** @type {T} */ (v));
    };
    /** @param {string} line */
    const onLine = (line) => {
      const v = pick(line);
      if (v !== undefined) done(null, v);
    };
    /** @param {number | null} code */
    const onExit = (code) =>
      done(new Error(`${what} exited (code ${code}) before it was ready:\n${child.tail.join('\n')}`));
    const timer = setTimeout(
      () => done(new Error(`${what} not ready after ${ms} ms:\n${child.tail.join('\n')}`)),
      ms,
    );
    child.onLine.add(onLine);
    child.once('exit', onExit);
  });
}

/**
 * portLine is the port of a {"port":N} line.
 * @param {string} line
 * @returns {number | undefined}
 */
export const portLine = (line) => jsonLine(line)?.port;

/**
 * startNode runs a node:net/node:http baseline that prints {"port":N}.
 * @param {Pick<Context, 'tracker' | 'cpu'>} ctx
 * @param {string} script
 * @param {string[]} [args]
 * @param {string[]} [nodeArgs]
 * @returns {Promise<Server>}
 */
export async function startNode(ctx, script, args = [], nodeArgs = []) {
  const child = spawnServer(ctx, process.execPath, [...nodeArgs, script, ...args]);
  const port = await waitLine(child, portLine, relative(ROOT, script));
  return { port, pid: pidOf(child), child, stop: () => stopChild(child) };
}

/**
 * startPerl runs bench/servers/echo.pl in `mode` and waits until it answers.
 * @param {Pick<Context, 'tracker' | 'cpu'>} ctx
 * @param {'echo' | 'lines' | 'header'} mode
 * @param {number} [port]
 * @returns {Promise<Server>}
 */
export async function startPerl(ctx, mode, port) {
  port ||= await freePort();
  // Started by its absolute path, not `perl echo.pl`: Net::Server's HUP re-execs $0.
  const child = spawnServer(ctx, join(SERVERS, 'echo.pl'), [String(port)], {
    env: { ...process.env, BENCH_MODE: mode },
  });
  await waitServing(port, child, 'perl echo.pl', mode === 'header' ? 16 : 0);
  return { port, pid: pidOf(child), child, stop: () => stopChild(child) };
}

/**
 * startC runs loadgen's minimal epoll echo server: the client's headroom.
 * @param {Pick<Context, 'tracker' | 'cpu'>} ctx
 * @returns {Promise<Server>}
 */
export async function startC(ctx) {
  const child = spawnServer(ctx, LOADGEN, ['serve']);
  const port = await waitLine(child, portLine, 'loadgen serve');
  return { port, pid: pidOf(child), child, stop: () => stopChild(child) };
}
