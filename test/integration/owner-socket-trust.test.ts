import { spawn, type ChildProcess } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadSigningKey, generateKeyFiles } from '../../checkpoints/keys.js'
import { callOwner, ownerSocketPath, serveOwnerApi, type OwnerTarget } from '../../cli/owner-api.js'
import { ownerReadStore } from '../../cli/owner-store.js'
import { collectIndependent } from '../../integrity/collect-independent.js'
import type { FactsRequest } from '../../integrity/facts.js'
import { openStore, type Store } from '../../store/store.js'
import { runCli, spawnCli, testHome, type CliResult } from '../helpers/cli-process.js'
import { freshTopic, TEST_BROKERS, testKafka, testLogger } from '../helpers/kafka.js'
import { seedChain } from '../helpers/seed-chain.js'
import { testStoreConfig } from '../helpers/store.js'

/**
 * Issue 10, item 8: whoever can write the data directory can stop the owner
 * (or wait for it to stop), plant a socket and an owner record naming a
 * process of their own, and answer `verify` and `query` from a pristine copy
 * of the store they then edit. Each attack here is done as that insider
 * would: files in the data directory, a process of their own, the README's
 * description of the socket protocol. The owner's answers are believed only
 * under the checkpoint key.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DATABASE = 'readtrail'
const ROWS = 12
const TAMPERED_SEQ = 5

const victimDir = mkdtempSync(join(tmpdir(), 'rt-owner-'))
const pristineDir = mkdtempSync(join(tmpdir(), 'rt-pristine-'))
const scratch = mkdtempSync(join(tmpdir(), 'rt-owner-scratch-'))
afterAll(() => [victimDir, pristineDir, scratch].forEach((d) => rmSync(d, { recursive: true, force: true })))

let topic = ''
let chain = ''
const env = () => ({ READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(','), READTRAIL_TOPIC: topic, READTRAIL_GROUP_ID: `${topic}-g` })
const at = (dir: string) => ['--data-dir', dir]
const verifyArgs = (mode: 'in-db' | 'independent') => ['verify', '--json', '--no-checkpoints', ...(mode === 'independent' ? ['--independent', '--workers', '1'] : [])]
const MODES = ['in-db', 'independent'] as const

type Located = [string, number, string]
const located = (r: CliResult): Located[] => {
  const report = JSON.parse(r.stdout) as { findings: { chain_id: string; seq: number; kind: string }[] }
  return report.findings.map((f) => [f.chain_id, f.seq, f.kind] as Located).sort((a, b) => a[1] - b[1] || a[2].localeCompare(b[2]) || a[0].localeCompare(b[0]))
}
const tamperedAt = (findings: Located[]) => findings.some(([c, seq]) => c === chain && seq === TAMPERED_SEQ)

/** How a verify run ended: its findings, or the code of the error it stopped with. */
type Outcome = { code: 0 | 1; findings: Located[] } | { code: 2; error: string }
function outcomeOf(r: CliResult): Outcome {
  if (r.code === 0 || r.code === 1) return { code: r.code, findings: located(r) }
  return { code: 2, error: /^readtrail: ([A-Z_]+):/m.exec(r.stderr)?.[1] ?? `exit ${r.code}: ${r.stderr.slice(0, 300)}` }
}

/** What a direct run (nobody owning the store) ends with, per directory and mode. */
const direct: Record<string, Outcome> = {}

async function withVictimStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = openStore(testStoreConfig(DATABASE, victimDir), { command: 'owner trust test', logger: testLogger })
  try {
    await store.ensureSchema()
    return await fn(store)
  } finally {
    await store.close()
  }
}

function expectUntrusted(r: CliResult, what: string): void {
  expect(r.code, `${what}: ${r.stderr}`).toBe(2)
  expect(r.stderr, what).toMatch(/^readtrail: OWNER_UNTRUSTED: /)
  // Nothing the impostor said reached stdout.
  expect(r.stdout, what).toBe('')
}

const queryArgs = () => ['query', 'records-touched-by-principal', '--param', 'principal=clerk.test', '--format', 'json']
/** The rows a direct `query` (nobody owning the store) answers on the edited store. */
let directRows: unknown[] = []
const rowsOf = (r: CliResult): unknown => (JSON.parse(r.stdout) as { rows: unknown[] }).rows

