/**
 * Names that came from elsewhere (a client, a directory listing) shown safely in one line.
 * btrfs and the kernel accept any byte but `/` and NUL in a name; a newline in one forges
 * lines in `btrfs subvolume list` output and in logs, and escape sequences reach terminals.
 */

/** C0 controls (0x00-0x1f, newline among them) and DEL. */
const CONTROL = /[\x00-\x1f\x7f]/;

/** Whether `text` holds a byte 0x00-0x1f or 0x7f: such names are refused everywhere. */
export function hasControlCharacter(text: string): boolean {
  return CONTROL.test(text);
}

/** Longest part of a name a message quotes: an error line stays readable. */
const MAX_QUOTED = 200;

/**
 * `text` in double quotes with every control character escaped (C0, DEL, C1, and the Unicode
 * line and paragraph separators that JSON leaves raw), cut to {@link MAX_QUOTED} characters:
 * always one printable line.
 */
export function quoteName(text: string): string {
  const cut = text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text;
  return JSON.stringify(cut).replace(/[\x7f-\x9f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
