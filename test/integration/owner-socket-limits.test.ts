import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { request, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadPublicKey } from '../../checkpoints/keys.js'
import { callOwner, ownerSocketPath, type OwnerTarget } from '../../cli/owner-api.js'
import { OWNER_LIMITS } from '../../cli/owner-admission.js'
import { createNonce, isOwnerAnswerSigned } from '../../cli/owner-auth.js'
import { testHome } from '../helpers/cli-process.js'

/**
 * Issue 11: the owner socket took any number of requests of any size at
 * once (8 concurrent 60 MB requests took the owner from 354 MB to 1.34 GB).
 * The owner here is a real serveOwnerApi over a real embedded store, in a
 * process of its own so that its peak memory can be read from /proc.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DATABASE = 'readtrail'
const dataDir = mkdtempSync(join(tmpdir(), 'rt-owner-limits-'))
const scratch = mkdtempSync(join(tmpdir(), 'rt-owner-limits-scratch-'))
afterAll(() => [dataDir, scratch].forEach((d) => rmSync(d, { recursive: true, force: true })))

const socketPath = ownerSocketPath(dataDir)
const target = (): OwnerTarget => ({ dataDir, database: DATABASE, publicKeyPath: join(testHome(), 'keys', 'checkpoint.key.pub') })
let owner: ChildProcess

beforeAll(async () => {
  const script = join(scratch, 'owner.mjs')
  const dist = (p: string) => JSON.stringify(pathToFileURL(join(ROOT, 'dist', p)).href)
  writeFileSync(
    script,
    `const { openStore } = await import(${dist('store/store.js')})
const { StoreConfig } = await import(${dist('store/config.js')})
const { serveOwnerApi } = await import(${dist('cli/owner-api.js')})
const { loadSigningKey } = await import(${dist('checkpoints/keys.js')})
const quiet = { info() {}, warn() {}, debug() {}, error() {}, child() { return quiet } }
const store = openStore(StoreConfig.parse({ database: ${JSON.stringify(DATABASE)}, dataDir: process.env.RT_DIR }), { command: 'readtrail consume', logger: quiet })
await store.ensureSchema()
await serveOwnerApi(store, process.env.RT_DIR, quiet, { key: loadSigningKey(process.env.RT_KEY) })
process.on('SIGTERM', () => store.close().finally(() => process.exit(0)))
process.stdout.write('ready\\n')
`,
  )
  owner = spawn(process.execPath, [script], {
    cwd: ROOT,
    env: { ...process.env, RT_DIR: dataDir, RT_KEY: join(testHome(), 'keys', 'checkpoint.key') },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  owner.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c))
  await new Promise<void>((resolve, reject) => {
    owner.stdout!.setEncoding('utf8').on('data', (c: string) => c.includes('ready') && resolve())
    owner.on('exit', (code) => reject(new Error(`owner exited ${code}: ${err}`)))
  })
})

afterAll(async () => {
  const exited = new Promise((r) => owner.once('exit', r))
  owner.kill('SIGTERM')
  await exited
})

/** Peak resident memory of the owner process so far (VmHWM), in bytes. */
function ownerPeakBytes(): number {
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${owner.pid}/status`, 'utf8'))?.[1]
  return Number(kb) * 1024
}

interface RawAnswer {
  status: number
  body: Buffer
  /** Whether the checkpoint key signed it, bound to this request's nonce and bytes. */
  signed: boolean
  error: { code?: string; retriable?: boolean } | undefined
}

/** One request as readtrail's askers shape it (nonce first), with `ask` as raw JSON text; the answer's proof is checked here. */
function rawAsk(askJson: string): Promise<RawAnswer> {
  const nonce = createNonce()
  const body = Buffer.from(`{"nonce":"${nonce}","ask":${askJson}}`, 'utf8')
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'POST', path: '/', headers: { 'content-length': body.length } }, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const answer = Buffer.concat(chunks)
        const status = res.statusCode ?? 0
        const signed = isOwnerAnswerSigned(
          loadPublicKey(target().publicKeyPath).publicKey,
          {
            nonce,
            socketPath: ownerSocketPath(realpathSync(dataDir)),
            pid: Number(res.headers['x-readtrail-owner-pid']),
            database: DATABASE,
            status,
            kind: String(res.headers['x-readtrail-owner-kind']),
            requestDigest: createHash('sha256').update(body).digest(),
            responseDigest: createHash('sha256').update(answer).digest(),
          },
          String(res.headers['x-readtrail-owner-sig']),
        )
        let error: RawAnswer['error']
        try {
          error = (JSON.parse(answer.toString('utf8')) as { error?: RawAnswer['error'] }).error
        } catch {
          error = undefined
        }
        resolve({ status, body: answer, signed, error })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** A request that states `declared` bytes and sends only its first few: it holds a slot until destroyed. */
function holdSlot(declared = 1000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath, () => {
      socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${declared}\r\n\r\n{"nonce":`)
      // Time for the owner to admit it before the next one arrives.
      setTimeout(() => resolve(socket), 100)
    })
    socket.on('error', reject)
  })
}

