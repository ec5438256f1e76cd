/**
 * connection/mux-ops — the mux calls that act on a stream connection's session rather than on its
 * Client alone: the read side's shutdown, and muxOutbufferEmpty's turn in the connection's queue.
 * (Which side a shutdown shuts is read in shutdown.ts.)
 */
import type { ServerContext } from '../server/context.js';
import { type Client, clientControl } from './client.js';
import type { StepQueue } from './session.js';

/**
 * shutdownRead shuts a connection's read side as far as Node allows: Node cannot shut a socket's
 * read side (shutdown(2) with SHUT_RD), so netplex reads on and drops what comes. muxEof then runs,
 * in the connection's turn, with the input not yet consumed, and the connection closes once its
 * output is sent (as IO::Multiplex closes a handle whose both sides are done). On a connection that
 * is on its way to another worker, it is a close there after the output written before.
 */
export function shutdownRead<S>(ctx: ServerContext<S>, flow: StepQueue<S>, client: Client<S>): void {
  const session = ctx.sessions.get(client);
  if (!session || session.readShut) return;
  const phase = client.phase;
  if (phase === 'migrating') {
    client.close();
    return;
  }
  if (phase !== 'accepting' && phase !== 'connected' && phase !== 'eof') return;
  session.readShut = true;
  // It finishes where it is: a reload does not move it.
  client.movable = false;
  if (phase === 'accepting') {
    // Not admitted yet: nothing to hand muxEof; it closes once its turn comes.
    client.input.clear();
    client.close();
    return;
  }
  flow.enqueue(session, 'eof');
}

/** droppedAfterShutdown notes, at debug level, input dropped because the read side is shut. */
export function droppedAfterShutdown<S>(ctx: ServerContext<S>, client: Client<S>, bytes: number): void {
  if (ctx.config.log_level >= 4)
    ctx.log(4, `client ${client}: dropped ${bytes} bytes of input after its read side was shut`, {
      conn: client.id,
      bytes,
    });
}

/** outputEmptied gives muxOutbufferEmpty its turn: everything written to `client` has been sent. */
export function outputEmptied<S>(flow: StepQueue<S>, ctx: ServerContext<S>, client: Client<S>): void {
  const session = ctx.sessions.get(client);
  if (!session) return;
  flow.enqueue(session, () => {
    const phase = client.phase;
    if ((phase !== 'connected' && phase !== 'eof') || session.failed) return undefined;
    if (clientControl.outbuffer(client)?.length || client.outputLength > 0) return undefined;
    session.hook = 'muxOutbufferEmpty';
    return (session.handler ?? ctx.server).muxOutbufferEmpty?.(ctx.mux, client);
  });
}
