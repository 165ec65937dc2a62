/**
 * The import graph of src/: every relative import (static, re-export or dynamic `import('...')`)
 * of every .ts file, resolved to the file it names, read with the TypeScript parser.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export interface ImportEdge {
  /** Importing and imported file, relative to src/ with forward slashes. */
  from: string;
  to: string;
  line: number;
  /** `import type` / `export type`: erased at run time. */
  typeOnly: boolean;
}

export const SRC = path.resolve(import.meta.dirname, '../../src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** Specifier → the file it names, or undefined for packages and node: modules. */
function resolve(fromFile: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return path.resolve(path.dirname(fromFile), specifier.replace(/\.js$/, '.ts'));
}

/** Every relative import in `text`, as [specifier, position, type-only]. */
function importsOf(file: string, text: string): [string, number, boolean][] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: [string, number, boolean][] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly = ts.isImportDeclaration(node) ? Boolean(node.importClause?.isTypeOnly) : node.isTypeOnly;
      found.push([node.moduleSpecifier.text, node.getStart(), typeOnly]);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteral(arg)) found.push([arg.text, node.getStart(), false]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.map(([spec, pos, typeOnly]) => [spec, source.getLineAndCharacterOfPosition(pos).line + 1, typeOnly]);
}

/** The relative imports of every .ts file under `root` (src/ by default). */
export function importGraph(root = SRC): ImportEdge[] {
  const rel = (f: string) => path.relative(root, f).split(path.sep).join('/');
  return tsFiles(root).flatMap((file) =>
    importsOf(file, readFileSync(file, 'utf8')).flatMap(([spec, line, typeOnly]) => {
      const target = resolve(file, spec);
      return target === undefined ? [] : [{ from: rel(file), to: rel(target), line, typeOnly }];
    }),
  );
}

/** The first cycle through `start` in the graph, as a list of files, or undefined. */
export function cycleThrough(edges: readonly ImportEdge[], start: string): string[] | undefined {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const seen = new Set<string>();
  const walk = (file: string, trail: string[]): string[] | undefined => {
    for (const to of next.get(file) ?? []) {
      if (to === start) return [...trail, to];
      if (seen.has(to)) continue;
      seen.add(to);
      const found = walk(to, [...trail, to]);
      if (found) return found;
    }
    return undefined;
  };
  return walk(start, [start]);
}
