/**
 * migration/peer-broadcast — a `mux.broadcast` reaches every client, in whichever worker serves it,
 * while two workers have clients (during a migration, and while a replaced worker drains): the
 * worker that broadcasts sends it on (through the supervisor), naming the connections it covered
 * itself, and the other writes it to the rest of its clients.
 */
import type { ServerContext } from '../server/context.js';

/**
 * broadcastElsewhere sends a broadcast made here to the other workers with clients, naming the
 * connections this worker covered itself: in the old worker, those on their way (the bytes are
 * held and go with them); in the new one, those it holds output for until the old worker lets them
 * go (the bytes wait there).
 */
export function broadcastElsewhere<S>(ctx: ServerContext<S>, data: Buffer): void {
  const send = ctx.peerBroadcast;
  if (!send) return;
  const skip = [...ctx.adopted.keys()];
  if (ctx.state === 'migrating') for (const c of ctx.clients) if (c.phase === 'migrating') skip.push(c.id);
  send(data, skip);
}

/**
 * receiveBroadcast writes a broadcast made in another worker to this worker's clients, but those in
 * `skip` (see broadcastElsewhere). It goes no further.
 */
export function receiveBroadcast<S>(ctx: ServerContext<S>, data: Buffer, skip: readonly number[]): void {
  const left = new Set(skip);
  for (const c of ctx.clients) if (!left.has(c.id)) c.write(data);
}
