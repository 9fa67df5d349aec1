import { createHash } from 'node:crypto'

/** Whose reads a counter counts. */
export interface BudgetSubject {
  type: string
  id: string
  /** Anonymous requests only: each client address gets its own counter. */
  clientIp?: string | undefined
}

/**
 * The counter name of a principal under one budget: the prefix, then a
 * SHA-256 of the parts inside a Redis Cluster hash tag. Principal ids,
 * table and budget names are attacker-reachable text (a user id can hold
 * `:`, `{`, `*`, a newline, 256 characters): hashed, none of it reaches a
 * key, so no principal can name, collide with or scan another's counter,
 * and every key has the same short length. The parts are length-prefixed
 * before hashing, so ("a:b", "c") and ("a", "b:c") stay apart.
 */
export function budgetKey(prefix: string, budget: string, subject: BudgetSubject): string {
  const hash = createHash('sha256')
  for (const part of [budget, subject.type, subject.id, subject.clientIp ?? '']) hash.update(`${part.length}:${part};`)
  return `${prefix}{${hash.digest('base64url')}}`
}
