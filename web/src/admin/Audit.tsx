/** The audit log: filters the API offers (type, actor, time range), newest first, paged. */

import { useEffect, useState } from "preact/hooks";
import { t } from "../strings";
import { explain, listAudit, localTime, type AuditEvent, type AuditFilter } from "./state";

const NO_FILTER: AuditFilter = { type: "", actor: "", since: "", until: "" };

function Row({ e }: { e: AuditEvent }) {
  const who = e.actor ?? "—";
  return (
    <li>
      <span class="admin-item">
        <span>
          <strong>{e.type}</strong>
          {e.outcome === "failure" ? ` · ${t.failure}` : ""}
        </span>
        <span class="help" dir="auto">
          {localTime(e.at)} · {who}
          {e.target ? ` → ${e.target}` : ""}
          {e.client_ip ? ` · ${e.client_ip}` : ""}
        </span>
      </span>
    </li>
  );
}

export function Audit() {
  const [draft, setDraft] = useState<AuditFilter>(NO_FILTER);
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = async (filter: AuditFilter, after?: string) => {
    setError(null);
    try {
      const page = await listAudit(filter, after);
      setEvents((now) => (after ? [...now, ...page.events] : page.events));
      setCursor(page.next_cursor ?? null);
    } catch (e) {
      setError(explain(e));
    }
  };
  // The filter in force is the one last applied, so paging keeps it.
  const [applied, setApplied] = useState<AuditFilter>(NO_FILTER);
  useEffect(() => void load(NO_FILTER), []);

  const field = (key: keyof AuditFilter, label: string, when = false) => {
    const set = (e: { currentTarget: HTMLInputElement }) => setDraft({ ...draft, [key]: e.currentTarget.value });
    return (
      <label class="field">
        <span>{label}</span>
        {when ? (
          <input type="datetime-local" value={draft[key]} onInput={set} />
        ) : (
          <input type="text" value={draft[key]} onInput={set} />
        )}
      </label>
    );
  };

  return (
    <section aria-labelledby="audit-title">
      <h2 id="audit-title">{t.adminAudit}</h2>
      <form
        class="admin-form audit-filters"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(draft);
          void load(draft);
        }}
      >
        {field("type", t.auditType)}
        {field("actor", t.auditActor)}
        {field("since", t.auditSince, true)}
        {field("until", t.auditUntil, true)}
        <button type="submit">{t.applyFilters}</button>
      </form>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {events.length === 0 && !error ? <p class="help">{t.noEvents}</p> : null}
      <ul class="admin-list" aria-label={t.auditEvents}>
        {events.map((e) => (
          <Row key={e.id} e={e} />
        ))}
      </ul>
      {cursor ? (
        <button type="button" onClick={() => void load(applied, cursor)}>
          {t.olderEvents}
        </button>
      ) : null}
    </section>
  );
}
