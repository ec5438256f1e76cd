/**
 * samplechat.ts against Net::Server's own samplechat.pl: the same scripted clients against both,
 * every client's received bytes compared exactly.
 *
 * The Perl server is recorded first. Its quiet moments are found by waiting until no client has
 * received anything for a short while (absence cannot be awaited as an event); netplex is then driven
 * step by step, each step waiting (event-driven) until every client has received as many bytes as it
 * had from Perl at that step, and the bytes are compared at the end.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SampleChat } from '../src/samplechat.js';

const PERL_SAMPLE = '/usr/share/doc/libnet-server-perl/examples/samplechat.pl';
const HEARTBEAT = 0.4; // seconds: the Perl sample's 20 and 40 become 0.4 and 0.8 in both servers
const QUIET_MS = 150;

const perlAvailable =
  existsSync(PERL_SAMPLE) &&
  spawnSync('perl', ['-MNet::Server::Multiplex', '-MIO::Multiplex', '-e', '1']).status === 0;
if (!perlAvailable) {
  const reason = `samplechat conformance against Perl skipped: ${PERL_SAMPLE} or Net::Server::Multiplex/IO::Multiplex is missing (apt-get install -y libnet-server-perl libio-multiplex-perl)`;
  if (process.env.CI) throw new Error(`${reason}; CI must install them`);
  console.warn(reason);
}

type Step =
  | { op: 'connect'; c: string; v6?: boolean }
  | { op: 'send'; c: string; data: string | Buffer }
  | { op: 'end'; c: string }
  | { op: 'close'; c: string }
  | { op: 'await'; c: string; text: string };

interface Ports {
  v4: number;
  v6: number;
}

class Conn {
  socket!: net.Socket;
  data = Buffer.alloc(0);
  closed = false;
  listeners = new Set<() => void>();
  touched = Date.now();
  static open(port: number, host: string): Promise<Conn> {
    const c = new Conn();
    return new Promise((resolve, reject) => {
      c.socket = net.connect({ port, host, allowHalfOpen: true }, () => resolve(c));
      c.socket.on('data', (d: Buffer) => {
        c.data = Buffer.concat([c.data, d]);
        c.touched = Date.now();
        for (const l of c.listeners) l();
      });
      c.socket.on('error', () => {});
      c.socket.on('close', () => {
        c.closed = true;
        c.touched = Date.now();
        for (const l of c.listeners) l();
      });
      c.socket.once('error', reject);
    });
  }
  until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(
          new Error(
            `timed out waiting for ${what}; got ${JSON.stringify(this.data.toString('latin1').slice(-300))}`,
          ),
        );
      }, ms);
      this.listeners.add(check);
    });
  }
}

/** quiet returns once no client has received anything for QUIET_MS, counted from `since` at the earliest. */
async function quiet(conns: Map<string, Conn>, since: number): Promise<void> {
  for (;;) {
    const last = Math.max(since, ...[...conns.values()].map((c) => c.touched));
    const wait = last + QUIET_MS - Date.now();
    if (wait <= 0) return;
    await new Promise((r) => setTimeout(r, wait));
  }
}

async function act(step: Step, conns: Map<string, Conn>, ports: Ports): Promise<void> {
  switch (step.op) {
    case 'connect':
      conns.set(step.c, await Conn.open(step.v6 ? ports.v6 : ports.v4, step.v6 ? '::1' : '127.0.0.1'));
      return;
    case 'send':
      conns.get(step.c)!.socket.write(step.data);
      return;
    case 'end':
      conns.get(step.c)!.socket.end();
      return;
    case 'close':
      conns.get(step.c)!.socket.destroy();
      return;
    case 'await': {
      const c = conns.get(step.c)!;
      await c.until(() => c.data.includes(step.text), `${step.c} to receive ${JSON.stringify(step.text)}`);
      return;
    }
  }
}

