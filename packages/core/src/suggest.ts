/**
 * suggest — "did you mean …?" for option keys.
 *
 * Distances are optimal string alignment (Levenshtein plus adjacent transpositions), so `prot`
 * is one edit from `port`. Keys are compared lower-cased with `-` read as `_`, so `Log-File`
 * finds `log_file`.
 */

/** editDistance is the optimal string alignment distance between two strings. */
export function editDistance(a: string, b: string): number {
  const s = Array.from(a);
  const t = Array.from(b);
  // Three rolling rows: the transposition step looks two rows back.
  let before = new Array<number>(t.length + 1).fill(0);
  let previous = Array.from({ length: t.length + 1 }, (_, j) => j);
  let current = new Array<number>(t.length + 1).fill(0);
  for (let i = 1; i <= s.length; i++) {
    current[0] = i;
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) {
        d = Math.min(d, before[j - 2]! + 1);
      }
      current[j] = d;
    }
    [before, previous, current] = [previous, current, before];
  }
  return previous[t.length]!;
}

function normalize(key: string): string {
  return key.toLowerCase().replaceAll('-', '_');
}

/**
 * suggestKey returns the known key closest to `key`, or undefined when none is close enough to be
 * a likely typo: at most one edit for keys up to five characters, then one more per three.
 * Ties go to the key listed first in `known`.
 */
export function suggestKey(key: string, known: Iterable<string>): string | undefined {
  const wanted = normalize(key);
  if (wanted === '') return undefined;
  const limit = Math.max(1, Math.floor(Array.from(wanted).length / 3));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = editDistance(wanted, normalize(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
