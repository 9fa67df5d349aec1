import { ReadtrailError, type ReadtrailErrorOptions } from '../../common/errors.js'
import type { NamedIssue } from '../../common/zod-issues.js'

/**
 * An audit context (from runWithAuditContext or a request adapter) that does
 * not match the schema. `issues` names every invalid field at once; the
 * problems are zod's messages, which state the rule and never echo the value,
 * so the error is safe to log even though the context holds personal data.
 */
export class AuditContextError extends ReadtrailError {
  readonly issues: readonly NamedIssue[]

  constructor(issues: NamedIssue[], options: ReadtrailErrorOptions = {}) {
    const lines = issues.map((i) => `${i.key}: ${i.problem}`).join('; ')
    super('CONTEXT_INVALID', `invalid audit context: ${lines}`, { ...options, details: { issues } })
    this.issues = Object.freeze(issues)
  }
}
