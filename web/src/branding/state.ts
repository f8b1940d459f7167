/**
 * The server's branding (app name, accent colour, icon), set by its admin and read without
 * signing in (GET /api/v1/branding), so the sign-in page already shows it. The colour goes into
 * the theme through one custom property (`--brand`) set with CSSOM, which the CSP allows; an
 * uploaded icon replaces the page's icon link and is shown beside the name.
 */

import { signal } from "@preact/signals";
import { api, call } from "../api/client";
import { t } from "../strings";

export const appName = signal<string>(t.appName);
/** The uploaded icon's URL (same origin), or null for the built-in one. */
export const appIcon = signal<string | null>(null);

/** The built-in icon, as index.html names it. */
const DEFAULT_ICON = "/icon.svg";

function setPageIcon(url: string | null): void {
  const link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
  if (!link) return;
  link.href = url ?? DEFAULT_ICON;
  link.type = url ? "image/png" : "image/svg+xml";
}

export async function loadBranding(): Promise<void> {
  try {
    const branding = await call(() => api.GET("/api/v1/branding"));
    appName.value = branding.app_name;
    if (/^#[0-9a-fA-F]{6}$/.test(branding.accent_color)) {
      document.documentElement.style.setProperty("--brand", branding.accent_color);
    }
    // Only a path on this server: the icon is never fetched from elsewhere.
    const icon = branding.icon?.url;
    appIcon.value = icon && icon.startsWith("/") && !icon.startsWith("//") ? icon : null;
    setPageIcon(appIcon.value);
    if (!document.title.startsWith("(")) document.title = branding.app_name;
  } catch {
    // Unreachable or refused: the built-in name, colour and icon stay.
  }
}
