import { describe, expect, it } from "vitest";
import { canModerate, canRemove, rolesOffered, type Standing, type Target } from "./rules";

const owner: Standing = { account: "member", room: "owner" };
const moderator: Standing = { account: "member", room: "moderator" };
const member: Standing = { account: "member", room: "member" };
const admin: Standing = { account: "admin", room: undefined };
/** A guest row above member grants nothing (the server never writes one, but says so too). */
const guestOwner: Standing = { account: "guest", room: "owner" };

const ben: Target = { user_id: 2, role: "member", account_role: "member" };
const mod: Target = { user_id: 3, role: "moderator", account_role: "member" };
const boss: Target = { user_id: 4, role: "owner", account_role: "member" };
const dee: Target = { user_id: 5, role: "member", account_role: "guest" };

describe("room rules", () => {
  it("moderation is for owners, moderators and admins, never guests", () => {
    expect([owner, moderator, member, admin, guestOwner].map(canModerate)).toEqual([true, true, false, true, false]);
  });

  it("offers roles only where the server would accept them", () => {
    expect(rolesOffered(owner, ben)).toEqual(["member", "moderator"]);
    expect(rolesOffered(admin, mod)).toEqual(["member", "moderator"]);
    expect(rolesOffered(moderator, ben)).toEqual([]);
    expect(rolesOffered(owner, dee)).toEqual([]);
    expect(rolesOffered(admin, boss)).toEqual([]);
  });

  it("offers removal by the server's rules, and never of oneself", () => {
    expect(canRemove(moderator, ben, 1)).toBe(true);
    expect(canRemove(moderator, mod, 1)).toBe(false);
    expect(canRemove(owner, mod, 1)).toBe(true);
    expect(canRemove(owner, boss, 4)).toBe(false);
    expect(canRemove(admin, boss, 1)).toBe(true);
    expect(canRemove(member, ben, 1)).toBe(false);
    expect(canRemove(moderator, { ...ben, user_id: 1 }, 1)).toBe(false);
  });
});
