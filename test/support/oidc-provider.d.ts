/** The few parts of oidc-provider (which ships no types) the OAuth test world uses. */
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http"

  interface Destroyable {
    destroy(): Promise<void>
  }

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>)
    proxy: boolean
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>
    RefreshToken: { find(token: string): Promise<(Destroyable & { grantId: string }) | undefined> }
    Grant: { find(id: string): Promise<Destroyable | undefined> }
  }
}
