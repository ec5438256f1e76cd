/**
 * A unixdgram port under the supervisor: the worker binds it through the native module (the
 * supervisor holds no datagram socket, as for udp), answers a test socket's datagrams at the path
 * it bound, the next worker takes the path over at a reload, and the final stop unlinks it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadUnix, READABLE, unixUnavailable } from '@netplex/unix';
import { describe, expect, it, onTestFinished } from 'vitest';
import { fixture, Proc, tempDir } from '../helpers/proc.js';

const unix = loadUnix();
if (!unix) {
  const reason = `a unixdgram port under the supervisor skipped: the native module is not available (${unixUnavailable()})`;
  if (process.env.CI) throw new Error(`${reason}; CI builds it`);
  console.warn(reason);
}

describe.runIf(unix)('a unixdgram port under the supervisor', () => {
  it('answers datagrams before and after a reload, and is unlinked at the stop', async () => {
    const u = unix!;
    const dir = tempDir();
    const path = join(dir, 'echo.sock');
    const proc = new Proc(process.execPath, [
      '--import',
      'tsx',
      fixture('echo.ts'),
      `--port=${path}|unixdgram`,
    ]);
    await proc.waitLog((l) => String(l.msg).includes('serving with worker'), 'the supervisor to serve');

    const fd = u.bindDatagram(join(dir, 'client.sock'));
    expect(fd).toBeGreaterThanOrEqual(0);
    const replies: string[] = [];
    const buffer = Buffer.alloc(4096);
    let wake = () => {};
    const watcher = u.watch(fd, READABLE, () => {
      for (let r = u.receive(fd, buffer); typeof r !== 'number'; r = u.receive(fd, buffer))
        replies.push(buffer.subarray(0, r.bytes).toString());
      wake();
    });
    onTestFinished(() => {
      watcher.close();
      u.close(fd);
    });
    const ask = async (text: string) => {
      const before = replies.length;
      expect(u.sendTo(fd, path, Buffer.from(text))).toBe(text.length);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no echo of ${text} within 10 s; got ${JSON.stringify(replies)}`)),
          10_000,
        );
        wake = () => {
          if (replies.length === before) return;
          clearTimeout(timer);
          resolve();
        };
      });
      return replies.at(-1);
    };

    expect(await ask('before')).toBe('before');
    const reloaded = await proc.hup('the reload');
    expect(String(reloaded.msg)).toMatch(/^reloaded in/);
    expect(await ask('after')).toBe('after');

    proc.child.kill('SIGTERM');
    expect((await proc.waitExit()).code).toBe(0);
    expect(existsSync(path)).toBe(false);
  });
});
