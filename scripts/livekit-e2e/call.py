"""A two-person call through Roost with LiveKit's official Python SDK (`livekit` on PyPI).

Run by scripts/livekit-e2e.sh against a running `roost serve` with the real livekit-server,
supervised by Roost or external (then its webhooks reach Roost over HTTPS). Both people get call tokens from Roost's API and connect to the URL it hands
out (Roost's TLS `/rtc` proxy). One publishes generated audio and video; the other must receive
frames of both within 10 s. LiveKit's webhooks must make `GET /api/v1/rooms/{id}/call` list
both, then one after a leave. LiveKit must refuse a token rewritten for another room and an
expired one. Exits non-zero with a message on the first thing that does not hold.

Arguments: ROOST_URL CA_FILE SECRET_FILE ADMIN MEMBER PASSWORD
(SECRET_FILE holds LiveKit's API secret, to sign the expired token)
"""

import asyncio
import base64
import hashlib
import hmac
import json
import math
import ssl
import sys
import time
import urllib.error
import urllib.request

from livekit import rtc

FRAMES_WITHIN = 10.0  # seconds: the brief for "media flows"
WEBHOOK_WITHIN = 15.0  # seconds: LiveKit posts webhooks from a queue
WIDTH, HEIGHT = 320, 240
SAMPLE_RATE = 48000


def fail(what):
    print(f"livekit-e2e: FAIL: {what}", file=sys.stderr, flush=True)
    sys.exit(1)


def step(what, t0):
    print(f"  [{time.monotonic() - t0:6.2f}s] {what}", flush=True)


class Roost:
    """Just enough of Roost's JSON API, over TLS trusting its local CA."""

    def __init__(self, url, ca_file):
        self.url = url
        self.tls = ssl.create_default_context(cafile=ca_file)

    def call(self, method, path, token=None, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, context=self.tls, timeout=20) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def ok(self, method, path, token=None, body=None):
        status, answer = self.call(method, path, token, body)
        if status >= 300:
            fail(f"{method} {path} answered {status}: {answer}")
        return answer

    def sign_in(self, name, password):
        tokens = self.ok("POST", "/api/v1/auth/login", body={"username": name, "password": password})
        me = self.ok("GET", "/api/v1/me", tokens["access_token"])
        return tokens["access_token"], me["user"]["id"]


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rewritten(token, change, secret=None):
    """The token with its claims changed by `change`; re-signed with `secret` if given, else
    with the original signature kept (a forgery)."""
    header, payload, signature = token.split(".")
    claims = json.loads(unb64url(payload))
    change(claims)
    payload = b64url(json.dumps(claims).encode())
    if secret is not None:
        mac = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
        signature = b64url(mac.digest())
    return f"{header}.{payload}.{signature}"


async def publish(room, stop):
    """Publishes a 440 Hz tone and a moving gradient until `stop` is set."""
    audio = rtc.AudioSource(SAMPLE_RATE, 1)
    video = rtc.VideoSource(WIDTH, HEIGHT)
    await room.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("tone", audio),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
    )
    await room.local_participant.publish_track(
        rtc.LocalVideoTrack.create_video_track("gradient", video),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA),
    )
    samples = SAMPLE_RATE // 100  # 10 ms of audio per frame
    n = 0
    while not stop.is_set():
        frame = rtc.AudioFrame.create(SAMPLE_RATE, 1, samples)
        pcm = frame.data
        for i in range(samples):
            pcm[i] = int(8000 * math.sin(2 * math.pi * 440 * (n * samples + i) / SAMPLE_RATE))
        await audio.capture_frame(frame)
        if n % 3 == 0:  # ~33 frames per second of video
            shade = (n * 4) % 256
            pixels = bytearray([shade, 255 - shade, 128, 255]) * (WIDTH * HEIGHT)
            video.capture_frame(rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, pixels))
        n += 1
        await asyncio.sleep(0.01)


async def first_frame(stream):
    async for _ in stream:
        await stream.aclose()
        return
    fail("a media stream ended before its first frame")


async def call_participants(roost, token, room_id):
    state = await asyncio.to_thread(roost.ok, "GET", f"/api/v1/rooms/{room_id}/call", token)
    return sorted(p["identity"] for p in state["participants"])


