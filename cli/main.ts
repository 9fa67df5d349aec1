#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { ConfigError, describeError, isReadtrailError, ReadtrailError } from '../common/errors.js'
import { loadAppConfig, ENVIRONMENT } from './config.js'
import { consumeCommand } from './consume-command.js'
import { queryCommand } from './query-command.js'
import { reportCommand } from './report-command.js'
import { assertStatePrivate, createCliLogger } from './runtime.js'
import { DEFAULT_FULL_EVERY_MS, verifyCommand } from './verify-command.js'
import { keysCommand } from './keys-command.js'
import { evidenceCommand } from './evidence-dispatch.js'
import { repairCommand } from './repair-command.js'
import { parseDuration } from '../common/duration.js'
import { availableParallelism } from 'node:os'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

const USAGE = `readtrail — immutable access-audit log

usage:
  readtrail demo                         start/reuse Kafka, run the admissions-registry breach demo on the embedded store
  readtrail consume                      run the chain writer (Kafka → hash-chained rows in ClickHouse)
  readtrail query --list                 list saved queries
  readtrail query <name> --param k=v …   run a saved query [--format table|csv|json|ndjson]
                                         exit 0 answered on verified ranges, 3 some rows not yet verified,
                                         4 some rows in ranges that failed verification, 5 some rows after the
                                         newest signed checkpoint (unsigned), 2 error (also an untrusted verify state)
  readtrail report breach-scope --param k=v … [--out FILE [--force]]
                                         self-contained HTML breach report (principals|ips|sessions, from, to [, bucket])
  readtrail report principal --param principal=ID [--param from=… --param to=…] [--out FILE [--force]]
                                         self-contained HTML activity report for one account (exit codes as query)
  readtrail verify [--in-db | --independent [--workers N]] [--since-checkpoint] [--every DURATION [--full-every DURATION]] [--json]
                                         re-hash every chain, check it against the signed checkpoints, the query views
                                         and producer sequences; exit 0 intact, 1 damaged, 2 error
      --independent                      stream rows out and re-hash them here (trusts nothing ClickHouse computes)
      --since-checkpoint                 only rows after each chain's last verified checkpoint (O(new rows))
      --acknowledge producer:ID:SEQ | CHAIN:SEQ --reason TEXT [--by NAME]
                                         record in the signed verify state that the producer hole (or offset_gap)
                                         this run reports there was investigated; later runs list it as acknowledged
      --every 5m                         keep running, one incremental run per period, pino JSON lines on stdout;
                                         exit 1 with a READTRAIL_INTEGRITY_ALERT line on the first damage
      --full-every 24h                   with --every: a full run whenever this long has passed since the last
                                         full run the signed verify state records (default 24h)
      --grace 2m                         producer holes younger than this are "in flight", not missing (default 2m)
      --skip-views  --no-kafka-checkpoints  --no-checkpoints   skip a check (the report says so)
      --public-key FILE  --checkpoint-log FILE
  readtrail repair [--dry-run] [--chain ID] [--quarantine-unsigned] [--republish-checkpoints] [--json]
                                         after CHAIN_UNTRUSTED, CHECKPOINT_COPY_LOST or deleted signed rows (stop consume
                                         first): restore signed rows missing from the store, only where the Kafka messages
                                         rebuild rows that hash up to the newest signed checkpoint; exit 0 nothing (left) to
                                         repair, 1 something could not be proved (nothing unproved is changed), 3 --dry-run
                                         found repairs to make, 2 error
      --quarantine-unsigned              also move unsigned rows Kafka does not vouch for into quarantined_rows
      --republish-checkpoints            also refill the checkpoint topic from the file (refused if the file is behind
                                         the signed verify state)
      --max-candidates N                 ingested_at values tried per gap (default 2000000)
  readtrail keys generate [--out FILE]   make the checkpoint signing key (0600) and print its public key
  readtrail keys generate --verifier     make the key verify signs its state with (else the first verify makes it)
  readtrail evidence export --event ID [--out FILE [--force]]   write an offline-verifiable evidence bundle for one event
  readtrail evidence verify FILE [--public-key FILE] [--json]   check a bundle with no database against a trusted key;
                                         exit 0 proved, 1 not, 3 untrusted key (only the key the bundle carries)

common flags: --brokers host:port,…  --topic NAME  --database NAME  --data-dir DIR
environment:
${Object.entries(ENVIRONMENT)
  .map(([k, v]) => `  ${k.padEnd(30)} ${v}`)
  .join('\n')}
`

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  'skip-views': { type: 'boolean' },
  'in-db': { type: 'boolean' },
  independent: { type: 'boolean' },
  workers: { type: 'string' },
  'since-checkpoint': { type: 'boolean' },
  every: { type: 'string' },
  'full-every': { type: 'string' },
  acknowledge: { type: 'string', multiple: true },
  by: { type: 'string' },
  reason: { type: 'string' },
  verifier: { type: 'boolean' },
  grace: { type: 'string' },
  'no-kafka-checkpoints': { type: 'boolean' },
  'no-checkpoints': { type: 'boolean' },
  'public-key': { type: 'string' },
  'checkpoint-log': { type: 'string' },
  out: { type: 'string' },
  'dry-run': { type: 'boolean' },
  force: { type: 'boolean' },
  chain: { type: 'string' },
  'quarantine-unsigned': { type: 'boolean' },
  'republish-checkpoints': { type: 'boolean' },
  'max-candidates': { type: 'string' },
  event: { type: 'string' },
  list: { type: 'boolean' },
  param: { type: 'string', multiple: true, short: 'p' },
  format: { type: 'string', default: 'table' },
  brokers: { type: 'string' },
  topic: { type: 'string' },
  database: { type: 'string' },
  'data-dir': { type: 'string' },
} as const

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS })
  } catch (cause) {
    throw new ReadtrailError('USAGE', `${(cause as Error).message}; see readtrail --help`, { cause })
  }
}

