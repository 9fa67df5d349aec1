#!/usr/bin/env node
import { availableParallelism } from 'node:os'
import { ConfigError, describeError, isReadtrailError, ReadtrailError } from '../common/errors.js'
import { parseDuration } from '../common/duration.js'
import { parseCommandLine } from './command-line.js'
import { findCommand } from './command-table.js'
import { readtrailVersion } from './version.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

async function main(argv: string[]): Promise<number> {
  // Everything readtrail creates (store, keys, checkpoint log, verify state,
  // owner socket, reports) is for its owner alone; the engine's own files get
  // the same through this umask, since their modes are not ours to pass.
  process.umask(0o077)
  const { command: spec, first, args, values } = parseCommandLine(argv)
  if (values.version) {
    process.stdout.write(`readtrail ${readtrailVersion()}\n`)
    return 0
  }
  // Help, the version and completion load neither Kafka's client nor the store: they answer at once.
  if (!spec || spec.name === 'help') {
    const { commandHelp, globalHelp } = await import('./help.js')
    const topic = spec && first !== undefined ? findCommand(first) : undefined
    process.stdout.write(topic ? commandHelp(topic) : globalHelp(readtrailVersion()))
    return spec || values.help ? 0 : 2
  }
  if (values.help) {
    const { commandHelp } = await import('./help.js')
    process.stdout.write(commandHelp(spec, first))
    return 0
  }
  const command = spec.name
  if (command === 'completion') {
    const { completionScript } = await import('./completion.js')
    process.stdout.write(completionScript(first!))
    return 0
  }
  // The demo prints a story on stdout; keep its logs to warnings unless asked.
  if (command === 'demo' && !process.env['READTRAIL_LOG_LEVEL']) process.env['READTRAIL_LOG_LEVEL'] = 'warn'
  const level = process.env['READTRAIL_LOG_LEVEL'] ?? 'info'
  if (!LOG_LEVELS.includes(level)) {
    throw new ConfigError(`invalid readtrail configuration:\n  - READTRAIL_LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(level)})`, {
      details: { issues: [{ key: 'READTRAIL_LOG_LEVEL', problem: `must be one of ${LOG_LEVELS.join(', ')}` }] },
    })
  }
  const { loadAppConfig } = await import('./config.js')
  const { assertStatePrivate, assertStoreFound, createCliLogger } = await import('./runtime.js')
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
      const { consumeCommand } = await import('./consume-command.js')
      return consumeCommand(config, logger)
    }
    case 'query': {
      const { queryCommand } = await import('./query-command.js')
      return queryCommand(loadAppConfig(process.env, overrides), { name: first, list: values.list ?? false, params: values.param ?? [], format: values.format ?? 'table' }, logger)
    }
    case 'db-audit': {
      const { dbAuditCommand } = await import('./db-audit-command.js')
      const args = { source: values.source, kind: values.kind, log: values.log, tables: values.tables, signingKey: values['signing-key'], once: values.once ?? false, logFormat: values['log-format'], stateDir: values['state-dir'], service: values.producer }
      return dbAuditCommand(loadAppConfig(process.env, overrides), args, logger)
    }
    case 'alerts': {
      const { alertsCommand } = await import('./alerts-command.js')
      const args = { from: values.from, to: values.to, principal: values.principal, table: values.table, action: values.action, params: values.param ?? [], format: values.format ?? 'table' }
      return alertsCommand(loadAppConfig(process.env, overrides), args, logger)
    }
    case 'report': {
      const { reportCommand } = await import('./report-command.js')
      return reportCommand(loadAppConfig(process.env, overrides), { kind: first, params: values.param ?? [], out: values.out, force: values.force ?? false, caseId: values['case-id'], author: values.author, tz: values.tz }, logger)
    }
    case 'verify': {
      if (values['in-db'] && values.independent) throw new ReadtrailError('USAGE', '--in-db and --independent exclude each other')
      if (values['no-checkpoints'] && values['no-kafka-checkpoints']) throw new ReadtrailError('USAGE', '--no-checkpoints already skips the Kafka copy')
      if (values['full-every'] !== undefined && values.every === undefined) throw new ReadtrailError('USAGE', '--full-every schedules the full runs of --every; give --every too')
      const workers = values.workers === undefined ? Math.min(4, availableParallelism()) : Number(values.workers)
      if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new ReadtrailError('USAGE', `--workers ${JSON.stringify(values.workers)}: expected an integer from 1 to 64`)
      const config = loadAppConfig(process.env, overrides)
      // Before a verifier key is made or read: a leaked home is refused first,
      // and a directory with no store is named, not left with a new key in it.
      assertStatePrivate(config)
      assertStoreFound(config)
      const { DEFAULT_FULL_EVERY_MS, verifyCommand } = await import('./verify-command.js')
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
      const { repairCommand } = await import('./repair-command.js')
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
      const { keyPathsOf, keysCommand } = await import('./keys-command.js')
      const args = { sub: first, out: values.out, verifier: values.verifier, producer: values.producer, trusted: values.trusted, format: values.format }
      return keysCommand(args, keyPathsOf(loadAppConfig(process.env, overrides), process.env))
    }
    case 'evidence': {
      const { evidenceCommand } = await import('./evidence-dispatch.js')
      return evidenceCommand(loadAppConfig(process.env, overrides), { sub: first, file: args[0], eventId: values.event, out: values.out, force: values.force ?? false, json: values.json ?? false, publicKeyPath: values['public-key'] }, logger)
    }
    case 'demo': {
      const { demoBrokers } = await import('../demo/local-kafka.js')
      const { runDemo } = await import('../demo/run-demo.js')
      // A broker given by flag or environment turns the demo's own off: the story's first line says so.
      const brokers = demoBrokers(values.brokers, process.env, (line) => process.stdout.write(`${line}\n`))
      const config = loadAppConfig(process.env, { ...overrides, brokers, dataDir: values['data-dir'] ?? '.readtrail/demo' })
      const result = await runDemo(config, logger)
      return result.verified ? 0 : 1
    }
    default:
      throw new ReadtrailError('USAGE', `readtrail ${command}: not runnable; see readtrail --help`)
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
