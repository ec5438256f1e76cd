/**
 * IO::Multiplex's API beside the Perl original: test/fixtures/muxapi.pl (a Net::Server::Multiplex
 * server that uses kill_output, outbuffer, inbuffer, set_timeout re-armed and cancelled,
 * mux_outbuffer_empty, udp_peer, is_udp and shutdown of either side) and MuxApi below, its port to
 * netplex line for line. The same clients run the same script against both, and what each receives
 * is compared byte for byte; netplex's bytes are also checked against the expected text, so the
 * test means something where Perl is missing.
 *
 * Each step waits for the reply that ends it, so that what one step writes never shares a loop turn
 * with the next (kill_output drops everything of its turn, in both).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, type InputBuffer, MultiplexServer, type Mux } from '../../src/index.js';
import { withTimeout } from '../helpers/client.js';
import { Peer } from '../helpers/migration.js';
import { startServer } from '../helpers/server.js';

const PERL_SERVER = fileURLToPath(new URL('../fixtures/muxapi.pl', import.meta.url));

const perlAvailable =
  existsSync(PERL_SERVER) &&
  spawnSync('perl', ['-MNet::Server::Multiplex', '-MIO::Multiplex', '-MTime::HiRes', '-e', '1']).status === 0;
if (!perlAvailable) {
  const reason =
    'IO::Multiplex API comparison with Perl skipped: Net::Server::Multiplex, IO::Multiplex or Time::HiRes is missing (apt-get install -y libnet-server-perl libio-multiplex-perl)';
  if (process.env.CI) throw new Error(`${reason}; CI must install them`);
  console.warn(reason);
}

const CHUNK = 'x'.repeat(20000);

interface MuxApiState {
  ticks?: number;
  tick?: number;
  chunks?: number;
  chunk?: number;
}

type ApiClient = Client<MuxApiState>;

/** MuxApi is muxapi.pl in netplex: the same commands, the same replies. */
class MuxApi extends MultiplexServer<MuxApiState> {
  override muxConnection(mux: Mux<MuxApiState>, client: ApiClient): void {
    // IO::Multiplex keeps every handle's output; netplex does for a client in buffered mode.
    mux.bufferOutput(client);
  }

  override muxInput(mux: Mux<MuxApiState>, client: ApiClient, input: InputBuffer): void {
    for (let line = input.line(); line !== undefined; line = input.line()) {
      const space = line.indexOf(' ');
      const cmd = space === -1 ? line : line.slice(0, space);
      const arg = space === -1 ? '' : line.slice(space + 1);
      if (cmd === 'echo') {
        client.write(`${arg}\n`);
      } else if (cmd === 'kill') {
        client.write(`${arg}\n`);
        const kept = mux.outbuffer(client).length;
        mux.killOutput(client);
        client.write(`killed ${kept}\n`);
      } else if (cmd === 'replace') {
        client.write('original\n');
        mux.outbuffer(client, `${arg}\n`);
        client.write(`outbuffer ${mux.outbuffer(client).length}\n`);
      } else if (cmd === 'upper') {
        mux.inbuffer(client, mux.inbuffer(client).toString('latin1').toUpperCase());
      } else if (cmd === 'rearm') {
        client.state.ticks = Number(arg);
        client.state.tick = 0;
        mux.setTimeout(client, 0.02);
      } else if (cmd === 'stream') {
        client.state.chunks = Number(arg);
        client.state.chunk = 1;
        client.write(`chunk 1 ${CHUNK}\n`);
      } else if (cmd === 'udp') {
        const peer = mux.udpPeer(client);
        client.write(`is_udp ${mux.isUdp(client) ? 1 : 0} from ${peer ? peer.address : 'none'}\n`);
      } else if (cmd === 'shutdown') {
        client.write('bye\n');
        mux.shutdown(client, 1);
      } else if (cmd === 'shutread') {
        mux.shutdown(client, 0);
        break;
      } else {
        client.write(`? ${cmd}\n`);
      }
    }
  }

  override muxTimeout(mux: Mux<MuxApiState>, client: ApiClient): void {
    const state = client.state;
    state.tick = (state.tick ?? 0) + 1;
    client.write(`tick ${state.tick}\n`);
    if (state.tick < (state.ticks ?? 0)) {
      mux.setTimeout(client, 0.02);
    } else {
      mux.setTimeout(client, null);
      client.write('timer cancelled\n');
    }
  }

  override muxOutbufferEmpty(_mux: Mux<MuxApiState>, client: ApiClient): void {
    const state = client.state;
    if (!state.chunks) return;
    if ((state.chunk ?? 0) < state.chunks) {
      state.chunk = (state.chunk ?? 0) + 1;
      client.write(`chunk ${state.chunk} ${CHUNK}\n`);
    } else {
      delete state.chunks;
      client.write('streamed\n');
    }
  }

  override muxEof(_mux: Mux<MuxApiState>, client: ApiClient, input: InputBuffer): void {
    client.write(`eof with [${input.text('latin1')}]\n`);
  }
}

/** A step sends, then waits until the client has received `until` (or, with 'end', the end). */
interface Step {
  send: string;
  until: string | 'end';
}

