import { hrtime } from 'node:process'

// Wall clock once, then the monotonic clock: microsecond timestamps that never
// run backwards within a process and cost no syscall beyond hrtime.
const baseMicros = BigInt(Date.now()) * 1000n
const baseHr = hrtime.bigint()

/** Microseconds since the Unix epoch. */
export function nowMicros(): number {
  return Number(baseMicros + (hrtime.bigint() - baseHr) / 1000n)
}

