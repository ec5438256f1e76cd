/**
 * fake-env — a SupervisorEnv without processes or real waiting, for unit tests of the supervisor:
 * a clock the test advances (FakeClock), worker processes that speak the worker's side of the IPC
 * protocol as a script says (FakeWorker), and the env that forks them (fakeEnv). A message between
 * the supervisor and a fake worker takes one event-loop turn (setImmediate), in order, as over a
 * real IPC pipe; what takes time in a worker (getting ready, a migration, a drain) takes it on the
 * fake clock, and happens only when the test advances it. Also here: LogSink, which keeps the
 * supervisor's JSON log lines, and track(), which lets a test look at a promise without awaiting it.
 */
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import type { BindTarget } from '@netplex/core';
import {
  type ListenAddress,
  type MessageOf,
  protocolVersion,
  type SupervisorMessage,
  type WorkerMessage,
} from '@netplex/core/internal';
import type { SupervisorEnv, TimerHandle } from '../../src/env.js';
import type { WorkerForkOptions } from '../../src/fork-worker.js';

interface FakeTimer {
  id: number;
  due: number;
  fn: () => void;
}

/** The most event-loop turns settle() waits for the fakes to fall quiet. */
const SETTLE_MAX_TURNS = 2000;
/** Turns in a row without activity after which settle() takes the fakes as quiet. */
const SETTLE_QUIET_TURNS = 3;

/**
 * FakeClock is the env's setTimeout, clearTimeout and now. Time moves only in advance(), which runs
 * the timers that come due in time order (those due at the same time in the order they were set)
 * and lets every message and promise settle before each next timer and at the end.
 */
