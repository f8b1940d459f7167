/**
 * The browser session. The access token lives only in this module's memory; the refresh
 * token is an HttpOnly cookie the server sets (scoped to /api/v1/auth), so after a reload the
 * client calls refresh first. Nothing here touches localStorage or the DOM.
 */

import { signal } from "@preact/signals";
import { ApiError, api, call, NetworkError, toApiError, useTokenSource, type Schemas, type User } from "../api/client";
import * as snapshot from "../offline/snapshot";

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

/** Answers of setup, login, register and refresh (for a web client, without a refresh token). */
type WebTokens = Schemas["SessionTokens"];

function adopt(tokens: WebTokens): void {
  accessToken = tokens.access_token;
  // Refresh a minute early, so a token never expires on the way to the server.
  refreshAfter = Date.now() + Math.max(0, tokens.expires_in - 60) * 1000;
  session.value = { status: "signed_in", user: tokens.user };
  snapshot.saveUser(tokens.user);
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
      // Not through `call`: its 401 handling would come back here.
      const answer = await api.POST("/api/v1/auth/refresh", { body: {}, credentials: "same-origin" });
      if (answer.data) {
        adopt(answer.data);
        return true;
      }
      const status = answer.response.status;
      if (status === 401 || status === 403 || status === 400) {
        if (session.value.status === "signed_in") {
          void snapshot.clear();
          forget();
        }
        return false;
      }
      throw toApiError(status, answer.error);
    } catch (e) {
      if (e instanceof TypeError) throw new NetworkError(e.message);
      throw e;
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

/**
 * At start: first run, a session to restore from the cookie, or the sign-in page. When the
 * server cannot be reached it changes nothing and answers "unreachable": the caller decides
 * between what this browser saw last (offline/state.ts) and the sign-in page.
 */
export async function boot(): Promise<"done" | "unreachable"> {
  // Both questions at once: a returning person (the common case) should not wait for the
  // first-run check before the session. Before the first admin exists the refresh fails (401).
  const refreshed = refresh();
  refreshed.catch(() => {});
  try {
    const setup = await call(() => api.GET("/api/v1/setup"));
    if (setup.needed) {
      void snapshot.clear();
      session.value = { status: "setup" };
      return "done";
    }
    if (!(await refreshed)) {
      void snapshot.clear();
      forget();
    }
    return "done";
  } catch (e) {
    if (e instanceof NetworkError) return "unreachable";
    forget();
    return "done";
  }
}

/** The sign-in page, saying the server could not be reached. */
export function showUnreachable(): void {
  forget("network");
}

/**
 * Signed in from the snapshot while the server is out of reach: no access token, so every
 * request fails until boot() succeeds again and restores the real session.
 */
export function signedInFromSnapshot(user: User): void {
  session.value = { status: "signed_in", user };
}

export async function signIn(username: string, password: string): Promise<void> {
  adopt(await call(() => api.POST("/api/v1/auth/login", { body: { username, password }, credentials: "same-origin" })));
}

export async function createAdmin(setupCode: string, username: string, password: string): Promise<void> {
  adopt(
    (await call(() =>
      api.POST("/api/v1/setup", { body: { setup_code: setupCode, username, password }, credentials: "same-origin" }),
    )),
  );
}

export async function register(inviteCode: string, username: string, password: string): Promise<void> {
  adopt(
    (await call(() =>
      api.POST("/api/v1/auth/register", {
        body: { invite_code: inviteCode, username, password },
        credentials: "same-origin",
      }),
    )),
  );
}

export async function signOut(): Promise<void> {
  try {
    await api.POST("/api/v1/auth/logout", { credentials: "same-origin" });
  } catch {
    // Offline: the cookie stays, but this page forgets the session; the server ends it at expiry.
  } finally {
    await snapshot.clear().catch(() => {});
    forget();
  }
}

/**
 * The signed-in person's own account changed (their new display name, from this device or, over
 * the gateway, another): the session shows it at once, and so does the offline snapshot.
 */
export function ownAccountChanged(user: Pick<User, "id" | "username" | "display_name">): void {
  const s = session.value;
  if (s.status !== "signed_in" || s.user.id !== user.id || s.user.display_name === user.display_name) return;
  session.value = { status: "signed_in", user: { ...s.user, display_name: user.display_name } };
  snapshot.saveUser(session.value.user);
}

/** `PATCH /api/v1/me`: the person's own new display name (blank: their username). */
export async function renameMe(displayName: string): Promise<User> {
  const user = await call(() => api.PATCH("/api/v1/me", { body: { display_name: displayName } }));
  ownAccountChanged(user);
  return user;
}

/**
 * `POST /api/v1/auth/password`. Roost signs out every session of the account and answers a new
 * one for this page (with a new refresh cookie), which it adopts: this device stays signed in.
 */
export async function changePassword(currentPassword: string, newPassword: string): Promise<void> {
  adopt(
    await call(() =>
      api.POST("/api/v1/auth/password", {
        body: { current_password: currentPassword, new_password: newPassword },
        credentials: "same-origin",
      }),
    ),
  );
}

/** The gateway or the API found the session ended (signed out elsewhere, disabled). */
export function sessionEnded(): void {
  if (session.value.status === "signed_in") {
    void snapshot.clear();
    forget("ended");
  }
}
