/**
 * One participant's tile in the call grid: their camera or screen share (or their initial),
 * their name, and markers that are both visible and read out: speaking, microphone off, and
 * connection quality. Part of the calls chunk.
 */

import { useEffect, useRef } from "preact/hooks";
import { ConnectionQuality, Track, type Participant } from "livekit-client";
import { t } from "../strings";

/** How many of the three bars are filled for each quality. */
const BARS: Record<ConnectionQuality, number> = {
  [ConnectionQuality.Excellent]: 3,
  [ConnectionQuality.Good]: 2,
  [ConnectionQuality.Poor]: 1,
  [ConnectionQuality.Lost]: 0,
  [ConnectionQuality.Unknown]: 0,
};

function qualityText(q: ConnectionQuality): string {
  switch (q) {
    case ConnectionQuality.Excellent:
    case ConnectionQuality.Good:
      return t.connectionGood;
    case ConnectionQuality.Poor:
      return t.connectionPoor;
    case ConnectionQuality.Lost:
      return t.connectionLost;
    default:
      return t.connectionUnknown;
  }
}

function QualityIcon({ quality }: { quality: ConnectionQuality }) {
  const filled = BARS[quality];
  return (
    <span class={`quality quality-${quality}`} role="img" aria-label={qualityText(quality)} title={qualityText(quality)}>
      <svg viewBox="0 0 12 12" width="12" height="12" aria-hidden="true">
        {[0, 1, 2].map((i) => (
          <rect key={i} x={1 + i * 4} y={8 - i * 3} width="2.5" height={3 + i * 3} class={i < filled ? "on" : "off"} />
        ))}
        {quality === ConnectionQuality.Lost ? <path d="M1 1 L11 11" class="lost" /> : null}
      </svg>
    </span>
  );
}

function MicOffIcon() {
  return (
    <span class="mic-off" role="img" aria-label={t.micOff} title={t.micOff}>
      <svg viewBox="0 0 12 12" width="12" height="12" aria-hidden="true">
        <rect x="4" y="1" width="4" height="6.5" rx="2" />
        <path d="M2.5 6 a3.5 3.5 0 0 0 7 0 M6 9.5 V11 M1 1 L11 11" />
      </svg>
    </span>
  );
}

export function Tile({ participant, speaking }: { participant: Participant; speaking: boolean }) {
  const video = useRef<HTMLVideoElement>(null);
  const screen = participant.getTrackPublication(Track.Source.ScreenShare);
  const camera = participant.getTrackPublication(Track.Source.Camera);
  const pub = screen?.track && !screen.isMuted ? screen : camera;
  const track = pub && !pub.isMuted ? pub.track : undefined;
  useEffect(() => {
    const el = video.current;
    if (!el || !track) return;
    track.attach(el);
    return () => {
      track.detach(el);
    };
  }, [track]);
  const name = participant.name || participant.identity;
  const mirrored = participant.isLocal && pub === camera;
  return (
    <li class={speaking ? "tile speaking" : "tile"}>
      {track ? (
        <video ref={video} class={mirrored ? "mirrored" : undefined} autoplay playsinline muted />
      ) : (
        <span class="avatar" aria-hidden="true">
          {name.slice(0, 1).toUpperCase()}
        </span>
      )}
      <span class="tile-bar">
        <span class="who">
          {name}
          {participant.isLocal ? ` ${t.you}` : ""}
          {speaking ? <span class="visually-hidden">{`, ${t.speaking}`}</span> : null}
        </span>
        {participant.isMicrophoneEnabled ? null : <MicOffIcon />}
        <QualityIcon quality={participant.connectionQuality} />
      </span>
    </li>
  );
}
