import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import PipelineCore
import SystemIO
import Testing
import TestSupport

/// Browser uploads from two clients this project did not write, through a loopback proxy that drops one upload
/// connection mid-body (`scripts/lib/fault_proxy.py`, `cut-request`): tuspy (the tus project's Python client) and the
/// upload page's own script in Debian's headless Chromium, driven by Selenium through Debian's chromedriver.
@Suite("browser uploads: tuspy and Chromium", .serialized)
struct BrowserUploadClientTests {
    static let chromedriver = "/usr/bin/chromedriver"

    @Test("tuspy: a chunk cut mid-body is retried from the offset the server kept; a second client resumes from the stored URL")
    func tuspy() async throws {
        try await withUploadFixture(.file) { fixture in
            let content = PipelineHarness.bytes(count: 5 * 1024 * 1024 + 999, seed: 31)
            let work = try TemporaryDirectory("tuspy")
            defer { work.remove() }
            try Data(content).write(to: URL(fileURLWithPath: work.path + "/data.bin"))
            try await fixture.withServer { server async throws in
                let proxy = try await FaultProxy(upstream: server)
                defer { proxy.stop() }
                let base = proxy.endpoint
                // The server keeps what arrived of a chunk whose connection dropped: half of it here.
                let probe = try await createUpload(base, auth: fixture.annAuth, length: 1 << 20, metadata: tusMetadata(["source": "Probe", "path": "p"]))
                try await proxy.inject([FaultProxy.Rule("any", "cut-request", times: 1, method: "PATCH")])
                let cut = try? await patchUpload(base, probe, auth: fixture.annAuth, offset: 0, bytes: content[0..<(1 << 20)])
                #expect(cut == nil, "the client saw the connection drop: \(String(describing: cut?.status))")
                // The server commits what arrived when it notices the drop, which may be after the client noticed it:
                // ask until it says half (or 20 s pass, which fails).
                var kept = try await headOffset(base, probe, auth: fixture.annAuth)
                let settle = ContinuousClock.now + .seconds(20)
                while kept != 1 << 19, ContinuousClock.now < settle {
                    try await Task.sleep(for: .milliseconds(100))
                    kept = try await headOffset(base, probe, auth: fixture.annAuth)
                }
                #expect(kept == 1 << 19, "half of the chunk was kept")

                // tuspy: the second PATCH is cut; it asks the offset and goes on. Then a new uploader (a new process
                // would do the same) finds the URL in its storage and resumes with HEAD.
                try await proxy.inject([FaultProxy.Rule("any", "cut-request", times: 1, method: "PATCH", skip: 1)])
                try Self.tuspyScript.write(toFile: work.path + "/tus.py", atomically: true, encoding: .utf8)
                let run = try await runPolling("/usr/bin/timeout", [
                    "300", "/usr/bin/env", "python3", work.path + "/tus.py", base, fixture.annToken.revealed, work.path + "/data.bin", work.path,
                ])
                #expect(run.status == 0, "\(run.output.suffix(3000))")
                let lines = Self.values(run.output)
                #expect(lines["first_offset"] == String(3 << 20), "\(run.output.suffix(2000))")
                #expect(lines["resumed_url"] == lines["url"] && lines["resumed_offset"] == String(3 << 20), "resumed from the server's offset")
                #expect(lines["final_offset"] == String(content.count))
                #expect(try await proxy.injected().values.reduce(0, +) == 2, "both cuts happened")
                let location = try #require(lines["url"].map { String($0.dropFirst(base.count)) })
                let stored = try await waitUntilStored(server, location, auth: fixture.annAuth)
                let row = try #require(try await fixture.harness.rows().first { $0.id == int64(stored["file_id"]) })
                #expect(row.path == "nested/data.bin" && row.state == "staged" && row.hash == PipelineHarness.sha256(content))
            }
        }
    }

