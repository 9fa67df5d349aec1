#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { ConfigError, describeError, isReadtrailError, ReadtrailError } from '../common/errors.js'
import { loadAppConfig, ENVIRONMENT } from './config.js'
import { consumeCommand } from './consume-command.js'
import { queryCommand } from './query-command.js'
import { createCliLogger } from './runtime.js'
import { verifyCommand } from './verify-command.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

const USAGE = `readtrail — immutable access-audit log

usage:
  readtrail demo                         start/reuse Kafka, run the admissions-registry breach demo on the embedded store
  readtrail consume                      run the chain writer (Kafka → hash-chained rows in ClickHouse)
  readtrail query --list                 list saved queries
  readtrail query <name> --param k=v …   run a saved query [--format table|csv|json|ndjson]
  readtrail verify [--json] [--skip-views]  re-hash every chain, check the query views; exit 0 intact, 1 damaged, 2 error

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
  const overrides = { brokers: values.brokers, topic: values.topic, database: values.database, dataDir: values['data-dir'] }
  switch (command) {
    case 'consume':
      return consumeCommand(loadAppConfig(process.env, overrides), logger)
    case 'query':
      return queryCommand(loadAppConfig(process.env, overrides), { name: rest[0], list: values.list ?? false, params: values.param ?? [], format: values.format }, logger)
    case 'verify':
      return verifyCommand(loadAppConfig(process.env, overrides), { json: values.json ?? false, views: !values['skip-views'] }, logger)
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
