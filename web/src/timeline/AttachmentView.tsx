/** An attachment in a message: an inline image, or a card that downloads the file. */

import { useEffect, useState } from "preact/hooks";
import { t } from "../strings";
import { attachmentUrl, formatSize, isInlineImage, type AttachmentRef } from "./attachments";

function InlineImage({ attachment }: { attachment: AttachmentRef }) {
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let current: string | null = null;
    let alive = true;
    attachmentUrl(attachment.id).then(
      (u) => {
        if (alive) setUrl((current = u));
        else URL.revokeObjectURL(u);
      },
      () => alive && setFailed(true),
    );
    return () => {
      alive = false;
      if (current) URL.revokeObjectURL(current);
    };
  }, [attachment.id]);
  if (failed) return <DownloadCard attachment={attachment} />;
  return url ? (
    <img class="inline-image" src={url} alt={attachment.name} loading="lazy" />
  ) : (
    <span class="image-placeholder">{attachment.name}</span>
  );
}

function DownloadCard({ attachment }: { attachment: AttachmentRef }) {
  const download = async () => {
    const url = await attachmentUrl(attachment.id);
    const a = document.createElement("a");
    a.href = url;
    a.download = attachment.name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  };
  return (
    <button type="button" class="file-card" onClick={() => void download()}>
      {t.download(attachment.name, formatSize(attachment.size))}
    </button>
  );
}

export function AttachmentView({ attachment }: { attachment: AttachmentRef }) {
  return isInlineImage(attachment) ? <InlineImage attachment={attachment} /> : <DownloadCard attachment={attachment} />;
}
