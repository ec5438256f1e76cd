/**
 * connection/runtime-listen — listen sockets the server adds at run time (IO::Multiplex's
 * `$mux->listen($fh)`): a net.Server the server's code made and set listening. Its connections go
 * through the client flow as those of a configured port do (postAcceptHook, allow/deny,
 * muxConnection, `requests`, max_connections).
 *
 * Unlike a configured port, the supervisor does not hold it: it belongs to the worker that made it.
 * A reload closes it in the old worker when that worker stops accepting (connections it accepted
 * are served on, moved or drained like the others), and a crash loses it; code that wants it in the
 * new worker listens again there, once the old worker has let the address go.
 */
import net from 'node:net';
import { MuxHandleError } from '../errors.js';
import { Listener } from '../listeners.js';
import { type BindAddress, type BindTarget, bindTargetKey, formatBindTarget } from '../port-spec.js';
import type { ServerContext } from '../server/context.js';
import type { ClientFlow } from './client-flow.js';

const kAccept = Symbol('netplex.accept');

type RuntimeServer = net.Server & { [kAccept]?: (socket: net.Socket) => void };

/** listenOn puts a listening net.Server in the mux and returns its Listener. */
export function listenOn<S>(ctx: ServerContext<S>, flow: ClientFlow<S>, server: net.Server): Listener {
  if (!(server instanceof net.Server))
    throw new MuxHandleError('listen', 'takes a net.Server that listens (net.createServer().listen(...))');
  const existing = ctx.listeners.find((l) => l.server === server);
  if (existing) return existing;
  const a = server.address();
  if (a === null)
    throw new MuxHandleError('listen', 'the server does not listen yet: call listen() and wait for it first');
  if (ctx.state !== 'running' && ctx.state !== 'starting')
    throw new MuxHandleError('listen', `the server is ${ctx.state}, and takes no listen socket`);
  const address: BindAddress =
    typeof a === 'string'
      ? { proto: 'unix', path: a }
      : { proto: 'tcp', address: a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
  const target = { ...address, key: bindTargetKey(address), label: formatBindTarget(address) } as BindTarget;
  const listener = new Listener(target);
  listener.server = server;
  listener.updateLabel();
  const accept = (socket: net.Socket) => {
    // Its client's end of input must not end the answers: muxEof runs first, as on a configured port.
    socket.allowHalfOpen = true;
    flow.onConnection(socket, listener);
  };
  (server as RuntimeServer)[kAccept] = accept;
  server.on('connection', accept);
  ctx.listeners.push(listener);
  ctx.log(3, `LISTEN ${listener.label} (added at run time)`, { listener: listener.label });
  return listener;
}

/**
 * unlisten takes a listen socket added at run time out of the mux and hands back its server, still
 * listening: its connections are no longer served by netplex (those accepted before stay). Undefined
 * for a configured port or a listener not in the mux.
 */
export function unlisten<S>(ctx: ServerContext<S>, listener: Listener): net.Server | undefined {
  const server = listener.server as RuntimeServer | undefined;
  const accept = server?.[kAccept];
  if (!server || !accept) return undefined;
  const i = ctx.listeners.indexOf(listener);
  if (i === -1) return undefined;
  ctx.listeners.splice(i, 1);
  server.off('connection', accept);
  delete server[kAccept];
  ctx.timeouts.clear(listener);
  return server;
}
