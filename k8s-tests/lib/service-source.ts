import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../scripts/kube-tools.js';

/** The service's own source, tests left out: a name only a test mentions is exported by nobody. */
export function serviceSource(): string {
  const dir = join(repoRoot, 'service', 'src');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
    .map((file) => readFileSync(join(dir, file), 'utf8'))
    .join('\n');
}