beforeAll(async () => {
  topic = await freshTopic(testKafka(), 1)
  chain = `${topic}/0`
  await withVictimStore((store) => seedChain(store, chain, ROWS))
  // The insider's pristine copy, taken before the edit.
  cpSync(victimDir, pristineDir, { recursive: true, filter: (src) => !/readtrail-owner\.json$|readtrail\.sock$/.test(src) })
  await withVictimStore((store) =>
    store.client.command({
      query: `ALTER TABLE ${store.table('access_log')} UPDATE principal_id = 'mallory' WHERE chain_id = {c:String} AND seq = {s:UInt64} SETTINGS mutations_sync = 2`,
      query_params: { c: chain, s: TAMPERED_SEQ },
    }),
  )
  for (const mode of MODES) {
    for (const [name, dir] of [['victim', victimDir], ['pristine', pristineDir]] as const) {
      const outcome = outcomeOf(await runCli([...verifyArgs(mode), ...at(dir)], env()))
      direct[`${name}/${mode}`] = outcome
      // The baselines differ exactly where the edit is: the tests below can tell which store answered.
      if (outcome.code !== 2) expect(tamperedAt(outcome.findings), `${name} ${mode}`).toBe(name === 'victim')
    }
  }
  const q = await runCli([...queryArgs(), ...at(victimDir)], env())
  expect(q.stdout, q.stderr).not.toBe('')
  directRows = rowsOf(q) as unknown[]
  expect(directRows.length).toBeGreaterThan(0)
})

/**
 * A separate process that owns the pristine copy and serves it on the
 * victim's socket through readtrail's own serveOwnerApi, signing with `keyPath`,
 * after writing an owner record that names itself.
 */
async function startImpostor(keyPath: string, mode: 'owner-api' | 'unsigned'): Promise<ChildProcess> {
  const script = join(scratch, `impostor-${mode}.mjs`)
  const dist = (p: string) => JSON.stringify(pathToFileURL(join(ROOT, 'dist', p)).href)
  writeFileSync(
    script,
    `import { writeFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
const { openStore } = await import(${dist('store/store.js')})
const { StoreConfig } = await import(${dist('store/config.js')})
const { serveOwnerApi } = await import(${dist('cli/owner-api.js')})
const { loadSigningKey } = await import(${dist('checkpoints/keys.js')})
const victim = process.env.RT_VICTIM
const store = openStore(StoreConfig.parse({ database: ${JSON.stringify(DATABASE)}, dataDir: process.env.RT_PRISTINE }), { command: 'impostor' })
await store.checkSchema()
const quiet = { info() {}, warn() {}, debug() {}, error() {} }
if (process.env.RT_MODE === 'owner-api') {
  await serveOwnerApi(store, victim, quiet, { key: loadSigningKey(process.env.RT_KEY) })
} else {
  // The protocol before this change: a bare { result } for every request, from the pristine copy.
  const sock = join(victim, 'readtrail.sock')
  rmSync(sock, { force: true })
  await new Promise((resolve) => createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c)).on('end', async () => {
      const { ask } = JSON.parse(body)
      const result = ask.op === 'query' ? { rows: [], columns: [] } : { chains: [], windows: [], suspects_truncated: false, checkpoint_rows: [], producer_breaks: [], producer_breaks_truncated: false, producers_checked: 0, producer_through: {}, view_findings: [], views_checked: true, rows_verified: ${ROWS}, warnings: [] }
      res.writeHead(200, { 'content-type': 'application/json', 'x-readtrail-owner-pid': String(process.pid), 'x-readtrail-owner-kind': 'json' }).end(JSON.stringify({ result }))
    })
  }).listen(sock, resolve))
}
writeFileSync(join(victim, 'readtrail-owner.json'), JSON.stringify({ pid: process.pid, command: 'readtrail consume', started_at: new Date().toISOString() }))
process.on('SIGTERM', () => store.close().finally(() => process.exit(0)))
process.stdout.write('ready\\n')
`,
  )
  const child = spawn(process.execPath, [script], {
    cwd: ROOT,
    env: { ...process.env, RT_VICTIM: victimDir, RT_PRISTINE: pristineDir, RT_KEY: keyPath, RT_MODE: mode },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c))
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (c: string) => c.includes('ready') && resolve())
    child.on('exit', (code) => reject(new Error(`impostor exited ${code}: ${err}`)))
  })
  return child
}