const query = { op: 'query' as const, name: 'records-touched-by-principal', params: { principal: 'clerk.test' }, subjectKeys: [] as [string, number][] }

describe('the owner socket bounds what it takes on at once', () => {
  it('answers an ordinary request (the bounds leave normal use alone)', async () => {
    await expect(callOwner(target(), query)).resolves.toMatchObject({ rows: [] })
  })

  it('8 concurrent 60 MB requests: the owner holds at most its byte budget, answers the rest OWNER_BUSY (signed, retriable), and its peak memory stays bounded (regression: 354 MB -> 1.34 GB)', async () => {
    const before = ownerPeakBytes()
    const pad = 'x'.repeat(60 * 1024 * 1024)
    const answers = await Promise.all(Array.from({ length: 8 }, () => rawAsk(`{"op":"nope","pad":"${pad}"}`)))
    const busy = answers.filter((a) => a.status === 503)
    const taken = answers.filter((a) => a.status !== 503)
    // Taken ones are read and refused for what they ask (an unknown op), with a coded error.
    for (const a of taken) expect(a).toMatchObject({ status: 400, signed: true, error: { code: 'USAGE' } })
    for (const a of busy) expect(a).toMatchObject({ signed: true, error: { code: 'OWNER_BUSY', retriable: true } })
    expect(busy.length).toBeGreaterThanOrEqual(4)
    const grew = ownerPeakBytes() - before
    // One 60 MB request in memory at a time (its bytes, its text, its parse) rather than eight.
    expect(grew, `owner peak grew by ${Math.round(grew / 2 ** 20)} MiB`).toBeLessThan(450 * 2 ** 20)
    await expect(callOwner(target(), query)).resolves.toMatchObject({ rows: [] })
  })

  it(`with ${OWNER_LIMITS.maxInFlight} requests in flight the next is answered OWNER_BUSY at once; callOwner waits for a slot and then gets its answer`, async () => {
    const held = await Promise.all(Array.from({ length: OWNER_LIMITS.maxInFlight }, () => holdSlot()))
    try {
      const refused = await rawAsk(JSON.stringify(query))
      expect(refused).toMatchObject({ status: 503, signed: true, error: { code: 'OWNER_BUSY', retriable: true } })
      const started = Date.now()
      const asked = callOwner(target(), query)!
      setTimeout(() => held.forEach((s) => s.destroy()), 1500)
      await expect(asked).resolves.toMatchObject({ rows: [] })
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400)
    } finally {
      held.forEach((s) => s.destroy())
    }
  })

  it('a request stating more than the bound is refused before its body is read (413), and callOwner refuses to send one (OWNER_REQUEST_TOO_LARGE)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath, method: 'POST', path: '/', headers: { 'content-length': OWNER_LIMITS.maxRequestBytes + 1 } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      // Headers only: the owner must answer without waiting for the body.
      req.flushHeaders()
    })
    expect(status).toBe(413)
    const huge = { op: 'evidence' as const, eventId: '0', checkpoints: [], publicKeyPem: 'x'.repeat(OWNER_LIMITS.maxRequestBytes) }
    await expect(callOwner(target(), huge)).rejects.toMatchObject({ code: 'OWNER_REQUEST_TOO_LARGE', retriable: false })
    await expect(callOwner(target(), query)).resolves.toMatchObject({ rows: [] })
  })

  it(`closes connections beyond ${OWNER_LIMITS.maxConnections} and keeps answering once they are gone`, async () => {
    const sockets = await Promise.all(
      Array.from({ length: OWNER_LIMITS.maxConnections + 8 }, () => new Promise<Socket>((resolve) => { const s = connect(socketPath, () => resolve(s)); s.on('error', () => resolve(s)) })),
    )
    const closed = await Promise.all(sockets.map((s) => new Promise<boolean>((resolve) => {
      if (s.destroyed) return resolve(true)
      const timer = setTimeout(() => resolve(false), 1000)
      s.once('close', () => { clearTimeout(timer); resolve(true) })
    })))
    expect(closed.filter(Boolean).length).toBeGreaterThanOrEqual(8)
    sockets.forEach((s) => s.destroy())
    await new Promise((r) => setTimeout(r, 200))
    await expect(callOwner(target(), query)).resolves.toMatchObject({ rows: [] })
  })
})
