// @ts-check
// Checks the structure of packages/*/src: no import circle between the files of a package
// (type-only imports count) and no source file over LINE_LIMIT lines.
// Usage: node scripts/check-structure.mjs [root]   (root defaults to the repository root)
// Exits 0 with one summary line when clean, 1 after printing every problem.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const LINE_LIMIT = 500;

/** Source files allowed over LINE_LIMIT, relative to the root. */
const LONG_FILE_EXEMPT = new Set([
  // The port-spec grammar and its cases are one table.
  'packages/core/src/port-spec.ts',
]);

/** Words after which a `/` starts a regular expression rather than a division. */
const REGEX_AFTER_WORD = new Set([
  'return',
  'typeof',
  'instanceof',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'case',
  'do',
  'else',
  'yield',
  'await',
]);

/** Characters after which a `/` starts a regular expression rather than a division. */
const REGEX_AFTER_CHAR = '(,=:[!&|?{};+-*%<>~^';

/**
 * Rewrites TypeScript source so module specifiers can be matched with regular expressions:
 * comments become whitespace (newlines kept), each string literal and each template literal
 * without substitutions becomes `"N"` where N indexes `literals`, other template text is
 * dropped and each regular expression literal becomes `/r/`.
 * @param {string} src
 * @returns {{ code: string, literals: string[] }}
 */
function scan(src) {
  /** @type {string[]} */
  const literals = [];
  /** @type {string[]} */
  const out = [];
  /** The last characters emitted, to tell a regular expression from a division. */
  let tail = '';
  /** @param {string} s */
  const emit = (s) => {
    out.push(s);
    tail = (tail + s).slice(-40);
  };
  /** @type {number[]} brace depth at which each open `${` returns to its template */
  const templates = [];
  let depth = 0;
  let i = src.startsWith('#!') ? src.indexOf('\n') : 0;
  if (i < 0) i = src.length;

  /**
   * Reads template text from `start` up to the closing backtick or the next `${`.
   * @param {number} start
   * @returns {{ end: number, text: string, closed: boolean }}
   */
  const templateChunk = (start) => {
    let j = start;
    while (j < src.length) {
      if (src[j] === '\\') j += 2;
      else if (src[j] === '`') return { end: j + 1, text: src.slice(start, j), closed: true };
      else if (src[j] === '$' && src[j + 1] === '{') return { end: j + 2, text: '', closed: false };
      else j++;
    }
    return { end: src.length, text: src.slice(start), closed: true };
  };

  /** @returns {boolean} whether a `/` at the current position starts a regular expression */
  const regexAllowed = () => {
    const before = tail.trimEnd();
    if (before === '') return true;
    const word = /[\w$]+$/.exec(before);
    if (word) return REGEX_AFTER_WORD.has(word[0]);
    return REGEX_AFTER_CHAR.includes(before[before.length - 1] ?? '');
  };

  while (i < src.length) {
    const c = src[i];
    const next = src[i + 1];
    if (c === '/' && next === '/') {
      const end = src.indexOf('\n', i);
      i = end < 0 ? src.length : end;
      emit(' ');
    } else if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? src.length : end + 2;
      emit(' ' + src.slice(i, stop).replace(/[^\n]/g, ''));
      i = stop;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      const raw = src.slice(i + 1, Math.min(j, src.length));
      emit(`"${literals.push(raw.replace(/\\(.)/g, '$1')) - 1}"`);
      i = j + 1;
    } else if (c === '`') {
      const chunk = templateChunk(i + 1);
      if (chunk.closed) {
        emit(`"${literals.push(chunk.text) - 1}"`);
      } else {
        emit('`${');
        templates.push(depth);
      }
      i = chunk.end;
    } else if (c === '}' && templates.length > 0 && templates[templates.length - 1] === depth) {
      templates.pop();
      const chunk = templateChunk(i + 1);
      if (chunk.closed) {
        emit('}`');
      } else {
        emit('}${');
        templates.push(depth);
      }
      i = chunk.end;
    } else if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && src[j] !== '\n' && (inClass || src[j] !== '/')) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        j++;
      }
      j++;
      while (j < src.length && /[a-z]/i.test(src[j] ?? '')) j++;
      emit('/r/');
      i = j;
    } else {
      if (c === '{') depth++;
      else if (c === '}') depth--;
      emit(c ?? '');
      i++;
    }
  }
  return { code: out.join(''), literals };
}

