//! A real browser: Debian's headless Chromium, driven over WebDriver by
//! chromedriver, against the demo binary on a loopback port with a scratch
//! SQLite file. It saves a screenshot of the logged-in home page in Cargo's
//! scratch directory for tests (`CARGO_TARGET_TMPDIR`), or to the README's
//! `docs/demo-home.png` when `UPDATE_SCREENSHOTS=1` (so CI runs leave the tree clean).
//!
//! `#[ignore]`d for a plain `cargo test`; `.ci/run` installs `chromium` and
//! `chromium-driver` and runs it with `--include-ignored` against the release
//! build (`DEMO_APP_BIN`, see `common`). Once run, a missing browser or driver
//! fails it. `CHROMEDRIVER` and `CHROMIUM` override the programs' paths.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
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

fn screenshot_path() -> PathBuf {
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/demo-home.png")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-home.png")
    }
}

#[rocket::async_test]
#[ignore = "drives headless Chromium against the demo binary; run by .ci/run (--include-ignored)"]
async fn a_browser_logs_in_shops_and_logs_out() {
    let chromedriver = program("CHROMEDRIVER", "chromedriver");
    let chromium = program("CHROMIUM", "/usr/bin/chromium");
    let workdir = tempfile::tempdir().unwrap();
    let database = workdir.path().join("demo.sqlite");
    let demo = Demo::start("demo", database.to_str().unwrap(), workdir.path());

    let driver_port = free_port();
    let mut command = Command::new(&chromedriver);
    command.arg(format!("--port={driver_port}"));
    let mut driver = Process::spawn(
        "chromedriver",
        command,
        workdir.path().join("chromedriver.log"),
    );
    let driver_url = format!("http://127.0.0.1:{driver_port}");
    wait_until_serving(&format!("{driver_url}/status"), START_DEADLINE, || {
        driver.check_alive()
    });

    let profile = workdir.path().join("chromium-profile");
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|&flag| flag.to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities.as_object().cloned().unwrap())
        .connect(&driver_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "chromedriver could not start Chromium: {e}\n{}",
                driver.log_text()
            )
        });

    // Always quit the browser, then report.
    let outcome = scenario(&browser, &demo).await;
    let closed = browser.close().await;
    if let Err(message) = outcome {
        panic!("{message}\n--- demo log ---\n{}", demo.log_text());
    }
    closed.expect("close the browser");
}

/// The user's walk through the demo; `Err` says which step failed.
async fn scenario(browser: &Client, demo: &Demo) -> Result<(), String> {
    let step = |what: &'static str| move |e: fantoccini::error::CmdError| format!("{what}: {e}");

    // Log in through the form.
    browser
        .goto(&demo.url("/login"))
        .await
        .map_err(step("open /login"))?;
    browser
        .find(Locator::Css("input[name=username]"))
        .await
        .map_err(step("username field"))?
        .send_keys("alice")
        .await
        .map_err(step("type the username"))?;
    browser
        .find(Locator::Css("input[name=password]"))
        .await
        .map_err(step("password field"))?
        .send_keys("wonderland")
        .await
        .map_err(step("type the password"))?;
    browser
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .map_err(step("login button"))?
        .click()
        .await
        .map_err(step("submit the login form"))?;

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

    let png = browser.screenshot().await.map_err(step("screenshot"))?;
    std::fs::write(screenshot_path(), png).map_err(|e| format!("write the screenshot: {e}"))?;

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

    // Two cart items.
    browser
        .goto(&demo.url("/cart"))
        .await
        .map_err(step("open /cart"))?;
    for (count, item) in ["Teapot", "Earl Grey tea"].into_iter().enumerate() {
        browser
            .find(Locator::Css("input[name=item]"))
            .await
            .map_err(step("item field"))?
            .send_keys(item)
            .await
            .map_err(step("type an item"))?;
        browser
            .find(Locator::Css("main form button[type=submit]"))
            .await
            .map_err(step("add button"))?
            .click()
            .await
            .map_err(step("add to cart"))?;
        browser
            .wait()
            .at_most(PAGE_DEADLINE)
            .for_element(Locator::Css(&format!(
                "#cart-items li:nth-child({})",
                count + 1
            )))
            .await
            .map_err(step("the new cart item"))?;
    }
    let mut items = Vec::new();
    for element in browser
        .find_all(Locator::Css("#cart-items li"))
        .await
        .map_err(step("cart items"))?
    {
        items.push(element.text().await.map_err(step("item text"))?);
    }
    check_eq(items, vec!["Teapot".to_owned(), "Earl Grey tea".to_owned()])?;

    // Log out with the nav's button.
    browser
        .find(Locator::Css("nav form[action='/logout'] button"))
        .await
        .map_err(step("logout button"))?
        .click()
        .await
        .map_err(step("log out"))?;
    let flash = browser
        .wait()
        .at_most(PAGE_DEADLINE)
        .for_element(Locator::Css(".flash.info"))
        .await
        .map_err(step("the logout flash"))?;
    check_eq(
        flash.text().await.map_err(step("flash text"))?,
        "You have been logged out.",
    )?;
    check_contains(&heading(browser).await?, "Hello, guest")?;
    let cookie = browser
        .get_named_cookie("session_id")
        .await
        .map_err(step("the cookie after logout"))?;
    check_eq(cookie.http_only(), Some(true))?;
    if cookie.value() == logged_in_id {
        return Err("logout kept the logged-in session id".into());
    }
    Ok(())
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
