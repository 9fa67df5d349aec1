/**
 * A one-line elapsed-time indicator on stderr while a long query runs, only
 * when stderr is a terminal (pipes and CI logs stay clean). Starts after
 * `delayMs` so fast answers print nothing.
 */
export function startProgress(label: string, stream: NodeJS.WriteStream = process.stderr, delayMs = 300): () => void {
  if (!stream.isTTY) return () => {}
  const started = Date.now()
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
  let frame = 0
  let shown = false
  const timer = setInterval(() => {
    if (Date.now() - started < delayMs) return
    shown = true
    stream.write(`\r${frames[frame++ % frames.length]} ${label} ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }, 100)
  timer.unref()
  return () => {
    clearInterval(timer)
    if (shown) stream.write('\r\x1b[2K')
  }
}
