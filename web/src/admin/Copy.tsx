/** A read-only text field with a copy button (invite links, API key secrets). */

import { useState } from "preact/hooks";
import { t } from "../strings";

export function CopyField({ label, value, copyLabel, help }: { label: string; value: string; copyLabel: string; help?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="copy-field">
      <label class="field">
        <span>{label}</span>
        <input type="text" readOnly value={value} onFocus={(e) => e.currentTarget.select()} />
      </label>
      {help ? <p class="help">{help}</p> : null}
      <button
        type="button"
        onClick={() =>
          void navigator.clipboard?.writeText(value).then(
            () => setCopied(true),
            () => setCopied(false),
          )
        }
      >
        {copied ? t.copied : copyLabel}
      </button>
    </div>
  );
}
