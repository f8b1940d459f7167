"""Calls through Roost and the real livekit-server, measured.

Run by scripts/bench/livekit.sh. For each row, the accounts get call tokens from Roost's API
and join one room; each publishes either a 48 kHz mono tone (2, 4 and 8 participants) or a
generated 1280x720 moving picture at 30 fps (2 participants). Join time is from the token request
to the first frame (audio or video, as published) received from another participant. Then, with
everyone publishing and after a warm-up (the video encoder starts low and ramps up), CPU
(percent of one core) and RSS of livekit-server and Roost are sampled from /proc over a fixed
window, with what one participant receives: kbit/s, and for video the size and frame rate it
decoded over the window, beside the size and rate its peer's encoder sent, so a reader sees
what was measured. The 720p call runs twice: through Roost's /rtc proxy, then as the reference
with the same tokens straight to LiveKit's loopback port (no Roost in the path).
Prints one table row per call.

Arguments: ROOST_URL CA_FILE ROOST_PID LIVEKIT_PID LIVEKIT_HTTP_PORT PASSWORD ACCOUNT...
(the first account is an admin)
"""

import asyncio
import math
import os
import sys
import time

import numpy as np  # installed with LiveKit's SDK, which depends on it

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "livekit-e2e"))
from call import Roost, fail  # noqa: E402  (the e2e script's API client)

from livekit import rtc  # noqa: E402
from livekit.rtc._proto import stats_pb2  # noqa: E402  (names the encoder's limitation)

