/**
 * One message in the timeline, a call entry (a centered line nobody edits), or a pending send.
 * A message that continues its author's run (timeline/grouping.ts) shows no name and time of
 * its own; they are still there for screen readers, so every list item says who wrote it.
 * A message's actions (Edit for its author, Delete for its author and the room's moderators)
 * are in a "More actions" menu button that is always there, so they are reachable by keyboard
 * and touch, not only on hover; a delete asks first.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { MenuButton, type MenuItem } from "../app/Menu";
import { ApiError, NetworkError, type Message } from "../api/client";
import { unreachable } from "../offline/state";
import { t } from "../strings";
import { AttachmentView } from "./AttachmentView";
import { authorName } from "./author";
import { Body } from "./Body";
import { callLength } from "./call-length";
import type { Pending } from "./outbox";
import { deleteMessage, editMessage, outbox } from "./state";
import { session } from "../session/session";

function myUsername(): string | undefined {
  const s = session.value;
  return s.status === "signed_in" ? s.user.username : undefined;
}
import "./call-entry.css";
import "./author.css";
import "./message.css";

function time(iso: string): string {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  return e instanceof ApiError ? e.message : String(e);
}

/** "Call started by Ana" / "Call ended · 12 min": the room's record of its calls. */
function CallEntry({ message, focused }: { message: Message; focused?: boolean }) {
  const text =
    message.kind === "call_started"
      ? t.callStarted(authorName(message).name)
      : message.call_duration_secs === null
        ? t.callEnded
        : t.callEndedAfter(callLength(message.call_duration_secs));
  return (
    <li
      class={`message call-entry${focused ? " focused" : ""}`}
      data-id={message.id}
      tabIndex={focused ? -1 : undefined}
      aria-current={focused ? "true" : undefined}
    >
      <p>
        <span dir="auto">{text}</span> <time dateTime={message.created_at}>{time(message.created_at)}</time>
      </p>
    </li>
  );
}

interface MessageProps {
  message: Message;
  mine: boolean;
  /** The reader moderates the room: they may delete anyone's message. */
  moderator: boolean;
  focused?: boolean;
  /** It continues the run of its author's message above: drawn under that one's name line. */
  continued?: boolean;
}

export function MessageItem(props: MessageProps) {
  if (props.message.kind !== "text") return <CallEntry message={props.message} focused={props.focused} />;
  return <TextMessage {...props} />;
}

function TextMessage({ message, mine, moderator, focused, continued = false }: MessageProps) {
  const [mode, setMode] = useState<"view" | "edit" | "confirm-delete">("view");
  const [draft, setDraft] = useState(message.body);
  const [error, setError] = useState<string | null>(null);
  const confirm = useRef<HTMLDivElement>(null);
  const editor = useRef<HTMLTextAreaElement>(null);

  // What the menu opened takes the focus (the menu itself is gone), so a keyboard user goes on
  // from there.
  useEffect(() => {
    if (mode === "confirm-delete") confirm.current?.querySelector<HTMLElement>("button")?.focus();
    if (mode === "edit") editor.current?.focus();
  }, [mode]);

  const author = authorName(message);
  const actions: MenuItem[] = [];
  if (mine && !message.deleted) {
    actions.push({
      label: t.edit,
      run: () => {
        setDraft(message.body);
        setMode("edit");
      },
    });
  }
  if ((mine || moderator) && !message.deleted) actions.push({ label: t.delete, run: () => setMode("confirm-delete") });

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
      class={`message${mine ? " mine" : ""}${focused ? " focused" : ""}${continued ? " continued" : ""}`}
      data-id={message.id}
      tabIndex={focused ? -1 : undefined}
      aria-current={focused ? "true" : undefined}
    >
      {actions.length > 0 && mode === "view" && !unreachable.value ? (
        <MenuButton items={actions} menuId={`actions-${message.id}`} label={t.moreActions} icon="⋯" class="more" />
      ) : null}
      <div class={continued ? "meta visually-hidden" : "meta"}>
        <strong class="author" dir="auto">
          {author.name}
        </strong>{" "}
        {author.username ? <span class="author-username">{t.authorUsername(author.username)} </span> : null}
        {message.author_bot ? <span class="bot-badge">{t.botBadge}</span> : null}
        <time dateTime={message.created_at}>{time(message.created_at)}</time>
        {message.edited_at && !message.deleted && !continued ? <span class="edited"> {t.edited}</span> : null}
      </div>
      {message.deleted ? (
        <p class="body deleted">{t.deleted}</p>
      ) : mode === "edit" ? (
        <form class="edit" onSubmit={save}>
          <label class="visually-hidden" for={`edit-${message.id}`}>
            {t.editMessage}
          </label>
          <textarea ref={editor} id={`edit-${message.id}`} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} rows={3} />
          <button type="submit">{t.save}</button>
          <button type="button" onClick={() => setMode("view")}>
            {t.cancel}
          </button>
        </form>
      ) : (
        <>
          {message.body ? (
            <Body text={message.body} mentions={(message.mentions ?? []).map((m) => m.username)} me={myUsername()} />
          ) : null}
          {message.attachments.map((a) => (
            <AttachmentView key={a.id} attachment={a} />
          ))}
          {message.edited_at && continued ? <p class="edited-below">{t.edited}</p> : null}
        </>
      )}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {mode === "confirm-delete" ? (
        <div class="actions confirm" role="group" aria-label={t.confirmDelete} ref={confirm}>
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
