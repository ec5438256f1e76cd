/**
 * log_file Sys::Syslog over real sockets, in one process: the lines reach a udp, a tcp and a unix
 * datagram receiver the test made, with the priority (facility * 8 + severity), ident, pid and
 * message Net::Server's log module gives them; rfc5424 as the option; and a daemon that is down
 * (a closed port, a missing path) costs one warning on stderr, while the server starts and serves.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { type Client, type InputBuffer, MultiplexServer, type Mux } from '../../src/index.js';
import { TestClient, withTimeout } from '../helpers/client.js';
import { nativeOrSkip } from '../helpers/move.js';
import { startServer } from '../helpers/server.js';
import {
  closedTcpPort,
  closedUdpPort,
  type Receiver,
  tcpReceiver,
  udpReceiver,
  unixReceiver,
} from '../helpers/syslog.js';

/** The native module, for syslog over unix sockets; without it those tests say why they are skipped. */
const native = nativeOrSkip(
  'syslog over unix sockets (syslog_logsock unix and native, a stream socket at syslog_path)',
);

/** Echo answers each line, and logs what it got at every Net::Server level. */
class Echo extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    for (const text of input.lines()) {
      for (const level of [0, 1, 2, 3, 4] as const) this.log(level, `level ${level}: ${text}`);
      client.write(`${text}\n`);
    }
  }
}

/** ping connects to the server, sends one line and waits for its echo. */
async function ping(port: number, text: string): Promise<void> {
  const client = await TestClient.connect({ port, host: '127.0.0.1' });
  onTestFinished(() => client.destroy());
  client.send(`${text}\n`);
  await client.waitFor(text);
}

/** stderrLines collects what this process writes on stderr during a test (the warnings go there). */
let stderr: string[] = [];
const write = process.stderr.write.bind(process.stderr);
beforeEach(() => {
  stderr = [];
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    stderr.push(String(chunk));
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
});
afterEach(() => {
  process.stderr.write = write;
});
const syslogWarnings = () => stderr.filter((l) => l.startsWith('netplex: syslog '));

/** expectLevels checks the five lines one ping logged: one per level, priority facility*8 + severity. */
async function expectLevels(
  receiver: Receiver,
  text: string,
  facility: number,
  ident: string,
  pid: number | null = process.pid,
): Promise<void> {
  for (const level of [0, 1, 2, 3, 4]) {
    const m = await receiver.waitFor(
      (m) => m.message === `level ${level}: ${text}`,
      `the level ${level} line`,
    );
    expect(m.priority).toBe(facility * 8 + level + 3);
    expect(m.ident).toBe(ident);
    expect(m.pid ?? null).toBe(pid);
  }
}

/** waitWarnings waits, bounded, until stderr has had a syslog warning, and returns them all. */
async function waitWarnings(): Promise<string[]> {
  await withTimeout(
    (async () => {
      while (syslogWarnings().length === 0) await new Promise((r) => setTimeout(r, 5));
    })(),
    'a syslog warning on stderr',
  );
  return syslogWarnings();
}

