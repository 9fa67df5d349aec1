import type { Logger } from '../common/logger.js'
import { getSavedQuery, SAVED_QUERIES } from '../queries/catalog.js'
import { parseQueryParams } from '../queries/saved-query.js'
import { ReadtrailError } from '../common/errors.js'
import type { AppConfig } from './config.js'
import { formatRows, OUTPUT_FORMATS, type OutputFormat } from './format-rows.js'
import { withStore } from './runtime.js'

export interface QueryCommandArgs {
  name: string | undefined
  list: boolean
  params: string[]
  format: string
}

/** `readtrail query <name> --param k=v … --format table|csv|json|ndjson`, or `--list`. */
export async function queryCommand(config: AppConfig, args: QueryCommandArgs, logger: Logger): Promise<number> {
  if (args.list || !args.name) {
    for (const q of SAVED_QUERIES.values()) {
      const params = Object.entries(q.params.shape)
        .map(([k, v]) => ((v as { safeParse(x: unknown): { success: boolean } }).safeParse(undefined).success ? `[${k}]` : k))
        .join(' ')
      process.stdout.write(`${q.name}  ${params}\n    ${q.description}\n`)
    }
    return args.name || args.list ? 0 : 2
  }
  if (!(OUTPUT_FORMATS as readonly string[]).includes(args.format)) {
    throw new ReadtrailError('USAGE', `--format must be one of ${OUTPUT_FORMATS.join(', ')}`)
  }
  const query = getSavedQuery(args.name)
  const raw: Record<string, string> = {}
  for (const p of args.params) {
    const eq = p.indexOf('=')
    if (eq <= 0) throw new ReadtrailError('USAGE', `--param takes name=value, got ${JSON.stringify(p)}`)
    raw[p.slice(0, eq)] = p.slice(eq + 1)
  }
  // Validate before opening the store: a bad parameter runs nothing.
  const params = parseQueryParams(query, raw)
  const rows = await withStore(
    config,
    `readtrail query ${query.name}`,
    logger,
    (store) => store.queryRows<Record<string, unknown>>(query.sql(store), query.bind(params)),
    { op: 'query', name: query.name, params: raw },
  )
  process.stdout.write(`${formatRows(rows, query.columns, args.format as OutputFormat)}\n`)
  return 0
}
