import type { Command, Option } from 'commander';
import { UsageError } from '../model/errors.js';

/**
 * Shell completion scripts made from the CLI's own definitions (the commands, their aliases
 * and options, as `--help` shows them), so they cannot drift from it. Store URLs complete as
 * directories; `run` completes the jobs of the configuration file.
 * @throws UsageError for a shell other than bash, zsh or fish.
 */
export function completionScript(program: Command, shell: string): string {
  const commands = program.commands.filter((c) => c.name() !== 'help');
  switch (shell) {
    case 'bash':
      return bashScript(commands);
    case 'zsh':
      // zsh runs bash completions through bashcompinit: one script to keep right.
      return `#compdef buttersink\nautoload -U +X bashcompinit && bashcompinit\n${bashScript(commands)}`;
    case 'fish':
      return fishScript(commands);
    default:
      throw new UsageError(`no completion for the shell ${JSON.stringify(shell)}`, { hint: 'bash, zsh or fish' });
  }
}

function flagsOf(options: readonly Option[]): string[] {
  return options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined));
}

function namesOf(command: Command): string[] {
  return [command.name(), ...command.aliases()];
}

function bashScript(commands: readonly Command[]): string {
  const sync = commands.find((c) => c.name() === 'sync');
  const names = commands.flatMap(namesOf);
  const cases = commands
    .map((c) => `    ${namesOf(c).join('|')}) opts="${[...flagsOf(c.options), '-h', '--help'].join(' ')}" ;;`)
    .join('\n');
  return `# buttersink completion for bash (made by: buttersink completion bash)
_buttersink() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd='' opts w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case "$w" in
      ${names.join('|')}) cmd=$w; break ;;
    esac
  done
  case "$cmd" in
${cases}
    *) opts="${[...flagsOf(sync?.options ?? []), '-V', '--version', '-h', '--help'].join(' ')}" ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ $cmd == run ]]; then
    COMPREPLY=($(compgen -W "$(buttersink run --list 2>/dev/null)" -- "$cur"))
  elif [[ $cmd == completion ]]; then
    COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur"))
  else
    [[ -z $cmd ]] && COMPREPLY=($(compgen -W "${names.join(' ')}" -- "$cur"))
    COMPREPLY+=($(compgen -d -S / -- "$cur"))
    compopt -o nospace 2>/dev/null
  fi
}
complete -F _buttersink buttersink
`;
}

function fishScript(commands: readonly Command[]): string {
  const names = commands.flatMap(namesOf);
  const quote = (text: string): string => `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  const option = (condition: string, o: Option): string => {
    const parts = [`complete -c buttersink -n ${quote(condition)}`];
    if (o.short) parts.push(`-s ${o.short.slice(1)}`);
    if (o.long) parts.push(`-l ${o.long.slice(2)}`);
    if (o.required || o.optional) parts.push('-r');
    parts.push(`-d ${quote(o.description.split(/[;(]/)[0]!.trim())}`);
    return parts.join(' ');
  };
  const lines = ['# buttersink completion for fish (made by: buttersink completion fish)', 'complete -c buttersink -f'];
  for (const c of commands) {
    lines.push(`complete -c buttersink -n '__fish_use_subcommand' -a ${c.name()} -d ${quote(c.summary() || c.description())}`);
    const condition =
      c.name() === 'sync'
        ? `not __fish_seen_subcommand_from ${names.filter((n) => n !== 'sync').join(' ')}`
        : `__fish_seen_subcommand_from ${namesOf(c).join(' ')}`;
    for (const o of c.options) lines.push(option(condition, o));
  }
  lines.push(`complete -c buttersink -n '__fish_seen_subcommand_from run' -a '(buttersink run --list 2>/dev/null)'`);
  lines.push(`complete -c buttersink -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'`);
  lines.push(`complete -c buttersink -n 'not __fish_seen_subcommand_from run completion' -a '(__fish_complete_directories)'`);
  return `${lines.join('\n')}\n`;
}
