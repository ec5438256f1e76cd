/**
 * The IPC channel (ipc/channel.ts) and the message type lists (ipc/messages.ts): Pending's numbered
 * answers; a Channel as the supervisor holds one, to a real forked child (test/fixtures/ipc-peer.mjs)
 * that answers as a worker would; everyTurn's batches; and each direction's type list and guard.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Channel, type Endpoint, everyTurn, type Handlers, Pending } from '../../src/ipc/channel.js';
import {
  daemonMessageTypes,
  isDaemonMessage,
  isNetplexMessage,
  isSupervisorMessage,
  isWorkerMessage,
  type MessageOf,
  type SupervisorMessage,
  supervisorMessageTypes,
  type WorkerMessage,
  workerMessageTypes,
} from '../../src/ipc/messages.js';

const peerScript = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'ipc-peer.mjs');

/** cleanups run after each test: the peers still alive are killed (by pid), listeners added are removed. */
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** turn resolves after the event loop has gone round once (setImmediate callbacks run in order). */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** state tells whether `p` has settled by the next turn of the event loop. */
async function state(p: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  return Promise.race([
    p.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    turn().then(() => 'pending' as const),
  ]);
}

/** within fails with `what` unless `p` settles within `ms`. */
async function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** stopped waits (bounded) until process `pid` is stopped by a signal: the kernel says so in /proc. */
async function stopped(pid: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  const state = () => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  };
  while (state() !== 'T') {
    if (Date.now() > deadline) throw new Error(`process ${pid} not stopped ${ms} ms after SIGSTOP`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** unhandledRejections records the rejections nobody handled while the test runs. */
function unhandledRejections(): unknown[] {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => void seen.push(reason);
  process.on('unhandledRejection', onUnhandled);
  cleanups.push(() => void process.off('unhandledRejection', onUnhandled));
  return seen;
}

describe('Pending', () => {
  it('numbers each message after the one before', () => {
    const pending = new Pending<string>();
    const seqs = [pending.open().seq, pending.open().seq, pending.open().seq];
    expect(seqs[1]).toBeGreaterThan(seqs[0]!);
    expect(seqs[2]).toBeGreaterThan(seqs[1]!);
    expect(pending.size).toBe(3);
  });

  it('settle delivers the answer to the waiter of that number, and to no other', async () => {
    const pending = new Pending<string>();
    const a = pending.open();
    const b = pending.open();
    expect(pending.settle(b.seq, 'for b')).toBe(true);
    expect(await b.answer).toBe('for b');
    expect(await state(a.answer)).toBe('pending');
    expect(pending.size).toBe(1);
    expect(pending.settle(a.seq, 'for a')).toBe(true);
    expect(await a.answer).toBe('for a');
    expect(pending.size).toBe(0);
  });

  it('settle and fail return false for a number nobody waits for, or no longer waits for', async () => {
    const pending = new Pending<string>();
    const a = pending.open();
    expect(pending.settle(a.seq + 1, 'nobody')).toBe(false);
    expect(pending.fail(a.seq + 1, new Error('nobody'))).toBe(false);
    expect(pending.settle(a.seq, 'first')).toBe(true);
    expect(pending.settle(a.seq, 'second')).toBe(false);
    expect(pending.fail(a.seq, new Error('late'))).toBe(false);
    expect(await a.answer).toBe('first');
    expect(pending.size).toBe(0);
  });

  it('fail rejects the waiter of that number with the error given', async () => {
    const pending = new Pending<string>();
    const a = pending.open();
    const b = pending.open();
    const err = new Error('no answer');
    expect(pending.fail(a.seq, err)).toBe(true);
    await expect(a.answer).rejects.toBe(err);
    expect(await state(b.answer)).toBe('pending');
    expect(pending.size).toBe(1);
  });

  it('settleAll answers every waiter still waiting, and only those', async () => {
    const pending = new Pending<string>();
    const [a, b, c] = [pending.open(), pending.open(), pending.open()];
    pending.settle(b.seq, 'own');
    expect(pending.size).toBe(2);
    pending.settleAll('gone');
    expect(await Promise.all([a.answer, b.answer, c.answer])).toEqual(['gone', 'own', 'gone']);
    expect(pending.size).toBe(0);
    expect(pending.settle(a.seq, 'late')).toBe(false);
  });

  it('failAll rejects every waiter still waiting, and only those', async () => {
    const pending = new Pending<string>();
    const [a, b, c] = [pending.open(), pending.open(), pending.open()];
    pending.settle(b.seq, 'own');
    const err = new Error('the other side is gone');
    pending.failAll(err);
    await expect(a.answer).rejects.toBe(err);
    await expect(c.answer).rejects.toBe(err);
    expect(await b.answer).toBe('own');
    expect(pending.size).toBe(0);
    expect(pending.fail(c.seq, err)).toBe(false);
  });
});

/** PeerGone is what the test channels' sends fail with once the peer is gone. */
class PeerGone extends Error {}

/** Peer is a forked ipc-peer.mjs, with every message it sent collected. */
class Peer {
  readonly child: ChildProcess;
  readonly received: unknown[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly disconnected: Promise<void>;
  #waiters = new Set<() => void>();

  constructor() {
    this.child = fork(peerScript, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    this.disconnected = new Promise((resolve) => this.child.once('disconnect', () => resolve()));
    this.child.on('message', (message: unknown) => {
      this.received.push(message);
      for (const w of [...this.#waiters]) w();
    });
    cleanups.push(async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        process.kill(this.child.pid!, 'SIGKILL');
        await within(this.exited, `the peer ${this.child.pid} to exit after SIGKILL`);
      }
    });
  }

  /** tell sends the peer a test message (not a netplex one). */
  tell(message: Record<string, unknown>): void {
    this.child.send(message);
  }

  /** waitFor resolves once the peer has sent `count` messages matching `pred` (every listener has run). */
  waitFor(pred: (message: unknown) => boolean, what: string, count = 1, ms = 5000): Promise<void> {
    const done = () => this.received.filter(pred).length >= count;
    if (done()) return Promise.resolve();
    return within(
      new Promise<void>((resolve) => {
        const check = () => {
          if (!done()) return;
          this.#waiters.delete(check);
          resolve();
        };
        this.#waiters.add(check);
      }),
      `${what}; the peer sent ${JSON.stringify(this.received).slice(0, 500)}`,
      ms,
    );
  }
}

/** everyType is a dispatch table that passes every worker message to `handler`. */
function everyType(handler: (message: WorkerMessage) => void): Handlers<WorkerMessage> {
  return {
    'netplex:hello': handler,
    'netplex:ack': handler,
    'netplex:status': handler,
    'netplex:hook': handler,
    'netplex:ready': handler,
    'netplex:endloop': handler,
    'netplex:fatal': handler,
    'netplex:server-state': handler,
    'netplex:conn': handler,
    'netplex:released': handler,
    'netplex:conn-ack': handler,
    'netplex:migrated': handler,
    'netplex:broadcast': handler,
  };
}

/**
 * supervisorSide opens a channel to `endpoint` as the supervisor does (WorkerProcess): answers go
 * to their requests, every other message the peer sends is recorded, and so is each type passed to
 * `unknown`.
 */
function supervisorSide(endpoint: Endpoint) {
  const channel = new Channel<SupervisorMessage, WorkerMessage>(endpoint, {
    gone: () => new PeerGone('the peer is gone'),
  });
  const handled: WorkerMessage[] = [];
  const unknown: string[] = [];
  const handlers: Handlers<WorkerMessage> = {
    ...everyType((m) => void handled.push(m)),
    'netplex:ack': (m) => void channel.answer(m.ack, m),
    'netplex:status': (m) => void channel.answer(m.ack, m),
  };
  const listen = () => channel.listen(isWorkerMessage, handlers, (type) => void unknown.push(type));
  listen();
  return { channel, handled, unknown, listen };
}

type StatusAnswer = MessageOf<WorkerMessage, 'netplex:status'>;

const endloop = { type: 'netplex:endloop' } satisfies WorkerMessage;
const isEndloop = (m: unknown) => (m as { type?: unknown }).type === 'netplex:endloop';

describe('Channel, to a real child process', () => {
  it('request resolves with the answer whose ack is its seq', async () => {
    const peer = new Peer();
    const { channel } = supervisorSide(peer.child);
    let seq = 0;
    const reply = await within(
      channel.request<StatusAnswer>((s) => {
        seq = s;
        return { type: 'netplex:status', seq: s };
      }),
      'the status answer',
    );
    expect(reply).toEqual({ type: 'netplex:status', ack: seq, connections: 0, requests: 0 });
  });

  it('answers that come out of order each go to the request they answer', async () => {
    const peer = new Peer();
    const { channel } = supervisorSide(peer.child);
    peer.tell({ peer: 'hold', count: 2 });
    const seqs: number[] = [];
    const ask = () =>
      channel.request<StatusAnswer>((seq) => {
        seqs.push(seq);
        return { type: 'netplex:status', seq };
      });
    const [first, second] = await within(Promise.all([ask(), ask()]), 'both status answers');
    expect(first.ack).toBe(seqs[0]);
    expect(second.ack).toBe(seqs[1]);
    // The peer answered the second request first (its `connections` counts the answers before it).
    expect(second.connections).toBe(0);
    expect(first.connections).toBe(1);
  });

  it('request sends the socket handle with its message: the peer serves on the listen socket it got', async () => {
    const peer = new Peer();
    const { channel } = supervisorSide(peer.child);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const ack = await within(
      channel.request<MessageOf<WorkerMessage, 'netplex:ack'>>(
        (seq) => ({ type: 'netplex:handle', seq, key: 'tcp' }),
        server,
      ),
      'the handle acknowledgement',
    );
    expect(ack.type).toBe('netplex:ack');
    // Only the peer's copy of the socket is left listening.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const greeting = await within(
      new Promise<string>((resolve, reject) => {
        const socket = net.connect({ port, host: '127.0.0.1' });
        let buf = '';
        socket.on('data', (d: Buffer) => {
          buf += d.toString();
        });
        socket.on('end', () => resolve(buf));
        socket.on('error', reject);
      }),
      `a greeting on port ${port}`,
    );
    expect(greeting).toBe(`peer ${peer.child.pid}\n`);
  });

  it("a user's own messages are ignored, and netplex messages of types it does not take go to unknown", async () => {
    const peer = new Peer();
    const { handled, unknown } = supervisorSide(peer.child);
    const user = { type: 'chat', text: 'not ours' };
    const start = {
      type: 'netplex:start',
      targets: [],
      handleKeys: [],
      restarting: false,
      readyTimeoutMs: 1,
    };
    for (const message of [user, 'a plain string', { type: 'netplex:from-the-future' }, start, endloop])
      peer.tell({ peer: 'send', message });
    await peer.waitFor(isEndloop, 'the endloop message');
    expect(peer.received).toHaveLength(5);
    expect(handled).toEqual([endloop]);
    // netplex:start is a type the supervisor sends, not one a worker sends.
    expect(unknown).toEqual(['netplex:from-the-future', 'netplex:start']);
  });

  it('unlisten stops dispatching; listen again dispatches to the new table only', async () => {
    const peer = new Peer();
    const { channel, handled, unknown, listen } = supervisorSide(peer.child);
    peer.tell({ peer: 'send', message: endloop });
    await peer.waitFor(isEndloop, 'the first endloop');
    expect(handled).toHaveLength(1);

    channel.unlisten();
    peer.tell({ peer: 'send', message: endloop });
    peer.tell({ peer: 'send', message: { type: 'netplex:from-the-future' } });
    await peer.waitFor(
      (m) => (m as { type?: unknown }).type === 'netplex:from-the-future',
      'the unknown type',
    );
    expect(handled).toHaveLength(1);
    expect(unknown).toEqual([]);

    // A second listen() replaces the first table: each message reaches one handler, once.
    const other: WorkerMessage[] = [];
    listen();
    channel.listen(
      isWorkerMessage,
      everyType((m) => void other.push(m)),
    );
    peer.tell({ peer: 'send', message: endloop });
    await peer.waitFor(isEndloop, 'the third endloop', 3);
    expect(handled).toHaveLength(1);
    expect(other).toEqual([endloop]);
  });

  it('once the peer has exited: send and request reject with the gone error, post neither throws nor rejects', async () => {
    const unhandled = unhandledRejections();
    const peer = new Peer();
    const { channel } = supervisorSide(peer.child);
    expect(channel.connected).toBe(true);
    await channel.send({ type: 'netplex:stop' });
    expect(await within(peer.exited, 'the peer to exit')).toEqual({ code: 0, signal: null });
    await within(peer.disconnected, 'the channel to the peer to close');
    expect(channel.connected).toBe(false);

    await expect(channel.send({ type: 'netplex:reopen-logs' })).rejects.toThrow(PeerGone);
    await expect(channel.request((seq) => ({ type: 'netplex:status', seq }))).rejects.toThrow(
      'the peer is gone',
    );
    expect(() => channel.post({ type: 'netplex:reopen-logs' })).not.toThrow();
    await turn();
    expect(unhandled).toEqual([]);
  });

  it('close() rejects a request the peer got and has not answered, with the gone error', async () => {
    const peer = new Peer();
    const { channel } = supervisorSide(peer.child);
    peer.tell({ peer: 'mute' });
    const request = channel.request((seq) => ({ type: 'netplex:status', seq }));
    await peer.waitFor((m) => (m as { peer?: unknown }).peer === 'got', 'the peer to get the request');
    expect(await state(request)).toBe('pending');
    channel.close();
    await expect(request).rejects.toThrow(PeerGone);
  });

  it('close() while a request is still being written rejects it, and leaves no rejection unhandled', async () => {
    const unhandled = unhandledRejections();
    const peer = new Peer();
    peer.tell({ peer: 'mute' });
    // The peer's own endpoint, which says when a write has completed.
    let written = false;
    const endpoint: Endpoint = {
      get connected() {
        return peer.child.connected;
      },
      send: (message, handle, options, callback) =>
        peer.child.send(message as object, handle, options ?? {}, (err) => {
          written = true;
          callback?.(err);
        }),
      on: (event, listener) => peer.child.on(event, listener),
      off: (event, listener) => peer.child.off(event, listener),
    };
    const { channel } = supervisorSide(endpoint);
    // 16 MB are far more than the socket takes at once: the write goes on over many turns.
    const request = channel.request((seq) => ({ type: 'netplex:handle', seq, key: 'x'.repeat(16 << 20) }));
    const outcome = request.then(
      () => 'resolved',
      (err: unknown) => err,
    );
    channel.close();
    await turn();
    expect(written, 'the message is still being written a turn later').toBe(false);
    expect(await within(outcome, 'the request to settle')).toBeInstanceOf(PeerGone);
    expect(unhandled).toEqual([]);
  });

  it('close() rejects a request whose message waits behind a socket handle the peer died without taking', async () => {
    const peer = new Peer();
    const { channel } = supervisorSide(peer.child);
    const pid = peer.child.pid!;
    // A stopped peer reads nothing: Node holds the messages after a handle until the peer takes it.
    process.kill(pid, 'SIGSTOP');
    await stopped(pid);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => void server.close());
    const withHandle = channel.request((seq) => ({ type: 'netplex:handle', seq, key: 'tcp' }), server);
    const queued = channel.request((seq) => ({ type: 'netplex:status', seq }));
    const outcomes = Promise.all(
      [withHandle, queued].map((p) =>
        p.then(
          () => 'resolved',
          (err: unknown) => err,
        ),
      ),
    );
    // As the supervisor does when a worker exits (WorkerProcess).
    peer.child.once('exit', () => channel.close());
    process.kill(pid, 'SIGKILL');
    const [a, b] = await within(outcomes, 'both requests to settle after the peer died');
    expect(a).toBeInstanceOf(PeerGone);
    expect(b).toBeInstanceOf(PeerGone);
  });
});

/** deferred is a promise with its resolve and reject at hand. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('everyTurn', () => {
  /** batches records each batch sent; each send resolves at once unless `sends` says otherwise. */
  function batching(sends: Array<Promise<void>> = []) {
    const batches: string[][] = [];
    const batch = everyTurn<string>((items) => {
      batches.push(items);
      return sends[batches.length - 1] ?? Promise.resolve();
    });
    return { batch, batches };
  }

  it('sends the items pushed in one turn as one batch, pushes after awaits within the turn included', async () => {
    const { batch, batches } = batching();
    batch.push('a');
    batch.push('b');
    await Promise.resolve();
    batch.push('c');
    expect(batches).toEqual([]);
    await turn();
    await turn();
    expect(batches).toEqual([['a', 'b', 'c']]);
  });

  it('sends the items of different turns as separate batches, in order', async () => {
    const { batch, batches } = batching();
    batch.push('a');
    await turn();
    batch.push('b');
    batch.push('c');
    await turn();
    batch.push('d');
    await turn();
    await turn();
    expect(batches).toEqual([['a'], ['b', 'c'], ['d']]);
  });

  it('flush sends what is gathered at once and resolves once it is out; the turn then sends nothing more', async () => {
    const sent = deferred();
    const { batch, batches } = batching([sent.promise]);
    batch.push('a');
    const flushed = batch.flush();
    expect(batches).toEqual([['a']]);
    expect(await state(flushed)).toBe('pending');
    sent.resolve();
    await within(flushed, 'flush');
    await turn();
    expect(batches).toEqual([['a']]);
    await within(batch.flush(), 'a flush with nothing gathered');
  });

  it('flush resolves only once every batch is out, an earlier one still being sent included', async () => {
    const [first, second] = [deferred(), deferred()];
    const { batch, batches } = batching([first.promise, second.promise]);
    batch.push('a');
    await turn();
    batch.push('b');
    const flushed = batch.flush();
    expect(batches).toEqual([['a'], ['b']]);
    second.resolve();
    expect(await state(flushed), 'flush with the first batch still being sent').toBe('pending');
    first.resolve();
    await within(flushed, 'flush');
  });

  it('a failing send does not reject flush, and the batches after it still go', async () => {
    const unhandled = unhandledRejections();
    const failed = deferred();
    const { batch, batches } = batching([failed.promise]);
    batch.push('a');
    const flushed = batch.flush();
    failed.reject(new Error('the other side is gone'));
    await expect(within(flushed, 'flush')).resolves.toBeUndefined();
    batch.push('b');
    await within(batch.flush(), 'the second flush');
    expect(batches).toEqual([['a'], ['b']]);
    expect(unhandled).toEqual([]);
  });
});

