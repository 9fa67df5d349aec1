import type { Logger } from '../common/logger.js'
import { ReadtrailError } from '../common/errors.js'
import type { QueryAnswer } from '../queries/saved-query.js'
import { renderBreachReport } from '../reports/breach-report.js'
import { renderPrincipalReport } from '../reports/principal-report.js'
import { worstStatus } from '../reports/html.js'
import { windowOf } from '../reports/report-parts.js'
import { BUCKET_MS, chooseBucket, parseUtc, type Bucket } from '../reports/svg-timeline.js'
import { answerSavedQuery, exitCodeOf } from './answer-query.js'
import { parseParamFlags } from './param-flags.js'
import { openOutputFile } from './safe-output.js'
import type { AppConfig } from './config.js'

export const REPORT_KINDS = ['breach-scope', 'principal'] as const

/** How many records a report lists; the rest are one `readtrail query … --param limit=0` away. */
const RECORDS_SHOWN = 500

export interface ReportCommandArgs {
  kind: string | undefined
  params: string[]
  out: string | undefined
  /** Replace an existing file at `out` (atomically; a symlink there is replaced, never followed). @default false */
  force?: boolean
}

type Answer = QueryAnswer<Record<string, unknown>>
type Ask = (name: string, params: Record<string, unknown>) => Promise<Answer>

/**
 * `readtrail report breach-scope|principal --param k=v … [--out FILE]`: runs
 * the saved queries a report needs, writes one self-contained HTML file and
 * prints its path. Exit code as `readtrail query`: 0 when every answer is
 * verified, 3 when some is unverified, 4 when some failed verification, 5
 * when some stands on unsigned rows (worst first: 4, 5, 3, 0).
 */
export async function reportCommand(config: AppConfig, args: ReportCommandArgs, logger: Logger): Promise<number> {
  const kind = args.kind
  if (kind !== 'breach-scope' && kind !== 'principal') {
    throw new ReadtrailError('USAGE', `report kind must be one of ${REPORT_KINDS.join(', ')}${kind === undefined ? '' : `, got ${JSON.stringify(kind)}`}`)
  }
  const params = parseParamFlags(args.params)
  const bucket = params['bucket']
  if (bucket !== undefined && !Object.hasOwn(BUCKET_MS, bucket)) {
    throw new ReadtrailError('USAGE', `--param bucket must be one of ${Object.keys(BUCKET_MS).join(', ')}, got ${JSON.stringify(bucket)}`)
  }
  const generatedAt = new Date()
  const name = args.out ?? `readtrail-${kind}-${generatedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')}.html`
  // Opened before querying: a report over a large breach takes a while to
  // compute, and a path that cannot be written (read-only, missing, already
  // there, a planted symlink) must fail first. 0600: the file names the
  // records read in an incident, which are personal data.
  const output = openOutputFile(name, { force: args.force ?? false })
  const out = output.path
  const log = logger.child({ component: 'report', kind })
  let report: PreparedReport
  try {
    // One query at a time: each answer opens the embedded store in turn, and libchdb holds one session per process.
    const ask: Ask = (queryName, raw) => answerSavedQuery(config, queryName, raw, log)
    report = kind === 'breach-scope' ? await breachReport(ask, params, bucket as Bucket | undefined) : await principalReport(ask, params, bucket as Bucket | undefined)
    output.commit(report.render({ generatedAt, database: config.store.database }))
  } catch (err) {
    output.abandon()
    throw err
  }
  const status = worstStatus(report.answers.map((a) => a.provenance.status))
  log.info({ out, status, answers: report.answers.map((a) => ({ query: a.query, rows: a.rows.length, truncated: a.truncated, status: a.provenance.status })) }, 'report written')
  process.stdout.write(`${out}\n`)
  return exitCodeOf({ provenance: { status } })
}

interface PreparedReport {
  answers: Answer[]
  render(context: { generatedAt: Date; database: string }): string
}