/** record runs a script against the reference server, noting each client's byte count after each step. */
async function record(
  script: Step[],
  ports: Ports,
): Promise<{ counts: Array<Map<string, number>>; bytes: Map<string, Buffer> }> {
  const conns = new Map<string, Conn>();
  const counts: Array<Map<string, number>> = [];
  for (const step of script) {
    const at = Date.now();
    await act(step, conns, ports);
    await quiet(conns, at);
    counts.push(new Map([...conns].map(([k, c]) => [k, c.data.length])));
  }
  for (const c of conns.values()) c.socket.destroy();
  return { counts, bytes: new Map([...conns].map(([k, c]) => [k, c.data])) };
}

/** replay runs the script against netplex, waiting at each step for the byte counts the reference reached. */
async function replay(
  script: Step[],
  ports: Ports,
  counts: Array<Map<string, number>>,
): Promise<Map<string, Buffer>> {
  const conns = new Map<string, Conn>();
  for (const [i, step] of script.entries()) {
    await act(step, conns, ports);
    for (const [name, n] of counts[i]!) {
      const c = conns.get(name)!;
      await c.until(
        () => c.data.length >= n,
        `${name} to have ${n} bytes after step ${i} (${JSON.stringify(step).slice(0, 80)})`,
      );
    }
  }
  await quiet(conns, Date.now());
  for (const c of conns.values()) c.socket.destroy();
  return new Map([...conns].map(([k, c]) => [k, c.data]));
}

interface Pair {
  perl: ChildProcess;
  perlPorts: Ports;
  chat: SampleChat;
  chatPorts: Ports;
}

const dir = mkdtempSync(join(tmpdir(), 'netplex-perlchat-'));
const pairs: Pair[] = [];

async function startPerl(heartbeat: number): Promise<{ perl: ChildProcess; ports: Ports }> {
  // The sample with its 20 s and 40 s heartbeats set to `heartbeat` and twice that.
  const source = readFileSync(PERL_SAMPLE, 'utf8')
    .replace('set_timeout($fh, 20)', `set_timeout($fh, ${heartbeat})`)
    .replaceAll('set_timeout($fh, 40)', `set_timeout($fh, ${2 * heartbeat})`);
  const script = join(dir, `samplechat-${heartbeat}.pl`);
  writeFileSync(script, source);
  const perl = spawn('perl', [script, '--port=127.0.0.1:0', '--port=[::1]:0', '--log_level=2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ports = await new Promise<Ports>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`perl samplechat did not report its ports within 10 s: ${out}`)),
      10_000,
    );
    const onData = (d: Buffer) => {
      out += d.toString();
      const found = [...out.matchAll(/auto-assigned port (\d+)/g)].map((m) => Number(m[1]));
      if (found.length === 2) {
        clearTimeout(timer);
        resolve({ v4: found[0]!, v6: found[1]! });
      }
    };
    perl.stdout!.on('data', onData);
    perl.stderr!.on('data', onData);
    perl.once('exit', (code) => reject(new Error(`perl samplechat exited (${code}): ${out}`)));
  });
  return { perl, ports };
}

/** startPair starts samplechat.pl and samplechat.ts with the same heartbeat. */
async function startPair(heartbeat: number): Promise<Pair> {
  const { perl, ports: perlPorts } = await startPerl(heartbeat);
  const chat = new SampleChat({ port: ['127.0.0.1:0', '[::1]:0'], chat_timeout: heartbeat, log_level: 0 });
  const pair: Pair = { perl, perlPorts, chat, chatPorts: { v4: 0, v6: 0 } };
  pairs.push(pair);
  await chat.start({ argv: [] });
  const [a, b] = chat.addresses();
  pair.chatPorts = { v4: (a as { port: number }).port, v6: (b as { port: number }).port };
  return pair;
}

async function compare(pair: Pair, script: Step[]): Promise<void> {
  const reference = await record(script, pair.perlPorts);
  const ours = await replay(script, pair.chatPorts, reference.counts);
  for (const [client, bytes] of reference.bytes) {
    expect(ours.get(client)?.toString('latin1'), `bytes received by client ${client}`).toBe(
      bytes.toString('latin1'),
    );
  }
}

