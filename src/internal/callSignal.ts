/**
 * A per-call cancel signal for the SDK, cheaper than an `AbortController`.
 *
 * @internal
 */
/**
 * The part of `AbortSignal` that the SDK's `Protocol.request` uses: `aborted`, `reason`,
 * `throwIfAborted()` and one `abort` listener (which sends notifications/cancelled).
 *
 * Hand-written because a Node `AbortController` is an `EventTarget`: making one per call,
 * plus the listener the SDK adds to it, cost about 5 µs and a good share of the garbage
 * of a call in the benchmarks. The SDK only ever calls these members (checked for the
 * pinned 1.32.x; the cancellation tests send a real request and watch the server see the
 * cancellation), so a plain object does the job.
 *
 * @internal
 */
export class CallSignal {
  aborted = false
  reason: unknown = undefined
  private listeners: Array<() => void> | undefined = undefined

  throwIfAborted(): void {
    if (this.aborted) throw this.reason
  }

  addEventListener(type: string, listener: () => void): void {
    if (type === "abort") (this.listeners ??= []).push(listener)
  }

  removeEventListener(type: string, listener: () => void): void {
    if (type === "abort") this.listeners = this.listeners?.filter((l) => l !== listener)
  }

  abort(): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = new Error("the call was interrupted")
    for (const listener of this.listeners ?? []) listener()
  }

  asAbortSignal(): AbortSignal {
    return this as unknown as AbortSignal
  }
}
