/**
 * "New message": a searchbox named "Find a person" over the people the server says one may
 * message (GET /api/v1/people), each a button that opens (or finds) the direct message.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, NetworkError } from "../api/client";
import { openRoom } from "../app/router";
import { t } from "../strings";
import { findPeople, openDm, type Person } from "./state";

function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  return e instanceof ApiError ? e.message : String(e);
}

export function NewMessage() {
  const [open, setOpen] = useState(false);
  const [q, setQ] = useState("");
  const [people, setPeople] = useState<Person[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const box = useRef<HTMLInputElement>(null);
  /** Answers can come back out of order: only the latest query's counts. */
  const latest = useRef(0);

  useEffect(() => {
    if (!open) return;
    const asked = ++latest.current;
    findPeople(q.trim()).then(
      (found) => {
        if (asked === latest.current) setPeople(found);
      },
      (e) => {
        if (asked === latest.current) setError(explain(e));
      },
    );
  }, [open, q]);

  useEffect(() => {
    if (open) box.current?.focus();
  }, [open]);

  const close = () => {
    setOpen(false);
    setQ("");
    setPeople(null);
    setError(null);
  };

  const start = async (person: Person) => {
    setError(null);
    try {
      const room = await openDm(person.id);
      close();
      openRoom(room.id);
    } catch (e) {
      setError(explain(e));
    }
  };

  if (!open) {
    return (
      <button type="button" class="new-message" onClick={() => setOpen(true)}>
        {t.newMessage}
      </button>
    );
  }
  return (
    <div class="person-picker" onKeyDown={(e) => e.key === "Escape" && close()}>
      <input
        ref={box}
        type="search"
        aria-label={t.findPerson}
        placeholder={t.findPerson}
        value={q}
        onInput={(e) => setQ(e.currentTarget.value)}
      />
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {people !== null ? (
        <ul class="people" aria-label={t.people}>
          {people.length === 0 ? <li class="help">{t.noPeople}</li> : null}
          {people.map((p) => (
            <li key={p.id}>
              <button type="button" onClick={() => void start(p)}>
                <span dir="auto">{p.display_name}</span> <span class="help">@{p.username}</span>
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      <button type="button" onClick={close}>
        {t.cancel}
      </button>
    </div>
  );
}
