/**
 * Memory and time of indexing a snapshot with many files (scripts/bench-s3-browse runs it):
 * a synthetic full send stream, made in-process with test/support/send-stream-builder.ts the
 * way `btrfs send` orders a new file (mkfile at an orphan name, rename into its directory,
 * write, chown, chmod, utimes), with --files small files in --dirs directories, is written
 * to a file once; then, each in a fresh process so that its peak RSS is its own:
 *
 *   build    the file read (64 KiB chunks) through IndexingTap into nowhere, as an upload
 *            indexes it, then encodeIndex (the gzip NDJSON stored as <diff key>.index.gz)
 *   decode   decodeIndex of that .index.gz, as the mount does on first browse
 *
 * Each prints one JSON line: seconds, peak RSS (the process's maxRSS), peak V8 heap in use
 * and peak external + array buffers (sampled every 50 ms and at the end), and sizes.
 *
 *   node dist/scripts/bench-index.js [--files N] [--dirs N] [--bytes N] [--dir DIR] [--keep]
 *   node dist/scripts/bench-index.js build STREAM-FILE INDEX-FILE UUID
 *   node dist/scripts/bench-index.js decode INDEX-FILE
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeIndex, encodeIndex } from '../src/sendstream/index-codec.js';
import { IndexingTap } from '../src/sendstream/indexing-tap.js';
import { cmd, encodeCommand, newUuid, STREAM_MAGIC } from '../test/support/send-stream-builder.js';

interface Peaks {
  heapUsed: number;
  external: number;
}

function sampler(): { peaks: Peaks; stop: () => Peaks } {
  const peaks: Peaks = { heapUsed: 0, external: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    peaks.heapUsed = Math.max(peaks.heapUsed, m.heapUsed);
    peaks.external = Math.max(peaks.external, m.external + m.arrayBuffers);
  };
  const timer = setInterval(sample, 50);
  return {
    peaks,
    stop: () => {
      sample();
      clearInterval(timer);
      return peaks;
    },
  };
}

const MiB = 1024 * 1024;
const mib = (n: number) => Math.round((n / MiB) * 10) / 10;
/** maxRSS is in KiB. */
const peakRss = () => mib(process.resourceUsage().maxRSS * 1024);

