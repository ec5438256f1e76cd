/**
 * What the migration tests share: a server whose hooks a test steers with commands and gates, a
 * MigrationChannel that records what it is handed and answers as each test says, a recorder of the
 * move states each connection goes through, and a client over a real socket that keeps every byte.
 */
import net from 'node:net';
import { onTestFinished } from 'vitest';
import {
  type Client,
  type ConnectionEnd,
  type InputBuffer,
  type Listener,
  type MaybePromise,
  MultiplexServer,
  type Mux,
} from '../../src/index.js';
import {
  type FrozenConnection,
  type FrozenServer,
  type MigrationChannel,
  type MigrationCounts,
  type MoveState,
  moveTransitions,
  workerHost,
} from '../../src/internal.js';
import { deferred, withTimeout } from './client.js';
import { LogSink } from './server.js';

/** Watch lets a test wait, bounded, for a condition on something that tells it of each change. */
export class Watch {
  readonly #waiters = new Set<() => void>();

  /** notify wakes whoever waits (called on every change). */
  notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** until resolves once `cond` holds, failing after `ms` with `what` (and `detail()`) in the message. */
  until(cond: () => boolean, what: string, ms = 5000, detail?: () => string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}${detail ? `; ${detail()}` : ''}`));
      }, ms);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }
}

/** pattern is `n` bytes that show any loss, duplication or reordering (a counter, byte by byte). */
export function pattern(n: number): Buffer {
  const buf = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) buf[i] = (i * 7 + (i >> 8)) & 0xff;
  return buf;
}

/** Peer is one real TCP connection to the server under test; it keeps every byte it receives. */
export class Peer extends Watch {
  readonly socket: net.Socket;
  /** The server's number for this connection (its Client's id). */
  id = 0;
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | undefined;
  #chunks: Buffer[] = [];
  #length = 0;

  private constructor(socket: net.Socket) {
    super();
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#length += chunk.length;
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error = err;
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  /**
   * connect opens a connection to 127.0.0.1:`port` and resolves once it is established; with
   * `allowHalfOpen` it goes on sending after the server ends its side.
   */
  static connect(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', ...options });
      socket.once('connect', () => resolve(new Peer(socket)));
      socket.once('error', reject);
    });
  }

  /** length is the number of bytes received so far. */
  get length(): number {
    return this.#length;
  }

  /** received is every byte received so far, in order. */
  get received(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  /** text is what was received, as UTF-8. */
  get text(): string {
    return this.received.toString('utf8');
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** waitFor waits until the received text contains `needle`. */
  waitFor(needle: string, ms = 5000): Promise<void> {
    return this.until(
      () => this.#length >= needle.length && this.text.includes(needle),
      `client #${this.id} to receive ${JSON.stringify(needle)}`,
      ms,
      () => `received so far: ${JSON.stringify(this.text.slice(-300))}`,
    );
  }

  /** waitBytes waits until at least `n` bytes have arrived. */
  waitBytes(n: number, ms = 5000): Promise<void> {
    return this.until(
      () => this.#length >= n,
      `client #${this.id} to receive ${n} bytes`,
      ms,
      () => `received ${this.#length}`,
    );
  }

  /** waitClosed waits until the connection is closed. */
  waitClosed(ms = 5000): Promise<void> {
    return this.until(() => this.closed, `client #${this.id}'s connection to close`, ms);
  }
}

/** The per-client state of MoveServer. */
export interface MoveClientState {
  n: number;
}

type MoveClient = Client<MoveClientState>;

/**
 * MoveServer is an echo server steered by commands, one a line (a partial line stays in the input):
 * `wait:NAME` waits for the test to open gate NAME, then answers `done:NAME`; `pin` sets movable to
 * false; `bcast:TEXT` broadcasts TEXT; `tell:ID:TEXT` writes TEXT to client ID; `kick:ID` closes
 * client ID; `big:N` writes N bytes of `pattern`; `timeout:S` arms a timeout of S seconds; any other
 * line is echoed. Hook calls and answers are noted in `events`, in order, where a Moves made with
 * it notes each move state change too.
 */
export class MoveServer extends MultiplexServer<MoveClientState> {
  readonly events: string[] = [];
  readonly watch = new Watch();
  readonly accepted: MoveClient[] = [];
  /** Connection numbers whose muxConnection sets movable to false. */
  readonly pinOnConnect = new Set<number>();
  /** What muxFreeze does. */
  onFreeze: (client: MoveClient) => MaybePromise<unknown> = (client) => ({
    n: client.state.n,
    by: 'muxFreeze',
  });
  /** What serverFreeze returns. */
  serverState: unknown = { rooms: ['lobby'] };
  readonly #gates = new Map<string, ReturnType<typeof deferred<void>>>();

  note(event: string): void {
    this.events.push(event);
    this.watch.notify();
  }

  /** waitEvent waits until `event` (or an event that matches it) has been noted. */
  waitEvent(event: string | RegExp, ms = 5000): Promise<void> {
    return this.watch.until(
      () => this.events.some((e) => (typeof event === 'string' ? e === event : event.test(e))),
      `the server to note ${String(event)}`,
      ms,
      () => `noted: ${JSON.stringify(this.events.slice(-12))}`,
    );
  }

