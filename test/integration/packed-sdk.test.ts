import { execFileSync } from 'node:child_process'
import { createPublicKey } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { KafkaMessage } from 'kafkajs'
import { registerSnappyCodec } from '../../common/kafka.js'
import { repoRoot } from '../../demo/local-kafka.js'
import { createBatchCodec } from '../../schemas/batch-codec.js'
import { verifyBatch } from '../../schemas/batch-signature.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { freshTopic, TEST_BROKERS, testKafka } from '../helpers/kafka.js'
import { testSigningKey, testSigningKeyFile } from '../helpers/producer-trust.js'

// An application developer's first hour, replayed: the package as npm packs
// it (dist/ built by the integration global setup, declarations included),
// installed from the tarball into an empty strict TypeScript app that only
// sends events, compiled with tsc against the published .d.ts and run under
// plain Node against the real broker. It fails on a missing `types` entry
// (TS7016), an unexported name, a root export that does not resolve, or an
// install that pulls in the 543 MB embedded ClickHouse engine.

const APP_SOURCE = `import { createAuditProducer, isReadtrailError, type AuditProducer, type ReadInput, type RecordedRead } from 'readtrail'
import { ProducerError } from 'readtrail/producers'

const [broker, topic, signingKey] = process.argv.slice(2)
if (broker === undefined || topic === undefined || signingKey === undefined) throw new Error('usage: app <broker> <topic> <signing key file>')

const producer: AuditProducer = await createAuditProducer({
  service: 'packed-sdk-app',
  topic,
  signingKey,
  kafka: { brokers: [broker], clientId: 'packed-sdk-app' },
})
const read: ReadInput = {
  principal: { id: 'clerk.anna' },
  resource: { database: 'clinic', table: 'patients' },
  columns: ['id', 'name'],
  recordIds: [42, 'p-7'],
  purpose: 'treatment',
}
try {
  const recorded: RecordedRead = await producer.recordRead(read)
  console.log(JSON.stringify({ eventIds: recorded.eventIds, durability: recorded.durability }))
} catch (err) {
  // The guard narrows to the coded base class: code and retriable without a cast.
  if (isReadtrailError(err)) console.error(err.code, err.retriable, err instanceof ProducerError)
  throw err
} finally {
  await producer.close()
}
`

// Opening the embedded store in an app without chdb must name the fix.
const STORE_CHECK_SOURCE = `import { isReadtrailError } from 'readtrail'
import { openStore, StoreConfig } from 'readtrail/store'

const [dataDir] = process.argv.slice(2)
try {
  openStore(StoreConfig.parse({ dataDir }), { command: 'packed-sdk-app' })
  console.log(JSON.stringify({ opened: true }))
} catch (err) {
  if (!isReadtrailError(err)) throw err
  console.log(JSON.stringify({ code: err.code, message: err.message }))
}
`

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    // As \`tsc --init\` sets it. The context adapters and hooks declare their
    // parameters with fastify's and mysql2's types, which an app using
    // neither does not install; without this, their .d.ts files fail to resolve.
    skipLibCheck: true,
    // The app's own node types come from the repository (the scratch app
    // installs only what `npm install readtrail` installs, so its size is the SDK's).
    typeRoots: [join(repoRoot(), 'node_modules/@types')],
    types: ['node'],
    outDir: 'dist',
    rootDir: 'src',
  },
  include: ['src'],
}

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } })
}

/** Kilobytes on disk under a directory (du -sk). */
function diskKb(dir: string): number {
  return Number(run('du', ['-sk', dir], dir).split(/\s+/)[0])
}

