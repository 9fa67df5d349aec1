import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { keyId } from '../../checkpoints/checkpoint.js'
import { parseConfig } from '../../common/config.js'
import { AuditProducerConfig } from '../../producers/config.js'
import { ProducerError } from '../../producers/errors.js'
import { loadProducerSigningKey } from '../../producers/signing-key.js'
import { freshTempDir } from '../helpers/temp-dir.js'
import { thrownBy } from '../helpers/thrown.js'

const ed25519Pem = () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()

describe('loadProducerSigningKey', () => {
  const fresh = () => freshTempDir('rt-producer-key-')

  /** A key file with `text` and `mode`, in a fresh directory. */
  const keyFile = (text: string | Buffer, mode = 0o600) => {
    const path = join(fresh(), 'records-api.pem')
    writeFileSync(path, text, { mode })
    chmodSync(path, mode)
    return path
  }

  /** The refusal for `source`, checked to name the path and never carry the key. */
  const refusal = (source: string, pem?: string) => {
    const err = thrownBy(ProducerError, () => loadProducerSigningKey(source))
    expect(err.code).toBe('PRODUCER_KEY_INVALID')
    expect(err.retriable).toBe(false)
    expect(err.message).toContain(source)
    expect(err.details).toMatchObject({ path: source })
    if (pem) {
      const body = pem.split('\n')[1]!
      expect(JSON.stringify(err.toJSON())).not.toContain(body)
      expect(err.message).not.toContain(body)
    }
    return err
  }

  it('loads an Ed25519 PKCS#8 PEM file: key id from the public key, a signature verifies', () => {
    const pem = ed25519Pem()
    const key = loadProducerSigningKey(keyFile(pem))
    expect(key.privateKey.asymmetricKeyType).toBe('ed25519')
    expect(key.publicKey.type).toBe('public')
    expect(key.keyId).toBe(keyId(key.publicKey))
    expect(Object.isFrozen(key)).toBe(true)
    const data = Buffer.from('batch')
    expect(verify(null, data, key.publicKey, sign(null, data, key.privateKey))).toBe(true)
  })

  it('accepts an Ed25519 private KeyObject as it is', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const key = loadProducerSigningKey(privateKey)
    expect(key.privateKey).toBe(privateKey)
    expect(key.keyId).toBe(keyId(publicKey))
  })

  // parseConfig deep-freezes plain data only: Node caches a key's type on the KeyObject at its first read.
  it('accepts a private KeyObject given as the producer\'s signingKey option, after the config was frozen', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const config = parseConfig(AuditProducerConfig, { service: 'svc', signingKey: privateKey }, 'audit producer')
    expect(loadProducerSigningKey(config.signingKey!).keyId).toBe(keyId(publicKey))
  })

  it.each([
    ['an RSA key', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey, 'rsa'],
    ['an X25519 key', () => generateKeyPairSync('x25519').privateKey, 'x25519'],
  ])('refuses %s as a KeyObject and as a file', (_name, make, type) => {
    const key = make()
    const err = thrownBy(ProducerError, () => loadProducerSigningKey(key))
    expect(err).toMatchObject({ code: 'PRODUCER_KEY_INVALID', details: { problem: 'not-ed25519', key_type: type } })
    const pem = key.export({ format: 'pem', type: 'pkcs8' }).toString()
    expect(refusal(keyFile(pem), pem).details).toMatchObject({ problem: 'not-ed25519' })
  })

  it('refuses a public KeyObject', () => {
    const err = thrownBy(ProducerError, () => loadProducerSigningKey(generateKeyPairSync('ed25519').publicKey))
    expect(err).toMatchObject({ code: 'PRODUCER_KEY_INVALID', details: { problem: 'not-private-key' } })
  })

  it('refuses a missing file, naming it', () => {
    expect(refusal(join(fresh(), 'absent.pem')).details).toMatchObject({ problem: 'missing' })
  })

  it('refuses a directory where the key should be', () => {
    const dir = join(fresh(), 'key.pem')
    mkdirSync(dir, { mode: 0o700 })
    expect(refusal(dir).details).toMatchObject({ problem: 'not-a-file' })
  })

  it.each([0o640, 0o604, 0o660, 0o606])('refuses a key file with mode %o (others can read or write it), key unread', (mode) => {
    const pem = ed25519Pem()
    const err = refusal(keyFile(pem, mode), pem)
    expect(err.details).toMatchObject({ problem: 'open-mode' })
    expect(err.message).toContain('chmod 600')
  })

  it('accepts a read-only key file (0400)', () => {
    expect(loadProducerSigningKey(keyFile(ed25519Pem(), 0o400)).privateKey.asymmetricKeyType).toBe('ed25519')
  })

  it('refuses an oversized file before parsing it', () => {
    const pem = ed25519Pem()
    const err = refusal(keyFile(`${pem}${'#'.repeat(64 * 1024)}`), pem)
    expect(err.details).toMatchObject({ problem: 'too-large' })
  })

  it.each([
    ['garbage', 'not a key at all\n'],
    ['an Ed25519 public key', generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString()],
    ['an encrypted key', generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'x' }).toString()],
    ['a truncated PEM', '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2Vw\n-----END PRIVATE KEY-----\n'],
    ['a PKCS#1 RSA key', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs1' }).toString()],
  ])('refuses %s: not a PKCS#8 PEM private key', (_name, text) => {
    expect(refusal(keyFile(text)).details).toMatchObject({ problem: 'not-pkcs8-pem' })
  })

  it('follows a symlink (secret mounts are links) and checks the file it leads to', () => {
    const target = keyFile(ed25519Pem())
    const link = join(fresh(), 'linked.pem')
    symlinkSync(target, link)
    expect(loadProducerSigningKey(link).privateKey.asymmetricKeyType).toBe('ed25519')
    chmodSync(target, 0o644)
    expect(refusal(link).details).toMatchObject({ problem: 'open-mode' })
  })

  it.skipIf(process.getuid?.() !== 0)('refuses a key file owned by another user', () => {
    const path = keyFile(ed25519Pem())
    // Running as root here: hand the file to nobody (65534).
    chownSync(path, 65534, 65534)
    expect(refusal(path).details).toMatchObject({ problem: 'foreign-owner' })
  })
})
