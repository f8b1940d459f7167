/**
 * A room's timeline: a list named "Messages" with day separators, paging back when scrolled
 * to the top (keeping what was on screen in place), pending sends after the newest message,
 * and the composer. It renders the timeline state; loading is done by timeline/state.ts.
 * Its header is the room's app bar: on a phone one row (back, the name, the call, a menu with
 * Members, Room settings and the app's commands); wider, the room's buttons in view.
 */

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { Message, Room } from "../api/client";
import { appCommands } from "../app/commands";
import { BackIcon, MenuIcon } from "../app/icons";
import { MenuButton } from "../app/Menu";
import { backToRooms, closeRoomPanel, navigate, openPanel, openRoomPanel, type RoomPanel } from "../app/router";
import { t } from "../strings";
import { CallButton } from "../calls/CallButton";
import { MembersPanel } from "../members/MembersPanel";
import { RoomSettings } from "../members/RoomSettings";
import { canModerate, loadMembers, typingIn } from "../members/state";
import { markRead, roomById, roomLabel } from "../rooms/state";
import { unreachable } from "../offline/state";
import { Composer } from "./Composer";
import { continuesRun } from "./grouping";
import "./room-header.css";
import { MessageItem, PendingItem } from "./MessageItem";
import { focusMessage, loadAround, loadLatest, loadNewer, loadOlder, pending, timelineOf } from "./state";

/** Distance from an edge, in pixels, at which paging starts. */
const EDGE_PX = 200;

