import type { z } from 'zod'
import { namedIssues } from '../common/zod-issues.js'
import { QueryError } from '../queries/errors.js'
import type { AnySavedQuery } from '../queries/saved-query.js'
import { didYouMean } from '../common/suggest.js'

/**
 * Example values by parameter name, for help and for error messages; a
 * value is shown only where the query's own schema accepts it (a unit test
 * checks every saved query's example line parses).
 */
const EXAMPLES: Readonly<Record<string, string>> = {
  principal: 'clerk.marta',
  principals: 'clerk.marta,svc.export',
  table: 'applicants',
  tables: 'admissions.applicants',
  database: 'admissions',
  record: '104042',
  subject: '104042',
  ips: '203.0.113.66',
  sessions: '6b1f0c9e2d7a4b3c8e5f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d',
  from: '2026-11-26',
  to: '2026-11-27',
  limit: '100',
  bucket: '1h',
  threshold: '300',
  timezone: 'Europe/Berlin',
  workday_start: '08:00',
  workday_end: '18:00',
  weekdays: 'mon,tue,wed,thu,fri',
}

const accepts = (schema: z.ZodType, value: string) => schema.safeParse(value).success

/**
 * What a value of this parameter looks like, read from its schema by trying
 * it: a point in time, a whole number, a number. Undefined for text.
 */
export function formatHintOf(schema: z.ZodType): string | undefined {
  if (accepts(schema, '2026-11-26') && accepts(schema, '2026-11-26T02:10:00Z') && !accepts(schema, 'yesterday')) {
    return 'ISO 8601: a date (2026-11-26, midnight UTC) or a date-time (2026-11-26T02:10:00Z, 2026-11-26T03:10:00+01:00)'
  }
  if (accepts(schema, '42') && !accepts(schema, 'x')) return accepts(schema, '2.5') ? 'a number, e.g. 2.5' : 'a whole number, e.g. 100'
  return undefined
}

export interface ParamDescription {
  name: string
  required: boolean
  help: string
  /** What its value looks like (formatHintOf), if it is not plain text. */
  format: string | undefined
  /** A value the query accepts, if one is known. */
  example: string | undefined
}

/** Each parameter of a saved query as help and errors describe it. */
export function describeParams(query: AnySavedQuery): ParamDescription[] {
  const shape = query.params.shape as Record<string, z.ZodType>
  const help = query.paramHelp as Record<string, string>
  return Object.entries(shape).map(([name, schema]) => {
    const example = EXAMPLES[name]
    return {
      name,
      required: !schema.safeParse(undefined).success,
      help: help[name] ?? '',
      format: formatHintOf(schema),
      example: example !== undefined && accepts(schema, example) ? example : undefined,
    }
  })
}

/** `readtrail query <name> --param …` with an example value for every required parameter. */
export function exampleCommandOf(query: AnySavedQuery): string {
  const params = describeParams(query)
  const shown = params.filter((p) => p.required)
  // Rules across parameters (breach-scope wants at least one lead) or a
  // query with no required one: add optional ones with examples until it parses.
  const valid = () => query.params.safeParse(Object.fromEntries(shown.map((p) => [p.name, p.example]))).success
  for (const p of params) {
    if (shown.length > 0 && valid()) break
    if (!p.required && p.example !== undefined) shown.push(p)
  }
  shown.sort((a, b) => params.indexOf(a) - params.indexOf(b))
  return ['readtrail query', query.name, ...shown.map((p) => `--param ${p.name}=${p.example ?? 'VALUE'}`)].join(' ')
}

/**
 * Validates `--param` values for the CLI and, when they fail, says how to
 * fix each one: an unknown name with the nearest parameter names, a missing
 * one with its description and an example, a malformed one with the format
 * it needs (ISO 8601 for times). Same code (QUERY_PARAM_INVALID) and
 * `details.issues` shape as queries/saved-query.ts parseQueryParams, which
 * still runs after this; nothing opens before either passes.
 */
export function assertQueryParams(query: AnySavedQuery, raw: Readonly<Record<string, unknown>>): void {
  const parsed = query.params.safeParse(raw)
  if (parsed.success) return
  const params = new Map(describeParams(query).map((p) => [p.name, p]))
  const shape = query.params.shape as Record<string, z.ZodType>
  const issues: { param: string; problem: string }[] = []
  for (const { key, problem } of namedIssues(parsed.error, '(params)')) {
    const p = params.get(key)
    if (problem === 'unknown key' && !p) {
      const hint = didYouMean(key, params.keys())
      issues.push({ param: key, problem: `unknown parameter${hint || ` (${query.name} takes ${[...params.keys()].join(', ')})`}` })
    } else if (p && raw[key] === undefined) {
      issues.push({ param: key, problem: `missing (required): ${p.help}${p.example && !p.help.includes(p.example) ? `, e.g. --param ${key}=${p.example}` : ''}` })
    } else if (p?.format && !accepts(shape[key]!, String(raw[key])) && (p.format.startsWith('ISO') || !/^-?\d+(\.\d+)?$/.test(String(raw[key])))) {
      // A number out of range keeps zod's own words ("Too big: …"); only a value of the wrong shape gets the format.
      issues.push({ param: key, problem: `${JSON.stringify(raw[key])} is not ${p.format.startsWith('ISO') ? 'a date or time' : 'valid'}: expected ${p.format}` })
    } else {
      issues.push({ param: key, problem })
    }
  }
  throw new QueryError('QUERY_PARAM_INVALID', `${query.name}: ${issues.map((i) => `${i.param}: ${i.problem}`).join('; ')}; see readtrail query ${query.name} --help`, {
    details: { query: query.name, issues },
  })
}
