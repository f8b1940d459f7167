/**
 * Backups: the complete ones in the backup folder, and "Back up now", which starts the same
 * backup `roost backup` makes and follows it (polling) until it has succeeded or failed.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "../strings";
import { bytes, explain, listBackups, localTime, startBackup, type BackupList, type BackupRun } from "./state";

const POLL_MS = 1000;

function RunResult({ run }: { run: BackupRun }) {
  if (run.state === "running") return <>{t.backupRunning}</>;
  if (run.state === "failed") return <span class="error">{t.backupFailed(run.message ?? t.unknown)}</span>;
  return <>{t.backupDone(run.name ?? "", bytes(run.bytes ?? 0))}</>;
}

export function Backups() {
  const [list, setList] = useState<BackupList | null>(null);
  const [error, setError] = useState<string | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

  const load = async () => {
    try {
      const now = await listBackups();
      setList(now);
      // Follow a running backup until it ends.
      if (now.run?.state === "running") timer.current = setTimeout(() => void load(), POLL_MS);
    } catch (e) {
      setError(explain(e));
    }
  };
  useEffect(() => {
    void load();
    return () => {
      if (timer.current) clearTimeout(timer.current);
    };
  }, []);

  const start = async () => {
    setError(null);
    try {
      const run = await startBackup();
      setList((now) => ({ backups: now?.backups ?? [], run }));
      await load();
    } catch (e) {
      setError(explain(e));
    }
  };

  const running = list?.run?.state === "running";
  return (
    <section aria-labelledby="backups-title">
      <h2 id="backups-title">{t.adminBackups}</h2>
      <button type="button" class="primary" disabled={running} onClick={() => void start()}>
        {t.backUpNow}
      </button>
      <p role="status" class="backup-run">
        {list?.run ? <RunResult run={list.run} /> : null}
      </p>
      {running ? <progress aria-label={t.backupRunning} /> : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {list && list.backups.length === 0 ? <p class="help">{t.noBackups}</p> : null}
      <ul class="admin-list" aria-label={t.adminBackups}>
        {list?.backups.map((b) => (
          <li key={b.name}>
            <span class="admin-item">
              <span>{b.name}</span>
              <span class="help">
                {t.backupSummary(localTime(b.created_at), bytes(b.size_bytes))} · {b.verified ? t.verified : t.notVerified}
              </span>
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}
