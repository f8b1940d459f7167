// End to end: an admin registers an outgoing webhook on the administration page, sees its
// secret once, pauses it and reads its (empty) delivery log, as a person would.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startRoost } from "./roost.mjs";
import { WAIT, browserFor, createAdmin, fromMenu, newContext, screenshotPath } from "./browser.mjs";

const ADMIN = { username: "root", password: "correct horse battery staple" };

let roost, browser, page;

describe("webhooks on the administration page", () => {
  before(async () => {
    roost = await startRoost();
    let serveDist;
    ({ browser, serveDist } = await browserFor(roost));
    const context = await newContext(browser, roost.origin, { serveDist });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await roost?.stop();
  });

  test("an admin adds, pauses and inspects a webhook", async () => {
    try {
      await createAdmin(page, await roost.setupCode(), ADMIN);
      await fromMenu(page, "Administration");
      await page.getByRole("navigation", { name: "Administration" }).getByRole("link", { name: "Webhooks" }).click();

      const section = page.getByRole("region", { name: "Webhooks" });
      await section.getByRole("textbox", { name: "Receiver URL" }).fill("http://192.168.1.50:8123/api/webhook/roost");
      await section.getByRole("checkbox", { name: "member.joined" }).check();
      await section.getByRole("button", { name: "Add webhook" }).click();
      const secret = section.getByRole("textbox", { name: "Signing secret (shown only now)" });
      await secret.waitFor(WAIT);
      assert.match(await secret.inputValue(), /^whsec_[0-9a-f]{64}$/);
      const hook = section.getByRole("listitem").filter({ hasText: "192.168.1.50" });
      await hook.getByText("message.created, member.joined").waitFor(WAIT);

      await hook.getByRole("button", { name: "Pause" }).click();
      await hook.getByText("paused: paused by an admin").waitFor(WAIT);
      await hook.getByRole("button", { name: "Deliveries" }).click();
      await hook.getByText("Nothing sent yet.").waitFor(WAIT);
      await page.screenshot({ path: screenshotPath("webhooks-admin"), fullPage: true });

      // A refused address is explained, not added.
      await section.getByRole("textbox", { name: "Receiver URL" }).fill("http://127.0.0.1:9/");
      await section.getByRole("button", { name: "Add webhook" }).click();
      await section.getByRole("alert").getByText("loopback").waitFor(WAIT);
    } catch (e) {
      await page.screenshot({ path: screenshotPath("failure-webhooks") }).catch(() => {});
      throw e;
    }
  });
});
