/**
 * A menu button (the WAI-ARIA menu button pattern) for the few commands that do not earn a
 * place on a phone's screen: a message's Edit and Delete, a room's Members and Room settings,
 * the app's Theme and Sign out. Opening it focuses the first item; arrows, Home and End move;
 * Escape closes and puts the focus back on the button; Tab or a tap elsewhere closes it.
 * It only shows commands: what they do is up to the caller.
 */

import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import "./menu.css";

export interface MenuItem {
  label: string;
  run: () => void;
  /** The item is a link to this path (so it can still be opened in a new tab). */
  href?: string;
  /** The menu stays open after it: an item that steps through values (the theme). */
  keepOpen?: boolean;
}

function shownItems(menu: HTMLElement | null): HTMLElement[] {
  return Array.from(menu?.querySelectorAll<HTMLElement>("[role=menuitem]") ?? []);
}

export function MenuButton({
  items,
  menuId,
  label,
  icon,
  class: className = "",
}: {
  items: MenuItem[];
  /** Unique on the page: the menu's id, for the button's aria-controls. */
  menuId: string;
  /** The button's accessible name (and the menu's). */
  label: string;
  /** What the button shows instead of its name (the name stays for screen readers). */
  icon: ComponentChildren;
  /** More classes for the wrapper (where it sits, when it shows). */
  class?: string;
}) {
  const [open, setOpen] = useState(false);
  const wrapper = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const menu = useRef<HTMLUListElement>(null);

  // Before the menu is painted, so no key pressed as it appears goes to the button.
  useLayoutEffect(() => {
    if (open) shownItems(menu.current)[0]?.focus();
  }, [open]);

  useEffect(() => {
    if (!open) return;
    // A tap or click anywhere else closes the menu.
    const outside = (e: PointerEvent) => {
      if (!wrapper.current?.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("pointerdown", outside);
    return () => document.removeEventListener("pointerdown", outside);
  }, [open]);

  const onKeyDown = (e: KeyboardEvent) => {
    const entries = shownItems(menu.current);
    const at = entries.indexOf(document.activeElement as HTMLElement);
    const move = (to: number) => {
      e.preventDefault();
      entries[(to + entries.length) % entries.length]?.focus();
    };
    if (e.key === "Escape") {
      e.preventDefault();
      setOpen(false);
      button.current?.focus();
    } else if (e.key === "ArrowDown") move(at + 1);
    else if (e.key === "ArrowUp") move(at - 1);
    else if (e.key === "Home") move(0);
    else if (e.key === "End") move(entries.length - 1);
    else if (e.key === "Tab") setOpen(false);
  };

  const choose = (item: MenuItem, e: Event) => {
    if (item.href) e.preventDefault();
    if (!item.keepOpen) {
      setOpen(false);
      // Back on the button first: a command that moves the focus (an editor, a panel) then
      // takes it from there, and one that does not leaves it somewhere sensible.
      button.current?.focus();
    }
    item.run();
  };

  return (
    <div class={`menu ${className}`} ref={wrapper}>
      <button
        ref={button}
        type="button"
        class="menu-button"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={open ? menuId : undefined}
        onClick={() => setOpen(!open)}
      >
        <span aria-hidden="true">{icon}</span>
        <span class="visually-hidden">{label}</span>
      </button>
      {open ? (
        <ul class="menu-list" role="menu" id={menuId} aria-label={label} ref={menu} onKeyDown={onKeyDown}>
          {items.map((item, i) => (
            // By place, not label: an item that changes its label (the theme) keeps the focus.
            <li key={i} role="none">
              {item.href ? (
                <a role="menuitem" tabIndex={-1} href={item.href} onClick={(e) => choose(item, e)}>
                  {item.label}
                </a>
              ) : (
                <button type="button" role="menuitem" tabIndex={-1} onClick={(e) => choose(item, e)}>
                  {item.label}
                </button>
              )}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
