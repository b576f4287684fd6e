import type { Command } from 'commander';
import { JOB_OPTION_KEYS } from '../config/jobs.js';

/**
 * The man pages, made from the CLI's own definitions when the package is built
 * (scripts/docs.mjs): buttersink(1) from the commands, options and help texts `--help` prints,
 * and buttersink.toml(5) from the keys the configuration parser accepts, described with the
 * words of the options they stand for. So the pages cannot disagree with `--help`.
 */
export interface ManPages {
  readonly 'buttersink.1': string;
  readonly 'buttersink.toml.5': string;
}

/** The help texts added after each command's options (commander does not hand them back). */
export interface HelpTexts {
  readonly [command: string]: string;
}

export function manPages(program: Command, texts: HelpTexts, version: string, date: string): ManPages {
  return { 'buttersink.1': commandPage(program, texts, version, date), 'buttersink.toml.5': configPage(program, version, date) };
}

function commandPage(program: Command, texts: HelpTexts, version: string, date: string): string {
  const out = [
    header('BUTTERSINK', 1, version, date),
    '.SH NAME',
    `buttersink \\- ${roff(program.description().replace(/\.$/, ''))}`,
    '.SH SYNOPSIS',
    '.B buttersink',
    '[\\fIoptions\\fR] [\\fIsrc\\fR] \\fIdst\\fR',
    '.br',
    '.B buttersink',
    '\\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.SH DESCRIPTION',
    roff(
      'buttersink synchronizes sets of btrfs read-only snapshots between stores (local btrfs directories, other machines over SSH, S3 buckets), sending each as the smallest diff from a snapshot the destination already has. The default command is sync.',
    ),
    '.SH COMMANDS',
  ];
  for (const command of program.commands.filter((c) => c.name() !== 'help')) {
    const args = command.registeredArguments.map((a) =>
      a.required ? `<${a.name()}${a.variadic ? '...' : ''}>` : `[${a.name()}${a.variadic ? '...' : ''}]`,
    );
    out.push(`.SS "${[[command.name(), ...command.aliases()].join(', '), ...args].join(' ')}"`);
    out.push(roff(command.description() || command.summary()));
    for (const option of command.options) {
      const shown = option.defaultValue !== undefined && typeof option.defaultValue !== 'boolean' && option.defaultValue !== 0;
      out.push('.TP', `.B ${roff(option.flags)}`, roff(option.description + (shown ? ` (default: ${String(option.defaultValue)})` : '')));
    }
    const text = texts[command.name()];
    if (text) out.push('.PP', '.nf', ...text.trim().split('\n').map(roffLine), '.fi');
  }
  out.push(
    '.SH FILES',
    '.TP',
    '.I $XDG_CONFIG_HOME/buttersink/config.toml, /etc/buttersink/config.toml',
    roff('the stores of the mount and the jobs of run: see buttersink.toml(5)'),
  );
  out.push('.SH "SEE ALSO"', '.BR buttersink.toml (5),', '.BR btrfs-send (8),', '.BR btrfs-receive (8),', '.BR btrbk (1)');
  return `${out.join('\n')}\n`;
}

function configPage(program: Command, version: string, date: string): string {
  const sync = program.commands.find((c) => c.name() === 'sync');
  const describe = (key: string): string => sync?.options.find((o) => o.long === `--${key}`)?.description ?? '';
  const out = [
    header('BUTTERSINK.TOML', 5, version, date),
    '.SH NAME',
    'buttersink.toml \\- the configuration file of buttersink: stores and sync jobs',
    '.SH SYNOPSIS',
    '\\fI$XDG_CONFIG_HOME/buttersink/config.toml\\fR, else \\fI/etc/buttersink/config.toml\\fR, or \\fB\\-\\-config\\fR \\fIFILE\\fR',
    '.SH DESCRIPTION',
    roff(
      'A TOML file. [stores] names stores for buttersink mount (one directory each in the mount) and for the jobs; [jobs.NAME] tables are the sync jobs of buttersink run.',
    ),
    '.SH "[stores]"',
    roff('NAME = "URL" lines: NAME is one path component, not starting with a dot; URL is any store URL of buttersink(1).'),
    '.SH "[jobs.NAME]"',
    '.TP',
    '.B source',
    roff('a store of [stores] (its URL, as a directory), or a URL.'),
    '.TP',
    '.B destination, destinations',
    roff('a store name or URL; destinations: a list of them, each synced from the source in turn.'),
  ];
  for (const key of JOB_OPTION_KEYS) out.push('.TP', `.B ${key}`, roff(`as --${key}: ${describe(key)}`));
  out.push(
    '.SH EXAMPLE',
    '.nf',
    ...[
      '[stores]',
      'local = "/mnt/pool/snaps/"',
      'backup = "/mnt/backup/snaps/"',
      '',
      '[jobs.nightly]',
      'source = "local"',
      'destinations = ["backup", "s3://bucket/host1/"]',
      'keep = "5 24h 7d 4w 12m *y"',
      "exclude = ['\\.tmp$']",
    ].map(roffLine),
    '.fi',
    '.SH "SEE ALSO"',
    '.BR buttersink (1)',
  );
  return `${out.join('\n')}\n`;
}

function header(title: string, section: number, version: string, date: string): string {
  return `.TH ${title} ${section} "${date}" "buttersink ${version}" "buttersink manual"`;
}

/** Text for roff: backslashes escaped, dashes as \-, a leading dot or quote neutralised. */
export function roff(text: string): string {
  return roffLine(text.replace(/\s*\n\s*/g, ' '));
}

function roffLine(line: string): string {
  const escaped = line.replaceAll('\\', '\\e').replaceAll('-', '\\-');
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}
