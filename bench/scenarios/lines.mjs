// @ts-check
/**
 * lines — a line protocol: 64-byte \n-terminated lines, each answered with the line, at 1 × 1 and
 * 100 × 8: netplex's lines.js (input.lineBuffers), a hand-written node:net line server (the baseline)
 * and Perl's Net::Server::Multiplex regex loop when installed.
 */
/** @import { Context } from '../lib/context.mjs' */
/** @import { System } from '../lib/throughput.mjs' */
import { join } from 'node:path';
import { startNetplex } from '../lib/netplex.mjs';
import { EXAMPLES, SERVERS } from '../lib/paths.mjs';
import { startNode, startPerl } from '../lib/servers.mjs';
import { throughput } from '../lib/throughput.mjs';

/** @param {Context} ctx */
export async function lines(ctx) {
  /** @type {System[]} */
  const systems = [
    {
      id: 'netplex',
      label: 'netplex lines.js (input.lineBuffers)',
      start: () => startNetplex(ctx, join(EXAMPLES, 'dist/lines.js')),
    },
    {
      id: 'raw',
      label: 'hand-written node:net line server',
      start: () => startNode(ctx, join(SERVERS, 'raw-lines.mjs')),
    },
  ];
  if (ctx.tools.perl)
    systems.push({
      id: 'perl',
      label: 'Perl Net::Server::Multiplex regex loop',
      start: () => startPerl(ctx, 'lines'),
    });
  return throughput(
    ctx,
    'lines',
    systems,
    [
      [1, 1],
      [100, 8],
    ],
    { line: true, baseline: 'raw' },
  );
}
