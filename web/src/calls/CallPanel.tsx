/**
 * A room's call, in its own chunk: this module (and livekit-client with it) is loaded only when
 * someone presses "Join call". It asks Roost for a call token, connects through Roost's `/rtc`
 * proxy, and shows the connection state (reconnecting, cut off, failed with a retry), the
 * participant grid (Tile.tsx) and the controls: mute, camera, devices, screen share, leave.
 * A refused microphone or camera is explained, and the person stays in the call to listen.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import {
  ConnectionState,
  DisconnectReason,
  MediaDeviceFailure,
  Room,
  RoomEvent,
  Track,
  type Participant,
  type RemoteTrack,
} from "livekit-client";
import { api, ApiError, call, NetworkError } from "../api/client";
import { t } from "../strings";
import { Devices } from "./Devices";
import type { CallPanelProps } from "./state";
import { Tile } from "./Tile";
import "./panel.css";

/** Why joining failed, and whether trying again can help. */
interface Failure {
  message: string;
  retry: boolean;
}

/**
 * `signalled`: the call server had already answered (through Roost's `/rtc`) when joining
 * failed, so what failed is the media path: UDP, ICE/TCP and TURN all blocked by this network.
 */
function joinFailure(e: unknown, signalled: boolean): Failure {
  if (e instanceof NetworkError) return { message: t.networkError, retry: true };
  if (e instanceof ApiError) {
    if (e.code === "livekit_unavailable") return { message: t.callServerDown, retry: true };
    if (e.code === "calls_disabled") return { message: t.callsOff, retry: false };
    return { message: e.message, retry: e.status >= 500 };
  }
  if (signalled) return { message: t.callMediaBlocked, retry: true };
  return { message: t.callFailed, retry: true };
}

/** What a refused microphone or camera means for the person, and what they can do. */
function deviceProblem(e: unknown, device: "microphone" | "camera"): string {
  const mic = device === "microphone";
  switch (MediaDeviceFailure.getFailure(e)) {
    case MediaDeviceFailure.PermissionDenied:
      return mic ? t.micDenied : t.cameraDenied;
    case MediaDeviceFailure.NotFound:
      return mic ? t.micMissing : t.cameraMissing;
    case MediaDeviceFailure.DeviceInUse:
      return mic ? t.micBusy : t.cameraBusy;
    default:
      return mic ? t.micFailed : t.cameraFailed;
  }
}

/** Phones and some browsers cannot share a screen: the button is then not shown at all. */
const canShareScreen = typeof navigator.mediaDevices?.getDisplayMedia === "function";

