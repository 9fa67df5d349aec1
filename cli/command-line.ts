import { parseArgs } from 'node:util'
import { ReadtrailError } from '../common/errors.js'
import { SAVED_QUERIES } from '../queries/catalog.js'
import { QueryError } from '../queries/errors.js'
import { COMMANDS, FLAGS, findCommand, flagsOf, GLOBAL_FLAGS, parseArgsOptions, type CommandSpec, type FlagName } from './command-table.js'
import { didYouMean } from '../common/suggest.js'

/** The flags' values, typed from the command table. */
export type FlagValues = {
  [K in FlagName]?: (typeof FLAGS)[K] extends { type: 'boolean' } ? boolean : (typeof FLAGS)[K] extends { multiple: true } ? string[] : string
}

export interface CommandLine {
  /** Undefined for a bare `readtrail [--help|--version]`. */
  command: CommandSpec | undefined
  /** The command's first argument (subcommand, saved query, report kind, shell), if given. */
  first: string | undefined
  /** Positional arguments after it (only those the table allows, e.g. `evidence verify FILE`). */
  args: string[]
  values: FlagValues
}

const flag = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`)

/**
 * Parses a command line against the command table, refusing (USAGE, exit 2)
 * what the table does not name, with the nearest names it does: an unknown
 * command, subcommand or flag, a flag of another command, a flag missing its
 * value, and any positional argument the command does not take (a
 * `table=x` typed without `--param` would otherwise be dropped silently and
 * the query run without it). An unknown saved query is QUERY_UNKNOWN.
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const options = parseArgsOptions()
  // Lenient first: every token, known or not, so each problem is named in our words.
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true })
  const positionals = tokens.flatMap((t) => (t.kind === 'positional' ? [t.value] : []))
  const given = tokens.flatMap((t) => (t.kind === 'option' ? [t] : []))
  const [name, first, ...args] = positionals
  const command = name === undefined ? undefined : findCommand(name)
  if (name !== undefined && !command) {
    throw new ReadtrailError('USAGE', `unknown command ${JSON.stringify(name)}${didYouMean(name, COMMANDS.map((c) => c.name))}; see readtrail --help`)
  }
  const sub = command?.first?.subcommands && first !== undefined && Object.hasOwn(command.first.subcommands, first) ? first : undefined
  const allowed: readonly FlagName[] = command ? flagsOf(command, sub) : GLOBAL_FLAGS
  const asking = given.some((t) => t.name === 'help' || t.name === 'version')
  for (const t of given) {
    if (!(allowed as readonly string[]).includes(t.name)) throw unknownFlag(t.name, t.rawName, command, first, allowed)
    const spec = FLAGS[t.name as FlagName]
    if (spec.type === 'string' && t.value === undefined) {
      throw new ReadtrailError('USAGE', `${t.rawName} needs a value: ${t.rawName} ${'value' in spec ? spec.value : 'VALUE'}`)
    }
    if (spec.type === 'boolean' && t.inlineValue) throw new ReadtrailError('USAGE', `${t.rawName} takes no value (got ${JSON.stringify(t.value)})`)
  }
  if (command?.first && first !== undefined) assertFirst(command, first, asking)
  else if (command?.first?.required && !asking) {
    throw new ReadtrailError('USAGE', `readtrail ${command.name}: ${command.first.what} missing; expected ${command.first.choices().join(', ')}; see readtrail ${command.name} --help`)
  }
  const takes = command ? (sub !== undefined ? (command.first?.subcommands?.[sub]?.args ?? []) : (command.args ?? [])) : []
  const extra = command?.first ? args.slice(takes.length) : [first, ...args].filter((a): a is string => a !== undefined).slice(takes.length)
  if (extra.length > 0 && !asking) throw unexpectedArgument(extra[0]!, command)
  let values: FlagValues
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true }).values as FlagValues
  } catch (cause) {
    // Anything the checks above did not name (e.g. an ambiguous `--out --force`).
    throw new ReadtrailError('USAGE', `${(cause as Error).message.split('. ')[0]}; see readtrail ${command?.name ?? ''} --help`.replace('  ', ' '), { cause })
  }
  return { command, first: command?.first ? first : undefined, args: command?.first ? args.slice(0, takes.length) : [first, ...args].filter((a): a is string => a !== undefined), values }
}

function assertFirst(command: CommandSpec, first: string, asking: boolean): void {
  const spec = command.first!
  const choices = spec.choices()
  if (choices.includes(first)) return
  // `readtrail query typo --help` still answers with the command's help.
  if (asking && spec.what !== 'saved query') return
  const hint = didYouMean(first, choices)
  if (spec.what === 'saved query') {
    throw new QueryError('QUERY_UNKNOWN', `no saved query named ${JSON.stringify(first)}${hint || ` (known: ${choices.join(', ')})`}; readtrail query --list describes them`)
  }
  throw new ReadtrailError('USAGE', `${command.name === 'report' ? '' : `readtrail ${command.name}: `}${spec.what} must be one of ${choices.join(', ')}, got ${JSON.stringify(first)}${hint}`)
}

function unknownFlag(name: string, raw: string, command: CommandSpec | undefined, first: string | undefined, allowed: readonly FlagName[]): ReadtrailError {
  if (!command) {
    const owners = Object.hasOwn(FLAGS, name) ? ownersOf(name as FlagName) : []
    return new ReadtrailError('USAGE', `${raw} needs a command first${owners.length ? ` (it is a flag of ${owners.join(', ')})` : ''}; see readtrail --help`)
  }
  const where = `readtrail ${command.name}${command.first?.subcommands && first !== undefined ? ` ${first}` : ''}`
  // `--table applicants` for `--param table=applicants`: say how parameters are given.
  const query = command.name === 'query' && first !== undefined ? SAVED_QUERIES.get(first) : undefined
  if (query && Object.hasOwn(query.params.shape, name)) {
    return new ReadtrailError('USAGE', `${raw} is a parameter of ${first}: give it as --param ${name}=VALUE`)
  }
  if (Object.hasOwn(FLAGS, name)) {
    return new ReadtrailError('USAGE', `${raw} is not a flag of ${where} (it is one of ${ownersOf(name as FlagName).join(', ')})${didYouMean(name, allowed, flag)}; see ${where} --help`)
  }
  return new ReadtrailError('USAGE', `unknown flag ${raw} for ${where}${didYouMean(name, allowed.filter((f) => f.length > 1), flag)}; see ${where} --help`)
}

function unexpectedArgument(arg: string, command: CommandSpec | undefined): ReadtrailError {
  const eq = arg.indexOf('=')
  const takesParams = command !== undefined && (command.flags as readonly string[]).includes('param')
  const hint = eq > 0 && takesParams ? `; parameters are given as --param ${arg}` : command ? `; see readtrail ${command.name} --help` : '; see readtrail --help'
  return new ReadtrailError('USAGE', `unexpected argument ${JSON.stringify(arg)}${command ? ` for readtrail ${command.name}` : ''}${hint}`)
}

function ownersOf(name: FlagName): string[] {
  const owners: string[] = []
  for (const c of COMMANDS) {
    if ((c.flags as readonly string[]).includes(name)) owners.push(`readtrail ${c.name}`)
    for (const [sub, s] of Object.entries(c.first?.subcommands ?? {})) if ((s.flags as readonly string[] | undefined)?.includes(name)) owners.push(`readtrail ${c.name} ${sub}`)
  }
  return owners
}
