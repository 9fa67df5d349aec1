// The access event as a reader of the topic sees it: the zod schema (the
// single source of truth), its enumerations and limits, and the codec and
// schema registry that decode a message by its writer fingerprint. The
// fingerprint arithmetic and header layout are the codec's business.
export { AccessEvent, ACTIONS, LIMITS, OUTCOMES, PRINCIPAL_TYPES } from './access-event.js'
export type { Action, Outcome, PrincipalType } from './access-event.js'
export type { ParsedReadInput, ReadInput } from './read-input.js'
export { createCodec } from './codec.js'
export type { Codec, DecodedMessage } from './codec.js'
export { loadSchemaRegistry } from './registry.js'
export type { SchemaRegistry, SchemaVersion } from './registry.js'
export { InputError, SchemaError } from './errors.js'
export type { FieldIssue } from './errors.js'
