import { describe, expect, it } from 'vitest'
import { parseCommandLine } from '../../cli/command-line.js'
import { COMMANDS, FLAGS, flagsOf } from '../../cli/command-table.js'
import { commandHelp, globalHelp, savedQueryHelp } from '../../cli/help.js'
import { assertQueryParams, describeParams, exampleCommandOf } from '../../cli/param-check.js'
import { readtrailVersion } from '../../cli/version.js'
import { SAVED_QUERIES } from '../../queries/catalog.js'
import { QueryError } from '../../queries/errors.js'
import { thrownBy } from '../helpers/thrown.js'

const refused = (argv: string[]) => {
  try {
    parseCommandLine(argv)
  } catch (err) {
    return err as { code: string; message: string }
  }
  throw new Error(`accepted: ${argv.join(' ')}`)
}

describe('parseCommandLine', () => {
  it('parses a command, its first argument and its flags', () => {
    const line = parseCommandLine(['query', 'who-touched-record', '--param', 'table=applicants', '-p', 'record=1', '--format', 'csv'])
    expect(line.command?.name).toBe('query')
    expect(line.first).toBe('who-touched-record')
    expect(line.values).toMatchObject({ param: ['table=applicants', 'record=1'], format: 'csv' })
    const evidence = parseCommandLine(['evidence', 'verify', 'bundle.json', '--json'])
    expect(evidence).toMatchObject({ first: 'verify', args: ['bundle.json'], values: { json: true } })
  })

  it('--version and --help need no command', () => {
    expect(parseCommandLine(['--version']).values.version).toBe(true)
    expect(parseCommandLine(['--help']).command).toBeUndefined()
    expect(parseCommandLine(['verify', '--help']).values.help).toBe(true)
  })

  it('refuses an unknown command with the nearest one', () => {
    expect(refused(['verfy'])).toMatchObject({ code: 'USAGE', message: expect.stringContaining('unknown command "verfy" (did you mean verify?)') })
  })

  it('refuses an unknown subcommand, report kind or shell with the nearest one', () => {
    expect(refused(['keys', 'generat']).message).toContain('did you mean generate?')
    expect(refused(['evidence', 'exprot']).message).toContain('did you mean export?')
    expect(refused(['report', 'breach-scop']).message).toMatch(/^report kind must be one of breach-scope, principal, got "breach-scop" \(did you mean breach-scope\?\)/)
    expect(refused(['completion', 'bsah']).message).toContain('did you mean bash?')
    expect(refused(['keys'])).toMatchObject({ code: 'USAGE', message: expect.stringContaining('subcommand missing') })
  })

  it('refuses an unknown saved query with QUERY_UNKNOWN and the nearest name', () => {
    expect(refused(['query', 'who-touched'])).toMatchObject({ code: 'QUERY_UNKNOWN', message: expect.stringContaining('did you mean who-touched-record?') })
  })

  it('refuses an unknown flag with the nearest flag of that command', () => {
    expect(refused(['verify', '--workrs', '2'])).toMatchObject({ code: 'USAGE', message: expect.stringContaining('unknown flag --workrs for readtrail verify (did you mean --workers?)') })
    expect(refused(['query', 'breach-scope', '--fromat', 'csv']).message).toContain('did you mean --format?')
  })

  it('names the command a flag of another command belongs to', () => {
    expect(refused(['query', '--event', 'x']).message).toContain('--event is not a flag of readtrail query (it is one of readtrail evidence export)')
    expect(refused(['evidence', 'export', '--json']).message).toContain('readtrail evidence verify')
  })

  it('says a query parameter typed as a flag goes in --param', () => {
    expect(refused(['query', 'who-touched-record', '--table', 'applicants']).message).toBe('--table is a parameter of who-touched-record: give it as --param table=VALUE')
  })

  it('refuses positional arguments a command does not take: table=x is not silently dropped', () => {
    expect(refused(['query', 'who-touched-record', 'table=x'])).toMatchObject({ code: 'USAGE', message: 'unexpected argument "table=x" for readtrail query; parameters are given as --param table=x' })
    expect(refused(['verify', 'now']).message).toContain('unexpected argument "now" for readtrail verify')
    expect(refused(['evidence', 'export', 'file.json']).message).toContain('unexpected argument "file.json"')
    expect(refused(['evidence', 'verify', 'a.json', 'b.json']).message).toContain('unexpected argument "b.json"')
  })

  it('refuses a flag without its value, and a value for a switch', () => {
    expect(refused(['report', 'principal', '--out'])).toMatchObject({ code: 'USAGE', message: '--out needs a value: --out FILE' })
    expect(refused(['verify', '--json=yes']).message).toContain('--json takes no value')
  })
})

