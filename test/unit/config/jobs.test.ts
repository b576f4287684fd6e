import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfigFile } from '../../../src/config/load-config.js';
import { UsageError } from '../../../src/model/errors.js';

const usage = (re: RegExp) => (e: unknown) => e instanceof UsageError && re.test(e.message);

describe('[jobs.NAME] in the configuration file', () => {
  test('store names resolve to their URLs (as directories), URLs stay; options keep their types', () => {
    const { stores, jobs } = parseConfigFile(
      `[stores]
local = "/mnt/pool/snaps"
backup = "/mnt/backup/snaps/"

[jobs.nightly]
source = "local"
destinations = ["backup", "s3://bucket/host1/"]
keep = "5 7d"
exclude = '\\.tmp$'
part-size = 50
s3-sse = "none"

[jobs.one-off]
source = "/snaps/2026-11-28"
destination = "ssh://nas/backup/"
delete = false
known-hosts = ["/etc/ssh/nas_known_hosts"]
`,
      'conf.toml',
    );
    assert.equal(stores.size, 2);
    assert.deepEqual([...jobs.keys()], ['nightly', 'one-off'], 'in file order');
    assert.deepEqual(jobs.get('nightly'), {
      name: 'nightly',
      source: '/mnt/pool/snaps/',
      destinations: ['/mnt/backup/snaps/', 's3://bucket/host1/'],
      options: { keep: '5 7d', exclude: ['\\.tmp$'], partSize: 50, s3Sse: 'none' },
    });
    assert.deepEqual(jobs.get('one-off'), {
      name: 'one-off',
      source: '/snaps/2026-11-28',
      destinations: ['ssh://nas/backup/'],
      options: { delete: false, knownHosts: ['/etc/ssh/nas_known_hosts'] },
    });
  });

  test('mistakes are one-line usage errors naming the file, the job and the key', () => {
    const job = (body: string) => () => parseConfigFile(`[stores]\na = "/a/"\n[jobs.j]\n${body}\n`, 'conf.toml');
    assert.throws(job('source = "a"\ndestination = "/b/"\nkepe = "7d"'), usage(/conf\.toml: \[jobs\.j\]: unknown key "kepe"/));
    assert.throws(job('destination = "/b/"'), usage(/\[jobs\.j\]: source must be a store name or URL/));
    assert.throws(job('source = "a"'), usage(/\[jobs\.j\]: destination must be a store name or URL/));
    assert.throws(job('source = "a"\ndestinations = []'), usage(/destination must be/));
    assert.throws(job('source = "a"\ndestination = "/b/"\ndestinations = ["/c/"]'), usage(/not both/));
    assert.throws(job('source = "nas"\ndestination = "/b/"'), usage(/\[jobs\.j\]: no store named "nas" in \[stores\]/));
    assert.throws(job('source = "a"\ndestination = "/b/"\ndelete = "yes"'), usage(/\[jobs\.j\]: delete must be true or false/));
    assert.throws(job('source = "a"\ndestination = "/b/"\npart-size = "big"'), usage(/part-size must be a number/));
    assert.throws(job('source = "a"\ndestination = "/b/"\nexclude = [1]'), usage(/exclude must be a string or a list of strings/));
    assert.throws(() => parseConfigFile('[jobs]\nj = 3\n', 'conf.toml'), usage(/\[jobs\.j\] must be a table/));
    assert.throws(() => parseConfigFile('[job.x]\n', 'conf.toml'), usage(/unknown section or key "job"/));
  });
});
