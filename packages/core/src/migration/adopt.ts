/**
 * migration/adopt — the new worker's side of a migrating reload: it takes the old worker's
 * server-level state (and numbers the connections that waited for its counter), serves each
 * connection that comes with its socket, and holds its own output to such a connection until the
 * old worker has let it go, so that what the old worker wrote to it meanwhile is sent first.
 */
import net from 'node:net';
import { type Client, type ConnectionEnd, clientControl } from '../connection/client.js';
import type { ClientFlow } from '../connection/client-flow.js';
import { callbackClassesOf } from '../connection/handler.js';
import { link } from '../connection/links.js';
import type { Session } from '../connection/session.js';
import { HookError } from '../errors.js';
import type { FrozenConnection, FrozenServer } from '../ipc/messages.js';
import type { MuxHandler } from '../mux.js';
import type { ServerContext } from '../server/context.js';

/** thawServer takes the old worker's server-level state and numbers the waiting connections. */
export async function thawServer<S>(
  ctx: ServerContext<S>,
  flow: ClientFlow<S>,
  data: FrozenServer | null,
): Promise<void> {
  if (data) {
    ctx.server.requests = Math.max(ctx.server.requests, data.requests);
    ctx.addedCount = Math.max(ctx.addedCount, data.added ?? 0);
    try {
      await ctx.server.serverThaw(data.custom);
    } catch (err) {
      ctx.logHookError(new HookError('serverThaw', err));
    }
  }
  ctx.awaitingCounter = false;
  if (ctx.state === 'running') flow.unpark();
}

/**
 * SocketSource is what a migrated connection's socket is made from: the libuv handle Node's IPC
 * passed (relay), or the descriptor a unix socket pair passed (direct).
 */
export type SocketSource = { handle: unknown } | { fd: number };

/**
 * adoptConnection serves a connection that migrated from the old worker. With `hold` (the relay
 * transport), what this worker writes to it waits until the old worker has let it go
 * (releaseAdopted); without (the direct transport, over which the old worker's later output comes in
 * order with the connections that follow it, see deliverToAdopted), it is written at once.
 */
export function adoptConnection<S>(
  ctx: ServerContext<S>,
  flow: ClientFlow<S>,
  frozen: FrozenConnection,
  source: SocketSource,
  hold = true,
): void {
  const socket = new net.Socket({
    ...source,
    readable: true,
    writable: true,
    allowHalfOpen: true,
  } as net.SocketConstructorOpts);
  const session = flow.createSession(socket, {
    id: frozen.id,
    proto: frozen.proto,
    peeraddr: frozen.peeraddr,
    peerport: frozen.peerport,
    sockaddr: frozen.sockaddr,
    sockport: frozen.sockport,
    listener: frozen.listener,
    connectedAt: new Date(frozen.connectedAt),
  });
  const { client } = session;
  client.peerhost = frozen.peerhost;
  client.accepted = true;
  clientControl.setPhase(client, 'connected');
  if (frozen.buffered) clientControl.setBuffered(client, true);
  if (frozen.halfOpen) client.allowHalfOpen = true;
  // What the old worker writes to it until it lets it go comes first: output here waits till then.
  if (hold) clientControl.holdOutput(client);
  if (frozen.added) {
    // A handle the old worker's server added: still no request, and not among the clients.
    ctx.added.add(client);
    ctx.addedCount = Math.max(ctx.addedCount, -frozen.id);
  } else {
    ctx.clients.add(client);
    ctx.server.requests = Math.max(ctx.server.requests, frozen.id);
  }
  ctx.adopted.set(client.id, client);
  ctx.migratedIn++;
  // What the old worker wrote while the socket was moving goes out before anything written here.
  if (frozen.output !== undefined) socket.write(Buffer.from(frozen.output, 'base64'));
  if (frozen.input !== undefined) client.input.append(Buffer.from(frozen.input, 'base64'));
  if (frozen.timeoutMs !== undefined) ctx.timeouts.set(client, frozen.timeoutMs / 1000);
  // Its idle time goes on from where it was: a limit of its own moves with it; otherwise this
  // worker's idle_timeout applies, counting the time it had been idle already.
  const own = frozen.idleLimitMs !== undefined;
  ctx.idle.start(session, frozen.idleLimitMs ?? ctx.idleMs, own, frozen.idleMs ?? 0);
  if (frozen.link !== undefined) joinLinked(ctx, flow, session, frozen.link);
  const handler = frozen.handler === undefined ? undefined : handlerFor(ctx, client, frozen.handler);
  if (handler) session.handler = handler;
  flow.enqueue(session, () => {
    session.hook = 'muxThaw';
    if (handler === undefined) return ctx.server.muxThaw(ctx.mux, client, frozen.state);
    if (handler.muxThaw) return handler.muxThaw(ctx.mux, client, frozen.state);
    client.state = frozen.state as S;
    return undefined;
  });
  if (client.input.length > 0) {
    session.inputQueued = true;
    session.queue.push('input');
  }
}

