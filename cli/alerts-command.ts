import { ReadtrailError } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import { alerts } from '../queries/alerts.js'
import type { AppConfig } from './config.js'
import { answerSavedQuery } from './answer-query.js'
import { OUTPUT_FORMATS, type OutputFormat } from './format-rows.js'
import { parseParamFlags } from './param-flags.js'
import { startProgress } from './progress.js'
import { writeAnswer } from './query-command.js'

export interface AlertsCommandArgs {
  from?: string | undefined
  to?: string | undefined
  principal?: string | undefined
  table?: string | undefined
  /** One action or several, comma-separated. */
  action?: string | undefined
  /** `--param k=v` for what has no flag (limit). */
  params: readonly string[]
  format: string
}

/** The alerts query's raw parameters from its flags and `--param`s; a value given both ways is a usage error, not a silent choice. */
export function alertsParams(args: AlertsCommandArgs): Record<string, string> {
  const raw = parseParamFlags(args.params)
  const flags = { from: args.from, to: args.to, principal: args.principal, table: args.table, action: args.action }
  for (const [name, value] of Object.entries(flags)) {
    if (value === undefined) continue
    if (Object.hasOwn(raw, name)) throw new ReadtrailError('USAGE', `--${name} and --param ${name}= both given; give it once`)
    raw[name] = value
  }
  return raw
}

/**
 * `readtrail alerts [--from T] [--to T] [--principal ID] [--table NAME]
 * [--action A,…] [--format table|csv|json|ndjson]`: the saved query
 * `alerts`, run the way `readtrail query alerts` runs it (through the
 * process that owns the embedded store when another one does), with the
 * same provenance and exit codes.
 */
export async function alertsCommand(config: AppConfig, args: AlertsCommandArgs, logger: Logger): Promise<number> {
  if (!(OUTPUT_FORMATS as readonly string[]).includes(args.format)) {
    throw new ReadtrailError('USAGE', `--format must be one of ${OUTPUT_FORMATS.join(', ')}`)
  }
  const raw = alertsParams(args)
  const stop = startProgress('readtrail alerts')
  let answer
  try {
    answer = await answerSavedQuery(config, alerts.name, raw, logger)
  } finally {
    stop()
  }
  return writeAnswer(answer, args.format as OutputFormat)
}