    @Test("Chromium: log in, upload a 50 MB file and a folder in 5 MiB chunks with the connection cut mid-way, resumed; bytes downloaded back equal; archived, restored from the page, downloaded by the browser, equal; uncached")
    func chromium() async throws {
        let chromium = try #require(BrowserTests.chromium, "Chromium is not installed: apt-get install chromium")
        try #require(FileManager.default.isExecutableFile(atPath: Self.chromedriver), "chromedriver is not installed: apt-get install chromium-driver")
        try await withUploadFixture(.s3) { fixture in
            let work = try TemporaryDirectory("selenium")
            defer { work.remove() }
            let big = PipelineHarness.bytes(count: 50 * 1000 * 1000, seed: 32)
            try Data(big).write(to: URL(fileURLWithPath: work.path + "/holiday.mov"))
            try FileManager.default.createDirectory(atPath: work.path + "/Letters/2008", withIntermediateDirectories: true)
            let letters = [("Letters/a.txt", "dear ann"), ("Letters/2008/b.txt", "dear ben"), ("Letters/2008/c é.txt", "again")]
            for (path, text) in letters { try text.write(toFile: work.path + "/" + path, atomically: true, encoding: .utf8) }
            try await fixture.withServer(maxSize: 200 << 20) { server async throws in
                let proxy = try await FaultProxy(upstream: server)
                defer { proxy.stop() }
                // The fourth chunk's connection drops half-way.
                try await proxy.inject([FaultProxy.Rule("any", "cut-request", times: 1, method: "PATCH", skip: 3)])
                try Self.seleniumScript.write(toFile: work.path + "/drive.py", atomically: true, encoding: .utf8)
                try Self.browserHelpers.write(toFile: work.path + "/browser.py", atomically: true, encoding: .utf8)
                let run = try await runPolling("/usr/bin/timeout", [
                    "600", "/usr/bin/env", "python3", work.path + "/drive.py", proxy.endpoint, "ann", UploadFixture.password, work.path + "/holiday.mov",
                    work.path + "/Letters", work.path + "/profile", chromium, Self.chromedriver,
                ])
                #expect(run.status == 0, "\(run.output.suffix(3000))")
                let lines = Self.values(run.output)
                #expect(lines["after_login_path"] == "/account")
                #expect(lines["file_status"]?.hasPrefix("Done: 1 of 1") == true, "\(run.output.suffix(2000))")
                #expect(lines["file_outcome"] == "staged")
                let stats = try jsonObject(lines["file_stats"] ?? "{}")
                #expect((stats["retries"] as? Int ?? 0) >= 1, "the page noticed the dropped connection and resumed: \(stats)")
                #expect(lines["folder_status"]?.hasPrefix("Done: 3 of 3") == true, "\(run.output.suffix(2000))")
                #expect(try await proxy.injected().values.reduce(0, +) == 1, "the connection was really cut once")

                let rows = try await fixture.harness.rows()
                let movie = try #require(rows.first { $0.path == "holiday.mov" })
                #expect(movie.state == "staged" && movie.size == Int64(big.count) && movie.hash == PipelineHarness.sha256(big))
                #expect(Set(rows.map(\.path)).isSuperset(of: letters.map(\.0)), "the folder's files keep their paths: \(rows.map(\.path))")
                #expect(try await scalar(fixture.client, "SELECT note FROM sources WHERE label = 'Holiday 2008'", as: String.self) == "videos from the browser")
                #expect(try await scalar(fixture.client, "SELECT finished_at IS NOT NULL FROM sources WHERE label = 'Holiday 2008'", as: Bool.self))
                // Downloaded back through the family API, byte for byte.
                var download = HTTPClientRequest(url: server + "/files/\(movie.id)/download")
                download.headers.add(name: fixture.annAuth.0, value: fixture.annAuth.1)
                let response = try await testHTTPClient.execute(download, timeout: .seconds(120))
                let bytes = Array(buffer: try await response.body.collect(upTo: 64 << 20))
                #expect(response.status.code == 200 && bytes.count == big.count && bytes == big)
                #expect(lines["download_link"] == "/files/\(movie.id)/download", "the page links the stored file")

                // Archived to DEEP_ARCHIVE by the real archiver; then, in the browser: restore it, download it, uncache it.
                let archived = try await fixture.harness.archiveOnce()
                #expect(archived.status == 0, "\(archived.output)")
                #expect(try await fixture.harness.rows().first { $0.id == movie.id }?.state == "archived")
                try Self.restoreScript.write(toFile: work.path + "/restore.py", atomically: true, encoding: .utf8)
                func drive(_ phase: String, _ argument: String) async throws -> [String: String] {
                    let run = try await runPolling("/usr/bin/timeout", [
                        "300", "/usr/bin/env", "python3", work.path + "/restore.py", phase, server, "ann", UploadFixture.password, argument,
                        work.path + "/downloads", work.path + "/profile-\(phase)", chromium, Self.chromedriver,
                    ])
                    #expect(run.status == 0, "\(phase): \(run.output.suffix(3000))")
                    return Self.values(run.output)
                }
                let asked = try await drive("ask", String(movie.id))
                #expect(asked["file_state"]?.hasPrefix("archived") == true, "the page shows it archived: \(asked)")
                #expect(asked["restore_state"]?.hasPrefix("Being restored") == true, "\(asked)")
                #expect(asked["restore_tier"]?.hasPrefix("Bulk") == true, "the cost class is shown: \(asked)")
                let restorePath = try #require(asked["restore_path"])
                #expect(try await fixture.harness.archiveOnce().status == 0)
                let fetched = try await drive("fetch", restorePath)
                #expect(fetched["restore_state"]?.hasPrefix("Ready to download") == true, "\(fetched)")
                let saved = try #require(fetched["downloaded"], "\(fetched)")
                #expect(FileManager.default.contents(atPath: saved).map { Array($0) == big } == true, "the restored download equals the upload")
                #expect(fetched["after_uncache"]?.hasPrefix("Uncached by ann") == true, "\(fetched)")
            }
        }
    }

