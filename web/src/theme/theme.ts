/**
 * Light and dark: follow the system unless the person chose one with the toggle (kept in
 * localStorage, which holds nothing else). The CSS reads `data-theme` on <html>.
 */

import { signal } from "@preact/signals";

export type ThemeChoice = "system" | "light" | "dark";

const KEY = "roost-theme";

function stored(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    return v === "light" || v === "dark" ? v : "system";
  } catch {
    return "system";
  }
}

export const theme = signal<ThemeChoice>(stored());

function apply(choice: ThemeChoice): void {
  if (choice === "system") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.setAttribute("data-theme", choice);
}

apply(theme.value);

/** system → dark → light → system. */
export function cycleTheme(): void {
  const next: ThemeChoice = theme.value === "system" ? "dark" : theme.value === "dark" ? "light" : "system";
  theme.value = next;
  apply(next);
  try {
    if (next === "system") localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, next);
  } catch {
    // Storage refused (private mode): the choice lasts for this page only.
  }
}
