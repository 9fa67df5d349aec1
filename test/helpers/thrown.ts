import { expect } from 'vitest'

/** Runs `fn`, expects it to throw an instance of `type`, and returns the error. */
export function thrownBy<E extends Error>(type: abstract new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(type)
    return err as E
  }
  throw new Error(`expected a ${type.name}`)
}

/** The error a promise (or an async function, called here) rejects with; fails the test if it resolves. */
export async function thrown(work: Promise<unknown> | (() => Promise<unknown>)): Promise<unknown> {
  try {
    await (typeof work === 'function' ? work() : work)
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}
