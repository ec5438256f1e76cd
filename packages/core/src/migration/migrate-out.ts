/**
 * migration/migrate-out — the old worker's side of a migrating reload: it stops accepting and
 * moves every movable connection to the new worker through a MigrationChannel (its socket, unread
 * input, output written meanwhile, timeout and state).
 *
 * Each connection goes on being served here until its own turn comes, and only then stops reading;
 * a small, adaptive window of connections is on their way (sent, not yet taken) at once, so that a
 * client's pause is its own handover. A connection the new worker does not take stays here and goes
 * on being served. What does not move is left for retire() to drain.
 */

import { type Client, clientControl } from '../connection/client.js';
import type { ClientFlow } from '../connection/client-flow.js';
import type { Session } from '../connection/session.js';
import { ServerClosedError } from '../errors.js';
import { isPromiseLike } from '../hooks.js';
import type { FrozenConnection } from '../ipc/messages.js';
import { adoptListener, closeListener } from '../listeners.js';
import type { ServerContext } from '../server/context.js';
import { Freezer } from './freeze.js';
import { type MoveObserver, MoveTracker } from './move-state.js';
import type { MigrationChannel, MigrationCounts, MoveWindowBounds } from './types.js';

/**
 * How many connections a migration has on their way at once (sent, not yet taken by the new
 * worker): between these bounds, as many as the new worker takes in MIGRATION_PAUSE_MS. Node passes
 * one socket handle per IPC round trip, which under load takes an event-loop turn of each worker:
 * a connection's pause is then about the window times that turn.
 */
export const MIGRATION_WINDOW_MIN = 2;
export const MIGRATION_WINDOW_MAX = 64;
export const MIGRATION_PAUSE_MS = 20;

/** How long MoveWindow measures the pace over, at least, before it resizes the window. */
export const MIGRATION_SAMPLE_MS = 5;

/**
 * MoveWindow is the adaptive window: as many connections on their way as are taken within
 * MIGRATION_PAUSE_MS, so that a connection waits about that long behind the others, whether moving
 * is fast (idle workers) or slow (busy ones). The pace is measured over spans of at least
 * MIGRATION_SAMPLE_MS (connections taken per ms, averaged over the spans, the last counting for a
 * quarter), because connections are taken in batches: many at one instant, then none for a while.
 */
export class MoveWindow {
  size: number;
  readonly #bounds: MoveWindowBounds;
  #perConnMs: number | undefined;
  #spanStart: number | undefined;
  #spanCount = 0;

  constructor(bounds: MoveWindowBounds = { min: MIGRATION_WINDOW_MIN, max: MIGRATION_WINDOW_MAX }) {
    this.#bounds = bounds;
    this.size = bounds.min;
  }

  /** taken records that the new worker took a connection, at `now` (ms, monotonic). */
  taken(now: number): void {
    if (this.#spanStart === undefined) {
      this.#spanStart = now;
      return;
    }
    this.#spanCount++;
    const span = now - this.#spanStart;
    if (span < MIGRATION_SAMPLE_MS) return;
    const sample = span / this.#spanCount;
    const prev = this.#perConnMs;
    const per = prev === undefined ? sample : prev + (sample - prev) / 4;
    this.#perConnMs = per;
    this.#spanStart = now;
    this.#spanCount = 0;
    const { min, max } = this.#bounds;
    this.size = Math.max(min, Math.min(max, Math.floor(MIGRATION_PAUSE_MS / Math.max(per, 0.001))));
  }
}

