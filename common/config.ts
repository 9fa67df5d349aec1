import type { z } from 'zod'
import { ConfigError } from './errors.js'
import { namedIssues } from './zod-issues.js'

/**
 * Parses configuration once at start-up and freezes it. Every invalid key is
 * reported in one error, naming the key and what it broke, so an operator fixes
 * a deployment in one round instead of one key per restart.
 */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, what: string): Readonly<z.output<S>> {
  const result = schema.safeParse(input)
  if (!result.success) {
    const issues = namedIssues(result.error)
    const lines = issues.map((i) => `  - ${i.key}: ${i.problem}`).join('\n')
    throw new ConfigError(`invalid ${what} configuration:\n${lines}`, { details: { issues } })
  }
  return deepFreeze(result.data)
}

export function deepFreeze<T>(value: T): Readonly<T> {
  // Plain data only. Typed arrays (a Buffer key) cannot be frozen (zod copies
  // them anyway); class instances such as a KeyObject keep internal state on
  // themselves (Node caches a key's type on first read) and break when frozen.
  if (value !== null && typeof value === 'object' && isPlainData(value) && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
  }
  return value
}

function isPlainData(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown
  return Array.isArray(value) || proto === Object.prototype || proto === null
}