export class FakeClock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, FakeTimer>();
  #activity = 0;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { id, due: this.#now + Math.max(0, ms), fn });
    this.touch();
    return { id } as unknown as TimerHandle;
  }

  clearTimeout(timer: TimerHandle | undefined): void {
    if (timer === undefined) return;
    if (this.#timers.delete((timer as unknown as { id: number }).id)) this.touch();
  }

  /** touch records that something happened (a message, an exit, a timer): settle() waits for quiet. */
  touch(): void {
    this.#activity++;
  }

  /** pending lists the timers not run yet, as ms from now, soonest first. */
  pending(): number[] {
    return [...this.#timers.values()].map((t) => t.due - this.#now).sort((a, b) => a - b);
  }

  /**
   * settle lets messages, promises and real I/O callbacks run until nothing has happened for a few
   * event-loop turns in a row; it throws if the fakes never fall quiet.
   */
  async settle(): Promise<void> {
    let quiet = 0;
    for (let turn = 0; turn < SETTLE_MAX_TURNS; turn++) {
      const before = this.#activity;
      await new Promise<void>((resolve) => setImmediate(resolve));
      quiet = this.#activity === before ? quiet + 1 : 0;
      if (quiet >= SETTLE_QUIET_TURNS) return;
    }
    throw new Error(`the fakes were still busy after ${SETTLE_MAX_TURNS} event-loop turns`);
  }

  /** advance moves the clock `ms` forward, running each timer that comes due at its own time. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await this.settle();
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.#timers.values())
        if (t.due <= target && (!next || t.due < next.due || (t.due === next.due && t.id < next.id)))
          next = t;
      if (!next) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.due);
      this.touch();
      next.fn();
      await this.settle();
    }
    this.#now = target;
    await this.settle();
  }
}

/** StartScript is what a fake worker does once it has its start message and every handle it names. */
export type StartScript =
  /** Reports ready (with the addresses of its targets) after this many ms. */
  | { ready: number }
  /** Reports a fatal start-up error after `afterMs` (0 by default), then exits with code 1. */
  | { fatal: { message: string; code?: string }; afterMs?: number }
  /** Exits with code `exit` after `afterMs` (0 by default), without a word. */
  | { exit: number; afterMs?: number }
  /** Never gets ready. */
  | 'hang';

/** MigrateScript is what the worker being replaced does on netplex:migrate. */
export interface MigrateScript {
  /** After this many ms (0 by default) it sends server-state and migrated, or dies. */
  afterMs?: number;
  /** Exits with code 1 instead of answering. */
  die?: boolean;
  /** The counts it reports in netplex:migrated (none moved by default). */
  counts?: { migrated: number; drained: number; failed: number };
}

/** WorkerScript says how a fake worker behaves; every field has a default of a healthy worker. */
export interface WorkerScript {
  /** The protocol its hello says: the real protocolVersion by default; null says none. */
  protocol?: number | null;
  /** A server-wide start-up hook it reports as begun once it starts (netplex:hook). */
  hook?: string;
  /** What it does once it has its start message and handles: `{ ready: 0 }` by default. */
  start?: StartScript;
  /** It exits with `code` `afterMs` after it reported ready. */
  exitAfterReady?: { afterMs: number; code: number };
  /** How long it takes to exit (code 0) once told to retire or quit (a drain): 0 by default. */
  leaveAfterMs?: number;
  /** How long it takes to exit once told to stop, even while draining: leaveAfterMs by default. */
  stopAfterMs?: number;
  migrate?: MigrateScript;
  /**
   * Told to retire, it says it stopped accepting this many ms later (0 by default); 'never': it does
   * not say so (a stuck worker, or one from an older netplex).
   */
  retireAckMs?: number | 'never';
}

/** Received is one message a fake worker got from the supervisor. */
export interface Received {
  message: SupervisorMessage;
  /** When it arrived, on the fake clock. */
  at: number;
  /** A socket handle came with it. */
  handle: boolean;
}

/**
 * FakeWorker stands for a worker's ChildProcess: what WorkerProcess and the IPC Channel use of one
 * (pid, connected, send with its callback, message and exit events, kill, exitCode, ref/unref), and
 * behind it the worker's side of the protocol as its script says. It records every message it got.
 */
export class FakeWorker extends EventEmitter {
  readonly pid: number;
  /** When it was forked, on the fake clock. */
  readonly forkedAt: number;
  /** What the supervisor forked it with. */
  readonly options: WorkerForkOptions;
  readonly script: WorkerScript;
  connected = true;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  killed = false;
  readonly stdin = null;
  readonly stdout = null;
  readonly stderr = null;
  readonly channel = { ref(): void {}, unref(): void {} };
  /** Every message it got, in order. */
  readonly received: Received[] = [];
  /** Every signal it was sent with kill(), in order. */
  readonly kills: NodeJS.Signals[] = [];
  /** How it exited, once it has. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** When it reported ready, on the fake clock. */
  readyAt: number | undefined;

  readonly #clock: FakeClock;
  #start: MessageOf<SupervisorMessage, 'netplex:start'> | undefined;
  readonly #handles = new Set<string>();
  /** The port each tcp handle it got is bound to, by key. */
  readonly #ports = new Map<string, number | undefined>();
  #began = false;
  /** Told to retire, stop or quit: it exits once its drain is over. */
  #leaving = false;
  /** Told to stop: it exits once stopAfterMs has passed. */
  #stopping = false;
  /** Its exit is on its way: it neither says nor does anything more. */
  #exiting = false;
  readonly #timers = new Set<TimerHandle>();

  constructor(clock: FakeClock, pid: number, options: WorkerForkOptions, script: WorkerScript) {
    super();
    this.#clock = clock;
    this.pid = pid;
    this.options = options;
    this.script = script;
    this.forkedAt = clock.now();
    const protocol = script.protocol === undefined ? protocolVersion : script.protocol;
    // A netplex from before the protocol had a version sends a hello without one.
    this.say({ type: 'netplex:hello', protocol: protocol as number });
  }

  /** exited is true once its exit event has been emitted. */
  get exited(): boolean {
    return this.exit !== undefined;
  }

  /** types lists the types of the messages it got, in order. */
  types(): string[] {
    return this.received.map((r) => r.message.type);
  }

  /** got lists the messages of one type it got, in order. */
  got<T extends SupervisorMessage['type']>(type: T): Array<MessageOf<SupervisorMessage, T>> {
    return this.received
      .map((r) => r.message)
      .filter((m): m is MessageOf<SupervisorMessage, T> => m.type === type);
  }

  /** startMessage is the netplex:start it got, if any. */
  get startMessage(): MessageOf<SupervisorMessage, 'netplex:start'> | undefined {
    return this.#start;
  }

  /**
   * send is ChildProcess.send: (message, handle?, options?, callback?). The callback runs once the
   * message is out (the next turn), then the worker handles it, unless it is exiting by then.
   */
  send(message: unknown, ...rest: unknown[]): boolean {
    const cb = rest.find((a): a is (err: Error | null) => void => typeof a === 'function');
    const handle = rest[0] !== undefined && typeof rest[0] !== 'function';
    if (!this.connected) {
      this.#later(() => cb?.(Object.assign(new Error('Channel closed'), { code: 'ERR_IPC_CHANNEL_CLOSED' })));
      return false;
    }
    const copy = structuredClone(message) as SupervisorMessage;
    const sent = handle ? rest[0] : undefined;
    this.#later(() => {
      cb?.(null);
      if (this.#exiting) return;
      this.received.push({ message: copy, at: this.#clock.now(), handle });
      this.#receive(copy, sent);
    });
    return true;
  }

  /** kill is ChildProcess.kill: the worker exits with that signal (code null). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.kills.push(signal);
    this.killed = true;
    this.exitWith(null, signal);
    return true;
  }

  /** crash makes the worker exit with `code` now (its exit event comes the next turn). */
  crash(code = 1): void {
    this.exitWith(code, null);
  }

  /** exitWith makes the worker exit so (once: a worker already exiting stays with its first exit). */
  exitWith(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#exiting) return;
    this.#exiting = true;
    for (const t of this.#timers) this.#clock.clearTimeout(t);
    this.#timers.clear();
    this.#later(() => {
      this.connected = false;
      this.exitCode = code;
      this.signalCode = signal;
      this.exit = { code, signal };
      this.emit('disconnect');
      this.emit('exit', code, signal);
      this.emit('close', code, signal);
    });
  }

  /** say sends the supervisor a message as the worker (the next turn), unless it is exiting. */
  say(message: WorkerMessage): void {
    if (this.#exiting) return;
    this.#later(() => {
      if (!this.exited) this.emit('message', message, undefined);
    });
  }

  disconnect(): void {
    this.connected = false;
    this.emit('disconnect');
  }

  ref(): void {}

  unref(): void {}

  #receive(m: SupervisorMessage, handle: unknown): void {
    switch (m.type) {
      case 'netplex:start':
        this.#start = m;
        this.#beginWhenReady();
        return;
      case 'netplex:handle':
        this.#handles.add(m.key);
        this.#ports.set(m.key, portOf(handle));
        this.say({ type: 'netplex:ack', ack: m.seq });
        this.#beginWhenReady();
        return;
      case 'netplex:status':
        this.say({ type: 'netplex:status', ack: m.seq, connections: 0, requests: 0 });
        return;
      case 'netplex:retire':
        if (m.seq !== undefined && this.script.retireAckMs !== 'never') {
          const ack = m.seq;
          this.#after(this.script.retireAckMs ?? 0, () => this.say({ type: 'netplex:ack', ack }));
        }
        this.#leave();
        return;
      case 'netplex:quit':
        this.#leave();
        return;
      case 'netplex:stop':
        this.#stop();
        return;
      case 'netplex:migrate':
        this.#migrateOut();
        return;
      default:
        return;
    }
  }

  #beginWhenReady(): void {
    const start = this.#start;
    if (!start || this.#began || !start.handleKeys.every((k) => this.#handles.has(k))) return;
    this.#began = true;
    const hook = this.script.hook;
    if (hook !== undefined) this.say({ type: 'netplex:hook', hook });
    const script = this.script.start ?? { ready: 0 };
    if (script === 'hang') return;
    if ('ready' in script) {
      this.#after(script.ready, () => {
        if (hook !== undefined) this.say({ type: 'netplex:hook', hook: null });
        this.readyAt = this.#clock.now();
        const addresses = start.targets.map((t) => addressOf(t, this.#ports.get(t.key)));
        this.say({ type: 'netplex:ready', addresses });
        const then = this.script.exitAfterReady;
        if (then) this.#after(then.afterMs, () => this.crash(then.code));
      });
    } else if ('fatal' in script) {
      this.#after(script.afterMs ?? 0, () => {
        const fatal: WorkerMessage = { type: 'netplex:fatal', message: script.fatal.message };
        if (script.fatal.code !== undefined) fatal.code = script.fatal.code;
        this.say(fatal);
        this.crash(1);
      });
    } else {
      this.#after(script.afterMs ?? 0, () => this.crash(script.exit));
    }
  }

  #leave(): void {
    if (this.#leaving) return;
    this.#leaving = true;
    this.#after(this.script.leaveAfterMs ?? 0, () => this.exitWith(0, null));
  }

  /** stop ends the worker after stopAfterMs, a drain under way or not (a stop closes every connection). */
  #stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#leaving = true;
    this.#after(this.script.stopAfterMs ?? this.script.leaveAfterMs ?? 0, () => this.exitWith(0, null));
  }

  #migrateOut(): void {
    const script = this.script.migrate ?? {};
    const ms = script.afterMs ?? 0;
    this.#after(ms, () => {
      if (script.die) {
        this.crash(1);
        return;
      }
      this.say({ type: 'netplex:server-state', data: { requests: 0, custom: null } });
      this.say({
        type: 'netplex:migrated',
        ...(script.counts ?? { migrated: 0, drained: 0, failed: 0 }),
        ms,
      });
    });
  }

  /** after runs `fn` after `ms` of the fake clock (0: the next turn), unless the worker exits first. */
  #after(ms: number, fn: () => void): void {
    if (ms <= 0) {
      this.#later(() => {
        if (!this.#exiting) fn();
      });
      return;
    }
    const timer = this.#clock.setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#exiting) fn();
    }, ms);
    this.#timers.add(timer);
  }

  /** later runs `fn` the next event-loop turn, in the order of the calls. */
  #later(fn: () => void): void {
    this.#clock.touch();
    setImmediate(() => {
      this.#clock.touch();
      fn();
    });
  }
}

