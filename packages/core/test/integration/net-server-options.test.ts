/**
 * Net::Server options over real sockets, in one process: udp_recv_len cuts datagrams, udp_broadcast
 * lets a udp socket send to a broadcast address, a Perl conf file full of options netplex only
 * notices starts a server that serves (each notice said once), log_file Log::Log4perl logs where no
 * log_file would, log_function takes the lines, and unix_type SOCK_DGRAM makes unix ports unixdgram.
 */
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUnix } from '@netplex/unix';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  BindError,
  type Client,
  type InputBuffer,
  type LogLevel,
  MultiplexServer,
  type Mux,
} from '../../src/index.js';
import { TestClient, withTimeout } from '../helpers/client.js';
import { LogSink, startServer } from '../helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'netplex-perl-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** conf writes a conf file into the test's directory and returns its path. */
function conf(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Echo sends back what it gets, as `<proto> <input>`. */
class Echo extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    client.write(`${client.proto} ${input.takeAll().toString()}`);
  }
}

/** udpClient is a datagram socket on 127.0.0.1, closed when the test ends. */
async function udpClient(): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  onTestFinished(() => {
    sock.close();
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  return sock;
}

/** ask sends one datagram and waits for the reply. */
function ask(sock: dgram.Socket, port: number, data: string | Buffer, what: string): Promise<string> {
  const reply = new Promise<string>((resolve) => sock.once('message', (m) => resolve(m.toString())));
  sock.send(data, port, '127.0.0.1');
  return withTimeout(reply, what);
}

describe('udp_recv_len', () => {
  it('cuts each datagram to that many bytes before muxInput, as recv(2) with that length does', async () => {
    const { port, logs } = await startServer(
      new Echo({ port: ['127.0.0.1:0/udp'], udp_recv_len: 5, log_level: 4 }),
    );
    const sock = await udpClient();
    expect(await ask(sock, port, 'abcdefghij', 'the reply to a long datagram')).toBe('udp abcde');
    expect(await ask(sock, port, 'abc', 'the reply to a short datagram')).toBe('udp abc');
    expect(logs.messages).toContain('datagram of 10 bytes cut to udp_recv_len 5');
  });

  it('leaves datagrams whole when unset', async () => {
    const { port } = await startServer(new Echo({ port: ['127.0.0.1:0/udp'], log_level: 0 }));
    const sock = await udpClient();
    const big = 'x'.repeat(8000);
    expect(await ask(sock, port, big, 'the reply to an 8000-byte datagram')).toBe(`udp ${big}`);
  });
});

describe('udp_broadcast', () => {
  /**
   * Sender answers each datagram with how its own socket fared sending to the loopback network's
   * broadcast address: `sent`, or the error's code (EACCES without SO_BROADCAST).
   */
  class Sender extends MultiplexServer {
    override muxInput(_mux: Mux, client: Client, input: InputBuffer): Promise<void> {
      input.takeAll();
      const socket = this.listeners[0]!.socket!;
      return new Promise((resolve) => {
        socket.send('hello', 9, '127.255.255.255', (err) => {
          client.write(err ? String((err as NodeJS.ErrnoException).code) : 'sent');
          resolve();
        });
      });
    }
  }

  it.each([
    [true, 'sent'],
    [false, 'EACCES'],
  ])('udp_broadcast %s: the udp socket sending to 127.255.255.255 gives %s', async (broadcast, outcome) => {
    const { port } = await startServer(
      new Sender({ port: ['127.0.0.1:0/udp'], udp_broadcast: broadcast ? 1 : 0, log_level: 0 }),
    );
    const sock = await udpClient();
    expect(await ask(sock, port, 'go', 'the outcome of the broadcast')).toBe(outcome);
  });
});

describe('a Perl conf file with options netplex only notices', () => {
  /** Every option that gets a notice, as a Net::Server conf file would set them. */
  const PERL_CONF = `# a Net::Server::Multiplex conf file
log_level          2
ipv6_package       IO::Socket::IP
log_file           Log::Log4perl
log4perl_conf      /etc/log4perl.conf
no_close_by_child  1
tie_client_stdout  1
udp_recv_flags     2
sig_passthrough    HUP,USR2
SSL_cert_file      /etc/ssl/server.crt
SSL_key_file       /etc/ssl/server.key
`;

  it('starts, serves a connection, and says each notice once', async () => {
    const file = conf('perl.conf', `${PERL_CONF}port 127.0.0.1:0\n`);
    const { server, port, logs } = await startServer(new Echo({ conf_file: file }));
    const client = await TestClient.connect({ port, host: '127.0.0.1' });
    onTestFinished(() => client.destroy());
    client.send('ping');
    await client.waitFor('tcp ping');

    const notices = logs.lines.filter((l) => Array.isArray(l.option));
    expect(notices.map((l) => l.option)).toEqual([
      ['log_file'],
      ['ipv6_package'],
      ['log4perl_conf'],
      ['no_close_by_child'],
      ['sig_passthrough'],
      ['tie_client_stdout'],
      ['udp_recv_flags'],
      ['SSL_cert_file', 'SSL_key_file'],
    ]);
    for (const line of notices) expect(line.level, String(line.msg)).toBe(35); // pino's value of notice
    expect(new Set(notices.map((l) => l.msg)).size).toBe(notices.length);
    expect(notices.find((l) => String(l.msg).startsWith('SSL_'))?.msg).toContain('TLS is not supported yet');
    // What the notices said: no file for the log module, sig_passthrough without the supervisor's own.
    expect(server.config.log_file).toBeUndefined();
    expect(server.config.sig_passthrough).toEqual(['SIGUSR2']);
    expect(existsSync(join(dir, 'Log::Log4perl'))).toBe(false);
    expect(existsSync('Log::Log4perl')).toBe(false);
  });

  it('says the notices again at the next start, not at every connection', async () => {
    const file = conf('again.conf', 'tie_client_stdout 1\nport 127.0.0.1:0\n');
    const first = await startServer(new Echo({ conf_file: file }));
    for (let i = 0; i < 3; i++) {
      const client = await TestClient.connect({ port: first.port, host: '127.0.0.1' });
      client.send(`ping ${i}`);
      await client.waitFor(`tcp ping ${i}`);
      client.destroy();
    }
    const said = (logs: LogSink) =>
      logs.lines.filter((l) => String(l.msg).startsWith('tie_client_stdout:')).length;
    expect(said(first.logs)).toBe(1);
    await first.server.close();
    const second = await startServer(new Echo({ conf_file: file }));
    expect(said(second.logs)).toBe(1);
  });

  it('maps leave_children_open_on_hup 1 to drain-mode reloads', async () => {
    const file = conf('hup.conf', 'leave_children_open_on_hup 1\nport 127.0.0.1:0\n');
    const { server, logs } = await startServer(new Echo({ conf_file: file, log_level: 3 }));
    expect(server.config.reload_mode).toBe('drain');
    expect(logs.messages).toContain('leave_children_open_on_hup 1: set as reload_mode drain');
  });
});

describe('log_function', () => {
  it('takes every line of the server, given as a function in code', async () => {
    const got: Array<[LogLevel, string]> = [];
    const server = new Echo({
      port: ['127.0.0.1:0'],
      log_level: 2,
      log_function: (level: LogLevel, message: string) => got.push([level, message]),
    });
    const logs = new LogSink();
    onTestFinished(() => server.close());
    await server.start({ logDestination: logs });
    const address = server.addresses()[0]!;
    expect(
      got.some(
        ([level, m]) =>
          level === 2 && m === `Binding to 127.0.0.1:${'port' in address ? address.port : 0}/tcp`,
      ),
    ).toBe(true);
    expect(logs.lines).toEqual([]);
  });

  it('calls the server method a conf file names, and fails the start when there is none', async () => {
    class Logged extends Echo {
      readonly lines: string[] = [];
      myLog(level: LogLevel, message: string): void {
        this.lines.push(`${level} ${message}`);
      }
    }
    const good = new Logged({ conf_file: conf('fn.conf', 'log_function myLog\nport 127.0.0.1:0\n') });
    onTestFinished(() => good.close());
    await good.start({ logDestination: new LogSink() });
    good.log(2, 'hello');
    expect(good.lines).toContain('2 hello');

    const file = conf('nofn.conf', 'log_function no_such_method\nport 127.0.0.1:0\n');
    const bad = new Logged({ conf_file: file });
    await expect(bad.start({ logDestination: new LogSink() })).rejects.toThrow(
      `${file}:1: log_function: expected a function, or the name of a method of the server, got "no_such_method"`,
    );
  });

  it('wins over writeToLogHook, as Net::Server calls log_function first', async () => {
    const viaFunction: string[] = [];
    const viaHook: string[] = [];
    class Hooked extends Echo {
      override writeToLogHook(_level: LogLevel, message: string): void {
        viaHook.push(message);
      }
    }
    const server = new Hooked({
      port: ['127.0.0.1:0'],
      log_function: (_l: LogLevel, m: string) => viaFunction.push(m),
    });
    onTestFinished(() => server.close());
    await server.start({ logDestination: new LogSink() });
    expect(viaFunction.length).toBeGreaterThan(0);
    expect(viaHook).toEqual([]);
  });
});

describe('unix_type', () => {
  it('SOCK_STREAM serves a unix port as proto unix', async () => {
    const path = join(dir, 'stream.sock');
    const { server } = await startServer(
      new Echo({ port: [`${path}|unix`], unix_type: 'SOCK_STREAM', log_level: 0 }),
    );
    expect(server.addresses()).toEqual([{ proto: 'unix', path }]);
    const client = await TestClient.connect({ path });
    onTestFinished(() => client.destroy());
    client.send('ping');
    await client.waitFor('unix ping');
  });

  it('SOCK_DGRAM makes a unix port unixdgram: bound through the native module, else refused with the reason', async () => {
    const path = join(dir, 'dgram.sock');
    const server = new Echo({ port: [`${path}|unix`, '127.0.0.1:0'], unix_type: 'SOCK_DGRAM', log_level: 0 });
    onTestFinished(() => server.close());
    const err = await server.start({ logDestination: new LogSink() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (loadUnix()) {
      expect(err).toBeUndefined();
      expect(server.listeners[0]!.label).toBe(`${path}|unixdgram`);
    } else {
      expect(err).toBeInstanceOf(BindError);
      expect((err as Error).message).toContain(
        `cannot bind ${path}|unixdgram: unixdgram sockets need netplex's native module`,
      );
    }
  });
});
