const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/**
 * A byte count for people, in IEC units: `512 B`, `1.5 KiB`, `12 GiB`, `512 MiB`.
 * Below 10 units one decimal is shown (dropped when it is `.0`), above it none: three
 * significant digits are plenty for sizes that are often estimates anyway.
 */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return `${n} B`;
  if (n < 0) return `-${formatBytes(-n)}`;

  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;

  let text = value < 10 ? value.toFixed(1) : value.toFixed(0);
  // Rounding can reach the next unit (1023.7 KiB -> "1024"): show "1 MiB" instead.
  if (Number(text) >= 1024 && unit < UNITS.length - 1) {
    unit++;
    text = '1';
  }
  return `${text.replace(/\.0$/, '')} ${UNITS[unit]}`;
}
