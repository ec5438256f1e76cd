#!/usr/bin/env node
// @ts-check
/**
 * soak-client — the soak's mixed load on the chat example, run as its own process on the load CPU:
 *
 *   node bench/lib/soak-client.mjs PORT SECONDS TALKERS IDLE CHURN_PER_S LINES_PER_S SEED
 *
 * TALKERS long-lived connections each send LINES_PER_S chat lines a second (at most 8 unanswered),
 * IDLE connections never send and only hear the room, and CHURN_PER_S short connections a second
 * each wait for their welcome, send one line, wait for it and its ack, and close. A long-lived
 * connection that ends unexpectedly is replaced. After SECONDS the load stops, waits (up to 15 s)
 * for every line still on its way, closes everything and prints one JSON report line; every 10 s
 * it prints a {"progress":...} line. Every check is in soak-conn.mjs.
 */
/** @import { ConnEnd, ConnKind } from './soak-conn.mjs' */
import { sleep } from './clock.mjs';
import { ChatConn, newTally } from './soak-conn.mjs';

const [port, seconds, talkers, idle, churnPerS, linesPerS, seed] = process.argv.slice(2).map(Number);
const tally = newTally();
/** @type {ConnEnd[]} */
const ends = [];
/** @type {Set<ChatConn>} */
const open = new Set();
const churn = { started: 0, ok: 0, slow: 0 };
const opened = { talker: 0, idle: 0, churn: 0 };
let stalled = 0;
let stopping = false;

/** mulberry32: the payloads, from SEED. */
let rng = seed >>> 0;
function random() {
  rng = (rng + 0x6d2b79f5) >>> 0;
  let t = rng;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const payload = () => {
  let s = '';
  for (let n = 16 + Math.floor(random() * 48); n > 0; n--) s += ALNUM[Math.floor(random() * ALNUM.length)];
  return s;
};

/** @type {WeakMap<ChatConn, number>} when each talker sends next */
const due = new WeakMap();

/**
 * connect opens one connection of `kind`; a long-lived one that ends unexpectedly is replaced.
 * @param {ConnKind} kind
 */
function connect(kind) {
  const c = new ChatConn(kind, `${kind[0]}${++opened[kind]}`, port, tally, {
    welcome: (c) => {
      if (c.kind === 'talker') due.set(c, Date.now() + random() * (1000 / linesPerS));
      if (c.kind === 'churn') c.send(payload());
    },
    acked: (c) => {
      if (c.kind !== 'churn') return;
      churn.ok++;
      c.close();
    },
    end: (c, e) => {
      open.delete(c);
      if (e) ends.push(e);
      if (e && !stopping && c.kind !== 'churn') setTimeout(() => stopping || connect(c.kind), 200);
    },
  });
  open.add(c);
  if (kind === 'churn') {
    churn.started++;
    setTimeout(() => {
      if (c.ended || c.closing) return;
      churn.slow++;
      c.close();
    }, 10_000).unref();
  }
}

for (let i = 0; i < talkers; i++) connect('talker');
for (let i = 0; i < idle; i++) connect('idle');

const began = Date.now();
const tick = setInterval(() => {
  const now = Date.now();
  for (const c of open) {
    const at = due.get(c);
    if (c.kind !== 'talker' || at === undefined || at > now || c.ended || c.closing) continue;
    if (c.pending.length < 8) c.send(payload());
    else stalled++;
    due.set(c, at + 1000 / linesPerS);
  }
}, 10);
const churnTimer = setInterval(() => connect('churn'), 1000 / churnPerS);

/** @param {ConnKind} kind */
const count = (kind) => [...open].filter((c) => c.kind === kind && !c.ended).length;
const progress = setInterval(() => {
  const t = Math.round((Date.now() - began) / 1000);
  const p = { t, talkers: count('talker'), idle: count('idle'), churn_ok: churn.ok, ends: ends.length };
  process.stdout.write(
    `${JSON.stringify({ progress: { ...p, sent: tally.sentBytes, heard: tally.heard } })}\n`,
  );
}, 10_000);

await sleep(seconds * 1000);
stopping = true;
clearInterval(tick);
clearInterval(churnTimer);
// Everything on its way is given 15 s to come back.
const drainBy = Date.now() + 15_000;
const busy = () =>
  [...open].some((c) => !c.ended && (c.pending.length || c.acks.length || c.kind === 'churn'));
while (busy() && Date.now() < drainBy) await sleep(50);
const alive = [...open].filter((c) => !c.ended);
const lostAlive = alive.reduce((n, c) => n + c.pending.reduce((m, p) => m + p.text.length + 1, 0), 0);
const aliveAtEnd = { talker: count('talker'), idle: count('idle') };
for (const c of alive) c.close();
const closeBy = Date.now() + 5000;
while ([...open].some((c) => !c.ended) && Date.now() < closeBy) await sleep(50);
clearInterval(progress);
const rtt = tally.rttMs.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({
    report: {
      seconds,
      opened,
      alive_at_end: aliveAtEnd,
      churn: { ...churn, opened: churn.started },
      stalled,
      lost_on_live: lostAlive,
      sent_bytes: tally.sentBytes,
      echoed_bytes: tally.echoedBytes,
      mismatches: tally.mismatches,
      id_mismatches: tally.idMismatches,
      ack_mismatches: tally.ackMismatches,
      heard: tally.heard,
      gaps: tally.gaps,
      repeats: tally.repeats,
      joins: tally.joins,
      other: tally.other,
      rtt_p50_ms: rtt[Math.floor(rtt.length / 2)] ?? null,
      rtt_p99_ms: rtt[Math.floor(rtt.length * 0.99)] ?? null,
      rtt_max_ms: rtt.at(-1) ?? null,
      ends,
    },
  })}\n`,
);
process.exit(0);
