/** The search form and its results; a result opens its room's timeline at that message. */

import { useState } from "preact/hooks";
import { openRoom } from "../app/router";
import { roomById, roomLabel } from "../rooms/state";
import { t } from "../strings";
import { authorName } from "../timeline/author";
import { focusMessage } from "../timeline/state";
import { clearSearch, results, search, searchError } from "./state";

export function SearchBox() {
  const [q, setQ] = useState("");
  const found = results.value;
  return (
    <div class="search">
      <form
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          void search(q);
        }}
      >
        <label class="visually-hidden" for="search-text">
          {t.searchMessages}
        </label>
        <input id="search-text" type="search" placeholder={t.searchMessages} value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        <button type="submit">{t.search}</button>
      </form>
      {searchError.value ? (
        <p class="error" role="alert">
          {searchError.value}
        </p>
      ) : null}
      {found !== null ? (
        <>
          <ul class="results" aria-label={t.searchResults}>
            {found.length === 0 ? <li class="help">{t.noResults}</li> : null}
            {found.map((m) => (
              <li key={m.id}>
                <button
                  type="button"
                  onClick={() => {
                    focusMessage.value = { roomId: m.room_id, messageId: m.id };
                    clearSearch();
                    setQ("");
                    openRoom(m.room_id);
                  }}
                >
                  <span class="help">
                    {roomLabel(roomById(m.room_id))} · {authorName(m).name}
                  </span>
                  <span class="snippet" dir="auto">
                    {m.body.length > 120 ? `${m.body.slice(0, 120)}…` : m.body}
                  </span>
                </button>
              </li>
            ))}
          </ul>
          <button
            type="button"
            onClick={() => {
              clearSearch();
              setQ("");
            }}
          >
            {t.clearSearch}
          </button>
        </>
      ) : null}
    </div>
  );
}
