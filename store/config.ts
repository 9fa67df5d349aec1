import { z } from 'zod'

/** Where the log is stored: an embedded chDB directory, or a ClickHouse server when `url` is set. */
export const StoreConfig = z
  .object({
    /** ClickHouse HTTP(S) URL; unset means the embedded engine (chDB). */
    url: z.url().optional(),
    username: z.string().default('default'),
    password: z.string().default(''),
    /** @default 'readtrail' */
    database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and _ only').default('readtrail'),
    /**
     * Embedded engine data directory, created 0700; an existing one that group
     * or others can reach is refused (DIRECTORY_NOT_PRIVATE): its files are the
     * whole log, readable by anyone who can copy them. @default '.readtrail/chdb'
     */
    dataDir: z.string().min(1).default('.readtrail/chdb'),
  })
  .strict()

export type StoreConfig = z.output<typeof StoreConfig>
export type StoreConfigInput = z.input<typeof StoreConfig>
