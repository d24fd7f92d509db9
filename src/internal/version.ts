/** Tether's version, sent as `clientInfo.version`. @internal */
export const VERSION = "0.1.0"
