/// `GET /upload.js`: the upload page's script (plain JavaScript, no framework, no other file). It speaks tus 1.0.0
/// to `/api/uploads` with the session cookie and the page's CSRF token:
///
/// 1. every chosen file gets its upload first (`POST`, metadata `source`, `path`, `notes`, `modified`), so the
///    source's browser run stays open until the last file is stored; an upload remembered in `localStorage` under
///    (source, path, size, time) is continued instead (`HEAD`), so choosing the same files after a reload resumes;
/// 2. the files go one after another in `PATCH` chunks of the size the page's form announces (`data-chunk-bytes`,
///    `BrowserUploadSettings.chunkBytes`); a dropped connection, a timeout, a 409, 423 or 5xx waits (backing off up
///    to 30 s), asks the offset with `HEAD` and goes on from there: at most one chunk is sent again;
/// 3. it waits for each upload to be stored (`GET /api/uploads/<id>`) and shows what became of it, with its download.
///
/// `window.uploadStats` (`retries`, `stored`, `failed`, `done`) is there for tests and the curious.
enum UploadScript {
    static let source = #"""
        "use strict";
        (function () {
          var MAX_FAILURES = 40;
          var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
          var form = document.getElementById("upload-form");
          var CHUNK = parseInt(form.getAttribute("data-chunk-bytes"), 10) || 64 * 1024 * 1024;
          var button = document.getElementById("upload-button");
          var statusLine = document.getElementById("upload-status");
          var listing = document.getElementById("upload-list");
          var stats = window.uploadStats = { retries: 0, stored: 0, failed: 0, done: false };
          var totals = { bytes: 0, sent: {} };

          function b64(text) {
            var bytes = new TextEncoder().encode(text), binary = "";
            for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
            return btoa(binary);
          }
          function metadata(pairs) {
            return Object.keys(pairs).filter(function (key) { return pairs[key] !== undefined && pairs[key] !== ""; })
              .map(function (key) { return key + " " + b64(String(pairs[key])); }).join(",");
          }
          function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }
          function fatal(message) { var error = new Error(message); error.fatal = true; return error; }
          function problem(xhr) { return (xhr.responseText || "").trim() || ("the server answered " + xhr.status); }
          function backoff(failures) { return Math.min(30000, 500 * Math.pow(2, Math.min(failures, 6))); }
          function mib(bytes) { return (bytes / 1048576).toFixed(1) + " MiB"; }

          // One request: resolves with the XHR whatever its status; rejects when the connection fails or times out.
          function send(method, url, headers, body, onProgress) {
            return new Promise(function (resolve, reject) {
              var xhr = new XMLHttpRequest();
              xhr.open(method, url);
              xhr.timeout = 120000;
              xhr.setRequestHeader("Tus-Resumable", "1.0.0");
              if (method !== "HEAD" && method !== "GET") xhr.setRequestHeader("X-CSRF-Token", csrf);
              Object.keys(headers).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
              if (onProgress && xhr.upload) xhr.upload.onprogress = function (event) { onProgress(event.loaded); };
              xhr.onload = function () { resolve(xhr); };
              xhr.onerror = function () { reject(new Error("the connection failed")); };
              xhr.ontimeout = function () { reject(new Error("the server did not answer in time")); };
              xhr.onabort = function () { reject(new Error("the request was aborted")); };
              xhr.send(body === undefined ? null : body);
            });
          }

          function row(path, size) {
            var div = document.createElement("div"), name = document.createElement("div");
            var bar = document.createElement("progress"), note = document.createElement("div");
            div.className = "file"; note.className = "small";
            name.textContent = path; bar.max = Math.max(size, 1); bar.value = 0; note.textContent = "waiting";
            div.appendChild(name); div.appendChild(bar); div.appendChild(note); listing.appendChild(div);
            return { div: div, bar: bar, note: note };
          }
          function show(entry, offset) {
            entry.ui.bar.value = offset;
            totals.sent[entry.key] = offset;
            var sent = Object.keys(totals.sent).reduce(function (sum, key) { return sum + totals.sent[key]; }, 0);
            statusLine.textContent = "Uploading: " + mib(sent) + " of " + mib(totals.bytes);
          }

          // Retries `work` after connection failures and server errors; a refusal (4xx) is fatal.
          async function retrying(entry, work) {
            for (var failures = 1; ; failures++) {
              try { return await work(); } catch (error) {
                if (error.fatal || failures > MAX_FAILURES) throw error;
                stats.retries += 1;
                entry.ui.note.textContent = error.message + "; trying again…";
                await sleep(backoff(failures));
              }
            }
          }

          // The upload of this file: the one remembered from an earlier attempt if the server still has it, else new.
          async function open(entry, source, notes) {
            var saved = localStorage.getItem(entry.key);
            if (saved) {
              var head = await send("HEAD", saved, {});
              if (head.status === 200) {
                entry.url = saved;
                entry.offset = parseInt(head.getResponseHeader("Upload-Offset"), 10);
                show(entry, entry.offset);
                return;
              }
              localStorage.removeItem(entry.key);
            }
            var xhr = await send("POST", "/api/uploads", {
              "Upload-Length": String(entry.size),
              "Upload-Metadata": metadata({ source: source, path: entry.path, notes: notes, modified: entry.file.lastModified })
            });
            if (xhr.status >= 500) throw new Error(problem(xhr));
            if (xhr.status !== 201) throw fatal(entry.path + ": " + problem(xhr));
            entry.url = xhr.getResponseHeader("Location");
            entry.offset = 0;
            localStorage.setItem(entry.key, entry.url);
          }

          // Sends the rest of the file in chunks; after a failure, asks the offset (HEAD) and goes on from there.
          async function upload(entry) {
            var failures = 0;
            while (entry.offset < entry.size) {
              var start = entry.offset, end = Math.min(start + CHUNK, entry.size);
              try {
                var xhr = await send("PATCH", entry.url, { "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(start) },
                  entry.file.slice(start, end), function (loaded) { show(entry, start + loaded); });
                if (xhr.status === 204) {
                  entry.offset = parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
                  failures = 0;
                  entry.ui.note.textContent = "uploading";
                  show(entry, entry.offset);
                  continue;
                }
                if (xhr.status !== 409 && xhr.status !== 423 && xhr.status < 500) throw fatal(entry.path + ": " + problem(xhr));
                entry.ui.note.textContent = problem(xhr) + "; resuming…";
              } catch (error) {
                if (error.fatal) throw error;
                entry.ui.note.textContent = error.message + "; resuming…";
              }
              failures += 1;
              stats.retries += 1;
              if (failures > MAX_FAILURES) throw fatal(entry.path + ": gave up after " + MAX_FAILURES + " failed attempts");
              await sleep(backoff(failures));
              try {
                var head = await send("HEAD", entry.url, {});
                if (head.status === 200) entry.offset = parseInt(head.getResponseHeader("Upload-Offset"), 10);
                else if (head.status === 404) throw fatal(entry.path + ": the server no longer has this upload; choose the file again");
              } catch (error) {
                if (error.fatal) throw error;
              }
              show(entry, entry.offset);
            }
          }

          // Waits until the server has stored the upload in the catalog.
          async function stored(entry) {
            var id = entry.url.split("/").pop();
            for (;;) {
              try {
                var xhr = await send("GET", "/api/uploads/" + id, {});
                if (xhr.status === 404) throw fatal(entry.path + ": the server no longer has this upload");
                if (xhr.status === 200) {
                  var info = JSON.parse(xhr.responseText);
                  if (info.state === "stored") return info;
                  if (info.state === "receiving") throw fatal(entry.path + ": the server lost part of this file before storing it; choose it again to send the rest");
                  entry.ui.note.textContent = info.error ? "storing (trying again: " + info.error + ")" : "storing…";
                }
              } catch (error) {
                if (error.fatal) throw error;
              }
              await sleep(1000);
            }
          }

          function finished(entry, info) {
            entry.ui.bar.value = entry.ui.bar.max;
            entry.ui.note.textContent = info.outcome + " ";
            entry.ui.div.setAttribute("data-outcome", info.outcome);
            if (info.download) {
              var link = document.createElement("a");
              link.href = info.download; link.textContent = "download";
              entry.ui.note.appendChild(link);
            }
          }

          async function run() {
            var source = document.getElementById("source").value.trim();
            var notes = document.getElementById("notes").value.trim();
            var files = Array.prototype.slice.call(document.getElementById("files").files)
              .concat(Array.prototype.slice.call(document.getElementById("folder").files));
            if (!source) throw fatal("name the source");
            if (files.length === 0) throw fatal("choose files or a folder");
            listing.textContent = "";
            totals = { bytes: 0, sent: {} };
            stats.stored = 0; stats.failed = 0;
            var entries = files.map(function (file) {
              var path = file.webkitRelativePath || file.name;
              totals.bytes += file.size;
              return { file: file, path: path, size: file.size, offset: 0, url: null,
                       key: ["tus", source, path, file.size, file.lastModified].join("|"), ui: row(path, file.size) };
            });
            statusLine.textContent = "Preparing " + entries.length + " file(s)…";
            // Every upload first: the source stays open for this batch until its last file is stored.
            for (var i = 0; i < entries.length; i++) {
              var entry = entries[i];
              await retrying(entry, function () { return open(entry, source, notes); });
            }
            var sent = [];
            for (var j = 0; j < entries.length; j++) {
              try {
                entries[j].ui.note.textContent = "uploading";
                await upload(entries[j]);
                entries[j].ui.note.textContent = "waiting to be stored";
                sent.push(entries[j]);
              } catch (error) {
                stats.failed += 1;
                entries[j].ui.div.setAttribute("data-outcome", "failed");
                entries[j].ui.note.textContent = error.message;
              }
            }
            for (var k = 0; k < sent.length; k++) {
              try {
                var info = await stored(sent[k]);
                localStorage.removeItem(sent[k].key);
                stats.stored += 1;
                finished(sent[k], info);
              } catch (error) {
                stats.failed += 1;
                sent[k].ui.div.setAttribute("data-outcome", "failed");
                sent[k].ui.note.textContent = error.message;
              }
            }
            statusLine.textContent = "Done: " + stats.stored + " of " + entries.length + " file(s) stored in " + source + "."
              + (stats.failed ? " " + stats.failed + " failed: choose them again to continue." : "");
          }

          form.addEventListener("submit", function (event) {
            event.preventDefault();
            button.disabled = true;
            stats.done = false;
            run().catch(function (error) {
              statusLine.textContent = "Upload stopped: " + error.message;
            }).then(function () {
              stats.done = true;
              button.disabled = false;
            });
          });
        })();
        """#
}
