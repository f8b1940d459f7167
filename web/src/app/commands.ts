/**
 * The app's own commands (Account, Administration for admins, the theme, Sign out): buttons in the wide
 * layout's header, menu items on a phone, the same commands and labels in both.
 */

import { session, signOut } from "../session/session";
import { t } from "../strings";
import { cycleTheme, theme } from "../theme/theme";
import type { MenuItem } from "./Menu";
import { navigate } from "./router";

/** "Theme: system" and so on: what the theme button shows and does next. */
export function themeLabel(): string {
  return theme.value === "system" ? t.themeSystem : theme.value === "dark" ? t.themeDark : t.themeLight;
}

export function appCommands(): MenuItem[] {
  const s = session.value;
  const items: MenuItem[] = [{ label: t.account, href: "/account", run: () => navigate("/account") }];
  if (s.status === "signed_in" && s.user.role === "admin") {
    items.push({ label: t.administration, href: "/admin", run: () => navigate("/admin") });
  }
  items.push({ label: themeLabel(), run: cycleTheme, keepOpen: true });
  items.push({ label: t.signOut, run: () => void signOut() });
  return items;
}
