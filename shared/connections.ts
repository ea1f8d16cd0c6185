// Connections (docs/connections.md): the part the gateway, the worker and the rotate-key command
// share. A row keeps what is not secret in `settings` and the secret fields sealed in `secret`
// (shared/secret-box.ts); the additional data ties each sealed value to its row.

export const CONNECTION_TYPES = ['oauth2_client_credentials', 'bearer', 'basic'] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];

/** What is stored in clear: never a secret. */
export type ConnectionSettings = {
  token_url?: string;
  client_id?: string;
  scope?: string;
  audience?: string;
  username?: string;
};

/** What is sealed: one field, by type. */
export type ConnectionSecret = { client_secret?: string; token?: string; password?: string };

export const SECRET_FIELDS = { oauth2_client_credentials: 'client_secret', bearer: 'token', basic: 'password' } as const;
export const SETTING_FIELDS = {
  oauth2_client_credentials: ['token_url', 'client_id', 'scope', 'audience'],
  bearer: [],
  basic: ['username'],
} as const satisfies Record<ConnectionType, readonly (keyof ConnectionSettings)[]>;

export const connectionAad = (teamId: string | number, id: string) => `connection:${teamId}:${id}`;
export const tokenAad = (teamId: string | number, id: string) => `connection-token:${teamId}:${id}`;

/** The problem detail when a process has no POSTHORN_SECRET_KEY. */
export const NO_SECRET_KEY =
  'POSTHORN_SECRET_KEY is not set: connections cannot be stored or used without it (32 bytes, base64; docs/connections.md)';
