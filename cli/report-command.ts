import { join, resolve } from 'node:path'
import type { Logger } from '../common/logger.js'
import { isReadtrailError, ReadtrailError } from '../common/errors.js'
import { loadPublicKey } from '../checkpoints/keys.js'
import type { QueryAnswer } from '../queries/saved-query.js'
import { renderBreachReport } from '../reports/breach-report.js'
import { renderPrincipalReport } from '../reports/principal-report.js'
import { worstStatus } from '../reports/html.js'
import { windowOf, type CheckpointKeyFact, type ReportContext } from '../reports/report-parts.js'
import { BUCKET_MS, chartSpan, chooseBucket, parseUtc, type Bucket, type OpenWindow, type Span } from '../reports/timeline-grid.js'
import { answerSavedQuery, exitCodeOf } from './answer-query.js'
import { parseParamFlags } from './param-flags.js'
import { openOutputFile } from './safe-output.js'
import type { AppConfig } from './config.js'

export const REPORT_KINDS = ['breach-scope', 'principal'] as const

/** How many records a report lists; the rest are one `readtrail query … --param limit=0` away. */
const RECORDS_SHOWN = 500

/** off-hours-access's own default zone: the principal report states it rather than using it silently. */
export const DEFAULT_WORKING_HOURS_ZONE = 'Europe/Berlin'

/** Longest --case-id / --author: a ticket number or a name, printed in every page margin. */
const ANNEX_TEXT_MAX = 120

export interface ReportCommandArgs {
  kind: string | undefined
  params: string[]
  out: string | undefined
  /** Replace an existing file at `out` (atomically; a symlink there is replaced, never followed). @default false */
  force?: boolean
  /** The case the report is an annex to, printed in the header and on every page. */
  caseId?: string | undefined
  /** Who prepares the report, printed in the header, the sign-off and on every page. */
  author?: string | undefined
  /** IANA zone the principal report judges working hours in. @default DEFAULT_WORKING_HOURS_ZONE */
  tz?: string | undefined
  /** Where READTRAIL_HOME is read for the reproduce line. @default process.env */
  env?: NodeJS.ProcessEnv
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
  const caseId = annexText('--case-id', args.caseId)
  const author = annexText('--author', args.author)
  const timeZone = workingHoursZone(kind, args.tz, params)
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
    report = kind === 'breach-scope' ? await breachReport(ask, params, bucket as Bucket | undefined) : await principalReport(ask, params, bucket as Bucket | undefined, timeZone)
    const context: ReportContext = {
      generatedAt,
      database: config.store.database,
      caseId,
      author,
      checkpointKey: checkpointKeyFact(config.checkpoints.publicKeyPath),
      invocation: reproduceInvocation(config, args.env ?? process.env),
    }
    output.commit(report.render(context))
  } catch (err) {
    output.abandon()
    throw err
  }
  const status = worstStatus(report.answers.map((a) => a.provenance.status))
  log.info({ out, status, answers: report.answers.map((a) => ({ query: a.query, rows: a.rows.length, truncated: a.truncated, status: a.provenance.status })) }, 'report written')
  process.stdout.write(`${out}\n`)
  return exitCodeOf({ provenance: { status } })
}

/** A case id or author as typed, or USAGE: printable, one line, bounded, and no bidirectional controls that could make a printed id read as another. */
function annexText(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  if (text.length === 0 || text.length > ANNEX_TEXT_MAX || /[\p{Cc}\p{Cf}\u2028\u2029]/u.test(text)) {
    throw new ReadtrailError('USAGE', `${flag} must be 1 to ${ANNEX_TEXT_MAX} printable characters on one line, got ${JSON.stringify(value)}`)
  }
  return text
}

/**
 * The zone working hours are judged in: `--tz`, else `--param timezone`
 * (off-hours-access's own name for it), else the query's default, which the
 * report then states. Breach reports show UTC only, so --tz there is a mistake.
 */
