/**
 * The browser session. The access token lives only in this module's memory; the refresh
 * token is an HttpOnly cookie the server sets (scoped to /api/v1/auth), so after a reload the
 * client calls refresh first. Nothing here touches localStorage or the DOM.
 */

import { signal } from "@preact/signals";
import { ApiError, api, call, CLIENT_HEADER, NetworkError, toApiError, useTokenSource, type User } from "../api/client";

export type SessionState =
  | { status: "loading" }
  | { status: "setup" }
  | { status: "signed_out"; reason?: string }
  | { status: "signed_in"; user: User };

export const session = signal<SessionState>({ status: "loading" });

let accessToken: string | null = null;
/** Milliseconds since the epoch after which the access token is refreshed before use. */
let refreshAfter = 0;
let refreshing: Promise<boolean> | null = null;

/** Answers of setup, login, register and refresh for a web client (no refresh token inside). */
interface WebTokens {
  access_token: string;
  expires_in: number;
  user: User;
}

function adopt(tokens: WebTokens): void {
  accessToken = tokens.access_token;
  // Refresh a minute early, so a token never expires on the way to the server.
  refreshAfter = Date.now() + Math.max(0, tokens.expires_in - 60) * 1000;
  session.value = { status: "signed_in", user: tokens.user };
}

function forget(reason?: string): void {
  accessToken = null;
  refreshAfter = 0;
  session.value = { status: "signed_out", reason };
}

/** Exchanges the refresh cookie for a new access token; single flight. */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const resp = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { ...CLIENT_HEADER, "Content-Type": "application/json" },
        body: "{}",
        credentials: "same-origin",
      });
      if (!resp.ok) {
        if (resp.status === 401 || resp.status === 403 || resp.status === 400) {
          if (session.value.status === "signed_in") forget();
          return false;
        }
        throw toApiError(resp.status, await resp.json().catch(() => undefined));
      }
      adopt((await resp.json()) as WebTokens);
      return true;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

useTokenSource({ current: () => accessToken, refresh: () => refresh().catch(() => false) });

/** A valid access token for the gateway (refreshed first when close to expiry or `fresh`). */
export async function tokenForGateway(fresh: boolean): Promise<string> {
  if (fresh || !accessToken || Date.now() > refreshAfter) {
    if (!(await refresh())) throw new ApiError(401, "signed_out", "the session has ended");
  }
  return accessToken ?? "";
}

/** At start: first run, a session to restore from the cookie, or the sign-in page. */
export async function boot(): Promise<void> {
  try {
    const setup = await fetch("/api/v1/setup", { headers: CLIENT_HEADER });
    if (setup.ok && ((await setup.json()) as { needed?: boolean }).needed === true) {
      session.value = { status: "setup" };
      return;
    }
    if (!(await refresh())) forget();
  } catch (e) {
    // Unreachable server: show the sign-in page with the reason rather than spin forever.
    forget(e instanceof NetworkError || e instanceof TypeError ? "network" : undefined);
  }
}

export async function signIn(username: string, password: string): Promise<void> {
  adopt(
    (await call(() => api.POST("/api/v1/auth/login", { body: { username, password }, credentials: "same-origin" }))) as WebTokens,
  );
}

export async function createAdmin(setupCode: string, username: string, password: string): Promise<void> {
  adopt(
    (await call(() =>
      api.POST("/api/v1/setup", { body: { setup_code: setupCode, username, password }, credentials: "same-origin" }),
    )) as WebTokens,
  );
}

export async function register(inviteCode: string, username: string, password: string): Promise<void> {
  adopt(
    (await call(() =>
      api.POST("/api/v1/auth/register", {
        body: { invite_code: inviteCode, username, password },
        credentials: "same-origin",
      }),
    )) as WebTokens,
  );
}

export async function signOut(): Promise<void> {
  try {
    await fetch("/api/v1/auth/logout", {
      method: "POST",
      headers: { ...CLIENT_HEADER, ...(accessToken ? { Authorization: `Bearer ${accessToken}` } : {}) },
      credentials: "same-origin",
    });
  } finally {
    forget();
  }
}

/** The gateway or the API found the session ended (signed out elsewhere, disabled). */
export function sessionEnded(): void {
  if (session.value.status === "signed_in") forget("ended");
}
