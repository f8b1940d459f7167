/**
 * The call parts of the main bundle: the room header's call area (who is in the call now, from
 * calls/state.ts, and "Join call") and the dock above the screens that holds the call one is
 * in. Pressing "Join call" loads the calls chunk (CallPanel and livekit-client); the dock keeps
 * the call while the person moves between rooms and the room list.
 */

import { useEffect, useState } from "preact/hooks";
import { CallIcon } from "../app/icons";
import { roomById } from "../rooms/state";
import { t } from "../strings";
import { activeCall, participantsIn } from "./state";
import "./calls.css";

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
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const join = async () => {
    setLoading(true);
    setError(null);
    try {
      const module = await import("./CallPanel");
      // Joining here leaves a call in another room: one call at a time.
      activeCall.value = { roomId, Panel: module.default };
    } catch {
      setError(t.networkError);
    } finally {
      setLoading(false);
    }
  };
  const inThisCall = activeCall.value?.roomId === roomId;
  return (
    <>
      <InTheCall roomId={roomId} />
      {inThisCall ? null : loading ? (
        <p role="status">{t.loadingCall}</p>
      ) : (
        <button type="button" class="join-call" onClick={() => void join()}>
          <CallIcon />
          <span class="join-call-label">{t.joinCall}</span>
        </button>
      )}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
    </>
  );
}

/** The call one is in, above the room list and the room (rendered by the signed-in shell). */
export function CallDock() {
  // Signing out unmounts the shell: the call ends and is not rejoined at the next sign-in.
  useEffect(
    () => () => {
      activeCall.value = null;
    },
    [],
  );
  const current = activeCall.value;
  if (!current) return null;
  const { Panel, roomId } = current;
  return (
    <div class="call-dock">
      <Panel
        key={roomId}
        roomId={roomId}
        roomName={roomById(roomId)?.name ?? ""}
        onLeave={() => {
          activeCall.value = null;
        }}
      />
    </div>
  );
}
