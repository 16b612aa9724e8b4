//! A real browser: Debian's headless Chromium, driven over WebDriver by
//! chromedriver, against the demo binary on a loopback port with a scratch
//! SQLite file. It submits every form of the demo through its page (login,
//! add to cart, logout), then opens pages of a second site (a listener on
//! `localhost`, while the demo is on `127.0.0.1`) that post forms to the demo,
//! and checks they are refused and change nothing. A second test signs alice
//! in from two browsers with different user agents, lists both on the first
//! one's "Your devices" page and signs the second out from there. They save
//! screenshots of the logged-in home page and of the devices page in Cargo's
//! scratch directory for tests (`CARGO_TARGET_TMPDIR`), or to the README's
//! `docs/demo-home.png` and `docs/devices.png` when `UPDATE_SCREENSHOTS=1` (so
//! CI runs leave the tree clean).
//!
//! `#[ignore]`d for a plain `cargo test`; `.ci/run` installs `chromium` and
//! `chromium-driver` and runs it with `--include-ignored` against the release
//! build (`DEMO_APP_BIN`, see `common`). Once run, a missing browser or driver
//! fails it. `CHROMEDRIVER` and `CHROMIUM` override the programs' paths.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{free_port, wait_until_serving, Demo, Process, START_DEADLINE};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// Flags that keep Chromium headless and quiet on a closed network (without
/// the networking ones its connections are refused here).
const CHROMIUM_FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,820",
];

/// How long to wait for a page element after a click.
const PAGE_DEADLINE: Duration = Duration::from_secs(20);

fn program(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    let found = if path.is_absolute() {
        path.is_file()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|dirs| std::env::split_paths(&dirs).any(|dir| dir.join(&path).is_file()))
    };
    assert!(
        found,
        "{} not found (set {variable} or install Debian's `chromium` and `chromium-driver`, as .ci/run does)",
        path.display()
    );
    path
}

/// Where the screenshot `name` (e.g. `demo-home.png`) goes: the scratch
/// directory, or `docs/` with `UPDATE_SCREENSHOTS=1`.
fn screenshot_path(name: &str) -> PathBuf {
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(name)
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
    }
}

/// chromedriver on a free port, stopped on drop.
struct Driver {
    process: Process,
    url: String,
}

impl Driver {
    fn start(workdir: &Path) -> Self {
        let chromedriver = program("CHROMEDRIVER", "chromedriver");
        let port = free_port();
        let mut command = Command::new(&chromedriver);
        command.arg(format!("--port={port}"));
        let mut process = Process::spawn("chromedriver", command, workdir.join("chromedriver.log"));
        let url = format!("http://127.0.0.1:{port}");
        wait_until_serving(&format!("{url}/status"), START_DEADLINE, || {
            process.check_alive()
        });
        Self { process, url }
    }

    /// A new headless Chromium with its own profile in `profile` (so its own
    /// cookies), sending `user_agent` instead of its own when given.
    async fn browser(&self, profile: &Path, user_agent: Option<&str>) -> Result<Client, String> {
        let chromium = program("CHROMIUM", "/usr/bin/chromium");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|&flag| flag.to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        if let Some(user_agent) = user_agent {
            args.push(format!("--user-agent={user_agent}"));
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.as_object().cloned().unwrap())
            .connect(&self.url)
            .await
            .map_err(|e| {
                format!(
                    "chromedriver could not start Chromium: {e}\n{}",
                    self.process.log_text()
                )
            })
    }
}

#[rocket::async_test]
#[ignore = "drives headless Chromium against the demo binary; run by .ci/run (--include-ignored)"]
async fn a_browser_logs_in_shops_and_logs_out() {
    let workdir = tempfile::tempdir().unwrap();
    let database = workdir.path().join("demo.sqlite");
    let demo = Demo::start("demo", database.to_str().unwrap(), workdir.path());
    let driver = Driver::start(workdir.path());
    let browser = driver
        .browser(&workdir.path().join("chromium-profile"), None)
        .await
        .unwrap_or_else(|message| panic!("{message}"));

    let attacker = AttackerSite::start(&demo);
    // Always quit the browser, then report.
    let outcome = scenario(&browser, &demo, &attacker).await;
    let closed = browser.close().await;
    if let Err(message) = outcome {
        panic!("{message}\n--- demo log ---\n{}", demo.log_text());
    }
    closed.expect("close the browser");
}

