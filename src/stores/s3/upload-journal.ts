import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A part of a multipart upload that the server acknowledged. */
export interface PartRecord {
  readonly partNumber: number;
  readonly bytes: number;
  /** Hex MD5 of the part's bytes: a resumed upload skips a part only if its bytes match. */
  readonly md5: string;
  readonly etag: string;
}

/** An unfinished multipart upload of ours, as kept on disk between runs. */
export interface UploadRecord {
  readonly version: 1;
  readonly endpoint: string;
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly startedAt: string;
  readonly parts: readonly PartRecord[];
  /** Set just before CompleteMultipartUpload: the hash still to attach if the run dies then. */
  readonly completed?: { readonly sha256: string; readonly bytes: number } | undefined;
}

/**
 * Remembers unfinished multipart uploads (upload id, and each stored part's size and MD5) in
 * the cache directory, one small JSON file per object key, so that a run killed mid-upload
 * resumes where it stopped instead of sending every part again. Not every S3 server
 * implements ListParts (s3rver does not), so this journal, not the server, is what says
 * which parts exist; a part whose bytes differ this time is simply uploaded again.
 */
export class UploadJournal {
  readonly #directory: string;

  constructor(cacheDirectory: string) {
    this.#directory = path.join(cacheDirectory, 's3-uploads');
  }

  #file(endpoint: string, bucket: string, key: string): string {
    const id = createHash('sha256').update(`${endpoint}\0${bucket}\0${key}`).digest('hex').slice(0, 32);
    return path.join(this.#directory, `${id}.json`);
  }

  async load(endpoint: string, bucket: string, key: string): Promise<UploadRecord | undefined> {
    const record = await readRecord(this.#file(endpoint, bucket, key));
    return record && record.endpoint === endpoint && record.bucket === bucket && record.key === key ? record : undefined;
  }

  /** Writes atomically (temporary file, then rename): a kill mid-write keeps the old record. */
  async save(record: UploadRecord): Promise<void> {
    await mkdir(this.#directory, { recursive: true });
    const file = this.#file(record.endpoint, record.bucket, record.key);
    const temporary = `${file}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(record));
    await rename(temporary, file);
  }

  async remove(endpoint: string, bucket: string, key: string): Promise<void> {
    await rm(this.#file(endpoint, bucket, key), { force: true });
  }

  /** Every record for this bucket whose key starts with `keyPrefix`. */
  async list(endpoint: string, bucket: string, keyPrefix: string): Promise<UploadRecord[]> {
    const names = await readdir(this.#directory).catch(() => [] as string[]);
    const records = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => readRecord(path.join(this.#directory, n))));
    return records.filter(
      (r): r is UploadRecord => r !== undefined && r.endpoint === endpoint && r.bucket === bucket && r.key.startsWith(keyPrefix),
    );
  }
}

async function readRecord(file: string): Promise<UploadRecord | undefined> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as Partial<UploadRecord>;
    if (value.version !== 1 || typeof value.uploadId !== 'string' || !Array.isArray(value.parts)) return undefined;
    return value as UploadRecord;
  } catch {
    return undefined; // missing or corrupt: start afresh
  }
}
