/** The server's status, as `roost status` shows it, refreshed every 10 seconds while open. */

import { useEffect, useState } from "preact/hooks";
import { t } from "../strings";
import { bytes, duration, explain, localTime, serverStatus, type ServerStatus as Report } from "./state";

const REFRESH_MS = 10_000;

function Item({ label, value }: { label: string; value: string }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

export function ServerStatus() {
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<string | null>(null);
  const refresh = async () => {
    try {
      setReport(await serverStatus());
      setError(null);
    } catch (e) {
      setError(explain(e));
    }
  };
  useEffect(() => {
    void refresh();
    const timer = setInterval(() => void refresh(), REFRESH_MS);
    return () => clearInterval(timer);
  }, []);

  const r = report;
  const h = r?.health;
  const throttling = h?.throttled
    ? Object.entries(h.throttled)
        .filter(([k, on]) => k !== "raw" && on === true)
        .map(([k]) => k.replace(/_/g, " "))
        .join(", ") || "none"
    : null;
  return (
    <section aria-labelledby="status-title">
      <h2 id="status-title">{t.adminStatus}</h2>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {r ? (
        <dl class="status-list">
          <Item label={t.statusVersion} value={r.version} />
          <Item label={t.statusUptime} value={duration(r.uptime_secs)} />
          <Item
            label={t.statusDisk}
            value={
              r.disk.free_bytes == null
                ? t.unknown
                : t.statusDiskValue(bytes(r.disk.free_bytes), r.disk.total_bytes == null ? null : bytes(r.disk.total_bytes)) +
                  (r.disk.low ? `; ${t.statusDiskLow}` : "")
            }
          />
          {r.database_bytes != null ? <Item label={t.statusDatabase} value={bytes(r.database_bytes)} /> : null}
          {h?.memory_available_bytes != null && h.memory_total_bytes != null ? (
            <Item label={t.statusMemory} value={t.statusMemoryValue(bytes(h.memory_available_bytes), bytes(h.memory_total_bytes))} />
          ) : null}
          {h?.cpu_temperature_celsius != null ? (
            <Item label={t.statusTemperature} value={`${h.cpu_temperature_celsius.toFixed(1)} °C`} />
          ) : null}
          {throttling !== null ? <Item label={t.statusThrottling} value={throttling} /> : null}
          {h?.load1 != null ? (
            <Item label={t.statusLoad} value={[h.load1, h.load5, h.load15].map((l) => (l ?? 0).toFixed(2)).join(" ")} />
          ) : null}
          <Item
            label={t.statusLiveKit}
            value={
              (r.livekit.phase || r.livekit.state) +
              (r.livekit.external ? ` (${t.statusLiveKitExternal})` : "") +
              (r.livekit.message ? `: ${r.livekit.message}` : "")
            }
          />
          <Item
            label={t.statusLastBackup}
            value={r.last_backup ? `${localTime(r.last_backup.created)} (${duration(Math.max(0, r.last_backup.age_secs))})` : t.statusNoBackup}
          />
          <Item
            label={t.statusConnections}
            value={Object.entries(r.connections)
              .map(([k, v]) => `${k} ${v}`)
              .join(", ")}
          />
          <Item
            label={t.statusStored}
            value={Object.entries(r.counts)
              .map(([k, v]) => `${v} ${k}`)
              .join(", ")}
          />
        </dl>
      ) : null}
      <button type="button" onClick={() => void refresh()}>
        {t.refresh}
      </button>
    </section>
  );
}
