// @ts-check
/**
 * sockets — what /proc says about a process's descriptors: how many it holds, and the client ports of
 * the TCP connections it serves on a port.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * fdCount is the number of descriptors `pid` holds.
 * @param {number} pid
 * @returns {number}
 */
export const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length;

/**
 * peerPortsOf lists the remote ports of the TCP connections that `pid` holds on local port `port`:
 * on loopback, the client ports of the connections that process serves. Read from the socket
 * inodes of its descriptors and /proc/net/tcp{,6}.
 * @param {number} pid
 * @param {number} port
 * @returns {Set<number>}
 */
export function peerPortsOf(pid, port) {
  /** @type {Set<string>} */
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {}
  }
  /** @type {Set<number>} */
  const ports = new Set();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const row of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      const f = row.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9])) continue;
      const local = Number.parseInt(f[1].split(':')[1], 16);
      if (local === port) ports.add(Number.parseInt(f[2].split(':')[1], 16));
    }
  }
  return ports;
}