describe('log_file Sys::Syslog', () => {
  it('udp: each line is one datagram, <PRI>Mmm dd hh:mm:ss ident[pid]: message\\n\\0', async () => {
    const receiver = await udpReceiver();
    const { port, server } = await startServer(
      new Echo({
        port: ['127.0.0.1:0'],
        log_level: 4,
        log_file: 'Sys::Syslog',
        syslog_logsock: 'udp',
        syslog_port: receiver.port,
        syslog_ident: 'myserver',
      }),
    );
    const bound = await receiver.waitFor((m) => m.message.startsWith('Binding to'), 'the Binding line');
    expect(bound).toMatchObject({ priority: 3 * 8 + 5, ident: 'myserver', pid: process.pid, end: '\n\0' });
    expect(bound.message).toBe(`Binding to 127.0.0.1:${port}/tcp`);
    expect(server.config.log_file).toBe('Sys::Syslog');
    await ping(port, 'hello udp');
    await expectLevels(receiver, 'hello udp', 3, 'myserver');
    expect(syslogWarnings()).toEqual([]);
  });

  it('tcp: one connection, each message ended by a newline (RFC 6587 non-transparent framing)', async () => {
    const receiver = await tcpReceiver();
    const { port } = await startServer(
      new Echo({
        port: ['127.0.0.1:0'],
        log_level: 4,
        log_file: 'Sys::Syslog',
        syslog_logsock: 'tcp',
        syslog_port: receiver.port,
        syslog_facility: 'local0',
        syslog_logopt: 'ndelay',
      }),
    );
    await ping(port, 'hello tcp');
    // Without pid in logopt there is no [pid].
    await expectLevels(receiver, 'hello tcp', 16, 'net_server', null);
    expect(receiver.parsed.every((m) => m.end === '\n')).toBe(true);
    expect(receiver.connections).toBe(1);
  });

  it('inet: tcp while a tcp daemon listens', async () => {
    const receiver = await tcpReceiver();
    const { port } = await startServer(
      new Echo({
        port: ['127.0.0.1:0'],
        log_level: 4,
        log_file: 'Sys::Syslog',
        syslog_logsock: 'inet',
        syslog_port: receiver.port,
      }),
    );
    await ping(port, 'hello inet');
    await expectLevels(receiver, 'hello inet', 3, 'net_server');
  });

  it('inet: udp when no tcp daemon listens, with the lines that waited for it', async () => {
    const receiver = await udpReceiver();
    const { port } = await startServer(
      new Echo({
        port: ['127.0.0.1:0'],
        log_level: 4,
        log_file: 'Sys::Syslog',
        syslog_logsock: 'inet',
        // No tcp listener on the udp receiver's port number.
        syslog_port: receiver.port,
      }),
    );
    await receiver.waitFor(
      (m) => m.message.startsWith('Binding to'),
      'the Binding line, sent while tcp was tried',
    );
    await ping(port, 'hello inet udp');
    await expectLevels(receiver, 'hello inet udp', 3, 'net_server');
    expect(syslogWarnings()).toEqual([]);
  });

  it('rfc5424 over tcp: octet-counted frames with the hostname, APP-NAME and PROCID', async () => {
    const receiver = await tcpReceiver();
    const { port } = await startServer(
      new Echo({
        port: ['127.0.0.1:0'],
        log_level: 2,
        log_file: 'Sys::Syslog',
        syslog_logsock: 'tcp',
        syslog_port: receiver.port,
        syslog_format: 'rfc5424',
        syslog_ident: 'app',
      }),
    );
    await ping(port, 'hello 5424');
    await receiver.waitCount(4, 'the Binding line and three lines of the ping');
    const line = receiver.messages.find((m) => m.endsWith('level 1: hello 5424'));
    expect(line).toMatch(
      new RegExp(
        `^<28>1 \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}(?:Z|[+-]\\d\\d:\\d\\d) \\S+ app ${process.pid} - - level 1: hello 5424$`,
      ),
    );
  });

  it('perror: each message is also printed on stderr as ident[pid]: message', async () => {
    const receiver = await udpReceiver();
    const { port } = await startServer(
      new Echo({
        port: ['127.0.0.1:0'],
        log_level: 0,
        log_file: 'Sys::Syslog',
        syslog_logsock: 'udp',
        syslog_port: receiver.port,
        syslog_logopt: 'pid|perror',
      }),
    );
    await ping(port, 'to both');
    await receiver.waitFor((m) => m.message === 'level 0: to both', 'the level 0 line');
    expect(stderr).toContain(`net_server[${process.pid}]: level 0: to both\n`);
  });

  describe.runIf(native)('unix and native, through the native module', () => {
    it.each([
      ['unix', '\n\0'],
      ['native', '\n'],
    ])('%s: one datagram per line to syslog_path, ending %j', async (logsock, end) => {
      const receiver = unixReceiver()!;
      const { port } = await startServer(
        new Echo({
          port: ['127.0.0.1:0'],
          log_level: 4,
          log_file: 'Sys::Syslog',
          syslog_logsock: logsock,
          syslog_path: receiver.path,
          syslog_facility: 'LOG_LOCAL7',
        }),
      );
      await ping(port, `hello ${logsock}`);
      await expectLevels(receiver, `hello ${logsock}`, 23, 'net_server');
      expect(receiver.parsed.every((m) => m.end === end)).toBe(true);
    });
  });
});

