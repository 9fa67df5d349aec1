import type { ClickHouseSettings } from '@clickhouse/client'
import type { z } from 'zod'
import type { Store } from '../store/store.js'
import { namedIssues } from '../common/zod-issues.js'
import { QueryError } from './errors.js'
import { consistencyOf, runAnswerChecks, type AnswerCheck, type Consistency } from './answer-check.js'
import { assessProvenance, type ChainSource, type Provenance } from './provenance.js'
import { SAVED_QUERY_SETTINGS } from './query-settings.js'
import { NO_SUBJECT_KEYS, type SubjectKeys } from './subject-keys.js'
import { resolveTableParams, type TableParams } from './table-names.js'
import type { VerifyState } from '../integrity/verify-state.js'

/** What a query needs besides its parameters: deployment facts from validated config. */
export interface QueryContext {
  /** Which part of a record id names the data subject, per `database.table`. */
  readonly subjectKeys: SubjectKeys
}

export const DEFAULT_QUERY_CONTEXT: QueryContext = Object.freeze({ subjectKeys: NO_SUBJECT_KEYS })

/**
 * A saved query: its SQL with `{name:Type}` placeholders bound server-side, the
 * zod schema of its parameters, and a one-line description. Values never
 * become SQL text; only table names (from validated config) are spliced in.
 */
export interface SavedQuery<P extends z.ZodObject, Row> {
  readonly name: string
  readonly description: string
  readonly params: P
  /** One line per parameter for `readtrail query --list`. */
  readonly paramHelp: Readonly<Record<keyof z.input<P> & string, string>>
  /**
   * SQL for the given store; `{param:Type}` placeholders only. `params` may
   * choose the shape (which filters exist), never supply text.
   */
  sql(store: Store, params: z.output<P>): string
  /**
   * SQL naming the events the answer stands on: one row per chain with
   * `chain_id`, `first_seq`, `last_seq`, `events`, bound with the same values.
   */
  sourcesSql(store: Store, params: z.output<P>): string
  /**
   * The query-serving rows the answer read (the view's target table), each
   * re-checked against access_log for the answer's key range, so an answer
   * from a table an insider altered is failed even when verify did not look
   * (incremental, --skip-views). Empty only for queries that read access_log
   * alone. `rows` is the answer, for ranges the answer itself picks.
   */
  checks(store: Store, params: z.output<P>, rows: readonly Row[]): AnswerCheck[]
  /** Parsed parameters → the values bound to the placeholders. */
  bind(params: z.output<P>, context: QueryContext): Record<string, unknown>
  /**
   * An optional first step whose (small) result is bound into `sql` and
   * `sourcesSql`: ClickHouse evaluates a CTE once per reference, so a
   * shortlist used twice is cheaper computed once and passed as arrays.
   */
  readonly prepare?: {
    sql(store: Store, params: z.output<P>): string
    bind(rows: Record<string, unknown>[]): Record<string, unknown>
  }
  /**
   * Parameters naming tables and a database, resolved against the tables
   * recorded in access_log before the query runs (queries/table-names.ts):
   * `db_names` and `table_names` are bound for TABLE_FILTER, and a name
   * nothing recorded matches is QUERY_TABLE_UNKNOWN with suggestions.
   */
  readonly tables?: TableParams
  /** Column order for table and CSV output. */
  readonly columns: readonly (keyof Row & string)[]
  /**
   * ClickHouse settings for the answer and its sources on top of
   * SAVED_QUERY_SETTINGS, where the planner needs telling (query-settings.ts).
   */
  readonly settings?: Readonly<ClickHouseSettings>
  /** Typed rows; reference `Row` so inference keeps it. */
  readonly _row?: Row
}

export type AnySavedQuery = SavedQuery<z.ZodObject, Record<string, unknown>>

/** The rows of a run and the chain ranges they came from; what the store side returns. */
export interface QueryResult<Row> {
  rows: Row[]
  /** True when `limit` cut the answer (one more row than the limit existed). */
  truncated: boolean
  sources: ChainSource[]
  /**
   * Whether the serving rows used agree with access_log (SavedQuery.checks).
   * Always set by executeSavedQuery and answerOf; optional because a result
   * from another process may lack it, which answerOf counts as unchecked.
   */
  consistency?: Consistency
}

/** A result with its parameters and the verification status of what it stands on. */
export interface QueryAnswer<Row> extends QueryResult<Row> {
  query: string
  description: string
  params: Record<string, unknown>
  columns: readonly string[]
  provenance: Provenance
}

export function defineQuery<P extends z.ZodObject, Row>(query: SavedQuery<P, Row>): SavedQuery<P, Row> {
  return Object.freeze(query)
}

/**
 * Runs a query on the store and collects its sources. `limit` (when the
 * query has one) is applied by fetching one row more, so truncation is told,
 * never guessed. The store side of an answer: no file outside ClickHouse is
 * read here, so a process serving the embedded store can run it for another.
 */
