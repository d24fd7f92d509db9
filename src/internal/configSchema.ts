/**
 * The shape of an `mcp.json` file, declared once: every field the top level and a server
 * entry may hold. The decoder rejects a field that is not declared here (naming its JSON
 * path, with a "did you mean" when a declared one is close), so a new setting is accepted
 * by adding it to {@link ServerEntry} or {@link File}, then reading it in the decoder.
 *
 * @internal
 */
import { Schema } from "effect"
import * as Resilience from "../Resilience.js"
import * as ServerSpec from "../ServerSpec.js"

const Strings = Schema.Record({ key: Schema.String, value: Schema.String })

/** Settings another host keeps in the same file; accepted and ignored. */
const Foreign = Schema.optional(Schema.Unknown)

/** @internal One entry of `tools`: per-tool overrides. */
export const ToolEntry = Schema.Struct({
  idempotent: Schema.optional(Schema.Boolean)
})

/** @internal One entry of `mcpServers` (or VS Code's `servers`), as written in the file. */
export const ServerEntry = Schema.Struct({
  type: Schema.optional(Schema.String),
  /** An alias of `type` used by some hosts. */
  transport: Schema.optional(Schema.String),
  command: Schema.optional(Schema.String),
  args: Schema.optional(Schema.Array(Schema.String)),
  env: Schema.optional(Strings),
  cwd: Schema.optional(Schema.String),
  url: Schema.optional(Schema.String),
  headers: Schema.optional(Strings),
  /** OAuth for an http/sse server, as written (`${VAR}` still in place): see `ServerSpec.OAuth`. */
  auth: Schema.optional(Schema.encodedSchema(ServerSpec.OAuth)),
  tools: Schema.optional(Schema.Record({ key: Schema.String, value: ToolEntry })),
  resilience: Schema.optional(Resilience.Policy),
  disabled: Schema.optional(Schema.Boolean),
  lazy: Schema.optional(Schema.Boolean),
  optional: Schema.optional(Schema.Boolean),
  trustAnnotations: Schema.optional(Schema.Boolean),
  /** What `tether proxy` puts before this server's names (checked in config.ts). */
  prefix: Schema.optional(Schema.String),
  /** Free text some hosts show. */
  description: Foreign,
  /** Cline's tool permissions (a UI setting). */
  autoApprove: Foreign,
  alwaysAllow: Foreign
})

/** @internal The top level of the file. */
export const File = Schema.Struct({
  $schema: Foreign,
  mcpServers: Schema.optional(Schema.Record({ key: Schema.String, value: ServerEntry })),
  /** VS Code's name for `mcpServers`. */
  servers: Schema.optional(Schema.Record({ key: Schema.String, value: ServerEntry })),
  /** VS Code's prompted inputs (`${input:…}` placeholders are refused where used). */
  inputs: Foreign,
  resilience: Schema.optional(Resilience.Policy),
  namespaceSeparator: Schema.optional(Schema.String),
  maxConnections: Schema.optional(Schema.Number),
  idleTimeToLive: Schema.optional(Resilience.Millis)
})

/** @internal The declared fields of a server entry, in declaration order. */
export const serverFields: ReadonlyArray<string> = Object.keys(ServerEntry.fields)

/** @internal The declared top-level fields. */
export const fileFields: ReadonlyArray<string> = Object.keys(File.fields)
