import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where .ci/install-missing links the Go programs it builds (gitignored); looked in before PATH. */
export const TOOLS_BIN = fileURLToPath(new URL('../../../.tools/bin/', import.meta.url));

export const MINIO_INSTALL_HINT =
  'run .ci/install-missing: it builds MinIO with Go, cached per machine, and links it into .tools/bin';

const REQUIRED = [
  { binary: 'mariadbd', install: 'apt-get install mariadb-server' },
  { binary: 'mariadb-install-db', install: 'apt-get install mariadb-server' },
  { binary: 'redis-server', install: 'apt-get install redis-server' },
  { binary: 'minio', install: MINIO_INSTALL_HINT },
];

export interface BinaryLookup {
  path?: string;
  toolsBin?: string;
}

/** The absolute path of an executable `name` in the tools dir or on the PATH, if there is one. */
export function findBinary(name: string, lookup: BinaryLookup = {}): string | undefined {
  const dirs = [lookup.toolsBin ?? TOOLS_BIN, ...(lookup.path ?? process.env.PATH ?? '').split(delimiter)];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here: the next directory
    }
  }
  return undefined;
}

/** Names the missing binaries and how to install each; empty when all are there. */
export function missingLocalBinaries(lookup: BinaryLookup = {}): string[] {
  return REQUIRED.filter(({ binary }) => findBinary(binary, lookup) === undefined).map(
    ({ binary, install }) => `${binary} (${install})`,
  );
}
