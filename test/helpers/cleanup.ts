import { afterAll } from 'vitest'

const tasks: (() => unknown)[] = []

// Registered when a test file first imports this module, so it belongs to
// the file's root suite: cleanups deferred from inside a test (where vitest
// ignores afterAll) still run when the file's tests end, newest first.
afterAll(async () => {
  while (tasks.length > 0) await tasks.pop()!()
})

/** Runs `task` when the current test file's tests end, from a hook or from inside a test. */
export function deferCleanup(task: () => unknown): void {
  tasks.push(task)
}
