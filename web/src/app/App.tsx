/**
 * The top of the client: picks the screen from the session and the path. Signed in, it is
 * one pane on a phone (the room list, or a room with a way back) and two panes on wider
 * screens; a visible line says when the connection is being re-established. The app's
 * commands (Account, Administration, theme, Sign out) are buttons in the wide layout's header and a
 * menu on a phone; with a room open on a phone, the room's header is the only bar (its menu
 * has them too), so the messages get the screen.
 */

import type { FunctionComponent } from "preact";
import { useEffect, useState } from "preact/hooks";
import { AccountPage } from "../account/AccountPage";
import { appName } from "../branding/state";
import { CallDock } from "../calls/CallButton";
import { gatewayPhase, startGateway, stopGateway } from "../gateway/socket";
import { OfflineBanner, UpdateHint } from "../offline/Banners";
import { unreachable } from "../offline/state";
import { RoomList } from "../rooms/RoomList";
import { leftRoom, loadRooms, roomById, rooms, roomsLoaded } from "../rooms/state";
import { clearMembers } from "../members/state";
import { session, signOut } from "../session/session";
import { SetupForm, SignInForm, SignUpForm } from "../sign-in/forms";
import { t } from "../strings";
import { cycleTheme } from "../theme/theme";
import { clearTimelines } from "../timeline/state";
import { Timeline } from "../timeline/Timeline";
import { appCommands, themeLabel } from "./commands";
import { MenuIcon } from "./icons";
import { MenuButton } from "./Menu";
import { inAccount, inAdmin, inviteCode, navigate, openRoomId, path } from "./router";
import "./app-bar.css";
import "./skip-link.css";

function ThemeToggle() {
  return (
    <button type="button" class="theme" onClick={cycleTheme}>
      {themeLabel()}
    </button>
  );
}

function ConnectionStatus() {
  const phase = gatewayPhase.value;
  if (phase === "resuming") return <p class="connection" role="status">{t.reconnecting}</p>;
  if (phase === "offline")
    return (
      <p class="connection" role="status">
        {t.reconnecting} {t.offline}
      </p>
    );
  return <p class="connection" role="status" hidden />;
}

/** The admin chunk, loaded the first time an admin opens it. */
function AdminSlot() {
  const [Page, setPage] = useState<FunctionComponent | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    import("../admin/AdminPage").then(
      (m) => setPage(() => m.default),
      () => setFailed(true),
    );
  }, []);
  if (failed) return <p class="error" role="alert">{t.networkError}</p>;
  return Page ? <Page /> : <p class="splash">{t.loading}</p>;
}

function Shell({ userId, isAdmin }: { userId: number; isAdmin: boolean }) {
  // Showing the snapshot, there is no session for the gateway: it starts once Roost answers.
  const offline = unreachable.value;
  useEffect(() => {
    if (offline) return;
    // The room list comes over the connection the page already has; the gateway's own TLS
    // handshake and "ready" would make it wait (its ready loads the list again, for a resume).
    void loadRooms().catch(() => {});
    startGateway();
    return () => stopGateway();
  }, [offline]);
  useEffect(
    () => () => {
      clearTimelines();
      clearMembers();
      rooms.value = [];
      roomsLoaded.value = false;
    },
    [],
  );
  const roomId = openRoomId.value;
  const left = leftRoom.value;
  // Removed from the open room (or left it): back to the list, which says so.
  useEffect(() => {
    if (left !== null && openRoomId.peek() === left.id && !isAdmin) navigate("/", true);
  }, [left]);
  useEffect(() => {
    if (roomId !== null && leftRoom.peek()?.id !== roomId) leftRoom.value = null;
  }, [roomId]);
  // Subscribe to the list, so a room that appears later (joined, created) is found.
  void rooms.value;
  const room = roomId !== null ? roomById(roomId) : undefined;
  return (
    <div class={roomId !== null ? "shell room-open in-room" : inAdmin.value || inAccount.value ? "shell room-open" : "shell"}>
      <a
        class="skip-link"
        href="#main"
        onClick={(e) => {
          // Focus moves without touching the path (the router reads it) or adding a history step.
          e.preventDefault();
          const target = document.querySelector<HTMLElement>(roomId !== null ? ".scroller" : "#main");
          target?.focus();
        }}
      >
        {roomId !== null ? t.skipToMessages : t.skipToMain}
      </a>
      <header class="top">
        <h1>{appName.value}</h1>
        <ConnectionStatus />
        <p class="left-room" role="status">
          {left !== null && roomId !== left.id ? t.leftRoom(left.name) : ""}
        </p>
        <div class="tools">
          <a href="/account" class="button-link" onClick={(e) => (e.preventDefault(), navigate("/account"))}>
            {t.account}
          </a>
          {isAdmin ? (
            <a href="/admin" class="button-link" onClick={(e) => (e.preventDefault(), navigate("/admin"))}>
              {t.administration}
            </a>
          ) : null}
          <ThemeToggle />
          <button type="button" onClick={() => void signOut()}>
            {t.signOut}
          </button>
        </div>
        <MenuButton items={appCommands()} menuId="app-menu" label={t.menu} icon={<MenuIcon />} class="app-menu" />
      </header>
      <CallDock />
      <div class="panes">
        <RoomList myUserId={userId} />
        <main class="main" id="main" tabIndex={-1}>
          {isAdmin && inAdmin.value ? (
            <AdminSlot />
          ) : inAccount.value ? (
            <AccountPage />
          ) : roomId !== null ? (
            <Timeline key={roomId} roomId={roomId} room={room} myUserId={userId} />
          ) : (
            <p class="choose">{t.chooseRoom}</p>
          )}
        </main>
      </div>
    </div>
  );
}

export function App() {
  return (
    <>
      <UpdateHint />
      <OfflineBanner />
      <Screen />
    </>
  );
}

function Screen() {
  const s = session.value;
  switch (s.status) {
    case "loading":
      return <p class="splash">{t.loading}</p>;
    case "setup":
      return <SetupForm />;
    case "signed_out":
      if (inviteCode.value !== null) return <SignUpForm />;
      // Reachable by hand too, should the first-run check itself fail.
      if (path.value === "/setup") return <SetupForm />;
      return <SignInForm notice={s.reason === "network" ? t.networkError : undefined} />;
    case "signed_in":
      return <Shell userId={s.user.id} isAdmin={s.user.role === "admin"} />;
  }
}
