/**
 * "Join call": the only part of calls in the main bundle. Pressing it loads the calls chunk
 * (CallPanel and livekit-client) and shows the call below the room's header.
 */

import type { FunctionComponent } from "preact";
import { useState } from "preact/hooks";
import { t } from "../strings";

type Panel = FunctionComponent<{ roomId: number; onLeave: () => void }>;

export function CallButton({ roomId }: { roomId: number }) {
  const [panel, setPanel] = useState<{ Component: Panel } | "loading" | null>(null);
  const [error, setError] = useState<string | null>(null);
  const join = async () => {
    setPanel("loading");
    setError(null);
    try {
      const module = await import("./CallPanel");
      setPanel({ Component: module.default });
    } catch {
      setPanel(null);
      setError(t.networkError);
    }
  };
  if (panel === null) {
    return (
      <>
        <button type="button" class="join-call" onClick={() => void join()}>
          {t.joinCall}
        </button>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
      </>
    );
  }
  if (panel === "loading") return <p role="status">{t.loadingCall}</p>;
  const { Component } = panel;
  return (
    <div class="call-slot">
      <Component roomId={roomId} onLeave={() => setPanel(null)} />
    </div>
  );
}
