// Paris avenir service worker. It stores only the offline page and what that page needs,
// and answers with it when a page cannot load. It never stores a page of someone's space:
// phones are often shared, and those pages are marked no-store anyway.
"use strict";
const CACHE = {{ cache_name|safe }};
const PRECACHED = {{ precached|safe }};
const OFFLINE_PAGE = PRECACHED[0];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(PRECACHED.map((url) => new Request(url, { credentials: "omit" }))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  if (request.mode === "navigate") {
    // Always the network first; the stored page only when the network fails.
    event.respondWith(fetch(request).catch(() => caches.match(OFFLINE_PAGE)));
    return;
  }
  if (PRECACHED.includes(new URL(request.url).pathname)) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  }
});
