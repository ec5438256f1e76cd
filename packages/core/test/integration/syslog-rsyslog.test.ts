/**
 * log_file Sys::Syslog against Debian's rsyslog: the test starts an rsyslogd of its own on free
 * loopback ports (helpers/rsyslog.ts), a netplex server logs to it over udp and tcp, and rsyslogd
 * parses each line into the same facility, severity, program name, pid and message; over udp, a
 * Perl Net::Server logging the same lines through Net::Server::Log::Sys::Syslog gets the same.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type Client, type InputBuffer, MultiplexServer, type Mux } from '../../src/index.js';
import { TestClient, withTimeout } from '../helpers/client.js';
import { type Rsyslogd, type RsyslogLine, rsyslogdPath, startRsyslogd } from '../helpers/rsyslog.js';
import { startServer } from '../helpers/server.js';

if (!rsyslogdPath) {
  const why = 'rsyslog tests skipped: rsyslogd is not installed (apt-get install -y rsyslog)';
  // CI installs it (.ci/run): there a missing rsyslogd is a broken set-up, not a reason to skip.
  if (process.env.CI) throw new Error(why);
  console.warn(why);
}
const PERL_SERVER = fileURLToPath(new URL('../fixtures/syslog-server.pl', import.meta.url));
const perlAvailable =
  spawnSync('perl', ['-MNet::Server::Multiplex', '-MNet::Server::Log::Sys::Syslog', '-e', '1']).status === 0;

/** Echo logs "level N: <line>" at each level for each line, as the Perl fixture does, and echoes it. */
class Echo extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    for (const text of input.lines()) {
      for (const level of [0, 1, 2, 3, 4] as const) this.log(level, `level ${level}: ${text}`);
      client.write(`${text}\n`);
    }
  }
}

async function ping(port: number, text: string): Promise<void> {
  const client = await TestClient.connect({ port, host: '127.0.0.1' });
  onTestFinished(() => client.destroy());
  client.send(`${text}\n`);
  await client.waitFor(text);
}

/** levelsOf waits for the five "level N" lines rsyslogd wrote for one pid, in level order. */
async function levelsOf(rsyslog: Rsyslogd, pid: number, text: string): Promise<RsyslogLine[]> {
  const got: RsyslogLine[] = [];
  for (const level of [0, 1, 2, 3, 4])
    got.push(
      await rsyslog.waitFor(
        (l) => l.procid === String(pid) && l.msg.trim() === `level ${level}: ${text}`,
        `pid ${pid}'s level ${level} line`,
      ),
    );
  return got;
}

const severities = ['err', 'warning', 'notice', 'info', 'debug'];

describe.runIf(rsyslogdPath)('syslog to rsyslogd', () => {
  it.each(['udp', 'tcp'])(
    '%s: rsyslogd reads facility, severity, program name, pid and message',
    async (logsock) => {
      const rsyslog = await startRsyslogd();
      const { port } = await startServer(
        new Echo({
          port: ['127.0.0.1:0'],
          log_level: 4,
          log_file: 'Sys::Syslog',
          syslog_logsock: logsock,
          syslog_port: logsock === 'udp' ? rsyslog.udpPort : rsyslog.tcpPort,
          syslog_ident: 'netplex-echo',
          syslog_facility: 'local2',
        }),
      );
      // Two pings: over tcp, the second message of a connection is where a stray NUL would show.
      await ping(port, 'first');
      await ping(port, 'second');
      for (const text of ['first', 'second']) {
        const lines = await levelsOf(rsyslog, process.pid, text);
        expect(lines.map((l) => [l.pri, l.facility, l.severity, l.programname])).toEqual(
          severities.map((s, level) => [18 * 8 + level + 3, 'local2', s, 'netplex-echo']),
        );
      }
      // Every line rsyslogd read from netplex has its priority and tag: none fell back to user.notice.
      expect(
        rsyslog.lines().filter((l) => l.programname !== 'rsyslogd' && l.programname !== 'netplex-echo'),
      ).toEqual([]);
    },
  );

  it.runIf(perlAvailable)(
    'udp: side by side with Perl Net::Server, rsyslogd reads the same lines',
    async () => {
      const rsyslog = await startRsyslogd();
      const options = [
        '--log_file=Sys::Syslog',
        '--syslog_logsock=udp',
        '--syslog_ident=sidebyside',
        '--syslog_facility=user',
      ];
      const perl: ChildProcess = spawn(
        'perl',
        [PERL_SERVER, '--port=127.0.0.1:0', '--log_level=4', ...options],
        {
          env: { ...process.env, NETPLEX_SYSLOG_TYPE: 'udp', NETPLEX_SYSLOG_PORT: String(rsyslog.udpPort) },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      onTestFinished(async () => {
        if (perl.exitCode !== null || perl.signalCode !== null) return;
        const gone = new Promise((resolve) => perl.once('exit', resolve));
        perl.kill('SIGTERM');
        await gone;
      });
      let out = '';
      const perlPort = await withTimeout(
        new Promise<number>((resolve, reject) => {
          perl.stderr!.on('data', (d: Buffer) => {
            out += d.toString();
            const m = /PORT (\d+)/.exec(out);
            if (m) resolve(Number(m[1]));
          });
          perl.once('exit', (code) => reject(new Error(`syslog-server.pl exited (${code}): ${out}`)));
        }),
        'the Perl server to listen',
        15_000,
      );
      const netplex = await startServer(
        new Echo({ port: ['127.0.0.1:0'], log_level: 4, syslog_port: rsyslog.udpPort }),
        options,
      );
      await ping(perlPort, 'side by side');
      await ping(netplex.port, 'side by side');
      const fields = (l: RsyslogLine) => [l.pri, l.facility, l.severity, l.programname, l.msg];
      const theirs = await levelsOf(rsyslog, perl.pid!, 'side by side');
      const ours = await levelsOf(rsyslog, process.pid, 'side by side');
      expect(ours.map(fields)).toEqual(theirs.map(fields));
      expect(ours.map((l) => l.pri)).toEqual([11, 12, 13, 14, 15]);
    },
  );
});
