/**
 * ipc/messages — every message between netplex's processes, as discriminated unions: the
 * supervisor's to a worker, a worker's to the supervisor, and a daemonized supervisor's to the
 * command that started it.
 *
 * Both packages import this file (through `@netplex/core/internal`). Types carry the `netplex:`
 * prefix, reserved for this traffic, so that a user's own `process.send()` messages are never taken
 * for ours (and ours are dropped by `isNetplexMessage` checks on their side). The lists of each
 * direction's types below are checked against the unions, so that a message added to one is added
 * to the other.
 */
import type { ConnectionEnd } from '../connection/client.js';
import type { ListenerAddress } from '../listeners.js';
import type { BindTarget } from '../port-spec.js';

/**
 * protocolVersion is the version of these messages. A worker says it in `netplex:hello`; a
 * supervisor that speaks another one (a reload after netplex was upgraded on disk while the
 * supervisor kept running the old code) fails that start with a clear message. Raise it whenever a
 * message changes in a way the other side would misread.
 */
export const protocolVersion = 2;

/** ListenAddress is a bound address as reported to the supervisor: a listener's address. */
export type ListenAddress = ListenerAddress;

/** SupervisorMessage is what the supervisor sends a worker. */
export type SupervisorMessage =
  /** Start serving these targets; the handles follow, one `netplex:handle` message each. */
  | {
      type: 'netplex:start';
      targets: BindTarget[];
      /** Keys of the targets whose handles will follow; the worker binds the others itself (udp). */
      handleKeys: string[];
      restarting: boolean;
      /** How long the worker has to get ready. */
      readyTimeoutMs: number;
      /**
       * Connections will migrate from the worker being replaced: hold new connections (they wait,
       * unnumbered) until `netplex:server-state` brings the old worker's counter.
       */
      migrate?: boolean;
      /**
       * The handles already listen (a reload, a restart): accept only once the loop starts, and
       * leave connections to the old worker or the kernel's backlog until then.
       */
      deferAccept?: boolean;
      /** The conf_file's text the supervisor validated: the worker parses it instead of reading the file. */
      confText?: string;
    }
  /** A listen handle for `key`, sent with the message. The worker answers `netplex:ack`. */
  | { type: 'netplex:handle'; seq: number; key: string }
  /**
   * Stop accepting, run restartCloseHook, serve live connections up to drainTimeoutMs, then exit.
   * With `seq`, the worker answers `netplex:ack` as soon as it has stopped accepting (a netplex from
   * before answers nothing), so that a reload is over only once new connections reach the new worker.
   */
  | { type: 'netplex:retire'; drainTimeoutMs: number; seq?: number }
  /** Stop now: close hooks run, connections are closed, then exit. */
  | { type: 'netplex:stop' }
  /** Stop accepting, drain up to drainTimeoutMs, then exit (SIGQUIT). */
  | { type: 'netplex:quit'; drainTimeoutMs: number }
  /** Ask for live figures; answered by `netplex:status` with `ack` = seq. */
  | { type: 'netplex:status'; seq: number }
  /** Reopen log files (logrotate, SIGUSR1). */
  | { type: 'netplex:reopen-logs' }
  /** To a spare worker (started ahead, its runtime loaded): load this entry and become the worker. */
  | { type: 'netplex:load'; entry: string; argv: string[] }
  /** To the old worker: stop accepting and move every movable connection out, then drain the rest. */
  | { type: 'netplex:migrate'; drainTimeoutMs: number; transport?: 'direct' }
  /**
   * To the new worker: take the end of a direct migration link waiting on the link control socket
   * (see linkFdEnv) and serve what comes through it.
   */
  | { type: 'netplex:link' }
  /** To the new worker: the old worker's server-level state (null when it has none to give). */
  | { type: 'netplex:server-state'; data: FrozenServer | null }
  /** To the new worker: one connection, its socket handle sent with the message. */
  | { type: 'netplex:conn'; seq: number; conn: FrozenConnection }
  /**
   * To the new worker: the old worker has let these connections go (a batch at a time), each with
   * the output it wrote to them while they were on their way (base64, absent when none). The new
   * worker holds its own output to a connection until then, so the old worker's comes first.
   */
  | { type: 'netplex:released'; items: ReleasedConnection[] }
  /** To the new worker: the migration is over; no connection is waiting to be released any longer. */
  | { type: 'netplex:migration-end' }
  /** A broadcast made in another worker with clients (see `netplex:peers`), for this one's clients. */
  | PeerBroadcastMessage
  /**
   * Whether another worker has clients too (one being replaced, draining or migrating): while it
   * does, each `mux.broadcast` also goes to the supervisor, which passes it on.
   */
  | { type: 'netplex:peers'; on: boolean }
  /** To the old worker: the connections (by seq) the new worker took, and those it did not. */
  | { type: 'netplex:conn-ack'; ok: number[]; failed: number[] }
  /** To the old worker: the new one failed; accept again on the handles just sent. */
  | { type: 'netplex:resume' };

