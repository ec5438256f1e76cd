// @ts-check
/** soak-markdown — the soak's section of bench/results.md: its counts and the memory over time. */

/** @param {number | null | undefined} kb */
const mb = (kb) => (kb === null || kb === undefined ? '–' : (kb / 1024).toFixed(1));
/** @param {number | null | undefined} x */
const int = (x) => (x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));

/**
 * soakMarkdown renders the soak's results (bench/scenarios/soak.mjs) as markdown lines.
 * @param {any} s
 * @returns {string[]}
 */
export function soakMarkdown(s) {
  const L = [
    '',
    `## Soak: the chat example for ${s.minutes} min, reloaded every 10 s, its worker killed every minute`,
    '',
  ];
  if (s.error) return [...L, `Failed: ${s.error}`];
  const c = s.client;
  const l = s.load;
  L.push(
    `Load: ${l.talkers} long-lived connections sending ${l.lines_per_s} chat lines/s each, ${l.idle} idle connections, ${l.churn_per_s} short connections/s (each: welcome, one line, its ack, close); every line is broadcast to the whole room (seed ${l.seed}).`,
    '',
    '| figure | value |',
    '|---|---|',
    `| verdict | ${s.ok ? 'ok' : `**FAILED**: ${s.failures.join('; ')}`} |`,
    `| lost bytes (connections not on a killed worker) | ${int(s.lost_bytes)} |`,
    `| bytes sent / came back as sent | ${int(c.sent_bytes)} / ${int(c.echoed_bytes)} |`,
    `| own lines changed or out of order, wrong number, wrong ack | ${c.mismatches}, ${c.id_mismatches}, ${c.ack_mismatches} |`,
    `| broadcast lines heard / missed / repeated | ${int(c.heard)} / ${c.gaps} / ${c.repeats} |`,
    `| reloads sent / done | ${s.reloads_sent} / ${s.reloads_done} |`,
    `| kills / restarts (restart ms) | ${s.kills.length} / ${s.restarts} (${s.kills.map((/** @type {any} */ k) => k.restart_ms ?? '–').join(', ')}) |`,
    `| connections killed with the worker (their unanswered bytes) | ${s.killed_with_worker.connections} (${int(s.killed_with_worker.unanswered_bytes)}) ${JSON.stringify(s.killed_with_worker.by_how)} |`,
    `| connections that ended otherwise (of them within 5 s of a kill) | ${s.ended_otherwise.connections} (${s.ended_otherwise.near_a_kill}) ${JSON.stringify(s.ended_otherwise.by_how)} |`,
    `| refused / reset, all | ${s.refused} / ${s.reset} |`,
    `| short connections opened / done / slow (> 10 s) | ${int(c.churn.opened)} / ${int(c.churn.ok)} / ${c.churn.slow} |`,
    `| own line round trip p50 / p99 / max ms | ${c.rtt_p50_ms} / ${c.rtt_p99_ms} / ${c.rtt_max_ms} |`,
    `| supervisor RSS MB first / last / max | ${mb(s.supervisor_rss_kb.first)} / ${mb(s.supervisor_rss_kb.last)} / ${mb(s.supervisor_rss_kb.max)} |`,
    `| supervisor RSS bound | at most ${mb(s.rss_bound.kb)} MB above ${mb(s.rss_bound.base_kb)} MB (at ${s.rss_bound.base_t} s); max since ${mb(s.rss_bound.max_after_kb)} MB |`,
    `| supervisor descriptors before the load / after it | ${s.fds.before} / ${s.fds.after} (first / last / max during it: ${s.supervisor_fds.first} / ${s.supervisor_fds.last} / ${s.supervisor_fds.max}) |`,
    `| serving worker RSS MB first / last / max | ${mb(s.worker_rss_kb.first)} / ${mb(s.worker_rss_kb.last)} / ${mb(s.worker_rss_kb.max)} |`,
    '',
    '| t s | supervisor RSS MB | supervisor fds | worker pid | generation | worker RSS MB | worker connections | reloads | restarts |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const x of s.samples)
    L.push(
      `| ${x.t < 0 ? 'before' : x.final ? 'after' : x.t} | ${mb(x.sup_rss_kb)} | ${x.sup_fds} | ${x.worker_pid ?? '–'} | ${x.generation ?? '–'} | ${mb(x.worker_rss_kb)} | ${x.connections ?? '–'} | ${x.reloads} | ${x.restarts} |`,
    );
  L.push(
    '',
    'A kill stops the serving worker (SIGSTOP), reads the client ports of the connections it holds from /proc, then sends SIGKILL: a connection that then ends is counted as killed with the worker, and its unanswered bytes are not lost bytes. "After" is sampled once the load has closed and no worker is draining.',
  );
  return L;
}
