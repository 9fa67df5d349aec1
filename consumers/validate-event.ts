import { AccessEvent } from '../schemas/access-event.js'
import { namedIssues } from '../common/zod-issues.js'
import { IngestError } from './errors.js'

/**
 * A decoded message is attacker-controlled until proven otherwise: Avro only
 * checks types, so the event's own rules (UUID shapes, IP syntax, limits,
 * part numbering) are checked again here before anything is chained.
 */
export function assertAccessEvent(value: unknown): asserts value is AccessEvent {
  const result = AccessEvent.safeParse(value)
  if (!result.success) {
    const issues = namedIssues(result.error, '(event)').map((i) => ({ field: i.key, problem: i.problem }))
    throw new IngestError('EVENT_INVALID', `event fails validation: ${issues.map((i) => `${i.field}: ${i.problem}`).join('; ')}`, {
      details: { issues },
    })
  }
}
