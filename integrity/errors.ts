import { ReadtrailError } from '../common/errors.js'

/** Verification could not run (not a finding about the data). */
export class VerificationError extends ReadtrailError {}