async def wait_participants(roost, token, room_id, expected, t0):
    deadline = time.monotonic() + WEBHOOK_WITHIN
    while True:
        seen = await call_participants(roost, token, room_id)
        if seen == sorted(expected):
            return
        if time.monotonic() > deadline:
            fail(f"GET /api/v1/rooms/{room_id}/call lists {seen}, expected {sorted(expected)}")
        await asyncio.sleep(0.1)


async def refused(url, token, what):
    room = rtc.Room()
    try:
        await asyncio.wait_for(room.connect(url, token, rtc.RoomOptions(auto_subscribe=False)), 20)
    except rtc.ConnectError:
        return
    except asyncio.TimeoutError:
        fail(f"connecting with {what} neither succeeded nor failed within 20 s")
    await room.disconnect()
    fail(f"LiveKit accepted {what}")


async def main(url, ca_file, secret_file, admin_name, member_name, password):
    t0 = time.monotonic()
    roost = Roost(url, ca_file)
    admin_token, _ = roost.sign_in(admin_name, password)
    member_token, member_id = roost.sign_in(member_name, password)
    room_id = roost.ok("POST", "/api/v1/rooms", admin_token, {"name": "e2e call", "private": False})["id"]
    other_id = roost.ok("POST", "/api/v1/rooms", admin_token, {"name": "e2e other", "private": False})["id"]
    roost.ok("PUT", f"/api/v1/rooms/{room_id}/members/{member_id}", admin_token, {})
    alice = roost.ok("POST", f"/api/v1/rooms/{room_id}/call/token", admin_token, {})
    bob = roost.ok("POST", f"/api/v1/rooms/{room_id}/call/token", member_token, {})
    if not alice["url"].startswith("wss://"):
        fail(f"Roost handed out {alice['url']!r}, not a wss:// URL")
    step(f"call tokens from Roost for {alice['identity']} and {bob['identity']} in {alice['room']}", t0)

    receiver = rtc.Room()
    got = {}

    @receiver.on("track_subscribed")
    def on_track(track, _publication, _participant):
        kind = "video" if track.kind == rtc.TrackKind.KIND_VIDEO else "audio"
        stream = rtc.VideoStream(track) if kind == "video" else rtc.AudioStream(track)
        got[kind] = asyncio.ensure_future(first_frame(stream))

    sender = rtc.Room()
    await receiver.connect(bob["url"], bob["token"])
    await sender.connect(alice["url"], alice["token"])
    step(f"both connected through {alice['url']}/rtc", t0)

    stop = asyncio.Event()
    publishing = asyncio.ensure_future(publish(sender, stop))
    started = time.monotonic()
    deadline = started + FRAMES_WITHIN
    while set(got) != {"audio", "video"} or not all(f.done() for f in got.values()):
        if publishing.done():
            publishing.result()
            fail("publishing stopped")
        if time.monotonic() > deadline:
            fail(f"frames not received within {FRAMES_WITHIN:.0f} s (subscribed: {sorted(got)})")
        await asyncio.sleep(0.02)
    step(f"{bob['identity']} received audio and video frames {time.monotonic() - started:.2f} s after publishing began", t0)

    await wait_participants(roost, admin_token, room_id, [alice["identity"], bob["identity"]], t0)
    step("LiveKit's webhooks reached Roost: the call lists both", t0)

    stop.set()
    await publishing
    await sender.disconnect()
    await wait_participants(roost, admin_token, room_id, [bob["identity"]], t0)
    step("after a leave the call lists one", t0)
    await receiver.disconnect()

    with open(secret_file) as f:
        secret = f.read().strip()
    other_room = f"roost-room-{other_id}"
    await refused(
        bob["url"],
        rewritten(bob["token"], lambda c: c["video"].update(room=other_room)),
        "a token rewritten for another room",
    )
    now = int(time.time())
    await refused(
        bob["url"],
        rewritten(bob["token"], lambda c: c.update(nbf=now - 900, exp=now - 600), secret),
        "an expired token",
    )
    step("LiveKit refused a token for another room and an expired token", t0)


if __name__ == "__main__":
    if len(sys.argv) != 7:
        fail(__doc__)
    asyncio.run(main(*sys.argv[1:]))
