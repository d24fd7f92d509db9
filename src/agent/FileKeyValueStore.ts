/**
 * A `KeyValueStore` (from @effect/platform) on the file system, one file per key, whose
 * writes are atomic: the value goes to a temporary file in the same directory, is flushed
 * to disk (`fsync`), then renamed over the key's file. A reader sees the old value or the
 * new one, never a half-written file, and a crash mid-write leaves the old value.
 *
 * Why not `KeyValueStore.layerFileSystem`: in @effect/platform 0.97 its `set` is a plain
 * `writeFile` on the key's file (truncate, then write), so a crash or a full disk during a
 * write leaves a truncated file. Keys are file names the same way (`encodeURIComponent`).
 *
 * Temporary files left by a crash (`*.tmp`, older than a minute) are removed on start.
 *
 * @since 0.1.0
 */
import { FileSystem, KeyValueStore, Path } from "@effect/platform"
import type * as PlatformError from "@effect/platform/Error"
import { Clock, Effect, Layer, Option, Random } from "effect"

const TMP = ".tmp"

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  directory: string
): Effect.Effect<
  KeyValueStore.KeyValueStore,
  PlatformError.PlatformError,
  FileSystem.FileSystem | Path.Path
> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    yield* fs.makeDirectory(directory, { recursive: true })

    // Sweep what a crash left behind (young files may belong to another live writer).
    const now = yield* Clock.currentTimeMillis
    for (const name of yield* fs.readDirectory(directory)) {
      if (!name.endsWith(TMP)) continue
      const file = path.join(directory, name)
      const info = yield* Effect.option(fs.stat(file))
      const mtime = Option.flatMap(info, (i) => i.mtime)
      if (Option.isSome(mtime) && now - mtime.value.getTime() > 60_000) {
        yield* Effect.ignore(fs.remove(file))
      }
    }

    const fileOf = (key: string) => path.join(directory, encodeURIComponent(key))

    const notFoundAsNone = <A>(effect: Effect.Effect<A, PlatformError.PlatformError>) =>
      effect.pipe(
        Effect.map(Option.some),
        Effect.catchIf(
          (e) => e._tag === "SystemError" && e.reason === "NotFound",
          () => Effect.succeed(Option.none<A>())
        )
      )

    const set = (key: string, value: string | Uint8Array) =>
      Effect.gen(function* () {
        const target = fileOf(key)
        const suffix = yield* Random.nextIntBetween(0, 2 ** 31)
        const temp = `${target}.${process.pid}-${suffix.toString(36)}${TMP}`
        const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value
        yield* Effect.scoped(
          Effect.gen(function* () {
            const file = yield* fs.open(temp, { flag: "w", mode: 0o600 })
            yield* file.writeAll(bytes)
            yield* file.sync
          })
        ).pipe(
          Effect.zipRight(fs.rename(temp, target)),
          Effect.tapError(() => Effect.ignore(fs.remove(temp)))
        )
      })

    const keys = Effect.map(fs.readDirectory(directory), (names) => names.filter((n) => !n.endsWith(TMP)))

    return KeyValueStore.make({
      get: (key) => notFoundAsNone(fs.readFileString(fileOf(key))),
      getUint8Array: (key) => notFoundAsNone(fs.readFile(fileOf(key))),
      set,
      remove: (key) =>
        fs.remove(fileOf(key)).pipe(
          Effect.catchIf(
            (e) => e._tag === "SystemError" && e.reason === "NotFound",
            () => Effect.void
          )
        ),
      has: (key) => fs.exists(fileOf(key)),
      clear: Effect.flatMap(keys, (names) =>
        Effect.forEach(names, (n) => fs.remove(path.join(directory, n)), { discard: true })
      ),
      size: Effect.map(keys, (names) => names.length)
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  directory: string
): Layer.Layer<KeyValueStore.KeyValueStore, PlatformError.PlatformError, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(KeyValueStore.KeyValueStore, make(directory))
