//! A short, readable name for a session's `User-Agent` ("Chrome 156 on
//! Linux"): what a "your devices" page and the inspector show.

/// The longest piece of an unrecognised `User-Agent` shown, in characters.
const UNKNOWN_AGENT_CHARS: usize = 40;

/// Browsers by the product token that names them, most specific first: Edge,
/// Opera and Samsung Internet also say `Chrome/`, Chrome says `Safari/`.
const BROWSERS: [(&str, &str); 13] = [
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chrome/", "Chrome"),
    ("CriOS/", "Chrome"),
    ("curl/", "curl"),
    ("Wget/", "Wget"),
];

/// Operating systems by a marker in the `User-Agent`, most specific first:
/// Android says `Linux`, iOS says `like Mac OS X`.
const SYSTEMS: [(&str, &str); 8] = [
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
];

/// A short name for the browser behind `user_agent`: the browser, its major
/// version and the operating system when recognised ("Chrome 156 on Linux",
/// "Firefox on Windows"); otherwise the first 40 characters of the header
/// (with "…" when cut), or "Unknown browser" when there is none.
///
/// # Examples
///
/// ```
/// use shared_model::browser_label;
///
/// let agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
///              Chrome/156.0.0.0 Safari/537.36";
/// assert_eq!(browser_label(Some(agent)), "Chrome 156 on Linux");
/// assert_eq!(browser_label(None), "Unknown browser");
/// ```
#[must_use]
pub fn browser_label(user_agent: Option<&str>) -> String {
    let Some(agent) = user_agent.map(str::trim).filter(|agent| !agent.is_empty()) else {
        return "Unknown browser".to_owned();
    };
    let browser = BROWSERS
        .iter()
        .find_map(|(token, name)| {
            agent
                .find(token)
                .map(|at| (*name, major_version(agent.get(at + token.len()..))))
        })
        .or_else(|| safari(agent));
    let system = SYSTEMS
        .iter()
        .find(|(marker, _)| agent.contains(marker))
        .map(|(_, name)| *name);
    match (browser, system) {
        (Some((name, version)), system) => {
            let mut label = name.to_owned();
            if let Some(version) = version {
                label.push(' ');
                label.push_str(version);
            }
            if let Some(system) = system {
                label.push_str(" on ");
                label.push_str(system);
            }
            label
        }
        (None, _) => {
            let mut label: String = agent.chars().take(UNKNOWN_AGENT_CHARS).collect();
            if agent.chars().count() > UNKNOWN_AGENT_CHARS {
                label.push('…');
            }
            label
        }
    }
}

/// Safari names its version in `Version/` and says `Safari/` (which Chrome's
/// and others' agents say too, so this is tried last).
fn safari(agent: &str) -> Option<(&'static str, Option<&str>)> {
    agent.contains("Safari/").then(|| {
        let version = agent
            .find("Version/")
            .and_then(|at| major_version(agent.get(at + "Version/".len()..)));
        ("Safari", version)
    })
}

/// The leading digits of a product version (`156` of `156.0.7200.1 Safari…`).
fn major_version(rest: Option<&str>) -> Option<&str> {
    let rest = rest?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest.get(..end).filter(|digits| !digits.is_empty())
}

#[cfg(test)]
mod tests {
    use super::browser_label;

    fn label(agent: &str) -> String {
        browser_label(Some(agent))
    }

    #[test]
    fn desktop_browsers() {
        assert_eq!(
            label("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"),
            "Chrome 156 on Linux"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
            ),
            "Firefox 128 on Windows"
        );
        assert_eq!(
            label("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"),
            "Safari 17 on macOS"
        );
        assert_eq!(
            label("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80"),
            "Edge 124 on Windows"
        );
        assert_eq!(
            label("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0"),
            "Opera 106 on Linux"
        );
        assert_eq!(
            label("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
            "Chrome 124 on ChromeOS"
        );
        assert_eq!(
            label("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.85 Safari/537.36"),
            "Headless Chrome 131 on Linux"
        );
    }

    #[test]
    fn phones_are_not_their_kernel_or_their_lookalike() {
        assert_eq!(
            label("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36"),
            "Chrome 124 on Android"
        );
        assert_eq!(
            label("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"),
            "Safari 17 on iOS"
        );
        assert_eq!(
            label("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"),
            "Chrome 124 on iOS"
        );
        assert_eq!(
            label("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"),
            "Samsung Internet 24 on Android"
        );
    }

    #[test]
    fn versions_and_systems_are_optional() {
        assert_eq!(
            label("Mozilla/5.0 (Windows NT 10.0; rv:128.0) Firefox/"),
            "Firefox on Windows"
        );
        assert_eq!(label("curl/8.5.0"), "curl 8");
        assert_eq!(label("Mozilla/5.0 Gecko Firefox/x"), "Firefox");
    }

    #[test]
    fn unknown_agents_show_their_start() {
        assert_eq!(label("my-script"), "my-script");
        let long = "SomeCrawler/2.1 (+https://crawler.example/about-this-bot)";
        assert_eq!(label(long), "SomeCrawler/2.1 (+https://crawler.exampl…");
        assert_eq!(label(&"é".repeat(45)), format!("{}…", "é".repeat(40)));
        assert_eq!(label(&"x".repeat(40)), "x".repeat(40));
    }

    #[test]
    fn no_agent_is_unknown() {
        assert_eq!(browser_label(None), "Unknown browser");
        assert_eq!(browser_label(Some("  ")), "Unknown browser");
    }
}
