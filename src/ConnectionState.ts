/**
 * The state of one connection, as a tagged union:
 *
 * ```
 * Connecting ──ok──► Ready ──link lost──► Reconnecting ──ok──► Ready
 *                     │ calls fail in a row       │ schedule exhausted
 *                     ▼                           ▼
 *   Failed (circuit open on the live link;     Failed (circuit open until `retryAt`;
 *   `ping` probes: an answer → Ready, a        a later call or `reconnect` starts again)
 *   dead link → Reconnecting)
 * Closed ◄── the scope closed
 * ```
 *
 * @since 0.1.0
 */
import { Data } from "effect"
import type { TetherError } from "./Errors.js"

/**
 * What the server said about itself in `initialize`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerInfo {
  readonly name: string
  readonly version: string
  readonly protocolVersion: string | undefined
  readonly capabilities: Readonly<Record<string, unknown>>
  readonly instructions: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type ConnectionState = Data.TaggedEnum<{
  /** The first connect (or the first after `Failed`) is under way. */
  Connecting: { readonly attempt: number }
  /** A session is up. `since` is epoch ms; `generation` counts sessions (1 = first). */
  Ready: { readonly server: ServerInfo; readonly since: number; readonly generation: number }
  /** The link was lost or a connect failed; the next attempt is at `nextRetryAt` (epoch ms). */
  Reconnecting: { readonly attempt: number; readonly lastError: TetherError; readonly nextRetryAt: number }
  /**
   * The circuit is open: reconnecting gave up (schedule exhausted or a permanent error), or
   * calls failed in a row on a live link (then `retryAt` is the next `ping` probe). Calls
   * fail fast with `ServerUnavailable` (or the permanent error) meanwhile.
   */
  Failed: { readonly lastError: TetherError; readonly since: number; readonly retryAt: number }
  /** The connection's scope closed. */
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- a case without fields, as Data.TaggedEnum spells it
  Closed: {}
}>

/**
 * Constructors and matchers (`ConnectionState.Ready({...})`, `$is("Ready")`, `$match`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const ConnectionState = Data.taggedEnum<ConnectionState>()

/**
 * @since 0.1.0
 * @category guards
 */
export const isReady = ConnectionState.$is("Ready")

/**
 * A one-line description for logs and the demo (`Ready (everything 1.0.0)`).
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (state: ConnectionState): string =>
  ConnectionState.$match(state, {
    Connecting: ({ attempt }) => `Connecting (attempt ${attempt})`,
    Ready: ({ generation, server }) => `Ready (${server.name} ${server.version}, session ${generation})`,
    Reconnecting: ({ attempt, lastError }) =>
      `Reconnecting (attempt ${attempt}, after ${lastError._tag}: ${lastError.message})`,
    Failed: ({ lastError }) => `Failed (${lastError._tag}: ${lastError.message})`,
    Closed: () => "Closed"
  })
