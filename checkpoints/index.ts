// Keys and the signed checkpoints an auditor reads. Signing happens inside
// ingest (consumers' createIngest), never beside it, so the signer and the
// checkpoint writers are not exported.
export { isValidSignature, keyId, SignedCheckpoint } from './checkpoint.js'
export type { CheckpointBody } from './checkpoint.js'
export { readCheckpointLog } from './checkpoint-log.js'
export type { CheckpointLogContents } from './checkpoint-log.js'
export { checkpointTopicOf, readCheckpointTopic } from './checkpoint-topic.js'
export type { CheckpointTopicContents, ReadCheckpointTopicOptions } from './checkpoint-topic.js'
export { generateKeyFiles, loadPublicKey, loadSigningKey } from './keys.js'
export type { GeneratedKeyFiles, LoadedPublicKey, SigningKey } from './keys.js'
export { CheckpointError } from './errors.js'