/**
 * releaseAdopted: the old worker has let connection `id` go, having written `output` to it while
 * it was on its way. That goes out first, then what was written here meanwhile; if the old worker
 * ended the connection (`end`), that comes instead of what was written here.
 */
export function releaseAdopted<S>(
  ctx: ServerContext<S>,
  id: number,
  output: Buffer,
  end?: ConnectionEnd,
  timeoutMs?: number | null,
): void {
  const client = ctx.adopted.get(id);
  if (!client) return;
  ctx.adopted.delete(id);
  takeTimeoutChange(ctx, client, timeoutMs);
  clientControl.releaseOutput(client, output, end);
}

/**
 * takeTimeoutChange applies a change the old worker's server made to a connection's timeout while
 * it was on its way, unless this worker's server has set or cleared it since (the later change).
 */
function takeTimeoutChange<S>(
  ctx: ServerContext<S>,
  client: Client<S>,
  timeoutMs: number | null | undefined,
): void {
  if (timeoutMs === undefined || ctx.timeouts.touched(client)) return;
  ctx.timeouts.set(client, timeoutMs === null ? null : timeoutMs / 1000);
}

/**
 * deliverToAdopted writes what the old worker wrote to connection `id` (taken in without a hold)
 * while it was on its way, and carries out how the old worker ended it, if it did; `last`: the old
 * worker has let it go, and nothing more comes for it.
 */
export function deliverToAdopted<S>(
  ctx: ServerContext<S>,
  id: number,
  output: Buffer,
  end: ConnectionEnd | undefined,
  last: boolean,
  timeoutMs?: number | null,
): void {
  const client = ctx.adopted.get(id);
  if (!client) return;
  if (last) ctx.adopted.delete(id);
  takeTimeoutChange(ctx, client, timeoutMs);
  if (output.length > 0) client.write(output);
  if (end === 'destroy') client.destroy();
  else if (end === 'close') client.close();
  else if (end === 'shutdown') client.shutdown();
}

/**
 * handlerFor makes anew the callback object of a connection taken in, from the class this server
 * registers under `name`. A name it does not register (the new code dropped or renamed the class)
 * leaves the connection with no object it can serve it with: it is logged and closed.
 */
function handlerFor<S>(ctx: ServerContext<S>, client: Client<S>, name: string): MuxHandler<S> | undefined {
  const cls = callbackClassesOf(ctx.server)[name];
  if (cls !== undefined) return new cls() as MuxHandler<S>;
  ctx.log(
    1,
    `client ${client} moved in with a callback object of class "${name}", which this server does not register in callbackClasses: closing it`,
    {
      conn: client.id,
      class: name,
    },
  );
  client.close();
  return undefined;
}

/**
 * joinLinked links a connection taken in to the one it was linked to in the old worker: at once if
 * that one is here already, else once it comes. Until then its hooks wait (muxThaw first), so that
 * it never runs without its partner; at the end of the migration it goes on alone.
 */
function joinLinked<S>(
  ctx: ServerContext<S>,
  flow: ClientFlow<S>,
  session: Session<S>,
  partnerId: number,
): void {
  const { client } = session;
  const waiting = ctx.linkWaits.get(client.id);
  if (waiting !== undefined) {
    ctx.linkWaits.delete(client.id);
    link(ctx, client, waiting.client);
    waiting.go();
    return;
  }
  let go!: () => void;
  const here = new Promise<void>((resolve) => {
    go = resolve;
  });
  ctx.linkWaits.set(partnerId, { client, go });
  flow.enqueue(session, () => here);
}

/** endAdoption, once the migration is over, releases every connection still held. */
export function endAdoption<S>(ctx: ServerContext<S>): void {
  // A connection whose partner never came (it stayed in the old worker) goes on alone.
  for (const { go } of ctx.linkWaits.values()) go();
  ctx.linkWaits.clear();
  const held = [...ctx.adopted.values()];
  ctx.adopted.clear();
  for (const client of held) clientControl.releaseOutput(client, Buffer.alloc(0));
}