describe.runIf(native)('a stream socket at syslog_path', () => {
  it('gets a stream connection, each message ended by a NUL, as glibc and Sys::Syslog fall back to', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'netplex-syslog-stream-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'log');
    let received = '';
    const sockets = new Set<net.Socket>();
    const daemon = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('data', (d: Buffer) => {
        received += d.toString();
      });
    });
    onTestFinished(() => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => daemon.close(() => resolve()));
    });
    await new Promise<void>((resolve) => daemon.listen(path, resolve));
    const { port, server } = await startServer(
      new Echo({ port: ['127.0.0.1:0'], log_level: 4, log_file: 'Sys::Syslog', syslog_path: path }),
    );
    await ping(port, 'over a stream');
    await withTimeout(
      (async () => {
        while (!received.includes('level 4: over a stream')) await new Promise((r) => setTimeout(r, 5));
      })(),
      'the lines over the stream',
    );
    const frames = received.split('\0').filter((f) => f !== '');
    expect(frames.find((f) => f.includes('level 0: over a stream'))).toMatch(
      new RegExp(
        `^<27>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d net_server\\[${process.pid}\\]: level 0: over a stream\n$`,
      ),
    );
    expect(sockets.size).toBe(1);
    // A closed server closes its syslog connection too: the daemon sees it end.
    const ended = new Promise<void>((resolve) => [...sockets][0]!.once('end', resolve));
    await server.close();
    await withTimeout(ended, 'the syslog connection to end');
    expect(syslogWarnings()).toEqual([]);
  });
});

describe('a syslog daemon that is down', () => {
  /** startAndServe starts an Echo with these syslog options, serves three pings, and checks it served. */
  async function startAndServe(options: Record<string, unknown>): Promise<void> {
    const { port } = await startServer(
      new Echo({ port: ['127.0.0.1:0'], log_level: 4, log_file: 'Sys::Syslog', ...options }),
    );
    for (const n of [1, 2, 3]) await ping(port, `ping ${n}`);
  }

  it('udp to a closed port: the server serves, and stderr gets one warning', async () => {
    await startAndServe({ syslog_logsock: 'udp', syslog_port: await closedUdpPort() });
    const warnings = await waitWarnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^netplex: syslog udp 127\.0\.0\.1:\d+: nothing listens there \(ECONNREFUSED\); log lines are dropped until it answers\n$/,
    );
  });

  it('tcp to a closed port: one warning, however often it reconnects', async () => {
    await startAndServe({ syslog_logsock: 'tcp', syslog_port: await closedTcpPort() });
    const warnings = await waitWarnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('nothing listens there (ECONNREFUSED)');
  });

  it('tcp to a daemon that closes each connection: it reconnects, with one warning and one line when it answers', async () => {
    const sockets = new Set<net.Socket>();
    let accepted = 0;
    const daemon = net.createServer((socket) => {
      accepted++;
      sockets.add(socket);
      socket.destroy();
    });
    onTestFinished(() => new Promise<void>((resolve) => daemon.close(() => resolve())));
    await new Promise<void>((resolve) => daemon.listen(0, '127.0.0.1', resolve));
    await startAndServe({ syslog_logsock: 'tcp', syslog_port: (daemon.address() as net.AddressInfo).port });
    // Reconnects come after 250 ms, then 500 ms: the third connection is the second reconnect.
    await withTimeout(
      (async () => {
        while (accepted < 3) await new Promise((r) => setTimeout(r, 10));
      })(),
      'two reconnects',
    );
    const warnings = syslogWarnings();
    expect(warnings[0]).toMatch(
      /: the connection closed(?: \(E\w+\))?; log lines are dropped until it answers\n$/,
    );
    expect(warnings[1]).toMatch(/: answering again(?:; \d+ log lines? w(?:as|ere) dropped)?\n$/);
    expect(warnings).toHaveLength(2);
  });

  it('unix to a path where no socket is: one warning (ENOENT)', async () => {
    await startAndServe({ syslog_logsock: 'unix', syslog_path: '/nonexistent/netplex/log' });
    expect(await waitWarnings()).toEqual([
      !native
        ? expect.stringContaining('needs the native module')
        : 'netplex: syslog unix /nonexistent/netplex/log: no such socket (ENOENT); log lines are dropped until it answers\n',
    ]);
  });
});