describe('message type lists and guards', () => {
  const lists = [
    { name: 'supervisor', types: supervisorMessageTypes, guard: isSupervisorMessage },
    { name: 'worker', types: workerMessageTypes, guard: isWorkerMessage },
    { name: 'daemon', types: daemonMessageTypes, guard: isDaemonMessage },
  ];

  for (const { name, types, guard } of lists) {
    it(`every ${name} message type is a netplex message its guard takes`, () => {
      expect(types.size).toBeGreaterThan(0);
      for (const type of types) {
        expect(type.startsWith('netplex:'), type).toBe(true);
        expect(guard({ type }), type).toBe(true);
        expect(isNetplexMessage({ type }), type).toBe(true);
      }
    });

    it(`the ${name} guard refuses every other direction's types that are not its own`, () => {
      const others = lists
        .filter((l) => l.types !== types)
        .flatMap((l) => [...l.types])
        .filter((t) => !(types as ReadonlySet<string>).has(t));
      expect(others.length).toBeGreaterThan(0);
      for (const type of others) expect(guard({ type }), type).toBe(false);
    });
  }

  it('a type sent one way only is refused the other way', () => {
    expect(isSupervisorMessage({ type: 'netplex:hello', protocol: 2 })).toBe(false);
    expect(isWorkerMessage({ type: 'netplex:start' })).toBe(false);
    expect(isSupervisorMessage({ type: 'netplex:daemon-ready', pid: 1 })).toBe(false);
    expect(isDaemonMessage({ type: 'netplex:ready', addresses: [] })).toBe(false);
    // Relayed through the supervisor, these go both ways.
    for (const type of ['netplex:status', 'netplex:conn', 'netplex:broadcast'])
      expect([isSupervisorMessage({ type }), isWorkerMessage({ type })], type).toEqual([true, true]);
  });

  it("every guard refuses what is not a netplex message: non-objects, a user's own messages, unknown types", () => {
    const notOurs: unknown[] = [
      null,
      undefined,
      42,
      'netplex:status',
      ['netplex:status'],
      {},
      { type: 7 },
      { type: 'status' },
      { type: 'NETPLEX:status' },
      { kind: 'netplex:status' },
    ];
    for (const value of notOurs)
      for (const guard of [isNetplexMessage, isSupervisorMessage, isWorkerMessage, isDaemonMessage])
        expect(guard(value), `${guard.name}(${JSON.stringify(value)})`).toBe(false);
    const future = { type: 'netplex:from-the-future' };
    expect(isNetplexMessage(future)).toBe(true);
    for (const guard of [isSupervisorMessage, isWorkerMessage, isDaemonMessage])
      expect(guard(future), guard.name).toBe(false);
  });
});
