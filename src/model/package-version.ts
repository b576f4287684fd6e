import { readFileSync } from 'node:fs';

/** Set by the bundler (scripts/bundle.mjs) to package.json's version; absent in tsc's output. */
declare const BUTTERSINK_VERSION: string | undefined;

/** This buttersink's version (package.json), for --version and the remote protocol's hello. */
export function packageVersion(): string {
  if (typeof BUTTERSINK_VERSION === 'string') return BUTTERSINK_VERSION;
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
