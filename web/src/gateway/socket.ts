/**
 * Wires the gateway machine to a real WebSocket, timers and the browser's online/offline
 * events, and hands delivered events to the rooms and timeline state. All decisions are the
 * machine's (machine.ts); this file only carries them out.
 */

import { signal } from "@preact/signals";
import { NetworkError, type Message } from "../api/client";
import { applyCallFrame, loadCall, loadCalls } from "../calls/state";
import {
  applyMemberEvent,
  applyPresence,
  applyTyping,
  memberRenamed,
  setOnline,
  typingEnded,
  type Member,
} from "../members/state";
import { newMessage } from "../notify/notify";
import {
  applyDirectory,
  applyDmFrame,
  applyRoomEvent,
  applyUserUpdated,
  callJoined,
  joinedRooms,
  loadRooms,
  newRoomMessage,
  roomById,
  roomEventSeen,
  roomLabel,
  type Person,
} from "../rooms/state";
import { ownAccountChanged, sessionEnded, tokenForGateway } from "../session/session";
import {
  applyMessageEvent,
  authorRenamed,
  loadLatest,
  messageCreated,
  outbox,
  timelineOf,
} from "../timeline/state";
import { GatewayMachine, type Effect, type Input, type Phase } from "./machine";

export const gatewayPhase = signal<Phase>("stopped");

const machine = new GatewayMachine({ random: Math.random });
let socket: WebSocket | null = null;
let socketConn = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
let myUserId = 0;

function step(input: Input): void {
  const effects = machine.step(input);
  gatewayPhase.value = machine.phase;
  for (const effect of effects) run(effect);
}

function run(effect: Effect): void {
  switch (effect.kind) {
    case "need_token":
      tokenForGateway(effect.fresh).then(
        (token) => step({ kind: "token", token }),
        (e) => step({ kind: e instanceof NetworkError ? "token_unreachable" : "token_failed" }),
      );
      break;
    case "open":
      open(effect.conn);
      break;
    case "send":
      if (socket && socketConn === effect.conn && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify(effect.frame));
      }
      break;
    case "close":
      if (socket && socketConn === effect.conn) {
        socket.close(1000);
        socket = null;
      }
      break;
    case "schedule_retry":
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => step({ kind: "retry_timer" }), effect.ms);
      break;
    case "cancel_retry":
      clearTimeout(retryTimer);
      break;
    case "schedule_heartbeat":
      clearTimeout(heartbeatTimer);
      heartbeatTimer = setTimeout(() => step({ kind: "heartbeat_timer" }), effect.ms);
      break;
    case "deliver": {
      const { room_id, seq, type, data } = effect.event;
      roomEventSeen(room_id, seq);
      if (type.startsWith("message.")) {
        const message = data as Message;
        if (type === "message.created") {
          // One of our own sends, if it is, replaces its pending entry here.
          messageCreated(room_id, message, myUserId);
          newRoomMessage(room_id, message, effect.event.at, myUserId);
          if (message.author_id !== null) typingEnded(room_id, message.author_id);
        } else {
          applyMessageEvent(room_id, message);
        }
        if (type === "message.created" && message.author_id !== myUserId) {
          const room = roomById(room_id);
          newMessage(message, {
            roomName: roomLabel(room),
            direct: room?.kind === "dm",
            mentioned: (message.mentions ?? []).some((m) => m.user_id === myUserId),
          });
        }
      } else {
        if (type.startsWith("member.")) applyMemberEvent(type, room_id, data as Member);
        applyRoomEvent(type, room_id, data, myUserId);
        // A room just joined may have a call going on already.
        if (type === "member.joined" && (data as { user_id?: number }).user_id === myUserId) {
          void loadCall(room_id).catch(() => {});
        }
      }
      break;
    }
    case "signal": {
      const s = effect.signal;
      if (s.op === "call") {
        applyCallFrame(s);
        const who = (s.data as { user_id?: unknown } | undefined)?.user_id;
        if (s.type === "call.participant_joined" && who === myUserId && typeof s.room_id === "number") {
          callJoined(s.room_id);
        }
      } else if (s.op === "user" && s.type === "user.updated" && typeof s.data === "object" && s.data !== null) {
        const person = s.data as Person;
        if (typeof person.id === "number" && typeof person.display_name === "string") {
          applyUserUpdated(person);
          memberRenamed(person.id, person.display_name);
          authorRenamed(person.id, person.display_name);
          // Renamed on another device: this one's account screen follows.
          if (person.id === myUserId) ownAccountChanged(person);
        }
      } else if (s.op === "dm") {
        applyDmFrame(s.type, s.room_id);
      } else if (s.op === "presence" && typeof s.user_id === "number" && typeof s.status === "string") {
        applyPresence(s.user_id, s.status);
      } else if (s.op === "typing" && typeof s.room_id === "number" && typeof s.user_id === "number") {
        applyTyping(s.room_id, s.user_id, myUserId);
      } else if (s.op === "directory") {
        applyDirectory(s.type, s.room_id, s.data);
      }
      break;
    }
    case "reload":
      for (const room of effect.rooms) {
        timelineOf(room);
        void loadLatest(room);
      }
      break;
    case "ready":
      myUserId = effect.userId;
      // Those connected in our rooms, and we are (this connection counts).
      setOnline([...effect.online, effect.userId]);
      // Call frames are not replayed: who is in which call is asked for again on every ready.
      void loadRooms()
        .then(() => loadCalls(joinedRooms.value.map((r) => r.id)))
        .catch(() => {});
      void outbox.flush();
      break;
    case "signed_out":
      sessionEnded();
      break;
  }
}

function open(conn: number): void {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/gateway`);
  socket = ws;
  socketConn = conn;
  ws.onopen = () => step({ kind: "opened", conn });
  ws.onmessage = (m) => {
    let frame: unknown;
    try {
      frame = JSON.parse(String(m.data));
    } catch {
      return; // not JSON: ignored, the server never sends that
    }
    step({ kind: "frame", conn, frame });
  };
  ws.onclose = (e) => {
    if (socket === ws) socket = null;
    step({ kind: "closed", conn, code: e.code, reason: e.reason });
  };
}

addEventListener("online", () => {
  step({ kind: "network", online: true });
  void outbox.flush();
});
addEventListener("offline", () => step({ kind: "network", online: false }));

export function startGateway(): void {
  if (!navigator.onLine) step({ kind: "network", online: false });
  step({ kind: "start" });
}

/** The person is typing in `roomId` (sent throttled, and only while connected). */
export function sendTyping(roomId: number): void {
  step({ kind: "typing", room: roomId, now: Date.now() });
}

export function stopGateway(): void {
  step({ kind: "stop" });
  clearTimeout(heartbeatTimer);
}
