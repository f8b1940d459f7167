"""Calls through Roost and the real livekit-server, measured.

Run by scripts/bench/livekit.sh. For each row, the accounts get call tokens from Roost's API
and join one room; each publishes either a 48 kHz mono tone (2, 4 and 8 participants) or
generated 1280x720 video at 30 fps (2 participants). Join time is from the token request to the
first frame (audio or video, as published) received from another participant. Then, with
everyone publishing, CPU (percent of one core) and RSS of livekit-server and Roost are sampled
from /proc over a fixed window, with what one participant receives (kbit/s, and the size and
rate of the video it decodes: the sender's encoder lowers them when its CPU is short). The 720p call runs twice: through Roost's /rtc proxy, then as
the reference with the same tokens straight to LiveKit's loopback port (no Roost in the path).
Prints one table row per call.

Arguments: ROOST_URL CA_FILE ROOST_PID LIVEKIT_PID LIVEKIT_HTTP_PORT PASSWORD ACCOUNT...
(the first account is an admin)
"""

import asyncio
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "livekit-e2e"))
from call import Roost, fail  # noqa: E402  (the e2e script's API client)

from livekit import rtc  # noqa: E402

SAMPLE_RATE = 48000
WIDTH, HEIGHT, FPS = 1280, 720, 30
WINDOW = 10.0  # seconds of steady state sampled per N
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


# A few frames of noise made once: building 3.5 MiB of pixels per frame in Python would measure
# Python, not the call, and plain colours would code to almost nothing. Noise is the worst case
# for the encoder, so the sender sends at the bitrate cap LiveKit's SDK sets for 720p.
VIDEO_FRAMES = [
    rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, bytearray(os.urandom(WIDTH * HEIGHT * 4)))
    for _ in range(8)
]


async def camera(source, stop):
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        source.capture_frame(VIDEO_FRAMES[n % len(VIDEO_FRAMES)])
        n += 1
        next_at += 1 / FPS
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def inbound(room):
    """(bytes received, "WxH@fps" of the largest video received) on `room`'s connections."""
    stats = await room.get_rtc_stats()
    total, video = 0, ""
    for s in list(stats.publisher_stats) + list(stats.subscriber_stats):
        if s.WhichOneof("stats") != "inbound_rtp":
            continue
        i = s.inbound_rtp.inbound
        total += i.bytes_received
        if i.frame_width and not video:
            video = f"{i.frame_width}x{i.frame_height}@{i.frames_per_second:.0f}"
    return total, video


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
            rtc.LocalVideoTrack.create_video_track("camera", source),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA),
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
    before = {p: cpu_ticks(p) for p in (roost_pid, livekit_pid)}
    bytes_before, _ = await inbound(rooms[0])
    started = time.monotonic()
    await asyncio.sleep(WINDOW)
    elapsed = time.monotonic() - started
    bytes_after, video_in = await inbound(rooms[0])
    kbits = 8 * (bytes_after - bytes_before) / 1000 / elapsed
    cpu = {p: 100 * (cpu_ticks(p) - before[p]) / TICKS / elapsed for p in before}
    rss = {p: rss_mib(p) for p in before}
    stop.set()
    await asyncio.gather(*tasks)
    joined.sort()
    return joined, cpu, rss, kbits, video_in or "-"


async def main(url, ca_file, roost_pid, livekit_pid, livekit_port, password, *accounts):
    roost_pid, livekit_pid = int(roost_pid), int(livekit_pid)
    direct = f"ws://127.0.0.1:{int(livekit_port)}"
    roost = Roost(url, ca_file)
    signed_in = [roost.sign_in(name, password) for name in accounts]
    admin_token = signed_in[0][0]
    print(f"{'call':>22} {'join median s':>14} {'join max s':>11} "
          f"{'livekit CPU %':>14} {'livekit RSS MiB':>16} {'roost CPU %':>12} {'roost RSS MiB':>14} "
          f"{'one receives kbit/s':>20} {'video received':>15}")
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
        joined, cpu, rss, kbits, video_in = await run(roost, [t for t, _ in signed_in[:n]], room_id, roost_pid,
                                     livekit_pid, video, direct_url)
        print(f"{label:>22} {joined[len(joined) // 2]:>14.2f} {joined[-1]:>11.2f} "
              f"{cpu[livekit_pid]:>14.1f} {rss[livekit_pid]:>16.1f} {cpu[roost_pid]:>12.1f} {rss[roost_pid]:>14.1f} "
              f"{kbits:>20.0f} {video_in:>15}",
              flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 8:
        fail(__doc__)
    asyncio.run(main(*sys.argv[1:]))
