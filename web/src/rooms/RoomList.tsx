/** The room list: a navigation landmark named "Rooms", with room creation and public rooms. */

import { useState } from "preact/hooks";
import { ApiError, NetworkError } from "../api/client";
import { askForNotifications, canAskForNotifications } from "../notify/notify";
import { participantsIn } from "../calls/state";
import { SearchBox } from "../search/SearchBox";
import { focusMessage } from "../timeline/state";
import { openRoom, openRoomId } from "../app/router";
import { t } from "../strings";
import { createRoom, joinableRooms, joinedRooms, joinRoom, roomsLoaded } from "./state";

function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  return e instanceof ApiError ? e.message : String(e);
}

export function RoomList({ myUserId }: { myUserId: number }) {
  const [name, setName] = useState("");
  const [isPrivate, setPrivate] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const current = openRoomId.value;

  const onCreate = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const room = await createRoom(name.trim(), isPrivate);
      setName("");
      openRoom(room.id);
    } catch (err) {
      setError(explain(err));
    }
  };

  const onJoin = async (roomId: number) => {
    setError(null);
    try {
      await joinRoom(roomId, myUserId);
      openRoom(roomId);
    } catch (err) {
      setError(explain(err));
    }
  };

  return (
    <nav class="rooms" aria-label={t.rooms}>
      {canAskForNotifications.value ? (
        <button type="button" class="notify" onClick={() => void askForNotifications()}>
          {t.turnOnNotifications}
        </button>
      ) : null}
      <SearchBox />
      <h2>{t.yourRooms}</h2>
      {roomsLoaded.value && joinedRooms.value.length === 0 ? <p class="help">{t.noRooms}</p> : null}
      <ul class="room-links">
        {joinedRooms.value.map((room) => (
          <li key={room.id}>
            <a
              href={`/rooms/${room.id}`}
              aria-current={room.id === current ? "page" : undefined}
              onClick={(e) => {
                if (e.ctrlKey || e.metaKey || e.shiftKey) return;
                e.preventDefault();
                focusMessage.value = null;
                openRoom(room.id);
              }}
            >
              <span class="room-name">{room.name}</span>
              {room.topic ? <span class="room-topic">{room.topic}</span> : null}
              {participantsIn(room.id).length > 0 ? (
                <span class="call-marker">{t.inCallCount(participantsIn(room.id).length)}</span>
              ) : null}
            </a>
          </li>
        ))}
      </ul>
      {joinableRooms.value.length > 0 ? (
        <>
          <h2>{t.publicRooms}</h2>
          <ul class="room-links">
            {joinableRooms.value.map((room) => (
              <li key={room.id} class="joinable">
                <span class="room-name">{room.name}</span>
                <button type="button" aria-label={t.joinRoom(room.name)} onClick={() => onJoin(room.id)}>
                  {t.join}
                </button>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <form class="new-room" onSubmit={onCreate}>
        <h2>{t.newRoom}</h2>
        <label class="field">
          <span>{t.roomName}</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
        </label>
        <label class="check">
          <input type="checkbox" checked={isPrivate} onChange={(e) => setPrivate(e.currentTarget.checked)} />
          <span>{t.privateRoom}</span>
        </label>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit">{t.createRoom}</button>
      </form>
    </nav>
  );
}