/** The script of one stream client, and what it receives, step by step. */
const main: Array<Step & { expect: string }> = [
  { send: 'echo hi\n', until: 'hi\n', expect: 'hi\n' },
  // The write of this turn is dropped; the length read before is 7 ("secret\n").
  { send: 'kill secret\n', until: 'killed 7\n', expect: 'killed 7\n' },
  { send: 'replace NEW\n', until: 'outbuffer 4\n', expect: 'NEW\noutbuffer 4\n' },
  // The rest of the input, upper-cased, is what the next lines are read from.
  { send: 'upper\nabc\n', until: '? ABC\n', expect: '? ABC\n' },
  { send: 'rearm 3\n', until: 'timer cancelled\n', expect: 'tick 1\ntick 2\ntick 3\ntimer cancelled\n' },
  {
    send: 'stream 3\n',
    until: 'streamed\n',
    expect: `chunk 1 ${CHUNK}\nchunk 2 ${CHUNK}\nchunk 3 ${CHUNK}\nstreamed\n`,
  },
  // A fourth tick or chunk would come before this.
  { send: 'echo after\n', until: 'after\n', expect: 'after\n' },
  { send: 'udp\n', until: 'from none\n', expect: 'is_udp 0 from none\n' },
  // The read side shut: muxEof runs with what is left, its reply is sent, the connection ends.
  { send: 'shutread\nleft', until: 'end', expect: 'eof with [left]\n' },
];

const goodbye: Array<Step & { expect: string }> = [
  { send: 'echo one\n', until: 'one\n', expect: 'one\n' },
  { send: 'shutdown\n', until: 'end', expect: 'bye\n' },
];

async function runStream(port: number, steps: Step[]): Promise<string> {
  const peer = await Peer.connect(port);
  try {
    for (const step of steps) {
      const before = peer.length;
      peer.send(step.send);
      if (step.until === 'end')
        await peer.until(() => peer.ended, `the end after ${JSON.stringify(step.send)}`);
      else {
        const needle = step.until;
        await peer.until(
          () => peer.received.subarray(before).includes(needle),
          `${JSON.stringify(needle)} after ${JSON.stringify(step.send)}`,
          5000,
          () => `received so far: ${JSON.stringify(peer.text.slice(-200))}`,
        );
      }
    }
    return peer.received.toString('latin1');
  } finally {
    peer.socket.destroy();
  }
}

async function runUdp(port: number): Promise<string> {
  const sock = dgram.createSocket('udp4');
  try {
    const reply = new Promise<string>((resolve) =>
      sock.once('message', (m) => resolve(m.toString('latin1'))),
    );
    sock.send('udp\n', port, '127.0.0.1');
    return await withTimeout(reply, 'the reply to a datagram');
  } finally {
    sock.close();
  }
}

interface Ports {
  tcp: number;
  udp: number;
}

interface Run {
  main: string;
  goodbye: string;
  udp: string;
}

async function runAll(ports: Ports): Promise<Run> {
  return {
    main: await runStream(ports.tcp, main),
    goodbye: await runStream(ports.tcp, goodbye),
    udp: await runUdp(ports.udp),
  };
}

const expected: Run = {
  main: main.map((s) => s.expect).join(''),
  goodbye: goodbye.map((s) => s.expect).join(''),
  udp: 'is_udp 1 from 127.0.0.1\n',
};

async function startPerl(): Promise<{ perl: ChildProcess; ports: Ports }> {
  const perl = spawn('perl', [PERL_SERVER, '--port=127.0.0.1:0', '--port=127.0.0.1:0/udp', '--log_level=2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ports = await new Promise<Ports>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`muxapi.pl did not report its ports within 10 s: ${out}`)),
      10_000,
    );
    const onData = (d: Buffer) => {
      out += d.toString();
      const found = [...out.matchAll(/auto-assigned port (\d+)/g)].map((m) => Number(m[1]));
      if (found.length === 2) {
        clearTimeout(timer);
        resolve({ tcp: found[0]!, udp: found[1]! });
      }
    };
    perl.stdout!.on('data', onData);
    perl.stderr!.on('data', onData);
    perl.once('exit', (code) => reject(new Error(`muxapi.pl exited (${code}): ${out}`)));
  });
  return { perl, ports };
}

describe('IO::Multiplex API beside muxapi.pl', () => {
  let perl: ChildProcess | undefined;
  let perlPorts: Ports | undefined;
  beforeAll(async () => {
    if (perlAvailable) ({ perl, ports: perlPorts } = await startPerl());
  }, 15_000);
  afterAll(() => {
    perl?.kill('SIGTERM');
  });

  it('netplex sends what the script expects', async () => {
    const { server } = await startServer(
      new MuxApi({ port: ['127.0.0.1:0', '127.0.0.1:0/udp'], log_level: 0 }),
    );
    const [tcp, udp] = server.addresses() as Array<{ port: number }>;
    const ours = await runAll({ tcp: tcp!.port, udp: udp!.port });
    expect(ours).toEqual(expected);
  });

  it.runIf(perlAvailable)('netplex sends what the Perl original sends, byte for byte', async () => {
    const theirs = await runAll(perlPorts!);
    const { server } = await startServer(
      new MuxApi({ port: ['127.0.0.1:0', '127.0.0.1:0/udp'], log_level: 0 }),
    );
    const [tcp, udp] = server.addresses() as Array<{ port: number }>;
    const ours = await runAll({ tcp: tcp!.port, udp: udp!.port });
    expect(ours.main).toBe(theirs.main);
    expect(ours.goodbye).toBe(theirs.goodbye);
    expect(ours.udp).toBe(theirs.udp);
  });
});
