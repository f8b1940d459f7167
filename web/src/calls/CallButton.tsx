/**
 * The room header's call area, the only part of calls in the main bundle: who is in the call
 * now (from calls/state.ts) and "Join call". Pressing it loads the calls chunk (CallPanel and
 * livekit-client) and shows the call below the room's header.
 */

import type { FunctionComponent } from "preact";
import { useState } from "preact/hooks";
import { t } from "../strings";
import { participantsIn } from "./state";
import "./calls.css";

type Panel = FunctionComponent<{ roomId: number; onLeave: () => void }>;

/** The names of the people in the room's call, shown whether or not we are in it. */
function InTheCall({ roomId }: { roomId: number }) {
  const people = participantsIn(roomId);
  if (people.length === 0) return null;
  return (
    <div class="call-people">
      <span class="call-dot" aria-hidden="true" />
      <span id={`in-call-${roomId}`}>{t.inTheCall(people.length)}</span>
      <ul aria-labelledby={`in-call-${roomId}`}>
        {people.map((p) => (
          <li key={p.identity}>{p.name || p.identity}</li>
        ))}
      </ul>
    </div>
  );
}

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
  let control;
  if (panel === null) {
    control = (
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
  } else if (panel === "loading") {
    control = <p role="status">{t.loadingCall}</p>;
  } else {
    const { Component } = panel;
    control = (
      <div class="call-slot">
        <Component roomId={roomId} onLeave={() => setPanel(null)} />
      </div>
    );
  }
  return (
    <>
      <InTheCall roomId={roomId} />
      {control}
    </>
  );
}
