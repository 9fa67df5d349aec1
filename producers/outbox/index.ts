export { openOutbox, OutboxOptions, OUTBOX_DEFAULTS } from './outbox.js'
export type { Outbox, OutboxDeps, OutboxMessage, OutboxStats, StoredMessage } from './outbox.js'
export { OutboxError } from './errors.js'
