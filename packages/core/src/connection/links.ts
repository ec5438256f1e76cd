/**
 * connection/links — two handles the server links (mux.link): a client and the upstream connection
 * it works with, say. Each finds the other with mux.linked, in whichever worker serves them, and a
 * migrating reload moves them in one step, or neither: a proxy forwarding between them never has one
 * end in each worker. A handle has one link at most; it goes when either end has closed.
 */
import { MuxHandleError } from '../errors.js';
import type { ServerContext } from '../server/context.js';
import type { Client } from './client.js';

/** link links `a` and `b`, each undoing any link it had. */
export function link<S>(ctx: ServerContext<S>, a: Client<S>, b: Client<S>): void {
  if (a === b) throw new MuxHandleError('link', `client ${a} cannot be linked to itself`);
  for (const c of [a, b])
    if (!ctx.sessions.has(c)) throw new MuxHandleError('link', `client ${c} is not in the mux`);
  unlink(ctx, a);
  unlink(ctx, b);
  ctx.links.set(a, b);
  ctx.links.set(b, a);
}

/** unlink undoes a handle's link, on both ends. */
export function unlink<S>(ctx: ServerContext<S>, a: Client<S>): void {
  const b = ctx.links.get(a);
  if (b === undefined) return;
  ctx.links.delete(a);
  if (ctx.links.get(b) === a) ctx.links.delete(b);
}
