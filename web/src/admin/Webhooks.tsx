/**
 * Outgoing webhooks on the admin page: register a URL for some events (the secret is shown
 * once), pause or resume, delete, and see each hook's last deliveries. Everything goes
 * through the typed API.
 */

import { useEffect, useState } from "preact/hooks";
import { api, ApiError, call, NetworkError, type Schemas } from "../api/client";
import { t } from "../strings";
import "./webhooks.css";

type Webhook = Schemas["Webhook"];
type Delivery = Schemas["DeliveryView"];

const EVENTS = [
  "message.created",
  "message.updated",
  "message.deleted",
  "member.joined",
  "member.left",
  "call.started",
  "call.ended",
  "security.alert",
] as const;

function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  return e instanceof ApiError ? e.message : String(e);
}

function Log({ id }: { id: number }) {
  const [log, setLog] = useState<Delivery[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    call(() => api.GET("/api/v1/webhooks/{id}/deliveries", { params: { path: { id }, query: { limit: 20 } } })).then(
      (page) => setLog(page.deliveries),
      (e) => setError(explain(e)),
    );
  }, [id]);
  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (!log) return <p>{t.loading}</p>;
  if (log.length === 0) return <p class="help">{t.webhookNoDeliveries}</p>;
  return (
    <ul class="webhook-log" aria-label={t.webhookDeliveries}>
      {log.map((d) => (
        <li key={d.id}>
          {t.webhookDelivery(
            d.event,
            new Date(d.created_at).toLocaleString(),
            d.state === "delivered",
            d.attempts,
            d.last_status ?? d.last_error ?? "",
          )}
        </li>
      ))}
    </ul>
  );
}

export default function Webhooks() {
  const [hooks, setHooks] = useState<Webhook[]>([]);
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>(["message.created"]);
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = async () => {
    try {
      setHooks((await call(() => api.GET("/api/v1/webhooks"))).webhooks);
    } catch (e) {
      setError(explain(e));
    }
  };
  useEffect(() => void load(), []);

  const run = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      await load();
    } catch (e) {
      setError(explain(e));
    }
  };

  const create = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const made = await call(() => api.POST("/api/v1/webhooks", { body: { url, events } }));
      setSecret(made.secret);
      setUrl("");
    });
  };

  const toggle = (event: string, on: boolean) =>
    setEvents((now) => (on ? [...now, event] : now.filter((e) => e !== event)));

  return (
    <section aria-labelledby="webhooks-title">
      <h2 id="webhooks-title">{t.webhooks}</h2>
      <form class="admin-form" onSubmit={create}>
        <label class="field">
          <span>{t.webhookUrl}</span>
          <input type="url" required value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
        </label>
        <fieldset class="webhook-events">
          <legend>{t.webhookEvents}</legend>
          {EVENTS.map((event) => (
            <label key={event}>
              <input
                type="checkbox"
                checked={events.includes(event)}
                onChange={(e) => toggle(event, e.currentTarget.checked)}
              />{" "}
              {event}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={events.length === 0}>
          {t.addWebhook}
        </button>
      </form>
      {secret ? (
        <label class="field">
          <span>{t.webhookSecret}</span>
          <input type="text" readOnly value={secret} onFocus={(e) => e.currentTarget.select()} />
        </label>
      ) : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <ul class="admin-list">
        {hooks.map((h) => (
          <li key={h.id} class="webhook">
            <span class="webhook-url">{h.url}</span>
            <span class="help">
              {h.events.join(", ")}
              {h.paused_at ? ` · ${t.webhookPaused(h.paused_reason ?? "")}` : ""}
              {h.pending > 0 ? ` · ${t.webhookPending(h.pending)}` : ""}
            </span>
            <span class="webhook-actions">
              <button
                type="button"
                onClick={() =>
                  void run(() =>
                    call(() =>
                      api.PATCH("/api/v1/webhooks/{id}", {
                        params: { path: { id: h.id } },
                        body: { paused: !h.paused_at },
                      }),
                    ),
                  )
                }
              >
                {h.paused_at ? t.resumeWebhook : t.pauseWebhook}
              </button>
              <button type="button" onClick={() => setOpen(open === h.id ? null : h.id)} aria-expanded={open === h.id}>
                {t.webhookDeliveries}
              </button>
              <button
                type="button"
                onClick={() =>
                  void run(() => call(() => api.DELETE("/api/v1/webhooks/{id}", { params: { path: { id: h.id } } })))
                }
              >
                {t.deleteWebhook}
              </button>
            </span>
            {open === h.id ? <Log id={h.id} /> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}
