/**
 * connection/udp — the client flow of a datagram: each one is a client of its own (Net::Server's
 * udp), admitted as a stream client is, then muxInput runs once with the datagram as its input (its
 * first udp_recv_len bytes, when that is set). What the hooks write goes back to the sender as
 * datagrams.
 */
import type dgram from 'node:dgram';
import { unmapIPv4 } from '../access.js';
import type { Listener } from '../listeners.js';
import type { ServerContext } from '../server/context.js';
import { allowDeny, reverseLookup } from './admission.js';
import { Client, clientControl, type PeerAddresses, type Transport } from './client.js';

/** onDatagram serves one datagram that came to a udp listener. */
export function onDatagram<S>(
  ctx: ServerContext<S>,
  msg: Buffer,
  rinfo: dgram.RemoteInfo,
  listener: Listener,
): void {
  if (ctx.state !== 'running' || !listener.socket) return;
  const socket = listener.socket;
  const local = socket.address();
  const transport: Transport = {
    write: (data) => socket.send(data, rinfo.port, rinfo.address),
    end: () => {},
    close: () => {},
    destroy: () => {},
    writableLength: 0,
  };
  serveDatagram(
    ctx,
    msg,
    {
      proto: 'udp',
      peeraddr: unmapIPv4(rinfo.address),
      peerport: rinfo.port,
      sockaddr: unmapIPv4(local.address),
      sockport: local.port,
    },
    transport,
    listener,
  );
}

/**
 * serveDatagram serves one datagram of a udp or unixdgram listener as a client of its own, whose
 * writes go through `transport`: cut to udp_recv_len (Net::Server reads each datagram with
 * recv(…, udp_recv_len), which drops the rest), numbered, then admitted and handed to muxInput.
 */
export function serveDatagram<S>(
  ctx: ServerContext<S>,
  msg: Buffer,
  ends: PeerAddresses,
  transport: Transport,
  listener: Listener,
): void {
  const most = ctx.config.udp_recv_len;
  if (most !== undefined && msg.length > most) {
    ctx.log(4, `datagram of ${msg.length} bytes cut to udp_recv_len ${most}`, { peer: ends.peeraddr });
    msg = msg.subarray(0, most);
  }
  const id = ++ctx.server.requests;
  const client = new Client<S>(
    { id, ...ends, listener: listener.label },
    transport,
    ctx.logger.pino,
    () => {},
  );
  client.input.append(msg);
  void runDatagram(ctx, client).catch((err) => ctx.logHookError(err, client));
}

/** runDatagram admits one datagram's client and runs muxInput once. */
async function runDatagram<S>(ctx: ServerContext<S>, client: Client<S>): Promise<void> {
  const { server, mux } = ctx;
  const verified = await reverseLookup(ctx, client);
  await server.postAcceptHook(client);
  let allowed = verified && allowDeny(ctx, client);
  if (allowed) allowed = (await server.allowDenyHook(client)) !== false;
  if (!allowed) {
    await server.requestDeniedHook(client);
    return;
  }
  client.accepted = true;
  clientControl.setPhase(client, 'connected');
  await server.muxInput(mux, client, client.input);
  clientControl.setPhase(client, 'closed');
}
