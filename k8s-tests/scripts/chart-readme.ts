/**
 * Generates the values table of charts/parley/README.md from the `# --` comments in values.yaml
 * (the helm-docs convention), between the `<!-- values:start -->` and `<!-- values:end -->`
 * markers. `npx tsx k8s-tests/scripts/chart-readme.ts` rewrites the README; k8s-tests checks it
 * is up to date and that every value has a description.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { isMap, isScalar, parseDocument, type Node, type YAMLMap } from 'yaml';
import { repoRoot } from './kube-tools.js';

export const chartReadme = join(repoRoot, 'charts', 'parley', 'README.md');
const valuesFile = join(repoRoot, 'charts', 'parley', 'values.yaml');
const START = '<!-- values:start -->';
const END = '<!-- values:end -->';

export interface ValueRow {
  path: string;
  type: string;
  defaultValue: unknown;
  description: string;
}

/** The text of the last `# -- ...` comment block (the yaml parser has already removed the `#`). */
function description(comment: string | null | undefined): string {
  if (!comment) return '';
  const lines = comment.split('\n').map((line) => line.replace(/^\s*#?\s?/, '').trimEnd());
  let first = -1;
  lines.forEach((line, index) => {
    if (line.trimStart().startsWith('-- ')) first = index;
  });
  if (first < 0) return '';
  return lines
    .slice(first)
    .map((line, index) => (index === 0 ? line.trimStart().slice(3) : line.trim()))
    .join(' ')
    .trim();
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  return typeof value === 'object' ? 'object' : typeof value;
}

/** Every documented value: a leaf, or a mapping whose own key carries a `# --` description. */
export function valueRows(): ValueRow[] {
  const doc = parseDocument(readFileSync(valuesFile, 'utf8'));
  const rows: ValueRow[] = [];
  const walk = (map: YAMLMap, prefix: string, inherited: string | null | undefined): void => {
    map.items.forEach((pair, index) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const path = prefix ? `${prefix}.${key}` : key;
      const comment =
        (isScalar(pair.key) ? pair.key.commentBefore : undefined) ?? (index === 0 ? inherited : undefined);
      const text = description(comment);
      const value = pair.value as Node | null;
      if (isMap(value) && value.items.length > 0 && !text) {
        walk(value, path, value.commentBefore);
        return;
      }
      const js = value && 'toJSON' in value ? (value as { toJSON(): unknown }).toJSON() : value;
      rows.push({ path, type: typeOf(js), defaultValue: js, description: text });
    });
  };
  walk(doc.contents as YAMLMap, '', doc.commentBefore);
  return rows;
}

export function valuesTable(rows: ValueRow[] = valueRows()): string {
  const cell = (text: string): string => text.replace(/\|/g, '\\|');
  const lines = ['| Key | Type | Default | Description |', '| --- | --- | --- | --- |'];
  for (const row of rows) {
    lines.push(
      `| \`${row.path}\` | ${row.type} | \`${cell(JSON.stringify(row.defaultValue))}\` | ${cell(row.description)} |`,
    );
  }
  return lines.join('\n');
}

/** The README with its values table regenerated, formatted as the repository's prettier does. */
export async function renderReadme(current: string): Promise<string> {
  const start = current.indexOf(START);
  const end = current.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${chartReadme} lacks the ${START} / ${END} markers`);
  const text = `${current.slice(0, start + START.length)}\n\n${valuesTable()}\n\n${current.slice(end)}`;
  const options = (await resolveConfig(chartReadme)) ?? {};
  return format(text, { ...options, filepath: chartReadme });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  renderReadme(readFileSync(chartReadme, 'utf8'))
    .then((readme) => {
      writeFileSync(chartReadme, readme);
      console.log(`updated ${chartReadme}`);
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
