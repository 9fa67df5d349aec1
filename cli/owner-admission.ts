/**
 * What the owner socket takes on at once. Any process of the same user can
 * connect, and each request is held in memory whole before it is parsed and
 * answered against the store: without bounds, eight concurrent 60 MB
 * requests took the chain writer's process from 354 MB to 1.34 GB. The
 * bounds hold what one process of readtrail's own asks (a verify keeps two
 * or three requests open) with room for a few more beside it.
 */
export const OWNER_LIMITS = Object.freeze({
  /** Requests read, parsed or answered at once; one more is answered OWNER_BUSY. */
  maxInFlight: 4,
  /**
   * Request body bytes held at once, over every request in flight: one
   * request of the largest size fits, two do not. Reserved from the stated
   * content-length before a byte is read.
   */
  maxBufferedBytes: 96 * 1024 * 1024,
  /** Longest request body (checkpoint lists travel in evidence requests). */
  maxRequestBytes: 64 * 1024 * 1024,
  /** Open connections; beyond it the server closes new ones at once. */
  maxConnections: 32,
  /** Time to receive a request's headers, and the whole request: a slow sender cannot hold a slot. */
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
})

export interface OwnerAdmission {
  /**
   * Takes a slot and reserves `bytes` of the buffer budget, or returns
   * undefined when either is used up. The release it returns is idempotent:
   * call it on every way a request ends.
   */
  admit(bytes: number): (() => void) | undefined
  /** For the busy answer's details. */
  load(): { inFlight: number; bufferedBytes: number }
}

export function createOwnerAdmission(limits: { maxInFlight: number; maxBufferedBytes: number } = OWNER_LIMITS): OwnerAdmission {
  let inFlight = 0
  let bufferedBytes = 0
  return Object.freeze({
    admit(bytes: number) {
      if (inFlight >= limits.maxInFlight || bufferedBytes + bytes > limits.maxBufferedBytes) return undefined
      inFlight += 1
      bufferedBytes += bytes
      let released = false
      return () => {
        if (released) return
        released = true
        inFlight -= 1
        bufferedBytes -= bytes
      }
    },
    load: () => ({ inFlight, bufferedBytes }),
  })
}
