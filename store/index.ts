// Opening the ClickHouse store (a server by URL, or the embedded chDB engine,
// which must then be installed: `npm install chdb`). The column list, the
// RowBinary encoder and the hashing SQL are what the chain writer and the
// verifier share, not an API.
export { openStore } from './store.js'
export type { OpenStoreOptions, Store } from './store.js'
export { StoreConfig } from './config.js'
export type { StoreConfigInput } from './config.js'
export { StoreError } from './errors.js'
