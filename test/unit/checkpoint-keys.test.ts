import { generateKeyPairSync } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CheckpointError } from '../../checkpoints/errors.js'
import { generateKeyFiles, loadPublicKey, loadSigningKey, publicKeyFromPem } from '../../checkpoints/keys.js'
import { keysCommand } from '../../cli/keys-command.js'
import { ReadtrailError } from '../../common/errors.js'
import { thrownBy } from '../helpers/thrown.js'

describe('checkpoint keys', () => {
  const dirs: string[] = []
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rt-keys-'))
    dirs.push(d)
    return d
  }
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

  it('writes a 0600 private key and a public key that load with the same key id', () => {
    const path = join(fresh(), 'nested', 'dir', 'checkpoint.key')
    const files = generateKeyFiles(path)
    expect(files).toMatchObject({ privatePath: path, publicPath: `${path}.pub` })
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700)
    expect(readFileSync(path, 'utf8')).toContain('-----BEGIN PRIVATE KEY-----')
    expect(readFileSync(files.publicPath, 'utf8')).toBe(files.publicKeyPem)
    const signing = loadSigningKey(path)
    const pub = loadPublicKey(files.publicPath)
    expect(signing.keyId).toBe(files.keyId)
    expect(pub.keyId).toBe(files.keyId)
    expect(pub.pem).toBe(files.publicKeyPem)
    expect(publicKeyFromPem(files.publicKeyPem).keyId).toBe(files.keyId)
    expect(signing.privateKey.asymmetricKeyType).toBe('ed25519')
  })

  it('refuses to overwrite an existing key (or its .pub) and leaves both untouched', () => {
    const dir = fresh()
    const path = join(dir, 'checkpoint.key')
    generateKeyFiles(path)
    const before = readFileSync(path, 'utf8')
    const err = thrownBy(CheckpointError, () => generateKeyFiles(path))
    expect(err).toMatchObject({ code: 'CHECKPOINT_KEY_INVALID', details: { path } })
    expect(err.message).toContain('already exists; refusing to overwrite')
    expect(readFileSync(path, 'utf8')).toBe(before)

    const lonePub = join(dir, 'other.key')
    writeFileSync(`${lonePub}.pub`, 'keep me')
    expect(thrownBy(CheckpointError, () => generateKeyFiles(lonePub))).toMatchObject({ code: 'CHECKPOINT_KEY_INVALID', details: { path: `${lonePub}.pub` } })
    expect(() => statSync(lonePub)).toThrow()
    expect(readFileSync(`${lonePub}.pub`, 'utf8')).toBe('keep me')
  })

  it('reports a missing key as CHECKPOINT_KEY_MISSING and says how to make one', () => {
    const path = join(fresh(), 'absent.key')
    const err = thrownBy(CheckpointError, () => loadSigningKey(path))
    expect(err).toMatchObject({ code: 'CHECKPOINT_KEY_MISSING', details: { path } })
    expect(err.message).toContain('readtrail keys generate')
    expect(thrownBy(CheckpointError, () => loadPublicKey(`${path}.pub`))).toMatchObject({ code: 'CHECKPOINT_KEY_MISSING' })
  })

  it('refuses a private key others can read', () => {
    const path = join(fresh(), 'checkpoint.key')
    generateKeyFiles(path)
    chmodSync(path, 0o640)
    const err = thrownBy(CheckpointError, () => loadSigningKey(path))
    expect(err).toMatchObject({ code: 'CHECKPOINT_KEY_INVALID', details: { path } })
    expect(err.message).toContain('chmod 600')
    chmodSync(path, 0o604)
    expect(thrownBy(CheckpointError, () => loadSigningKey(path)).code).toBe('CHECKPOINT_KEY_INVALID')
    chmodSync(path, 0o400)
    expect(loadSigningKey(path).path).toBe(path)
  })

  it.each([
    ['garbage', 'not a key at all\n'],
    ['an RSA private key', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()],
    ['an Ed25519 public key', generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString()],
    ['an encrypted key', generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'x' }).toString()],
  ])('refuses %s as a signing key', (_name, text) => {
    const path = join(fresh(), 'checkpoint.key')
    writeFileSync(path, text, { mode: 0o600 })
    expect(thrownBy(CheckpointError, () => loadSigningKey(path))).toMatchObject({ code: 'CHECKPOINT_KEY_INVALID', details: { path } })
  })

  it('refuses a directory where the key should be', () => {
    const dir = fresh()
    chmodSync(dir, 0o700)
    expect(thrownBy(CheckpointError, () => loadSigningKey(dir)).code).toBe('CHECKPOINT_KEY_INVALID')
  })

  it.each([
    ['garbage', 'nope'],
    ['an RSA public key', generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString()],
    ['an Ed25519 private key', generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()],
    ['a truncated PEM', '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n'],
    ['an oversized text', `-----BEGIN PUBLIC KEY-----\n${'A'.repeat(100_000)}\n-----END PUBLIC KEY-----\n`],
  ])('refuses %s as a public key', (_name, text) => {
    expect(thrownBy(CheckpointError, () => publicKeyFromPem(text)).code).toBe('CHECKPOINT_KEY_INVALID')
    const path = join(fresh(), 'checkpoint.key.pub')
    writeFileSync(path, text)
    expect(thrownBy(CheckpointError, () => loadPublicKey(path))).toMatchObject({ code: 'CHECKPOINT_KEY_INVALID', details: { path } })
  })
})

describe('readtrail keys', () => {
  it('generates a key pair and prints the paths, key id and public key, never the private key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rt-keys-cmd-'))
    try {
      const out = join(dir, 'checkpoint.key')
      let printed = ''
      const stdout = { write: (chunk: string) => ((printed += chunk), true) } as unknown as NodeJS.WritableStream
      expect(keysCommand({ sub: 'generate', out }, { checkpointKey: '/nonexistent/c.key', verifierKey: '/nonexistent/v.key', home: dir, trustedProducers: join(dir, 'trusted-producers.json') }, stdout)).toBe(0)
      const { keyId, pem } = loadPublicKey(`${out}.pub`)
      expect(printed).toContain(out)
      expect(printed).toContain(`${out}.pub`)
      expect(printed).toContain(keyId)
      expect(printed).toContain(pem.trimEnd())
      expect(printed).toContain('verifiers need only the .pub file')
      expect(printed).not.toContain('PRIVATE KEY')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it.each([undefined, 'rotate'])('rejects subcommand %s as USAGE', (sub) => {
    expect(thrownBy(ReadtrailError, () => keysCommand({ sub, out: '/nonexistent/x.key' }, { checkpointKey: '/nonexistent/c.key', verifierKey: '/nonexistent/v.key', home: '/nonexistent', trustedProducers: '/nonexistent/t.json' }))).toMatchObject({ code: 'USAGE' })
  })
})
