import { isIP } from 'node:net'
import { ACTIONS, AccessEvent, DB_SESSION_PATTERN, LIMITS, MAX_LONG, OUTCOMES, PRINCIPAL_TYPES, STATEMENT_DIGEST_PATTERN } from '../schemas/access-event.js'

/** One broken rule, keyed the way common/zod-issues.ts names zod's issues (`record_ids.3`, `(event)` for the whole value). */
export interface EventIssue {
  readonly field: string
  readonly problem: string
}

export interface EventIssues {
  /** The first issues, in the order zod's AccessEvent names them. */
  readonly named: readonly EventIssue[]
  /** Every issue found, named or not. */
  readonly total: number
}

/** The field name of a problem with the value as a whole, as the writer has always named zod's root issues. */
const ROOT = '(event)'

/**
 * The keys AccessEvent declares, in its order, read from the schema itself:
 * a field added there is never refused here as unknown, and the agreement
 * test (test/unit/check-event-agreement.test.ts) fails until it is checked
 * here too.
 */
const SHAPE_KEYS: readonly string[] = Object.keys(AccessEvent.shape)
const KNOWN_KEYS: ReadonlySet<string> = new Set(SHAPE_KEYS)

// The limits, copied once: a module loader may turn every read of an
// imported binding into a getter call, and these are read per event.
const { name: NAME_MAX, columns: COLUMNS_MAX, recordId: RECORD_ID_MAX, recordIdsPerEvent: RECORD_IDS_MAX, fingerprint: FINGERPRINT_MAX, text: TEXT_MAX, ip: IP_MAX, parts: PARTS_MAX } = LIMITS
const LONG_MAX = MAX_LONG
const PRINCIPAL_TYPE_VALUES: readonly unknown[] = PRINCIPAL_TYPES
const ACTION_VALUES: readonly unknown[] = ACTIONS
const OUTCOME_VALUES: readonly unknown[] = OUTCOMES

/** access-event.ts's UUID pattern, copied (zod keeps it inside the schema); the agreement test proves the two accept the same ids. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const SESSION_HASH_BYTES = 32
/** z.string().min(1) on every name: the only lower bound on a string. */
const NAME_MIN = 1
/** z.array(name).min(1): an event names at least one column. */
const COLUMNS_MIN = 1
/** No lower bound (zod checks none). */
const NONE = 0
/** zod's `.nullable()`. */
const NULLABLE = true
const REQUIRED = false
/**
 * zod stops checking an object's own rules (part_index < part_count) after a
 * wrong type, a missing key or a value outside an enum; a value that is only
 * too long, out of range or badly shaped lets them run.
 */
const FATAL = true

/**
 * The issues zod's `AccessEvent.safeParse(value)` would report, found without
 * zod: undefined when it would accept `value`. Same acceptance for every
 * input (test/unit/check-event-agreement.test.ts generates events and
 * mutations and compares the two), same fields in the same order; only the
 * wording of a problem differs.
 *
 * The writer calls this once per event, so it allocates nothing for a valid
 * one beyond its walk. A hostile value (a Proxy, getters) gets what zod does:
 * each field is read once, in the schema's order, and asked `key in value`
 * (a key that reads well but is not there is missing); then for...in for
 * unknown keys. A read that throws (a getter, a revoked Proxy) is an issue
 * on the field being read, where zod would let the exception out.
 */
export function findEventIssues(value: unknown, maxNamed: number): EventIssues | undefined {
  const walk = new EventWalk(value, maxNamed)
  try {
    walk.check()
  } catch {
    walk.add(SHAPE_KEYS[walk.fieldsDone] ?? ROOT, -1, 'reading it threw', FATAL)
  }
  return walk.total === 0 ? undefined : { named: walk.named ?? [], total: walk.total }
}

/**
 * One pass over one value. Each check mirrors the zod schema of its field in
 * access-event.ts, with the same limits and enums. String limits count code
 * points, as zod's `.max()` does (a surrogate pair is one, a lone surrogate
 * is one).
 */
