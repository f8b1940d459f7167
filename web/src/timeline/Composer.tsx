/**
 * The composer: a textbox named "Message", a "Send" button (Enter sends, Shift+Enter breaks
 * the line) and an attachment picker with upload progress. A refused upload leaves the draft.
 * Typing tells the room's others (the gateway's typing op, throttled).
 * Typing `@` offers the room's members in a listbox: arrows choose, Enter or Tab completes,
 * Escape closes it.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { sendTyping } from "../gateway/socket";
import { t } from "../strings";
import { clearUploads, removeUpload, startUpload, uploads } from "./attachments";
import { ensureMembers, membersOf } from "../members/state";
import { complete, mentionAt, suggest } from "./mentions";
import { send } from "./state";

/** Drafts per room, so switching rooms does not lose what was typed. */
const drafts = new Map<number, string>();

export function Composer({ roomId, myUserId }: { roomId: number; myUserId: number }) {
  const [text, setText] = useState(drafts.get(roomId) ?? "");
  const [caret, setCaret] = useState(0);
  const [active, setActive] = useState(0);
  /** The `@` position whose suggestions Escape closed (they stay closed for that word). */
  const [dismissed, setDismissed] = useState<number | null>(null);
  const box = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const mine = uploads.value.get(roomId) ?? [];
  const uploading = mine.some((u) => u.state === "uploading");
  const ready = mine.filter((u) => u.state === "done" && u.attachment);

  useEffect(() => {
    setText(drafts.get(roomId) ?? "");
  }, [roomId]);

  const typing = mentionAt(text, caret);
  if (typing) ensureMembers(roomId);
  const suggestions =
    typing && typing.start !== dismissed ? suggest(membersOf(roomId).value ?? [], typing.query, myUserId) : [];
  const chosen = suggestions.length > 0 ? Math.min(active, suggestions.length - 1) : -1;

  const edit = (value: string, at: number) => {
    setText(value);
    setCaret(at);
    drafts.set(roomId, value);
  };

  const accept = (username: string) => {
    if (!typing) return;
    const done = complete(text, typing.start, caret, username);
    edit(done.text, done.caret);
    setActive(0);
    const el = box.current;
    if (el) {
      el.value = done.text;
      el.setSelectionRange(done.caret, done.caret);
      el.focus();
    }
  };

  const submit = (e?: Event) => {
    e?.preventDefault();
    if (uploading || (text.trim() === "" && ready.length === 0)) return;
    send(
      roomId,
      text,
      ready.map((u) => ({ id: u.attachment?.id ?? 0, name: u.name })),
    );
    drafts.delete(roomId);
    clearUploads(roomId);
    setText("");
    setCaret(0);
    setDismissed(null);
    box.current?.focus();
  };

  return (
    <form class="composer" onSubmit={submit}>
      {mine.length > 0 ? (
        <ul class="uploads">
          {mine.map((u) => (
            <li key={u.localId} class={u.state}>
              {u.state === "uploading" ? (
                <>
                  <label>
                    <span>{t.uploading(u.name, Math.round(u.progress * 100))}</span>
                    <progress max={1} value={u.progress} />
                  </label>
                  <button type="button" onClick={() => removeUpload(roomId, u.localId)}>
                    {t.cancelUpload(u.name)}
                  </button>
                </>
              ) : u.state === "failed" ? (
                <>
                  <span class="error" role="alert">
                    {u.error}
                  </span>
                  <button type="button" onClick={() => removeUpload(roomId, u.localId)}>
                    {t.removeAttachment(u.name)}
                  </button>
                </>
              ) : (
                <>
                  <span>{t.attached(u.name)}</span>
                  <button type="button" onClick={() => removeUpload(roomId, u.localId)}>
                    {t.removeAttachment(u.name)}
                  </button>
                </>
              )}
            </li>
          ))}
        </ul>
      ) : null}
      {suggestions.length > 0 ? (
        <ul class="mention-suggestions" role="listbox" id="mention-suggestions" aria-label={t.mentionSuggestions}>
          {suggestions.map((m, i) => (
            <li
              key={m.user_id}
              id={`mention-${m.user_id}`}
              role="option"
              aria-selected={i === chosen}
              onMouseDown={(e) => {
                e.preventDefault(); // keep the focus in the textbox
                accept(m.username);
              }}
            >
              <span dir="auto">{m.display_name}</span> <span class="help">@{m.username}</span>
            </li>
          ))}
        </ul>
      ) : null}
      <div class="compose-row">
        <label class="attach">
          <span class="visually-hidden">{t.attach}</span>
          <span aria-hidden="true">+</span>
          <input
            ref={picker}
            type="file"
            multiple
            class="visually-hidden"
            onChange={(e) => {
              for (const file of Array.from(e.currentTarget.files ?? [])) void startUpload(roomId, file);
              e.currentTarget.value = "";
            }}
          />
        </label>
        <label class="visually-hidden" for="composer-text">
          {t.message}
        </label>
        <textarea
          id="composer-text"
          ref={box}
          rows={1}
          value={text}
          aria-autocomplete="list"
          aria-controls={suggestions.length > 0 ? "mention-suggestions" : undefined}
          aria-activedescendant={chosen >= 0 ? `mention-${suggestions[chosen].user_id}` : undefined}
          onInput={(e) => {
            edit(e.currentTarget.value, e.currentTarget.selectionStart ?? e.currentTarget.value.length);
            setActive(0);
            // Throttled by the gateway machine; clearing the box is not typing.
            if (e.currentTarget.value.trim() !== "") sendTyping(roomId);
          }}
          onKeyUp={(e) => {
            if (!["ArrowDown", "ArrowUp", "Enter", "Tab", "Escape"].includes(e.key)) {
              setCaret(e.currentTarget.selectionStart ?? 0);
            }
          }}
          onClick={(e) => setCaret(e.currentTarget.selectionStart ?? 0)}
          onKeyDown={(e) => {
            if (suggestions.length > 0 && !e.isComposing) {
              if (e.key === "ArrowDown" || e.key === "ArrowUp") {
                e.preventDefault();
                const step = e.key === "ArrowDown" ? 1 : -1;
                setActive((chosen + step + suggestions.length) % suggestions.length);
                return;
              }
              if ((e.key === "Enter" && !e.shiftKey) || e.key === "Tab") {
                e.preventDefault();
                accept(suggestions[chosen].username);
                return;
              }
              if (e.key === "Escape" && typing) {
                e.preventDefault();
                setDismissed(typing.start);
                return;
              }
            }
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) submit(e);
          }}
          onPaste={(e) => {
            const files = Array.from(e.clipboardData?.files ?? []);
            if (files.length === 0) return;
            e.preventDefault();
            for (const file of files) void startUpload(roomId, file);
          }}
        />
        <button type="submit" disabled={uploading}>
          {t.send}
        </button>
      </div>
    </form>
  );
}
