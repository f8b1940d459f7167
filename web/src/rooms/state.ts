/**
 * The rooms a person is in and the public rooms they may join. Loaded over HTTP when the
 * gateway is ready (so a reconnect refreshes it) and kept current by room events.
 */

import { computed, signal } from "@preact/signals";
import { api, call, type Room } from "../api/client";

export const rooms = signal<Room[]>([]);
export const roomsLoaded = signal(false);

/** Most recently active first (the server's last_activity, kept current by live messages). */
export const joinedRooms = computed(() =>
  rooms.value
    .filter((r) => r.my_role !== undefined)
    .sort((a, b) => (b.last_activity ?? b.updated_at).localeCompare(a.last_activity ?? a.updated_at)),
);
export const joinableRooms = computed(() => rooms.value.filter((r) => r.my_role === undefined && !r.private));

export function roomById(id: number): Room | undefined {
  return rooms.value.find((r) => r.id === id);
}

export async function loadRooms(): Promise<void> {
  const answer = await call(() => api.GET("/api/v1/rooms"));
  rooms.value = [...answer.rooms].sort((a, b) => a.name.localeCompare(b.name));
  roomsLoaded.value = true;
}

export async function createRoom(name: string, isPrivate: boolean): Promise<Room> {
  const room = await call(() => api.POST("/api/v1/rooms", { body: { name, private: isPrivate } }));
  rooms.value = [...rooms.value.filter((r) => r.id !== room.id), room].sort((a, b) => a.name.localeCompare(b.name));
  return room;
}

export async function joinRoom(roomId: number, myUserId: number): Promise<void> {
  await call(() =>
    api.PUT("/api/v1/rooms/{id}/members/{user_id}", { params: { path: { id: roomId, user_id: myUserId } }, body: {} }),
  );
  await loadRooms();
}

/** A live message: its room moves to the top of the list. */
export function touchRoom(roomId: number, at: string): void {
  rooms.value = rooms.value.map((r) => (r.id === roomId ? { ...r, last_activity: at } : r));
}

/** The room we last stopped being a member of (removed, or left), to say so. */
export const leftRoom = signal<{ id: number; name: string } | null>(null);

/** A room event that changes the room itself or our membership. */
export function applyRoomEvent(type: string, roomId: number, data: unknown, myUserId: number): void {
  if (type === "room.updated") {
    const room = data as Room;
    rooms.value = rooms.value.map((r) => (r.id === roomId ? { ...r, ...room, my_role: r.my_role } : r));
  } else if (type.startsWith("member.") && (data as { user_id?: number }).user_id === myUserId) {
    if (type === "member.left") leftRoom.value = { id: roomId, name: roomById(roomId)?.name ?? "" };
    if (type === "member.updated") {
      // What we may do in the room changes now, not when the list below comes back.
      const role = (data as { role?: Room["my_role"] }).role;
      rooms.value = rooms.value.map((r) => (r.id === roomId ? { ...r, my_role: role } : r));
    }
    void loadRooms().catch(() => {});
  }
}