async function stopImpostor(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  await exited
  rmSync(join(victimDir, 'readtrail-owner.json'), { force: true })
  rmSync(ownerSocketPath(victimDir), { force: true })
}

describe('an impostor owner on the socket is refused: OWNER_UNTRUSTED, nothing it says is used', () => {
  it('a process of the insider answering from a pristine copy, signing with a key of its own: verify (both modes) and query refuse it', async () => {
    const own = join(scratch, 'insider', 'checkpoint.key')
    generateKeyFiles(own)
    const impostor = await startImpostor(own, 'owner-api')
    try {
      for (const mode of MODES) expectUntrusted(await runCli([...verifyArgs(mode), ...at(victimDir)], env()), `verify ${mode}`)
      expectUntrusted(await runCli([...queryArgs(), ...at(victimDir)], env()), 'query')
    } finally {
      await stopImpostor(impostor)
    }
  })

  it('an impostor speaking the old unsigned protocol with fabricated clean facts is refused', async () => {
    const impostor = await startImpostor('', 'unsigned')
    try {
      for (const mode of MODES) expectUntrusted(await runCli([...verifyArgs(mode), ...at(victimDir)], env()), `verify ${mode}`)
      expectUntrusted(await runCli([...queryArgs(), ...at(victimDir)], env()), 'query')
    } finally {
      await stopImpostor(impostor)
    }
  })

  it('control: the same process holding the checkpoint key is believed, so the key is what the refusals above turn on', async () => {
    const impostor = await startImpostor(join(testHome(), 'keys', 'checkpoint.key'), 'owner-api')
    try {
      for (const mode of MODES) {
        const r = await runCli([...verifyArgs(mode), ...at(victimDir)], env())
        expect(r.stderr).not.toContain('OWNER_UNTRUSTED')
        // Its answers are those of the store it holds (the copy), computed here in the independent mode.
        expect(outcomeOf(r), mode).toEqual(direct[`pristine/${mode}`])
      }
    } finally {
      await stopImpostor(impostor)
    }
  })
})

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

/** What an insider in the middle would change: the suspects verify needs, a read in a query answer, the principal in every row. */
function launder(a: Answer): Answer {
  // Same length, so RowBinary framing still parses.
  if (a.headers['x-readtrail-owner-kind'] === 'rows') return { ...a, body: Buffer.from(a.body.toString('latin1').replaceAll('mallory', 'clerk.x'), 'latin1') }
  const reply = JSON.parse(a.body.toString('utf8')) as { result?: { windows?: unknown[]; rows?: unknown[] } }
  if (Array.isArray(reply.result?.windows)) reply.result.windows = []
  // A query answer loses a read.
  if (Array.isArray(reply.result?.rows)) reply.result.rows.pop()
  return { ...a, body: Buffer.from(JSON.stringify(reply).replaceAll('mallory', 'clerk.x'), 'utf8') }
}

/** Forwards each request to `target` and hands the answer to `rewrite` before sending it on. */
function relay(socketPath: string, target: string, rewrite: (answer: Answer) => Answer): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const out = request({ socketPath: target, path: '/', method: 'POST', headers: req.headers }, (answer) => {
        const parts: Buffer[] = []
        answer.on('data', (c: Buffer) => parts.push(c))
        answer.on('end', () => {
          const forged = rewrite({ status: answer.statusCode ?? 500, headers: answer.headers, body: Buffer.concat(parts) })
          res.writeHead(forged.status, { ...forged.headers, 'content-length': String(forged.body.length) }).end(forged.body)
        })
      })
      out.end(Buffer.concat(chunks))
    })
  })
  rmSync(socketPath, { force: true })
  return new Promise((resolve) => server.listen(socketPath, () => resolve(server)))
}