  /** count is how many times `event` has been noted. */
  count(event: string): number {
    return this.events.filter((e) => e === event).length;
  }

  gate(name: string): ReturnType<typeof deferred<void>> {
    let g = this.#gates.get(name);
    if (!g) {
      g = deferred();
      this.#gates.set(name, g);
    }
    return g;
  }

  open(name: string): void {
    this.gate(name).resolve();
  }

  openAll(): void {
    for (const g of this.#gates.values()) g.resolve();
  }

  client(id: number): MoveClient {
    const c = this.accepted.find((a) => a.id === id);
    if (!c) throw new Error(`no client #${id}`);
    return c;
  }

  override serverFreeze(): unknown {
    return this.serverState;
  }

  override muxConnection(_mux: Mux<MoveClientState>, client: MoveClient): void {
    client.state = { n: client.id };
    if (this.pinOnConnect.has(client.id)) client.movable = false;
    this.accepted.push(client);
    this.note(`muxConnection #${client.id}`);
  }

  override muxInput(mux: Mux<MoveClientState>, client: MoveClient, input: InputBuffer): MaybePromise<void> {
    return this.#run(mux, client, [...input.lines()], 0);
  }

  /** run carries out lines[from..], synchronously until a `wait:` line makes it wait. */
  #run(mux: Mux<MoveClientState>, client: MoveClient, lines: string[], from: number): MaybePromise<void> {
    for (let i = from; i < lines.length; i++) {
      const line = lines[i]!;
      const [cmd, a = '', b = ''] = line.split(':');
      switch (cmd) {
        case 'wait':
          this.note(`wait:${a} #${client.id}`);
          return this.gate(a).promise.then(() => {
            client.write(`done:${a}\n`);
            this.note(`done:${a} #${client.id}`);
            return this.#run(mux, client, lines, i + 1);
          });
        case 'pin':
          client.movable = false;
          client.write('pinned\n');
          break;
        case 'bcast':
          mux.broadcast(`${a}\n`);
          break;
        case 'tell':
          this.client(Number(a)).write(`${b}\n`);
          client.write('told\n');
          break;
        case 'kick':
          mux.close(this.client(Number(a)));
          client.write('kicked\n');
          break;
        case 'big':
          client.write(pattern(Number(a)));
          this.note(`big #${client.id} left ${client.outputLength}`);
          break;
        case 'timeout':
          mux.setTimeout(client, Number(a));
          client.write('armed\n');
          break;
        default:
          client.write(`${line}\n`);
      }
    }
    return undefined;
  }

  override muxTimeout(_mux: Mux<MoveClientState>, target: MoveClient | Listener): void {
    if (target.kind !== 'client') return;
    target.write(`timeout #${target.id}\n`);
    this.note(`muxTimeout #${target.id}`);
  }

  override muxFreeze(_mux: Mux<MoveClientState>, client: MoveClient): MaybePromise<unknown> {
    this.note(`muxFreeze #${client.id}`);
    return this.onFreeze(client);
  }

  override muxClose(_mux: Mux<MoveClientState>, client: MoveClient): void {
    this.note(`muxClose #${client.id}`);
  }
}

/** Every (from, to) pair observed by any Moves of this test file, as `from>to`. */
export const observedPairs = new Set<string>();

/** Every log sink of this test file, to check for lines no test should produce. */
export const allLogs: LogSink[] = [];

/** Every change any Moves of this test file found wrong (see Moves.wrong). */
export const wrongChanges: string[] = [];

/** Moves records the move states of each connection of one migration, checking each change. */
export class Moves extends Watch {
  readonly #paths = new Map<number, MoveState[]>();
  /** When (performance.now()) each connection entered each state, by `id state`. */
  readonly #entered = new Map<string, number>();
  /** Changes that the table does not allow, or whose `from` is not where the connection was. */
  readonly wrong: string[] = [];

  constructor(readonly trace?: string[]) {
    super();
  }

  /** observe is the MoveObserver handed to migrateOut. */
  readonly observe = (id: number, from: MoveState, to: MoveState): void => {
    const path = this.#paths.get(id) ?? ['queued'];
    const wrong: string[] = [];
    if (path.at(-1) !== from) wrong.push(`#${id}: ${from}>${to} while in ${path.at(-1)}`);
    if (!moveTransitions[from].includes(to)) wrong.push(`#${id}: ${from}>${to} not in the table`);
    this.wrong.push(...wrong);
    wrongChanges.push(...wrong);
    path.push(to);
    this.#paths.set(id, path);
    this.#entered.set(`${id} ${to}`, performance.now());
    observedPairs.add(`${from}>${to}`);
    this.trace?.push(`#${id} ${from}>${to}`);
    this.notify();
  };

  /** path is every state connection `id` has been in, from queued. */
  path(id: number): MoveState[] {
    return this.#paths.get(id) ?? ['queued'];
  }

