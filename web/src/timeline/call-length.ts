/** How long a call lasted, as the "Call ended · 12 min" entry says it. */

import { t } from "../strings";

export function callLength(secs: number): string {
  if (secs < 60) return t.callUnderAMinute;
  const minutes = Math.round(secs / 60);
  return minutes < 60 ? t.callMinutes(minutes) : t.callHours(Math.floor(minutes / 60), minutes % 60);
}
