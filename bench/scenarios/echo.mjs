// @ts-check
/**
 * echo — 64-byte messages echoed back, every byte verified by the C client, at 1 × 1, 100 × 8 and
 * 1000 × 8 (connections × messages in flight on each): netplex's echo.js under the supervisor, a raw
 * node:net echo (the baseline), Perl's Net::Server::Multiplex when installed, and loadgen's C epoll
 * echo (how fast the client can go).
 */
/** @import { Context } from '../lib/context.mjs' */
/** @import { System } from '../lib/throughput.mjs' */
import { join } from 'node:path';
import { startNetplex } from '../lib/netplex.mjs';
import { EXAMPLES, SERVERS } from '../lib/paths.mjs';
import { startC, startNode, startPerl } from '../lib/servers.mjs';
import { throughput } from '../lib/throughput.mjs';

/** @param {Context} ctx */
export async function echo(ctx) {
  /** @type {System[]} */
  const systems = [
    {
      id: 'netplex',
      label: 'netplex echo.js under the supervisor',
      start: () => startNetplex(ctx, join(EXAMPLES, 'dist/echo.js')),
    },
    { id: 'raw', label: 'raw node:net echo', start: () => startNode(ctx, join(SERVERS, 'raw-echo.mjs')) },
  ];
  if (ctx.tools.perl)
    systems.push({ id: 'perl', label: 'Perl Net::Server::Multiplex', start: () => startPerl(ctx, 'echo') });
  systems.push({ id: 'c', label: 'C epoll echo (the client’s headroom)', start: () => startC(ctx) });
  return throughput(
    ctx,
    'echo',
    systems,
    [
      [1, 1],
      [100, 8],
      [1000, 8],
    ],
    { baseline: 'raw' },
  );
}
