/**
 * The person's own account (`/account`): their display name, which everyone sharing a room
 * with them sees change at once, and their password. Roost's own refusals are shown as it
 * words them (a name it cannot show, a wrong current password, a weak new one); the password
 * form says beforehand that a change signs out every other device, since Roost does that.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, NetworkError } from "../api/client";
import { navigate } from "../app/router";
import { changePassword, renameMe, session } from "../session/session";
import { t } from "../strings";
import "./account.css";

function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  if (e instanceof ApiError) return e.message;
  return String(e);
}

/** What a form last heard: a confirmation (a status) or a refusal (an alert). */
type Outcome = { ok: true; text: string } | { ok: false; text: string } | null;

function OutcomeLine({ outcome }: { outcome: Outcome }) {
  const line = useRef<HTMLDivElement>(null);
  // On a phone the answer lands below the fold, under the button just pressed.
  useEffect(() => {
    if (outcome) line.current?.scrollIntoView({ block: "nearest" });
  }, [outcome]);
  return (
    <div ref={line}>
      <p role="status">{outcome?.ok ? outcome.text : ""}</p>
      {outcome && !outcome.ok ? (
        <p class="error" role="alert">
          {outcome.text}
        </p>
      ) : null}
    </div>
  );
}

function DisplayNameForm({ current }: { current: string }) {
  const [name, setName] = useState(current);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome>(null);
  const onSubmit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setOutcome(null);
    try {
      const user = await renameMe(name);
      setName(user.display_name);
      setOutcome({ ok: true, text: t.displayNameSaved(user.display_name) });
    } catch (err) {
      setOutcome({ ok: false, text: explain(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="account-part" aria-labelledby="account-name-title">
      <h3 id="account-name-title">{t.displayNameTitle}</h3>
      <p>{t.displayNameNow(current)}</p>
      <form class="account-form" onSubmit={onSubmit}>
        <label class="field">
          <span>{t.displayNameLabel}</span>
          <input
            type="text"
            maxLength={64}
            autocomplete="nickname"
            aria-describedby="account-name-help"
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </label>
        <p class="help" id="account-name-help">
          {t.displayNameHelp}
        </p>
        <button type="submit" disabled={busy}>
          {t.saveDisplayName}
        </button>
      </form>
      <OutcomeLine outcome={outcome} />
    </section>
  );
}

function PasswordForm() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome>(null);
  const onSubmit = async (e: Event) => {
    e.preventDefault();
    setOutcome(null);
    if (next !== again) {
      setOutcome({ ok: false, text: t.passwordsDiffer });
      return;
    }
    setBusy(true);
    try {
      await changePassword(current, next);
      setCurrent("");
      setNext("");
      setAgain("");
      setOutcome({ ok: true, text: t.passwordChanged });
    } catch (err) {
      setOutcome({ ok: false, text: explain(err) });
    } finally {
      setBusy(false);
    }
  };
  const secret = (value: string, set: (v: string) => void, autocomplete: string, describedBy?: string) => ({
    type: "password" as const,
    required: true,
    autocomplete,
    "aria-describedby": describedBy,
    value,
    onInput: (e: Event) => set((e.currentTarget as HTMLInputElement).value),
  });
  return (
    <section class="account-part" aria-labelledby="account-password-title">
      <h3 id="account-password-title">{t.passwordTitle}</h3>
      <p>{t.passwordSignsOut}</p>
      <form class="account-form" onSubmit={onSubmit}>
        <label class="field">
          <span>{t.currentPassword}</span>
          <input {...secret(current, setCurrent, "current-password")} />
        </label>
        <label class="field">
          <span>{t.newPassword}</span>
          <input {...secret(next, setNext, "new-password", "account-password-help")} />
        </label>
        <label class="field">
          <span>{t.newPasswordAgain}</span>
          <input {...secret(again, setAgain, "new-password")} />
        </label>
        <p class="help" id="account-password-help">
          {t.newPasswordHelp}
        </p>
        <button type="submit" disabled={busy}>
          {t.changePassword}
        </button>
      </form>
      <OutcomeLine outcome={outcome} />
    </section>
  );
}

export function AccountPage() {
  const s = session.value;
  if (s.status !== "signed_in") return null;
  return (
    <div class="account">
      <header class="room-header">
        <button type="button" class="back" onClick={() => navigate("/")}>
          <span aria-hidden="true">‹ </span>
          {t.back}
        </button>
        <h2>{t.accountTitle}</h2>
      </header>
      <div class="account-page">
        <p class="help">{t.accountSignedInAs(s.user.username)}</p>
        <DisplayNameForm current={s.user.display_name} />
        <PasswordForm />
      </div>
    </div>
  );
}