/// The user's walk through the demo, submitting every form through the page
/// (the hidden CSRF token makes the signed-in posts work), then a second site
/// forging posts; `Err` says which step failed.
async fn scenario(browser: &Client, demo: &Demo, attacker: &AttackerSite) -> Result<(), String> {
    let step = |what: &'static str| move |e: fantoccini::error::CmdError| format!("{what}: {e}");

    // Log in through the form (a first visit: no session yet).
    log_in(browser, demo, "alice", "wonderland", false).await?;

    // The welcome flash, on the home page.
    let flash = browser
        .wait()
        .at_most(PAGE_DEADLINE)
        .for_element(Locator::Css(".flash.success"))
        .await
        .map_err(step("the welcome flash"))?;
    check_eq(
        flash.text().await.map_err(step("flash text"))?,
        "Welcome back!",
    )?;
    check_eq(path_of(browser).await?, "/".to_owned())?;
    check_contains(&heading(browser).await?, "Hello, alice")?;
    // Styled by the stylesheet `/static` serves (the accent colour of buttons).
    let button = browser
        .find(Locator::Css("a.button"))
        .await
        .map_err(step("the profile button"))?;
    check_eq(
        button
            .css_value("background-color")
            .await
            .map_err(step("button colour"))?,
        "rgba(58, 91, 217, 1)".to_owned(),
    )?;

    let png = browser.screenshot().await.map_err(step("screenshot"))?;
    std::fs::write(screenshot_path("demo-home.png"), png)
        .map_err(|e| format!("write the screenshot: {e}"))?;

    // The session cookie is HttpOnly (WebDriver sees what document.cookie cannot).
    let cookie = browser
        .get_named_cookie("session_id")
        .await
        .map_err(step("the session cookie"))?;
    check_eq(cookie.http_only(), Some(true))?;
    let logged_in_id = cookie.value().to_owned();

    // Reload: the flash is gone, the login stays.
    browser.refresh().await.map_err(step("reload"))?;
    browser
        .wait()
        .at_most(PAGE_DEADLINE)
        .for_element(Locator::Css("main h1"))
        .await
        .map_err(step("the reloaded page"))?;
    check_contains(&heading(browser).await?, "Hello, alice")?;
    let flashes = browser
        .find_all(Locator::Css(".flash"))
        .await
        .map_err(step("flashes after reload"))?;
    check_eq(flashes.len(), 0)?;

    // Two cart items, signed in: each post needs the form's token.
    add_to_cart(browser, demo, &["Teapot", "Earl Grey tea"]).await?;
    check_eq(
        cart_items(browser).await?,
        vec!["Teapot".to_owned(), "Earl Grey tea".to_owned()],
    )?;

    // Log out with the nav's button (a form with the token).
    log_out(browser).await?;
    check_contains(&heading(browser).await?, "Hello, guest")?;
    let cookie = browser
        .get_named_cookie("session_id")
        .await
        .map_err(step("the cookie after logout"))?;
    check_eq(cookie.http_only(), Some(true))?;
    if cookie.value() == logged_in_id {
        return Err("logout kept the logged-in session id".into());
    }

    // A guest with a session (a cart) logs in as bob: the login form's post
    // carries the guest session's token, and the cart comes along.
    add_to_cart(browser, demo, &["Kettle"]).await?;
    log_in(browser, demo, "bob", "builder", false).await?;
    browser
        .wait()
        .at_most(PAGE_DEADLINE)
        .for_element(Locator::Css(".flash.success"))
        .await
        .map_err(step("bob's welcome flash"))?;
    check_contains(&heading(browser).await?, "Hello, bob")?;

    // Another site auto-posts an item to the cart: 403, the cart unchanged,
    // still bob. (The demo is on 127.0.0.1, the attacker on localhost: another
    // site to the browser, which sends `Origin` and `Sec-Fetch-Site: cross-site`.)
    forged(browser, &attacker.url("/add-to-cart"), "/cart").await?;
    open(
        browser,
        &demo.url("/cart"),
        "the cart after the forged post",
    )
    .await?;
    check_eq(cart_items(browser).await?, vec!["Kettle".to_owned()])?;
    check_contains(&signed_in_as(browser).await?, "bob")?;

    // Signed out, another site auto-posts alice's credentials to /login (login
    // CSRF: the victim would act as alice): 403, and the browser stays a guest.
    log_out(browser).await?;
    forged(browser, &attacker.url("/login-as-alice"), "/login").await?;
    open(browser, &demo.url("/"), "home after the forged login").await?;
    check_contains(&heading(browser).await?, "Hello, guest")?;
    let session = browser
        .execute(
            "return fetch('/api/session').then(response => response.json())",
            Vec::new(),
        )
        .await
        .map_err(step("/api/session from the page"))?;
    check_eq(session["user_id"].clone(), serde_json::Value::Null)?;
    check_eq(session["data"].get("username").cloned(), None)?;
    Ok(())
}

