/** The composer: a textbox named "Message" and a "Send" button; Enter sends, Shift+Enter breaks. */

import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "../strings";
import { send } from "./state";

/** Drafts per room, so switching rooms does not lose what was typed. */
const drafts = new Map<number, string>();

export function Composer({ roomId }: { roomId: number }) {
  const [text, setText] = useState(drafts.get(roomId) ?? "");
  const box = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    setText(drafts.get(roomId) ?? "");
  }, [roomId]);

  const submit = (e?: Event) => {
    e?.preventDefault();
    if (text.trim() === "") return;
    send(roomId, text);
    drafts.delete(roomId);
    setText("");
    box.current?.focus();
  };

  return (
    <form class="composer" onSubmit={submit}>
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
        }}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) submit(e);
        }}
      />
      <button type="submit">{t.send}</button>
    </form>
  );
}
