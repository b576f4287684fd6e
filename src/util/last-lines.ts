/** The last `count` non-empty lines of a command's output, for error messages. */
export function lastLines(text: string, count: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-count)
    .join('\n');
}
