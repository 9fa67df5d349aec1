import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { COMMANDS, flagsOf } from '../../cli/command-table.js'
import { completionScript } from '../../cli/completion.js'
import { SAVED_QUERIES } from '../../queries/catalog.js'

const dir = mkdtempSync(join(tmpdir(), 'readtrail-completion-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const bashScript = join(dir, 'readtrail.bash')
writeFileSync(bashScript, completionScript('bash'))

/** What bash offers for `readtrail <words…>` with the cursor on the last word (an empty string: after a space). */
function complete(...words: string[]): string[] {
  const line = ['readtrail', ...words]
  const script = [
    `source ${JSON.stringify(bashScript)}`,
    `COMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${line.length - 1}`,
    '_readtrail',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n')
  return execFileSync('bash', ['--norc', '--noprofile', '-c', script], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean)
}

describe('bash completion (readtrail completion bash)', () => {
  it('registers the completion function for readtrail (complete -p)', () => {
    const registered = execFileSync('bash', ['--norc', '--noprofile', '-c', `source ${JSON.stringify(bashScript)} && complete -p readtrail`], { encoding: 'utf8' })
    expect(registered.trim()).toBe('complete -F _readtrail readtrail')
  })

  it('completes commands from the command table', () => {
    expect(complete('')).toEqual(expect.arrayContaining(COMMANDS.map((c) => c.name)))
    expect(complete('ve')).toEqual(['verify'])
    expect(complete('--v')).toEqual(['--version'])
  })

  it('completes subcommands, saved queries, report kinds and shells', () => {
    expect(complete('keys', '')).toEqual(['generate', 'list-producers'])
    expect(complete('evidence', '')).toEqual(['export', 'verify'])
    expect(complete('query', 'who')).toEqual(['who-touched-record'])
    expect(complete('query', '')).toEqual([...SAVED_QUERIES.keys()])
    expect(complete('report', 'b')).toEqual(['breach-scope'])
    expect(complete('completion', '')).toEqual(['bash', 'zsh'])
  })

  it("completes each command's flags, and only its own", () => {
    expect(complete('verify', '--')).toEqual(flagsOf(COMMANDS.find((c) => c.name === 'verify')!).map((f) => `--${f}`))
    expect(complete('verify', '--ind')).toEqual(['--independent'])
    expect(complete('evidence', 'export', '--')).toContain('--event')
    expect(complete('evidence', 'export', '--')).not.toContain('--json')
    expect(complete('evidence', 'verify', '--')).toContain('--json')
    expect(complete('keys', 'generate', '--')).toEqual(['--out', '--verifier', '--producer', '--trusted', '--help', '--version'])
    expect(complete('keys', 'list-producers', '--')).toEqual(['--trusted', '--format', '--help', '--version'])
    expect(complete('query', 'who-touched-record', '--f')).toEqual(['--format'])
  })

  it("completes --param names of the query on the line, and --format's values", () => {
    expect(complete('query', 'who-touched-record', '--param', '')).toEqual(['table=', 'record=', 'database=', 'from=', 'to='])
    expect(complete('query', 'records-touched-by-principal', '-p', 'pr')).toEqual(['principal='])
    expect(complete('report', 'breach-scope', '--param', 'ip')).toEqual(['ips='])
    expect(complete('query', 'breach-scope', '--format', '')).toEqual(['table', 'csv', 'json', 'ndjson'])
  })

  it('completes file names for file flags and evidence verify FILE, nothing for other values', () => {
    writeFileSync(join(dir, 'bundle-1.json'), '{}')
    expect(complete('evidence', 'verify', 'bundle')).toEqual(['bundle-1.json'])
    expect(complete('report', 'principal', '--out', 'bundle')).toEqual(['bundle-1.json'])
    expect(complete('verify', '--every', '')).toEqual([])
    expect(complete('verify', 'x')).toEqual([])
  })
})

describe('zsh completion (readtrail completion zsh)', () => {
  const script = completionScript('zsh')

  it('is a #compdef function that registers itself when sourced', () => {
    expect(script.startsWith('#compdef readtrail\n')).toBe(true)
    expect(script).toContain('compdef _readtrail readtrail')
  })

  it('offers the same commands, queries, flags and parameters as the bash script', () => {
    for (const c of COMMANDS) expect(script).toContain(` ${c.name}`)
    for (const q of SAVED_QUERIES.keys()) expect(script).toContain(q)
    expect(script).toContain(`("query who-touched-record") compadd -S '' -- table= record= database= from= to=`)
    expect(script).toContain('(--format) compadd -- table csv json ndjson')
  })

  it.skipIf(!hasZsh())('parses under zsh -n', () => {
    writeFileSync(join(dir, '_readtrail'), script)
    execFileSync('zsh', ['-n', join(dir, '_readtrail')])
  })

  /** What the zsh function offers for `readtrail <words…>`, with compadd and _files stubbed to print their words. */
  function zshComplete(...words: string[]): string[] {
    const file = join(dir, '_readtrail.zsh')
    writeFileSync(file, script)
    const line = ['readtrail', ...words]
    const program = [
      'compdef() { :; }',
      'compadd() { while [[ $1 != -- ]]; do shift; done; shift; print -l -- "$@"; }',
      '_files() { print -- FILES; }',
      `source ${JSON.stringify(file)}`,
      `words=(${line.map((w) => `'${w}'`).join(' ')})`,
      `CURRENT=${line.length}`,
      '_readtrail',
    ].join('\n')
    return execFileSync('zsh', ['-f', '-c', program], { encoding: 'utf8' }).split('\n').filter(Boolean)
  }

  it.skipIf(!hasZsh())('completes like the bash script: commands, queries, flags, --param names, files', () => {
    expect(zshComplete('')).toEqual(expect.arrayContaining(COMMANDS.map((c) => c.name)))
    expect(zshComplete('query', '')).toEqual([...SAVED_QUERIES.keys()])
    expect(zshComplete('query', 'who-touched-record', '--param', '')).toEqual(['table=', 'record=', 'database=', 'from=', 'to='])
    expect(zshComplete('evidence', 'export', '--')).toEqual(flagsOf(COMMANDS.find((c) => c.name === 'evidence')!, 'export').map((f) => `--${f}`))
    expect(zshComplete('evidence', 'verify', 'b')).toEqual(['FILES'])
    expect(zshComplete('verify', '--format', '')).toEqual(['table', 'csv', 'json', 'ndjson'])
  })
})

function hasZsh(): boolean {
  try {
    execFileSync('zsh', ['-c', 'true'])
    return true
  } catch {
    return false
  }
}
