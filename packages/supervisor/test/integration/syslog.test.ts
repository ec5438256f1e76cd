/**
 * log_file Sys::Syslog under the supervisor, with real processes: the supervisor's own lines and
 * its worker's go to the syslog receiver the test made (each with its own pid, as Net::Server logs
 * everything there), nothing goes to stderr, and a daemon that is down costs one warning per
 * process while the server serves.
 */
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { fixture, Proc, tempDir } from '../helpers/proc.js';

/** A udp syslog receiver on 127.0.0.1, port 0, parsing Sys::Syslog's RFC 3164 form. */
async function udpReceiver() {
  const socket = dgram.createSocket('udp4');
  onTestFinished(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const messages: Array<{ priority: number; ident: string; pid: number; message: string }> = [];
  const waiters = new Set<() => void>();
  socket.on('message', (m) => {
    const parsed = /^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d ([^[]+)\[(\d+)\]: (.*)\n\0$/s.exec(m.toString());
    if (parsed)
      messages.push({
        priority: Number(parsed[1]),
        ident: parsed[2]!,
        pid: Number(parsed[3]),
        message: parsed[4]!,
      });
    for (const w of [...waiters]) w();
  });
  const waitFor = (re: RegExp, what: string, ms = 15_000) =>
    new Promise<(typeof messages)[number]>((resolve, reject) => {
      const check = () => {
        const found = messages.find((m) => re.test(m.message));
        if (!found) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${what} within ${ms} ms; received ${JSON.stringify(messages.slice(-10))}`));
      }, ms);
      waiters.add(check);
      check();
    });
  return { port: socket.address().port, messages, waitFor };
}

/** echoOnce connects to a unix socket path, sends a line and waits for it back. */
async function echoOnce(path: string, text: string): Promise<void> {
  const socket = net.connect({ path });
  onTestFinished(() => {
    socket.destroy();
  });
  let got = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no echo of ${text} within 10 s (got ${JSON.stringify(got)})`)),
      10_000,
    );
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    socket.once('error', reject);
    socket.write(`${text}\n`);
  });
  socket.destroy();
}

describe('log_file Sys::Syslog under the supervisor', () => {
  it("sends the supervisor's lines and the worker's, each with its pid, and nothing to stderr", async () => {
    const receiver = await udpReceiver();
    const dir = tempDir();
    const path = join(dir, 'echo.sock');
    const proc = new Proc(process.execPath, [
      '--import',
      'tsx',
      fixture('echo.ts'),
      `--port=${path}|unix`,
      '--log_file=Sys::Syslog',
      '--syslog_logsock=udp',
      `--syslog_port=${receiver.port}`,
      '--syslog_ident=netplex-sup',
    ]);
    const serving = await receiver.waitFor(
      /^netplex supervisor \d+ serving with worker \d+$/,
      'the serving line',
    );
    const [, supervisor, worker] = /supervisor (\d+) serving with worker (\d+)/
      .exec(serving.message)!
      .map(Number);
    expect(serving).toMatchObject({ priority: 3 * 8 + 5, ident: 'netplex-sup', pid: proc.pid });
    expect(supervisor).toBe(proc.pid);

    await echoOnce(path, 'hello');
    const connected = await receiver.waitFor(/^muxConnection$/, "the worker's muxConnection line");
    expect(connected).toMatchObject({ priority: 29, ident: 'netplex-sup', pid: worker });

    proc.child.kill('SIGTERM');
    expect((await proc.waitExit()).code).toBe(0);
    // No log line reached stderr: the JSON lines went to syslog instead.
    expect(proc.lines.filter((l) => 'level' in l)).toEqual([]);
    expect(proc.stderr).toBe('');
  });

  it('with no daemon at syslog_path, serves, and each process warns once', async () => {
    const dir = tempDir();
    const path = join(dir, 'echo.sock');
    const proc = new Proc(process.execPath, [
      '--import',
      'tsx',
      fixture('echo.ts'),
      `--port=${path}|unix`,
      '--log_file=Sys::Syslog',
      '--syslog_logsock=unix',
      `--syslog_path=${join(dir, 'no-daemon.sock')}`,
    ]);
    const warned = () => (proc.stderr.match(/^netplex: syslog /gm) ?? []).length;
    // The supervisor warns at its first line; the worker at its first, the muxConnection line.
    await proc.until(() => warned() >= 1 && existsSync(path), "the supervisor's warning and its socket");
    for (const n of [1, 2, 3]) await echoOnce(path, `ping ${n}`);
    await proc.until(() => warned() >= 2, "the worker's warning");
    proc.child.kill('SIGTERM');
    expect((await proc.waitExit()).code).toBe(0);
    const warnings = proc.stderr.split('\n').filter((l) => l.startsWith('netplex: syslog '));
    expect(warnings).toHaveLength(2);
    for (const w of warnings)
      expect(w).toMatch(
        /^netplex: syslog unix \S+no-daemon\.sock: (?:no such socket \(ENOENT\); log lines are dropped until it answers|needs the native module, .*)$/,
      );
  });
});