/// What the two browsers of the devices test say they are.
const CHROME_ON_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
const FIREFOX_ON_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";

#[rocket::async_test]
#[ignore = "drives headless Chromium against the demo binary; run by .ci/run (--include-ignored)"]
async fn two_browsers_see_and_sign_out_each_other() {
    let workdir = tempfile::tempdir().unwrap();
    let database = workdir.path().join("demo.sqlite");
    let demo = Demo::start("demo", database.to_str().unwrap(), workdir.path());
    let driver = Driver::start(workdir.path());
    let first = driver
        .browser(&workdir.path().join("first-profile"), Some(CHROME_ON_LINUX))
        .await
        .unwrap_or_else(|message| panic!("{message}"));
    let second = driver
        .browser(
            &workdir.path().join("second-profile"),
            Some(FIREFOX_ON_WINDOWS),
        )
        .await;
    // Always quit both browsers, then report.
    let outcome = match &second {
        Ok(second) => devices_scenario(&first, second, &demo).await,
        Err(message) => Err(message.clone()),
    };
    let closed_first = first.close().await;
    let closed_second = match second {
        Ok(second) => second.close().await,
        Err(_) => Ok(()),
    };
    if let Err(message) = outcome {
        panic!("{message}\n--- demo log ---\n{}", demo.log_text());
    }
    closed_first.expect("close the first browser");
    closed_second.expect("close the second browser");
}

/// Alice signs in on both browsers (the first remembered), sees both on the
/// first one's devices page and signs the second out from there.
async fn devices_scenario(first: &Client, second: &Client, demo: &Demo) -> Result<(), String> {
    let step = |what: &'static str| move |e: fantoccini::error::CmdError| format!("{what}: {e}");

    for (browser, remember) in [(first, true), (second, false)] {
        log_in(browser, demo, "alice", "wonderland", remember).await?;
        browser
            .wait()
            .at_most(PAGE_DEADLINE)
            .for_element(Locator::Css(".flash.success"))
            .await
            .map_err(step("the welcome flash"))?;
    }

    // The nav's link leads to the devices page, which lists both browsers.
    first
        .find(Locator::Css("nav a[href='/devices']"))
        .await
        .map_err(step("the nav's Devices link"))?
        .click()
        .await
        .map_err(step("open the devices page"))?;
    first
        .wait()
        .at_most(PAGE_DEADLINE)
        .for_element(Locator::Css("#devices tbody tr:nth-child(2)"))
        .await
        .map_err(step("two rows on the devices page"))?;
    check_eq(heading(first).await?, "Your devices".to_owned())?;
    let mut rows = Vec::new();
    for row in first
        .find_all(Locator::Css("#devices tbody tr"))
        .await
        .map_err(step("device rows"))?
    {
        rows.push(row.text().await.map_err(step("row text"))?);
    }
    check_eq(rows.len(), 2)?;
    let row_of = |label: &str| {
        rows.iter()
            .find(|row| row.contains(label))
            .cloned()
            .ok_or_else(|| format!("no row says {label:?}: {rows:?}"))
    };
    let this = row_of("Chrome 156 on Linux")?;
    check_contains(&this, "This device")?;
    check_contains(&this, "Remembered")?;
    check_contains(&this, "127.0.0.1")?;
    let other = row_of("Firefox 128 on Windows")?;
    check_contains(&other, "Sign out")?;
    if other.contains("This device") {
        return Err(format!(
            "the other browser's row is marked as this one: {other:?}"
        ));
    }
    first
        .find(Locator::Css(
            "main form[action='/devices/sign-out-others'] button",
        ))
        .await
        .map_err(step("the sign-out-all button"))?;

    let png = first.screenshot().await.map_err(step("screenshot"))?;
    std::fs::write(screenshot_path("devices.png"), png)
        .map_err(|e| format!("write the devices screenshot: {e}"))?;

    // "Sign out" in the other browser's row (the only row with a button).
    first
        .find(Locator::Css(
            "#devices tbody tr:not(.current) td.action button",
        ))
        .await
        .map_err(step("the other device's Sign out button"))?
        .click()
        .await
        .map_err(step("sign the other device out"))?;
    let flash = first
        .wait()
        .at_most(PAGE_DEADLINE)
        .for_element(Locator::Css(".flash.success"))
        .await
        .map_err(step("the signed-out flash"))?;
    check_eq(
        flash.text().await.map_err(step("flash text"))?,
        "The device has been signed out.",
    )?;
    check_eq(path_of(first).await?, "/devices".to_owned())?;
    let rows = first
        .find_all(Locator::Css("#devices tbody tr"))
        .await
        .map_err(step("device rows after signing out"))?;
    check_eq(rows.len(), 1)?;
    check_contains(&signed_in_as(first).await?, "alice")?;

    // The second browser is signed out: its profile sends it to log in.
    open(
        second,
        &demo.url("/profile"),
        "/profile in the second browser",
    )
    .await?;
    check_eq(path_of(second).await?, "/login".to_owned())?;
    check_eq(heading(second).await?, "Log in".to_owned())?;
    let notice = second
        .find(Locator::Css(".flash.warning"))
        .await
        .map_err(step("the second browser's login notice"))?;
    check_eq(
        notice.text().await.map_err(step("notice text"))?,
        "Please log in to view your profile.",
    )
}

