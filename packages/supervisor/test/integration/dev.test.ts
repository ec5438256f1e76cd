/**
 * netplex dev as a developer uses it: start it on a copy of the chat example, connect, edit the
 * source, and see the new code answer while the old session is still served.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isAlive } from '../../src/pidfile.js';
import { netplexBin, Proc } from '../helpers/proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const chatSource = join(here, '..', '..', '..', 'examples', 'src', 'samplechat.ts');

/**
 * A copy of the chat example in a package of its own. It lives under test/ so that @netplex/core
 * and zod resolve from the supervisor package's node_modules, as they would in a user's project.
 */
function copyOfChat(): { dir: string; file: string } {
  const root = join(here, '..', 'tmp');
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(join(root, 'dev-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'dev-copy', private: true, type: 'module' }),
  );
  const file = join(dir, 'samplechat.ts');
  copyFileSync(chatSource, file);
  return { dir, file };
}

function edit(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} does not contain ${JSON.stringify(from)}`);
  writeFileSync(file, text.replace(from, to));
}

/** firstLines connects and resolves with the first two lines (JOIN and the welcome), keeping the socket. */
function welcome(port: number): Promise<{ text: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    const timer = setTimeout(
      () => reject(new Error(`no welcome within 10 s (got ${JSON.stringify(text)})`)),
      10_000,
    );
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.split('\r\n').length > 2) {
        clearTimeout(timer);
        resolve({ text, socket });
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

describe('netplex dev', () => {
  it('reloads on save, survives a syntax error, coalesces bursts, and leaves nothing behind on Ctrl-C', async () => {
    const { file } = copyOfChat();
    const dev = new Proc(process.execPath, [netplexBin, 'dev', file, '--port=127.0.0.1:0'], {
      detached: true,
    });
    await dev.until(() => /listening on 127\.0\.0\.1:\d+/.test(dev.stderr), 'netplex dev to listen', 20_000);
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(dev.stderr)![1]);
    // Every process of the tree shows up in the output: as a line's pid, or as a worker the supervisor names.
    const pids = () =>
      new Set(
        [...dev.stderr.matchAll(/\] \w+ \((\d+)\):|"(?:worker|retired)":(\d+)/g)].map((m) =>
          Number(m[1] ?? m[2]),
        ),
      );

    // Output made for a person: no JSON lines.
    expect(dev.stderr).not.toMatch(/^\{"level"/m);

    const old = await welcome(port);
    expect(old.text).toContain('Welcome, you are number 1 to connect.');

    // Save a change; keep connecting meanwhile: not one connection may be refused.
    let refused = 0;
    let connecting = true;
    const prober = (async () => {
      while (connecting) {
        await new Promise<void>((resolve) => {
          const s = net.connect({ port, host: '127.0.0.1' });
          s.on('connect', () => {
            s.destroy();
            resolve();
          });
          s.on('error', () => {
            refused++;
            resolve();
          });
        });
      }
    })();
    const reloads = () => count(dev.stderr, 'reloaded in');
    edit(file, 'Welcome, you are number', 'Hello, you are number');
    await dev.until(() => reloads() === 1, 'the reload after the save', 20_000);
    connecting = false;
    await prober;
    expect(refused).toBe(0);
    expect(dev.stderr).toMatch(/reloaded in \d+ ms/);
    const fresh = await welcome(port);
    expect(fresh.text).toMatch(/Hello, you are number \d+ to connect\./);
    // The session opened before the save is still served (it moved to the new worker). JOIN and LEFT
    // lines of the prober's connections may still be on their way to it: read until the echo comes.
    const answer = new Promise<string>((resolve, reject) => {
      let got = '';
      const timer = setTimeout(
        () => reject(new Error(`no echo of "still here" within 10 s; got ${JSON.stringify(got)}`)),
        10_000,
      );
      const onData = (d: Buffer) => {
        got += d.toString();
        if (!got.includes('still here')) return;
        clearTimeout(timer);
        old.socket.off('data', onData);
        resolve(got);
      };
      old.socket.on('data', onData);
    });
    old.socket.write('still here\r\n');
    expect(await answer).toContain('still here');

    // A syntax error: the running code keeps serving, the error is printed once.
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, `${good}\nexport const broken = ;\n`);
    await dev.until(() => dev.stderr.includes('reload failed'), 'the failed reload', 20_000);
    expect(count(dev.stderr, 'reload failed')).toBe(1);
    expect(dev.stderr).toMatch(/samplechat\.ts:\d+:\d+: ERROR/);
    expect(count(dev.stderr, 'export const broken')).toBeLessThanOrEqual(1);
    const during = await welcome(port);
    expect(during.text).toMatch(/Hello, you are number/);

    // Fixing it brings the new code up, without restarting netplex dev.
    writeFileSync(file, good.replace('Hello, you are number', 'Hi there, you are number'));
    await dev.until(() => reloads() === 2, 'the reload after the fix', 20_000);
    const fixed = await welcome(port);
    expect(fixed.text).toMatch(/Hi there, you are number \d+ to connect\./);

    // A burst of 20 saves within about 100 ms makes one or two reloads, not twenty.
    for (let i = 0; i < 20; i++) {
      writeFileSync(
        file,
        `${good.replace('Hello, you are number', 'Hi there, you are number')}\n// save ${i}\n`,
      );
      await new Promise((r) => setTimeout(r, 5));
    }
    await dev.until(() => reloads() >= 3, 'the reload after the burst', 20_000);
    // Anything coalesced into a second reload has started by now; let it finish before counting.
    const settled = () => count(dev.stderr, 'reloading') === reloads() + count(dev.stderr, 'reload failed');
    await dev.until(settled, 'reloads in progress to finish', 20_000);
    expect(reloads() - 2).toBeGreaterThanOrEqual(1);
    expect(reloads() - 2).toBeLessThanOrEqual(2);

    // Ctrl-C: SIGINT to the foreground process group stops everything cleanly.
    for (const s of [old.socket, fresh.socket, during.socket, fixed.socket]) s.destroy();
    const tree = pids();
    process.kill(-dev.pid, 'SIGINT');
    expect((await dev.waitExit(20_000)).code).toBe(0);
    const deadline = Date.now() + 10_000;
    for (const pid of tree) {
      while (isAlive(pid)) {
        if (Date.now() > deadline) throw new Error(`process ${pid} of the netplex dev tree is still alive`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(tree.size).toBeGreaterThanOrEqual(4);
  }, 120_000);
});
