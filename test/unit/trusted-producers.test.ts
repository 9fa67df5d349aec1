import { generateKeyPairSync } from 'node:crypto'
import { chmodSync, chownSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { keyId } from '../../checkpoints/checkpoint.js'
import { ReadtrailError } from '../../common/errors.js'
import { formatTrustedProducers, loadTrustedProducers, MAX_TRUSTED_PRODUCERS, MAX_TRUSTED_PRODUCERS_BYTES } from '../../consumers/trusted-producers.js'
import { freshTempDir } from '../helpers/temp-dir.js'
import { thrownBy } from '../helpers/thrown.js'

/** An entry as the file holds it, for a fresh Ed25519 key. */
function entry(service = 'records-api') {
  const { publicKey } = generateKeyPairSync('ed25519')
  return { key_id: keyId(publicKey), service, public_key: publicKey.export({ format: 'pem', type: 'spki' }).toString(), added_at: '2026-12-05T10:00:00.000Z' }
}

describe('loadTrustedProducers', () => {
  const fresh = () => freshTempDir('rt-trusted-')

  const file = (content: unknown, mode = 0o600) => {
    const path = join(fresh(), 'trusted-producers.json')
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
    chmodSync(path, mode)
    return path
  }

  /** The refusal of `path`, checked to be TRUSTED_PRODUCERS_INVALID naming the path (and `where`, an entry and field). */
  const refusal = (path: string, where?: string) => {
    const err = thrownBy(ReadtrailError, () => loadTrustedProducers(path))
    expect(err).toMatchObject({ code: 'TRUSTED_PRODUCERS_INVALID', retriable: false, details: { path } })
    expect(err.message).toContain(path)
    if (where) expect(err.message).toContain(where)
    return err
  }

  it('loads every entry, frozen, each found by its key id', () => {
    const a = entry('records-api')
    const b = entry('billing')
    const path = file({ version: 1, producers: [a, b] })
    const trusted = loadTrustedProducers(path)
    expect(trusted.path).toBe(path)
    expect(trusted.producers.map((p) => [p.keyId, p.service, p.addedAt])).toEqual([
      [a.key_id, 'records-api', a.added_at],
      [b.key_id, 'billing', b.added_at],
    ])
    expect(trusted.byKeyId(b.key_id)?.service).toBe('billing')
    expect(trusted.byKeyId(b.key_id)?.publicKey.asymmetricKeyType).toBe('ed25519')
    expect(trusted.byKeyId('0'.repeat(64))).toBeUndefined()
    expect(Object.isFrozen(trusted)).toBe(true)
    expect(Object.isFrozen(trusted.producers)).toBe(true)
    expect(Object.isFrozen(trusted.producers[0])).toBe(true)
  })

  it('reads a full file: the most entries, as keys generate writes them, fit the size bound', () => {
    const one = entry('s'.repeat(64))
    const text = formatTrustedProducers(Array.from({ length: MAX_TRUSTED_PRODUCERS }, () => ({ keyId: one.key_id, service: one.service, publicKeyPem: one.public_key, addedAt: one.added_at })))
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_TRUSTED_PRODUCERS_BYTES)
  })

  it('reads an empty list, and a 0644 file (only writing is refused to others)', () => {
    expect(loadTrustedProducers(file({ version: 1, producers: [] }, 0o644)).producers).toEqual([])
  })

  it('writes what it reads: formatTrustedProducers round-trips', () => {
    const path = file({ version: 1, producers: [entry(), entry('billing')] })
    const again = file(formatTrustedProducers(loadTrustedProducers(path).producers))
    expect(loadTrustedProducers(again).producers.map((p) => p.keyId)).toEqual(loadTrustedProducers(path).producers.map((p) => p.keyId))
  })

  it('a missing file is TRUSTED_PRODUCERS_MISSING, naming the path and the command that makes one', () => {
    const path = join(fresh(), 'absent.json')
    const err = thrownBy(ReadtrailError, () => loadTrustedProducers(path))
    expect(err).toMatchObject({ code: 'TRUSTED_PRODUCERS_MISSING', retriable: false, details: { path } })
    expect(err.message).toContain('readtrail keys generate --producer')
  })

  it('refuses a key_id that is not the id of its public key (never trusted from the file)', () => {
    const a = entry()
    const b = entry('billing')
    const err = refusal(file({ version: 1, producers: [a, { ...b, key_id: a.key_id }] }), 'producers.1.key_id')
    expect(err.details).toMatchObject({ issues: [{ key: 'producers.1.key_id', problem: 'does not match the public key' }] })
  })

  it('refuses the same key twice, naming both entries', () => {
    const a = entry()
    const err = refusal(file({ version: 1, producers: [a, entry('billing'), { ...a, service: 'impostor' }] }), 'producers.2.key_id')
    expect(err.message).toContain('producers.0')
  })

  it.each([
    ['an RSA key', generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey],
    ['an X25519 key', generateKeyPairSync('x25519').publicKey],
  ])('refuses %s as a public key', (_name, key) => {
    const bad = { ...entry(), public_key: key.export({ format: 'pem', type: 'spki' }).toString() }
    refusal(file({ version: 1, producers: [entry('ok'), bad] }), 'producers.1.public_key')
  })

  it('refuses a private key in public_key (a leaked secret is not a trust anchor)', () => {
    const bad = { ...entry(), public_key: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }
    refusal(file({ version: 1, producers: [bad] }), 'producers.0.public_key')
  })

  it.each([
    ['bad JSON', '{"version": 1, "producers": [', 'not valid JSON'],
    ['another version', { version: 2, producers: [] }, 'version'],
    ['no producers', { version: 1 }, 'producers'],
    ['an extra top-level field', { version: 1, producers: [], trust_everyone: true }, 'trust_everyone'],
    ['an extra entry field', { version: 1, producers: [{ ...entry(), expires_at: '2027-01-01T00:00:00Z' }] }, 'producers.0.expires_at'],
    ['an empty service', { version: 1, producers: [{ ...entry(), service: '' }] }, 'producers.0.service'],
    ['a service of 257 characters', { version: 1, producers: [{ ...entry(), service: 's'.repeat(257) }] }, 'producers.0.service'],
    ['a service with a terminal escape', { version: 1, producers: [{ ...entry(), service: 'api\u001b[2J' }] }, 'producers.0.service'],
    ['a key_id that is not hex', { version: 1, producers: [{ ...entry(), key_id: 'records-api' }] }, 'producers.0.key_id'],
    ['an added_at that is not ISO time', { version: 1, producers: [{ ...entry(), added_at: 'yesterday' }] }, 'producers.0.added_at'],
    ['a number as service', { version: 1, producers: [{ ...entry(), service: 7 }] }, 'producers.0.service'],
    ['an array at the top', [], '(file)'],
  ])('refuses %s', (_name, content, where) => {
    refusal(file(content), where)
  })

  it(`refuses more than ${MAX_TRUSTED_PRODUCERS} entries`, () => {
    const one = entry()
    // Same entry repeated: the count is refused by the schema before any key is parsed.
    const text = JSON.stringify({ version: 1, producers: Array.from({ length: MAX_TRUSTED_PRODUCERS + 1 }, () => ({ ...one, public_key: 'x' })) })
    expect(text.length).toBeLessThan(MAX_TRUSTED_PRODUCERS_BYTES)
    refusal(file(text), 'producers')
  })

  it('refuses a file over the size bound before parsing it', () => {
    const err = refusal(file(`{"version":1,"producers":[]}${' '.repeat(MAX_TRUSTED_PRODUCERS_BYTES)}`))
    expect(err.details).toMatchObject({ issues: [{ problem: 'too-large' }] })
  })

  it.each([0o620, 0o602, 0o666])('refuses a file others can write (mode %o)', (mode) => {
    const err = refusal(file({ version: 1, producers: [entry()] }, mode))
    expect(err.details).toMatchObject({ issues: [{ problem: 'open-mode' }] })
    expect(err.message).toContain('chmod go-w')
  })

  it('follows a symlink and checks the file it leads to', () => {
    const target = file({ version: 1, producers: [entry()] })
    const link = join(fresh(), 'trusted.json')
    symlinkSync(target, link)
    expect(loadTrustedProducers(link).producers).toHaveLength(1)
    chmodSync(target, 0o646)
    refusal(link)
  })

  it('refuses a directory', () => {
    expect(refusal(fresh()).details).toMatchObject({ issues: [{ problem: 'not-a-file' }] })
  })

  it.skipIf(process.getuid?.() !== 0)('refuses a file owned by another user; root-owned is accepted', () => {
    const path = file({ version: 1, producers: [entry()] })
    // Tests run as root here: the file is root's, which is accepted; then another user's.
    expect(loadTrustedProducers(path).producers).toHaveLength(1)
    chownSync(path, 65534, 65534)
    expect(refusal(path).details).toMatchObject({ issues: [{ problem: 'foreign-owner' }] })
  })
})
