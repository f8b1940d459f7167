/**
 * Registers the service worker (/sw.js, see service-worker.js) and notices when a new build
 * of the client has been installed beside the running one: `updateReady` then holds it, and
 * `applyUpdate` hands over to it and reloads the page.
 */

import { signal } from "@preact/signals";

/** A new build's worker, installed and waiting for this page to let it take over. */
export const updateReady = signal<ServiceWorker | null>(null);

export function registerServiceWorker(): void {
  if (!("serviceWorker" in navigator)) return;
  const hadController = navigator.serviceWorker.controller !== null;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    // The first install claims the page without a new build to show: nothing to reload for.
    if (hadController) location.reload();
  });
  navigator.serviceWorker.register("/sw.js").then(
    (registration) => {
      const watch = (worker: ServiceWorker | null) => {
        if (!worker) return;
        const check = () => {
          if (worker.state === "installed" && navigator.serviceWorker.controller) updateReady.value = worker;
        };
        worker.addEventListener("statechange", check);
        check();
      };
      watch(registration.waiting);
      registration.addEventListener("updatefound", () => watch(registration.installing));
    },
    () => {
      // No worker (an untrusted certificate, a private window): the client works online only.
    },
  );
}

export function applyUpdate(): void {
  updateReady.value?.postMessage("roost:activate-update");
}