    static func values(_ output: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in output.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }

    static let tuspyScript = #"""
        import sys
        from tusclient import client
        from tusclient.storage import filestorage
        base, token, path, work = sys.argv[1:5]
        tus = client.TusClient(base + "/api/uploads", headers={"Authorization": "Bearer " + token})
        storage = filestorage.FileStorage(work + "/urls.json")
        metadata = {"source": "tuspy source", "filename": "nested/data.bin"}
        # A server commits what a cut PATCH brought (and answers 423 until then) when it notices the drop: under
        # load that took longer than tuspy's 5 x 0.5 s once. 10 x 1 s is about tus-js-client's default patience.
        def uploader():
            return tus.uploader(path, chunk_size=1 << 20, metadata=metadata, store_url=True, url_storage=storage, retries=10, retry_delay=1)
        first = uploader()
        first.upload(stop_at=3 << 20)
        print("url=" + first.url)
        print("first_offset=%d" % first.offset)
        second = uploader()
        print("resumed_url=" + second.url)
        print("resumed_offset=%d" % second.offset)
        second.upload()
        print("final_offset=%d" % second.offset)
        """#

    /// `ask FILE_ID`: logs in, opens the file's page, asks for a restore; `fetch /restores/N`: opens the restore,
    /// downloads the file into the downloads directory (Chromium's own download), then uncaches it.
    static let restoreScript = #"""
        import os, sys
        from selenium.webdriver.common.by import By
        from browser import start, log_in
        phase, base, user, password, argument, downloads, profile, chromium, chromedriver = sys.argv[1:10]
        os.makedirs(downloads, exist_ok=True)
        driver, wait_for, path = start(chromium, chromedriver, profile, downloads)
        try:
            log_in(driver, wait_for, path, base, user, password)
            if phase == "ask":
                driver.get(base + "/files/" + argument)
                print("file_state=" + driver.find_element(By.CSS_SELECTOR, "#file-state td").text)
                driver.find_element(By.ID, "restore").click()
                wait_for(lambda: path().startswith("/restores/"))
                print("restore_path=" + path())
                print("restore_state=" + driver.find_element(By.CSS_SELECTOR, "#restore-state td").text)
                print("restore_tier=" + driver.find_element(By.CSS_SELECTOR, "#restore-tier-text td").text)
            else:
                driver.get(base + argument)
                print("restore_state=" + driver.find_element(By.CSS_SELECTOR, "#restore-state td").text)
                driver.find_element(By.ID, "restore-download").click()
                # Chromium writes to a hidden temporary name or NAME.crdownload, then renames.
                def saved():
                    return [n for n in os.listdir(downloads) if not n.startswith(".") and not n.endswith(".crdownload")]
                def finished():
                    partial = [n for n in os.listdir(downloads) if n.startswith(".") or n.endswith(".crdownload")]
                    return saved() and not partial
                wait_for(finished, 240)
                print("downloaded=" + os.path.join(downloads, saved()[0]))
                driver.find_element(By.ID, "uncache").click()
                wait_for(lambda: "Uncached" in driver.find_element(By.CSS_SELECTOR, "#restore-state td").text)
                print("after_uncache=" + driver.find_element(By.CSS_SELECTOR, "#restore-state td").text)
        finally:
            driver.quit()
        """#

    /// What both Selenium scripts share (written beside them as `browser.py`): Debian's Chromium, headless, with its
    /// own profile (and a download directory), a polling wait, and the page's path.
    static let browserHelpers = #"""
        import time
        from selenium import webdriver
        from selenium.webdriver.common.by import By
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        def start(chromium, chromedriver, profile, downloads=None):
            options = Options()
            options.binary_location = chromium
            for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + profile]:
                options.add_argument(flag)
            if downloads:
                options.add_experimental_option("prefs", {"download.default_directory": downloads, "download.prompt_for_download": False})
            driver = webdriver.Chrome(service=Service(chromedriver), options=options)
            from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
            def wait_for(condition, timeout=60):
                deadline = time.time() + timeout
                while time.time() < deadline:
                    try:
                        if condition(): return
                    except (NoSuchElementException, StaleElementReferenceException):
                        pass  # the page was replaced between finding an element and reading it (a redirect, a reload): look again
                    time.sleep(0.2)
                raise SystemExit("timed out; page: " + driver.current_url)
            def path():
                return driver.execute_script("return location.pathname")
            return driver, wait_for, path
        def log_in(driver, wait_for, path, base, user, password):
            driver.set_page_load_timeout(60)
            driver.get(base + "/login")
            driver.find_element(By.NAME, "username").send_keys(user)
            driver.find_element(By.NAME, "password").send_keys(password)
            driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
            wait_for(lambda: path() == "/account")
        """#

    static let seleniumScript = #"""
        import json, sys, time
        from selenium.webdriver.common.by import By
        from browser import start, log_in
        base, user, password, big, folder, profile, chromium, chromedriver = sys.argv[1:9]
        driver, wait_for, path = start(chromium, chromedriver, profile)
        def upload(field, value, timeout):
            driver.find_element(By.ID, field).send_keys(value)
            driver.find_element(By.ID, "upload-button").click()
            time.sleep(0.5)
            wait_for(lambda: driver.execute_script("return window.uploadStats.done"), timeout)
            return driver.execute_script("return window.uploadStats")
        try:
            log_in(driver, wait_for, path, base, user, password)
            print("after_login_path=" + path())
            driver.find_element(By.ID, "upload-link").click()
            wait_for(lambda: path() == "/upload" and driver.execute_script("return !!window.uploadStats"))
            driver.find_element(By.ID, "source").send_keys("Holiday 2008")
            driver.find_element(By.ID, "notes").send_keys("videos from the browser")
            stats = upload("files", big, 420)
            print("file_stats=" + json.dumps(stats))
            print("file_status=" + driver.find_element(By.ID, "upload-status").text)
            row = driver.find_element(By.CSS_SELECTOR, "#upload-list .file")
            print("file_outcome=" + (row.get_attribute("data-outcome") or ""))
            links = row.find_elements(By.TAG_NAME, "a")
            print("download_link=" + (links[0].get_attribute("pathname") if links else ""))
            driver.get(base + "/upload")
            wait_for(lambda: driver.execute_script("return !!window.uploadStats"))
            driver.find_element(By.ID, "source").send_keys("Holiday 2008")
            stats = upload("folder", folder, 120)
            print("folder_stats=" + json.dumps(stats))
            print("folder_status=" + driver.find_element(By.ID, "upload-status").text)
        finally:
            driver.quit()
        """#
}