describe('the real owner (serveOwnerApi with the checkpoint key, this process) and a relay in front of it', () => {
  let store: Store
  let stopServing: () => Promise<void>
  const target = (): OwnerTarget => ({ dataDir: victimDir, database: DATABASE, publicKeyPath: join(testHome(), 'keys', 'checkpoint.key.pub') })

  beforeAll(async () => {
    store = openStore(testStoreConfig(DATABASE, victimDir), { command: 'readtrail consume', logger: testLogger })
    await store.checkSchema()
    stopServing = await serveOwnerApi(store, victimDir, testLogger, { key: loadSigningKey(join(testHome(), 'keys', 'checkpoint.key')) })
  })
  afterAll(async () => {
    await stopServing()
    await store.close()
  })

  it('answers verify in both modes exactly as a direct run finds the store, and query', async () => {
    for (const mode of MODES) {
      const r = await runCli([...verifyArgs(mode), ...at(victimDir)], env())
      expect(outcomeOf(r), `${mode}: ${r.stderr}`).toEqual(direct[`victim/${mode}`])
    }
    const q = await runCli([...queryArgs(), ...at(victimDir)], env())
    expect(q.stderr).not.toContain('OWNER_UNTRUSTED')
    expect(rowsOf(q)).toEqual(directRows)
  })

  it('verify --independent through the owner hashes the raw rows here: the same facts as on the store itself, the edited row a suspect', async () => {
    const request: FactsRequest = { mode: 'independent', views: false, workers: 1, maxSuspects: 100, checkpoint_seqs: { [chain]: [4, 8] }, from_seq: null, producer_through: null, offsets: true, find_events: null }
    const here = await collectIndependent(store, request)
    const viaOwner = await collectIndependent(ownerReadStore(target()), request)
    expect(viaOwner).toEqual(here)
    expect(viaOwner.chains).toMatchObject([{ chain_id: chain, rows: ROWS, first_seq: 1, last_seq: ROWS }])
    expect(viaOwner.windows.map((w) => [w.chain_id, w.lo <= TAMPERED_SEQ && TAMPERED_SEQ <= w.hi])).toEqual([[chain, true]])
    expect(viaOwner.checkpoint_rows.map((r) => r.seq)).toEqual([4, 8])
  })

  it('the other independent reads go through it too: an incremental run (producer sequences since) and an event lookup', async () => {
    const base: FactsRequest = { mode: 'independent', views: false, workers: 1, maxSuspects: 100, checkpoint_seqs: {}, from_seq: { [chain]: 8 }, producer_through: {}, offsets: true, find_events: null }
    expect(await collectIndependent(ownerReadStore(target()), base)).toEqual(await collectIndependent(store, base))
    const [first] = await store.queryRows<{ id: string }>(`SELECT toString(event_id) AS id FROM ${store.table('access_log')} WHERE seq = 2`)
    const lookup: FactsRequest = { ...base, from_seq: null, producer_through: null, find_events: { [chain]: [first!.id, '01890000-0000-7000-8000-000000000000'] } }
    const found = await collectIndependent(ownerReadStore(target()), lookup)
    expect(found.found_events).toEqual({ [chain]: [first!.id] })
  })

  it('an owner record naming another live process is refused, though the answer is signed with the checkpoint key', async () => {
    const lock = join(victimDir, 'readtrail-owner.json')
    const genuine = readFileSync(lock, 'utf8')
    const other = spawn('sleep', ['30'])
    try {
      writeFileSync(lock, JSON.stringify({ pid: other.pid, command: 'readtrail consume', started_at: new Date().toISOString() }))
      const ask = callOwner(target(), { op: 'query', name: 'records-touched-by-principal', params: { principal: 'clerk.test' }, subjectKeys: [] })
      await expect(ask).rejects.toMatchObject({ code: 'OWNER_UNTRUSTED', details: { owner_pid: other.pid, answer_pid: process.pid } })
    } finally {
      writeFileSync(lock, genuine)
      other.kill()
    }
  })

  it('never computes independent facts for the asker, and runs no SQL but its fixed row reads', async () => {
    const independent = { mode: 'independent', views: false, workers: 1, maxSuspects: 10, checkpoint_seqs: {}, from_seq: null, producer_through: null, offsets: false, find_events: null }
    await expect(callOwner(target(), { op: 'facts', request: independent as never })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('independent facts') })
    const drop = { op: 'rows' as const, query: `ALTER TABLE ${store.table('access_log')} DELETE WHERE 1`, params: {}, format: 'RowBinary' as const }
    await expect(callOwner(target(), drop)).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('not a read the owner serves') })
  })

  describe('a relay planted on the socket path, the real socket moved aside', () => {
    const real = join(victimDir, 'moved.sock')
    const sock = ownerSocketPath(victimDir)
    let server: Server | undefined
    const plant = async (rewrite: Parameters<typeof relay>[2]) => {
      renameSync(sock, real)
      server = await relay(sock, real, rewrite)
    }
    const unplant = async () => {
      await new Promise((r) => server?.close(r))
      rmSync(sock, { force: true })
      renameSync(real, sock)
    }

    it('that rewrites the answers (hides the suspects, launders mallory into a clerk) is refused', async () => {
      await plant(launder)
      try {
        for (const mode of MODES) expectUntrusted(await runCli([...verifyArgs(mode), ...at(victimDir)], env()), `verify ${mode}`)
        expectUntrusted(await runCli([...queryArgs(), ...at(victimDir)], env()), 'query')
      } finally {
        await unplant()
      }
    })

    it('that replays a genuine signed answer to a new question is refused', async () => {
      let captured: Answer | undefined
      await plant((a) => (captured ??= a))
      try {
        // The insider records one genuine answer (to an asker's query, which it
        // lets through), then replays it to every later asker, the same question included.
        // (Asked from a CLI process: this test process may reuse a kept-alive
        // connection to the real socket, which would bypass the relay.)
        const genuine = await runCli([...queryArgs(), ...at(victimDir)], env())
        expect(captured).toBeDefined()
        expect(rowsOf(genuine)).toEqual(directRows)
        expectUntrusted(await runCli([...queryArgs(), ...at(victimDir)], env()), 'replayed query')
        expectUntrusted(await runCli([...verifyArgs('in-db'), ...at(victimDir)], env()), 'replayed verify')
      } finally {
        await unplant()
      }
    })

    it('control: a relay that passes answers through unchanged is believed (the proof is in the answer, not the connection)', async () => {
      await plant((a) => a)
      try {
        const r = await runCli([...verifyArgs('independent'), ...at(victimDir)], env())
        expect(outcomeOf(r)).toEqual(direct['victim/independent'])
        const q = await runCli([...queryArgs(), ...at(victimDir)], env())
        expect(rowsOf(q)).toEqual(directRows)
      } finally {
        await unplant()
      }
    })
  })
})

