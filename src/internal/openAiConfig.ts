/**
 * The options of the OpenAI-compatible provider, and where they come from in the environment.
 *
 * @internal
 */
import { Config, Duration, Option, Redacted } from "effect"

/** @internal */
export interface Options {
  /** E.g. `https://api.openai.com/v1`, `http://localhost:11434/v1`. */
  readonly baseUrl: string
  readonly model: string
  readonly apiKey?: Redacted.Redacted | undefined
  /** Retries of a transient failure (default 4). */
  readonly maxRetries?: number | undefined
  /** The first retry delay, doubled each time (default 500 ms). */
  readonly retryBaseDelay?: Duration.DurationInput | undefined
  /** The longest wait between attempts, `Retry-After` included (default 30 s). */
  readonly maxRetryDelay?: Duration.DurationInput | undefined
  /** Deadline of one attempt (default 120 s). */
  readonly timeout?: Duration.DurationInput | undefined
  readonly temperature?: number | undefined
}

const DEFAULT_BASE_URL = "https://api.openai.com/v1"

/**
 * @internal The options from the environment: `TETHER_LLM_BASE_URL`, `TETHER_LLM_API_KEY` (blank =
 * none), `TETHER_LLM_MODEL` (required unless `model` is given), `TETHER_LLM_MAX_RETRIES`,
 * `TETHER_LLM_TIMEOUT_MS`, `TETHER_LLM_RETRY_BASE_MS`.
 *
 * @since 0.1.0
 * @category config
 */
export const config = (overrides?: { readonly model?: string | undefined }): Config.Config<Options> =>
  Config.all({
    baseUrl: Config.string("TETHER_LLM_BASE_URL").pipe(
      Config.withDefault(DEFAULT_BASE_URL),
      Config.map((url) => (url.trim() === "" ? DEFAULT_BASE_URL : url.trim()))
    ),
    apiKey: Config.redacted("TETHER_LLM_API_KEY").pipe(
      Config.option,
      Config.map(Option.filter((key) => Redacted.value(key).trim() !== "")),
      Config.map(Option.getOrUndefined)
    ),
    model:
      overrides?.model !== undefined
        ? Config.succeed(overrides.model)
        : Config.string("TETHER_LLM_MODEL").pipe(
            Config.map((model) => model.trim()),
            Config.validate({ message: "TETHER_LLM_MODEL is blank", validation: (model) => model.length > 0 })
          ),
    maxRetries: Config.integer("TETHER_LLM_MAX_RETRIES").pipe(Config.withDefault(4)),
    timeout: Config.integer("TETHER_LLM_TIMEOUT_MS").pipe(
      Config.withDefault(120_000),
      Config.map(Duration.millis)
    ),
    retryBaseDelay: Config.integer("TETHER_LLM_RETRY_BASE_MS").pipe(
      Config.withDefault(500),
      Config.map(Duration.millis)
    )
  })
