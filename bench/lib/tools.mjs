// @ts-check
/** tools — which optional baselines this machine can run: Perl's Net::Server::Multiplex, and wrk. */
import { spawnSync } from 'node:child_process';

/**
 * @typedef {object} Tools
 * @property {boolean} perl  Net::Server::Multiplex and IO::Multiplex are installed
 * @property {boolean} wrk  wrk is installed
 * @property {string[]} skipped  what is left out for want of them, and how to install it
 */

/** @returns {Tools} */
export function detectTools() {
  const perl =
    spawnSync('perl', ['-MNet::Server::Multiplex', '-MIO::Multiplex', '-e', '1'], { stdio: 'ignore' })
      .status === 0;
  const wrk = spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
  /** @type {string[]} */
  const skipped = [];
  if (!perl)
    skipped.push(
      'Perl baselines: Net::Server::Multiplex or IO::Multiplex is missing (apt-get install libnet-server-perl libio-multiplex-perl)',
    );
  if (!wrk) skipped.push('HTTP scenario: wrk is missing (apt-get install wrk)');
  return { perl, wrk, skipped };
}