export async function executeSavedQuery<P extends z.ZodObject, Row>(
  store: Store,
  query: SavedQuery<P, Row>,
  rawParams: unknown,
  context: QueryContext = DEFAULT_QUERY_CONTEXT,
): Promise<QueryResult<Row>> {
  const answered = await answerRows(store, query, rawParams, context)
  // After the answer, over the same key range: an empty answer is checked too.
  const consistency = await checkAnswer(store, query, answered)
  return { rows: answered.rows, truncated: answered.truncated, sources: answered.sources, consistency }
}

/** The first half of executeSavedQuery: the answer unchecked, with what its check needs. Exported for bench/queries.ts. */
export interface AnsweredRows<P extends z.ZodObject, Row> {
  rows: Row[]
  truncated: boolean
  sources: ChainSource[]
  params: z.output<P>
  /** Every value the query's SQL was bound with, the prepared step's included. */
  bound: Record<string, unknown>
}

export async function answerRows<P extends z.ZodObject, Row>(store: Store, query: SavedQuery<P, Row>, rawParams: unknown, context: QueryContext): Promise<AnsweredRows<P, Row>> {
  const params = parseQueryParams(query, rawParams)
  const limit = typeof (params as { limit?: unknown }).limit === 'number' ? ((params as { limit: number }).limit) : 0
  const tables = query.tables ? await resolveTableParams(store, query.name, query.tables, params as Record<string, unknown>) : {}
  const base = { ...query.bind(params, context), ...tables, limit_plus_one: limit === 0 ? 0 : limit + 1 }
  const settings = { ...SAVED_QUERY_SETTINGS, ...query.settings }
  const bound = query.prepare ? { ...base, ...query.prepare.bind(await store.queryRows<Record<string, unknown>>(query.prepare.sql(store, params), base, settings)) } : base
  const [rows, sourceRows] = await Promise.all([
    store.queryRows<Row>(query.sql(store, params), bound, settings),
    store.queryRows<{ chain_id: string; first_seq: number | string; last_seq: number | string; events: number | string }>(query.sourcesSql(store, params), bound, settings),
  ])
  const truncated = limit > 0 && rows.length > limit
  if (truncated) rows.length = limit
  const sources = sourceRows
    .map((s) => ({ chain_id: s.chain_id, first_seq: Number(s.first_seq), last_seq: Number(s.last_seq), events: Number(s.events) }))
    .filter((s) => s.events > 0)
    .sort((a, b) => (a.chain_id < b.chain_id ? -1 : a.chain_id > b.chain_id ? 1 : 0))
  return { rows, truncated, sources, params, bound }
}

/** The second half: the answer's serving rows against access_log (SavedQuery.checks). */
export function checkAnswer<P extends z.ZodObject, Row>(store: Store, query: SavedQuery<P, Row>, answered: AnsweredRows<P, Row>): Promise<Consistency> {
  return runAnswerChecks(store, query.checks(store, answered.params, answered.rows), answered.bound)
}

/**
 * Validates parameters (every problem named at once), runs the query, and
 * states what the answer stands on against `verifyState` (null: never verified).
 */
export async function runSavedQuery<P extends z.ZodObject, Row>(
  store: Store,
  query: SavedQuery<P, Row>,
  rawParams: unknown,
  options: { context?: QueryContext; verifyState?: VerifyState | null } = {},
): Promise<QueryAnswer<Row>> {
  const result = await executeSavedQuery(store, query, rawParams, options.context)
  return answerOf(query, rawParams, result, options.verifyState ?? null)
}

/**
 * Puts a store-side result together with its provenance. The result may come
 * from another process over the owner socket: a consistency verdict that is
 * missing or malformed counts as a failed check.
 */
export function answerOf<P extends z.ZodObject, Row>(
  query: SavedQuery<P, Row>,
  rawParams: unknown,
  result: QueryResult<Row>,
  verifyState: VerifyState | null,
): QueryAnswer<Row> {
  const consistency = consistencyOf((result as { consistency?: unknown }).consistency)
  return {
    query: query.name,
    description: query.description,
    params: { ...(rawParams as Record<string, unknown>) },
    columns: query.columns,
    ...result,
    consistency,
    provenance: assessProvenance(result.sources, verifyState, { consistency }),
  }
}

export function parseQueryParams<P extends z.ZodObject, Row>(query: SavedQuery<P, Row>, rawParams: unknown): z.output<P> {
  const parsed = query.params.safeParse(rawParams)
  if (!parsed.success) {
    const issues = namedIssues(parsed.error, '(params)').map((i) => ({ param: i.key, problem: i.problem }))
    throw new QueryError('QUERY_PARAM_INVALID', `${query.name}: ${issues.map((i) => `${i.param}: ${i.problem}`).join('; ')}`, {
      details: { query: query.name, issues },
    })
  }
  return parsed.data
}
