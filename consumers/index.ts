// Running the chain writer: createIngest starts it together with the
// checkpoint signer (the only composition that keeps the trust rule), the
// topic helpers create what it consumes, the lag helpers tell when it caught
// up. Chain linking and resume internals stay private: a caller that linked
// rows itself would bypass the checkpoint the writer resumes from.
export { createIngest } from './ingest.js'
export type { Ingest, IngestOptions, IngestStats } from './ingest.js'
export type { ChainWriterStats } from './chain-writer.js'
export type { ChainWriterConfig, ChainWriterConfigInput } from './config.js'
export { deadLetterTopicOf, ensureTopics } from './topics.js'
export type { TopicPlan } from './topics.js'
export { consumerLag, waitForCatchUp } from './lag.js'
export { IngestError } from './errors.js'
