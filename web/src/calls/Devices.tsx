/**
 * The call's "Devices" menu: which microphone and camera to use, and which speaker where the
 * browser can choose one (setSinkId). Lists are read when the menu opens and again when
 * devices come and go; nothing here asks for a permission the call has not asked for already.
 */

import { useEffect, useState } from "preact/hooks";
import { Room, RoomEvent, supportsAudioOutputSelection } from "livekit-client";
import { t } from "../strings";

type Kind = "audioinput" | "videoinput" | "audiooutput";

const LABELS: Record<Kind, string> = {
  audioinput: t.microphone,
  videoinput: t.cameraDevice,
  audiooutput: t.speaker,
};

export function Devices({ room, onError }: { room: Room; onError: (message: string) => void }) {
  const [open, setOpen] = useState(false);
  const [devices, setDevices] = useState<Record<Kind, MediaDeviceInfo[]>>({
    audioinput: [],
    videoinput: [],
    audiooutput: [],
  });
  const kinds: Kind[] = supportsAudioOutputSelection()
    ? ["audioinput", "videoinput", "audiooutput"]
    : ["audioinput", "videoinput"];

  useEffect(() => {
    if (!open) return;
    let stale = false;
    const read = async () => {
      const all = await Room.getLocalDevices(undefined, false).catch(() => [] as MediaDeviceInfo[]);
      if (stale) return;
      setDevices({
        audioinput: all.filter((d) => d.kind === "audioinput"),
        videoinput: all.filter((d) => d.kind === "videoinput"),
        audiooutput: all.filter((d) => d.kind === "audiooutput"),
      });
    };
    void read();
    room.on(RoomEvent.MediaDevicesChanged, read);
    return () => {
      stale = true;
      room.off(RoomEvent.MediaDevicesChanged, read);
    };
  }, [open, room]);

  const choose = async (kind: Kind, deviceId: string) => {
    const ok = await room.switchActiveDevice(kind, deviceId).catch(() => false);
    if (!ok) onError(t.deviceSwitchFailed(LABELS[kind]));
  };

  return (
    <div class="devices">
      <button type="button" aria-expanded={open} aria-controls="call-devices" onClick={() => setOpen(!open)}>
        {t.devices}
      </button>
      {open ? (
        <div id="call-devices" class="devices-menu" role="group" aria-label={t.devices}>
          {kinds.map((kind) => (
            <label key={kind} class="field">
              <span>{LABELS[kind]}</span>
              <select
                value={room.getActiveDevice(kind) ?? "default"}
                onChange={(e) => void choose(kind, e.currentTarget.value)}
                disabled={devices[kind].length === 0}
              >
                {devices[kind].length === 0 ? <option value="default">{t.noDevice}</option> : null}
                {devices[kind].map((d, i) => (
                  <option key={d.deviceId} value={d.deviceId}>
                    {d.label || `${LABELS[kind]} ${i + 1}`}
                  </option>
                ))}
              </select>
            </label>
          ))}
        </div>
      ) : null}
    </div>
  );
}
