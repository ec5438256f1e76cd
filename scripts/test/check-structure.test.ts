import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../check-structure.mjs', import.meta.url));

const roots: string[] = [];

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

/** Writes `files` (paths relative to the root) into a new temporary root and returns it. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'check-structure-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** Runs the script on `root` as a child process. */
function run(root: string) {
  const result = spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
  return {
    status: result.status,
    stdout: result.stdout.split('\n').filter(Boolean),
    stderr: result.stderr.split('\n').filter(Boolean),
  };
}

/** A source text of exactly `n` lines. */
const lines = (n: number): string =>
  Array.from({ length: n }, (_, i) => `export const v${i} = ${i};\n`).join('');

describe('scripts/check-structure.mjs', () => {
  it('passes a tree without circles or long files', () => {
    const root = tree({
      'packages/x/src/a.ts': [
        "import { readFileSync } from 'node:fs';",
        "import type { B } from './b.js';",
        "import { c } from './c/index.js';",
        "import '@netplex/core';",
        "import { y } from '../../y/src/y.js';",
        'export const a: B = c + y + String(readFileSync);',
      ].join('\n'),
      'packages/x/src/b.ts': "import { c } from './c';\nexport type B = typeof c;\n",
      'packages/x/src/c/index.ts': 'export const c = 1;\n',
      'packages/x/src/ok.ts': lines(500),
      'packages/x/src/types.d.ts': "import './a.js';\n",
      // A relative import that leaves the package is not an edge, so this is not a circle.
      'packages/y/src/y.ts': "import { a } from '../../x/src/a.js';\nexport const y = a;\n",
    });
    const result = run(root);
    expect(result).toEqual({
      status: 0,
      stdout: ['structure: 5 files, no import circle, none over 500 lines'],
      stderr: [],
    });
  });

  it('reports a two-file circle made by a type-only import', () => {
    const root = tree({
      'packages/x/src/a.ts': "import type { B } from './b.js';\nexport type A = { b: B };\n",
      'packages/x/src/b.ts': "import { type A } from './a.js';\nexport type B = A[];\n",
      'packages/x/src/c.ts': "import type { A } from './a.js';\nexport type C = A;\n",
    });
    const result = run(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toEqual([
      'import circle: packages/x/src/a.ts → packages/x/src/b.ts → packages/x/src/a.ts',
      'structure: 3 files, 1 import circle, 0 over 500 lines',
    ]);
  });

  it('reports a circle made by a multi-line export-from', () => {
    const root = tree({
      'packages/x/src/a.ts': ['export {', '  b,', '  type B,', "} from './lib/b.js';", ''].join('\n'),
      'packages/x/src/lib/b.ts':
        "import { a } from '../a';\nexport const b = 1;\nexport type B = typeof a;\n",
    });
    const result = run(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      'import circle: packages/x/src/a.ts → packages/x/src/lib/b.ts → packages/x/src/a.ts',
    );
  });

  it('reports a file that imports itself', () => {
    const root = tree({ 'packages/x/src/a.ts': "export * from './a.ts';\nexport const a = 1;\n" });
    const result = run(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('import circle: packages/x/src/a.ts → packages/x/src/a.ts');
  });

  it('ignores imports that appear only in comments', () => {
    const root = tree({
      'packages/x/src/a.ts': "import { b } from './b.js';\nexport const a = b;\n",
      'packages/x/src/b.ts': [
        "// import { a } from './a.js';",
        "/* export * from './a.js'; */",
        '/**',
        " * const a = await import('./a.js');",
        ' */',
        "const url = 'http://example.com/a.js'; // import './a.js';",
        'export const b = url;',
      ].join('\n'),
    });
    const result = run(root);
    expect(result.status).toBe(0);
    expect(result.stdout).toEqual(['structure: 2 files, no import circle, none over 500 lines']);
  });

  it('keeps an import that follows a string holding //', () => {
    const root = tree({
      'packages/x/src/a.ts': "import { b } from './b.js';\nexport const a = b;\n",
      'packages/x/src/b.ts':
        "const url = 'http://example.com'; import type { a } from './a.js';\nexport const b = 1;\n",
    });
    const result = run(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      'import circle: packages/x/src/a.ts → packages/x/src/b.ts → packages/x/src/a.ts',
    );
  });

  it('reports a file of 501 lines', () => {
    const root = tree({ 'packages/x/src/long.ts': lines(501), 'packages/x/src/ok.ts': lines(500) });
    const result = run(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toEqual([
      'file too long: packages/x/src/long.ts has 501 lines (limit 500)',
      'structure: 2 files, 0 import circles, 1 over 500 lines',
    ]);
  });

  it('exempts packages/core/src/port-spec.ts from the line limit', () => {
    const root = tree({ 'packages/core/src/port-spec.ts': lines(900) });
    const result = run(root);
    expect(result).toEqual({
      status: 0,
      stdout: ['structure: 1 file, no import circle, none over 500 lines'],
      stderr: [],
    });
  });
});
