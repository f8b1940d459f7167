/**
 * A room's members: a region named "Members" with each member's name, username, room role
 * (guests marked) and presence (a dot, and the word for screen readers). The room's moderators
 * and admins also get a "Role" choice and "Remove from room" where the server allows them, and
 * a person picker to add someone. A refusal shows the server's message.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, NetworkError, type Room } from "../api/client";
import { t } from "../strings";
import {
  addMember,
  canModerate,
  canRemove,
  findCandidates,
  loadMembers,
  membersOf,
  online,
  removeMember,
  rolesOffered,
  setRole,
  type Candidate,
  type Member,
  type RoomRole,
} from "./state";
import "./members.css";

/** Typing in the picker waits this long for a pause before asking the server. */
const SEARCH_PAUSE_MS = 250;

export function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  return e instanceof ApiError ? e.message : String(e);
}

export function PanelHeader({ id, title, onClose }: { id: string; title: string; onClose: () => void }) {
  return (
    <header class="panel-header">
      <button type="button" class="panel-back" onClick={onClose}>
        <span aria-hidden="true">‹ </span>
        {t.backToRoom}
      </button>
      <h2 id={id}>{title}</h2>
    </header>
  );
}

function MemberRow({ room, member, myUserId }: { room: Room | undefined; member: Member; myUserId: number }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const isOnline = online.value.has(member.user_id);
  const roles = rolesOffered(room, member);
  const roomId = room?.id ?? 0;

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <li class="member">
      <span class={`presence ${isOnline ? "online" : "offline"}`} aria-hidden="true" />
      <span class="member-who">
        <span class="display-name" dir="auto">
          {member.display_name}
          {member.user_id === myUserId ? ` ${t.youMarker}` : ""}
        </span>
        <span class="username">
          @{member.username}
          <span class="visually-hidden">, {isOnline ? t.presenceOnline : t.presenceOffline}</span>
          {/* With a "Role" choice, the choice shows the role. */}
          {roles.length === 0 ? (
            <>
              {" · "}
              <span class="role-name">{t.roleNames[member.role] ?? member.role}</span>
            </>
          ) : null}
          {member.account_role === "guest" ? (
            <>
              {" · "}
              <span class="guest-mark">{t.guest}</span>
            </>
          ) : null}
        </span>
      </span>
      <span class="member-actions">
        {roles.length > 0 ? (
          <label class="role-choice">
            <span class="visually-hidden">{t.role}</span>
            <select
              value={member.role}
              disabled={busy}
              onChange={(e) => {
                const role = e.currentTarget.value as RoomRole;
                void run(() => setRole(roomId, member.user_id, role));
              }}
            >
              {roles.map((r) => (
                <option key={r} value={r}>
                  {t.roleNames[r]}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        {canRemove(room, member, myUserId) ? (
          <button type="button" class="danger" disabled={busy} onClick={() => void run(() => removeMember(roomId, member))}>
            {t.removeFromRoom}
          </button>
        ) : null}
      </span>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
    </li>
  );
}

function PersonPicker({ roomId }: { roomId: number }) {
  const [query, setQuery] = useState("");
  const [found, setFound] = useState<Candidate[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState("");
  /** Answers to earlier queries that arrive late are dropped. */
  const asked = useRef(0);

  useEffect(() => {
    const ask = ++asked.current;
    const timer = setTimeout(() => {
      findCandidates(roomId, query.trim()).then(
        (list) => {
          if (ask !== asked.current) return;
          setFound(list);
          setError(null);
        },
        (err) => ask === asked.current && setError(explain(err)),
      );
    }, SEARCH_PAUSE_MS);
    return () => clearTimeout(timer);
  }, [roomId, query]);

  const add = async (c: Candidate) => {
    setError(null);
    try {
      await addMember(roomId, c.user_id);
      setFound((list) => (list ?? []).filter((x) => x.user_id !== c.user_id));
      setNotice(t.added(c.display_name));
    } catch (err) {
      setError(explain(err));
    }
  };

  return (
    <div class="picker">
      <h3>{t.addPerson}</h3>
      <label class="field">
        <span>{t.findCandidate}</span>
        <input type="search" value={query} maxLength={100} onInput={(e) => setQuery(e.currentTarget.value)} />
      </label>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <p role="status" class="help">
        {notice}
      </p>
      {found !== null && found.length === 0 ? <p class="help">{t.noCandidates}</p> : null}
      {found && found.length > 0 ? (
        <ul class="candidates" aria-label={t.peopleToAdd}>
          {found.map((c) => (
            <li key={c.user_id}>
              <button type="button" onClick={() => void add(c)}>
                {t.addNamed(c.display_name, c.username)}
                {c.account_role === "guest" ? ` · ${t.guest}` : ""}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function MembersPanel({
  room,
  myUserId,
  onClose,
}: {
  room: Room | undefined;
  myUserId: number;
  onClose: () => void;
}) {
  const roomId = room?.id ?? 0;
  const list = membersOf(roomId).value;
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (roomId === 0) return;
    loadMembers(roomId).catch((err) => setError(explain(err)));
  }, [roomId]);

  return (
    <section class="side-panel" aria-labelledby="members-title">
      <PanelHeader id="members-title" title={t.members} onClose={onClose} />
      <div class="panel-body">
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        {list === null ? (
          <p class="help">{t.loadingMembers}</p>
        ) : (
          <ul class="member-list">
            {list.map((m) => (
              <MemberRow key={m.user_id} room={room} member={m} myUserId={myUserId} />
            ))}
          </ul>
        )}
        {canModerate(room) ? <PersonPicker roomId={roomId} /> : null}
      </div>
    </section>
  );
}