describe('the command table', () => {
  it('every flag a command names exists, and every flag belongs to some command', () => {
    const used = new Set(COMMANDS.flatMap((c) => [...flagsOf(c), ...Object.keys(c.first?.subcommands ?? {}).flatMap((s) => flagsOf(c, s))]))
    expect(Object.keys(FLAGS).filter((f) => !used.has(f as never))).toEqual([])
  })

  it('every command has a usage line and an example that parses', () => {
    for (const c of COMMANDS) {
      expect(c.usage.length, c.name).toBeGreaterThan(0)
      for (const example of c.examples) {
        const words = example.match(/"[^"]*"|\S+/g)!.map((w) => w.replace(/^"|"$/g, ''))
        // Up to a shell operator: `readtrail completion zsh > file`, `a && b`.
        const end = words.findIndex((w) => ['>', '&&', '|'].includes(w))
        const argv = end === -1 ? words : words.slice(0, end)
        if (argv[0] !== 'readtrail') continue
        expect(() => parseCommandLine(argv.slice(1)), example).not.toThrow()
      }
    }
  })
})

describe('help', () => {
  it('the global help lists every command and the version', () => {
    const text = globalHelp(readtrailVersion())
    expect(readtrailVersion()).toMatch(/^\d+\.\d+\.\d+/)
    for (const c of COMMANDS) expect(text).toMatch(new RegExp(`^  ${c.name}\\s`, 'm'))
    expect(text).toContain('READTRAIL_HOME')
  })

  it('each command has its own help with its flags and examples', () => {
    const verify = commandHelp(COMMANDS.find((c) => c.name === 'verify')!)
    expect(verify).toMatch(/^readtrail verify — /)
    expect(verify).toContain('--since-checkpoint')
    expect(verify).toContain('examples:')
    expect(verify).not.toContain('--event')
    const exp = commandHelp(COMMANDS.find((c) => c.name === 'evidence')!, 'export')
    expect(exp).toMatch(/^readtrail evidence export — /)
    expect(exp).toContain('--event ID')
    expect(exp).not.toContain('--json')
  })

  it('a saved query has its own help listing its parameters from paramHelp, with formats and an example', () => {
    const who = SAVED_QUERIES.get('who-touched-record')!
    const text = savedQueryHelp(who)
    expect(text).toMatch(/^readtrail query who-touched-record — /)
    for (const [name, help] of Object.entries(who.paramHelp as Record<string, string>)) {
      expect(text).toMatch(new RegExp(`^  ${name}\\b.*${help.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'))
    }
    expect(text).toMatch(/database \(optional\)/)
    expect(text).toContain('format: ISO 8601')
    expect(text).toContain('readtrail query who-touched-record --param table=applicants --param record=104042')
  })

  it("every saved query's example command has valid parameters", () => {
    for (const q of SAVED_QUERIES.values()) {
      const example = exampleCommandOf(q)
      const params = Object.fromEntries([...example.matchAll(/--param (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]))
      expect(q.params.safeParse(params).success, example).toBe(true)
      expect(describeParams(q).filter((p) => p.required && p.example === undefined), q.name).toEqual([])
    }
  })
})

describe('assertQueryParams', () => {
  const records = SAVED_QUERIES.get('records-touched-by-principal')!

  it('names the nearest parameter for a misspelt one, says what a missing one is, and gives the format of a bad time', () => {
    const err = thrownBy(QueryError, () => assertQueryParams(records, { tabel: 'applicants', from: 'yesterday' }))
    expect(err).toMatchObject({ code: 'QUERY_PARAM_INVALID' })
    expect(err.message).toContain('tabel: unknown parameter (did you mean table?)')
    expect(err.message).toContain('principal: missing (required): principal id, e.g. clerk.marta')
    expect(err.message).toContain('from: "yesterday" is not a date or time: expected ISO 8601: a date (2026-11-26')
    expect(err.details?.['issues']).toEqual(expect.arrayContaining([{ param: 'tabel', problem: 'unknown parameter (did you mean table?)' }]))
  })

  it('lists the parameters when nothing is close, and keeps range errors in their own words', () => {
    const err = thrownBy(QueryError, () => assertQueryParams(records, { principal: 'p', colour: 'red', limit: '99999999999' }))
    expect(err.message).toContain('colour: unknown parameter (records-touched-by-principal takes principal, table, from, to, limit)')
    expect(err.message).toMatch(/limit: Too big/)
    const word = thrownBy(QueryError, () => assertQueryParams(records, { principal: 'p', limit: 'ten' }))
    expect(word.message).toContain('limit: "ten" is not valid: expected a whole number')
  })

  it('accepts valid parameters', () => {
    expect(() => assertQueryParams(records, { principal: 'clerk.marta', from: '2026-11-26', to: '2026-11-27T00:00:00Z' })).not.toThrow()
  })
})
