import { sign, verify } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadTrustedProducers } from '../../consumers/trusted-producers.js'
import { loadProducerSigningKey } from '../../producers/signing-key.js'
import { runCli } from '../helpers/cli-process.js'
import { freshTempDir } from '../helpers/temp-dir.js'

const mode = (path: string) => statSync(path).mode & 0o777

describe('readtrail keys generate --producer / list-producers (the real CLI)', () => {
  const home = freshTempDir('rt-producer-home-')
  // No READTRAIL_TRUSTED_PRODUCERS (the CLI helper sets the suite's): the file defaults to one under READTRAIL_HOME.
  const env = { READTRAIL_HOME: home, READTRAIL_TRUSTED_PRODUCERS: '' }
  const trustedPath = join(home, 'trusted-producers.json')
  const keyPath = (service: string) => join(home, 'producer-keys', `${service}.pem`)

  it('writes two services\' keys 0600 and trusts both; what it wrote loads, and a signature made with one verifies with the other', async () => {
    const first = await runCli(['keys', 'generate', '--producer', 'records-api'], env)
    expect(first.code, first.stderr).toBe(0)
    const second = await runCli(['keys', 'generate', '--producer', 'billing'], env)
    expect(second.code, second.stderr).toBe(0)

    for (const service of ['records-api', 'billing']) {
      expect(mode(keyPath(service))).toBe(0o600)
      expect(mode(`${keyPath(service)}.pub`)).toBe(0o600)
    }
    expect(mode(join(home, 'producer-keys'))).toBe(0o700)
    expect(mode(trustedPath)).toBe(0o600)
    expect(readFileSync(keyPath('billing'), 'utf8')).toContain('-----BEGIN PRIVATE KEY-----')

    const records = loadProducerSigningKey(keyPath('records-api'))
    const billing = loadProducerSigningKey(keyPath('billing'))
    expect(first.stdout).toContain(keyPath('records-api'))
    expect(first.stdout).toContain(`${keyPath('records-api')}.pub`)
    expect(first.stdout).toContain(records.keyId)
    expect(first.stdout).toContain('service:      records-api')
    expect(first.stdout).toContain(trustedPath)
    expect(first.stdout).toMatch(/give the private key to records-api only \(SDK option signingKey\); the chain writer reads the trusted file/)
    expect(first.stdout).not.toContain('PRIVATE KEY')

    const file = JSON.parse(readFileSync(trustedPath, 'utf8')) as { version: number; producers: Record<string, string>[] }
    expect(file.version).toBe(1)
    expect(file.producers.map((p) => Object.keys(p).sort())).toEqual([
      ['added_at', 'key_id', 'public_key', 'service'],
      ['added_at', 'key_id', 'public_key', 'service'],
    ])
    expect(file.producers.map((p) => [p['service'], p['key_id']])).toEqual([
      ['records-api', records.keyId],
      ['billing', billing.keyId],
    ])
    expect(file.producers[0]!['public_key']).toBe(readFileSync(`${keyPath('records-api')}.pub`, 'utf8'))

    const trusted = loadTrustedProducers(trustedPath)
    const batch = Buffer.from('a batch of read events')
    const signature = sign(null, batch, records.privateKey)
    expect(trusted.byKeyId(records.keyId)?.service).toBe('records-api')
    expect(verify(null, batch, trusted.byKeyId(records.keyId)!.publicKey, signature)).toBe(true)
    // billing's key does not vouch for records-api's batch.
    expect(verify(null, batch, trusted.byKeyId(billing.keyId)!.publicKey, signature)).toBe(false)

    const listed = await runCli(['keys', 'list-producers', '--format', 'json'], env)
    expect(listed.code, listed.stderr).toBe(0)
    expect(JSON.parse(listed.stdout)).toEqual([
      { key_id: records.keyId, service: 'records-api', added_at: file.producers[0]!['added_at'] },
      { key_id: billing.keyId, service: 'billing', added_at: file.producers[1]!['added_at'] },
    ])
    const table = await runCli(['keys', 'list-producers'], env)
    expect(table.code, table.stderr).toBe(0)
    expect(table.stdout).toMatch(/^key_id\s+service\s+added_at/)
    expect(table.stdout).toContain('(2 rows)')
  })

  it('refuses the same service again at its default path, leaving its key and the trusted file as they were', async () => {
    const before = readFileSync(trustedPath, 'utf8')
    const key = readFileSync(keyPath('records-api'), 'utf8')
    const again = await runCli(['keys', 'generate', '--producer', 'records-api'], env)
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/^readtrail: PRODUCER_KEY_INVALID: .*already exists/)
    expect(readFileSync(trustedPath, 'utf8')).toBe(before)
    expect(readFileSync(keyPath('records-api'), 'utf8')).toBe(key)
  })

  it.each(['../escape', 'records api', '.hidden', '-flag', 'a/b', 'x'.repeat(129)])('refuses %j as a key file name at the default path, creating nothing', async (service) => {
    const before = readFileSync(trustedPath, 'utf8')
    const keysBefore = readdirSync(join(home, 'producer-keys')).sort()
    // --producer=VALUE: parseArgs reads a value starting with a dash only in this form.
    const r = await runCli(['keys', 'generate', `--producer=${service}`], env)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^readtrail: USAGE: .*give --out/)
    expect(readFileSync(trustedPath, 'utf8')).toBe(before)
    expect(readdirSync(join(home, 'producer-keys')).sort()).toEqual(keysBefore)
    expect(existsSync(join(home, 'escape.pem'))).toBe(false)
  })

  it('takes any printable service name with --out, and a --trusted file of its own (created in a private directory)', async () => {
    const out = join(home, 'elsewhere', 'team records.pem')
    const trusted = join(home, 'writer-b', 'trusted.json')
    const r = await runCli(['keys', 'generate', '--producer', 'team/records api', '--out', out, '--trusted', trusted], env)
    expect(r.code, r.stderr).toBe(0)
    expect(mode(join(home, 'writer-b'))).toBe(0o700)
    expect(mode(trusted)).toBe(0o600)
    const loaded = loadTrustedProducers(trusted)
    expect(loaded.producers.map((p) => [p.service, p.keyId])).toEqual([['team/records api', loadProducerSigningKey(out).keyId]])
    // The default trusted file is untouched.
    expect(loadTrustedProducers(trustedPath).producers).toHaveLength(2)
  })

  it('refuses to add to a trusted file that does not load, and makes no key', async () => {
    const trusted = join(home, 'broken.json')
    writeFileSync(trusted, '{"version":1,"producers":[{"key_id":"x"}]}', { mode: 0o600 })
    const out = join(home, 'producer-keys', 'never.pem')
    const r = await runCli(['keys', 'generate', '--producer', 'never', '--out', out, '--trusted', trusted], env)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^readtrail: TRUSTED_PRODUCERS_INVALID: .*broken\.json.*producers\.0/)
    expect(existsSync(out)).toBe(false)
  })

  it('adds to the file READTRAIL_TRUSTED_PRODUCERS names (the one consume trusts), and lists it', async () => {
    const configured = join(home, 'deployed', 'trusted.json')
    const r = await runCli(['keys', 'generate', '--producer', 'mailer'], { ...env, READTRAIL_TRUSTED_PRODUCERS: configured })
    expect(r.code, r.stderr).toBe(0)
    expect(loadTrustedProducers(configured).producers.map((p) => p.service)).toEqual(['mailer'])
    const listed = await runCli(['keys', 'list-producers', '--format', 'json'], { ...env, READTRAIL_TRUSTED_PRODUCERS: configured })
    expect(JSON.parse(listed.stdout).map((p: { service: string }) => p.service)).toEqual(['mailer'])
  })

  it('list-producers without a trusted file says so; --producer with --verifier and --trusted alone are usage errors', async () => {
    const missing = await runCli(['keys', 'list-producers', '--trusted', join(home, 'none.json')], env)
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/^readtrail: TRUSTED_PRODUCERS_MISSING: .*none\.json/)
    const both = await runCli(['keys', 'generate', '--producer', 'x', '--verifier'], env)
    expect(both.code).toBe(2)
    expect(both.stderr).toContain('USAGE')
    const lone = await runCli(['keys', 'generate', '--trusted', trustedPath], env)
    expect(lone.code).toBe(2)
    expect(lone.stderr).toContain('--producer')
  })
})
