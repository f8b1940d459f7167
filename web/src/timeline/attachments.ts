/**
 * Attachments: uploads with progress and cancel (XMLHttpRequest, the one browser API that
 * reports upload progress), and downloads as blobs (an <img> cannot send the bearer token), shown
 * through object URLs that are released when no longer shown.
 */

import { signal } from "@preact/signals";
import { CLIENT_HEADER, type Schemas } from "../api/client";
import { tokenForGateway } from "../session/session";
import { t } from "../strings";

export type AttachmentRef = Schemas["AttachmentRef"];

export interface Upload {
  localId: number;
  name: string;
  size: number;
  /** 0..1 while sending. */
  progress: number;
  state: "uploading" | "done" | "failed";
  error?: string;
  attachment?: AttachmentRef;
  cancel: () => void;
}

/** Uploads in the composer, per room (sent with the next message). */
export const uploads = signal<ReadonlyMap<number, readonly Upload[]>>(new Map());

let counter = 0;

function setUploads(roomId: number, change: (list: readonly Upload[]) => readonly Upload[]): void {
  const next = new Map(uploads.value);
  next.set(roomId, change(next.get(roomId) ?? []));
  uploads.value = next;
}

function patch(roomId: number, localId: number, p: Partial<Upload>): void {
  setUploads(roomId, (list) => list.map((u) => (u.localId === localId ? { ...u, ...p } : u)));
}

export function removeUpload(roomId: number, localId: number): void {
  setUploads(roomId, (list) => {
    list.find((u) => u.localId === localId)?.cancel();
    return list.filter((u) => u.localId !== localId);
  });
}

export function clearUploads(roomId: number): void {
  setUploads(roomId, () => []);
}

/** The refusal in words, naming the file (the server's message names the limit). */
function refusal(name: string, status: number, body: string): string {
  let message = "";
  try {
    message = (JSON.parse(body) as { error?: { message?: string } }).error?.message ?? "";
  } catch {
    // not Roost's JSON (a proxy's page): the status alone
  }
  if (status === 413) return t.uploadTooLarge(name, message);
  if (status === 415) return t.uploadUnsupported(name, message);
  return t.uploadFailed(name, message || `HTTP ${status}`);
}

export async function startUpload(roomId: number, file: File): Promise<void> {
  counter += 1;
  const localId = counter;
  const xhr = new XMLHttpRequest();
  const upload: Upload = {
    localId,
    name: file.name,
    size: file.size,
    progress: 0,
    state: "uploading",
    cancel: () => xhr.abort(),
  };
  setUploads(roomId, (list) => [...list, upload]);
  let token: string;
  try {
    token = await tokenForGateway(false);
  } catch {
    patch(roomId, localId, { state: "failed", error: t.uploadFailed(file.name, t.networkError) });
    return;
  }
  xhr.open("POST", `/api/v1/attachments?name=${encodeURIComponent(file.name)}`);
  xhr.setRequestHeader("Authorization", `Bearer ${token}`);
  for (const [k, v] of Object.entries(CLIENT_HEADER)) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) patch(roomId, localId, { progress: e.loaded / e.total });
  };
  xhr.onload = () => {
    if (xhr.status === 201) {
      const attachment = JSON.parse(xhr.responseText) as AttachmentRef;
      patch(roomId, localId, { state: "done", progress: 1, attachment });
    } else {
      patch(roomId, localId, { state: "failed", error: refusal(file.name, xhr.status, xhr.responseText) });
    }
  };
  xhr.onerror = () => patch(roomId, localId, { state: "failed", error: t.uploadFailed(file.name, t.networkError) });
  xhr.send(file);
}

/** Fetches an attachment with the bearer token and returns an object URL for it. */
export async function attachmentUrl(id: number): Promise<string> {
  const token = await tokenForGateway(false);
  const resp = await fetch(`/api/v1/attachments/${id}`, {
    headers: { ...CLIENT_HEADER, Authorization: `Bearer ${token}` },
  });
  if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
  return URL.createObjectURL(await resp.blob());
}

export function isInlineImage(a: AttachmentRef): boolean {
  return ["image/png", "image/jpeg", "image/gif", "image/webp"].includes(a.content_type);
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
