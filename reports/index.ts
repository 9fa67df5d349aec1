// The HTML annexes: a breach report and a principal report, each rendered
// from saved-query answers. The HTML and SVG helpers are the renderers' own.
export { renderBreachReport } from './breach-report.js'
export type { BreachReportInput } from './breach-report.js'
export { renderPrincipalReport } from './principal-report.js'
export type { PrincipalReportInput } from './principal-report.js'
export type { CheckpointKeyFact, ReportContext } from './report-parts.js'
