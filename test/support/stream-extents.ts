/**
 * Send streams holding files at known contents, and the extents an index would give their
 * bytes, found by parsing the stream with `CommandReader` (each write command's start offset
 * tracked by hand): for tests of reading file bytes out of stored streams.
 */
import { CommandReader } from '../../src/sendstream/command-reader.js';
import { Attribute, Command, STREAM_HEADER_BYTES } from '../../src/sendstream/stream-format.js';
import type { ResolvedExtent } from '../../src/stores/s3/extent-plan.js';
import { cmd, fullStream, newUuid, type StreamCommand } from './send-stream-builder.js';

/** A file to put in a stream: its size and its written stretches (the rest are holes). */
export interface FileLayout {
  readonly path: string;
  readonly size: number;
  /** Stretches of data; each becomes write commands of at most `chunk` bytes. */
  readonly writes: readonly { readonly offset: number; readonly length: number }[];
  /** Bytes per write command (the kernel sends 48 KiB). */
  readonly chunk?: number;
}

export interface StreamWithFiles {
  readonly stream: Buffer;
  /** Each file's expected contents (holes as zeros). */
  readonly contents: ReadonlyMap<string, Buffer>;
}

/** Bytes that differ at every offset of every file (so a misplaced byte is seen). */
function pattern(seed: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    const x = offset + i;
    b[i] = (x * 131 + (x >>> 8) * 7 + (x >>> 16) * 13 + seed * 101 + 1) & 0xff;
  }
  return b;
}

/** A full stream (version 1 or 2) making these files, in order, with their contents. */
export function streamWithFiles(files: readonly FileLayout[], version: 1 | 2 = 1): StreamWithFiles {
  const commands: StreamCommand[] = [];
  const contents = new Map<string, Buffer>();
  files.forEach((file, n) => {
    const content = Buffer.alloc(file.size);
    commands.push(cmd.mkfile(file.path, 257 + n));
    for (const { offset, length } of file.writes) {
      const chunk = file.chunk ?? 48 * 1024;
      for (let at = offset; at < offset + length; at += chunk) {
        const data = pattern(n, at, Math.min(chunk, offset + length - at));
        data.copy(content, at);
        commands.push(cmd.write(file.path, at, data));
      }
    }
    commands.push(cmd.truncate(file.path, file.size));
    contents.set(file.path, content);
  });
  return { stream: fullStream('snap', newUuid(), 1, commands, { version }), contents };
}

/**
 * The extents of each file's bytes in `stream` stored as `key`: one per write command, as an
 * index gives them, and each file's size (its last truncate, else its last byte written).
 */
export function extentsOf(stream: Buffer, key: string): Map<string, { size: number; extents: ResolvedExtent[] }> {
  const reader = new CommandReader();
  reader.push(stream);
  reader.header();
  const files = new Map<string, { size: number; extents: ResolvedExtent[] }>();
  let position = STREAM_HEADER_BYTES;
  for (let command = reader.next(); command !== undefined; command = reader.next()) {
    const start = position;
    position += command.bytes.length;
    const path = command.attributes.get(Attribute.Path)?.toString('latin1');
    if (path === undefined) continue;
    const file = files.get(path) ?? { size: 0, extents: [] };
    files.set(path, file);
    if (command.command === Command.Write) {
      const data = command.attributes.get(Attribute.Data)!;
      const fileOffset = Number(command.attributes.get(Attribute.FileOffset)!.readBigUInt64LE());
      file.extents.push({
        fileOffset,
        length: data.length,
        key,
        commandStart: start,
        commandBytes: command.bytes.length,
        dataStart: start + (data.byteOffset - command.bytes.byteOffset),
      });
      file.size = Math.max(file.size, fileOffset + data.length);
    } else if (command.command === Command.Truncate) {
      file.size = Number(command.attributes.get(Attribute.Size)!.readBigUInt64LE());
    }
  }
  if (position !== stream.length) throw new Error(`parsed ${position} of ${stream.length} bytes`);
  for (const file of files.values()) file.extents.sort((a, b) => a.fileOffset - b.fileOffset);
  return files;
}