describe.runIf(perlAvailable)('samplechat.ts speaks samplechat.pl byte for byte', () => {
  let pair: Pair;
  beforeAll(async () => {
    // No heartbeat fires during these scripts: a long one keeps them deterministic.
    pair = await startPair(1000);
  }, 20_000);
  afterAll(async () => {
    for (const p of pairs) {
      p.perl.kill('SIGTERM');
      await p.chat.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const scripts: Record<string, Step[]> = {
    'join and leave': [
      { op: 'connect', c: 'a' },
      { op: 'connect', c: 'b' },
      { op: 'close', c: 'b' },
      { op: 'connect', c: 'c' },
      { op: 'close', c: 'a' },
    ],
    'multi-client chat': [
      { op: 'connect', c: 'a' },
      { op: 'connect', c: 'b' },
      { op: 'connect', c: 'c' },
      { op: 'send', c: 'a', data: 'hello everyone\n' },
      { op: 'send', c: 'b', data: 'hi a\n' },
      { op: 'send', c: 'c', data: 'hey\r\n' },
      { op: 'send', c: 'a', data: 'bye\n' },
      { op: 'close', c: 'a' },
      { op: 'send', c: 'b', data: 'a left\n' },
    ],
    'partial and multiple lines per packet, CRLF and LF, empty lines and "0"': [
      { op: 'connect', c: 'a' },
      { op: 'connect', c: 'b' },
      { op: 'send', c: 'a', data: 'hel' },
      { op: 'send', c: 'a', data: 'lo\nwor' },
      { op: 'send', c: 'a', data: 'ld\r\n\n\r\n0\n00\nx\ry\r\nlast' },
      { op: 'send', c: 'a', data: ' bit\n' },
    ],
    'a 100 KB line': [
      { op: 'connect', c: 'a' },
      { op: 'connect', c: 'b' },
      { op: 'send', c: 'a', data: `${'x'.repeat(100 * 1024)}\n` },
      // A busy machine can take longer than the quiet time over 100 KB: wait for the line itself.
      { op: 'await', c: 'a', text: 'byte message' },
    ],
    'UTF-8 text, byte counts in bytes': [
      { op: 'connect', c: 'a' },
      { op: 'connect', c: 'b' },
      { op: 'send', c: 'a', data: 'héllo wörld ✓ 日本語 🎉\n' },
      { op: 'send', c: 'b', data: Buffer.from([0xff, 0xfe, 0x41, 0x0a]) },
    ],
    'a denied client (over ::1)': [
      { op: 'connect', c: 'a' },
      { op: 'connect', c: 'denied', v6: true },
      { op: 'send', c: 'a', data: 'who was that?\n' },
    ],
    'half-close': [
      { op: 'connect', c: 'a' },
      { op: 'connect', c: 'b' },
      { op: 'send', c: 'a', data: 'last line\npartial' },
      { op: 'end', c: 'a' },
      { op: 'send', c: 'b', data: 'did a leave?\n' },
    ],
  };

  for (const [name, script] of Object.entries(scripts)) {
    it(name, () => compare(pair, script), 30_000);
  }

  it('heartbeat upgrade and BYE', async () => {
    // Events at least HEARTBEAT apart: a upgraded at 1x, b upgraded at ~2x, a told to leave at 3x, b at 4x.
    const hb = await startPair(HEARTBEAT);
    await compare(hb, [
      { op: 'connect', c: 'a' },
      { op: 'await', c: 'a', text: 'upgraded' },
      { op: 'connect', c: 'b' },
      { op: 'send', c: 'b', data: 'still here\n' },
      { op: 'await', c: 'b', text: 'upgraded' },
      { op: 'await', c: 'a', text: '*BYE*' },
      { op: 'await', c: 'b', text: '*BYE*' },
    ]);
  }, 30_000);
});
