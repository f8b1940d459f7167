/**
 * A room's call, in its own chunk: this module (and livekit-client with it) is loaded only when
 * someone presses "Join call". It asks Roost for a call token, connects through Roost's `/rtc`
 * proxy, and shows the connection state, the participants (the active speaker marked), and
 * microphone, camera, screen share and leave controls.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import {
  ConnectionState,
  Room,
  RoomEvent,
  Track,
  type Participant,
  type RemoteTrack,
  type TrackPublication,
} from "livekit-client";
import { api, ApiError, call, NetworkError } from "../api/client";
import { t } from "../strings";

function explain(e: unknown): string {
  if (e instanceof NetworkError) return t.networkError;
  if (e instanceof ApiError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

function VideoTile({ participant, speaking }: { participant: Participant; speaking: boolean }) {
  const video = useRef<HTMLVideoElement>(null);
  const pub: TrackPublication | undefined =
    participant.getTrackPublication(Track.Source.ScreenShare) ?? participant.getTrackPublication(Track.Source.Camera);
  const track = pub?.track;
  useEffect(() => {
    const el = video.current;
    if (!el || !track) return;
    track.attach(el);
    return () => {
      track.detach(el);
    };
  }, [track]);
  return (
    <li class={speaking ? "tile speaking" : "tile"}>
      {track ? <video ref={video} autoplay playsinline muted={participant.isLocal} /> : <span class="avatar" aria-hidden="true">{(participant.name || participant.identity).slice(0, 1).toUpperCase()}</span>}
      <span class="who">
        {participant.name || participant.identity}
        {participant.isLocal ? ` ${t.you}` : ""}
        {speaking ? ` · ${t.speaking}` : ""}
        {participant.isMicrophoneEnabled ? "" : ` · ${t.muted}`}
      </span>
    </li>
  );
}

export default function CallPanel({ roomId, onLeave }: { roomId: number; onLeave: () => void }) {
  const [room] = useState(() => new Room({ adaptiveStream: true, dynacast: true }));
  const [state, setState] = useState<ConnectionState>(ConnectionState.Disconnected);
  const [error, setError] = useState<string | null>(null);
  const [speakers, setSpeakers] = useState<string[]>([]);
  const [, rerender] = useState(0);

  useEffect(() => {
    let left = false;
    const refresh = () => rerender((n) => n + 1);
    room
      .on(RoomEvent.ConnectionStateChanged, (s) => setState(s))
      .on(RoomEvent.ActiveSpeakersChanged, (list: Participant[]) => setSpeakers(list.map((p) => p.identity)))
      .on(RoomEvent.ParticipantConnected, refresh)
      .on(RoomEvent.ParticipantDisconnected, refresh)
      .on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
        if (track.kind === Track.Kind.Audio) document.body.appendChild(track.attach());
        refresh();
      })
      .on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => {
        track.detach().forEach((el) => el.remove());
        refresh();
      })
      .on(RoomEvent.LocalTrackPublished, refresh)
      .on(RoomEvent.LocalTrackUnpublished, refresh)
      .on(RoomEvent.TrackMuted, refresh)
      .on(RoomEvent.TrackUnmuted, refresh);
    (async () => {
      try {
        const grant = await call(() =>
          api.POST("/api/v1/rooms/{id}/call/token", { params: { path: { id: roomId } }, body: {} }),
        );
        if (left) return;
        await room.connect(grant.url, grant.token);
        await room.localParticipant.setMicrophoneEnabled(true).catch(() => {});
      } catch (e) {
        setError(explain(e));
      }
    })();
    return () => {
      left = true;
      void room.disconnect();
    };
  }, [roomId]);

  const me = room.localParticipant;
  const participants: Participant[] = [me, ...room.remoteParticipants.values()];
  const stateText =
    state === ConnectionState.Connected
      ? t.callConnected
      : state === ConnectionState.Reconnecting || state === ConnectionState.SignalReconnecting
        ? t.reconnecting
        : error
          ? t.callFailed
          : t.callConnecting;

  return (
    <section class="call" aria-label={t.call}>
      <p role="status">{stateText}</p>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {state === ConnectionState.Connected ? (
        <>
          <ul class="tiles" aria-label={t.participants}>
            {participants.map((p) => (
              <VideoTile key={p.identity} participant={p} speaking={speakers.includes(p.identity)} />
            ))}
          </ul>
          <div class="actions">
            <button type="button" aria-pressed={!me.isMicrophoneEnabled} onClick={() => void me.setMicrophoneEnabled(!me.isMicrophoneEnabled)}>
              {t.mute}
            </button>
            <button type="button" aria-pressed={me.isCameraEnabled} onClick={() => void me.setCameraEnabled(!me.isCameraEnabled)}>
              {t.camera}
            </button>
            <button type="button" aria-pressed={me.isScreenShareEnabled} onClick={() => void me.setScreenShareEnabled(!me.isScreenShareEnabled).catch(() => {})}>
              {t.shareScreen}
            </button>
          </div>
        </>
      ) : null}
      <button type="button" class="danger" onClick={onLeave}>
        {t.leaveCall}
      </button>
    </section>
  );
}
