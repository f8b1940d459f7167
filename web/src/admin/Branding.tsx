/**
 * Branding: the app name and accent colour (shown on the sign-in page, in the title and the
 * theme), and the icon (a square PNG; previewed before it is uploaded).
 */

import { useEffect, useState } from "preact/hooks";
import { t } from "../strings";
import { explain, getBranding, removeIcon, saveBranding, uploadIcon, type Branding } from "./state";

export function BrandingPage() {
  const [branding, setBranding] = useState<Branding | null>(null);
  const [name, setName] = useState("");
  const [color, setColor] = useState("#2e7d5b");
  const [file, setFile] = useState<File | null>(null);
  const [preview, setPreview] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const show = (b: Branding) => {
    setBranding(b);
    setName(b.app_name);
    setColor(b.accent_color);
  };
  useEffect(() => {
    getBranding().then(show, (e) => setError(explain(e)));
  }, []);
  // The preview's object URL lives as long as its file is chosen.
  useEffect(() => {
    if (!file) return setPreview(null);
    const url = URL.createObjectURL(file);
    setPreview(url);
    return () => URL.revokeObjectURL(url);
  }, [file]);

  const attempt = async (action: () => Promise<Branding>) => {
    setError(null);
    setNotice(null);
    try {
      show(await action());
      setNotice(t.saved);
    } catch (e) {
      setError(explain(e));
    }
  };

  const shownIcon = preview ?? branding?.icon?.url ?? null;
  return (
    <section aria-labelledby="branding-title">
      <h2 id="branding-title">{t.adminBranding}</h2>
      <form
        class="admin-form"
        onSubmit={(e) => {
          e.preventDefault();
          void attempt(() => saveBranding(name.trim(), color));
        }}
      >
        <label class="field">
          <span>{t.appNameLabel}</span>
          <input type="text" required maxLength={40} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label class="field color-field">
          <span>{t.accentColor}</span>
          <input type="color" value={color} onInput={(e) => setColor(e.currentTarget.value)} />
        </label>
        <button type="submit">{t.saveBranding}</button>
      </form>
      <form
        class="admin-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (file) void attempt(() => uploadIcon(file)).then(() => setFile(null));
        }}
      >
        <label class="field">
          <span>{t.icon}</span>
          <input type="file" accept="image/png" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
        </label>
        <p class="help">{t.iconHelp}</p>
        {shownIcon ? <img class="icon-preview" src={shownIcon} alt={t.iconPreview} width={96} height={96} /> : null}
        <div class="admin-actions">
          <button type="submit" disabled={!file}>
            {t.uploadIcon}
          </button>
          {branding?.icon && !file ? (
            <button type="button" onClick={() => void attempt(removeIcon)}>
              {t.removeIcon}
            </button>
          ) : null}
        </div>
      </form>
      <p role="status">{notice}</p>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
    </section>
  );
}
