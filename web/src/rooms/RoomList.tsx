/**
 * The room list: a navigation landmark named "Rooms" with the person's rooms, their direct
 * messages (a list named "Direct messages", each named after the other person, and "New
 * message"), public rooms to join and room creation. A room with unread messages is bold and
 * shows how many. Each direct message has a button "Hide conversation with NAME" beside its
 * link (always shown, so it is there on a phone and in the tab order); public rooms appear and
 * go live, as the gateway tells of them. A room (or direct message) with a call the person
 * missed says "Missed call, TIME" in its link, with a phone icon, until they open it.
 */

import type { ComponentChildren } from "preact";
import { useRef, useState } from "preact/hooks";
import { ApiError, NetworkError, type Room } from "../api/client";
import { askForNotifications, canAskForNotifications } from "../notify/notify";
import { participantsIn } from "../calls/state";
import { SearchBox } from "../search/SearchBox";
import { focusMessage } from "../timeline/state";
import { navigate, openRoom, openRoomId } from "../app/router";
import { t } from "../strings";
import { NewMessage } from "./NewMessage";
import {
  createRoom,
  directMessages,
  hideDm,
  joinableRooms,
  joinedRooms,
  joinRoom,
  roomLabel,
  roomsLoaded,
} from "./state";
import "./rooms.css";

function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  return e instanceof ApiError ? e.message : String(e);
}

/** A handset, drawn here rather than taken from an emoji font a device may not have. */
function PhoneIcon() {
  return (
    <svg class="phone-icon" viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">
      <path
        d="M3.6 1.5l2.2 2.6-1.3 1.6c.8 1.8 2.2 3.2 4 4l1.6-1.3 2.6 2.2-1.4 2.2C6.4 12.4 3.6 9.6 1.4 4.9z"
        fill="currentColor"
      />
    </svg>
  );
}

/** When a missed call was: its time today, its day otherwise. */
function missedWhen(iso: string): string {
  const at = new Date(iso);
  const today = new Date().toDateString() === at.toDateString();
  return today
    ? at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })
    : at.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

function RoomLink({ room, current, children }: { room: Room; current: number | null; children?: ComponentChildren }) {
  const unread = room.unread ?? 0;
  return (
    <li class={children ? "with-action" : undefined}>
      <a
        href={`/rooms/${room.id}`}
        class={`${unread > 0 ? "unread has-badge" : ""}`}
        aria-current={room.id === current ? "page" : undefined}
        onClick={(e) => {
          if (e.ctrlKey || e.metaKey || e.shiftKey) return;
          e.preventDefault();
          focusMessage.value = null;
          openRoom(room.id);
        }}
      >
        <span class="room-name" dir="auto">
          {roomLabel(room)}
        </span>
        {unread > 0 ? (
          <span class="badge">
            {unread >= 999 ? "999+" : unread}
            <span class="visually-hidden"> {t.unread}</span>
          </span>
        ) : null}
        {room.topic ? <span class="room-topic">{room.topic}</span> : null}
        {room.missed_call_at ? (
          <span class="missed-call">
            <PhoneIcon />
            {t.missedCall(missedWhen(room.missed_call_at))}
          </span>
        ) : null}
        {participantsIn(room.id).length > 0 ? (
          <span class="call-marker">{t.inCallCount(participantsIn(room.id).length)}</span>
        ) : null}
      </a>
      {children}
    </li>
  );
}

export function RoomList({ myUserId }: { myUserId: number }) {
  const [name, setName] = useState("");
  const [isPrivate, setPrivate] = useState(false);
  const [error, setError] = useState<string | null>(null);
  /** What became of the last direct message hidden (or why it could not be), said by the list. */
  const [dmNote, setDmNote] = useState<{ text: string; failed: boolean; roomId: number } | null>(null);
  const dmHeading = useRef<HTMLHeadingElement>(null);
  const current = openRoomId.value;

  const onHide = async (room: Room) => {
    const label = roomLabel(room);
    try {
      await hideDm(room.id);
      setDmNote({ text: t.dmHidden(label), failed: false, roomId: room.id });
      if (openRoomId.peek() === room.id) navigate("/");
      // The button pressed is gone: keep the keyboard where the direct messages are.
      dmHeading.current?.focus();
    } catch (err) {
      setDmNote({ text: explain(err), failed: true, roomId: room.id });
    }
  };

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
      <ul class="room-links" aria-label={t.yourRooms}>
        {joinedRooms.value.map((room) => (
          <RoomLink key={room.id} room={room} current={current} />
        ))}
      </ul>
      <h2 ref={dmHeading} tabIndex={-1}>
        {t.directMessages}
      </h2>
      <NewMessage />
      <ul class="room-links" aria-label={t.directMessages}>
        {directMessages.value.map((room) => (
          <RoomLink key={room.id} room={room} current={current}>
            <button
              type="button"
              class="hide-dm"
              aria-label={t.hideDm(roomLabel(room))}
              title={t.hideDm(roomLabel(room))}
              onClick={() => void onHide(room)}
            >
              <span aria-hidden="true">×</span>
            </button>
          </RoomLink>
        ))}
      </ul>
      {/* Said until the conversation is back in the list. */}
      {dmNote && (dmNote.failed || !directMessages.value.some((r) => r.id === dmNote.roomId)) ? (
        <p class={dmNote.failed ? "error" : "help"} role={dmNote.failed ? "alert" : "status"}>
          {dmNote.text}
        </p>
      ) : null}
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
