// @ts-check
/**
 * migrate-floor — the two floors a migration is held against, measured in the same run: how fast a
 * warm raw node:net server takes N connections (first to Nth 'connection' event, timed inside the
 * server), and how fast a bare process builds N sockets from descriptors it receives over a
 * SOCK_SEQPACKET pair, up to MAX_FDS a record (first record to Nth socket, timed in the receiver).
 * Both timed processes run on the server CPU.
 */
/** @import { Context } from './context.mjs' */
/** @import { Unix } from './native.mjs' */
import { join } from 'node:path';
import { holdIdle } from './idle.mjs';
import { jsonLine } from './json-line.mjs';
import { SERVERS } from './paths.mjs';
import { portLine, spawnServer, waitLine } from './servers.mjs';
import { stopChild } from './tracker.mjs';

/**
 * acceptFloor starts servers/accept-clock.mjs, opens `conns` idle connections with loadgen twice (the
 * first burst warms the process and is discarded) and returns the second burst's time, in ms.
 * @param {Context} ctx
 * @param {number} conns
 * @returns {Promise<{ ms: number, warmup_ms: number, ok: boolean }>}
 */
export async function acceptFloor(ctx, conns) {
  const child = spawnServer(ctx, process.execPath, [join(SERVERS, 'accept-clock.mjs'), String(conns)]);
  try {
    const port = await waitLine(child, portLine, 'accept-clock.mjs');
    /** @type {number[]} */
    const ms = [];
    let ok = true;
    for (let burst = 1; burst <= 2; burst++) {
      const timed = waitLine(
        child,
        (l) => (jsonLine(l)?.burst === burst ? jsonLine(l).ms : undefined),
        'a burst',
        150_000,
      );
      const { held, release } = await holdIdle(ctx, port, conns);
      ms.push(await timed);
      const done = await release();
      ok &&= held.accepted === conns && done.ok === true;
    }
    return { ms: ms[1], warmup_ms: ms[0], ok };
  } finally {
    await stopChild(child);
  }
}

/**
 * descriptorFloor: servers/fd-sender.mjs (on the load CPU) takes `conns` connections from loadgen and
 * sends their descriptors over a seqpacket pair to servers/fd-receiver.mjs (on the server CPU), which
 * builds a reading net.Socket from each; returns the receiver's time, in ms.
 * @param {Context} ctx
 * @param {number} conns
 * @param {Unix} unix
 * @returns {Promise<{ ms: number, records: number, ok: boolean }>}
 */
export async function descriptorFloor(ctx, conns, unix) {
  const pair = unix.seqpacketPair();
  if (typeof pair === 'number') throw new Error(`socketpair(SOCK_SEQPACKET) failed: errno ${-pair}`);
  const [a, b] = pair;
  /** @param {number} fd  descriptor 3 of the child */
  const stdio = (fd) =>
    /** @type {import('node:child_process').StdioOptions} */ (['pipe', 'pipe', 'pipe', fd]);
  const sender = spawnServer(
    ctx,
    process.execPath,
    [join(SERVERS, 'fd-sender.mjs'), String(conns)],
    { stdio: stdio(a) },
    'load',
  );
  const receiver = spawnServer(ctx, process.execPath, [join(SERVERS, 'fd-receiver.mjs'), String(conns)], {
    stdio: stdio(b),
  });
  // Each child has its own copy now.
  unix.close(a);
  unix.close(b);
  try {
    // Both waits start at once: a line printed before its wait begins is not seen.
    const [port] = await Promise.all([
      waitLine(sender, portLine, 'fd-sender.mjs'),
      waitLine(receiver, (l) => jsonLine(l)?.ready, 'fd-receiver.mjs'),
    ]);
    const accepted = waitLine(sender, (l) => jsonLine(l)?.accepted, 'fd-sender.mjs accepting', 150_000);
    const { held, release } = await holdIdle(ctx, port, conns);
    await accepted;
    /** @type {Promise<{ sockets: number, records: number, ms: number }>} */
    const built = waitLine(
      receiver,
      (l) => (jsonLine(l)?.sockets ? jsonLine(l) : undefined),
      'fd-receiver.mjs building',
      60_000,
    );
    sender.stdin?.write('go\n');
    const r = await built;
    const done = await release();
    return {
      ms: r.ms,
      records: r.records,
      ok: held.accepted === conns && r.sockets === conns && done.ok === true,
    };
  } finally {
    await Promise.all([stopChild(sender), stopChild(receiver)]);
  }
}
