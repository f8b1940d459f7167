/**
 * The admin's API keys (for bots and scripts): create one with scopes, its secret shown once
 * with a copy button; rotate in two steps (Rotate asks, Confirm rotation shows the new secret
 * and retires the old one at that moment); revoke.
 */

import { useEffect, useState } from "preact/hooks";
import { t } from "../strings";
import { CopyField } from "./Copy";
import {
  confirmRotation,
  createKey,
  explain,
  listKeys,
  localTime,
  revokeKey,
  startRotation,
  type ApiKey,
  type Scope,
} from "./state";

const SCOPES: Scope[] = ["read", "write", "admin"];

interface Rotation {
  id: number;
  name: string;
  token: string;
}

export function ApiKeys() {
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Scope[]>(["read"]);
  const [secret, setSecret] = useState<string | null>(null);
  const [rotation, setRotation] = useState<Rotation | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = async () => {
    try {
      setKeys(await listKeys());
    } catch (e) {
      setError(explain(e));
    }
  };
  useEffect(() => void load(), []);

  const attempt = async (action: () => Promise<void>) => {
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(explain(e));
    }
  };

  const create = (e: Event) => {
    e.preventDefault();
    void attempt(async () => {
      const created = await createKey(name.trim(), scopes);
      setSecret(created.key);
      setRotation(null);
      setName("");
      await load();
    });
  };

  const toggle = (scope: Scope, on: boolean) =>
    setScopes((now) => (on ? [...now.filter((s) => s !== scope), scope] : now.filter((s) => s !== scope)));

  return (
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">{t.adminApiKeys}</h2>
      <form class="admin-form" onSubmit={create}>
        <label class="field">
          <span>{t.keyName}</span>
          <input type="text" required maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <fieldset class="scopes">
          <legend>{t.keyScopes}</legend>
          {SCOPES.map((s) => (
            <label key={s} class="check">
              <input type="checkbox" checked={scopes.includes(s)} onChange={(e) => toggle(s, e.currentTarget.checked)} />
              <span>{t.scopeNames[s]}</span>
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={scopes.length === 0}>
          {t.createApiKey}
        </button>
      </form>
      {secret ? (
        <CopyField key={secret} label={t.keySecret} value={secret} copyLabel={t.copySecret} help={t.keySecretHelp} />
      ) : null}
      {rotation ? (
        <div class="rotation" role="group" aria-label={t.rotate}>
          <p>{t.rotateExplain(rotation.name)}</p>
          <div class="admin-actions">
            <button
              type="button"
              class="primary"
              onClick={() =>
                void attempt(async () => {
                  const rotated = await confirmRotation(rotation.id, rotation.token);
                  setRotation(null);
                  setSecret(rotated.key);
                  await load();
                })
              }
            >
              {t.confirmRotation}
            </button>
            <button type="button" onClick={() => setRotation(null)}>
              {t.cancel}
            </button>
          </div>
        </div>
      ) : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {keys.length === 0 ? <p class="help">{t.noKeys}</p> : null}
      <ul class="admin-list" aria-label={t.adminApiKeys}>
        {keys.map((k) => (
          <li key={k.id}>
            <span class="admin-item">
              <span dir="auto">{k.name}</span>
              <span class="help">
                {t.keySummary(k.prefix, k.last_four, k.scopes.join(", "))} · {t.keyCreated(localTime(k.created_at))} ·{" "}
                {t.keyUsed(k.last_used_at ? localTime(k.last_used_at) : null)}
              </span>
            </span>
            <span class="admin-actions">
              <button
                type="button"
                onClick={() =>
                  void attempt(async () => {
                    const started = await startRotation(k.id);
                    setSecret(null);
                    setRotation({ id: k.id, name: k.name, token: started.rotation_token });
                  })
                }
              >
                {t.rotate}
              </button>
              <button
                type="button"
                onClick={() =>
                  void attempt(async () => {
                    await revokeKey(k.id);
                    if (rotation?.id === k.id) setRotation(null);
                    await load();
                  })
                }
              >
                {t.revoke}
              </button>
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}
