"""Reference for bench/family/upload: how fast headless Chromium uploads a file at all on this machine.

  chromium_sink.py FILE CHUNK_MIB ROUNDS CHROMIUM CHROMEDRIVER

A Python server on loopback that reads and discards request bodies (no disk, no database, no fsync) serves a page
with a file input; Chromium sends FILE to it by XMLHttpRequest in CHUNK_MIB pieces, one after another (what
/upload.js does, minus tus), and curl -T sends it to the same sink as one request. The ratio of the two is the most
any page in Chromium could reach against curl -T, whatever the server does. Prints one line per round:
"sink ROUND BYTES CHROMIUM_S CURL_S".
"""
import http.server
import os
import subprocess
import sys
import threading
import time

PAGE = b"""<!doctype html><html><body><input type="file" id="file"><script>
window.send = async function (chunk) {
  var file = document.getElementById("file").files[0], started = performance.now();
  for (var start = 0; start < file.size; start += chunk) {
    var body = file.slice(start, Math.min(file.size, start + chunk));
    await new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("PATCH", "/sink");
      xhr.upload.onprogress = function () {};
      xhr.onload = function () { xhr.status === 204 ? resolve() : reject(new Error("status " + xhr.status)); };
      xhr.onerror = function () { reject(new Error("the connection failed")); };
      xhr.send(body);
    });
  }
  return (performance.now() - started) / 1000;
};
</script></body></html>"""


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *arguments):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def do_PATCH(self):
        left = int(self.headers["Content-Length"])
        while left > 0:
            got = self.rfile.read1(min(left, 1 << 20))
            if not got:
                break
            left -= len(got)
        self.send_response(204 if left == 0 else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    path, chunk, rounds, chromium, chromedriver = sys.argv[1], int(sys.argv[2]) << 20, int(sys.argv[3]), sys.argv[4], sys.argv[5]
    size = os.path.getsize(path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    options = Options()
    options.binary_location = chromium
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.set_script_timeout(1800)
        driver.get(base + "/")
        driver.find_element(By.ID, "file").send_keys(path)
        for number in range(1, rounds + 1):
            started = time.monotonic()
            subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-X", "PATCH", "-T", path, "-H", "Expect:", base + "/sink"], check=True)
            curl = time.monotonic() - started
            page = driver.execute_async_script("window.send(arguments[0]).then(arguments[1], function (e) { arguments[1](-1); })", chunk)
            if page < 0:
                sys.exit("Chromium's upload to the sink failed")
            print("sink %d %d %.3f %.3f" % (number, size, page, curl), flush=True)
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
