import { describe, expect, it } from 'vitest'
import { loadAppConfig } from '../../cli/config.js'
import { exploreCommands } from '../../demo/run-demo.js'

describe("the demo's last words (exploreCommands)", () => {
  it('point READTRAIL_HOME and the data directory at the demo store, with its database and subject key', () => {
    const config = loadAppConfig({}, { dataDir: '/tmp/demo store' })
    const [env, ...commands] = exploreCommands(config, 'readtrail', 104042, 'readtrail')
    expect(env).toBe("export READTRAIL_HOME='/tmp/demo store' READTRAIL_DATA_DIR='/tmp/demo store' READTRAIL_CLICKHOUSE_DATABASE=readtrail READTRAIL_SUBJECT_KEYS=admissions.applicants=id")
    expect(commands).toContain('readtrail query who-touched-record --param table=applicants --param record=104042')
    // The demo deletes its topics: verification reads the checkpoint file only.
    expect(commands).toContain('readtrail verify --no-kafka-checkpoints')
    expect(commands.find((c) => c.includes(' report '))).toContain("--out '/tmp/demo store/breach-report.html' --force")
  })

  it('on a server, name the URL without its credentials and the demo database', () => {
    const config = loadAppConfig({ READTRAIL_CLICKHOUSE_URL: 'http://ops:secret@ch.internal:8123', READTRAIL_HOME: '/srv/demo' })
    const [env] = exploreCommands(config, 'readtrail_demo', 104042, 'readtrail')
    expect(env).toContain('READTRAIL_CLICKHOUSE_URL=http://ch.internal:8123/')
    expect(env).toContain('READTRAIL_CLICKHOUSE_DATABASE=readtrail_demo')
    expect(env).not.toContain('secret')
  })
})