async function main(argv: string[]): Promise<number> {
  // Everything readtrail creates (store, keys, checkpoint log, verify state,
  // owner socket, reports) is for its owner alone; the engine's own files get
  // the same through this umask, since their modes are not ours to pass.
  process.umask(0o077)
  const { values, positionals } = parseCommandLine(argv)
  const [command, ...rest] = positionals
  if (values.help || !command) {
    process.stdout.write(USAGE)
    return command || values.help ? 0 : 2
  }
  // The demo prints a story on stdout; keep its logs to warnings unless asked.
  if (command === 'demo' && !process.env['READTRAIL_LOG_LEVEL']) process.env['READTRAIL_LOG_LEVEL'] = 'warn'
  const level = process.env['READTRAIL_LOG_LEVEL'] ?? 'info'
  if (!LOG_LEVELS.includes(level)) {
    throw new ConfigError(`invalid readtrail configuration:\n  - READTRAIL_LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(level)})`, {
      details: { issues: [{ key: 'READTRAIL_LOG_LEVEL', problem: `must be one of ${LOG_LEVELS.join(', ')}` }] },
    })
  }
  const logger = createCliLogger()
  const overrides = {
    brokers: values.brokers,
    topic: values.topic,
    database: values.database,
    dataDir: values['data-dir'],
    publicKey: values['public-key'],
    checkpointLog: values['checkpoint-log'],
  }
  switch (command) {
    case 'consume': {
      const config = loadAppConfig(process.env, overrides)
      // Before the signing key is read or anything is created: a leaked home is refused first.
      assertStatePrivate(config)
      return consumeCommand(config, logger)
    }
    case 'query':
      return queryCommand(loadAppConfig(process.env, overrides), { name: rest[0], list: values.list ?? false, params: values.param ?? [], format: values.format }, logger)
    case 'report':
      return reportCommand(loadAppConfig(process.env, overrides), { kind: rest[0], params: values.param ?? [], out: values.out, force: values.force ?? false }, logger)
    case 'verify': {
      if (values['in-db'] && values.independent) throw new ReadtrailError('USAGE', '--in-db and --independent exclude each other')
      if (values['no-checkpoints'] && values['no-kafka-checkpoints']) throw new ReadtrailError('USAGE', '--no-checkpoints already skips the Kafka copy')
      if (values['full-every'] !== undefined && values.every === undefined) throw new ReadtrailError('USAGE', '--full-every schedules the full runs of --every; give --every too')
      const workers = values.workers === undefined ? Math.min(4, availableParallelism()) : Number(values.workers)
      if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new ReadtrailError('USAGE', `--workers ${JSON.stringify(values.workers)}: expected an integer from 1 to 64`)
      const config = loadAppConfig(process.env, overrides)
      // Before a verifier key is made or read: a leaked home is refused first.
      assertStatePrivate(config)
      return verifyCommand(
        config,
        {
          json: values.json ?? false,
          views: !values['skip-views'],
          mode: values.independent ? 'independent' : 'in-db',
          workers,
          sinceCheckpoint: values['since-checkpoint'] ?? false,
          everyMs: values.every === undefined ? null : parseDuration(values.every, '--every', { minMs: 1000, maxMs: 7 * 86_400_000 }),
          fullEveryMs: values['full-every'] === undefined ? DEFAULT_FULL_EVERY_MS : parseDuration(values['full-every'], '--full-every', { minMs: 1000, maxMs: 30 * 86_400_000 }),
          producerGraceMs: values.grace === undefined ? 120_000 : parseDuration(values.grace, '--grace', { minMs: 0, maxMs: 7 * 86_400_000 }),
          checkpoints: values['no-checkpoints'] ? 'none' : values['no-kafka-checkpoints'] ? 'file' : 'both',
          acknowledge: values.acknowledge ?? [],
          acknowledgeBy: values.by,
          acknowledgeReason: values.reason,
        },
        logger,
      )
    }
    case 'repair': {
      const maxCandidates = values['max-candidates'] === undefined ? 2_000_000 : Number(values['max-candidates'])
      if (!Number.isSafeInteger(maxCandidates) || maxCandidates < 1) throw new ReadtrailError('USAGE', `--max-candidates ${JSON.stringify(values['max-candidates'])}: expected a positive integer`)
      return repairCommand(
        loadAppConfig(process.env, overrides),
        {
          dryRun: values['dry-run'] ?? false,
          chain: values.chain,
          quarantineUnsigned: values['quarantine-unsigned'] ?? false,
          republishCheckpoints: values['republish-checkpoints'] ?? false,
          maxCandidates,
          json: values.json ?? false,
        },
        logger,
      )
    }
    case 'keys': {
      const config = loadAppConfig(process.env, overrides)
      const verifier = values.verifier ?? false
      return keysCommand({ sub: rest[0], verifier, out: values.out ?? (verifier ? config.verifier.keyPath : config.checkpoints.keyPath) })
    }
    case 'evidence':
      return evidenceCommand(loadAppConfig(process.env, overrides), { sub: rest[0], file: rest[1], eventId: values.event, out: values.out, force: values.force ?? false, json: values.json ?? false, publicKeyPath: values['public-key'] }, logger)
    case 'demo': {
      const { startLocalKafka } = await import('../demo/local-kafka.js')
      const { runDemo } = await import('../demo/run-demo.js')
      const brokers = values.brokers ?? process.env['READTRAIL_KAFKA_BROKERS'] ?? startLocalKafka()
      const config = loadAppConfig(process.env, { ...overrides, brokers, dataDir: values['data-dir'] ?? '.readtrail/demo' })
      const result = await runDemo(config, logger)
      return result.verified ? 0 : 1
    }
    default:
      throw new ReadtrailError('USAGE', `unknown command ${JSON.stringify(command)}; see readtrail --help`)
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`readtrail: ${describeError(err)}\n`)
    if (!isReadtrailError(err) && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`)
    process.exit(2)
  },
)