/// Opens `url` and waits for the demo's page heading.
async fn open(browser: &Client, url: &str, what: &str) -> Result<(), String> {
    browser
        .goto(url)
        .await
        .map_err(|e| format!("open {what}: {e}"))?;
    browser
        .wait()
        .at_most(PAGE_DEADLINE)
        .for_element(Locator::Css("main h1"))
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(())
}

/// Types into the field called `name` on the current page.
async fn type_into(browser: &Client, name: &str, text: &str) -> Result<(), String> {
    browser
        .find(Locator::Css(&format!("main input[name={name}]")))
        .await
        .map_err(|e| format!("the {name} field: {e}"))?
        .send_keys(text)
        .await
        .map_err(|e| format!("type into {name}: {e}"))
}

/// Clicks the submit button of the page's form (in `main`, not the nav's).
async fn submit(browser: &Client, what: &str) -> Result<(), String> {
    browser
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .map_err(|e| format!("the {what} button: {e}"))?
        .click()
        .await
        .map_err(|e| format!("submit {what}: {e}"))
}

/// Logs in through the form, ticking "Remember me" when `remember`.
async fn log_in(
    browser: &Client,
    demo: &Demo,
    username: &str,
    password: &str,
    remember: bool,
) -> Result<(), String> {
    open(browser, &demo.url("/login"), "/login").await?;
    type_into(browser, "username", username).await?;
    type_into(browser, "password", password).await?;
    if remember {
        browser
            .find(Locator::Css("main input[name=remember]"))
            .await
            .map_err(|e| format!("the remember-me checkbox: {e}"))?
            .click()
            .await
            .map_err(|e| format!("tick remember me: {e}"))?;
    }
    submit(browser, "login").await
}

/// Adds `items` through the cart page's form, one post each.
async fn add_to_cart(browser: &Client, demo: &Demo, items: &[&str]) -> Result<(), String> {
    open(browser, &demo.url("/cart"), "/cart").await?;
    let before = cart_items(browser).await?.len();
    for (added, item) in items.iter().enumerate() {
        type_into(browser, "item", item).await?;
        submit(browser, "add to cart").await?;
        browser
            .wait()
            .at_most(PAGE_DEADLINE)
            .for_element(Locator::Css(&format!(
                "#cart-items li:nth-child({})",
                before + added + 1
            )))
            .await
            .map_err(|e| format!("the new cart item {item:?}: {e}"))?;
    }
    Ok(())
}

async fn cart_items(browser: &Client) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    for element in browser
        .find_all(Locator::Css("#cart-items li"))
        .await
        .map_err(|e| format!("cart items: {e}"))?
    {
        items.push(
            element
                .text()
                .await
                .map_err(|e| format!("item text: {e}"))?,
        );
    }
    Ok(items)
}

/// Clicks the nav's "Log out" and waits for the logout flash.
async fn log_out(browser: &Client) -> Result<(), String> {
    browser
        .find(Locator::Css("nav form[action='/logout'] button"))
        .await
        .map_err(|e| format!("logout button: {e}"))?
        .click()
        .await
        .map_err(|e| format!("log out: {e}"))?;
    let flash = browser
        .wait()
        .at_most(PAGE_DEADLINE)
        .for_element(Locator::Css(".flash.info"))
        .await
        .map_err(|e| format!("the logout flash: {e}"))?;
    check_eq(
        flash.text().await.map_err(|e| format!("flash text: {e}"))?,
        "You have been logged out.",
    )
}

