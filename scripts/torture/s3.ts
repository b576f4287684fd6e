/**
 * Faults of the S3 paths, through the fault proxy in front of s3rver: 5xx bursts, throttling,
 * resets mid-part and mid-download, truncated bodies; and an object corrupted in the bucket,
 * which must be detected before the snapshot is visible.
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { FaultProxy } from '../../test/support/s3-server.js';
import type { Campaign } from './context.js';
import { attempt, localDestination } from './endpoints.js';
import { lastLine, runCli } from './processes.js';
import { s3Keys } from './s3-checks.js';

export async function uploadFaults(c: Campaign): Promise<void> {
  c.log('local-s3: S3 faults');
  await s3Fault(c, 'local-s3', '5xx burst on parts', nth(isPart, 4, { kind: 'status', status: 500 }));
  await s3Fault(c, 'local-s3', 'throttling (503 SlowDown)', nth(isPart, 4, { kind: 'status', status: 503, code: 'SlowDown' }));
  await s3Fault(c, 'local-s3', 'connection reset mid-part', nth(isPart, 2, { kind: 'reset-request' }));
}

export async function downloadFaults(c: Campaign): Promise<void> {
  c.log('s3-local: S3 faults');
  await s3Fault(c, 's3-local', 'connection reset mid-download', nth(isGet, 2, { kind: 'cut-response', afterBytes: 3_000_000 }));
  await s3Fault(c, 's3-local', 'truncated body', nth(isGet, 1, { kind: 'cut-response', afterBytes: 1000 }));
  await s3Fault(c, 's3-local', '5xx burst on downloads', nth(isGet, 3, { kind: 'status', status: 503 }));
  await corruptObject(c);
}

type Rule = FaultProxy['rule'];
async function s3Fault(c: Campaign, name: 'local-s3' | 's3-local', fault: string, rule: () => Rule): Promise<void> {
  const t = c.tallies.of(name, fault);
  for (let i = 0; i < 3; i++) {
    await attempt(c, t, name, async (from, to) => {
      c.proxy.rule = rule();
      const res = await runCli(['--part-size', '5', from, to.url], c.viaProxy);
      c.proxy.rule = () => undefined;
      if (res.code !== 0) return { problem: `exit ${res.code}: ${lastLine(res)}` };
      const problem = await to.verify(true);
      if (problem !== null || i > 0) return { problem };
      const deep = await to.deepVerify();
      return { problem: deep === null ? null : `deep check: ${deep}` };
    });
  }
}
const nth =
  (predicate: (method: string, url: string) => boolean, times: number, fault: NonNullable<ReturnType<Rule>>): (() => Rule) =>
  () => {
    let seen = 0;
    return (method, url) => (predicate(method, url) && seen++ < times ? fault : undefined);
  };
const isPart = (method: string, url: string): boolean => method === 'PUT' && url.includes('partNumber=');
const isGet = (method: string, url: string): boolean => method === 'GET' && !url.includes('list-type') && /\/torture\/[^?]+/.test(url);

async function corruptObject(c: Campaign): Promise<void> {
  const t = c.tallies.of('s3-local', 'object corrupted in the bucket');
  const prefix = 'corrupt/';
  await runCli([`${c.snaps}/`, `s3://torture/${prefix}`], c.baseEnv);
  const victim = (await s3Keys(c, prefix)).find((k) => k.key.includes('/t3/') && !k.key.endsWith('.index.gz'))!;
  const head = await c.s3.send(new HeadObjectCommand({ Bucket: 'torture', Key: victim.key }));
  const body = Buffer.from(
    await (await c.s3.send(new GetObjectCommand({ Bucket: 'torture', Key: victim.key }))).Body!.transformToByteArray(),
  );
  body[Math.floor(body.length / 2)] = body[Math.floor(body.length / 2)]! ^ 1;
  await c.s3.send(new PutObjectCommand({ Bucket: 'torture', Key: victim.key, Body: body, Metadata: head.Metadata }));
  const to = localDestination(c);
  t.runs += 1;
  try {
    const res = await runCli([`s3://torture/${prefix}`, to.url], c.baseEnv);
    const state = c.btrfsState(to.url.replace(/\/$/, ''));
    if (res.code !== 5) t.notes.add(`exit ${res.code} instead of 5`);
    // Named either by the download's hash check or by the stream validator's refusal (a bad CRC), whichever sees it first.
    else if (
      !res.stderr.includes(`${victim.key} is corrupt`) &&
      !res.stderr.includes(`from s3://torture/${victim.key}: the stream was refused`)
    ) {
      t.notes.add(`the error does not name the object: ${res.stderr.trim()}`);
    } else if (state.complete.includes('t3') || state.complete.includes('t4') || state.partials.length > 0)
      t.notes.add(`visible after the failure: ${[...state.complete, ...state.partials].join(', ')}`);
    else if (c.btrfsVerify(to.url.replace(/\/$/, ''), false) !== null) t.notes.add('what arrived differs from its source');
    else {
      t.survived += 1;
      t.verified += 1;
    }
  } finally {
    await to.dispose();
  }
}
