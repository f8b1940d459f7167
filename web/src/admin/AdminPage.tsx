/**
 * Administration, in its own chunk (loaded when an admin opens it): invite links (create with
 * uses and expiry, copy, revoke) and the accounts. Everything goes through the typed API.
 */

import { useEffect, useState } from "preact/hooks";
import { api, ApiError, call, NetworkError, type Schemas, type User } from "../api/client";
import { navigate } from "../app/router";
import { t } from "../strings";
import Webhooks from "./Webhooks";

type Invite = Schemas["InviteView"];

function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  return e instanceof ApiError ? e.message : String(e);
}

function inviteLink(code: string): string {
  return `${location.origin}/invite/${encodeURIComponent(code)}`;
}

function Invites() {
  const [invites, setInvites] = useState<Invite[]>([]);
  const [uses, setUses] = useState(1);
  const [days, setDays] = useState(7);
  const [link, setLink] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = async () => {
    try {
      setInvites(await call(() => api.GET("/api/v1/invites")));
    } catch (e) {
      setError(explain(e));
    }
  };
  useEffect(() => void load(), []);

  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setCopied(false);
    try {
      const invite = await call(() =>
        api.POST("/api/v1/invites", { body: { max_uses: uses, expires_in_secs: days * 86_400 } }),
      );
      setLink(inviteLink(invite.code));
      await load();
    } catch (err) {
      setError(explain(err));
    }
  };

  const revoke = async (id: number) => {
    try {
      await call(() => api.DELETE("/api/v1/invites/{id}", { params: { path: { id } } }));
      await load();
    } catch (err) {
      setError(explain(err));
    }
  };

  return (
    <section aria-labelledby="invites-title">
      <h2 id="invites-title">{t.invites}</h2>
      <form class="admin-form" onSubmit={create}>
        <label class="field">
          <span>{t.inviteUses}</span>
          <input type="number" min={1} max={1000} value={uses} onInput={(e) => setUses(Number(e.currentTarget.value))} />
        </label>
        <label class="field">
          <span>{t.inviteDays}</span>
          <input type="number" min={1} max={365} value={days} onInput={(e) => setDays(Number(e.currentTarget.value))} />
        </label>
        <button type="submit">{t.createInvite}</button>
      </form>
      {link ? (
        <div class="invite-link">
          <label class="field">
            <span>{t.inviteLink}</span>
            <input type="text" readOnly value={link} onFocus={(e) => e.currentTarget.select()} />
          </label>
          <button
            type="button"
            onClick={() =>
              void navigator.clipboard?.writeText(link).then(
                () => setCopied(true),
                () => setCopied(false),
              )
            }
          >
            {copied ? t.copied : t.copyLink}
          </button>
        </div>
      ) : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <ul class="admin-list">
        {invites.map((i) => (
          <li key={i.id}>
            <span>
              {t.inviteSummary(i.uses, i.max_uses, new Date(i.expires_at).toLocaleDateString())}
              {i.revoked ? ` · ${t.revoked}` : ""}
            </span>
            {i.revoked ? null : (
              <button type="button" onClick={() => void revoke(i.id)}>
                {t.revoke}
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Users() {
  const [users, setUsers] = useState<User[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    call(() => api.GET("/api/v1/users")).then(setUsers, (e) => setError(explain(e)));
  }, []);
  return (
    <section aria-labelledby="users-title">
      <h2 id="users-title">{t.users}</h2>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <ul class="admin-list">
        {users.map((u) => (
          <li key={u.id}>
            <span dir="auto">{u.display_name || u.username}</span>
            <span class="help">
              {u.username} · {u.role}
              {u.disabled ? ` · ${t.disabled}` : ""}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export default function AdminPage() {
  return (
    <div class="admin">
      <header class="room-header">
        <button type="button" class="back" onClick={() => navigate("/")}>
          <span aria-hidden="true">‹ </span>
          {t.back}
        </button>
        <h2>{t.administration}</h2>
      </header>
      <Invites />
      <Users />
      <Webhooks />
    </div>
  );
}
