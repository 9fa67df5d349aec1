// `readtrail verify` as a library: verify a store (with the checkpoints
// loaded and analysed first), format the report, and keep the signed verify
// state that incremental runs and saved queries stand on. How facts are
// collected and scanned is the verifier's business.
export { verifyStore } from './verify-store.js'
export type { VerifyOptions } from './verify.js'
export { loadCheckpoints } from './checkpoint-sources.js'
export type { CheckpointSourceOptions } from './checkpoint-sources.js'
export { analyseCheckpoints } from './check-checkpoints.js'
export type { CheckpointAnalysis, CheckpointSource, VerifyingKey } from './check-checkpoints.js'
export { nextVerifyState, readVerifyState, VerifyState, writeVerifyState } from './verify-state.js'
export { formatReport } from './report.js'
export type { AcknowledgedFinding, ChainSummary, CheckpointSummary, Finding, FindingKind, InFlightGap, RefusedProducer, VerificationReport } from './report.js'
export { VerificationError } from './errors.js'
