import type { AccessEvent } from '../schemas/access-event.js'
import { findEventIssues } from './check-event.js'
import { IngestError } from './errors.js'

/**
 * An event can break a rule once per record id (up to LIMITS.recordIdsPerEvent
 * of them): the error names the first few, so a hostile message cannot make
 * its own dead letter megabytes long.
 */
const MAX_ISSUES_NAMED = 20

/**
 * A decoded message is attacker-controlled until proven otherwise: Avro only
 * checks types, so the event's own rules (UUID shapes, IP syntax, limits,
 * part numbering) are checked again here before anything is chained. The
 * decoder already bounded every count and length (schemas/decode-bounds.ts)
 * at three UTF-8 bytes per character; the exact limits are checked here.
 *
 * The check is consumers/check-event.ts, not zod: it runs once per event on
 * the writer's hot path, and accepts exactly what the zod AccessEvent accepts
 * (test/unit/check-event-agreement.test.ts) at a fraction of the cost
 * (bench/validate-event.ts).
 */
export function assertAccessEvent(value: unknown): asserts value is AccessEvent {
  const found = findEventIssues(value, MAX_ISSUES_NAMED)
  if (found === undefined) return
  const issues = found.named.map((i) => ({ field: i.field, problem: i.problem }))
  const more = found.total - issues.length
  const text = issues.map((i) => `${i.field}: ${i.problem}`).join('; ') + (more > 0 ? `; and ${more} more` : '')
  throw new IngestError('EVENT_INVALID', `event fails validation: ${text}`, {
    details: more > 0 ? { issues, more } : { issues },
  })
}