async function breachReport(ask: Ask, params: Record<string, string>, bucketParam: Bucket | undefined): Promise<PreparedReport> {
  const { bucket: _bucket, ...filters } = params
  const window = closedWindow(filters)
  const bucket = bucketParam ?? (window ? chooseBucket(window.from, window.to) : '1h')
  // breach-scope first: it validates the filters before the heavier queries run.
  const scope = await ask('breach-scope', filters)
  const timeline = await ask('breach-timeline', { ...filters, bucket })
  const records = await ask('breach-records', { ...filters, limit: RECORDS_SHOWN })
  return {
    answers: [scope, timeline, records],
    render: (c) => renderBreachReport({ ...c, params, bucket, scope, timeline, records }),
  }
}

/** Parameters only off-hours-access takes. */
const OFF_HOURS_KEYS = new Set(['timezone', 'workday_start', 'workday_end', 'weekdays'])

async function principalReport(ask: Ask, params: Record<string, string>, bucketParam: Bucket | undefined): Promise<PreparedReport> {
  const { bucket: _bucket, ...rest } = params
  const filters = Object.fromEntries(Object.entries(rest).filter(([k]) => !OFF_HOURS_KEYS.has(k)))
  const hours = Object.fromEntries(Object.entries(rest).filter(([k]) => OFF_HOURS_KEYS.has(k)))
  const window = closedWindow(filters)
  const { answer: timeline, bucket } = await principalTimeline(ask, filters, bucketParam ?? (window ? chooseBucket(window.from, window.to) : undefined))
  // off-hours-access needs both ends: an open end becomes the account's first or last activity.
  const active = activeSpan(timeline, bucket)
  const from = filters['from'] ?? active?.from
  const to = filters['to'] ?? active?.to
  const principalOnly = filters['principal'] === undefined ? {} : { principal: filters['principal'] }
  const offHours = from !== undefined && to !== undefined ? await ask('off-hours-access', { ...principalOnly, ...hours, from, to }) : null
  const records = await ask('records-touched-by-principal', { ...filters, limit: RECORDS_SHOWN })
  return {
    answers: [timeline, ...(offHours ? [offHours] : []), records],
    render: (c) => renderPrincipalReport({ ...c, params, bucket, timeline, offHours, records }),
  }
}

/**
 * Without a closed window the account's activity could span minutes or
 * years: ask by day first, then by a finer bucket while the span found
 * allows one (at most three cheap queries, all bounded to one principal).
 */
async function principalTimeline(ask: Ask, filters: Record<string, string>, fixed: Bucket | undefined): Promise<{ answer: Answer; bucket: Bucket }> {
  let bucket: Bucket = fixed ?? '1d'
  for (;;) {
    const answer = await ask('principal-timeline', { ...filters, bucket })
    const span = activeSpan(answer, bucket)
    const finer = span && chooseBucket(Date.parse(span.from), Date.parse(span.to))
    if (fixed || !finer || BUCKET_MS[finer] >= BUCKET_MS[bucket]) return { answer, bucket }
    bucket = finer
  }
}

/** First bucket start to last bucket end of a timeline answer, as ISO text; null when it is empty. */
function activeSpan(answer: Answer, bucket: Bucket): { from: string; to: string } | null {
  const starts = answer.rows.map((r) => parseUtc(String(r['bucket_start'])))
  if (starts.length === 0) return null
  const first = starts.reduce((a, b) => Math.min(a, b))
  const last = starts.reduce((a, b) => Math.max(a, b)) + BUCKET_MS[bucket]
  return { from: new Date(first).toISOString(), to: new Date(last).toISOString() }
}

/** from/to as epoch ms when both are given and readable; the queries report bad values themselves. */
function closedWindow(params: Record<string, string>): { from: number; to: number } | null {
  const { from, to } = windowOf(params)
  return from !== undefined && to !== undefined ? { from, to } : null
}
