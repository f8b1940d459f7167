/**
 * The administration pages' calls to the API, typed from the OpenAPI document. The pages keep
 * what they show in their own state and call these; nothing here holds state across pages.
 */

import { api, ApiError, call, NetworkError, type Schemas } from "../api/client";
import { loadBranding } from "../branding/state";
import { t } from "../strings";

export type Invite = Schemas["InviteView"];
export type ApiKey = Schemas["ApiKeyView"];
export type NewKey = Schemas["NewKey"];
export type AuditEvent = Schemas["AuditEvent"];
export type AuditPage = Schemas["AuditPage"];
export type ServerStatus = Schemas["StatusReport"];
export type BackupList = Schemas["BackupList"];
export type BackupRun = Schemas["BackupRun"];
export type Branding = Schemas["Branding"];
export type Role = Schemas["User"]["role"];
export type Scope = "read" | "write" | "admin";

/** A refusal or failure in words a person can act on. */
export function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  return e instanceof ApiError ? e.message : String(e);
}

export const listUsers = () => call(() => api.GET("/api/v1/users"));

export const updateUser = (id: number, body: { role?: Role; disabled?: boolean }) =>
  call(() => api.PATCH("/api/v1/users/{id}", { params: { path: { id } }, body }));

export const listInvites = () => call(() => api.GET("/api/v1/invites"));

export const createInvite = (maxUses: number, days: number) =>
  call(() => api.POST("/api/v1/invites", { body: { max_uses: maxUses, expires_in_secs: days * 86_400 } }));

export const revokeInvite = (id: number) =>
  call(() => api.DELETE("/api/v1/invites/{id}", { params: { path: { id } } }));

export const listKeys = () => call(() => api.GET("/api/v1/api-keys"));

export const createKey = (name: string, scopes: Scope[]) =>
  call(() => api.POST("/api/v1/api-keys", { body: { name, scopes } }));

export const revokeKey = (id: number) =>
  call(() => api.DELETE("/api/v1/api-keys/{id}", { params: { path: { id } } }));

/** The first step of a rotation: a token that the second step exchanges for the new key. */
export const startRotation = (id: number) =>
  call(() => api.POST("/api/v1/api-keys/{id}/rotation", { params: { path: { id } } }));

/** The second step: the new key (shown once); the old one stops working now. */
export const confirmRotation = (id: number, rotationToken: string) =>
  call(() =>
    api.POST("/api/v1/api-keys/{id}/rotation/confirm", {
      params: { path: { id } },
      body: { rotation_token: rotationToken },
    }),
  );

export interface AuditFilter {
  type: string;
  actor: string;
  /** `datetime-local` values (the browser's time zone), or "". */
  since: string;
  until: string;
}

/** A `datetime-local` value as RFC 3339 (UTC), or undefined when empty or unreadable. */
function instant(local: string): string | undefined {
  if (!local) return undefined;
  const when = new Date(local);
  return Number.isNaN(when.getTime()) ? undefined : when.toISOString();
}

export const AUDIT_PAGE = 50;

export const listAudit = (filter: AuditFilter, cursor?: string) =>
  call(() =>
    api.GET("/api/v1/audit", {
      params: {
        query: {
          type: filter.type.trim() || undefined,
          actor: filter.actor.trim() || undefined,
          since: instant(filter.since),
          until: instant(filter.until),
          cursor,
          limit: AUDIT_PAGE,
        },
      },
    }),
  );

export const serverStatus = () => call(() => api.GET("/api/v1/admin/status"));

export const listBackups = () => call(() => api.GET("/api/v1/admin/backups"));

export const startBackup = () => call(() => api.POST("/api/v1/admin/backups"));

export const getBranding = () => call(() => api.GET("/api/v1/branding"));

/** Saves the name and colour, then shows them everywhere in this tab at once. */
export async function saveBranding(appName: string, accentColor: string): Promise<Branding> {
  const saved = await call(() =>
    api.PATCH("/api/v1/branding", { body: { app_name: appName, accent_color: accentColor } }),
  );
  await loadBranding();
  return saved;
}

/** Uploads the icon (the server checks it is a square PNG), then shows it in this tab. */
export async function uploadIcon(file: Blob): Promise<Branding> {
  const saved = await call(() =>
    api.PUT("/api/v1/branding/icon", {
      // The PNG's bytes as they are, not JSON.
      body: file as unknown as number[],
      bodySerializer: (body: unknown) => body as Blob,
      headers: { "Content-Type": "image/png" },
    }),
  );
  await loadBranding();
  return saved;
}

export async function removeIcon(): Promise<Branding> {
  const saved = await call(() => api.DELETE("/api/v1/branding/icon"));
  await loadBranding();
  return saved;
}

/** `1.5 MiB`-style sizes. */
export function bytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `3d 4h`, `2h 5m`, `4m 3s`, as `roost status` says it. */
export function duration(secs: number): string {
  const d = Math.floor(secs / 86_400);
  const h = Math.floor(secs / 3600) % 24;
  const m = Math.floor(secs / 60) % 60;
  const s = Math.floor(secs) % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${s}s`;
}

export function localTime(rfc3339: string): string {
  return new Date(rfc3339).toLocaleString();
}
