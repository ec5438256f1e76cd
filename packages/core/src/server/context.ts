/**
 * server/context — the state one server's parts share: where the server is in its life, its
 * listeners, its connections, its configuration and logger, and the hooks it runs. The parts
 * (connection/, migration/, start-flow.ts) each take this object; only MultiplexServer makes one,
 * and no part reaches another except through it or through what the server hands it.
 */
import type net from 'node:net';
import type { AccessControl } from '../access.js';
import type { Client } from '../connection/client.js';
import type { IdleTimers } from '../connection/idle.js';
import type { Session } from '../connection/session.js';
import type { Timeouts } from '../connection/timeouts.js';
import type { HookMethods } from '../hooks.js';
import type { Listener } from '../listeners.js';
import type { LogLevel, NetplexLogger } from '../logger.js';
import type { PeerBroadcast } from '../migration/types.js';
import type { Mux } from '../mux.js';
import type { ServerConfig } from '../options.js';
import type { ServerState } from './types.js';

/** HookedServer is the server object as its parts see it: its hooks and its public fields. */
export interface HookedServer<S> extends HookMethods<S> {
  /** Net::Server's `requests`: the connections accepted so far, the last connection's number. */
  requests: number;
}

/** Parked is a connection accepted before it can be served (see ServerContext.parked). */
export interface Parked {
  socket: net.Socket;
  listener: Listener;
}

/** ServerContext is the state of one server, shared by its parts. */
export class ServerContext<S> {
  state: ServerState = 'new';
  listeners: Listener[] = [];
  /** The accepted, connected clients (the mux's clients). */
  readonly clients = new Set<Client<S>>();
  /** Every stream connection with its session, accepted or not yet, and every added handle. */
  readonly sessions = new Map<Client<S>, Session<S>>();
  /** The handles the server added itself (mux.add): in `sessions`, not in `clients`. */
  readonly added = new Set<Client<S>>();
  /** Handles added so far: an added handle's id is the negative of its number. */
  addedCount = 0;
  /** Linked handles (mux.link), each to the other (connection/links.ts). */
  readonly links = new Map<Client<S>, Client<S>>();
  /**
   * While connections migrate in: a linked connection taken in before its partner, by the partner's
   * id, with what lets it go on once the partner is here (or the migration is over).
   */
  readonly linkWaits = new Map<number, { client: Client<S>; go: () => void }>();
  /** Connections that migrated in, by id, for output the old worker writes to them after sending them. */
  readonly adopted = new Map<number, Client<S>>();
  /** How many connections this worker has taken in from the worker it replaced. */
  migratedIn = 0;
  /** While another worker has clients too (a migration, a drain): where a broadcast goes on to it. */
  peerBroadcast: PeerBroadcast | undefined;
  /** Set by the start flow once the configuration is read. */
  config!: Readonly<ServerConfig>;
  logger!: NetplexLogger;
  access: AccessControl | undefined;
  /** The bounds, read once from the configuration (they are checked on every read and write). */
  maxInput = 0;
  maxOutput = 0;
  /** idle_timeout in ms (0: none), read once from the configuration. */
  idleMs = 0;
  /** Called when the last connection closes, while draining. */
  onIdle: (() => void) | undefined;
  /**
   * Connections accepted before they can be served: while the start-up hooks run (the loop has not
   * started), and while waiting for a migrating server's counter (see StartOptions.migrating).
   * They are served in order once both are over, and closed, counted in one log line, if the start
   * fails. Undefined once they are served.
   */
  parked: Parked[] | undefined;
  /** True until thawServer() brings the counter of the server this one replaces. */
  awaitingCounter = false;

  constructor(
    readonly server: HookedServer<S>,
    readonly mux: Mux<S>,
    readonly timeouts: Timeouts<S>,
    readonly idle: IdleTimers<S>,
  ) {}

  /** log writes a message at a Net::Server level (to stderr before the logger exists). */
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (this.logger) this.logger.log(level, message, fields);
    else process.stderr.write(`${message}\n`);
  }

  /** logHookError logs a hook's failure, naming the client it cost when there is one. */
  logHookError(err: unknown, client?: Client<S>): void {
    const error = err instanceof Error ? err : new Error(String(err));
    const fields: Record<string, unknown> = { err: error };
    if (client) Object.assign(fields, { conn: client.id, peer: client.peeraddr, peerport: client.peerport });
    this.log(0, client ? `${error.message} (client ${client})` : error.message, fields);
  }
}