/**
 * addressOf is the address a worker reports for a target it listens on: for a tcp target whose
 * handle it got, the port that handle is bound to (the real one when the target says 0).
 */
function addressOf(t: BindTarget, handlePort: number | undefined): ListenAddress {
  if ('path' in t) return { proto: 'unix', path: t.path };
  return { proto: t.proto, address: t.address, port: handlePort ?? t.port, family: t.family };
}

/** portOf is the port a tcp listen handle is bound to, if it is one. */
function portOf(handle: unknown): number | undefined {
  const out: { port?: unknown } = {};
  const h = handle as { getsockname?: (out: object) => number } | undefined;
  if (h?.getsockname?.(out) !== 0) return undefined;
  return typeof out.port === 'number' ? out.port : undefined;
}

/** FakeEnv is a SupervisorEnv on a FakeClock whose fork() gives FakeWorkers. */
export interface FakeEnv extends SupervisorEnv {
  readonly clock: FakeClock;
  /** Every worker forked, in order. */
  readonly workers: FakeWorker[];
}

/** The pid of the first fake worker of an env; each next one has the next number. */
export const FIRST_FAKE_PID = 4001;

/**
 * fakeEnv is a SupervisorEnv on `clock`: fork() gives FakeWorkers, the n-th (from 0) with
 * `script[n]` (or `script(n)`), a healthy worker once the list runs out. readFile gives the text of
 * `files` and throws ENOENT for any other path.
 */
