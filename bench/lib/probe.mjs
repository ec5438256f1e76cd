// @ts-check
/** probe — asking a server whether it answers: one echoed line, or two HTTP requests. */
/** @import { ChildProcess } from 'node:child_process' */
import http from 'node:http';
import net from 'node:net';
import { sleep } from './clock.mjs';

/**
 * echoOnce connects, reads `header` bytes if asked, sends "x\n" and waits for it back: proof that
 * the application (not just the kernel's backlog) serves the port. A line is answered by echo and
 * line servers alike.
 * @param {number} port
 * @param {number} [header]
 * @param {number} [ms]
 * @returns {Promise<boolean>}
 */
export function echoOnce(port, header = 0, ms = 2000) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let got = 0;
    const timer = setTimeout(() => finish(false), ms);
    /** @param {boolean} ok */
    const finish = (ok) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    s.on('connect', () => s.write('x\n'));
    s.on('data', (d) => {
      got += d.length;
      if (got >= header + 2) finish(true);
    });
    s.on('error', () => finish(false));
    s.on('close', () => finish(false));
  });
}

/**
 * waitServing polls with echoOnce until the server answers (rejects if `child` exits first, or
 * after `ms`).
 * @param {number} port
 * @param {(ChildProcess & { tail?: string[] }) | undefined} child
 * @param {string} what
 * @param {number} [header]
 * @param {number} [ms]
 */
export async function waitServing(port, child, what, header = 0, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited:\n${child.tail?.join('\n')}`);
    if (await echoOnce(port, header, 500)) return;
    await sleep(20);
  }
  throw new Error(`${what} did not serve port ${port} within ${ms} ms`);
}

/**
 * httpGetTwice sends two GET / on one keep-alive connection: the answer and keep-alive both work.
 * @param {number} port
 * @returns {Promise<{ status: number | undefined, body: string }[]>}
 */
export function httpGetTwice(port) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  /** @returns {Promise<{ status: number | undefined, body: string }>} */
  const get = () =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 3000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  return get()
    .then((a) => get().then((b) => [a, b]))
    .finally(() => agent.destroy());
}
