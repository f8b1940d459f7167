/** The offline banner (showing the snapshot) and the new-version hint, above everything else. */

import { t } from "../strings";
import { applyUpdate, updateReady } from "./register";
import { unreachable } from "./state";
import "./offline.css";

export function OfflineBanner() {
  if (!unreachable.value) return null;
  return (
    <p class="offline-banner" role="status">
      {t.outOfReach}
    </p>
  );
}

export function UpdateHint() {
  if (!updateReady.value) return null;
  return (
    <p class="update-hint" role="status">
      <span>{t.newVersion}</span>
      <button type="button" onClick={applyUpdate}>
        {t.reloadForUpdate}
      </button>
    </p>
  );
}
