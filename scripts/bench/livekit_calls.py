"""Calls of N audio participants through Roost and the real livekit-server, measured.

Run by scripts/bench/livekit.sh. For each N: N accounts get call tokens from Roost's API and
join one room through Roost's /rtc proxy; each publishes a 48 kHz mono tone. Join time is from
the token request to the first audio frame received from another participant. Then, with
everyone publishing, CPU (percent of one core) and RSS of livekit-server and Roost are sampled
from /proc over a fixed window. Prints one table row per N.

Arguments: ROOST_URL CA_FILE ROOST_PID LIVEKIT_PID PASSWORD ACCOUNT... (the first is an admin)
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


async def participant(roost, token, room_id, stop, joined):
    asked = time.monotonic()
    grant = await asyncio.to_thread(roost.ok, "POST", f"/api/v1/rooms/{room_id}/call/token", token, {})
    room = rtc.Room()
    first = asyncio.get_running_loop().create_future()

    async def first_frame(track):
        stream = rtc.AudioStream(track)
        async for _ in stream:
            if not first.done():
                first.set_result(time.monotonic() - asked)
            break
        await stream.aclose()

    @room.on("track_subscribed")
    def on_track(track, _pub, _who):
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            asyncio.ensure_future(first_frame(track))

    await room.connect(grant["url"], grant["token"])
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


async def run(roost, tokens, room_id, roost_pid, livekit_pid):
    stop = asyncio.Event()
    joined = []
    tasks = [asyncio.ensure_future(participant(roost, t, room_id, stop, joined)) for t in tokens]
    deadline = time.monotonic() + 60
    while len(joined) < len(tokens):
        for t in tasks:
            if t.done() and t.exception():
                fail(f"a participant failed: {t.exception()!r}")
        if time.monotonic() > deadline:
            fail(f"only {len(joined)} of {len(tokens)} participants received audio within 60 s")
        await asyncio.sleep(0.05)
    before = {p: cpu_ticks(p) for p in (roost_pid, livekit_pid)}
    started = time.monotonic()
    await asyncio.sleep(WINDOW)
    elapsed = time.monotonic() - started
    cpu = {p: 100 * (cpu_ticks(p) - before[p]) / TICKS / elapsed for p in before}
    rss = {p: rss_mib(p) for p in before}
    stop.set()
    await asyncio.gather(*tasks)
    joined.sort()
    return joined, cpu, rss


async def main(url, ca_file, roost_pid, livekit_pid, password, *accounts):
    roost_pid, livekit_pid = int(roost_pid), int(livekit_pid)
    roost = Roost(url, ca_file)
    signed_in = [roost.sign_in(name, password) for name in accounts]
    admin_token = signed_in[0][0]
    print(f"{'participants':>12} {'join median s':>14} {'join max s':>11} "
          f"{'livekit CPU %':>14} {'livekit RSS MiB':>16} {'roost CPU %':>12} {'roost RSS MiB':>14}")
    for n in (2, 4, 8):
        if n > len(signed_in):
            fail(f"{n} participants need {n} accounts")
        room_id = roost.ok("POST", "/api/v1/rooms", admin_token, {"name": f"bench {n}", "private": False})["id"]
        for _, user_id in signed_in[1:n]:
            roost.ok("PUT", f"/api/v1/rooms/{room_id}/members/{user_id}", admin_token, {})
        joined, cpu, rss = await run(roost, [t for t, _ in signed_in[:n]], room_id, roost_pid, livekit_pid)
        print(f"{n:>12} {joined[len(joined) // 2]:>14.2f} {joined[-1]:>11.2f} "
              f"{cpu[livekit_pid]:>14.1f} {rss[livekit_pid]:>16.1f} {cpu[roost_pid]:>12.1f} {rss[roost_pid]:>14.1f}",
              flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 7:
        fail(__doc__)
    asyncio.run(main(*sys.argv[1:]))
