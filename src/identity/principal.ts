/** Who is calling: the operator's API key, or a user with a verified access token. */
export type Principal =
  | { kind: 'api_key' }
  | { kind: 'user'; userId: string; role: 'guest' | 'user' | 'host' | 'admin'; scope?: string; tokenExpiresAt: Date };
