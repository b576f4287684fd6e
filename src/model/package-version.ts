import { readFileSync } from 'node:fs';

/** This buttersink's version (package.json), for --version and the remote protocol's hello. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
