import Accounts
import Catalog
import Foundation
import PipelineCore
import StatusServer
import SystemIO
import Testing
import TestSupport

/// The login form in Debian's headless Chromium, driven over the Chrome DevTools protocol (`--remote-debugging-pipe`,
/// by a small Python script with the standard library only): type the name and password, submit, land on /account
/// with the session cookie (which page script cannot read: HttpOnly), log out with the button, and be sent back to
/// /login when the account page is asked for again.
@Suite("family accounts in a real headless Chromium")
struct BrowserLoginTests {
    @Test("log in through the form, see one's own sources only, log out with the button")
    func loginInChromium() async throws {
        let chromium = try #require(BrowserTests.chromium, "Chromium is not installed: apt-get install chromium")
        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            let ann = try await accounts.addUser(name: "ann", role: .member, password: Secret("ann's long password"))
            _ = try await accounts.addUser(name: "ben", role: .member, password: Secret("ben's long password"))
            try await exec(client, """
                INSERT INTO sources (label, owner_id) VALUES ('Ann holiday 2008', \(ann.id));
                INSERT INTO sources (label, owner_id) VALUES ('Ben secret drive', (SELECT id FROM users WHERE name = 'ben'))
                """)
            try await withStatusServer(try testConfiguration(), client: client) { base in
                let work = try TemporaryDirectory("cdp")
                defer { work.remove() }
                try Self.driver.write(toFile: work.path + "/drive.py", atomically: true, encoding: .utf8)
                let run = try await Subprocess.run(
                    "/usr/bin/timeout", ["120", "/usr/bin/python3", work.path + "/drive.py", chromium, base, work.path + "/profile", "ann", "ann's long password"])
                #expect(run.status == 0, "\(run.output.suffix(2000))")
                let lines = run.output.split(separator: "\n").map(String.init)
                func value(_ key: String) -> String? { lines.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) } }
                #expect(value("after_login_path") == "/account", "\(run.output.suffix(2000))")
                #expect(value("after_login_text")?.contains("Signed in as ann") == true)
                #expect(value("after_login_text")?.contains("Ann holiday 2008") == true)
                #expect(value("after_login_text")?.contains("Ben secret drive") == false, "ben's source is not on ann's page")
                #expect(value("page_cookie")?.contains("backup_session") == false, "the session cookie is HttpOnly")
                #expect(value("after_logout_path") == "/login")
                #expect(value("account_again_path") == "/login", "after logout the account page sends back to the login form")
                #expect(try await scalar(client, "SELECT count(*) FROM user_sessions", as: Int64.self) == 0, "the session is gone on the server")
            }
        }
    }

    /// Chrome DevTools protocol over the pipe: commands on fd 3, answers on fd 4, each a JSON text ending in NUL.
    static let driver = #"""
        import json, os, subprocess, sys, time
        chromium, base, profile, user, password = sys.argv[1:6]
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        def child_fds():
            # Through fresh copies: dup2 makes fds 3 and 4 inheritable (a pipe's own fds are close-on-exec).
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3); os.dup2(b, 4)
        proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                                 "--remote-debugging-pipe", "--user-data-dir=" + profile, "about:blank"],
                                close_fds=False, preexec_fn=child_fds,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r); os.close(from_chrome_w)
        buffer = b""; next_id = 0
        def send(method, params=None, session=None):
            global buffer, next_id
            next_id += 1
            message = {"id": next_id, "method": method, "params": params or {}}
            if session: message["sessionId"] = session
            os.write(to_chrome_w, json.dumps(message).encode() + b"\0")
            while True:
                while b"\0" not in buffer:
                    chunk = os.read(from_chrome_r, 65536)
                    if not chunk: raise SystemExit("chromium closed the pipe")
                    buffer += chunk
                raw, buffer = buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == next_id:
                    if "error" in answer: raise SystemExit(f"{method}: {answer['error']}")
                    return answer["result"]
        def evaluate(session, expression):
            result = send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
            return result["result"].get("value")
        def wait_for(session, expression, timeout=30):
            deadline = time.time() + timeout
            while time.time() < deadline:
                try:
                    if evaluate(session, expression): return
                except SystemExit:
                    pass
                time.sleep(0.2)
            raise SystemExit("timed out waiting for " + expression)
        def log_in():
            """Opens /login in a new tab, submits the form, waits for /account; returns the tab's session."""
            target = send("Target.createTarget", {"url": base + "/login"})["targetId"]
            session = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            wait_for(session, "document.readyState === 'complete' && !!document.getElementById('login-form')")
            evaluate(session, "document.querySelector('input[name=username]').value = " + json.dumps(user) + ";"
                              "document.querySelector('input[name=password]').value = " + json.dumps(password) + ";"
                              "document.querySelector('#login-form button').click(); true")
            wait_for(session, "location.pathname === '/account' && document.readyState === 'complete'")
            return session
        try:
            session = log_in()
            print("after_login_path=" + evaluate(session, "location.pathname"))
            print("after_login_text=" + evaluate(session, "document.body.innerText").replace("\n", " | "))
            print("page_cookie=" + evaluate(session, "document.cookie"))
            evaluate(session, "document.getElementById('logout').click(); true")
            wait_for(session, "location.pathname === '/login' && document.readyState === 'complete'")
            print("after_logout_path=" + evaluate(session, "location.pathname"))
            send("Page.navigate", {"url": base + "/account"}, session)
            time.sleep(0.5)
            wait_for(session, "document.readyState === 'complete' && !!document.getElementById('login-form')")
            print("account_again_path=" + evaluate(session, "location.pathname"))
        finally:
            proc.kill(); proc.wait()
        """#
}
