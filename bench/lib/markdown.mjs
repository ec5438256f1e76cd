// @ts-check
/** markdown — bench/results.md: the run's header, then one table per scenario, then the failures. */
/** @import { Results } from './results.mjs' */
/** @import { Summary } from './stats.mjs' */
import { fmt1, fmt2, fmtInt, range } from './format.mjs';
import { IDLE_BURSTS } from './idle.mjs';
import { migrateMarkdown } from './migrate-markdown.mjs';
import { soakMarkdown } from './soak-markdown.mjs';

/**
 * markdown renders the results as bench/results.md.
 * @param {Results} r
 * @returns {string}
 */
export function markdown(r) {
  /** @type {string[]} */
  const L = [];
  const m = r.machine;
  L.push('# netplex benchmarks', '');
  L.push(
    `${r.date.slice(0, 10)} · ${m.cores} cores (${m.cpu}) · ${m.memory_gb} GB · Node ${m.node} · Linux ${m.kernel} · ${r.mode} run`,
  );
  L.push('');
  L.push(
    `Server pinned to CPU 0, load to CPU 1: ${m.pinned ? 'yes' : 'no (taskset missing)'}. ${r.config.rounds} round(s), systems alternating; each cell is the median (min–max). Ratios pair each round with the baseline's same round. Regenerate with \`pnpm bench\`.`,
  );
  for (const x of r.reran ?? [])
    if (x.scenario === 'soak')
      L.push(
        '',
        `soak: \`pnpm bench --soak=${r.scenarios.soak?.minutes}\` on ${x.date.slice(0, 10)} at ${x.date.slice(11, 16)} UTC, on its own (a full run does not run it).`,
      );
    else
      L.push(
        '',
        `${x.scenario}: run again on its own (\`pnpm bench --only=${x.scenario}\`) on ${x.date.slice(0, 10)} at ${x.date.slice(11, 16)} UTC; the other scenarios are from the full run above.`,
      );
  for (const s of r.skipped) L.push('', `Skipped: ${s}`);
  const sc = r.scenarios;

  for (const [key, title] of [
    ['echo', 'Echo, 64-byte messages (bench/loadgen.c, every byte verified)'],
    ['lines', 'Line protocol, 64-byte lines, each answered'],
  ]) {
    const s = sc[key];
    if (!s) continue;
    L.push('', `## ${title}`, '');
    if (s.error) {
      L.push(`Failed: ${s.error}`);
      continue;
    }
    L.push('| load | system | msgs/s | p50 µs | p99 µs | vs raw node | vs Perl | client CPU % | verified |');
    L.push('|---|---|---|---|---|---|---|---|---|');
    for (const [point, bySys] of Object.entries(s.points)) {
      for (const { id, label } of s.systems) {
        const v = bySys[id];
        if (!v) continue;
        L.push(
          `| ${point.replace('x', ' × ')} | ${label} | ${range(v.msgs_per_s, fmtInt)} | ${range(v.p50_us, fmt1)} | ${range(v.p99_us, fmt1)} | ${id === s.baseline ? '1' : range(v.ratio_vs_baseline, fmt2)} | ${id === 'perl' ? '1' : range(v.ratio_vs_perl, fmt2)} | ${fmt1(v.client_cpu_pct?.median)} | ${v.verified ? 'yes' : '**NO**'} |`,
        );
      }
    }
  }

  const h = sc.http;
  if (h) {
    L.push('', '## HTTP/1.1 keep-alive, fixed small answer (wrk -t1 -c100)', '');
    if (h.error || h.skipped) L.push(h.error ? `Failed: ${h.error}` : `Skipped: ${h.skipped}`);
    else {
      L.push(
        '| system | requests/s | p50 µs | p99 µs | vs node:http | errors |',
        '|---|---|---|---|---|---|',
      );
      for (const { id, label } of h.systems) {
        const v = h.results[id];
        if (v)
          L.push(
            `| ${label} | ${range(v.requests_per_s, fmtInt)} | ${range(v.p50_us, fmt1)} | ${range(v.p99_us, fmt1)} | ${id === h.baseline ? '1' : range(v.ratio_vs_baseline, fmt2)} | ${v.errors} |`,
          );
      }
      if (h.results.netplex?.ratio_vs_raw)
        L.push('', `netplex vs the raw node:net responder: ${range(h.results.netplex.ratio_vs_raw, fmt2)}`);
    }
  }

  const mem = sc.memory;
  if (mem) {
    L.push(
      '',
      `## Idle memory, ${mem.conns?.toLocaleString('en-US')} idle connections (VmRSS of the serving process)`,
      '',
    );
    if (mem.error) L.push(`Failed: ${mem.error}`);
    else {
      L.push(
        `| system | KB per connection | vs raw node | time to accept all, s (fresh process) | vs raw | burst ${mem.bursts ?? IDLE_BURSTS} on the same process, s | vs raw | all accepted |`,
        '|---|---|---|---|---|---|---|---|',
      );
      /**
       * @param {string} id
       * @param {Summary | null | undefined} v
       */
      const base = (id, v) => (id === mem.baseline ? '1' : range(v, fmt2));
      for (const { id, label } of mem.systems) {
        const v = mem.results[id];
        if (v)
          L.push(
            `| ${label} | ${range(v.kb_per_conn, fmt2)} | ${base(id, v.ratio_vs_baseline)} | ${range(v.accept_s, fmt2)} | ${base(id, v.accept_ratio_vs_baseline)} | ${v.accept_warm_s ? range(v.accept_warm_s, fmt2) : '–'} | ${v.accept_warm_s ? base(id, v.accept_warm_ratio_vs_baseline) : '–'} | ${v.all_accepted ? 'yes' : '**NO**'} |`,
          );
      }
      L.push(
        '',
        `Each round starts a fresh server and opens the connections ${mem.bursts ?? IDLE_BURSTS} times, each burst closed before the next; memory is measured in the first. A fresh process's first burst also pays for compiling its code and growing its heap, which the last burst no longer does.`,
      );
    }
  }

  const rel = sc.reload;
  if (rel) {
    L.push('', `## Reload under load: ${rel.load}, ${rel.reloads} reloads ${rel.every_s} s apart`, '');
    if (rel.error) L.push(`Failed: ${rel.error}`);
    else {
      L.push(
        '| reload kind | refused | reset | failed | new ok | persistent alive | on old code | bytes lost | longest stall ms | reload p50 ms | reload p99 ms | reloads seen |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
      );
      for (const v of Object.values(rel.kinds)) {
        if (v.error) {
          L.push(`| ${v.label} | failed to run: ${v.error.split('\n')[0]} |||||||||||`);
          continue;
        }
        L.push(
          `| ${v.label} | ${v.refused} | ${v.reset} | ${v.failed} | ${v.new_ok}/${v.new_started} | ${v.persistent_alive}/${v.persistent} | ${v.persistent_on_old_code} | ${fmtInt(v.bytes_lost)} | ${fmt1(v.longest_stall_ms)} | ${fmt1(v.reload_ms.p50)} | ${fmt1(v.reload_ms.p99)} | ${v.reloads_observed}/${v.reloads} |`,
        );
      }
      L.push(
        '',
        'Reload latency is signal (or save) to the first new connection served by a process not seen before it. "On old code" counts persistent connections alive at the end whose greeting came from a process that has since been replaced. With netplex\'s default reload_mode migrate those connections have in fact moved to the new worker (the greeting is not sent again); with reload_mode drain they stay on the retired worker for drain_timeout.',
      );
      if (rel.pm2?.skipped) L.push('', `No PM2 rows: ${rel.pm2.skipped}.`);
      else if (rel.pm2)
        L.push(
          '',
          `PM2 ${rel.pm2.version} (installed for the bench only, in bench/build/pm2) runs the same raw node:net echo server; a reload is the \`pm2 reload\` command, its latency counted from when the command is issued.`,
        );
    }
  }

  if (sc.migrate) L.push(...migrateMarkdown(sc.migrate));

  const st = sc.startup;
  if (st) {
    L.push('', '## Startup: command to first accepted connection (an echoed line)', '');
    if (st.error) L.push(`Failed: ${st.error}`);
    else {
      L.push('| system | ms | vs raw node |', '|---|---|---|');
      for (const { id, label } of st.systems) {
        const v = st.results[id];
        if (v)
          L.push(
            `| ${label} | ${range(v.ms, fmt1)} | ${(st.baselines ?? [st.baseline]).includes(id) ? '1' : range(v.ratio_vs_baseline, fmt2)} |`,
          );
      }
      L.push(
        '',
        "Unless a row says both cores, the server runs on CPU 0 only, so netplex's supervisor and its first worker (two Node processes) load one after the other; a row on both cores compares with raw node on both cores. The rows for the runtime as modules and the bundle without code cache are the start-up levers taken away one at a time, in the same run (docs/design/start-up.md). Every system was started once, untimed and kept running 2 s, before the timed rounds: the code cache a first start leaves is in place.",
      );
    }
  }
  if (sc.soak) L.push(...soakMarkdown(sc.soak));
  const failures = r.failures ?? [];
  if (failures.length) L.push('', '## Failures', '', ...failures.map((f) => `- ${f}`));
  return `${L.join('\n')}\n`;
}
