// Checks Roost against LiveKit's official server SDK (npm `livekit-server-sdk`):
//  (a) call tokens minted by Roost verify with the SDK's TokenVerifier and carry the grants
//      LiveKit expects;
//  (b) webhooks signed the SDK's way (AccessToken with the sha256 claim over a body the SDK
//      serialises) are accepted by Roost's receiver, and a tampered one is refused.
// Inputs come from the environment (see scripts/livekit-compat.sh). Exits non-zero on failure.

import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { AccessToken, TokenVerifier, WebhookReceiver } from 'livekit-server-sdk';
// The SDK's own WebhookEvent subclass resets `event` to "" after construction; build the
// event with the protocol class it extends.
import { ParticipantInfo, Room, WebhookEvent } from '@livekit/protocol';

const { LK_KEY, LK_SECRET, WEBHOOK_URL, MEMBER_TOKEN_JSON, GUEST_TOKEN_JSON } = process.env;
let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

const verifier = new TokenVerifier(LK_KEY, LK_SECRET);
const member = JSON.parse(MEMBER_TOKEN_JSON);
const guest = JSON.parse(GUEST_TOKEN_JSON);

await check('member token verifies with the SDK and carries room-scoped grants', async () => {
  const claims = await verifier.verify(member.token);
  assert.equal(claims.sub, 'compat-member');
  assert.equal(claims.name, 'Compat Check');
  assert.equal(claims.metadata, '{"from":"roost"}');
  assert.equal(claims.video.roomJoin, true);
  assert.equal(claims.video.room, 'compat-room');
  assert.equal(claims.video.canPublish, true);
  assert.equal(claims.video.canSubscribe, true);
  assert.equal(claims.video.canPublishData, true);
  assert.deepEqual(
    [...claims.video.canPublishSources].sort(),
    ['camera', 'microphone', 'screen_share', 'screen_share_audio'],
  );
  assert.equal(claims.video.canUpdateOwnMetadata, false);
  assert.equal(claims.iss, LK_KEY);
});

await check('token lifetime is capped at 300 s although a day was asked', async () => {
  const claims = await verifier.verify(member.token);
  assert.equal(member.ttl_secs, 300);
  assert.equal(claims.exp - claims.nbf, 300);
  assert.equal(claims.exp, member.expires_at);
});

await check('guest token only subscribes', async () => {
  const claims = await verifier.verify(guest.token);
  assert.equal(claims.video.canPublish, false);
  assert.equal(claims.video.canPublishData, false);
  assert.equal(claims.video.canSubscribe, true);
  assert.ok(!claims.video.canPublishSources || claims.video.canPublishSources.length === 0);
});

await check('the SDK refuses Roost tokens under another secret', async () => {
  const other = new TokenVerifier(LK_KEY, 'x'.repeat(43));
  await assert.rejects(other.verify(member.token));
});

function sdkWebhook(event) {
  const body = event.toJsonString();
  const at = new AccessToken(LK_KEY, LK_SECRET, { ttl: '5m' });
  at.sha256 = createHash('sha256').update(body).digest('base64');
  return at.toJwt().then((token) => ({ body, token }));
}

async function post(body, token) {
  const resp = await fetch(WEBHOOK_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/webhook+json', authorization: token },
    body,
  });
  return resp.status;
}

const now = BigInt(Math.floor(Date.now() / 1000));
const joined = new WebhookEvent({
  event: 'participant_joined',
  id: 'EV_compat_1',
  createdAt: now,
  room: new Room({ sid: 'RM_compat', name: 'compat-room', creationTime: now }),
  participant: new ParticipantInfo({ sid: 'PA_compat', identity: 'compat-member', name: 'Compat', joinedAt: now }),
});

await check('an SDK-signed webhook is accepted by Roost', async () => {
  const { body, token } = await sdkWebhook(joined);
  assert.match(body, /"event":"participant_joined"/);
  assert.match(body, /"createdAt":"\d+"/, 'int64 fields travel as strings');
  // The SDK's own receiver agrees the delivery is genuine.
  await new WebhookReceiver(LK_KEY, LK_SECRET).receive(body, token);
  assert.equal(await post(body, token), 200);
});

await check('a tampered SDK-signed webhook is refused with 401', async () => {
  const { body, token } = await sdkWebhook(joined);
  const tampered = body.replace('compat-member', 'mallory');
  assert.notEqual(tampered, body);
  assert.equal(await post(tampered, token), 401);
});

await check('a webhook signed with another secret is refused with 401', async () => {
  const body = joined.toJsonString();
  const at = new AccessToken(LK_KEY, 'y'.repeat(43), { ttl: '5m' });
  at.sha256 = createHash('sha256').update(body).digest('base64');
  assert.equal(await post(body, await at.toJwt()), 401);
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
