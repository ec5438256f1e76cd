/**
 * connection/session — what the server keeps for each stream connection beside its Client: the
 * socket, the per-connection queue of steps, and the flags of the client flow.
 *
 * This is the hot path, written to keep an idle connection small: the common steps are names, not
 * closures; every socket shares one set of event handlers (client-flow.ts), and finds its session
 * under `kSession`; a Client writes through a SocketTransport, whose methods are on its prototype.
 */
import type net from 'node:net';
import type { ClientHookName } from '../hooks.js';
import type { MuxHandler } from '../mux.js';
import type { Client, Transport } from './client.js';

/**
 * A queued step of one connection: the common events as names (no closure per event, which keeps
 * an idle connection small), anything else as a function.
 */
export type Step = 'input' | 'eof' | 'close' | (() => unknown);

/** StepQueue runs a connection's steps in order (the client flow): a step now, or after those before it. */
export interface StepQueue<S> {
  enqueue(session: Session<S>, step: Step): void;
}

/** Session is one stream connection as the server runs it. */
export interface Session<S> {
  client: Client<S>;
  socket: net.Socket | undefined;
  /** A step (a hook) is running; later steps wait in `queue`. */
  busy: boolean;
  queue: Step[];
  /** An 'input' step is in the queue already (one delivers all the input there is). */
  inputQueued: boolean;
  eofDone: boolean;
  /** A hook failed or a limit was passed: the connection is being dropped. */
  failed: boolean;
  /** mux.shutdown shut the read side: input from then on is dropped, and eof closes the connection. */
  readShut: boolean;
  /** The hook last called for this connection, named when it fails. */
  hook: ClientHookName;
  /** True once muxClose has run; `onClosed` (made only when someone waits) is told then. */
  done: boolean;
  onClosed: Array<() => void> | undefined;
  /** Told when the connection has no hook running or queued (a migration waits for that). */
  onSettled: (() => void) | undefined;
  /** Its idle clock (idle.ts), while it has one. */
  idle: IdleClock | undefined;
  /** Its own callback object (mux.setCallbackObject), which runs its hooks instead of the server. */
  handler: MuxHandler<S> | undefined;
}

/** IdleClock is one connection's idle limit and when input last came. */
export interface IdleClock {
  /** The limit in ms; 0 when this connection has none (set so with mux.setIdleTimeout). */
  limitMs: number;
  /** Set by mux.setIdleTimeout, not idle_timeout: it moves with a migrated connection. */
  own: boolean;
  /** When input last came, or the clock was (re)started (Date.now()). */
  last: number;
  timer: NodeJS.Timeout | undefined;
}

/** Where a socket keeps its session, so that one set of event handlers serves every socket. */
export const kSession = Symbol('netplex.session');

/** SessionSocket is a socket that carries its session. */
export type SessionSocket<S> = net.Socket & { [kSession]: Session<S> };

/** newSession makes the session of a client on `socket` (its queue empty, nothing run yet). */
export function newSession<S>(client: Client<S>, socket: net.Socket | undefined): Session<S> {
  const session: Session<S> = {
    client,
    socket,
    busy: false,
    queue: [],
    inputQueued: false,
    eofDone: false,
    failed: false,
    readShut: false,
    hook: 'postAcceptHook',
    done: false,
    onClosed: undefined,
    onSettled: undefined,
    idle: undefined,
    handler: undefined,
  };
  if (socket) (socket as SessionSocket<S>)[kSession] = session;
  return session;
}

/** SocketTransport is a Client's way to its stream socket (methods on a prototype: no closures per connection). */
export class SocketTransport implements Transport {
  constructor(readonly socket: net.Socket) {}
  write(data: Buffer, done?: (err?: Error | null) => void): void {
    this.socket.write(data, done);
  }
  end(): void {
    this.socket.end();
  }
  close(): void {
    // Flush, then close both directions even if the peer never ends its side.
    const socket = this.socket;
    if (socket.writableFinished) socket.destroy();
    else {
      socket.once('finish', () => socket.destroy());
      socket.end();
    }
  }
  destroy(): void {
    this.socket.destroy();
  }
  get writableLength(): number {
    return this.socket.writableLength;
  }
}

/** isSettled is true when a connection has no hook running or queued. */
export function isSettled<S>(session: Session<S>): boolean {
  return !session.busy && session.queue.length === 0;
}

/** settled waits until a connection has no hook running or queued: true then, false after `ms`. */
export function settled<S>(session: Session<S>, ms: number): Promise<boolean> {
  if (isSettled(session)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      session.onSettled = undefined;
      resolve(false);
    }, ms);
    session.onSettled = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
}

/** sessionClosed resolves once a connection's muxClose has run. */
export function sessionClosed<S>(session: Session<S>): Promise<void> {
  if (session.done) return Promise.resolve();
  return new Promise((resolve) => {
    session.onClosed ??= [];
    session.onClosed.push(resolve);
  });
}

/** markClosed records that a connection's close sequence is over and tells whoever waits. */
export function markClosed<S>(session: Session<S>): void {
  session.done = true;
  const waiters = session.onClosed;
  session.onClosed = undefined;
  if (waiters) for (const w of waiters) w();
}

const EMPTY = Buffer.alloc(0);

/**
 * waitFlushed resolves true once a socket has handed all its output to the kernel, false after `ms`.
 * An empty write's callback runs after every write before it has completed ('drain' would come only
 * if the buffer had gone past its high-water mark).
 */
export function waitFlushed(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.writableLength === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.write(EMPTY, (err) => {
      clearTimeout(timer);
      resolve(!err && socket.writableLength === 0);
    });
  });
}
