import type { Logger } from '../common/logger.js'
import { formatReport, type VerificationReport } from '../integrity/report.js'
import { verifyInDb } from '../integrity/verify-in-db.js'
import type { AppConfig } from './config.js'
import { withStore } from './runtime.js'

/** `readtrail verify [--json] [--skip-views]`: exit 0 intact, 1 damaged (2 on error, set by main). */
export async function verifyCommand(config: AppConfig, args: { json: boolean; views: boolean }, logger: Logger): Promise<number> {
  const report = await withStore<VerificationReport>(config, 'readtrail verify', logger, (store) => verifyInDb(store, { views: args.views }), {
    op: 'verify',
    views: args.views,
  })
  process.stdout.write(`${args.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`)
  return report.ok ? 0 : 1
}
