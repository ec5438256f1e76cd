/**
 * idle_timeout across a migrating reload, as a user runs it: real supervisor and workers, real
 * signals, a real connection on loopback. The time a connection has been without input moves with
 * it: it is closed by the new worker when its limit, counted from its last input, passes.
 */
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ask, fixture, Proc, tempDir } from '../helpers/proc.js';

/** start runs the idle fixture under the supervisor with `conf` and waits until it serves. */
async function start(conf: string, dir: string): Promise<{ proc: Proc; port: number }> {
  const proc = new Proc(process.execPath, [
    '--import',
    'tsx',
    fixture('idle.ts'),
    '--conf_file',
    conf,
    `--pid_file=${join(dir, 'server.pid')}`,
  ]);
  const serving = await proc.waitLog(
    (l) => String(l.msg).includes('serving with worker'),
    'the supervisor to serve',
  );
  return { proc, port: (serving.ports as Array<{ port: number }>)[0]!.port };
}

/** Connection is one client connection with what it received and when it closed. */
interface Connection {
  socket: net.Socket;
  text: () => string;
  closed: Promise<number>;
}

/** open connects and waits for the greeting. */
async function open(port: number): Promise<Connection> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no greeting within 10 s (got ${JSON.stringify(text)})`)),
      10_000,
    );
    socket.on('data', () => {
      if (text.includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    socket.once('error', reject);
  });
  return { socket, text: () => text, closed };
}

/** arrival resolves with when (the new worker's log time) a migrated connection was taken. */
async function arrival(proc: Proc): Promise<number> {
  const line = await proc.waitLog((l) => l.msg === 'thawed', 'the new worker to take the connection', 30_000);
  return Number(line.time);
}

/** closedWithin waits for a connection to close, failing after `ms`. */
function closedWithin(c: Connection, ms: number): Promise<number> {
  return Promise.race([
    c.closed,
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`still open after ${ms} ms; received ${JSON.stringify(c.text())}`)),
        ms,
      ),
    ),
  ]);
}

describe('idle_timeout across a migrating reload', () => {
  it('keeps the idle time a connection had: the new worker closes it when the limit from its last input passes', async () => {
    const dir = tempDir();
    const conf = join(dir, 'server.conf');
    writeFileSync(conf, 'port 127.0.0.1:0\nidle_timeout 2\n');
    const { proc, port } = await start(conf, dir);
    const c = await open(port);
    const oldPid = /^hello (\d+)\n/.exec(c.text())![1];
    // Taken before the input is sent: the server's idle clock starts after this.
    const lastInput = Date.now();
    expect(await ask(c.socket, 'ping')).toBe(`${oldPid} ping`);
    // Idle for 1.5 s of its 2 s, then the reload moves it.
    await new Promise((r) => setTimeout(r, 1500));
    const arrived = arrival(proc);
    const done = await proc.hup('the reload');
    expect(done).toMatchObject({ mode: 'migrate', migrated: 1, failed: 0 });
    const closedAt = await closedWithin(c, 10_000);
    // Closed by the new worker, about 2 s after its last input: not 2 s after it arrived.
    const bye = /idle bye from (\d+)\n$/.exec(c.text());
    expect(bye, c.text()).not.toBeNull();
    expect(bye![1]).not.toBe(oldPid);
    expect(closedAt - lastInput).toBeGreaterThanOrEqual(1990);
    expect(closedAt).toBeLessThan(Math.max(await arrived, lastInput + 2000) + 700);
  });

  it('applies a changed idle_timeout to a migrated connection, with the idle time it had kept', async () => {
    const dir = tempDir();
    const conf = join(dir, 'server.conf');
    writeFileSync(conf, 'port 127.0.0.1:0\nidle_timeout 5\n');
    const { proc, port } = await start(conf, dir);
    const c = await open(port);
    const lastInput = Date.now();
    expect(await ask(c.socket, 'ping')).toMatch(/^\d+ ping$/);
    await new Promise((r) => setTimeout(r, 1000));
    writeFileSync(conf, 'port 127.0.0.1:0\nidle_timeout 2.5\n');
    const arrived = arrival(proc);
    const done = await proc.hup('the reload');
    expect(done).toMatchObject({ mode: 'migrate', migrated: 1, failed: 0 });
    const closedAt = await closedWithin(c, 10_000);
    expect(c.text()).toMatch(/idle bye from \d+\n$/);
    // 2.5 s from its last input: not 5 s, nor 2.5 s from its arrival.
    expect(closedAt - lastInput).toBeGreaterThanOrEqual(2490);
    expect(closedAt).toBeLessThan(Math.max(await arrived, lastInput + 2500) + 700);
  });

  it('closes on arrival, goodbye first, a migrated connection already idle for longer than the new idle_timeout', async () => {
    const dir = tempDir();
    const conf = join(dir, 'server.conf');
    writeFileSync(conf, 'port 127.0.0.1:0\nidle_timeout 10\n');
    const { proc, port } = await start(conf, dir);
    const c = await open(port);
    const oldPid = /^hello (\d+)\n/.exec(c.text())![1];
    await new Promise((r) => setTimeout(r, 800));
    writeFileSync(conf, 'port 127.0.0.1:0\nidle_timeout 0.5\n');
    const arrived = arrival(proc);
    const done = await proc.hup('the reload');
    expect(done).toMatchObject({ mode: 'migrate', migrated: 1, failed: 0 });
    const closedAt = await closedWithin(c, 10_000);
    expect(closedAt).toBeLessThan((await arrived) + 700);
    // The goodbye the new worker wrote came before the close, and nothing of the old worker's after.
    const bye = /^hello \d+\nidle bye from (\d+)\n$/.exec(c.text());
    expect(bye, c.text()).not.toBeNull();
    expect(bye![1]).not.toBe(oldPid);
  });
});