describe('the packed SDK in a strict TypeScript app', () => {
  let work: string
  let app: string
  let topic: string
  const kafka = testKafka()

  beforeAll(async () => {
    topic = await freshTopic(kafka, 1)
    work = mkdtempSync(join(tmpdir(), 'readtrail-packed-sdk-'))
    app = join(work, 'app')
    mkdirSync(join(app, 'src'), { recursive: true })
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], repoRoot())) as { filename: string; size: number }[]
    const tarball = join(work, packed[0]!.filename)
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'packed-sdk-app', private: true, type: 'module', dependencies: { readtrail: `file:${tarball}` } }, null, 2))
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2))
    writeFileSync(join(app, 'src/app.ts'), APP_SOURCE)
    writeFileSync(join(app, 'src/store-check.ts'), STORE_CHECK_SOURCE)
    run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], app)
  }, 600_000)

  afterAll(() => {
    if (work && !process.env['READTRAIL_KEEP_SCRATCH']) rmSync(work, { recursive: true, force: true })
  })

  it('installs without the embedded ClickHouse engine', () => {
    expect(existsSync(join(app, 'node_modules/readtrail/dist/index.d.ts'))).toBe(true)
    expect(existsSync(join(app, 'node_modules/chdb'))).toBe(false)
    expect(existsSync(join(app, 'node_modules/@chdb'))).toBe(false)
    const kb = diskKb(join(app, 'node_modules'))
    process.stdout.write(`packed-sdk: node_modules of a producer-only app: ${(kb / 1024).toFixed(1)} MB (${readdirSync(join(app, 'node_modules')).length} top-level entries)\n`)
    // The SDK's own weight: kafkajs, avsc, zod, pino, the ClickHouse HTTP client; far from chDB's 543 MB.
    expect(kb).toBeLessThan(60 * 1024)
  })

  it('compiles with tsc (strict, nodenext) against the published declarations', () => {
    const tsc = join(repoRoot(), 'node_modules/typescript/bin/tsc')
    let out = ''
    try {
      out = run('node', [tsc, '-p', 'tsconfig.json'], app)
    } catch (err) {
      out = String((err as { stdout?: string }).stdout ?? err)
    }
    expect(out).toBe('')
    expect(existsSync(join(app, 'dist/app.js'))).toBe(true)
  })

  it('records a read through the public API that arrives on the topic as a batch its service key signed', async () => {
    const printed = JSON.parse(run('node', ['dist/app.js', TEST_BROKERS[0]!, topic, testSigningKeyFile('packed-sdk-app')], app)) as { eventIds: string[]; durability: string }
    expect(printed.durability).toBe('acked')
    expect(printed.eventIds).toHaveLength(1)

    const message = await firstMessage(topic)
    expect(verifyBatch(topic, message.value!, createPublicKey(testSigningKey('packed-sdk-app')))).toBe(true)
    const batch = createBatchCodec(loadSchemaRegistry(undefined, 'access-batch')).decode(message.value!)
    expect(batch.events).toHaveLength(1)
    const event = batch.events[0] as Record<string, unknown>
    expect(event).toMatchObject({
      event_id: printed.eventIds[0],
      principal_id: 'clerk.anna',
      service: 'packed-sdk-app',
      db_name: 'clinic',
      table_name: 'patients',
      record_ids: ['42', 'p-7'],
      purpose: 'treatment',
    })
  })

  it('names `npm install chdb` when the embedded store is opened without it', () => {
    const printed = JSON.parse(run('node', ['dist/store-check.js', join(work, 'store')], app)) as { code?: string; message?: string }
    expect(printed.code).toBe('STORE_ENGINE_MISSING')
    expect(printed.message).toContain('npm install chdb')
  })

  async function firstMessage(name: string): Promise<KafkaMessage> {
    // The SDK compresses with Snappy by default; this process reads it like the chain writer does.
    registerSnappyCodec()
    const consumer = kafka.consumer({ groupId: `packed-sdk-${name}` })
    await consumer.connect()
    try {
      await consumer.subscribe({ topics: [name], fromBeginning: true })
      return await new Promise<KafkaMessage>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no message on ${name} within 60 s`)), 60_000)
        consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error))
        void consumer.run({
          eachMessage: async ({ message }) => {
            clearTimeout(timer)
            resolve(message)
          },
        })
      })
    } finally {
      await consumer.disconnect()
    }
  }
})