describe('a real `readtrail consume` owns the store', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rt-consume-owner-'))
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  it('verify in both modes and query go through it and end as they do on the store directly', async () => {
    const own = await freshTopic(testKafka(), 1)
    const ownEnv = { READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(','), READTRAIL_TOPIC: own, READTRAIL_GROUP_ID: `${own}-g` }
    const consume = spawnCli(['consume', ...at(dataDir)], ownEnv)
    const through: Record<string, Outcome> = {}
    let query: CliResult
    try {
      await consume.waitFor(/serving queries for other readtrail processes/)
      for (const mode of MODES) {
        const r = await runCli([...verifyArgs(mode), ...at(dataDir)], ownEnv)
        expect(r.stderr, mode).not.toContain('OWNER_UNTRUSTED')
        through[mode] = outcomeOf(r)
      }
      query = await runCli([...queryArgs(), ...at(dataDir)], ownEnv)
      expect(query.stderr).not.toContain('OWNER_UNTRUSTED')
    } finally {
      consume.child.kill('SIGTERM')
      await consume.exited
    }
    for (const mode of MODES) expect(outcomeOf(await runCli([...verifyArgs(mode), ...at(dataDir)], ownEnv)), mode).toEqual(through[mode])
    const directQuery = await runCli([...queryArgs(), ...at(dataDir)], ownEnv)
    expect(query.code).toBe(directQuery.code)
    // The same answer; its provenance names the verify state, which the runs above rewrote.
    const answerOf = (r: CliResult) => {
      const { rows, provenance } = JSON.parse(r.stdout) as { rows: unknown[]; provenance: { status: string } }
      return { rows, status: provenance.status }
    }
    expect(answerOf(query)).toEqual(answerOf(directQuery))
  })
})
