import { isIP } from 'node:net'
import { ACTIONS, LIMITS, MAX_LONG, OUTCOMES, PRINCIPAL_TYPES } from './access-event.js'
import type { ParsedReadInput } from './read-input.js'

/**
 * The common read, checked by hand: plain objects, strings, numbers and
 * booleans within every limit ReadInput sets. Returns the parsed read, or
 * undefined for anything else — an error, a Date, a bigint id, a class
 * instance, a key ReadInput does not know — and the caller then asks
 * ReadInput itself, which stays the one definition of a valid read and
 * gives the precise error. On data that answers the same each time it is
 * read, this never accepts what ReadInput refuses and returns what it would
 * (test/unit/read-input-check.test.ts); it costs a fraction
 * of zod's ~3 µs per read on the application's thread.
 *
 * Each property (and an array's length) is read once and copied into a
 * fresh object: what is checked is what is recorded. An object that answers
 * differently each time it is read (a getter, a Proxy) is judged by the
 * one answer read here, which is the one recorded.
 */
export function checkReadInput(raw: unknown): ParsedReadInput | undefined {
  const r = plain(raw, READ_KEYS)
  if (r === undefined) return undefined
  const principal = plain(r['principal'], PRINCIPAL_KEYS)
  const resource = plain(r['resource'], RESOURCE_KEYS)
  if (principal === undefined || resource === undefined) return undefined
  const id = principal['id']
  const type = principal['type'] === undefined ? 'user' : principal['type']
  const onBehalfOf = principal['onBehalfOf']
  if (!isName(id) || !isMember(PRINCIPAL_TYPES, type) || !(onBehalfOf === undefined || isName(onBehalfOf))) return undefined
  const database = resource['database']
  const table = resource['table']
  if (!isName(database) || !isName(table)) return undefined

  const columns = nameArray(r['columns'])
  const recordIds = idArray(r['recordIds'])
  if (columns === undefined || recordIds === undefined) return undefined
  const sessionId = r['sessionId']
  const clientIp = r['clientIp']
  const action = r['action'] === undefined ? 'read' : r['action']
  const rowCount = r['rowCount']
  const recordIdsComplete = r['recordIdsComplete'] === undefined ? true : r['recordIdsComplete']
  const query = r['query']
  const queryFingerprint = r['queryFingerprint']
  const dbSession = r['dbSession']
  const statementDigest = r['statementDigest']
  const purpose = r['purpose']
  const traceId = r['traceId']
  const outcome = r['outcome'] === undefined ? 'success' : r['outcome']
  const occurredAt = r['occurredAt']
  if (
    !optionalText(sessionId, 1, LIMITS.text) ||
    !(clientIp === undefined || (typeof clientIp === 'string' && clientIp.length <= LIMITS.ip && isIP(clientIp) !== 0 && !clientIp.includes('%'))) ||
    !isMember(ACTIONS, action) ||
    !(rowCount === undefined || (isLong(rowCount) && rowCount >= recordIds.length)) ||
    typeof recordIdsComplete !== 'boolean' ||
    !optionalText(query, 0, 1_000_000) ||
    !optionalText(queryFingerprint, 0, LIMITS.fingerprint) ||
    !(dbSession === undefined || (typeof dbSession === 'string' && DB_SESSION.test(dbSession))) ||
    !(statementDigest === undefined || (typeof statementDigest === 'string' && STATEMENT_DIGEST.test(statementDigest))) ||
    !optionalText(purpose, 1, LIMITS.text) ||
    !optionalText(traceId, 1, LIMITS.text) ||
    !isMember(OUTCOMES, outcome) ||
    !(occurredAt === undefined || isLong(occurredAt))
  ) {
    return undefined
  }
  // Keys absent or undefined are left out, as zod leaves them.
  const read: ParsedReadInput = {
    principal: onBehalfOf === undefined ? { id, type } : { id, type, onBehalfOf },
    action,
    resource: { database, table },
    columns,
    recordIds,
    recordIdsComplete,
    outcome,
  }
  if (sessionId !== undefined) read.sessionId = sessionId
  if (clientIp !== undefined) read.clientIp = clientIp
  if (rowCount !== undefined) read.rowCount = rowCount
  if (query !== undefined) read.query = query
  if (queryFingerprint !== undefined) read.queryFingerprint = queryFingerprint
  if (dbSession !== undefined) read.dbSession = dbSession
  if (statementDigest !== undefined) read.statementDigest = statementDigest
  if (purpose !== undefined) read.purpose = purpose
  if (traceId !== undefined) read.traceId = traceId
  if (occurredAt !== undefined) read.occurredAt = occurredAt
  return read
}

const READ_KEYS = new Set([
  'principal', 'sessionId', 'clientIp', 'action', 'resource', 'columns', 'recordIds', 'rowCount', 'recordIdsComplete',
  'query', 'queryFingerprint', 'dbSession', 'statementDigest', 'purpose', 'traceId', 'outcome', 'occurredAt',
])
const PRINCIPAL_KEYS = new Set(['id', 'type', 'onBehalfOf'])
const RESOURCE_KEYS = new Set(['database', 'table'])
const DB_SESSION = /^[0-9]{1,20}$/
const STATEMENT_DIGEST = /^[0-9a-f]{64}$/

/**
 * The object itself when it is a plain object (its prototype Object's or
 * none) whose own enumerable keys are all known; otherwise undefined. Its
 * values are then read by the caller exactly once each, into locals, so a
 * getter or a Proxy cannot answer the check and the copy differently.
 */
function plain(value: unknown, known: ReadonlySet<string>): Record<string, unknown> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return undefined
  for (const key of Object.keys(value)) if (!known.has(key)) return undefined
  return value as Record<string, unknown>
}

function isName(v: unknown): v is string {
  return typeof v === 'string' && v.length >= 1 && v.length <= LIMITS.name
}

function optionalText(v: unknown, min: number, max: number): v is string | undefined {
  return v === undefined || (typeof v === 'string' && v.length >= min && v.length <= max)
}

function isLong(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_LONG
}

function isMember<T extends string>(members: readonly T[], v: unknown): v is T {
  return typeof v === 'string' && (members as readonly string[]).includes(v)
}

/** An array of names, each element read once and copied; undefined for anything else (a hole reads as undefined). */
function nameArray(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined
  // The length is read once: a Proxy could answer the bound with one and the loop with another.
  const n = v.length
  if (n < 1 || n > LIMITS.columns) return undefined
  const out = new Array<string>(n)
  for (let i = 0; i < n; i += 1) {
    const c: unknown = v[i]
    if (!isName(c)) return undefined
    out[i] = c
  }
  return out
}

/** String or finite-number ids within the length limit, copied; bigints and the rest go to zod. */
function idArray(v: unknown): (string | number)[] | undefined {
  if (!Array.isArray(v)) return undefined
  const n = v.length
  if (n > LIMITS.recordIdsPerRead) return undefined
  const out = new Array<string | number>(n)
  for (let i = 0; i < n; i += 1) {
    const id: unknown = v[i]
    if (typeof id === 'string') {
      if (id.length > LIMITS.recordId) return undefined
    } else if (typeof id !== 'number' || !Number.isFinite(id) || String(id).length > LIMITS.recordId) {
      return undefined
    }
    out[i] = id
  }
  return out
}
