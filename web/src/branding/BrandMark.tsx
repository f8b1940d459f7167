/** The server's name with its uploaded icon, at the top of the sign-in and first-run pages. */

import { appIcon, appName } from "./state";

export function BrandMark() {
  return (
    <p class="brand">
      {appIcon.value ? <img src={appIcon.value} alt="" width={48} height={48} /> : null}
      <span>{appName.value}</span>
    </p>
  );
}