/** migrateOut moves the server's connections out through `channel` and says how it went. */
export async function migrateOut<S>(
  ctx: ServerContext<S>,
  flow: ClientFlow<S>,
  channel: MigrationChannel,
  observe?: MoveObserver,
): Promise<MigrationCounts> {
  const began = Date.now();
  if (ctx.state !== 'running') throw new ServerClosedError(`migrateOut() in state ${ctx.state}`);
  ctx.state = 'migrating';
  await Promise.all(ctx.listeners.map((l) => closeListener(l)));
  await channel.state({
    requests: ctx.server.requests,
    ...(ctx.addedCount > 0 ? { added: ctx.addedCount } : {}),
    custom: await ctx.server.serverFreeze(),
  });
  const counts: MigrationCounts = { migrated: 0, drained: 0, failed: 0, ms: 0 };
  const moves = new MoveTracker<Session<S>>((id, from, to) => {
    ctx.log(0, `netplex bug: connection #${id} went from ${from} to ${to}, which a migration does not allow`);
  }, observe);
  const freezer = new Freezer(ctx, flow, moves, channel.carries?.bind(channel));
  const sessions = [...ctx.sessions.values()];
  await new Promise<void>((done) => {
    let next = 0;
    /** Connections that were made ready (see Freezer.ready) when their turn came: they go next. */
    const readied: Array<Session<S>> = [];
    /** Connections still served while a hook settles or output flushes (not stopped: not counted). */
    let readying = 0;
    /** Connections stopped and not yet taken by the new worker: bounded by the window. */
    let moving = 0;
    const window = new MoveWindow(channel.window);
    const send = (session: Session<S>, frozen: FrozenConnection) => {
      void handOver(freezer, session, frozen, channel).then((ok) => {
        moving--;
        if (ok) {
          counts.migrated++;
          window.taken(performance.now());
        } else counts.failed++;
        pump();
      });
    };
    const freeze = (session: Session<S>) => {
      moving++;
      const frozen = freezer.freeze(session);
      if (frozen === undefined) {
        moving--;
        counts.drained++;
      } else if (isPromiseLike(frozen)) {
        void frozen.then((f) => {
          if (f) send(session, f);
          else {
            moving--;
            counts.drained++;
            pump();
          }
        });
      } else send(session, frozen);
    };
    /** Connections that went with the one they are linked to (mux.link). */
    const paired = new Set<Session<S>>();
    /** freezePair moves two linked connections in one step, or neither (both then drain here). */
    const freezePair = (a: Session<S>, b: Session<S>) => {
      paired.add(b);
      if (!freezer.isMovable(a) || !freezer.isMovable(b)) {
        freezer.stay(a);
        freezer.stay(b);
        counts.drained += 2;
        return;
      }
      moving += 2;
      void Promise.all([freezer.freeze(a), freezer.freeze(b)]).then(([fa, fb]) => {
        if (fa && fb) {
          fa.link = fb.id;
          fb.link = fa.id;
          send(a, fa);
          send(b, fb);
          return;
        }
        // One did not freeze (it is back to work here): the other goes back to work with it.
        if (fa) freezer.unfreeze(a);
        if (fb) freezer.unfreeze(b);
        moving -= 2;
        counts.drained += 2;
        pump();
      });
    };
    const pump = () => {
      while (moving < window.size && (readied.length > 0 || next < sessions.length)) {
        const again = readied.length > 0;
        const session = again ? readied.shift()! : sessions[next++]!;
        if (paired.has(session)) continue;
        // Closed before its turn: nothing to move or drain.
        if (session.client.phase === 'closed') {
          moves.to(session, 'closed');
          continue;
        }
        const partner = linkedSession(ctx, session);
        if (partner) {
          freezePair(session, partner);
          continue;
        }
        const ready = again ? undefined : freezer.ready(session);
        if (ready) {
          readying++;
          void ready.then(() => {
            readying--;
            readied.push(session);
            pump();
          });
          continue;
        }
        freeze(session);
      }
      if (next >= sessions.length && readied.length === 0 && readying === 0 && moving === 0) done();
    };
    pump();
  });
  counts.ms = Date.now() - began;
  return counts;
}

/** linkedSession is the session of the connection `session` is linked to, if it has one here. */
function linkedSession<S>(ctx: ServerContext<S>, session: Session<S>): Session<S> | undefined {
  if (ctx.links.size === 0) return undefined;
  const other = ctx.links.get(session.client);
  return other === undefined ? undefined : ctx.sessions.get(other);
}

/** handOver sends a frozen connection; true once the new worker has it (this copy is released). */
async function handOver<S>(
  freezer: Freezer<S>,
  session: Session<S>,
  frozen: FrozenConnection,
  channel: MigrationChannel,
): Promise<boolean> {
  let ok = false;
  try {
    ok = await channel.conn(frozen, session.socket!, session.client as Client<unknown>);
  } catch {
    ok = false;
  }
  if (!ok) {
    // What was written to it before it was sent goes out here after all, first.
    if (frozen.output !== undefined)
      clientControl.restoreHeld(session.client, Buffer.from(frozen.output, 'base64'));
    freezer.unfreeze(session);
    return false;
  }
  // Output written while the connection was on its way follows it, ahead of the new worker's, and
  // so does a close (or shutdown, or destroy) asked for meanwhile.
  const { client } = session;
  // So does a change to its timeout made here meanwhile.
  channel.released(
    frozen.id,
    clientControl.takeHeldOutput(client),
    clientControl.takeEndWhileMoving(client),
    freezer.timeoutChange(session),
  );
  freezer.release(session);
  return true;
}

/**
 * resumeAccepting, after a migration the new worker could not finish, makes this worker accept
 * again on handles the supervisor passed anew.
 */
export async function resumeAccepting<S>(
  ctx: ServerContext<S>,
  flow: ClientFlow<S>,
  handles: ReadonlyMap<string, unknown>,
): Promise<void> {
  for (const listener of ctx.listeners) {
    const handle = handles.get(listener.target.key);
    if (handle !== undefined) {
      await adoptListener(listener, handle, {
        onConnection: (s) => flow.onConnection(s, listener),
        backlog: ctx.config.listen,
      });
    }
  }
  ctx.state = 'running';
}
