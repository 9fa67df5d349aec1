import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli-process.js'
import { TEST_BROKERS } from '../helpers/kafka.js'

describe('readtrail CLI habits', () => {
  const root = mkdtempSync(join(tmpdir(), 'readtrail-habits-'))
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('--version prints the version and exits 0', async () => {
    const r = await runCli(['--version'])
    expect(r).toMatchObject({ code: 0, stderr: '' })
    expect(r.stdout).toMatch(/^readtrail \d+\.\d+\.\d+\n$/)
  })

  it('each command has its own --help with examples; a saved query lists its parameters', async () => {
    const verify = await runCli(['verify', '--help'])
    const query = await runCli(['query', '--help'])
    expect(verify.code).toBe(0)
    expect(verify.stdout).toMatch(/^readtrail verify — /)
    expect(verify.stdout).toContain('examples:\n  readtrail verify')
    expect(query.stdout).toMatch(/^readtrail query — /)
    expect(query.stdout).not.toBe(verify.stdout)
    const who = await runCli(['query', 'who-touched-record', '--help'])
    expect(who.code).toBe(0)
    expect(who.stdout).toMatch(/^ {2}table\s+table name/m)
    expect(who.stdout).toMatch(/^ {2}record\s+record id/m)
    expect(who.stdout).toContain('format: ISO 8601')
    const viaHelp = await runCli(['help', 'verify'])
    expect(viaHelp.stdout).toBe(verify.stdout)
  })

  it('says "did you mean" for commands, flags and parameters, with a format hint for times', async () => {
    const command = await runCli(['verfy'])
    expect(command.code).toBe(2)
    expect(command.stderr).toMatch(/^readtrail: USAGE: unknown command "verfy" \(did you mean verify\?\)/)
    const flag = await runCli(['verify', '--indepedent'])
    expect(flag.stderr).toContain('(did you mean --independent?)')
    const params = await runCli(['query', 'records-touched-by-principal', '--param', 'tabel=applicants', '--param', 'from=yesterday'])
    expect(params.code).toBe(2)
    expect(params.stderr).toContain('QUERY_PARAM_INVALID')
    expect(params.stderr).toContain('tabel: unknown parameter (did you mean table?)')
    expect(params.stderr).toContain('principal: missing (required): principal id, e.g. clerk.marta')
    expect(params.stderr).toContain('from: "yesterday" is not a date or time: expected ISO 8601')
  })

  it('refuses a positional argument instead of ignoring it', async () => {
    const r = await runCli(['query', 'who-touched-record', '--param', 'record=1', 'table=x', '--data-dir', join(root, 'none')])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe('readtrail: USAGE: unexpected argument "table=x" for readtrail query; parameters are given as --param table=x\n')
  })

  it('prints bash and zsh completion scripts bash registers and runs', async () => {
    const bash = await runCli(['completion', 'bash'])
    expect(bash.code).toBe(0)
    const script = join(root, 'readtrail.bash')
    writeFileSync(script, bash.stdout)
    const out = execFileSync(
      'bash',
      ['--norc', '--noprofile', '-c', `source ${script} && complete -p readtrail && COMP_WORDS=(readtrail query who-touched-record --param '') COMP_CWORD=4 && _readtrail && echo "\${COMPREPLY[*]}"`],
      { encoding: 'utf8' },
    )
    expect(out).toBe('complete -F _readtrail readtrail\ntable= record= database= from= to=\n')
    const zsh = await runCli(['completion', 'zsh'])
    expect(zsh.code).toBe(0)
    expect(zsh.stdout).toMatch(/^#compdef readtrail\n/)
  })

  describe('read-only commands never create a store', () => {
    const home = join(root, 'no-home')
    const env = { READTRAIL_HOME: home }
    const commands: [string, string[]][] = [
      ['query', ['query', 'who-touched-record', '--param', 'table=applicants', '--param', 'record=1']],
      ['verify', ['verify']],
      ['verify --independent', ['verify', '--independent', '--no-checkpoints']],
      ['evidence export', ['evidence', 'export', '--event', '01939e8a-0000-7000-8000-000000000000', '--out', join(root, 'bundle.json')]],
      ['report', ['report', 'principal', '--param', 'principal=clerk.marta', '--out', join(root, 'report.html')]],
      ['repair', ['repair', '--dry-run']],
    ]

    it.each(commands)('%s on a home with no store: STORE_NOT_FOUND naming the path, nothing created', async (_name, args) => {
      const r = await runCli(args, env)
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toContain(`STORE_NOT_FOUND: no readtrail store at ${join(home, 'chdb')} (no such directory)`)
      expect(existsSync(home)).toBe(false)
      expect(readdirSync(root).filter((f) => f.endsWith('.json') || f.endsWith('.html'))).toEqual([])
    })

    it('an existing directory that holds no store is named and left untouched (the engine never opens it)', async () => {
      const empty = join(root, 'empty-store')
      mkdirSync(empty, { mode: 0o700 })
      const r = await runCli(['query', 'top-readers', '--param', 'from=2026-11-26', '--param', 'to=2026-11-27', '--data-dir', empty], env)
      expect(r.code).toBe(2)
      expect(r.stderr).toContain(`STORE_NOT_FOUND: no readtrail store at ${empty} (the directory holds no embedded ClickHouse store)`)
      expect(readdirSync(empty)).toEqual([])
    })
  })

  it('the demo ends with the exact commands (and environment) that explore its store, and each of them works', async () => {
    const dataDir = join(root, 'demo')
    const demo = await runCli(['demo', '--data-dir', dataDir], { READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(',') })
    expect(demo.code, demo.stderr).toBe(0)
    const block = demo.stdout.slice(demo.stdout.indexOf('Explore this store yourself'))
    const lines = block.split('\n').slice(1).filter((l) => l.startsWith('  ')).map((l) => l.trim())
    const [exportLine, ...commands] = lines
    expect(exportLine).toBe(`export READTRAIL_HOME=${dataDir} READTRAIL_DATA_DIR=${dataDir} READTRAIL_CLICKHOUSE_DATABASE=readtrail READTRAIL_SUBJECT_KEYS=admissions.applicants=id`)
    const env = Object.fromEntries(exportLine!.slice('export '.length).split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
    expect(commands.map((c) => c.split(' ').slice(2, 4).join(' '))).toEqual([
      'query records-touched-by-principal',
      'query who-touched-record',
      'query breach-scope',
      'report breach-scope',
      'verify --no-kafka-checkpoints',
      'evidence verify',
    ])
    for (const command of commands) {
      const [node, script, ...args] = command.split(' ')
      expect(`${node} ${script}`).toBe('node dist/cli/main.js')
      // Exit 0: every query answer stands on verified, signed rows; verify finds the log intact; the bundle is proved.
      const r = await runCli(args, env)
      expect(r.code, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0)
    }
    expect(existsSync(join(dataDir, 'breach-report.html'))).toBe(true)
  })
})