class EventWalk {
  total = 0
  aborted = false
  /**
   * Fields checked so far, in SHAPE_KEYS order: a throw is on the next one.
   * -1 until the value is known to be an object (a throw there is the root's).
   */
  fieldsDone = -1
  named: EventIssue[] | undefined
  /** Read as a record only after check() has seen an object. */
  private readonly value: Record<string, unknown>

  constructor(
    value: unknown,
    private readonly maxNamed: number,
  ) {
    this.value = value as Record<string, unknown>
  }

  check(): void {
    const v = this.value
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      this.add(ROOT, -1, expected('an object', v), FATAL)
      return
    }
    this.fieldsDone = 0
    // One line a field, in the schema's order (fieldsDone relies on it), each
    // key spelt out: a constant key is a fast property read, a variable one
    // is not.
    this.uuid('event_id', v['event_id'], 'event_id' in v)
    this.uuid('read_id', v['read_id'], 'read_id' in v)
    const partIndex = v['part_index']
    this.integer('part_index', partIndex, 'part_index' in v, 0, PARTS_MAX - 1)
    const partCount = v['part_count']
    this.integer('part_count', partCount, 'part_count' in v, 1, PARTS_MAX)
    this.integer('occurred_at', v['occurred_at'], 'occurred_at' in v, 0, LONG_MAX)
    this.string('principal_id', v['principal_id'], 'principal_id' in v, NAME_MIN, NAME_MAX, REQUIRED)
    this.oneOf('principal_type', v['principal_type'], 'principal_type' in v, PRINCIPAL_TYPE_VALUES)
    this.string('on_behalf_of', v['on_behalf_of'], 'on_behalf_of' in v, NAME_MIN, NAME_MAX, NULLABLE)
    this.sessionHash('session_hash', v['session_hash'], 'session_hash' in v)
    this.ip('client_ip', v['client_ip'], 'client_ip' in v)
    this.string('service', v['service'], 'service' in v, NAME_MIN, NAME_MAX, REQUIRED)
    this.string('environment', v['environment'], 'environment' in v, NAME_MIN, NAME_MAX, REQUIRED)
    this.oneOf('action', v['action'], 'action' in v, ACTION_VALUES)
    this.string('db_name', v['db_name'], 'db_name' in v, NAME_MIN, NAME_MAX, REQUIRED)
    this.string('table_name', v['table_name'], 'table_name' in v, NAME_MIN, NAME_MAX, REQUIRED)
    this.strings('columns', v['columns'], 'columns' in v, COLUMNS_MIN, COLUMNS_MAX, NAME_MIN, NAME_MAX)
    this.strings('record_ids', v['record_ids'], 'record_ids' in v, NONE, RECORD_IDS_MAX, NONE, RECORD_ID_MAX)
    this.boolean('record_ids_complete', v['record_ids_complete'], 'record_ids_complete' in v)
    this.integer('row_count', v['row_count'], 'row_count' in v, 0, LONG_MAX)
    this.string('query_fingerprint', v['query_fingerprint'], 'query_fingerprint' in v, NONE, FINGERPRINT_MAX, REQUIRED)
    this.pattern('db_session', v['db_session'], 'db_session' in v, DB_SESSION_PATTERN, 'must be a decimal connection id or empty')
    this.pattern('statement_digest', v['statement_digest'], 'statement_digest' in v, STATEMENT_DIGEST_PATTERN, 'must be a lowercase hex SHA-256 or empty')
    this.string('purpose', v['purpose'], 'purpose' in v, NONE, TEXT_MAX, NULLABLE)
    this.string('trace_id', v['trace_id'], 'trace_id' in v, NONE, TEXT_MAX, NULLABLE)
    this.oneOf('outcome', v['outcome'], 'outcome' in v, OUTCOME_VALUES)
    this.string('producer_id', v['producer_id'], 'producer_id' in v, NAME_MIN, NAME_MAX, REQUIRED)
    this.integer('producer_seq', v['producer_seq'], 'producer_seq' in v, 1, LONG_MAX)
    this.unknownKeys(v)
    // Not aborted means every field has its type: both are integers here.
    if (!this.aborted && !((partIndex as number) < (partCount as number))) this.add('part_index', -1, 'part_index must be below part_count', !FATAL)
  }

  /** `key`, or `key.index` for an array item (index >= 0); the name is built only for an issue. */
  add(key: string, index: number, problem: string, fatal: boolean): void {
    if (fatal) this.aborted = true
    if (this.total++ >= this.maxNamed) return
    ;(this.named ??= []).push({ field: index < 0 ? key : `${key}.${index}`, problem })
  }

  /**
   * Ends a field: zod reports a key that is not `in` the value only when
   * what it read there passed (a Proxy can answer both ways).
   */
  private settle(key: string, issuesBefore: number, present: boolean): void {
    if (!present && this.total === issuesBefore) this.add(key, -1, 'is missing', FATAL)
    this.fieldsDone++
  }

  /**
   * `.strict()`: zod enumerates with for...in (inherited enumerable keys
   * too). A decoded event lists its keys in the schema's order, and matching
   * that order costs a comparison of interned strings a key.
   */
  private unknownKeys(v: Record<string, unknown>): void {
    let next = 0
    for (const key in v) {
      if (key === SHAPE_KEYS[next]) next++
      else if (!KNOWN_KEYS.has(key)) this.add(key, -1, 'unknown key', !FATAL)
    }
  }

  private uuid(key: string, v: unknown, present: boolean): void {
    const before = this.total
    if (typeof v !== 'string') this.add(key, -1, expected('a string', v), FATAL)
    else if (!UUID.test(v)) this.add(key, -1, 'must be a lowercase UUID', !FATAL)
    this.settle(key, before, present)
  }

  /** z.string().regex(re): the very pattern access-event.ts gives zod, so the two cannot disagree on it. */
  private pattern(key: string, v: unknown, present: boolean, re: RegExp, problem: string): void {
    const before = this.total
    if (typeof v !== 'string') this.add(key, -1, expected('a string', v), FATAL)
    else if (!re.test(v)) this.add(key, -1, problem, !FATAL)
    this.settle(key, before, present)
  }

  /** z.number().int().min(min).max(max) */
  private integer(key: string, v: unknown, present: boolean, min: number, max: number): void {
    const before = this.total
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.add(key, -1, expected('a number', v), FATAL)
    } else if (!Number.isInteger(v)) {
      this.add(key, -1, 'must be an integer', FATAL)
    } else {
      if (!Number.isSafeInteger(v)) this.add(key, -1, `must be a safe integer (within ±${Number.MAX_SAFE_INTEGER})`, !FATAL)
      if (v < min) this.add(key, -1, `must be at least ${min}`, !FATAL)
      if (v > max) this.add(key, -1, `must be at most ${max}`, !FATAL)
    }
    this.settle(key, before, present)
  }

  private string(key: string, v: unknown, present: boolean, min: number, max: number, nullable: boolean): void {
    const before = this.total
    if (!(nullable && v === null)) this.stringValue(key, -1, v, min, max)
    this.settle(key, before, present)
  }

  private oneOf(key: string, v: unknown, present: boolean, values: readonly unknown[]): void {
    const before = this.total
    if (!values.includes(v)) this.add(key, -1, `must be one of ${values.map((s) => `"${String(s)}"`).join(', ')}`, FATAL)
    this.settle(key, before, present)
  }

  private boolean(key: string, v: unknown, present: boolean): void {
    const before = this.total
    if (typeof v !== 'boolean') this.add(key, -1, expected('a boolean', v), FATAL)
    this.settle(key, before, present)
  }

  /** z.instanceof(Buffer).refine(32 bytes).nullable() */
  private sessionHash(key: string, v: unknown, present: boolean): void {
    const before = this.total
    if (v !== null) {
      if (!(v instanceof Buffer)) this.add(key, -1, expected('a Buffer', v), FATAL)
      else if (v.length !== SESSION_HASH_BYTES) this.add(key, -1, `must be ${SESSION_HASH_BYTES} bytes`, !FATAL)
    }
    this.settle(key, before, present)
  }

  /** access-event.ts `ipAddress.nullable()`: the address rule runs after a length issue, as zod's refine does. */
  private ip(key: string, v: unknown, present: boolean): void {
    const before = this.total
    if (v !== null) {
      this.stringValue(key, -1, v, NONE, IP_MAX)
      if (typeof v === 'string' && (isIP(v) === 0 || v.includes('%'))) this.add(key, -1, 'must be an IPv4 or IPv6 address (no zone id)', !FATAL)
    }
    this.settle(key, before, present)
  }

  /** z.array(z.string().min(itemMin).max(itemMax)).min(min).max(max): too many items first, else the items, then too few, as zod reports them. */
  private strings(key: string, v: unknown, present: boolean, min: number, max: number, itemMin: number, itemMax: number): void {
    const before = this.total
    if (Array.isArray(v)) {
      const count = v.length
      if (count > max) {
        // zod refuses an array above its cap before reading an item, and the
        // object's own rules do not run: one issue, however many items.
        this.add(key, -1, `must have at most ${items(max)}`, FATAL)
      } else {
        for (let i = 0; i < count; i++) this.stringValue(key, i, v[i], itemMin, itemMax)
        if (count < min) this.add(key, -1, `must have at least ${items(min)}`, !FATAL)
      }
    } else {
      this.add(key, -1, expected('an array', v), FATAL)
      this.lengthOf(key, -1, v, min, max)
    }
    this.settle(key, before, present)
  }

  /** z.string().min(min).max(max) on one value (min 0: no lower bound). */
  private stringValue(key: string, index: number, v: unknown, min: number, max: number): void {
    if (typeof v !== 'string') {
      this.add(key, index, expected('a string', v), FATAL)
      this.lengthOf(key, index, v, min, max)
    } else if (v.length > max || v.length < 2 * min) {
      // Units bound code points from above (a pair is two units, one point):
      // only a string outside [2 * min, max] units needs counting.
      this.lengthOf(key, index, v, min, max)
    }
  }

  /**
   * zod's length checks run on anything with a `length` (they are guarded by
   * "has a length", not by the type check), so a wrong-typed array or Buffer
   * is reported twice, as zod does. A string counts code points.
   */
  private lengthOf(key: string, index: number, v: unknown, min: number, max: number): void {
    if (v === null || v === undefined) return
    const isString = typeof v === 'string'
    const length = isString ? countCodePoints(v) : (v as { length?: unknown }).length
    if (length === undefined) return
    const measure = isString ? characters : items
    if (min > 0 && !((length as number) >= min)) this.add(key, index, `must have at least ${measure(min)}`, !FATAL)
    if (!((length as number) <= max)) this.add(key, index, `must have at most ${measure(max)}`, !FATAL)
  }
}

const characters = (n: number) => (n === 1 ? '1 character' : `${n} characters`)
const items = (n: number) => (n === 1 ? '1 item' : `${n} items`)

/** Code points as zod counts them: a surrogate pair is one, a lone surrogate is one. */
function countCodePoints(s: string): number {
  let count = s.length
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--
      i++
    }
  }
  return count
}

function expected(what: string, value: unknown): string {
  return `expected ${what}, received ${describeType(value)}`
}

/** The kind of a value for a message; never its content, which may be personal data. */
function describeType(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : Number.isFinite(value) ? 'number' : String(value)
  if (typeof value !== 'object') return typeof value
  if (Array.isArray(value)) return 'array'
  return value instanceof Buffer ? 'Buffer' : 'object'
}
