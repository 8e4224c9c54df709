/**
 * Golden files: the exact `helm template` output of each scenario, checked in under
 * k8s-tests/golden/. `UPDATE_GOLDEN=1 npx vitest run --project k8s-tests` rewrites them.
 * Values the chart generates at random (passwords, keys in a generated Secret) are replaced by a
 * marker so the files never flap; scenarios use secrets.existingSecret where they can.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, parseAllDocuments } from 'yaml';

export const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden');
export const updatingGoldens = process.env['UPDATE_GOLDEN'] === '1';

export const GENERATED = '<generated-by-helm>';

/** Replaces the data of Secrets the chart generates (annotated `helm.sh/resource-policy: keep`). */
export function redactGenerated(text: string): string {
  return parseAllDocuments(text)
    .map((doc) => {
      const generated =
        doc.get('kind') === 'Secret' &&
        doc.getIn(['metadata', 'annotations', 'helm.sh/resource-policy']) === 'keep';
      const data = doc.get('data');
      if (generated && isMap(data)) {
        for (const item of data.items) if (isScalar(item.value)) item.value.value = GENERATED;
      }
      return doc.toString({ lineWidth: 0 });
    })
    .join('');
}

/** Compares with the stored golden (or writes it when UPDATE_GOLDEN=1); returns [actual, expected]. */
export async function golden(name: string, text: string): Promise<[string, string]> {
  const file = join(goldenDir, `${name}.yaml`);
  const actual = redactGenerated(text);
  if (updatingGoldens) {
    await mkdir(goldenDir, { recursive: true });
    await writeFile(file, actual);
    return [actual, actual];
  }
  const expected = await readFile(file, 'utf8').catch(() => {
    throw new Error(`missing golden ${file}: run UPDATE_GOLDEN=1 npx vitest run --project k8s-tests`);
  });
  return [actual, expected];
}
