/** The accounts: each one's role (admin, member, guest) and whether it may sign in. */

import { useEffect, useState } from "preact/hooks";
import type { User } from "../api/client";
import { session } from "../session/session";
import { t } from "../strings";
import { explain, listUsers, updateUser, type Role } from "./state";

const ROLES: Role[] = ["admin", "member", "guest"];

export function Users() {
  const [users, setUsers] = useState<User[]>([]);
  const [error, setError] = useState<string | null>(null);
  const me = session.value.status === "signed_in" ? session.value.user.id : null;

  useEffect(() => {
    listUsers().then(setUsers, (e) => setError(explain(e)));
  }, []);

  const change = async (id: number, patch: { role?: Role; disabled?: boolean }) => {
    setError(null);
    try {
      const updated = await updateUser(id, patch);
      setUsers((all) => all.map((u) => (u.id === id ? updated : u)));
    } catch (e) {
      setError(explain(e));
    }
  };

  return (
    <section aria-labelledby="users-title">
      <h2 id="users-title">{t.adminUsers}</h2>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <ul class="admin-list">
        {users.map((u) => {
          const name = u.display_name || u.username;
          return (
            <li key={u.id}>
              <span class="admin-item">
                <span dir="auto">
                  {name} {u.id === me ? t.you : ""}
                </span>
                <span class="help">
                  {u.username}
                  {u.disabled ? ` · ${t.disabled}` : ""}
                </span>
              </span>
              <span class="admin-actions">
                <select
                  aria-label={t.roleOf(name)}
                  value={u.role}
                  disabled={u.id === me}
                  onChange={(e) => void change(u.id, { role: e.currentTarget.value as Role })}
                >
                  {/* The server refuses to make a bot an admin (`bot_cannot_be_admin`). */}
                  {ROLES.filter((r) => !(u.bot && r === "admin")).map((r) => (
                    <option key={r} value={r}>
                      {t.roles[r]}
                    </option>
                  ))}
                </select>
                {u.id === me ? null : (
                  <button
                    type="button"
                    aria-label={u.disabled ? t.enableUser(name) : t.disableUser(name)}
                    onClick={() => void change(u.id, { disabled: !u.disabled })}
                  >
                    {u.disabled ? t.enable : t.disable}
                  </button>
                )}
              </span>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
