import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { defaultConfigFiles, loadConfig, parseConfig, parseStoreOption } from '../../../src/config/load-config.js';
import { UsageError } from '../../../src/model/errors.js';

describe('configuration file', () => {
  test('[stores] maps names to URLs, in file order', () => {
    const stores = parseConfig('# mine\n[stores]\nlocal = "/mnt/pool/snaps/"\nbackup = "btrfs:///mnt/backup/"\n', 'f');
    assert.deepEqual(
      [...stores],
      [
        ['local', '/mnt/pool/snaps/'],
        ['backup', 'btrfs:///mnt/backup/'],
      ],
    );
    assert.equal(parseConfig('', 'f').size, 0);
  });

  test('bad TOML, unknown keys, bad names and non-string URLs are usage errors naming the file', () => {
    const usage = (re: RegExp) => (e: unknown) => e instanceof UsageError && re.test(e.message);
    assert.throws(() => parseConfig('[stores\n', 'conf.toml'), usage(/conf\.toml.*not valid TOML/));
    assert.throws(() => parseConfig('[other]\n', 'conf.toml'), usage(/unknown section or key "other"/));
    assert.throws(() => parseConfig('[stores]\n".hidden" = "/x/"\n', 'conf.toml'), usage(/bad store name/));
    assert.throws(() => parseConfig('[stores]\na = 3\n', 'conf.toml'), usage(/must be a URL string/));
    assert.throws(() => parseConfig('stores = 1\n', 'conf.toml'), usage(/must be a table/));
  });

  test('--store NAME=URL', () => {
    assert.deepEqual(parseStoreOption('b=/mnt/x=y/'), ['b', '/mnt/x=y/']);
    assert.throws(() => parseStoreOption('/mnt/x/'), UsageError);
    assert.throws(() => parseStoreOption('a/b=/x/'), UsageError);
  });

  test('looks in $XDG_CONFIG_HOME, then /etc; none found is an empty config; an explicit file must exist', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'buttersink-config-'));
    try {
      const env = { XDG_CONFIG_HOME: dir };
      assert.deepEqual(defaultConfigFiles(env), [path.join(dir, 'buttersink', 'config.toml'), '/etc/buttersink/config.toml']);
      mkdirSync(path.join(dir, 'buttersink'));
      writeFileSync(path.join(dir, 'buttersink', 'config.toml'), '[stores]\nx = "/x/"\n');
      const found = await loadConfig(undefined, env);
      assert.equal(found.file, path.join(dir, 'buttersink', 'config.toml'));
      assert.deepEqual([...found.stores], [['x', '/x/']]);
      await assert.rejects(loadConfig(path.join(dir, 'missing.toml'), env), UsageError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
