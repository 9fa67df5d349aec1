import { SAVED_QUERIES } from '../queries/catalog.js'
import type { AnySavedQuery } from '../queries/saved-query.js'
import { COMMANDS, FLAGS, flagsOf, type CommandSpec, type FlagName } from './command-table.js'
import { ENVIRONMENT } from './config.js'
import { describeParams, exampleCommandOf } from './param-check.js'

const COLUMN = 40

function columns(left: string, right: string, indent = '  '): string {
  const head = `${indent}${left}`
  return head.length < COLUMN - 1 ? `${head.padEnd(COLUMN)}${right}` : `${head}\n${' '.repeat(COLUMN)}${right}`
}

/** `readtrail --help`: every command's usage, one line each, and the environment. */
export function globalHelp(version: string): string {
  const lines = [`readtrail ${version} — immutable access-audit log`, '', 'usage: readtrail <command> [flags]', '', 'commands:']
  for (const c of COMMANDS) {
    lines.push(columns(c.name, c.summary))
  }
  lines.push(
    '',
    'readtrail <command> --help          flags, exit codes and examples of one command',
    'readtrail query <name> --help       parameters of one saved query',
    'readtrail completion bash|zsh       shell completion (source <(readtrail completion bash))',
    'readtrail --version',
    '',
    'environment:',
    ...Object.entries(ENVIRONMENT).map(([k, v]) => `  ${k.padEnd(34)} ${v}`),
    '',
  )
  return lines.join('\n')
}

function flagLine(name: FlagName): string {
  const f = FLAGS[name]
  const short = 'short' in f ? `-${f.short}, ` : ''
  const value = 'value' in f ? ` ${f.value}` : ''
  return columns(`${short}--${name}${value}`, f.help)
}

/** `readtrail <command> --help` (and `readtrail help <command>`). */
export function commandHelp(command: CommandSpec, first?: string): string {
  if (command.name === 'query' && first !== undefined) {
    const query = SAVED_QUERIES.get(first)
    if (query) return savedQueryHelp(query)
  }
  const sub = first !== undefined && command.first?.subcommands?.[first] ? first : undefined
  const lines = [`readtrail ${command.name}${sub ? ` ${sub}` : ''} — ${sub ? command.first!.subcommands![sub]!.summary : command.summary}`, '', 'usage:']
  const usage = sub ? command.usage.filter((u) => u.startsWith(`readtrail ${command.name} ${sub}`)) : command.usage
  lines.push(...usage.map((u) => `  ${u}`))
  if (command.first?.subcommands && !sub) {
    lines.push('', `${command.first.what === 'subcommand' ? 'subcommands' : `${command.first.what}s`}:`)
    for (const [name, s] of Object.entries(command.first.subcommands)) lines.push(columns(`${name}${s.args ? ` ${s.args.join(' ')}` : ''}`, s.summary))
  }
  if (command.name === 'query') {
    lines.push('', 'saved queries (readtrail query <name> --help for the parameters of one):')
    for (const q of SAVED_QUERIES.values()) lines.push(columns(q.name, q.description))
  }
  const flags = flagsOf(command, sub)
  if (flags.length > 0) {
    lines.push('', 'flags:')
    for (const name of flags) lines.push(flagLine(name))
  }
  if (command.details?.length) lines.push('', ...command.details)
  const examples = sub ? command.examples.filter((e) => e.includes(` ${sub}`)) : command.examples
  if (examples.length > 0) lines.push('', 'examples:', ...examples.map((e) => `  ${e}`))
  return `${lines.join('\n')}\n`
}

/** `readtrail query <name> --help`: the query's parameters from its paramHelp, with their formats and an example. */
export function savedQueryHelp(query: AnySavedQuery): string {
  const params = describeParams(query)
  const usage = params.map((p) => (p.required ? `--param ${p.name}=…` : `[--param ${p.name}=…]`)).join(' ')
  const lines = [`readtrail query ${query.name} — ${query.description}`, '', 'usage:', `  readtrail query ${query.name} ${usage} [--format table|csv|json|ndjson]`, '', 'parameters:']
  for (const p of params) {
    lines.push(columns(`${p.name}${p.required ? '' : ' (optional)'}`, p.help))
    if (p.format) lines.push(`${' '.repeat(COLUMN)}format: ${p.format}`)
  }
  lines.push(
    '',
    'exit 0 answered on verified ranges, 3 some rows not yet verified, 4 some rows in ranges that failed verification, 5 some rows unsigned, 2 error',
    '',
    'example:',
    `  ${exampleCommandOf(query)}`,
    '',
  )
  return lines.join('\n')
}
