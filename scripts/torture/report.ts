/** The campaign's result as markdown: the table it prints, the section it records in RELIABILITY.md. */
import type { CampaignRow } from './results.js';

/** path x fault: runs, survived, data verified, partials left, the first three notes. */
export function markdownTable(rows: readonly CampaignRow[]): string {
  return [
    '| path | fault | runs | survived | data verified | partials left | notes |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.path} | ${r.fault} | ${r.runs} | ${r.survived} | ${r.verified} | ${r.partialsLeft} | ${r.notes.slice(0, 3).join('; ').replaceAll('|', '/') || ''} |`,
    ),
  ].join('\n');
}

/**
 * RELIABILITY.md with its "## Campaign results" section (everything from that heading on)
 * replaced by this run's: the command that reproduces it, the commit and date, the table.
 * `previous` is the file's text, undefined when there is none yet.
 */
export function reliabilityText(
  previous: string | undefined,
  run: { seed: number; kills: number; paths: readonly string[]; revision: string; date: string; table: string },
): string {
  const head = previous === undefined ? '# Reliability' : previous.split('\n## Campaign results')[0]!.trimEnd();
  const command = `sudo node dist/scripts/torture.js --seed ${run.seed} --kills ${run.kills} --paths ${run.paths.join(',')}`;
  return `${head}\n\n## Campaign results\n\n\`${command}\` at ${run.revision}, ${run.date}.\n\n${run.table}\n`;
}
