// The CLI's entry point is main.ts (the `readtrail` bin); these are its parts
// for embedding the same commands elsewhere.
export { AppConfig, ENVIRONMENT, loadAppConfig } from './config.js'
export type { ConfigOverrides } from './config.js'
export { consumeCommand } from './consume-command.js'
export { queryCommand } from './query-command.js'
export type { QueryCommandArgs } from './query-command.js'
export { verifyCommand } from './verify-command.js'
export { formatRows, OUTPUT_FORMATS } from './format-rows.js'
export type { OutputFormat } from './format-rows.js'
export { callOwner, ownerSocketPath, serveOwnerApi } from './owner-api.js'
export type { OwnerRequest } from './owner-api.js'