/// The nav's "Signed in as …" text.
async fn signed_in_as(browser: &Client) -> Result<String, String> {
    browser
        .find(Locator::Css("nav .who"))
        .await
        .map_err(|e| format!("the signed-in user: {e}"))?
        .text()
        .await
        .map_err(|e| format!("signed-in text: {e}"))
}

/// Opens the attacker's page at `url`, whose script posts a form to the demo,
/// and checks the browser lands on the demo's 403 page at `path`.
async fn forged(browser: &Client, url: &str, path: &str) -> Result<(), String> {
    browser
        .goto(url)
        .await
        .map_err(|e| format!("open the attacker's page {url}: {e}"))?;
    // The attacker's pages have no `main`: this waits for the demo's answer.
    browser
        .wait()
        .at_most(PAGE_DEADLINE)
        .for_element(Locator::Css("main h1"))
        .await
        .map_err(|e| format!("the answer to the forged post to {path}: {e}"))?;
    check_eq(path_of(browser).await?, path.to_owned())?;
    check_eq(heading(browser).await?, "403 Forbidden".to_owned())
}

/// A second web site for the forgery checks: `http://localhost:PORT` serving
/// pages that post forms to the demo as soon as they load. The demo runs on
/// `127.0.0.1`, so to the browser this is another site. Stops on drop.
struct AttackerSite {
    port: u16,
    stop: Arc<AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
}

impl AttackerSite {
    fn start(demo: &Demo) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let auto_post = |action: String, fields: &[(&str, &str)]| {
            let inputs: String = fields
                .iter()
                .map(|(name, value)| {
                    format!(r#"<input type="hidden" name="{name}" value="{value}">"#)
                })
                .collect();
            format!(
                r#"<!DOCTYPE html><html><body><p>You won a prize!</p>
<form method="post" action="{action}">{inputs}</form>
<script>document.forms[0].submit();</script></body></html>"#
            )
        };
        let pages = vec![
            (
                "/login-as-alice",
                auto_post(
                    demo.url("/login"),
                    &[("username", "alice"), ("password", "wonderland")],
                ),
            ),
            (
                "/add-to-cart",
                auto_post(demo.url("/cart"), &[("item", "Forged item")]),
            ),
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let server = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(stream, &pages);
                }
            }
        });
        Self {
            port,
            stop,
            server: Some(server),
        }
    }

    /// `http://localhost:PORT` + `path`.
    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }
}

impl Drop for AttackerSite {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the blocking `accept` so the thread sees the flag.
        if let Err(e) = TcpStream::connect(("127.0.0.1", self.port)) {
            eprintln!("could not wake the attacker site: {e}");
        }
        if let Some(server) = self.server.take() {
            if server.join().is_err() {
                eprintln!("the attacker site's thread panicked");
            }
        }
    }
}

/// Answers one HTTP request: the page at its path, or 404.
fn serve(stream: TcpStream, pages: &[(&str, String)]) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // The rest of the head; these requests have no body.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|read| read > 2) {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = pages
        .iter()
        .find(|(page, _)| *page == path)
        .map_or(("404 Not Found", String::new()), |(_, html)| {
            ("200 OK", html.clone())
        });
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = &stream;
    if let Err(e) = stream.write_all(response.as_bytes()) {
        eprintln!("attacker site: {e}");
    }
}

async fn heading(browser: &Client) -> Result<String, String> {
    browser
        .find(Locator::Css("main h1"))
        .await
        .map_err(|e| format!("page heading: {e}"))?
        .text()
        .await
        .map_err(|e| format!("heading text: {e}"))
}

async fn path_of(browser: &Client) -> Result<String, String> {
    browser
        .current_url()
        .await
        .map(|url| url.path().to_owned())
        .map_err(|e| format!("current URL: {e}"))
}

fn check_eq<A, B>(found: A, expected: B) -> Result<(), String>
where
    A: PartialEq<B> + std::fmt::Debug,
    B: std::fmt::Debug,
{
    if found == expected {
        Ok(())
    } else {
        Err(format!("expected {expected:?}, found {found:?}"))
    }
}

fn check_contains(text: &str, expected: &str) -> Result<(), String> {
    if text.contains(expected) {
        Ok(())
    } else {
        Err(format!("expected {expected:?} in {text:?}"))
    }
}
