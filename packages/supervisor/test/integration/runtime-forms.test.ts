/**
 * netplex's runtime in its two forms (scripts/bundle.mjs): the bundle, loaded with its code cache
 * (the default), and tsc's modules (`node --conditions=netplex-modules`). Both serve; the worker's
 * core comes from the form asked for; and a worker that served writes the served code cache that the
 * next start loads from (packages/core/src/runtime-loader.ts).
 */
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { cacheFilesOf } from '@netplex/core/runtime-loader';
import { describe, expect, it } from 'vitest';
import { fixture, greet, netplexBin, Proc } from '../helpers/proc.js';

const coreDir = dirname(createRequire(import.meta.url).resolve('@netplex/core/package.json'));
const runtimeFile = join(coreDir, 'dist', 'bundle', 'runtime.cjs');

/** start runs the fixture under netplex with node's flags `node` and waits until it serves. */
async function start(node: string[]): Promise<{ proc: Proc; port: number }> {
  const proc = new Proc(process.execPath, [
    ...node,
    netplexBin,
    'run',
    fixture('runtime-form.mjs'),
    '--port=127.0.0.1:0',
  ]);
  const serving = await proc.waitLog(
    (l) => String(l.msg).includes('serving with worker'),
    'the supervisor to serve',
  );
  return { proc, port: (serving.ports as Array<{ port: number }>)[0]!.port };
}

/** said is what the fixture greets with. */
async function said(port: number): Promise<{ core: string; loads: string[]; pid: number }> {
  const { line, socket } = await greet(port);
  socket.destroy();
  return JSON.parse(line) as { core: string; loads: string[]; pid: number };
}

/** waitFor polls (bounded) for a condition. */
async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the runtime as a bundle (the default)', () => {
  it('serves from dist/bundle, with a code cache, and leaves the served cache after serving', async () => {
    const { served } = cacheFilesOf(runtimeFile);
    rmSync(served, { force: true });
    const { proc, port } = await start([]);
    const first = await said(port);
    expect(first.core).toMatch(/\/core\/dist\/bundle\/index\.js$/);
    expect(first.loads).toEqual(['cache']);
    await waitFor(() => existsSync(served), 'no served code cache from the worker');
    proc.child.kill('SIGTERM');
    expect((await proc.waitExit()).code).toBe(0);

    const again = await start([]);
    expect((await said(again.port)).loads).toEqual(['served-cache']);
    again.proc.child.kill('SIGTERM');
    expect((await again.proc.waitExit()).code).toBe(0);
  });

  it('is required through Node, mapped to the sources, with --enable-source-maps', async () => {
    const { proc, port } = await start(['--enable-source-maps']);
    expect((await said(port)).loads).toEqual(['required']);
    proc.child.kill('SIGTERM');
    expect((await proc.waitExit()).code).toBe(0);
  });
});

describe('the runtime as modules (--conditions=netplex-modules)', () => {
  it("serves from tsc's dist/, loading no bundle", async () => {
    const { proc, port } = await start(['--conditions=netplex-modules']);
    const got = await said(port);
    expect(got.core).toMatch(/\/core\/dist\/index\.js$/);
    expect(got.loads).toEqual([]);
    proc.child.kill('SIGTERM');
    expect((await proc.waitExit()).code).toBe(0);
  });
});
