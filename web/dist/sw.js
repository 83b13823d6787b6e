// The page's service worker: the page's own files are served from a cache filled at install, so
// the page opens and verifies with the network cut. Data (the trust bundle, status lists) is the
// page's to cache, with the time it was fetched; API calls always go to the network.
'use strict';

// web/build.sh writes the digest of the page's files here, so a new build replaces the cache.
const VERSION = '4e708d68867885c3';
const CACHE = `tongban-page-${VERSION}`;
const FILES = ['./', 'index.html', 'app.js', 'style.css', 'jsQR.js', 'tongban_web.wasm',
  'manifest.webmanifest', 'icon.svg'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys
      .filter((key) => key.startsWith('tongban-page-') && key !== CACHE)
      .map((key) => caches.delete(key))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  const scope = new URL(self.registration.scope);
  if (event.request.method !== 'GET' || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) {
    return;
  }
  // The page's own files: the cached copy, else the network.
  event.respondWith(caches.open(CACHE)
    .then((cache) => cache.match(event.request, { ignoreSearch: true }))
    .then((hit) => hit || fetch(event.request)));
});
