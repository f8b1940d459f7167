/**
 * The first-run, sign-in and invite sign-up forms. Each labels its fields as tests and screen
 * readers find them ("Username", "Password", ...), shows a refusal in words, and keeps what
 * was typed when the server refuses it.
 */

import { useState } from "preact/hooks";
import { ApiError, NetworkError } from "../api/client";
import { inviteCode as inviteFromPath, navigate } from "../app/router";
import { BrandMark } from "../branding/BrandMark";
import { createAdmin, register, signIn } from "../session/session";
import { t } from "../strings";

function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  if (e instanceof ApiError) return e.code === "invalid_credentials" ? t.badCredentials : e.message;
  return String(e);
}

function useSubmit(action: () => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const onSubmit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(explain(err));
      setBusy(false);
    }
  };
  return { busy, error, onSubmit };
}

function Field(props: { label: string; value: string; set: (v: string) => void; secret?: boolean; autocomplete?: string }) {
  const common = {
    value: props.value,
    onInput: (e: Event) => props.set((e.currentTarget as HTMLInputElement).value),
    autocomplete: props.autocomplete,
    required: true,
  };
  return (
    <label class="field">
      <span>{props.label}</span>
      {props.secret ? (
        <input type="password" {...common} />
      ) : (
        <input type="text" autocapitalize="off" spellcheck={false} {...common} />
      )}
    </label>
  );
}

function Refusal({ error }: { error: string | null }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

export function SetupForm() {
  const [code, setCode] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const { busy, error, onSubmit } = useSubmit(async () => {
    await createAdmin(code.trim(), username.trim(), password);
    navigate("/", true);
  });
  return (
    <main class="card-page">
      <BrandMark />
      <form class="card" onSubmit={onSubmit}>
        <h1>{t.setupTitle}</h1>
        <p>{t.setupIntro}</p>
        <Field label={t.setupCode} value={code} set={setCode} autocomplete="one-time-code" />
        <p class="help">
          {t.setupCodeHelp.map((part, i) => (i % 2 === 1 ? <code key={i}>{part}</code> : part))}
        </p>
        <Field label={t.username} value={username} set={setUsername} autocomplete="username" />
        <Field label={t.password} value={password} set={setPassword} secret autocomplete="new-password" />
        <Refusal error={error} />
        <button type="submit" disabled={busy}>
          {t.createAdmin}
        </button>
      </form>
    </main>
  );
}

export function SignInForm({ notice }: { notice?: string }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const { busy, error, onSubmit } = useSubmit(async () => {
    await signIn(username.trim(), password);
    navigate(location.pathname.startsWith("/invite/") ? "/" : location.pathname, true);
  });
  return (
    <main class="card-page">
      <BrandMark />
      <form class="card" onSubmit={onSubmit}>
        <h1>{t.signInTitle}</h1>
        {notice ? <p class="error">{notice}</p> : null}
        <Field label={t.username} value={username} set={setUsername} autocomplete="username" />
        <Field label={t.password} value={password} set={setPassword} secret autocomplete="current-password" />
        <Refusal error={error} />
        <button type="submit" disabled={busy}>
          {t.signIn}
        </button>
        <p class="help">{t.haveInvite}</p>
      </form>
    </main>
  );
}

export function SignUpForm() {
  const [code, setCode] = useState(inviteFromPath.value ?? "");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const { busy, error, onSubmit } = useSubmit(async () => {
    await register(code.trim(), username.trim(), password);
    navigate("/", true);
  });
  return (
    <main class="card-page">
      <BrandMark />
      <form class="card" onSubmit={onSubmit}>
        <h1>{t.signUpTitle}</h1>
        <Field label={t.inviteCode} value={code} set={setCode} autocomplete="off" />
        <Field label={t.username} value={username} set={setUsername} autocomplete="username" />
        <Field label={t.password} value={password} set={setPassword} secret autocomplete="new-password" />
        <Refusal error={error} />
        <button type="submit" disabled={busy}>
          {t.signUp}
        </button>
      </form>
    </main>
  );
}
