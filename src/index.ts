/**
 * Tether: resilient MCP connections for Effect.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Auth from "./Auth.js"

/** @since 0.1.0 */
export * as Config from "./Config.js"

/** @since 0.1.0 */
export * as ConnectionState from "./ConnectionState.js"

/** @since 0.1.0 */
export * as Errors from "./Errors.js"

/** @since 0.1.0 */
export * as Gateway from "./Gateway.js"

/** @since 0.1.0 */
export * as McpConnection from "./McpConnection.js"

/** @since 0.1.0 */
export * as McpPool from "./McpPool.js"

/** @since 0.1.0 */
export * as Metrics from "./Metrics.js"

/** @since 0.1.0 */
export * as Prometheus from "./Prometheus.js"

/** @since 0.1.0 */
export * as Proxy from "./Proxy.js"

/** @since 0.1.0 */
export * as Resilience from "./Resilience.js"

/** @since 0.1.0 */
export * as ServerSpec from "./ServerSpec.js"

/** @since 0.1.0 */
export * as Tether from "./Tether.js"

/** @since 0.1.0 */
export * as Transport from "./Transport.js"

/** @since 0.1.0 */
export * as WebSocketTransport from "./WebSocketTransport.js"
