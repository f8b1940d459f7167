/**
 * Administration, in its own chunk (loaded when an admin opens it): a navigation of pages
 * (users, invites, API keys, audit log, server status, backups, branding) and the open page.
 * On a phone it is one pane: the list of pages, or a page with a way back; from 48rem wide
 * the list stays beside the page. Each page is at `/admin/<page>`, so a reload stays there.
 */

import type { FunctionComponent } from "preact";
import { adminPage, navigate } from "../app/router";
import { t } from "../strings";
import "./admin.css";
import { ApiKeys } from "./ApiKeys";
import { Audit } from "./Audit";
import { Backups } from "./Backups";
import { BrandingPage } from "./Branding";
import { Invites } from "./Invites";
import { ServerStatus } from "./Status";
import { Users } from "./Users";
import Webhooks from "./Webhooks";

const PAGES: { slug: string; label: string; Page: FunctionComponent }[] = [
  { slug: "users", label: t.adminUsers, Page: Users },
  { slug: "invites", label: t.adminInvites, Page: Invites },
  { slug: "api-keys", label: t.adminApiKeys, Page: ApiKeys },
  { slug: "audit", label: t.adminAudit, Page: Audit },
  { slug: "status", label: t.adminStatus, Page: ServerStatus },
  { slug: "backups", label: t.adminBackups, Page: Backups },
  { slug: "branding", label: t.adminBranding, Page: BrandingPage },
  { slug: "webhooks", label: t.webhooks, Page: Webhooks },
];

export default function AdminPage() {
  const chosen = PAGES.find((p) => p.slug === adminPage.value);
  // Wide screens show the first page beside the list when none is chosen yet.
  const shown = chosen ?? PAGES[0];
  return (
    <div class={chosen ? "admin page-open" : "admin"}>
      <header class="room-header">
        <button type="button" class="back" onClick={() => navigate("/")}>
          <span aria-hidden="true">‹ </span>
          {t.back}
        </button>
        <h2>{t.administration}</h2>
      </header>
      <div class="admin-panes">
        <nav class="admin-nav" aria-label={t.adminNav}>
          <ul>
            {PAGES.map((p) => (
              <li key={p.slug}>
                <a
                  href={`/admin/${p.slug}`}
                  aria-current={p === chosen ? "page" : undefined}
                  onClick={(e) => (e.preventDefault(), navigate(`/admin/${p.slug}`))}
                >
                  {p.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="admin-page">
          {chosen ? (
            <button type="button" class="back admin-back" onClick={() => navigate("/admin")}>
              <span aria-hidden="true">‹ </span>
              {t.backToAdmin}
            </button>
          ) : null}
          <shown.Page key={shown.slug} />
        </div>
      </div>
    </div>
  );
}