function dayKey(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

function dayLabel(iso: string): string {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(iso) === dayKey(today.toISOString())) return t.today;
  if (dayKey(iso) === dayKey(yesterday.toISOString())) return t.yesterday;
  return d.toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

export function Timeline({ roomId, room, myUserId }: { roomId: number; room: Room | undefined; myUserId: number }) {
  const tl = timelineOf(roomId);
  const panel = openPanel.value;
  const moderator = canModerate(room);
  const typing = typingIn(roomId);
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  /** The message at the top of the screen before paging back, and where it was. */
  const anchor = useRef<{ id: number; top: number } | null>(null);
  const [, setTick] = useState(0);

  const focus = focusMessage.value?.roomId === roomId ? focusMessage.value.messageId : null;
  /** The focused message is scrolled to once; later renders leave the scroll alone. */
  const scrolledTo = useRef<number | null>(null);

  useEffect(() => {
    if (focus !== null) {
      atBottom.current = false;
      void loadAround(roomId, focus);
      return;
    }
    atBottom.current = true;
    if (tl.messages.value.length === 0) void loadLatest(roomId);
  }, [roomId, focus]);

  // The member list names who is typing (and feeds the members panel).
  useEffect(() => {
    loadMembers(roomId).catch(() => {});
  }, [roomId]);

  const messages = tl.messages.value;
  const mine = pending.value.filter((p) => p.roomId === roomId);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const focused = focus !== null ? el.querySelector<HTMLElement>(`[data-id="${focus}"]`) : null;
    if (focused && scrolledTo.current !== focus) {
      scrolledTo.current = focus;
      focused.scrollIntoView({ block: "center" });
      focused.focus();
    } else if (anchor.current) {
      const node = el.querySelector<HTMLElement>(`[data-id="${anchor.current.id}"]`);
      if (node) el.scrollTop += node.offsetTop - anchor.current.top;
      anchor.current = null;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [messages, mine.length, roomId]);

  /** Read once the newest message is on screen in a visible tab (the server keeps the position). */
  const readIfSeen = () => {
    if (atBottom.current && !tl.hasNewer.value && !document.hidden && tl.loading.value !== "initial") void markRead(roomId);
  };
  const unread = roomById(roomId)?.unread ?? 0;
  useEffect(readIfSeen, [messages, unread, roomId]);
  useEffect(() => {
    document.addEventListener("visibilitychange", readIfSeen);
    return () => document.removeEventListener("visibilitychange", readIfSeen);
  }, [roomId]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40 && !tl.hasNewer.value;
    readIfSeen();
    if (el.scrollTop < EDGE_PX && tl.hasOlder.value && !tl.loading.value && messages.length > 0) {
      const first = el.querySelector<HTMLElement>("[data-id]");
      if (first) anchor.current = { id: Number(first.dataset.id), top: first.offsetTop };
      void loadOlder(roomId).then(() => setTick((n) => n + 1));
    } else if (el.scrollHeight - el.scrollTop - el.clientHeight < EDGE_PX && tl.hasNewer.value && !tl.loading.value) {
      void loadNewer(roomId);
    }
  };

  const togglePanel = (which: RoomPanel) => (panel === which ? closeRoomPanel(roomId) : openRoomPanel(roomId, which));

  // On a phone a panel replaces the room and the room comes back in its place: the focus,
  // left on a control that is no longer shown, goes to the way back (or the room's menu).
  const view = useRef<HTMLDivElement>(null);
  const shownPanel = useRef(panel);
  useEffect(() => {
    if (shownPanel.current === panel) return;
    shownPanel.current = panel;
    const active = document.activeElement;
    if (active && active !== document.body && active.getClientRects().length > 0) return;
    const target = panel !== null ? ".side-panel .panel-back" : ".room-header .room-menu .menu-button";
    view.current?.querySelector<HTMLElement>(target)?.focus();
  }, [panel]);

  const items: preact.JSX.Element[] = [];
  let lastDay = "";
  let previous: Message | undefined;
  for (const m of messages as Message[]) {
    const day = dayKey(m.created_at);
    if (day !== lastDay) {
      items.push(
        <li key={`day-${day}`} class="day">
          <span>{dayLabel(m.created_at)}</span>
        </li>,
      );
      lastDay = day;
    }
    items.push(
      <MessageItem
        key={m.id}
        message={m}
        mine={m.author_id === myUserId}
        moderator={moderator}
        focused={m.id === focus}
        continued={continuesRun(previous, m)}
      />,
    );
    previous = m;
  }

  return (
    <div class={panel ? "room-view panel-open" : "room-view"} ref={view}>
    <section class="timeline" aria-labelledby="room-title">
      <header class="room-header">
        <button type="button" class="back" onClick={backToRooms}>
          <BackIcon />
          <span class="visually-hidden">{t.back}</span>
        </button>
        <div class="room-title">
          <h2 id="room-title">{roomLabel(room)}</h2>
          {room?.topic ? (
            <p class="room-header-topic" dir="auto">
              {room.topic}
            </p>
          ) : null}
        </div>
        <div class="room-tools">
          <button type="button" aria-pressed={panel === "members"} onClick={() => togglePanel("members")}>
            {t.members}
          </button>
          <button type="button" aria-pressed={panel === "settings"} onClick={() => togglePanel("settings")}>
            {t.roomSettings}
          </button>
        </div>
        <CallButton roomId={roomId} />
        <MenuButton
          items={[
            { label: t.members, run: () => openRoomPanel(roomId, "members") },
            { label: t.roomSettings, run: () => openRoomPanel(roomId, "settings") },
            ...appCommands(),
          ]}
          menuId="room-menu"
          label={t.menu}
          icon={<MenuIcon />}
          class="room-menu"
        />
      </header>
      <div class="scroller" ref={scroller} onScroll={onScroll} tabIndex={-1}>
        <p class="edge" aria-live="polite">
          {tl.loading.value === "older" || tl.loading.value === "initial"
            ? t.loadingOlder
            : !tl.hasOlder.value
              ? t.beginning
              : ""}
        </p>
        {tl.error.value ? (
          <p class="error" role="alert">
            {tl.error.value}
          </p>
        ) : null}
        <ul class="messages" aria-label={t.messages}>
          {items}
          {tl.hasNewer.value
            ? null
            : mine.map((p) => <PendingItem key={p.localId} pending={p} />)}
        </ul>
        {tl.hasNewer.value ? (
          <button type="button" class="newer" onClick={() => void loadLatest(roomId)}>
            {t.newer}
          </button>
        ) : null}
      </div>
      <p class="typing" aria-live="polite">
        {typing}
      </p>
      {unreachable.value ? <p class="read-only-note">{t.readOnly}</p> : <Composer roomId={roomId} myUserId={myUserId} />}
    </section>
    {panel === "members" ? (
      <MembersPanel room={room} myUserId={myUserId} onClose={() => closeRoomPanel(roomId)} />
    ) : panel === "settings" ? (
      <RoomSettings
        room={room}
        myUserId={myUserId}
        onClose={() => closeRoomPanel(roomId)}
        onLeft={() => navigate("/", true)}
      />
    ) : null}
    </div>
  );
}
