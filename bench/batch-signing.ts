/**
 * Issue 13 asks producers to sign each event batch and the writer to check
 * it, choosing Ed25519 or HMAC-SHA256 by measurement. This bench prints the
 * CPU cost of both, per batch and per event, for the batch sizes the
 * producer sends (one idle read per message up to a full batch), on
 * payloads of --event-bytes random bytes (the Avro events are ~400 B).
 *
 *   npx tsx bench/batch-signing.ts [--event-bytes=400] [--batches=1,10,100,1000] [--rounds=3]
 *
 * Ed25519: a public key per producer, so the writer (and verify) can check
 * without holding anything that can forge. HMAC: one shared secret per
 * producer that the writer must hold too, so whoever reads the writer's
 * keys can sign as any producer.
 */
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto'
import { parseBenchArgs } from './args.js'

const args = parseBenchArgs('CPU cost of signing and checking event batches: Ed25519 against HMAC-SHA256', {
  'event-bytes': { type: 'number', default: 400, help: 'bytes per event' },
  batches: { type: 'list', default: [1, 10, 100, 1000], help: 'events per batch to measure' },
  rounds: { type: 'number', default: 3, help: 'rounds per case (best one reported)' },
})

const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const secret = randomBytes(32)

interface Case {
  name: string
  sign: (body: Buffer) => Buffer
  check: (body: Buffer, signature: Buffer) => boolean
}

const CASES: Case[] = [
  { name: 'Ed25519', sign: (body) => sign(null, body, privateKey), check: (body, sig) => verify(null, body, publicKey, sig) },
  // Ed25519 hashes its message twice (SHA-512): over a 32-byte SHA-256
  // digest of the batch it signs in constant time after one pass.
  {
    name: 'Ed25519(SHA-256)',
    sign: (body) => sign(null, createHash('sha256').update(body).digest(), privateKey),
    check: (body, sig) => verify(null, createHash('sha256').update(body).digest(), publicKey, sig),
  },
  {
    name: 'HMAC-SHA256',
    sign: (body) => createHmac('sha256', secret).update(body).digest(),
    check: (body, sig) => createHmac('sha256', secret).update(body).digest().equals(sig),
  },
]

/** Microseconds of CPU (user + system) per call of `fn`, over enough calls to last ~200 ms. */
function microsPerCall(fn: () => void): number {
  let calls = 0
  const start = process.cpuUsage()
  const began = process.hrtime.bigint()
  while (process.hrtime.bigint() - began < 200_000_000n) {
    fn()
    calls++
  }
  const used = process.cpuUsage(start)
  return (used.user + used.system) / calls
}

const rows: string[][] = []
for (const events of args.batches) {
  const body = randomBytes(events * args['event-bytes'])
  for (const c of CASES) {
    const signature = c.sign(body)
    if (!c.check(body, signature)) throw new Error(`${c.name}: a signature it made does not check`)
    let signUs = Infinity
    let checkUs = Infinity
    for (let r = 0; r < args.rounds; r++) {
      signUs = Math.min(signUs, microsPerCall(() => c.sign(body)))
      checkUs = Math.min(checkUs, microsPerCall(() => c.check(body, signature)))
    }
    rows.push([String(events), c.name, signUs.toFixed(1), (signUs / events).toFixed(2), checkUs.toFixed(1), (checkUs / events).toFixed(2)])
  }
}

const header = ['events/batch', 'scheme', 'sign µs/batch', 'sign µs/event', 'check µs/batch', 'check µs/event']
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
console.log(`batch signing — ${args['event-bytes']} B events, CPU time, best of ${args.rounds}`)
console.log(line(header))
console.log(line(widths.map((w) => '-'.repeat(w))))
for (const r of rows) console.log(line(r))
