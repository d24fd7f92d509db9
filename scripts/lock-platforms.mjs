// Adds lock entries for optional platform packages (other OSes/CPUs) that this machine's
// registry mirror does not serve. `npm install` leaves them out of package-lock.json
// because it cannot fetch their metadata, and `npm ci` then refuses the lock as out of
// sync. Each entry carries its os/cpu (read from the package name), so `npm ci` skips it
// on a platform that does not match, exactly as it would with the real metadata.
// Run after any `npm install`: node scripts/lock-platforms.mjs
import { readFileSync, writeFileSync } from "node:fs"

const lockPath = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(readFileSync(lockPath, "utf8"))

const osOf = (name) =>
  ["android", "darwin", "freebsd", "linux", "openbsd", "openharmony", "win32", "sunos", "aix", "netbsd"].find(
    (os) => name.includes(`-${os}-`)
  )
const cpuOf = (name) => {
  const tail = name.split("-").slice(-3).join("-")
  for (const [needle, cpu] of [
    ["arm64", "arm64"],
    ["aarch64", "arm64"],
    ["arm-", "arm"],
    ["-arm", "arm"],
    ["ia32", "ia32"],
    ["x64", "x64"],
    ["loong64", "loong64"],
    ["ppc64", "ppc64"],
    ["riscv64", "riscv64"],
    ["s390x", "s390x"]
  ]) {
    if (`-${tail}`.includes(needle)) return cpu
  }
  return undefined
}
const libcOf = (name) => (name.includes("-musl") ? "musl" : name.includes("-gnu") ? "glibc" : undefined)

let added = 0
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const base = path === "" ? "" : `${path}/`
    const candidates = [`${base}node_modules/${dep}`, `node_modules/${dep}`]
    if (candidates.some((c) => c in lock.packages)) continue
    const os = osOf(dep)
    const cpu = cpuOf(dep)
    if (os === undefined || cpu === undefined) continue
    const libc = libcOf(dep)
    lock.packages[`node_modules/${dep}`] = {
      version,
      ...(cpu ? { cpu: [cpu] } : {}),
      ...(entry.dev ? { dev: true } : {}),
      ...(libc ? { libc: [libc] } : {}),
      optional: true,
      os: [os]
    }
    added += 1
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1))
)
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`lock-platforms: added ${added} optional platform entries`)
