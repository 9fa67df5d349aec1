import { ReadtrailError } from '../common/errors.js'

/** Why a message went to the dead-letter topic instead of a chain. */
export class IngestError extends ReadtrailError {}