  /** since is how many ms passed between connection `id` entering state `a` and entering state `b`. */
  since(id: number, a: MoveState, b: MoveState): number {
    const from = this.#entered.get(`${id} ${a}`);
    const to = this.#entered.get(`${id} ${b}`);
    if (from === undefined || to === undefined) throw new Error(`#${id} was not in both ${a} and ${b}`);
    return to - from;
  }

  state(id: number): MoveState {
    return this.path(id).at(-1)!;
  }

  /** waitState waits until connection `id` has been in `state`. */
  waitState(id: number, state: MoveState, ms = 5000): Promise<void> {
    return this.until(
      () => this.path(id).includes(state),
      `connection #${id} to reach ${state}`,
      ms,
      () => `its path so far: ${this.path(id).join('>')}`,
    );
  }
}

/** Released is one released() call. */
export interface Released {
  id: number;
  output: Buffer;
  end: ConnectionEnd | undefined;
  /** The change made to its timeout while it was on its way (left out when none). */
  timeoutMs?: number | null;
}

/** FakeChannel is a MigrationChannel that records what it is handed and answers each conn() with `answer`. */
export class FakeChannel extends Watch implements MigrationChannel {
  /** Every call, in order: `state`, `conn #ID`, `released #ID`. */
  readonly calls: string[] = [];
  readonly states: FrozenServer[] = [];
  readonly conns: FrozenConnection[] = [];
  readonly handles: unknown[] = [];
  readonly releases: Released[] = [];
  /** How the new worker answers a connection (true: it has it). */
  answer: (frozen: FrozenConnection) => Promise<boolean> = async () => true;

  async state(data: FrozenServer): Promise<void> {
    this.calls.push('state');
    this.states.push(data);
    this.notify();
  }

  conn(frozen: FrozenConnection, handle: unknown): Promise<boolean> {
    this.calls.push(`conn #${frozen.id}`);
    this.conns.push(frozen);
    this.handles.push(handle);
    this.notify();
    return this.answer(frozen);
  }

  released(id: number, output: Buffer, end: ConnectionEnd | undefined, timeoutMs?: number | null): void {
    this.calls.push(`released #${id}`);
    const release: Released = { id, output: Buffer.from(output), end };
    if (timeoutMs !== undefined) release.timeoutMs = timeoutMs;
    this.releases.push(release);
    this.notify();
  }

  /** frozen is what conn() was handed for connection `id`. */
  frozen(id: number): FrozenConnection {
    const f = this.conns.find((c) => c.id === id);
    if (!f) throw new Error(`conn() was not called for #${id}; calls: ${this.calls.join(', ')}`);
    return f;
  }

  /** waitConn waits until conn() has been called for connection `id`. */
  waitConn(id: number, ms = 5000): Promise<void> {
    return this.until(
      () => this.calls.includes(`conn #${id}`),
      `conn() for #${id}`,
      ms,
      () => `calls: ${this.calls.join(', ')}`,
    );
  }
}

/** Harness is one test's server, its clients, and one migration's channel and recorder. */
export interface Harness {
  srv: MoveServer;
  port: number;
  logs: LogSink;
  channel: FakeChannel;
  moves: Moves;
  /** connect opens `n` connections one after the other, each accepted (numbered 1, 2, ...) before the next. */
  connect(n?: number): Promise<Peer[]>;
  /** migrate starts migrateOut through `channel`, observed by `moves`. */
  migrate(): Promise<MigrationCounts>;
  /** finish waits (bounded) for a migration started by `migrate`. */
  finish(migration: Promise<MigrationCounts>, ms?: number): Promise<MigrationCounts>;
}

/**
 * startMoveServer starts a MoveServer on 127.0.0.1 port 0, logging at debug level into a sink; when
 * the test ends, every gate is opened, every client destroyed and the server closed.
 */
export async function startMoveServer(
  options: Record<string, unknown> = {},
  setup?: (srv: MoveServer) => void,
): Promise<Harness> {
  const srv = new MoveServer({ port: ['127.0.0.1:0'], log_level: 4, ...options });
  setup?.(srv);
  const logs = new LogSink();
  allLogs.push(logs);
  const peers: Peer[] = [];
  onTestFinished(async () => {
    srv.openAll();
    for (const p of peers) p.socket.destroy();
    await withTimeout(srv.close(), 'the server to close', 10_000);
  });
  await srv.start({ argv: [], logDestination: logs });
  const first = srv.addresses()[0];
  const port = first && 'port' in first ? first.port : 0;
  const channel = new FakeChannel();
  const moves = new Moves(srv.events);
  return {
    srv,
    port,
    logs,
    channel,
    moves,
    async connect(n = 1) {
      const made: Peer[] = [];
      for (let i = 0; i < n; i++) {
        const before = srv.accepted.length;
        const peer = await Peer.connect(port);
        peers.push(peer);
        await srv.watch.until(() => srv.accepted.length > before, 'the server to accept a connection');
        peer.id = srv.accepted.at(-1)!.id;
        made.push(peer);
      }
      return made;
    },
    migrate: () => workerHost(srv).migrateOut(channel, moves.observe),
    finish: (migration, ms = 5000) => withTimeout(migration, 'migrateOut to resolve', ms),
  };
}
