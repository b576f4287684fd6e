/**
 * What checking an untrusted stream costs (the stream validator, SECURITY.md layer 1), on
 * real `btrfs send` streams of the same data, in the same run:
 *
 *   read       the stream file through a node PassThrough to nowhere (node's own floor)
 *   validate   the same through StreamValidator (CRC of every byte, every path checked)
 *   receive    `btrfs receive -e -C` of the file, the physical limit of the receiving side
 *              (the validator runs beside it, on another core, in a real receive)
 *
 * for a full stream (300 MiB of random data plus 20,000 small files in 200 directories and
 * 2,000 symbolic links) and an incremental one on top of it (40 MiB rewritten, 5,000 files
 * renamed, links replaced), where the validator looks names up in the parent snapshot.
 * The page cache is warm (the files are read once first): what is measured is CPU, which is
 * what validation adds. Medians of --runs runs.
 *
 *   sudo node dist/scripts/bench-validate.js [--runs N]
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { StreamValidator, type ReceiveScope } from '../src/sendstream/stream-validator.js';
import { SnapshotTree } from '../src/stores/btrfs/snapshot-tree.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Number(values.runs);
const MiB = 1024 * 1024;

const sh = (script: string): string => execFileSync('bash', ['-euo', 'pipefail', '-c', script], { encoding: 'utf8' });
const uuidOf = (subvolume: string): string => /^\s*UUID:\s+(\S+)/m.exec(sh(`btrfs subvolume show ${subvolume}`))![1]!;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed(run: () => Promise<void>): Promise<{ seconds: number; cpu: number }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await run();
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6 };
}

const sink = (): Writable =>
  new Writable({
    highWaterMark: 1 << 20,
    write(_chunk, _encoding, callback) {
      callback();
    },
  });

const work = mkdtempSync(path.join(os.tmpdir(), 'bench-validate-'));
const mount = path.join(work, 'mnt');
mkdirSync(mount);
try {
  sh(`truncate -s 3G ${work}/img && mkfs.btrfs -q ${work}/img && mount -o loop ${work}/img ${mount}`);
  sh(`cd ${mount} && btrfs -q subvolume create vol && head -c 300M /dev/urandom > vol/big &&
      for d in $(seq 200); do mkdir vol/d$d; for f in $(seq 100); do echo "$d $f" > vol/d$d/f$f; done; for l in $(seq 10); do ln -s ../d$d/f$l vol/d$d/l$l; done; done &&
      btrfs -q subvolume snapshot -r vol s1 &&
      dd if=/dev/urandom of=vol/big bs=1M count=40 seek=100 conv=notrunc status=none &&
      for d in $(seq 50); do for f in $(seq 100); do mv vol/d$d/f$f vol/d$d/g$f; done; rm vol/d$d/l1; ln -s /elsewhere vol/d$d/l1; done &&
      btrfs -q subvolume snapshot -r vol s2 &&
      btrfs send -q s1 > ${work}/full.stream && btrfs send -q -p s1 s2 > ${work}/incremental.stream`);
  const cases = [
    {
      label: 'full',
      file: `${work}/full.stream`,
      scope: { uuid: uuidOf(`${mount}/s1`), parentUuid: null, sources: new Map() } as ReceiveScope,
    },
    {
      label: 'incremental',
      file: `${work}/incremental.stream`,
      scope: {
        uuid: uuidOf(`${mount}/s2`),
        parentUuid: uuidOf(`${mount}/s1`),
        sources: new Map([[uuidOf(`${mount}/s1`), new SnapshotTree(`${mount}/s1`)]]),
      } as ReceiveScope,
    },
  ];
  const rows: string[] = [];
  mkdirSync(`${mount}/recv`);
  for (const c of cases) {
    // The incremental's parent must be at the receiving side, once.
    if (c.label === 'incremental') sh(`btrfs -q receive -e -C ${mount}/recv < ${work}/full.stream 2>/dev/null`);
    const bytes = statSync(c.file).size;
    sh(`cat ${c.file} > /dev/null`);
    const results: Record<string, { seconds: number; cpu: number }[]> = { read: [], validate: [], receive: [] };
    for (let run = 0; run < RUNS; run++) {
      results.read!.push(await timed(() => pipeline(createReadStream(c.file, { highWaterMark: 1 << 20 }), new PassThrough(), sink())));
      // A fresh SnapshotTree each run: its cache must not carry over.
      const scope =
        c.scope.parentUuid === null ? c.scope : { ...c.scope, sources: new Map([[c.scope.parentUuid, new SnapshotTree(`${mount}/s1`)]]) };
      results.validate!.push(
        await timed(() => pipeline(createReadStream(c.file, { highWaterMark: 1 << 20 }), new StreamValidator(scope), sink())),
      );
      // receive's own chroot notice goes to stderr even with -q: dropped.
      const start = performance.now();
      sh(`btrfs -q receive -e -C ${mount}/recv < ${c.file} 2>/dev/null`);
      results.receive!.push({ seconds: (performance.now() - start) / 1000, cpu: 0 });
      sh(`btrfs -q subvolume delete ${mount}/recv/${c.label === 'full' ? 's1' : 's2'}`);
    }
    const line = (method: string, xs: { seconds: number; cpu: number }[]): string => {
      const s = median(xs.map((x) => x.seconds));
      const cpu = median(xs.map((x) => x.cpu));
      return `| ${c.label} (${(bytes / MiB).toFixed(0)} MiB) | ${method} | ${s.toFixed(3)} (${xs.map((x) => x.seconds.toFixed(2)).join(', ')}) | ${(bytes / MiB / s).toFixed(0)} | ${cpu ? cpu.toFixed(2) : '-'} |`;
    };
    rows.push(
      line('node PassThrough (read only)', results.read!),
      line('StreamValidator', results.validate!),
      line('`btrfs receive -e -C` of the file', results.receive!),
    );
  }
  console.log(`| stream | method | median s (runs) | MiB/s | CPU s (node) |\n| --- | --- | --- | ---: | ---: |\n${rows.join('\n')}`);
} finally {
  sh(`umount ${mount} 2>/dev/null || true`);
  rmSync(work, { recursive: true, force: true });
}