function workingHoursZone(kind: 'breach-scope' | 'principal', tz: string | undefined, params: Record<string, string>): string {
  if (kind === 'breach-scope') {
    if (tz !== undefined) throw new ReadtrailError('USAGE', '--tz sets the working hours of the principal report; the breach-scope report shows every time in UTC')
    return 'UTC'
  }
  const param = params['timezone']
  if (tz !== undefined && param !== undefined && tz !== param) throw new ReadtrailError('USAGE', `--tz ${JSON.stringify(tz)} and --param timezone=${JSON.stringify(param)} disagree; give one`)
  const zone = tz ?? param ?? DEFAULT_WORKING_HOURS_ZONE
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone })
  } catch (cause) {
    throw new ReadtrailError('USAGE', `--tz must be an IANA time zone such as Europe/Berlin or America/New_York, got ${JSON.stringify(zone)}`, { cause })
  }
  return zone
}

/** The checkpoint public key the answers' signatures were checked with: its key id, or where none was found. */
function checkpointKeyFact(path: string): CheckpointKeyFact {
  try {
    return { keyId: loadPublicKey(path).keyId, path: resolve(path) }
  } catch (err) {
    if (isReadtrailError(err) && err.code === 'CHECKPOINT_KEY_MISSING') return { keyId: null, path: resolve(path) }
    throw err
  }
}

/**
 * The environment and flags that make another `readtrail` ask the store
 * this one asked, with the same keys, verify state and subject keys:
 * READTRAIL_HOME always (absolute), and every resolved setting that differs
 * from what READTRAIL_HOME implies. The ClickHouse password is never
 * written: it stays in the environment of whoever runs the line.
 */
export function reproduceInvocation(config: AppConfig, env: NodeJS.ProcessEnv): ReportContext['invocation'] {
  const home = resolve(env['READTRAIL_HOME'] || '.readtrail')
  const differs = (value: string, implied: string) => resolve(value) !== resolve(implied)
  const environment: [string, string][] = [['READTRAIL_HOME', home]]
  const flags: string[] = ['--database', config.store.database]
  if (config.store.url !== undefined) {
    const url = new URL(config.store.url)
    url.password = ''
    environment.push(['READTRAIL_CLICKHOUSE_URL', url.toString()])
    if (config.store.username !== 'default') environment.push(['READTRAIL_CLICKHOUSE_USER', config.store.username])
  } else if (differs(config.store.dataDir, join(home, 'chdb'))) {
    flags.push('--data-dir', resolve(config.store.dataDir))
  }
  if (differs(config.checkpoints.publicKeyPath, join(home, 'keys', 'checkpoint.key.pub'))) flags.push('--public-key', resolve(config.checkpoints.publicKeyPath))
  if (differs(config.checkpoints.logPath, join(home, 'checkpoints.jsonl'))) flags.push('--checkpoint-log', resolve(config.checkpoints.logPath))
  if (differs(config.verifyStatePath, join(home, 'verify-state.json'))) environment.push(['READTRAIL_VERIFY_STATE', resolve(config.verifyStatePath)])
  if (differs(config.verifier.publicKeyPath, join(home, 'keys', 'verifier.key.pub'))) environment.push(['READTRAIL_VERIFY_PUBLIC_KEY', resolve(config.verifier.publicKeyPath)])
  // Subject counts depend on it: without it the same command reports subjects as unknown.
  if (config.subjectKeys.size > 0) {
    environment.push(['READTRAIL_SUBJECT_KEYS', [...config.subjectKeys].map(([table, part]) => `${table}=${part === 0 ? 'id' : `key${part}`}`).join(',')])
  }
  return { environment, flags }
}

interface PreparedReport {
  answers: Answer[]
  render(context: ReportContext): string
}

