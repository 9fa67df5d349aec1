import { ReadtrailError } from '../common/errors.js'

/** A checkpoint key, the checkpoint log file or the checkpoint topic failed; `code` says which. */
export class CheckpointError extends ReadtrailError {}
