import { AccessEvent } from '../schemas/access-event.js'
import { namedIssues } from '../common/zod-issues.js'
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
 */
export function assertAccessEvent(value: unknown): asserts value is AccessEvent {
  const result = AccessEvent.safeParse(value)
  if (!result.success) {
    const all = namedIssues(result.error, '(event)')
    const issues = all.slice(0, MAX_ISSUES_NAMED).map((i) => ({ field: i.key, problem: i.problem }))
    const more = all.length - issues.length
    const text = issues.map((i) => `${i.field}: ${i.problem}`).join('; ') + (more > 0 ? `; and ${more} more` : '')
    throw new IngestError('EVENT_INVALID', `event fails validation: ${text}`, {
      details: more > 0 ? { issues, more } : { issues },
    })
  }
}
