/**
 * A room's settings: a region named "Room settings". Moderators and admins change the name,
 * topic, visibility and whether guests may publish in calls; everyone else reads the topic.
 * Everyone may leave the room (after a confirmation). There is no way to delete a room: the
 * API has none.
 */

import { useEffect, useState } from "preact/hooks";
import type { Room } from "../api/client";
import { t } from "../strings";
import { explain, PanelHeader } from "./MembersPanel";
import { canModerate, leaveRoom, updateRoom } from "./state";
import "./members.css";

function SettingsForm({ room }: { room: Room }) {
  const [name, setName] = useState(room.name);
  const [topic, setTopic] = useState(room.topic);
  const [isPrivate, setPrivate] = useState(room.private);
  const [guestsMayPublish, setGuestsMayPublish] = useState(room.guests_may_publish);
  const [status, setStatus] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // Someone else's change arrives live: the form follows it (an unsaved edit is replaced, as
  // the server's version is what everyone now sees).
  useEffect(() => {
    setName(room.name);
    setTopic(room.topic);
    setPrivate(room.private);
    setGuestsMayPublish(room.guests_may_publish);
  }, [room.name, room.topic, room.private, room.guests_may_publish]);

  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setStatus("");
    try {
      await updateRoom(room.id, { name: name.trim(), topic, private: isPrivate, guests_may_publish: guestsMayPublish });
      setStatus(t.saved);
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="settings-form" onSubmit={save}>
      <label class="field">
        <span>{t.roomName}</span>
        <input value={name} required maxLength={100} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>{t.topic}</span>
        <textarea value={topic} rows={3} maxLength={1000} onInput={(e) => setTopic(e.currentTarget.value)} />
      </label>
      <fieldset>
        <legend>{t.visibility}</legend>
        <label class="check">
          <input type="radio" name="visibility" checked={!isPrivate} onChange={() => setPrivate(false)} />
          <span>{t.publicRoom}</span>
        </label>
        <label class="check">
          <input type="radio" name="visibility" checked={isPrivate} onChange={() => setPrivate(true)} />
          <span>{t.privateRoomOption}</span>
        </label>
      </fieldset>
      <label class="check">
        <input
          type="checkbox"
          checked={guestsMayPublish}
          onChange={(e) => setGuestsMayPublish(e.currentTarget.checked)}
        />
        <span>{t.guestsMayPublish}</span>
      </label>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <p role="status" class="help">
        {status}
      </p>
      <button type="submit" disabled={busy}>
        {t.saveSettings}
      </button>
    </form>
  );
}

function LeaveRoom({ room, myUserId, onLeft }: { room: Room; myUserId: number; onLeft: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const leave = async () => {
    setError(null);
    try {
      await leaveRoom(room.id, myUserId);
      onLeft();
    } catch (err) {
      setError(explain(err));
    }
  };
  return (
    <div class="leave">
      {confirming ? (
        <div class="actions confirm" role="group" aria-label={t.confirmLeave}>
          <span>{t.confirmLeave}</span>
          <button type="button" class="danger" onClick={() => void leave()}>
            {t.leave}
          </button>
          <button type="button" onClick={() => setConfirming(false)}>
            {t.cancel}
          </button>
        </div>
      ) : (
        <button type="button" class="danger" onClick={() => setConfirming(true)}>
          {t.leaveRoom}
        </button>
      )}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}

export function RoomSettings({
  room,
  myUserId,
  onClose,
  onLeft,
}: {
  room: Room | undefined;
  myUserId: number;
  onClose: () => void;
  onLeft: () => void;
}) {
  return (
    <section class="side-panel" aria-labelledby="settings-title">
      <PanelHeader id="settings-title" title={t.roomSettings} onClose={onClose} />
      <div class="panel-body">
        {room && canModerate(room) ? (
          <SettingsForm room={room} />
        ) : (
          <>
            <h3>{t.topic}</h3>
            <p class="topic-text" dir="auto">
              {room?.topic ? room.topic : t.noTopic}
            </p>
          </>
        )}
        {room?.my_role !== undefined ? <LeaveRoom room={room} myUserId={myUserId} onLeft={onLeft} /> : null}
      </div>
    </section>
  );
}
