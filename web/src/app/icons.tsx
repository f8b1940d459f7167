/**
 * The few icons of the app bar, drawn in the text's colour. Each is decoration only: the
 * control it sits in carries its name as text (visually hidden where only the icon shows).
 */

const common = {
  width: 22,
  height: 22,
  viewBox: "0 0 24 24",
  fill: "none",
  stroke: "currentColor",
  "stroke-width": 2,
  "stroke-linecap": "round",
  "stroke-linejoin": "round",
  "aria-hidden": "true",
  focusable: "false",
} as const;

/** Three short lines: the menu. */
export function MenuIcon() {
  return (
    <svg {...common}>
      <path d="M4 6h16M4 12h16M4 18h16" />
    </svg>
  );
}

/** A chevron pointing back (flipped for right-to-left pages by CSS). */
export function BackIcon() {
  return (
    <svg {...common} class="icon-back">
      <path d="M15 5l-7 7 7 7" />
    </svg>
  );
}

/** A handset: calls. */
export function CallIcon() {
  return (
    <svg {...common}>
      <path d="M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2" />
    </svg>
  );
}
