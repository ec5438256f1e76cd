/**
 * unix-datagram — `unixdgram` ports (Net::Server::Proto::UNIXDGRAM): a SOCK_DGRAM socket bound to a
 * path through the native module (@netplex/unix), since Node's net and dgram modules have no unix
 * datagram sockets. Each datagram is served as a udp one is (connection/udp.ts): a client of its
 * own, admitted, then muxInput once with the datagram (its first udp_recv_len bytes, when set).
 * What the hooks write goes back to the sender's path, when the sender bound one. The socket itself
 * is bound and closed in listeners.ts (bindUnixDatagram).
 */
import { constants } from 'node:os';
import type { Transport } from './connection/client.js';
import { serveDatagram } from './connection/udp.js';
import { errnoName, type Listener } from './listeners.js';
import type { ServerContext } from './server/context.js';

/** onUnixDatagram serves one datagram that came to a unixdgram listener. */
export function onUnixDatagram<S>(
  ctx: ServerContext<S>,
  msg: Buffer,
  from: string | undefined,
  listener: Listener,
): void {
  const socket = listener.datagram;
  if (ctx.state !== 'running' || socket === undefined) return;
  const transport: Transport = {
    write: (data, done) => {
      // A sender that bound no path cannot be answered; a full or gone peer loses the reply, as a
      // udp peer would.
      const sent =
        from === undefined ? -constants.errno.EDESTADDRREQ : socket.unix.sendTo(socket.fd, from, data);
      if (sent < 0)
        ctx.log(4, `reply to ${from ?? 'an unbound sender'} not sent: ${errnoName(sent)}`, {
          listener: listener.label,
        });
      done?.(sent < 0 ? new Error(errnoName(sent)) : null);
    },
    end: () => {},
    close: () => {},
    destroy: () => {},
    writableLength: 0,
  };
  serveDatagram(
    ctx,
    msg,
    { proto: 'unix', peeraddr: from ?? '', peerport: 0, sockaddr: socket.path, sockport: 0 },
    transport,
    listener,
  );
}
