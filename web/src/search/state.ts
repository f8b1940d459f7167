/** Message search across the rooms a person can read (GET /api/v1/search). */

import { signal } from "@preact/signals";
import { api, ApiError, call, NetworkError, type Message } from "../api/client";
import { t } from "../strings";

export const results = signal<Message[] | null>(null);
export const searchError = signal<string | null>(null);

export async function search(q: string): Promise<void> {
  searchError.value = null;
  if (q.trim() === "") {
    results.value = null;
    return;
  }
  try {
    const answer = await call(() => api.GET("/api/v1/search", { params: { query: { q: q.trim(), limit: 50 } } }));
    results.value = answer.messages;
  } catch (e) {
    searchError.value = e instanceof NetworkError ? t.networkError : e instanceof ApiError ? e.message : String(e);
  }
}

export function clearSearch(): void {
  results.value = null;
  searchError.value = null;
}