async function breachReport(ask: Ask, params: Record<string, string>, bucketParam: Bucket | undefined): Promise<PreparedReport> {
  const { bucket: _bucket, ...filters } = params
  // breach-scope first: it validates the filters, and its first and last
  // access bound the reads, so the timeline's bucket follows the breach, not the window.
  const scope = await ask('breach-scope', filters)
  const span = chartSpan(windowOf(filters), scopeActivity(scope))
  const bucket = bucketParam ?? (span ? chooseBucket(span.from, span.to) : '1h')
  const timeline = await ask('breach-timeline', { ...filters, bucket })
  const records = await ask('breach-records', { ...filters, limit: RECORDS_SHOWN })
  return {
    answers: [scope, timeline, records],
    render: (context) => renderBreachReport({ context, params, bucket, span, scope, timeline, records }),
  }
}

/** First read to just after the last, from breach-scope's per-table first and last access; null when nothing matched. */
function scopeActivity(scope: Answer): Span | null {
  const times = scope.rows.flatMap((r) => [r['first_access'], r['last_access']]).filter((t): t is string => typeof t === 'string').map(parseUtc)
  if (times.length === 0) return null
  return { from: times.reduce((a, b) => Math.min(a, b)), to: times.reduce((a, b) => Math.max(a, b)) + 1000 }
}

/** Parameters only off-hours-access takes (timezone arrives as the report's zone). */
const OFF_HOURS_KEYS = new Set(['timezone', 'workday_start', 'workday_end', 'weekdays'])

async function principalReport(ask: Ask, params: Record<string, string>, bucketParam: Bucket | undefined, timeZone: string): Promise<PreparedReport> {
  const { bucket: _bucket, timezone: _timezone, ...rest } = params
  const filters = Object.fromEntries(Object.entries(rest).filter(([k]) => !OFF_HOURS_KEYS.has(k)))
  const hours = Object.fromEntries(Object.entries(rest).filter(([k]) => OFF_HOURS_KEYS.has(k)))
  const window = windowOf(filters)
  const { answer: timeline, bucket, span } = await principalTimeline(ask, filters, window, bucketParam)
  // off-hours-access needs both ends: an open end becomes the account's first or last activity.
  const active = activeSpan(timeline, bucket)
  const from = filters['from'] ?? (active && new Date(active.from).toISOString())
  const to = filters['to'] ?? (active && new Date(active.to).toISOString())
  const principalOnly = filters['principal'] === undefined ? {} : { principal: filters['principal'] }
  const offHours = from && to ? await ask('off-hours-access', { ...principalOnly, ...hours, timezone: timeZone, from, to }) : null
  const records = await ask('records-touched-by-principal', { ...filters, limit: RECORDS_SHOWN })
  const { timezone: _zone, ...shown } = params
  return {
    answers: [timeline, ...(offHours ? [offHours] : []), records],
    render: (context) => renderPrincipalReport({ context, params: shown, timeZone, bucket, span, timeline, offHours, records }),
  }
}

/**
 * The account's activity could span seconds or years, and the window (if
 * any) says little about it: ask coarsely first (the window's bucket, or
 * days), then again with the bucket that suits the span the reads actually
 * cover, while that is finer (each step strictly finer: a few cheap
 * queries, all bounded to one principal's key range).
 */
async function principalTimeline(ask: Ask, filters: Record<string, string>, window: OpenWindow, fixed: Bucket | undefined): Promise<{ answer: Answer; bucket: Bucket; span: Span | null }> {
  let bucket: Bucket = fixed ?? (window.from !== undefined && window.to !== undefined ? chooseBucket(window.from, window.to) : '1d')
  for (;;) {
    const answer = await ask('principal-timeline', { ...filters, bucket })
    const span = chartSpan(window, activeSpan(answer, bucket))
    const finer = span && chooseBucket(span.from, span.to)
    if (fixed || !finer || BUCKET_MS[finer] >= BUCKET_MS[bucket]) return { answer, bucket, span }
    bucket = finer
  }
}

/** First bucket start to last bucket end of a timeline answer; null when it is empty. */
function activeSpan(answer: Answer, bucket: Bucket): Span | null {
  const starts = answer.rows.map((r) => parseUtc(String(r['bucket_start'])))
  if (starts.length === 0) return null
  return { from: starts.reduce((a, b) => Math.min(a, b)), to: starts.reduce((a, b) => Math.max(a, b)) + BUCKET_MS[bucket] }
}
