import { ReadtrailError } from '../common/errors.js'

/** Raised by the SDK: closed producer, unacknowledged publish, unsplittable read. */
export class ProducerError extends ReadtrailError {}