/** WorkerStatus is what a worker reports about itself. */
export interface WorkerStatus {
  connections: number;
  requests: number;
  /** Connections taken in from the worker this one replaced (absent from an older netplex). */
  migratedIn?: number;
}

/** WorkerMessage is what a worker sends the supervisor. */
export type WorkerMessage =
  /**
   * The entry loaded and reached run(); waiting for `netplex:start`. `protocol`: see protocolVersion.
   * `direct`: it can take part in a direct migration (the native module and a link control socket).
   */
  | { type: 'netplex:hello'; protocol: number; direct?: boolean }
  | { type: 'netplex:ack'; ack: number }
  /** While starting: a server-wide hook began (its name) or ended (null). */
  | { type: 'netplex:hook'; hook: string | null }
  /** Every listener accepts. */
  | { type: 'netplex:ready'; addresses: ListenAddress[] }
  | ({ type: 'netplex:status'; ack: number } & WorkerStatus)
  /** The server called endloop(): the whole server stops, as in Perl. */
  | { type: 'netplex:endloop' }
  /** Start-up failed; the worker exits after sending this. */
  | { type: 'netplex:fatal'; message: string; code?: string }
  /** From the old worker during a migration; relayed to the new one. */
  | { type: 'netplex:server-state'; data: FrozenServer | null }
  | { type: 'netplex:conn'; seq: number; conn: FrozenConnection }
  | { type: 'netplex:released'; items: ReleasedConnection[] }
  /** From the new worker: the connections it took and those it could not, a batch at a time. */
  | { type: 'netplex:conn-ack'; ok: number[]; failed: number[] }
  /** From the old worker: the migration is over; what moved, what stays to drain. */
  /**
   * From the old worker: the migration is over; what moved, what stays to drain. `lost`: the direct
   * link closed from the other end while connections were on their way (the new worker is gone).
   */
  | {
      type: 'netplex:migrated';
      migrated: number;
      drained: number;
      failed: number;
      ms: number;
      lost?: boolean;
    }
  /** From a worker while another one has clients too: a broadcast made there, relayed to the others. */
  | PeerBroadcastMessage;

/**
 * PeerBroadcastMessage carries a `mux.broadcast` made in one worker to the clients of the others
 * (during a migration, and while a replaced worker drains): all but `skip`, connections the sending
 * worker has covered itself (on their way between the two workers of a migration, the broadcast
 * went with them). The sender's own client (which the broadcast may leave out) is not named: no
 * other worker serves it unless it is in `skip`, and connection numbers are not unique across the
 * workers of a drain.
 */
export interface PeerBroadcastMessage {
  type: 'netplex:broadcast';
  /** The bytes, base64. */
  data: string;
  skip?: number[];
}

/** ReleasedConnection is a migrated connection the old worker let go, with what it wrote to it meanwhile. */
export interface ReleasedConnection {
  id: number;
  output?: string;
  /** How the old worker ended the connection while it was on its way, if it did. */
  end?: ConnectionEnd;
  /**
   * A change the old worker's server made to the connection's timeout while it was on its way: the
   * ms left on it, or null when it was cleared; absent when there was none.
   */
  timeoutMs?: number | null;
}

/** FrozenServer is the server-level state that moves with a migration. */
export interface FrozenServer {
  /** The connection counter, so that numbers are never reused. */
  requests: number;
  /** Handles added with mux.add so far (their ids are the negatives); absent from an older netplex. */
  added?: number;
  /** What the server's serverFreeze() returned. */
  custom: unknown;
}

