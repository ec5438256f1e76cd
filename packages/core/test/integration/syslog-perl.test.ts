/**
 * log_file Sys::Syslog side by side with Perl: a Net::Server::Multiplex server (fixtures/
 * syslog-server.pl, logging through Net::Server::Log::Sys::Syslog) and a netplex server, given the
 * same syslog options, log the same lines to the same receiver, made by the test, over udp, tcp
 * and a unix datagram socket. What each sends is the same, byte for byte, but for the time and the
 * pid: priority, ident, message and the "\n\0" after it; over tcp netplex leaves out the NUL, which
 * a receiver would take as the start of the next message (syslog-format.ts says why).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadUnix } from '@netplex/unix';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type Client, type InputBuffer, MultiplexServer, type Mux } from '../../src/index.js';
import { TestClient, withTimeout } from '../helpers/client.js';
import { startServer } from '../helpers/server.js';
import { type Receiver, type Rfc3164, tcpReceiver, udpReceiver, unixReceiver } from '../helpers/syslog.js';

const PERL_SERVER = fileURLToPath(new URL('../fixtures/syslog-server.pl', import.meta.url));
const perlAvailable =
  spawnSync('perl', ['-MNet::Server::Multiplex', '-MNet::Server::Log::Sys::Syslog', '-e', '1']).status === 0;
if (!perlAvailable) {
  const why =
    'syslog comparison with Perl skipped: Net::Server::Multiplex or Net::Server::Log::Sys::Syslog is missing (apt-get install -y libnet-server-perl libio-multiplex-perl)';
  // CI installs them: there a missing module is a broken set-up, not a reason to skip.
  if (process.env.CI) throw new Error(why);
  console.warn(why);
}

/** Echo logs "level N: <line>" at each level for each line, as the Perl fixture does, and echoes it. */
class Echo extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    for (const text of input.lines()) {
      for (const level of [0, 1, 2, 3, 4] as const) this.log(level, `level ${level}: ${text}`);
      client.write(`${text}\n`);
    }
  }
}

/** startPerl runs the Perl fixture with these arguments and resolves with the port it listens on. */
async function startPerl(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ perl: ChildProcess; port: number }> {
  const perl = spawn('perl', [PERL_SERVER, '--port=127.0.0.1:0', '--log_level=4', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(async () => {
    if (perl.exitCode !== null || perl.signalCode !== null) return;
    const gone = new Promise((resolve) => perl.once('exit', resolve));
    perl.kill('SIGTERM');
    await gone;
  });
  let out = '';
  const port = await withTimeout(
    new Promise<number>((resolve, reject) => {
      const onData = (d: Buffer) => {
        out += d.toString();
        const m = /PORT (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      };
      perl.stdout!.on('data', onData);
      perl.stderr!.on('data', onData);
      perl.once('exit', (code) => reject(new Error(`syslog-server.pl exited (${code}): ${out}`)));
    }),
    'the Perl server to listen',
    15_000,
  );
  return { perl, port };
}

/** ping sends one line to a server and waits for its echo. */
async function ping(port: number, text: string): Promise<void> {
  const client = await TestClient.connect({ port, host: '127.0.0.1' });
  onTestFinished(() => client.destroy());
  client.send(`${text}\n`);
  await client.waitFor(text);
}

/** linesOf waits for the five "level N" lines of one sender (by pid) and gives them in level order. */
async function linesOf(receiver: Receiver, pid: number, text: string, who: string): Promise<Rfc3164[]> {
  const lines: Rfc3164[] = [];
  for (const level of [0, 1, 2, 3, 4])
    lines.push(
      await receiver.waitFor(
        (m) => m.pid === pid && m.message === `level ${level}: ${text}`,
        `${who}'s level ${level} line`,
        15_000,
      ),
    );
  return lines;
}

/** comparable is a message without what differs between two senders: its time and its pid. */
const comparable = (m: Rfc3164) =>
  m.raw.replace(/^(<\d+>)[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d /, '$1TIME ').replace(`[${m.pid}]`, '[PID]');

describe.runIf(perlAvailable)('syslog side by side with Perl Net::Server', () => {
  const transports: Array<
    [string, () => Promise<(Receiver & { port?: number; path?: string }) | undefined>]
  > = [
    ['udp', udpReceiver],
    ['tcp', tcpReceiver],
    ['unix', async () => unixReceiver()],
  ];

  it.each(transports)(
    '%s: the same priority, ident and message as Perl sends, and the same bytes',
    async (logsock, make) => {
      if (logsock === 'unix' && !loadUnix())
        return void console.warn('skipped the unix comparison: no native module');
      const receiver = (await make())!;
      const options = [
        '--log_file=Sys::Syslog',
        `--syslog_logsock=${logsock}`,
        '--syslog_ident=sidebyside',
        '--syslog_facility=local1',
      ];
      const where =
        receiver.port !== undefined
          ? { NETPLEX_SYSLOG_TYPE: logsock, NETPLEX_SYSLOG_PORT: String(receiver.port) }
          : { NETPLEX_SYSLOG_PATH: receiver.path! };
      const perl = await startPerl(options, where);
      const netplex = await startServer(
        new Echo({
          port: ['127.0.0.1:0'],
          log_level: 4,
          ...(receiver.port !== undefined ? { syslog_port: receiver.port } : { syslog_path: receiver.path }),
        }),
        options,
      );
      await ping(perl.port, 'side by side');
      await ping(netplex.port, 'side by side');
      const theirs = await linesOf(receiver, perl.perl.pid!, 'side by side', 'Perl');
      const ours = await linesOf(receiver, process.pid, 'side by side', 'netplex');
      expect(ours.map((m) => [m.priority, m.ident, m.message])).toEqual(
        theirs.map((m) => [m.priority, m.ident, m.message]),
      );
      expect(theirs.map((m) => m.end)).toEqual(Array(5).fill('\n\0'));
      // Over tcp netplex leaves out the NUL, which the receiver would read as the next frame's start.
      const nul = logsock === 'tcp' ? '' : '\0';
      expect(ours.map(comparable)).toEqual(theirs.map((m) => comparable(m).replace(/\0$/, nul)));
      expect(ours[0]!.raw).toMatch(
        /^<139>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d sidebyside\[\d+\]: level 0: side by side\n\0?$/,
      );
    },
  );
});
