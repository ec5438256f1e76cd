/**
 * connection/added-udp — a UDP socket the server adds to the mux itself (IO::Multiplex's
 * `$mux->add($udp_socket)`): one handle for the socket, not a client per datagram as on a udp port.
 * Each datagram is appended to the handle's input and muxInput runs in its turn, as IO::Multiplex
 * appends it to the handle's inbuffer; `peeraddr`/`peerport` (mux.udpPeer) say where the last one
 * came from, and what the server writes goes there as one datagram, or, before any datagram came,
 * to the address the socket is connected to. muxEof and muxClose run when the socket closes.
 */
import type dgram from 'node:dgram';
import { unmapIPv4 } from '../access.js';
import type { AddOptions } from '../mux.js';
import type { ServerContext } from '../server/context.js';
import { admitAdded, remember } from './added-registry.js';
import { Client, clientControl, type Transport } from './client.js';
import type { ClientFlow } from './client-flow.js';
import { newSession } from './session.js';

/** addDatagram puts a bound (or connected) dgram socket in the mux as one handle. */
export function addDatagram<S>(
  ctx: ServerContext<S>,
  flow: ClientFlow<S>,
  socket: dgram.Socket,
  id: number,
  options: AddOptions<S>,
  setObject: (client: Client<S>) => void,
): Client<S> {
  let local: { address: string; port: number } = { address: '', port: 0 };
  try {
    local = socket.address();
  } catch {
    // Not bound yet: it is once it sends, or binds.
  }
  let remote: { address: string; port: number } | undefined;
  try {
    remote = socket.remoteAddress();
  } catch {
    // Not connected: it answers whoever sent the last datagram.
  }
  let closed = false;
  const transport: Transport = {
    write: (data, done) => {
      if (closed) return done?.(new Error('the socket is closed'));
      const sent = (err: Error | null) => done?.(err);
      try {
        if (remote === undefined && client.peerport !== 0)
          socket.send(data, client.peerport, client.peeraddr, sent);
        else socket.send(data, sent);
      } catch (err) {
        // Neither connected nor written to yet: there is nobody to send to.
        ctx.log(3, `client ${client}: ${(err as Error).message}`, { conn: client.id });
        done?.(err as Error);
      }
    },
    end: () => {},
    close: () => transport.destroy(),
    destroy: () => {
      if (closed) return;
      closed = true;
      try {
        socket.close();
      } catch {
        // Closed by the server's own code already: its 'close' ends the handle.
      }
    },
    writableLength: 0,
  };
  const client = new Client<S>(
    {
      id,
      proto: 'udp',
      peeraddr: remote ? unmapIPv4(remote.address) : '',
      peerport: remote?.port ?? 0,
      sockaddr: unmapIPv4(local.address),
      sockport: local.port,
      listener: '',
    },
    transport,
    ctx.logger.pino,
    () => {},
  );
  const session = newSession(client, undefined);
  ctx.sessions.set(client, session);
  const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    if (client.phase !== 'connected' || session.failed) return;
    if (rinfo.port !== client.peerport || unmapIPv4(rinfo.address) !== client.peeraddr) {
      const a = socket.address();
      clientControl.setAddresses(client, {
        proto: 'udp',
        peeraddr: unmapIPv4(rinfo.address),
        peerport: rinfo.port,
        sockaddr: unmapIPv4(a.address),
        sockport: a.port,
      });
    }
    if (client.input.length + msg.length > ctx.maxInput) {
      ctx.log(1, `client ${client}: max_input_buffer: dropped a datagram of ${msg.length} bytes`, {
        conn: client.id,
        bytes: msg.length,
      });
      return;
    }
    client.input.append(msg);
    flow.queueInput(session);
  };
  const onError = (err: NodeJS.ErrnoException) => {
    ctx.log(3, `client ${client}: ${err.code ?? err.message}`, {
      conn: client.id,
      err: err.code ?? err.message,
    });
  };
  const onClose = () => {
    closed = true;
    flow.enqueue(session, 'close');
  };
  socket.on('message', onMessage);
  socket.on('error', onError);
  socket.on('close', onClose);
  remember(client, {
    handle: socket,
    detach: () => {
      socket.off('message', onMessage);
      socket.off('error', onError);
      socket.off('close', onClose);
    },
  });
  // A UDP socket does not move on a reload: it finishes in its worker.
  admitAdded(ctx, client, options, false, setObject);
  return client;
}
