import { describe, expect, it } from 'vitest'
import { alertsParams } from '../../cli/alerts-command.js'
import { parseCommandLine } from '../../cli/command-line.js'
import { findCommand } from '../../cli/command-table.js'
import { completionScript } from '../../cli/completion.js'
import { commandHelp } from '../../cli/help.js'
import { ReadtrailError } from '../../common/errors.js'
import { thrownBy } from '../helpers/thrown.js'

describe('readtrail alerts: command line', () => {
  it('takes the filters as flags and the rest as --param', () => {
    const line = parseCommandLine(['alerts', '--from', '2026-11-26', '--principal', 'clerk.marta', '--table', 'applicants', '--action', 'throttle,refuse', '-p', 'limit=0', '--format', 'csv'])
    expect(line.command?.name).toBe('alerts')
    expect(line.values).toMatchObject({ from: '2026-11-26', principal: 'clerk.marta', table: 'applicants', action: 'throttle,refuse', param: ['limit=0'], format: 'csv' })
    const args = { from: line.values.from, to: line.values.to, principal: line.values.principal, table: line.values.table, action: line.values.action, params: line.values.param ?? [], format: 'csv' }
    expect(alertsParams(args)).toEqual({ limit: '0', from: '2026-11-26', principal: 'clerk.marta', table: 'applicants', action: 'throttle,refuse' })
  })

  it('refuses a filter given as a flag and as a parameter', () => {
    const err = thrownBy(ReadtrailError, () => alertsParams({ principal: 'a', params: ['principal=b'], format: 'table' }))
    expect(err.code).toBe('USAGE')
    expect(err.message).toBe('--principal and --param principal= both given; give it once')
  })

  it('a saved query still asks for --param when given an alerts flag', () => {
    expect(() => parseCommandLine(['query', 'top-readers', '--from', '2026-11-26'])).toThrow('--from is a parameter of top-readers: give it as --param from=VALUE')
    expect(() => parseCommandLine(['verify', '--principal', 'x'])).toThrow(/--principal is not a flag of readtrail verify \(it is one of readtrail alerts\)/)
  })

  it('is in the help and the completion, with the guard actions', () => {
    const help = commandHelp(findCommand('alerts')!)
    for (const flag of ['--from TIME', '--to TIME', '--principal ID', '--table NAME', '--action ACTION,…', '--format FORMAT']) expect(help).toContain(flag)
    const bash = completionScript('bash')
    expect(bash).toContain('--action) COMPREPLY=( $(compgen -W "alert throttle refuse unchecked" -- "$cur") ); return 0 ;;')
    expect(bash).toMatch(/"alerts"\) COMPREPLY=\( \$\(compgen -W "--from --to --principal --table --action --param --format/)
  })
})
