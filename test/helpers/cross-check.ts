import type { Store } from '../../store/store.js'

/** Waits (up to 120 s) until db_audit_log holds `entries` rows and access_log `reads`; fails naming both counts. */
export async function untilStored(store: Store, entries: number, reads: number): Promise<void> {
  const deadline = Date.now() + 120_000
  for (;;) {
    const [n] = await store
      .queryRows<{ audit: string; reads: string }>(
        `SELECT toString((SELECT count() FROM ${store.table('db_audit_log')})) AS audit, toString((SELECT count() FROM ${store.table('access_log')})) AS reads`,
      )
      .catch(() => [{ audit: '0', reads: '0' }])
    if (Number(n?.audit) >= entries && Number(n?.reads) >= reads) return
    if (Date.now() > deadline) throw new Error(`after 120 s: ${n?.audit} audit entries, ${n?.reads} hooked reads`)
    await new Promise((r) => setTimeout(r, 500))
  }
}
