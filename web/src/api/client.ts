/**
 * The one typed API client: types generated from Roost's OpenAPI (schema.d.ts), requests made
 * by openapi-fetch. Every request carries `X-Roost-Client: web` (the server's CSRF guard for
 * cookie sessions) and the in-memory access token; a 401 refreshes the session once and
 * repeats the request. Components never call this directly: the state modules do.
 */

import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Message = Schemas["Message"];
export type Room = Schemas["Room"];
export type User = Schemas["User"];

export const CLIENT_HEADER = { "X-Roost-Client": "web" } as const;

/** A refusal from the server, with its stable code (`{"error":{"code","message"}}`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The request never reached the server (offline, DNS, TLS, connection reset). */
export class NetworkError extends Error {}

/** What the API client needs from the session, set once by session/session.ts. */
export interface TokenSource {
  current(): string | null;
  /** Refreshes the session; resolves false if it has ended. */
  refresh(): Promise<boolean>;
}

let tokens: TokenSource = { current: () => null, refresh: async () => false };

export function useTokenSource(source: TokenSource): void {
  tokens = source;
}

export const api = createClient<paths>({ baseUrl: location.origin, headers: CLIENT_HEADER });

api.use({
  onRequest({ request }) {
    const token = tokens.current();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
});

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Turns an error body into an ApiError (a body that is not Roost's shape keeps the status). */
export function toApiError(status: number, error: unknown): ApiError {
  const detail = (error as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof detail?.code === "string" ? detail.code : `http_${status}`;
  const message = typeof detail?.message === "string" ? detail.message : `HTTP ${status}`;
  return new ApiError(status, code, message);
}

/**
 * Runs one typed request and returns its body, or throws ApiError / NetworkError.
 * `request` is called again after a successful refresh when the first answer is 401.
 */
export async function call<T>(request: () => Promise<Answer<T>>): Promise<T> {
  let answer = await send(request);
  if (answer.response.status === 401 && tokens.current() !== null && (await tokens.refresh())) {
    answer = await send(request);
  }
  if (answer.error !== undefined || !answer.response.ok) {
    throw toApiError(answer.response.status, answer.error);
  }
  return answer.data as T;
}

async function send<T>(request: () => Promise<Answer<T>>): Promise<Answer<T>> {
  try {
    return await request();
  } catch (e) {
    throw new NetworkError(e instanceof Error ? e.message : String(e));
  }
}