/** FrozenConnection is everything about one connection that moves to the new worker, but its socket. */
export interface FrozenConnection {
  id: number;
  proto: 'tcp' | 'unix';
  peeraddr: string;
  peerport: number;
  sockaddr: string;
  sockport: number;
  listener: string;
  peerhost: string | undefined;
  connectedAt: number;
  /** Input read by the old worker and not consumed, base64; absent when there is none. */
  input?: string;
  /** Output written while the connection was moving, base64: the new worker sends it first. */
  output?: string;
  /** Milliseconds left on the connection's timeout; absent when none is set. */
  timeoutMs?: number;
  /** Milliseconds the connection had been without input, by its idle clock; absent when it had none. */
  idleMs?: number;
  /** The idle limit `mux.setIdleTimeout` set for it, in ms (0: none); absent when it follows idle_timeout. */
  idleLimitMs?: number;
  /** The connection's output is in buffered mode (mux.bufferOutput); absent in the default mode. */
  buffered?: true;
  /** The server set client.allowHalfOpen: its output stays open after the client's end. */
  halfOpen?: true;
  /** A handle the server added itself (mux.add), not accepted: its id is negative. */
  added?: true;
  /** The id of the handle it is linked to (mux.link), which moves with it, right after or before. */
  link?: number;
  /** The registered name of its callback object's class (callbackClasses); `state` is its data. */
  handler?: string;
  /** What muxFreeze() returned (by default the client's state). */
  state: unknown;
}

/**
 * DaemonMessage is what a daemonized supervisor (background or setsid) sends the command that
 * started it, once: it serves, or it could not start (the command prints `message` and exits `code`).
 */
export type DaemonMessage =
  | { type: 'netplex:daemon-ready'; pid: number }
  | { type: 'netplex:daemon-failed'; message: string; code: number };

/** NetplexMessage is any message of the protocol. */
export type NetplexMessage = SupervisorMessage | WorkerMessage | DaemonMessage;

/** MessageOf picks the message of a union with type `T`. */
export type MessageOf<M extends { type: string }, T extends M['type']> = Extract<M, { type: T }>;

/**
 * typeList makes the list of a union's types, which must name each type exactly once: a type left
 * out or misspelled does not compile (the object's keys are the list).
 */
function typeList<M extends { type: string }>(keys: { [K in M['type']]: true }): ReadonlySet<M['type']> {
  return new Set(Object.keys(keys) as Array<M['type']>);
}

/** supervisorMessageTypes lists the types a supervisor sends a worker. */
export const supervisorMessageTypes = typeList<SupervisorMessage>({
  'netplex:start': true,
  'netplex:handle': true,
  'netplex:retire': true,
  'netplex:stop': true,
  'netplex:quit': true,
  'netplex:status': true,
  'netplex:reopen-logs': true,
  'netplex:load': true,
  'netplex:migrate': true,
  'netplex:link': true,
  'netplex:server-state': true,
  'netplex:conn': true,
  'netplex:released': true,
  'netplex:migration-end': true,
  'netplex:broadcast': true,
  'netplex:peers': true,
  'netplex:conn-ack': true,
  'netplex:resume': true,
});

/** workerMessageTypes lists the types a worker sends the supervisor. */
export const workerMessageTypes = typeList<WorkerMessage>({
  'netplex:hello': true,
  'netplex:ack': true,
  'netplex:hook': true,
  'netplex:ready': true,
  'netplex:status': true,
  'netplex:endloop': true,
  'netplex:fatal': true,
  'netplex:server-state': true,
  'netplex:conn': true,
  'netplex:released': true,
  'netplex:conn-ack': true,
  'netplex:migrated': true,
  'netplex:broadcast': true,
});

/** daemonMessageTypes lists the types a daemonized supervisor sends the command that started it. */
export const daemonMessageTypes = typeList<DaemonMessage>({
  'netplex:daemon-ready': true,
  'netplex:daemon-failed': true,
});

/** isNetplexMessage tells our traffic from a user's own IPC messages. */
export function isNetplexMessage(value: unknown): value is NetplexMessage {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    (value as { type: string }).type.startsWith('netplex:')
  );
}

/** isSupervisorMessage tells a message a supervisor sends a worker (by its type only). */
export function isSupervisorMessage(value: unknown): value is SupervisorMessage {
  return isNetplexMessage(value) && supervisorMessageTypes.has(value.type as SupervisorMessage['type']);
}

/** isWorkerMessage tells a message a worker sends the supervisor (by its type only). */
export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return isNetplexMessage(value) && workerMessageTypes.has(value.type as WorkerMessage['type']);
}

/** isDaemonMessage tells a message a daemonized supervisor sends the command that started it. */
export function isDaemonMessage(value: unknown): value is DaemonMessage {
  return isNetplexMessage(value) && daemonMessageTypes.has(value.type as DaemonMessage['type']);
}