export function fakeEnv(
  clock: FakeClock,
  script: readonly WorkerScript[] | ((index: number) => WorkerScript) = [],
  files: Readonly<Record<string, string>> = {},
): FakeEnv {
  const workers: FakeWorker[] = [];
  return {
    clock,
    workers,
    fork(opts) {
      const index = workers.length;
      const s = typeof script === 'function' ? script(index) : (script[index] ?? {});
      const worker = new FakeWorker(clock, FIRST_FAKE_PID + index, opts, s);
      workers.push(worker);
      return worker as unknown as ChildProcess;
    },
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
    clearTimeout: (timer) => clock.clearTimeout(timer),
    now: () => clock.now(),
    readFile(path) {
      const text = files[path];
      if (text !== undefined) return text;
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    },
  };
}

/** LogRecord is one JSON line pino wrote. */
export interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** LogSink is a log destination that keeps every line, parsed. */
export class LogSink extends Writable {
  readonly records: LogRecord[] = [];
  #partial = '';

  override _write(
    chunk: Buffer | string,
    _encoding: BufferEncoding,
    done: (err?: Error | null) => void,
  ): void {
    const lines = (this.#partial + chunk.toString()).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') this.records.push(JSON.parse(line) as LogRecord);
    done();
  }

  /** mark is the number of lines so far, to look only at those after it. */
  mark(): number {
    return this.records.length;
  }

  /** messages lists the messages of the lines from `from` on. */
  messages(from = 0): string[] {
    return this.records.slice(from).map((r) => r.msg);
  }

  /** find gives the first line from `from` on whose message is `msg`. */
  find(msg: string, from = 0): LogRecord | undefined {
    return this.records.slice(from).find((r) => r.msg === msg);
  }

  /** phases lists the phase changes from `from` on, as `A → B`. */
  phases(from = 0): string[] {
    return this.messages(from)
      .filter((m) => m.startsWith('phase: '))
      .map((m) => m.slice('phase: '.length));
  }
}

/** Tracked is a promise a test looks at without awaiting it. */
export interface Tracked<T> {
  readonly settled: boolean;
  readonly value: T | undefined;
  readonly error: unknown;
}

/** track follows `promise`: whether it has settled, and how. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const t = { settled: false, value: undefined as T | undefined, error: undefined as unknown };
  promise.then(
    (value) => {
      t.settled = true;
      t.value = value;
    },
    (err: unknown) => {
      t.settled = true;
      t.error = err;
    },
  );
  return t;
}
