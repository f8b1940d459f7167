/**
 * The composer: a textbox named "Message", a "Send" button (Enter sends, Shift+Enter breaks
 * the line) and an attachment picker with upload progress. A refused upload leaves the draft.
 * Typing tells the room's others (the gateway's typing op, throttled).
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { sendTyping } from "../gateway/socket";
import { t } from "../strings";
import { clearUploads, removeUpload, startUpload, uploads } from "./attachments";
import { send } from "./state";

/** Drafts per room, so switching rooms does not lose what was typed. */
const drafts = new Map<number, string>();

export function Composer({ roomId }: { roomId: number }) {
  const [text, setText] = useState(drafts.get(roomId) ?? "");
  const box = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const mine = uploads.value.get(roomId) ?? [];
  const uploading = mine.some((u) => u.state === "uploading");
  const ready = mine.filter((u) => u.state === "done" && u.attachment);

  useEffect(() => {
    setText(drafts.get(roomId) ?? "");
  }, [roomId]);

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
          onInput={(e) => {
            setText(e.currentTarget.value);
            drafts.set(roomId, e.currentTarget.value);
            // Throttled by the gateway machine; clearing the box is not typing.
            if (e.currentTarget.value.trim() !== "") sendTyping(roomId);
          }}
          onKeyDown={(e) => {
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
