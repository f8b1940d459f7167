/** Invite links: create one (uses, days), copy it or show its QR code, revoke. */

import { useEffect, useState } from "preact/hooks";
import { t } from "../strings";
import { CopyField } from "./Copy";
import { Qr } from "./Qr";
import { createInvite, explain, listInvites, revokeInvite, type Invite } from "./state";

function inviteLink(code: string): string {
  return `${location.origin}/invite/${encodeURIComponent(code)}`;
}

export function Invites() {
  const [invites, setInvites] = useState<Invite[]>([]);
  const [uses, setUses] = useState(1);
  const [days, setDays] = useState(7);
  const [link, setLink] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = async () => {
    try {
      setInvites(await listInvites());
    } catch (e) {
      setError(explain(e));
    }
  };
  useEffect(() => void load(), []);

  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const invite = await createInvite(uses, days);
      setLink(inviteLink(invite.code));
      await load();
    } catch (err) {
      setError(explain(err));
    }
  };

  const revoke = async (id: number) => {
    try {
      await revokeInvite(id);
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
          <CopyField key={link} label={t.inviteLink} value={link} copyLabel={t.copyLink} />
          <Qr text={link} label={t.inviteQr} />
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
