/**
 * samplechat — the chat server of Net::Server's examples/samplechat.pl, byte for byte.
 *
 *   netplex run packages/examples/src/samplechat.ts --port=2000
 *   telnet localhost 2000
 *
 * Every line a client sends is broadcast to everyone as "[id - addr] line"; the sender is told how
 * many bytes went out. After chat_timeout seconds of silence a client is upgraded to senior, after
 * twice that more it is told to leave. Only clients from 127.0.0.0/8 are served.
 */
import {
  type Client,
  type InputBuffer,
  isMain,
  type Listener,
  MultiplexServer,
  type Mux,
} from '@netplex/core';
import { z } from 'zod';

/** ChatState is what the chat keeps for each client. */
export interface ChatState {
  id: number;
  peerport: number;
  state: 'junior' | 'senior';
}

const CRLF = Buffer.from('\r\n');

/** SampleChat is samplechat.pl's SampleChatServer. */
export class SampleChat extends MultiplexServer<ChatState, { chat_timeout: number }> {
  static override options = {
    chat_timeout: z.coerce
      .number()
      .positive()
      .default(20)
      .describe('seconds of silence before the first heartbeat; later ones come after twice that'),
  };

  override allowDenyHook(client: Client<ChatState>): boolean {
    return client.peeraddr.startsWith('127.');
  }

  override requestDeniedHook(client: Client<ChatState>): void {
    client.print('Go away!\n');
    client.log.debug('Client denied!');
  }

  override muxConnection(mux: Mux<ChatState>, client: Client<ChatState>): void {
    const peer = client.peeraddr;
    client.state = { id: client.id, peerport: client.peerport, state: 'junior' };
    client.log.debug(`Client [${peer}] (id ${client.id}) just connected...`);
    mux.broadcast(`JOIN: (#${client.id}) from ${peer}\r\n`);
    client.print(`Welcome, you are number ${client.id} to connect.\r\n`);
    mux.setTimeout(client, this.config.chat_timeout);
  }

  override muxInput(mux: Mux<ChatState>, client: Client<ChatState>, input: InputBuffer): void {
    const { id } = client.state;
    const prefix = Buffer.from(`[${id} - ${client.peeraddr}] `);
    for (const line of input.lineBuffers()) {
      // Perl's `next unless $1`: an empty line and the line "0" are both false.
      if (line.length === 0 || (line.length === 1 && line[0] === 0x30)) continue;
      const message = Buffer.concat([prefix, line, CRLF]);
      mux.broadcast(message);
      client.print(` - sent ${message.length} byte message\r\n`);
    }
    if (client.state.state === 'senior') mux.setTimeout(client, 2 * this.config.chat_timeout);
  }

  override muxClose(mux: Mux<ChatState>, client: Client<ChatState>): void {
    if (!client.accepted) return;
    mux.broadcast(`LEFT: (#${client.state.id}) from ${client.peeraddr}\r\n`);
    client.log.debug(`Client [${client.peeraddr}] (id ${client.state.id}) closed connection!`);
  }

  override muxTimeout(mux: Mux<ChatState>, client: Client<ChatState> | Listener): void {
    if (client.kind !== 'client') return;
    if (client.state.state === 'junior') {
      client.print('Whoa, you must have a lot of patience.  You have been upgraded.\r\n');
      client.state.state = 'senior';
    } else {
      client.print("If you don't want to talk then you should leave. *BYE*\r\n");
      client.close();
    }
    mux.setTimeout(client, 2 * this.config.chat_timeout);
  }
}

if (isMain(import.meta.url)) await SampleChat.run();
