/**
 * The server's branding (app name, accent colour), set by its admin and read without signing
 * in (GET /api/v1/branding), so the sign-in page already shows it. The colour goes into the
 * theme through one custom property (`--brand`) set with CSSOM, which the CSP allows.
 */

import { signal } from "@preact/signals";
import { api, call } from "../api/client";
import { t } from "../strings";

export const appName = signal<string>(t.appName);

export async function loadBranding(): Promise<void> {
  try {
    const branding = await call(() => api.GET("/api/v1/branding"));
    appName.value = branding.app_name;
    if (/^#[0-9a-fA-F]{6}$/.test(branding.accent_color)) {
      document.documentElement.style.setProperty("--brand", branding.accent_color);
    }
    if (!document.title.startsWith("(")) document.title = branding.app_name;
  } catch {
    // Unreachable or refused: the built-in name and colour stay.
  }
}
