import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keyId } from '../../checkpoints/checkpoint.js'
import { formatTrustedProducers } from '../../consumers/trusted-producers.js'

/**
 * The services tests produce as. Each has its own Ed25519 key, all listed in
 * one trusted-producers file, so test producers sign as deployed ones do and
 * test writers enforce signatures as deployed ones do.
 */
const SERVICES = [
  'practice-app', 'billing', 'registry-api', 'svc', 's', 'records-api', 'firearms-portal', 'reporting', 'registry', 'ward-app', 'quiet-app',
  'practice-support', 'packed-sdk-app', 'mailer', 'first-run-app', 'firearms-office', 'test-service', 'registry-export', 'killed-app', 'bench', 'demo',
  'hook-test', 'closed-producer', 'closed-app',
] as const

const dir = mkdtempSync(join(tmpdir(), 'readtrail-producer-keys-'))
chmodSync(dir, 0o700)
process.once('exit', () => rmSync(dir, { recursive: true, force: true }))

const keys = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>(SERVICES.map((s) => [s, generateKeyPairSync('ed25519')]))

/** The trusted-producers file listing every test service's key (0600, in a 0700 directory). */
export const TEST_TRUSTED_PRODUCERS: string = join(dir, 'trusted-producers.json')
writeFileSync(
  TEST_TRUSTED_PRODUCERS,
  formatTrustedProducers(
    [...keys].map(([service, k]) => ({ keyId: keyId(k.publicKey), service, publicKeyPem: k.publicKey.export({ type: 'spki', format: 'pem' }).toString(), addedAt: '2026-12-05T00:00:00.000Z' })),
  ),
  { mode: 0o600 },
)

/** The signing key of a test service (one of SERVICES). */
export function testSigningKey(service: string): KeyObject {
  const k = keys.get(service)
  if (!k) throw new Error(`no test signing key for service ${JSON.stringify(service)}: add it to SERVICES in test/helpers/producer-trust.ts`)
  return k.privateKey
}

/**
 * The signing key of a test service as a PKCS#8 PEM file (0600), for a
 * producer in another process (a fixture app) that loads its key as
 * deployed producers do, from `signingKey: <path>`.
 */
export function testSigningKeyFile(service: string): string {
  const path = join(dir, `${service}.pem`)
  writeFileSync(path, testSigningKey(service).export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  return path
}

/** Writer settings that trust every test service's key (and nothing unsigned). */
export const TRUSTED_WRITER = Object.freeze({ trustedProducers: TEST_TRUSTED_PRODUCERS })

/**
 * Writer settings of a deployment migrating from unsigned producers: the test
 * services' keys trusted, and unsigned messages stored too. For tests that
 * publish wire-1 events (`createCodec(...).encode`) to exercise something
 * other than producer authentication (dead letters, replays, resume, repair).
 */
export const MIGRATING_WRITER = Object.freeze({ ...TRUSTED_WRITER, allowUnsigned: true })