async function generate(file: string, uuid: string, files: number, dirs: number, bytes: number): Promise<void> {
  const out = createWriteStream(file);
  const T = (sec: number) => ({ sec, nsec: 0 });
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const emit = async (c: ReturnType<typeof cmd.end>) => {
    const b = encodeCommand(c);
    batch.push(b);
    batchBytes += b.length;
    if (batchBytes > 4 * MiB) await flush();
  };
  const flush = async () => {
    const chunk = Buffer.concat(batch);
    batch = [];
    batchBytes = 0;
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  };
  const header = Buffer.alloc(STREAM_MAGIC.length + 4);
  STREAM_MAGIC.copy(header);
  header.writeUInt32LE(1, STREAM_MAGIC.length);
  batch.push(header);
  await emit(cmd.subvol('data', uuid, 10));
  await emit(cmd.chown('', 0, 0));
  await emit(cmd.chmod('', 0o755));
  await emit(cmd.utimes('', T(1_700_000_000), T(1_700_000_000), T(1_700_000_000)));
  let ino = 257;
  const data = Buffer.alloc(bytes, 0x61);
  const perDir = Math.ceil(files / dirs);
  for (let d = 0; d < dirs; d++) {
    const dirIno = ino++;
    const orphan = `o${dirIno}-10-0`;
    const dir = `dir${String(d).padStart(4, '0')}`;
    await emit(cmd.mkdir(orphan, dirIno));
    await emit(cmd.rename(orphan, dir));
    await emit(cmd.chown(dir, 0, 0));
    await emit(cmd.chmod(dir, 0o755));
    for (let f = 0; f < perDir && d * perDir + f < files; f++) {
      const fileIno = ino++;
      const o = `o${fileIno}-10-0`;
      const name = `${dir}/file-${String(f).padStart(5, '0')}.txt`;
      await emit(cmd.mkfile(o, fileIno));
      await emit(cmd.rename(o, name));
      if (bytes > 0) await emit(cmd.write(name, 0, data));
      await emit(cmd.chown(name, 1000, 1000));
      await emit(cmd.chmod(name, 0o644));
      await emit(cmd.utimes(name, T(1_700_000_000 + f), T(1_700_000_000 + f), T(1_700_000_000 + f)));
    }
    await emit(cmd.utimes(dir, T(1_700_000_000), T(1_700_000_000), T(1_700_000_000)));
  }
  await emit(cmd.end());
  await flush();
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

async function build(streamFile: string, indexFile: string, uuid: string): Promise<void> {
  const s = sampler();
  const t0 = performance.now();
  // The stream's own uuid is what the index names; a full stream has no parent.
  const tap = new IndexingTap({ to: uuid, from: null }, async () => undefined);
  await pipeline(
    createReadStream(streamFile, { highWaterMark: 64 * 1024 }),
    tap,
    new Writable({
      write: (_c, _e, cb) => cb(),
    }),
  );
  const index = tap.index();
  const t1 = performance.now();
  const atBuilt = { rss: peakRss(), ...s.peaks };
  const body = await encodeIndex(index);
  const t2 = performance.now();
  const peaks = s.stop();
  writeFileSync(indexFile, body);
  console.log(
    JSON.stringify({
      phase: 'build',
      unbrowsable: index.unbrowsable ?? null,
      inodes: index.inodes.length,
      streamBytes: statSync(streamFile).size,
      indexSeconds: Math.round(t1 - t0) / 1000,
      encodeSeconds: Math.round(t2 - t1) / 1000,
      indexBytes: body.length,
      peakRssMiBWhenBuilt: atBuilt.rss,
      peakHeapUsedMiBWhenBuilt: mib(atBuilt.heapUsed),
      peakRssMiB: peakRss(),
      peakHeapUsedMiB: mib(peaks.heapUsed),
      peakExternalMiB: mib(peaks.external),
    }),
  );
}

async function decode(indexFile: string): Promise<void> {
  const body = readFileSync(indexFile);
  const baseline = peakRss();
  const s = sampler();
  const t0 = performance.now();
  const index = await decodeIndex(body);
  const t1 = performance.now();
  const peaks = s.stop();
  const held = process.memoryUsage().heapUsed;
  console.log(
    JSON.stringify({
      phase: 'decode',
      inodes: index.inodes.length,
      decodeSeconds: Math.round(t1 - t0) / 1000,
      rssBeforeMiB: baseline,
      peakRssMiB: peakRss(),
      peakHeapUsedMiB: mib(peaks.heapUsed),
      peakExternalMiB: mib(peaks.external),
      heapUsedAfterMiB: mib(held),
    }),
  );
}

async function main(): Promise<void> {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'build') return build(rest[0]!, rest[1]!, rest[2]!);
  if (mode === 'decode') return decode(rest[0]!);
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '1000000' },
      dirs: { type: 'string', default: '1000' },
      bytes: { type: 'string', default: '64' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const dir = values.dir ?? mkdtempSync(path.join(os.tmpdir(), 'bench-index.'));
  const streamFile = path.join(dir, 'stream');
  const indexFile = path.join(dir, 'index.gz');
  const files = Number(values.files);
  const dirs = Number(values.dirs);
  const t0 = performance.now();
  const uuid = newUuid();
  await generate(streamFile, uuid, files, dirs, Number(values.bytes));
  console.error(`generated ${statSync(streamFile).size} bytes in ${Math.round(performance.now() - t0) / 1000} s`);
  const self = fileURLToPath(import.meta.url);
  const run = (...args: string[]) =>
    execFileSync(process.execPath, [self, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  console.log(JSON.stringify({ phase: 'stream', files, dirs, bytesPerFile: Number(values.bytes) }));
  console.log(run('build', streamFile, indexFile, uuid));
  console.log(run('decode', indexFile));
  if (!values.keep && values.dir === undefined) rmSync(dir, { recursive: true, force: true });
}

await main();
