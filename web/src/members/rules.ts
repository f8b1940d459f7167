/**
 * Who may do what in a room, as the server decides it (src/chat/rooms.rs), so the client offers
 * only what would be allowed. Pure: the caller's account role and room role are arguments.
 * The server still decides; a refusal it gives anyway is shown as its message.
 */

export type AccountRole = "admin" | "member" | "guest";
export type RoomRole = "owner" | "moderator" | "member";

export interface Standing {
  /** The caller's account role (undefined: signed out). */
  account: AccountRole | undefined;
  /** The caller's role in the room (undefined: not a member). */
  room: RoomRole | undefined;
}

export interface Target {
  user_id: number;
  role: RoomRole;
  account_role: AccountRole;
}

/** Owner, moderators (member-role accounts only: guests never moderate) and admins. */
export function canModerate(me: Standing): boolean {
  return me.account === "admin" || (me.account === "member" && (me.room === "owner" || me.room === "moderator"));
}

/** Only the owner and admins make, unmake or remove moderators. */
export function canManageModerators(me: Standing): boolean {
  return me.account === "admin" || (me.account === "member" && me.room === "owner");
}

/** The roles the caller may choose for `target`: none when its role is not theirs to change. */
export function rolesOffered(me: Standing, target: Target): RoomRole[] {
  // The owner's role is fixed; a guest is only ever a plain member.
  if (target.role === "owner" || target.account_role === "guest" || !canManageModerators(me)) return [];
  return ["member", "moderator"];
}

/** Removing oneself is leaving (Room settings); the owner goes only by an admin's hand. */
export function canRemove(me: Standing, target: Target, myUserId: number): boolean {
  if (target.user_id === myUserId || !canModerate(me)) return false;
  if (target.role === "owner") return me.account === "admin";
  if (target.role === "moderator") return canManageModerators(me);
  return true;
}
