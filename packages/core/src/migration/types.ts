/**
 * migration/types — what a migration exchanges with the rest of netplex: the channel a worker being
 * replaced hands its connections through, the counts it reports, and the relay of broadcasts to the
 * other worker with clients.
 */
import type net from 'node:net';
import type { Client, ConnectionEnd } from '../connection/client.js';
import type { FrozenConnection, FrozenServer } from '../ipc/messages.js';

/** MigrationCounts says how a migration went, for logs and status. */
export interface MigrationCounts {
  migrated: number;
  drained: number;
  failed: number;
  ms: number;
  /** How the connections travelled (see MigrationTransport); set by the supervisor. */
  transport?: MigrationTransport;
}

/**
 * MigrationTransport is how a migration's connections travel: `direct`, a unix socket pair from
 * the old worker to the new (many descriptors a message, the native module); `relay`, Node's IPC
 * through the supervisor (one handle a message).
 */
export type MigrationTransport = 'direct' | 'relay';

/** MoveWindowBounds: how many connections a migration may have on their way at once, at least and at most. */
export interface MoveWindowBounds {
  min: number;
  max: number;
}

/** MigrationChannel is how migrateOut() hands the server state and each connection to the new worker. */
export interface MigrationChannel {
  /** The window this channel wants (see MoveWindow); the relay's default when unset. */
  readonly window?: MoveWindowBounds;
  /** carries says whether this channel can carry `socket` at all; one it cannot stays and drains. */
  carries?(socket: net.Socket): boolean;
  state(data: FrozenServer): Promise<void>;
  /**
   * Sends one connection with its socket; resolves true once the new worker has it. `client` is the
   * connection itself, whose output written while it is on its way a channel may send on ahead (and
   * put back, with restoreHeld, before it resolves false).
   */
  conn(frozen: FrozenConnection, socket: net.Socket, client: Client<unknown>): Promise<boolean>;
  /**
   * Says that connection `id`, which the new worker has taken, is let go here, with the output
   * written to it while it was on its way (possibly empty): the new worker sends that before its own.
   * `end` is a shutdown, close or destroy asked for here meanwhile, which the new worker carries out.
   * `timeout` is a change the server made here meanwhile to the connection's timeout: the ms left
   * on it, or null when it was cleared; undefined when it made none.
   */
  released(id: number, output: Buffer, end: ConnectionEnd | undefined, timeout?: number | null): void;
}

/** PeerBroadcast sends a broadcast on to the other workers with clients (see setPeerBroadcast). */
export type PeerBroadcast = (data: Buffer, skip: number[]) => void;
