import { generateKeyPairSync } from 'node:crypto'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keyId } from '../checkpoints/checkpoint.js'
import { formatTrustedProducers } from '../consumers/trusted-producers.js'

/** The service the benches produce as. */
export const BENCH_SERVICE = 'registry-api'

/**
 * The benches sign as a deployed producer does, and their writers check
 * signatures as a deployed writer does: one key for BENCH_SERVICE, in a
 * private directory made once per run. Worker threads of the same run (they
 * inherit the environment) read the same files.
 */
export function benchSigning(): { signingKey: string; trustedProducers: string } {
  let dir = process.env['READTRAIL_BENCH_KEYS']
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), 'rt-bench-keys-'))
    chmodSync(dir, 0o700)
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    writeFileSync(join(dir, 'producer.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
    writeFileSync(join(dir, 'trusted-producers.json'), formatTrustedProducers([{ keyId: keyId(publicKey), service: BENCH_SERVICE, publicKeyPem: pem, addedAt: new Date().toISOString() }]), { mode: 0o600 })
    process.env['READTRAIL_BENCH_KEYS'] = dir
    const made = dir
    process.once('exit', () => rmSync(made, { recursive: true, force: true }))
  }
  return { signingKey: join(dir, 'producer.pem'), trustedProducers: join(dir, 'trusted-producers.json') }
}
