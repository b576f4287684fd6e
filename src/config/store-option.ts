import { UsageError } from '../model/errors.js';
import { isValidStoreName } from '../model/store-name.js';

/**
 * `--store NAME=URL` as [name, url]. Apart from load-config.ts: the CLI checks it while it
 * parses its arguments, and should not load a TOML parser for that.
 */
export function parseStoreOption(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`--store ${JSON.stringify(text)}: expected NAME=URL`);
  const name = text.slice(0, eq);
  checkStoreName(name, '--store');
  return [name, text.slice(eq + 1)];
}

export function checkStoreName(name: string, where: string): void {
  if (!isValidStoreName(name)) {
    throw new UsageError(`${where}: bad store name ${JSON.stringify(name)}`, { hint: 'one path component, not starting with a dot' });
  }
}
