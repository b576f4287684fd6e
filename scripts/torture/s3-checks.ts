/** What the campaign checks of an S3 destination: whole streams with their hashes, journals, restores. */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sh } from '../../test/support/btrfs-pool.js';
import { decodeIndex } from '../../src/sendstream/index-codec.js';
import { StreamEndCheck } from '../../src/sendstream/stream-end-check.js';
import type { Campaign } from './context.js';
import { runCli } from './processes.js';

export async function s3Keys(c: Campaign, prefix: string): Promise<{ key: string; size: number; etag: string }[]> {
  const out: { key: string; size: number; etag: string }[] = [];
  let token: string | undefined;
  do {
    const page = await c.s3.send(new ListObjectsV2Command({ Bucket: 'torture', Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag ?? '' });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/**
 * Every object under `prefix` is a whole send stream matching the SHA-256 it carries. Right
 * after a kill an object may still wait for its hash (the next run attaches it); at the end
 * (`expectAll`) every object must have it.
 */
export async function s3Verify(c: Campaign, prefix: string, expectAll: boolean): Promise<string | null> {
  const all = await s3Keys(c, prefix);
  // An index is stored after its diff: one without its diff, or one that does not decode, is a bug.
  for (const { key } of all.filter((k) => k.key.endsWith('.index.gz'))) {
    const diff = key.slice(0, -'.index.gz'.length);
    if (!all.some((k) => k.key === diff)) return `${key}: an index without its diff`;
    const body = Buffer.from(await (await c.s3.send(new GetObjectCommand({ Bucket: 'torture', Key: key }))).Body!.transformToByteArray());
    const problem = await decodeIndex(body).then(
      () => null,
      (error: Error) => `${key}: ${error.message}`,
    );
    if (problem) return problem;
  }
  const keys = all.filter((k) => !k.key.endsWith('.index.gz'));
  for (const { key } of keys) {
    const head = await c.s3.send(new HeadObjectCommand({ Bucket: 'torture', Key: key }));
    const body = Buffer.from(await (await c.s3.send(new GetObjectCommand({ Bucket: 'torture', Key: key }))).Body!.transformToByteArray());
    const sha = createHash('sha256').update(body).digest('hex');
    const recorded = head.Metadata?.['buttersink-sha256'];
    if (recorded !== undefined ? recorded !== sha : expectAll) return `${key}: SHA-256 ${recorded ?? 'missing'}, content ${sha}`;
    const whole = await new Promise<boolean>((resolve) => {
      const check = new StreamEndCheck();
      check.on('error', () => resolve(false));
      check.on('finish', () => resolve(true));
      check.resume();
      check.end(body);
    });
    if (!whole) return `${key} is not a whole send stream`;
  }
  if (expectAll && keys.length !== c.names.length) return `${keys.length} objects instead of ${c.names.length}`;
  return null;
}

/** Unfinished uploads journaled for keys under `prefix`. */
export function journalEntries(c: Campaign, prefix: string): number {
  const dir = path.join(c.work, 'cache', 's3-uploads');
  if (!existsSync(dir)) return 0;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .filter((f) => (JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { key: string }).key.startsWith(prefix)).length;
}

/** Restores an S3 prefix into a fresh directory and compares every snapshot with its source. */
export async function s3RestoreVerify(c: Campaign, prefix: string): Promise<string | null> {
  const dir = `${c.dst.mountPoint}/verify-${prefix.replaceAll('/', '-')}`;
  mkdirSync(dir, { recursive: true });
  const res = await runCli([`s3://torture/${prefix}`, `${dir}/`], c.baseEnv);
  const problem = res.code !== 0 ? `restore failed: ${res.stderr.trim().split('\n').at(-1)}` : c.btrfsVerify(dir, true);
  for (const name of c.btrfsState(dir).complete.concat(c.btrfsState(dir).partials)) sh(`btrfs -q subvolume delete '${dir}/${name}'`);
  sh(`btrfs subvolume sync ${c.dst.mountPoint} && rm -rf '${dir}'`);
  return problem;
}