SAMPLE_RATE = 48000
WIDTH, HEIGHT, FPS = 1280, 720, 30
WINDOW = 10.0  # seconds of steady state sampled per audio call
# Video: the sender's encoder starts at a low bitrate and ramps up over several seconds, so the
# window starts after a warm-up and is longer, to average over its adjustments.
VIDEO_WARMUP, VIDEO_WINDOW = 10.0, 20.0
# A fixed cap for the one 720p layer: LiveKit's own 720p preset (1.7 Mbit/s) with some room.
VIDEO_MAX_BITRATE = 2_500_000
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_mib(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


async def tone(source, stop):
    samples = SAMPLE_RATE // 100
    frame = rtc.AudioFrame.create(SAMPLE_RATE, 1, samples)
    pcm = frame.data
    for i in range(samples):  # 440 Hz, so the encoder has sound to code (not DTX silence)
        pcm[i] = int(8000 * math.sin(2 * math.pi * 440 * i / SAMPLE_RATE))
    while not stop.is_set():
        await source.capture_frame(frame)
        await asyncio.sleep(0.01)


# What the camera films: a textured scene panning diagonally (what a moving camera gives the
# encoder: most blocks move, and motion search finds them) with a small patch of fresh noise
# (a detail that changes every frame and costs bits). Pure noise, tried first, made the
# sender's VP8 encoder run out of CPU here and drop to 320x180 at 14 fps; a 320x180 noise patch
# kept 720p but, at the bitrate cap, only 18 fps. Frames are I420, the encoder's own format,
# cut from one precomputed texture with numpy, so Python's cost per frame is small.
PAN = 4  # pixels per frame, both axes
_y, _x = np.mgrid[0 : HEIGHT * 2, 0 : WIDTH * 2]
TEXTURE = (
    128
    + 60 * np.sin(_x / 23.0) * np.cos(_y / 31.0)
    + 40 * ((_x // 64 + _y // 64) % 2)
    - 20
    + 15 * np.sin((_x + _y) / 7.0)
).clip(0, 255).astype(np.uint8)
CHROMA_U = (128 + 50 * np.sin(np.arange(WIDTH) / 97.0)).astype(np.uint8)
CHROMA_V = (128 + 50 * np.cos(np.arange(HEIGHT // 2) / 41.0)).astype(np.uint8)
NOISE_W, NOISE_H = 128, 72
_rng = np.random.default_rng(1)


def scene(n):
    """Frame n of the scene, as an I420 VideoFrame."""
    ox = (n * PAN) % WIDTH
    oy = (n * PAN) % HEIGHT
    luma = TEXTURE[oy : oy + HEIGHT, ox : ox + WIDTH].copy()
    luma[40 : 40 + NOISE_H, 40 : 40 + NOISE_W] = _rng.integers(0, 256, (NOISE_H, NOISE_W), dtype=np.uint8)
    u = np.broadcast_to(np.roll(CHROMA_U, n)[None, : WIDTH // 2], (HEIGHT // 2, WIDTH // 2))
    v = np.broadcast_to(np.roll(CHROMA_V, n)[:, None], (HEIGHT // 2, WIDTH // 2))
    data = luma.tobytes() + u.tobytes() + v.tobytes()
    return rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.I420, bytearray(data))


async def camera(source, stop):
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        source.capture_frame(scene(n))
        n += 1
        next_at += 1 / FPS
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


# One layer at a fixed cap, VP8 (what browsers send LiveKit by default): with simulcast the
# SDK adds 180p and 360p layers that cost the sender CPU and that no one here asks for, and the
# encoder may keep 720p by dropping frames rather than shrinking the picture.
VIDEO_OPTIONS = rtc.TrackPublishOptions(
    source=rtc.TrackSource.SOURCE_CAMERA,
    simulcast=False,
    video_codec=rtc.VideoCodec.VP8,
    video_encoding=rtc.VideoEncoding(max_bitrate=VIDEO_MAX_BITRATE, max_framerate=FPS),
    degradation_preference=rtc.DegradationPreference.MAINTAIN_RESOLUTION,
)


async def media_stats(room):
    """What `room`'s connections have counted so far: bytes received, and for video the frames
    decoded and their size, and the frames encoded, their size and what limits the encoder
    (0 and "" without video)."""
    stats = await room.get_rtc_stats()
    got = {"bytes": 0, "decoded": 0, "decoded_size": "", "encoded": 0, "encoded_size": "", "limited_by": ""}
    for s in list(stats.publisher_stats) + list(stats.subscriber_stats):
        kind = s.WhichOneof("stats")
        if kind == "inbound_rtp":
            i = s.inbound_rtp.inbound
            got["bytes"] += i.bytes_received
            if i.frame_width:
                got["decoded"] += i.frames_decoded
                got["decoded_size"] = f"{i.frame_width}x{i.frame_height}"
        elif kind == "outbound_rtp":
            o = s.outbound_rtp.outbound
            if o.frame_width:
                got["encoded"] += o.frames_encoded
                got["encoded_size"] = f"{o.frame_width}x{o.frame_height}"
                # What the encoder says holds it back now: "cpu", "bandwidth", "other" or "none".
                got["limited_by"] = (
                    stats_pb2.QualityLimitationReason.Name(o.quality_limitation_reason)
                    .removeprefix("LIMITATION_")
                    .lower()
                )
    return got


async def participant(roost, token, room_id, stop, joined, video, direct_url, rooms):
    asked = time.monotonic()
    grant = await asyncio.to_thread(roost.ok, "POST", f"/api/v1/rooms/{room_id}/call/token", token, {})
    room = rtc.Room()
    first = asyncio.get_running_loop().create_future()
    wanted = rtc.TrackKind.KIND_VIDEO if video else rtc.TrackKind.KIND_AUDIO

    async def first_frame(track):
        stream = rtc.VideoStream(track) if video else rtc.AudioStream(track)
        async for _ in stream:
            if not first.done():
                first.set_result(time.monotonic() - asked)
            break
        await stream.aclose()

    @room.on("track_subscribed")
    def on_track(track, _pub, _who):
        if track.kind == wanted:
            asyncio.ensure_future(first_frame(track))

    await room.connect(direct_url or grant["url"], grant["token"])
    rooms.append(room)
    if video:
        source = rtc.VideoSource(WIDTH, HEIGHT)
        await room.local_participant.publish_track(
            rtc.LocalVideoTrack.create_video_track("camera", source), VIDEO_OPTIONS
        )
        sending = asyncio.ensure_future(camera(source, stop))
    else:
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        await room.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("tone", source),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        )
        sending = asyncio.ensure_future(tone(source, stop))
    joined.append(await asyncio.wait_for(first, 30))
    await stop.wait()
    await sending
    await room.disconnect()


async def run(roost, tokens, room_id, roost_pid, livekit_pid, video=False, direct_url=None):
    stop = asyncio.Event()
    joined, rooms = [], []
    tasks = [asyncio.ensure_future(participant(roost, t, room_id, stop, joined, video, direct_url, rooms))
             for t in tokens]
    deadline = time.monotonic() + 60
    while len(joined) < len(tokens):
        for t in tasks:
            if t.done() and t.exception():
                fail(f"a participant failed: {t.exception()!r}")
        if time.monotonic() > deadline:
            fail(f"only {len(joined)} of {len(tokens)} participants received media within 60 s")
        await asyncio.sleep(0.05)
    if video:
        await asyncio.sleep(VIDEO_WARMUP)
    before = {p: cpu_ticks(p) for p in (roost_pid, livekit_pid)}
    # rooms[0] receives what its peers send; rooms[1] (one of them) says what it encoded.
    received_before = await media_stats(rooms[0])
    sent_before = await media_stats(rooms[1])
    started = time.monotonic()
    await asyncio.sleep(VIDEO_WINDOW if video else WINDOW)
    elapsed = time.monotonic() - started
    received_after = await media_stats(rooms[0])
    sent_after = await media_stats(rooms[1])
    kbits = 8 * (received_after["bytes"] - received_before["bytes"]) / 1000 / elapsed
    cpu = {p: 100 * (cpu_ticks(p) - before[p]) / TICKS / elapsed for p in before}
    rss = {p: rss_mib(p) for p in before}
    stop.set()
    await asyncio.gather(*tasks)
    joined.sort()
    pictures = ("-", "-")
    if video:
        decoded = (received_after["decoded"] - received_before["decoded"]) / elapsed
        encoded = (sent_after["encoded"] - sent_before["encoded"]) / elapsed
        limited = sent_after["limited_by"]
        pictures = (
            f"{sent_after['encoded_size']}@{encoded:.0f}" + (f" ({limited})" if limited not in ("", "none") else ""),
            f"{received_after['decoded_size']}@{decoded:.0f}",
        )
    return joined, cpu, rss, kbits, pictures


async def main(url, ca_file, roost_pid, livekit_pid, livekit_port, password, *accounts):
    roost_pid, livekit_pid = int(roost_pid), int(livekit_pid)
    direct = f"ws://127.0.0.1:{int(livekit_port)}"
    roost = Roost(url, ca_file)
    signed_in = [roost.sign_in(name, password) for name in accounts]
    admin_token = signed_in[0][0]
    print(f"{'call':>22} {'join median s':>14} {'join max s':>11} "
          f"{'livekit CPU %':>14} {'livekit RSS MiB':>16} {'roost CPU %':>12} {'roost RSS MiB':>14} "
          f"{'one receives kbit/s':>20} {'video sent (limit)':>22} {'video decoded':>15}")
    calls = [(f"{n} audio", n, False, None) for n in (2, 4, 8)] + [
        ("2 video 720p", 2, True, None),
        ("2 video 720p, direct", 2, True, direct),
    ]
    for label, n, video, direct_url in calls:
        if n > len(signed_in):
            fail(f"{n} participants need {n} accounts")
        room_id = roost.ok("POST", "/api/v1/rooms", admin_token, {"name": f"bench {label}", "private": False})["id"]
        for _, user_id in signed_in[1:n]:
            roost.ok("PUT", f"/api/v1/rooms/{room_id}/members/{user_id}", admin_token, {})
        joined, cpu, rss, kbits, (sent, decoded) = await run(
            roost, [t for t, _ in signed_in[:n]], room_id, roost_pid, livekit_pid, video, direct_url
        )
        print(f"{label:>22} {joined[len(joined) // 2]:>14.2f} {joined[-1]:>11.2f} "
              f"{cpu[livekit_pid]:>14.1f} {rss[livekit_pid]:>16.1f} {cpu[roost_pid]:>12.1f} {rss[roost_pid]:>14.1f} "
              f"{kbits:>20.0f} {sent:>22} {decoded:>15}",
              flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 8:
        fail(__doc__)
    asyncio.run(main(*sys.argv[1:]))