/** `import ... from "N"`, `import type ... from "N"`, `export ... from "N"`, `export type ... from "N"`. */
const FROM_RE = /(?<![\w$.])(?:import|export)(?![\w$])[^"`;]*?(?<![\w$])from\s*"(\d+)"/g;
/** `import "N"`. */
const BARE_IMPORT_RE = /(?<![\w$.])import\s*"(\d+)"/g;
/** `import("N")`, also as a type: `import("N").T`. */
const DYNAMIC_IMPORT_RE = /(?<![\w$.])import\s*\(\s*"(\d+)"\s*[,)]/g;

/**
 * Returns the module specifiers of a TypeScript source, in source order of each kind.
 * @param {string} src
 * @returns {string[]}
 */
function moduleSpecifiers(src) {
  const { code, literals } = scan(src);
  /** @type {string[]} */
  const specifiers = [];
  for (const re of [FROM_RE, BARE_IMPORT_RE, DYNAMIC_IMPORT_RE]) {
    for (const match of code.matchAll(re)) specifiers.push(literals[Number(match[1])] ?? '');
  }
  return specifiers;
}

/**
 * Lists the `*.ts` files (not `*.d.ts`) under `dir`, recursively.
 * @param {string} dir
 * @returns {string[]}
 */
function tsFiles(dir) {
  /** @type {string[]} */
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...tsFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

/**
 * Returns the candidate files a relative specifier may name.
 * @param {string} from the importing file
 * @param {string} specifier
 * @returns {string[]}
 */
function candidates(from, specifier) {
  const target = resolve(dirname(from), specifier);
  if (specifier.endsWith('/')) return [join(target, 'index.ts')];
  if (target.endsWith('.js')) return [target.slice(0, -3) + '.ts'];
  if (target.endsWith('.ts')) return [target];
  return [target + '.ts', join(target, 'index.ts')];
}

/**
 * Finds the strongly connected components of a graph (Tarjan's algorithm).
 * @param {string[]} nodes
 * @param {Map<string, string[]>} edges
 * @returns {string[][]}
 */
function stronglyConnected(nodes, edges) {
  /** @type {Map<string, number>} */
  const index = new Map();
  /** @type {Map<string, number>} */
  const low = new Map();
  /** @type {Set<string>} */
  const onStack = new Set();
  /** @type {string[]} */
  const stack = [];
  /** @type {string[][]} */
  const components = [];
  let counter = 0;

  /** @param {string} v */
  const visit = (v) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
      }
    }
    if (low.get(v) === index.get(v)) {
      /** @type {string[]} */
      const component = [];
      let w;
      do {
        w = stack.pop() ?? v;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component.sort());
    }
  };

  for (const v of nodes) if (!index.has(v)) visit(v);
  return components;
}

/**
 * Returns a shortest cycle through a strongly connected component, first node repeated at the end.
 * @param {string[]} component
 * @param {Map<string, string[]>} edges
 * @returns {string[]}
 */
function shortestCycle(component, edges) {
  const members = new Set(component);
  /** @type {string[]} */
  let best = [];
  for (const start of component) {
    /** @type {Map<string, string>} */
    const parent = new Map();
    /** @type {string[]} */
    let frontier = [start];
    /** @type {string | undefined} */
    let closing;
    while (frontier.length > 0 && closing === undefined) {
      /** @type {string[]} */
      const nextFrontier = [];
      for (const v of frontier) {
        for (const w of edges.get(v) ?? []) {
          if (!members.has(w)) continue;
          if (w === start) {
            closing = v;
            break;
          }
          if (!parent.has(w)) {
            parent.set(w, v);
            nextFrontier.push(w);
          }
        }
        if (closing !== undefined) break;
      }
      frontier = nextFrontier;
    }
    if (closing === undefined) continue;
    const path = [start];
    for (let v = closing; v !== start; v = parent.get(v) ?? start) path.splice(1, 0, v);
    path.push(start);
    if (best.length === 0 || path.length < best.length) best = path;
  }
  return best;
}

/**
 * Counts the lines of a text; a final newline does not start a line.
 * @param {string} text
 * @returns {number}
 */
function lineCount(text) {
  if (text === '') return 0;
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

/**
 * Checks `root` and returns the problems found and the number of files checked.
 * @param {string} root
 * @returns {{ files: number, circles: string[], long: string[] }}
 */
function checkStructure(root) {
  const packagesDir = join(root, 'packages');
  /** @type {Map<string, string>} file → its package's src directory */
  const srcOf = new Map();
  for (const entry of readdirSync(packagesDir, { withFileTypes: true })) {
    const src = join(packagesDir, entry.name, 'src');
    if (!entry.isDirectory() || !statSync(src, { throwIfNoEntry: false })?.isDirectory()) continue;
    for (const file of tsFiles(src)) srcOf.set(file, src);
  }
  const files = [...srcOf.keys()].sort();
  /** @param {string} file */
  const rel = (file) => relative(root, file).split(sep).join('/');

  /** @type {Map<string, string[]>} */
  const edges = new Map();
  /** @type {string[]} */
  const long = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const lines = lineCount(text);
    if (lines > LINE_LIMIT && !LONG_FILE_EXEMPT.has(rel(file))) {
      long.push(`file too long: ${rel(file)} has ${lines} lines (limit ${LINE_LIMIT})`);
    }
    /** @type {Set<string>} */
    const targets = new Set();
    for (const specifier of moduleSpecifiers(text)) {
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue;
      const target = candidates(file, specifier).find((c) => srcOf.get(c) === srcOf.get(file));
      if (target !== undefined) targets.add(target);
    }
    edges.set(file, [...targets].sort());
  }

  /** @type {string[]} */
  const circles = [];
  for (const component of stronglyConnected(files, edges)) {
    const only = component[0] ?? '';
    if (component.length === 1 && !(edges.get(only) ?? []).includes(only)) continue;
    const cycle = shortestCycle(component, edges);
    const rest = component.filter((f) => !cycle.includes(f));
    const also = rest.length > 0 ? ` (the same circle also holds ${rest.map(rel).join(', ')})` : '';
    circles.push(`import circle: ${cycle.map(rel).join(' → ')}${also}`);
  }
  circles.sort();
  return { files: files.length, circles, long };
}

/**
 * Pluralises `word` for `n`.
 * @param {number} n
 * @param {string} word
 */
const count = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
if (!statSync(join(root, 'packages'), { throwIfNoEntry: false })?.isDirectory()) {
  console.error(`check-structure: ${root} has no packages directory`);
  process.exit(1);
}
const { files, circles, long } = checkStructure(root);
if (circles.length === 0 && long.length === 0) {
  console.log(`structure: ${count(files, 'file')}, no import circle, none over ${LINE_LIMIT} lines`);
} else {
  for (const problem of [...circles, ...long]) console.error(problem);
  console.error(
    `structure: ${count(files, 'file')}, ${count(circles.length, 'import circle')}, ` +
      `${long.length} over ${LINE_LIMIT} lines`,
  );
  process.exit(1);
}
