// Evidence bundles: export one event with its chain segment and checkpoint,
// and verify a bundle offline.
export { EVIDENCE_FORMAT, EvidenceBundle, parseEvidenceBundle, serializeEvidenceBundle } from './bundle.js'
export { exportEvidence } from './export-bundle.js'
export type { ExportEvidenceOptions } from './export-bundle.js'
export { verifyEvidence } from './verify-bundle.js'
export type { EvidenceSummary, EvidenceVerdict, StepResult, VerifyEvidenceOptions } from './verify-bundle.js'
export { EvidenceError } from './errors.js'
export type { EvidenceErrorCode } from './errors.js'
