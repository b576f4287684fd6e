/** Is this a name a store can have (a config entry, a directory of the mount)? One path component, not hidden. */
export function isValidStoreName(name: string): boolean {
  return /^[^/\0]+$/.test(name) && !name.startsWith('.') && name.length <= 255;
}
