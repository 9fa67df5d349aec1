import { ReadtrailError } from '../common/errors.js'

/** `readtrail repair` refused, or could not prove a repair; `code` says which. */
export class RepairError extends ReadtrailError {}
