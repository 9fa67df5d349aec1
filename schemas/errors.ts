import { ReadtrailError, type ReadtrailErrorOptions } from '../common/errors.js'

/** A message or an SDK input that does not fit the access-event schema. */
export class SchemaError extends ReadtrailError {}

export interface FieldIssue {
  field: string
  problem: string
}

/** Invalid SDK input; `issues` names every invalid field at once. */
export class InputError extends SchemaError {
  readonly issues: readonly FieldIssue[]
  constructor(issues: FieldIssue[], options: ReadtrailErrorOptions = {}) {
    const lines = issues.map((i) => `${i.field}: ${i.problem}`).join('; ')
    super('INPUT_INVALID', `invalid read: ${lines}`, { ...options, details: { issues } })
    this.issues = Object.freeze(issues)
  }
}