export default function CallPanel({ roomId, roomName, onLeave }: CallPanelProps) {
  /** Bumped by "Try again": every attempt gets a fresh Room. */
  const [attempt, setAttempt] = useState(0);
  const [room, setRoom] = useState<Room | null>(null);
  const [state, setState] = useState<ConnectionState>(ConnectionState.Disconnected);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [cutOff, setCutOff] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [speakers, setSpeakers] = useState<string[]>([]);
  const [audioBlocked, setAudioBlocked] = useState(false);
  const [, rerender] = useState(0);
  const audioSink = useRef<HTMLDivElement>(null);

  useEffect(() => {
    let leaving = false;
    const r = new Room({ adaptiveStream: true, dynacast: true });
    setRoom(r);
    setFailure(null);
    setCutOff(false);
    setNotice(null);
    const refresh = () => rerender((n) => n + 1);
    let signalled = false;
    r.on(RoomEvent.SignalConnected, () => (signalled = true))
      .on(RoomEvent.ConnectionStateChanged, (s) => setState(s))
      .on(RoomEvent.Disconnected, (reason?: DisconnectReason) => {
        if (!leaving && reason !== DisconnectReason.CLIENT_INITIATED) setCutOff(true);
      })
      .on(RoomEvent.ActiveSpeakersChanged, (list: Participant[]) => setSpeakers(list.map((p) => p.identity)))
      .on(RoomEvent.AudioPlaybackStatusChanged, () => setAudioBlocked(!r.canPlaybackAudio))
      .on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
        if (track.kind === Track.Kind.Audio) audioSink.current?.appendChild(track.attach());
        refresh();
      })
      .on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => {
        for (const el of track.detach()) el.remove();
        refresh();
      });
    for (const event of [
      RoomEvent.ParticipantConnected,
      RoomEvent.ParticipantDisconnected,
      RoomEvent.ParticipantNameChanged,
      RoomEvent.LocalTrackPublished,
      RoomEvent.LocalTrackUnpublished,
      RoomEvent.TrackPublished,
      RoomEvent.TrackUnpublished,
      RoomEvent.TrackMuted,
      RoomEvent.TrackUnmuted,
      RoomEvent.ConnectionQualityChanged,
    ]) {
      r.on(event, refresh);
    }
    (async () => {
      try {
        const grant = await call(() =>
          api.POST("/api/v1/rooms/{id}/call/token", { params: { path: { id: roomId } }, body: {} }),
        );
        if (leaving) return;
        await r.connect(grant.url, grant.token);
      } catch (e) {
        if (!leaving) setFailure(joinFailure(e, signalled));
        return;
      }
      setAudioBlocked(!r.canPlaybackAudio);
      // Joining speaks at once, as a phone call does; the camera waits to be asked for.
      await r.localParticipant.setMicrophoneEnabled(true).catch((e: unknown) => {
        if (!leaving) setNotice(deviceProblem(e, "microphone"));
      });
      refresh();
    })();
    return () => {
      leaving = true;
      void r.disconnect();
    };
  }, [roomId, attempt]);

  const leave = () => {
    void room?.disconnect();
    onLeave();
  };

  const statusText =
    failure || cutOff
      ? t.callNotConnected
      : state === ConnectionState.Connected
        ? t.callConnected
        : state === ConnectionState.Reconnecting || state === ConnectionState.SignalReconnecting
          ? t.reconnecting
          : t.callConnecting;

  // The grid and controls stay while livekit-client reconnects: the call is not over yet.
  const connected =
    room !== null &&
    !failure &&
    !cutOff &&
    (state === ConnectionState.Connected ||
      state === ConnectionState.Reconnecting ||
      state === ConnectionState.SignalReconnecting);
  const me = room?.localParticipant;
  const participants: Participant[] = room && me ? [me, ...room.remoteParticipants.values()] : [];

  const toggleMic = async () => {
    if (!me) return;
    setNotice(null);
    await me.setMicrophoneEnabled(!me.isMicrophoneEnabled).catch((e: unknown) => setNotice(deviceProblem(e, "microphone")));
    rerender((n) => n + 1);
  };
  const toggleCamera = async () => {
    if (!me) return;
    setNotice(null);
    await me.setCameraEnabled(!me.isCameraEnabled).catch((e: unknown) => setNotice(deviceProblem(e, "camera")));
    rerender((n) => n + 1);
  };
  const toggleScreen = async () => {
    if (!me) return;
    setNotice(null);
    // Cancelling the browser's picker rejects too; that is a choice, not a problem to report.
    await me.setScreenShareEnabled(!me.isScreenShareEnabled).catch(() => {});
    rerender((n) => n + 1);
  };

  return (
    <section class="call" aria-label={t.call}>
      <p class="call-title">
        <strong>{t.callIn(roomName)}</strong>
        <span role="status" class="call-status">
          {statusText}
        </span>
      </p>
      {failure || cutOff ? (
        <div class="call-problem" role="alert">
          <p>{failure?.message ?? t.callCutOff}</p>
          {failure?.retry === false ? null : (
            <button type="button" onClick={() => setAttempt((n) => n + 1)}>
              {t.tryAgain}
            </button>
          )}
        </div>
      ) : null}
      {notice ? (
        <p class="call-notice" role="alert">
          {notice}
        </p>
      ) : null}
      {connected && audioBlocked ? (
        <button type="button" onClick={() => void room.startAudio().then(() => setAudioBlocked(!room.canPlaybackAudio))}>
          {t.allowSound}
        </button>
      ) : null}
      {connected && me ? (
        <>
          <ul class="tiles" aria-label={t.participants} data-count={Math.min(participants.length, 9)}>
            {participants.map((p) => (
              <Tile key={p.identity} participant={p} speaking={speakers.includes(p.identity)} />
            ))}
          </ul>
          <div class="call-controls">
            <button type="button" aria-pressed={!me.isMicrophoneEnabled} onClick={() => void toggleMic()}>
              {t.mute}
            </button>
            <button type="button" aria-pressed={me.isCameraEnabled} onClick={() => void toggleCamera()}>
              {t.camera}
            </button>
            {canShareScreen ? (
              <button type="button" aria-pressed={me.isScreenShareEnabled} onClick={() => void toggleScreen()}>
                {t.shareScreen}
              </button>
            ) : null}
            <Devices room={room} onError={setNotice} />
            <button type="button" class="danger" onClick={leave}>
              {t.leaveCall}
            </button>
          </div>
        </>
      ) : (
        <div class="call-controls">
          <button type="button" class="danger" onClick={leave}>
            {t.leaveCall}
          </button>
        </div>
      )}
      {/* Remote audio plays from here; never shown. */}
      <div ref={audioSink} hidden />
    </section>
  );
}
