import { crc32c } from './crc32c.js';
import { COMMAND_HEADER_BYTES, Command } from './stream-format.js';

/**
 * Checks one `write` command read back on its own (a ranged read of a stored stream): its
 * header's payload length matches the bytes the index says it has, it is a WRITE, and its
 * CRC32C (over header and payload, the CRC field taken as zero) matches. Returns why not, or
 * undefined when it is intact. Pure; `bytes` is the whole command, header first.
 */
export function writeCommandProblem(bytes: Buffer): string | undefined {
  if (bytes.length < COMMAND_HEADER_BYTES) return `a command of ${bytes.length} bytes is shorter than its header`;
  const payloadBytes = bytes.readUInt32LE(0);
  if (payloadBytes !== bytes.length - COMMAND_HEADER_BYTES) {
    return `the command header says ${payloadBytes} payload bytes, the index ${bytes.length - COMMAND_HEADER_BYTES}`;
  }
  const command = bytes.readUInt16LE(4);
  if (command !== Command.Write) return `command ${command} is not a write (${Command.Write})`;
  const zeroed = Buffer.from(bytes.subarray(0, COMMAND_HEADER_BYTES));
  zeroed.writeUInt32LE(0, 6);
  const crc = crc32c(bytes.subarray(COMMAND_HEADER_BYTES), crc32c(zeroed));
  const stored = bytes.readUInt32LE(6);
  if (crc !== stored) return `bad CRC32C (stored ${hex(stored)}, computed ${hex(crc)})`;
  return undefined;
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;
