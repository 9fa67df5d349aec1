import type { z } from 'zod'
import type { Logger } from '../common/logger.js'
import { SAVED_QUERIES } from '../queries/catalog.js'
import { ReadtrailError } from '../common/errors.js'
import type { QueryAnswer } from '../queries/saved-query.js'
import type { AppConfig } from './config.js'
import { answerSavedQuery, exitCodeOf } from './answer-query.js'
import { formatAnswer, OUTPUT_FORMATS, type OutputFormat } from './format-rows.js'
import { parseParamFlags } from './param-flags.js'
import { startProgress } from './progress.js'

export interface QueryCommandArgs {
  name: string | undefined
  list: boolean
  params: string[]
  format: string
}

/**
 * `readtrail query <name> --param k=v … --format table|csv|json|ndjson`, or `--list`.
 * Exit 0: answered, every row on verified ranges; 3: answered, some rows not
 * yet verified; 4: answered, some rows in ranges that failed verification;
 * 5: answered, some rows after their chain's newest signed checkpoint;
 * 2: nothing answered (usage, parameter or store error, or a verify state
 * whose signature does not check out: VERIFY_STATE_UNTRUSTED).
 */
export async function queryCommand(config: AppConfig, args: QueryCommandArgs, logger: Logger): Promise<number> {
  if (args.list || !args.name) {
    process.stdout.write(listing())
    return args.name || args.list ? 0 : 2
  }
  if (!(OUTPUT_FORMATS as readonly string[]).includes(args.format)) {
    throw new ReadtrailError('USAGE', `--format must be one of ${OUTPUT_FORMATS.join(', ')}`)
  }
  const raw = parseParamFlags(args.params)
  const stop = startProgress(`readtrail query ${args.name}`)
  let answer
  try {
    answer = await answerSavedQuery(config, args.name, raw, logger)
  } finally {
    stop()
  }
  return writeAnswer(answer, args.format as OutputFormat)
}

/**
 * Prints an answer in `format` and returns the exit code its provenance
 * gives. A pipe format's reader may never look at the header: the summary
 * of anything short of verified goes to stderr too.
 */
export function writeAnswer(answer: QueryAnswer<Record<string, unknown>>, format: OutputFormat): number {
  process.stdout.write(`${formatAnswer(answer, format)}\n`)
  if (answer.provenance.status !== 'verified' && format !== 'table') process.stderr.write(`readtrail: ${answer.provenance.summary}\n`)
  return exitCodeOf(answer)
}

function listing(): string {
  const out: string[] = []
  for (const q of SAVED_QUERIES.values()) {
    const shape = q.params.shape as Record<string, z.ZodType>
    const params = Object.keys(shape).map((k) => (shape[k]!.safeParse(undefined).success ? `[${k}]` : k))
    out.push(`${q.name}  ${params.join(' ')}`, `    ${q.description}`)
    for (const k of Object.keys(shape)) out.push(`      ${k.padEnd(14)} ${(q.paramHelp as Record<string, string>)[k] ?? ''}`)
    out.push('')
  }
  out.push('exit codes: 0 answered on verified ranges, 3 some rows not yet verified, 4 some rows in ranges that failed verification, 5 some rows not yet signed, 2 error')
  return `${out.join('\n')}\n`
}
