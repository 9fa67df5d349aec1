/**
 * One instance of an application behind the extraction guard, run as its
 * own process by test/integration/guard-redis.test.ts: its own producer,
 * pool and recorder, the budget shared with its siblings only through Redis.
 *
 *   node --import tsx test/helpers/guard-app.ts <config JSON>
 *
 * Prints `ready` once attached, waits for a line on stdin (so every
 * instance starts scraping at once), reads `reads` single records as one
 * principal, then prints one JSON line `{ ok, refused, other }` and exits.
 */
import { createInterface } from 'node:readline'
import pg from 'pg'
import { createLogger } from '../../common/logger.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import { instrumentPg } from '../../producers/hooks/pg.js'
import { createReadRecorder } from '../../producers/hooks/read-recorder.js'

interface AppConfig {
  database: string
  brokers: string[]
  topic: string
  signingKeyFile: string
  redisUrl: string
  keyPrefix: string
  budget: number
  reads: number
  firstId: number
  principal: string
}

const config = JSON.parse(process.argv[2] ?? '{}') as AppConfig
const logger = createLogger({ level: 'warn' }, process.stderr)
const producer = await createAuditProducer({ kafka: { brokers: config.brokers }, topic: config.topic, service: 'registry-api', signingKey: config.signingKeyFile, lingerMs: 0 }, { logger })
const recorder = createReadRecorder(
  producer,
  {
    tables: { applicants: {} },
    guard: {
      budgets: { 'applicant-records': { tables: ['applicants'], limits: { user: { perMinute: config.budget } }, onStoreDown: 'fail-closed' } },
      redis: { url: config.redisUrl, keyPrefix: config.keyPrefix, timeoutMs: 1000 },
    },
  },
  { logger },
)
const pool = await instrumentPg(new pg.Pool({ host: '127.0.0.1', port: 5432, user: 'postgres', database: config.database, max: 4 }), recorder)
// Connections open before the start line, so no instance starts late.
await Promise.all(Array.from({ length: 4 }, () => pool.connect())).then((clients) => clients.forEach((c) => c.release()))
process.stdout.write('ready\n')
await new Promise<void>((resolve) => {
  const start = createInterface({ input: process.stdin })
  start.once('line', () => {
    // An open stdin would keep this process alive after its work.
    start.close()
    process.stdin.destroy()
    resolve()
  })
})

const tally = { ok: 0, refused: 0, other: [] as string[] }
await runWithAuditContext({ principal: { id: config.principal } }, async () => {
  // Four reads in flight per instance, as a scraper with a few threads would.
  let next = 0
  const worker = async () => {
    while (next < config.reads) {
      const id = config.firstId + next++
      try {
        const r = await pool.query('SELECT id, full_name, phone FROM applicants WHERE id = $1', [id])
        if (r.rows.length === 1) tally.ok += 1
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code === 'EXTRACTION_LIMIT') tally.refused += 1
        else tally.other.push(String(code ?? (err as Error).message))
      }
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()])
})
process.stdout.write(`${JSON.stringify(tally)}\n`)
await pool.end()
await recorder.close()
await producer.close()
