/** One message in the timeline (with edit and delete for its author), or a pending send. */

import { useState } from "preact/hooks";
import { ApiError, NetworkError, type Message } from "../api/client";
import { t } from "../strings";
import { AttachmentView } from "./AttachmentView";
import { Body } from "./Body";
import type { Pending } from "./outbox";
import { deleteMessage, editMessage, outbox } from "./state";

function time(iso: string): string {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  return e instanceof ApiError ? e.message : String(e);
}

export function MessageItem({ message, mine, focused }: { message: Message; mine: boolean; focused?: boolean }) {
  const [mode, setMode] = useState<"view" | "edit" | "confirm-delete">("view");
  const [draft, setDraft] = useState(message.body);
  const [error, setError] = useState<string | null>(null);

  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await editMessage(message.room_id, message.id, draft);
      setMode("view");
      setError(null);
    } catch (err) {
      setError(explain(err));
    }
  };
  const remove = async () => {
    try {
      await deleteMessage(message.room_id, message.id);
      setMode("view");
    } catch (err) {
      setError(explain(err));
    }
  };

  return (
    <li
      class={`message${mine ? " mine" : ""}${focused ? " focused" : ""}`}
      data-id={message.id}
      tabIndex={focused ? -1 : undefined}
      aria-current={focused ? "true" : undefined}
    >
      <div class="meta">
        <strong class="author" dir="auto">
          {message.author ?? t.unknownAuthor}
        </strong>{" "}
        {message.author_bot ? <span class="bot-badge">{t.botBadge}</span> : null}
        <time dateTime={message.created_at}>{time(message.created_at)}</time>
        {message.edited_at && !message.deleted ? <span class="edited"> {t.edited}</span> : null}
      </div>
      {message.deleted ? (
        <p class="body deleted">{t.deleted}</p>
      ) : mode === "edit" ? (
        <form class="edit" onSubmit={save}>
          <label class="visually-hidden" for={`edit-${message.id}`}>
            {t.editMessage}
          </label>
          <textarea id={`edit-${message.id}`} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} rows={3} />
          <button type="submit">{t.save}</button>
          <button type="button" onClick={() => setMode("view")}>
            {t.cancel}
          </button>
        </form>
      ) : (
        <>
          {message.body ? <Body text={message.body} /> : null}
          {message.attachments.map((a) => (
            <AttachmentView key={a.id} attachment={a} />
          ))}
        </>
      )}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {mine && !message.deleted && mode === "view" ? (
        <div class="actions">
          <button
            type="button"
            onClick={() => {
              setDraft(message.body);
              setMode("edit");
            }}
          >
            {t.edit}
          </button>
          <button type="button" onClick={() => setMode("confirm-delete")}>
            {t.delete}
          </button>
        </div>
      ) : null}
      {mode === "confirm-delete" ? (
        <div class="actions confirm" role="group" aria-label={t.confirmDelete}>
          <span>{t.confirmDelete}</span>
          <button type="button" class="danger" onClick={remove}>
            {t.delete}
          </button>
          <button type="button" onClick={() => setMode("view")}>
            {t.cancel}
          </button>
        </div>
      ) : null}
    </li>
  );
}

export function PendingItem({ pending }: { pending: Pending }) {
  const status =
    pending.state === "failed"
      ? t.notSent(pending.error ?? "")
      : pending.state === "waiting"
        ? t.waiting
        : t.sending;
  return (
    <li class={`message mine pending ${pending.state}`}>
      {pending.body ? <Body text={pending.body} /> : null}
      {pending.attachments.map((a) => (
        <p key={a.id} class="help">
          {t.attached(a.name)}
        </p>
      ))}
      <p class="status" role={pending.state === "failed" ? "alert" : undefined}>
        {status}
      </p>
      {pending.state === "failed" ? (
        <div class="actions">
          <button type="button" onClick={() => outbox.retry(pending.localId)}>
            {t.retry}
          </button>
          <button type="button" onClick={() => outbox.discard(pending.localId)}>
            {t.discard}
          </button>
        </div>
      ) : null}
    </li>
  );
}
