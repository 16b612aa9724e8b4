//! Cross-site request forgery protection bound to the session: the `Origin` /
//! Fetch Metadata check every guard of ours makes on state-changing requests,
//! and per-session tokens for forms and headers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rocket::data::{self, Data, FromData};
use rocket::form::{self, DataField, Form, FromForm, ValueField};
use rocket::http::{Method, Status};
use rocket::outcome::try_outcome;
use rocket::request::{self, FromRequest, Request};
use sha2::{Digest, Sha256};
use shared_model::SessionToken;
use subtle::ConstantTimeEq;

use crate::config::Settings;
use crate::error::{CROSS_SITE, CSRF};
use crate::guard::request_state;
use crate::state::State;
use crate::{Error, Session};

/// The form field [`CsrfForm`] reads the token from.
pub const CSRF_FIELD: &str = "csrf_token";

/// The request header [`CsrfForm`] and [`CsrfHeader`] read the token from.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// Domain separation: this hash of a session token is only ever a CSRF secret.
const SECRET_CONTEXT: &[u8] = b"rocket-db-sessions csrf v1\0";

/// The per-session CSRF secret: a hash of the session token, so it needs no
/// storage and changes whenever the token does (login rotates it).
fn secret(token: &SessionToken) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(SECRET_CONTEXT);
    hasher.update(token.expose_secret().as_bytes());
    hasher.finalize().into()
}

/// A fresh 32-byte mask. Each rendering of the token differs, so a compressed
/// page never repeats the secret (BREACH). The mask hides nothing by itself; it
/// only has to change, so a counter stands in if the OS has no randomness.
fn mask() -> [u8; 32] {
    let mut mask = [0u8; 32];
    if getrandom::fill(&mut mask).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        mask = Sha256::digest(n.to_le_bytes()).into();
    }
    mask
}

/// `base64url(mask ‖ mask ⊕ secret)`: 86 characters.
fn render(secret: &[u8; 32]) -> String {
    let mask = mask();
    let mut bytes = [0u8; 64];
    let (head, tail) = bytes.split_at_mut(32);
    head.copy_from_slice(&mask);
    for ((slot, m), s) in tail.iter_mut().zip(&mask).zip(secret) {
        *slot = m ^ s;
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `presented` is a rendering of `secret`, compared in constant time.
fn matches(secret: &[u8; 32], presented: &str) -> bool {
    let mut bytes = [0u8; 66];
    if URL_SAFE_NO_PAD.decode_slice(presented.trim(), &mut bytes) != Ok(64) {
        return false;
    }
    let (mask, masked) = bytes.split_at(32);
    let mut unmasked = [0u8; 32];
    for ((slot, m), x) in unmasked.iter_mut().zip(mask).zip(masked) {
        *slot = m ^ x;
    }
    unmasked.ct_eq(secret).into()
}

/// `scheme://host[:port]` in lowercase without a default port, or `None` when
/// `origin` is not such a text.
pub(crate) fn normalize_origin(origin: &str) -> Option<String> {
    Origin::parse(origin).map(|origin| origin.normalized())
}

/// An `Origin` header's parts, lowercase.
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, authority) = text.split_once("://")?;
        let valid = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && !authority.is_empty()
            && !authority.contains(['/', '?', '#', '@', ' ']);
        if !valid {
            return None;
        }
        // `[::1]:8000`: the port follows the closing bracket.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port.parse().ok()?)),
            _ => (authority, None),
        };
        if host.is_empty() {
            return None;
        }
        Some(Self {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
        })
    }

    /// `scheme://host[:port]`, the port only when it is not the scheme's default.
    fn normalized(&self) -> String {
        match self.port {
            Some(port) if Some(port) != default_port(&self.scheme) => {
                format!("{}://{}:{port}", self.scheme, self.host)
            }
            _ => format!("{}://{}", self.scheme, self.host),
        }
    }

    /// The port, or the scheme's default.
    fn effective_port(&self) -> Option<u16> {
        self.port.or_else(|| default_port(&self.scheme))
    }
}

/// `localhost`, `*.localhost`, `127.0.0.0/8` and `[::1]`: hosts browsers treat
/// as secure contexts over plain `http`.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|address| address.is_loopback())
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Whether `origin` is the app itself: the same host and port as the request's
/// `Host` (or HTTP/2 `:authority`), and, when cookies are `Secure`, a scheme a
/// browser sends `Secure` cookies to (`https`, or `http` on a loopback host, as
/// browsers treat those): an `http` page of a public host is another origin then.
fn is_own_origin(origin: &Origin, request: &Request<'_>, settings: &Settings) -> bool {
    // Rocket fills `host()` from `Host` (HTTP/1) or `:authority` (HTTP/2) for
    // requests off the wire; requests built in process only carry the header.
    let parsed;
    let own = match request.host() {
        Some(host) => host,
        None => match request
            .headers()
            .get_one("Host")
            .and_then(|host| rocket::http::uri::Host::parse(host).ok())
        {
            Some(host) => {
                parsed = host;
                &parsed
            }
            None => return false,
        },
    };
    if settings.cookie_secure && origin.scheme != "https" && !is_loopback(&origin.host) {
        return false;
    }
    let same_host = own.domain().as_str().eq_ignore_ascii_case(&origin.host);
    let same_port = match own.port() {
        Some(port) => origin.effective_port() == Some(port),
        // No port in `Host`: the default port of whichever scheme the app is
        // served with, which the app cannot see behind a proxy.
        None => origin.port.is_none() || origin.port == default_port(&origin.scheme),
    };
    same_host && same_port
}

/// Refuses a state-changing request that a browser says comes from another
/// site: `Sec-Fetch-Site: cross-site`, or an `Origin` that is neither the app
/// itself nor a trusted origin. Safe methods, and requests carrying neither
/// header (curl, scripts, old browsers), pass: those cannot carry a victim's
/// cookie across sites in a modern browser.
pub(crate) fn check_origin(
    request: &Request<'_>,
    settings: &Settings,
) -> Result<(), &'static Error> {
    if matches!(
        request.method(),
        Method::Get | Method::Head | Method::Options | Method::Trace
    ) {
        return Ok(());
    }
    let header = request.headers().get_one("Origin");
    // `None` for no header and for one that is not an origin (`null`).
    let origin = header.and_then(Origin::parse);
    let trusted = origin
        .as_ref()
        .is_some_and(|origin| settings.trusted_origins.contains(&origin.normalized()));
    let cross_site = request
        .headers()
        .get_one("Sec-Fetch-Site")
        .is_some_and(|site| site.trim().eq_ignore_ascii_case("cross-site"));
    let allowed = trusted
        || (!cross_site
            && match (header, &origin) {
                (None, _) => true,
                (Some(_), Some(origin)) => is_own_origin(origin, request, settings),
                (Some(_), None) => false,
            });
    if allowed {
        Ok(())
    } else {
        tracing::info!(
            "sessions: refused a cross-site {} {}",
            request.method(),
            request.uri().path()
        );
        Err(&CROSS_SITE)
    }
}

/// Checks a presented token against the session the request came with. A
/// request without a stored session has nothing to forge (the origin check
/// already ran); one with a stored session must present a token.
fn verify(state: &Mutex<State>, presented: Option<&str>) -> Result<(), &'static Error> {
    let state = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(token) = state.cookie_token() else {
        return Ok(());
    };
    match presented {
        Some(presented) if matches(&secret(token), presented) => Ok(()),
        _ => Err(&CSRF),
    }
}

/// A request guard giving the session's CSRF token, to put in forms (a hidden
/// field named [`CSRF_FIELD`]) and in `fetch` headers ([`CSRF_HEADER`]).
///
/// The token is derived from the session's secret cookie token, so it needs no
/// storage, and changes when the session's id is cycled (at login). Each call
/// to [`value`](Self::value) renders it with a fresh random mask, so pages
/// never repeat it byte for byte (a defence against BREACH).
///
/// Check it with [`CsrfForm`] (forms) or [`CsrfHeader`] (other bodies). A
/// request that arrives without a stored session (a first visit's login form)
/// is protected by the origin check that every guard of this crate makes.
///
/// ```rust
/// # #[macro_use] extern crate rocket;
/// use rocket::response::content::RawHtml;
/// use session_fairing::{CsrfForm, CsrfToken, Session, CSRF_FIELD};
///
/// #[get("/cart")]
/// fn cart(csrf: CsrfToken<'_>) -> RawHtml<String> {
///     RawHtml(format!(
///         r#"<form method="post" action="/cart">
///              <input type="hidden" name="{CSRF_FIELD}" value="{}">
///              <input name="item"> <button>Add</button>
///            </form>"#,
///         csrf.value()
///     ))
/// }
///
/// #[derive(FromForm)]
/// struct Item {
///     item: String,
/// }
///
/// #[post("/cart", data = "<form>")]
/// fn add(session: Session<'_>, form: CsrfForm<Item>) -> Result<&'static str, session_fairing::Error> {
///     // Only reached with the right token (or without a stored session).
///     session.insert("last_item", &form.item)?;
///     Ok("added")
/// }
/// ```
pub struct CsrfToken<'r> {
    state: &'r Mutex<State>,
}

impl std::fmt::Debug for CsrfToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfToken(<redacted>)")
    }
}

impl CsrfToken<'_> {
    /// The token to embed, freshly masked (86 characters of base64url). It
    /// belongs to the session as it will be after this request: after
    /// [`Session::login`](crate::Session::login) it is the new session's token.
    #[must_use]
    pub fn value(&self) -> String {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.token_after() {
            Some(token) => render(&secret(token)),
            // No randomness for a new session's token: the response fails anyway.
            None => String::new(),
        }
    }

    /// Whether `presented` is this session's token (as stored before this
    /// request), compared in constant time. For tokens that arrive elsewhere
    /// than a form field or [`CSRF_HEADER`], e.g. inside a JSON body.
    #[must_use]
    pub fn verify(&self, presented: &str) -> bool {
        verify(self.state, Some(presented)).is_ok()
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken<'r> {
    type Error = &'r Error;

    async fn from_request(request: &'r Request<'_>) -> request::Outcome<Self, &'r Error> {
        let (_, state) = try_outcome!(request_state(request).await);
        request::Outcome::Success(CsrfToken { state })
    }
}

impl rocket::Sentinel for CsrfToken<'_> {
    fn abort(rocket: &rocket::Rocket<rocket::Ignite>) -> bool {
        <Session<'_> as rocket::Sentinel>::abort(rocket)
    }
}

/// A request guard that refuses (`403`) a request with a stored session unless
/// its [`CSRF_HEADER`] header carries the session's [`CsrfToken`]: for
/// `fetch`/XHR handlers whose body is not a form. Requests without a stored
/// session pass (after the origin check).
#[derive(Debug)]
pub struct CsrfHeader(());

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfHeader {
    type Error = &'r Error;

    async fn from_request(request: &'r Request<'_>) -> request::Outcome<Self, &'r Error> {
        let (_, state) = try_outcome!(request_state(request).await);
        match verify(state, request.headers().get_one(CSRF_HEADER)) {
            Ok(()) => request::Outcome::Success(CsrfHeader(())),
            Err(error) => error.outcome(),
        }
    }
}

impl rocket::Sentinel for CsrfHeader {
    fn abort(rocket: &rocket::Rocket<rocket::Ignite>) -> bool {
        <Session<'_> as rocket::Sentinel>::abort(rocket)
    }
}

/// A form data guard, like Rocket's [`Form`], that first checks the session's
/// CSRF token: from the [`CSRF_FIELD`] field, or the [`CSRF_HEADER`] header.
/// A request with a stored session and a missing or wrong token is refused with
/// `403` before the handler runs, so nothing changes. Requests without a stored
/// session pass after the origin check (there is no session to ride on).
///
/// Parsing is lenient, as `Form<T>`'s: `T` need not declare the token field.
/// The body must be a form (`application/x-www-form-urlencoded` or
/// `multipart/form-data`), as for `Form<T>`; for a request without one, use
/// [`CsrfHeader`]. A form that carries only the token, such as a logout button,
/// is a `CsrfForm<NoFields>`. Dereferences to `T`; see [`CsrfToken`] for an
/// example.
#[derive(Debug)]
pub struct CsrfForm<T>(T);

/// A form with no fields of its own, for [`CsrfForm`]`<NoFields>`: a button
/// whose form carries only the CSRF token (logout, "sign out everywhere").
/// Every field is ignored. (`#[derive(FromForm)]` needs at least one field, and
/// Rocket has no `FromForm` for `()`.)
///
/// ```rust
/// # #[macro_use] extern crate rocket;
/// use rocket::response::Redirect;
/// use session_fairing::{CsrfForm, NoFields, Session};
///
/// #[post("/logout", data = "<_form>")]
/// fn logout(session: Session<'_>, _form: CsrfForm<NoFields>) -> Redirect {
///     session.delete();
///     Redirect::to("/")
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoFields;

#[rocket::async_trait]
impl<'r> FromForm<'r> for NoFields {
    type Context = ();

    fn init(_options: form::Options) -> Self::Context {}

    fn push_value(_context: &mut Self::Context, _field: ValueField<'r>) {}

    async fn push_data(_context: &mut Self::Context, _field: DataField<'r, '_>) {}

    fn finalize(_context: Self::Context) -> form::Result<'r, Self> {
        Ok(NoFields)
    }
}

impl<T> CsrfForm<T> {
    /// The parsed form.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for CsrfForm<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// `T` plus the token field, for Rocket's form parser.
struct WithToken<T> {
    token: Option<String>,
    inner: T,
}

struct WithTokenContext<'r, T: FromForm<'r>> {
    token: Option<String>,
    inner: T::Context,
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r>> FromForm<'r> for WithToken<T> {
    type Context = WithTokenContext<'r, T>;

    fn init(opts: form::Options) -> Self::Context {
        WithTokenContext {
            token: None,
            inner: T::init(opts),
        }
    }

    fn push_value(ctxt: &mut Self::Context, field: ValueField<'r>) {
        if field.name.source() == CSRF_FIELD {
            ctxt.token.get_or_insert_with(|| field.value.to_owned());
        } else {
            T::push_value(&mut ctxt.inner, field);
        }
    }

    async fn push_data(ctxt: &mut Self::Context, field: DataField<'r, '_>) {
        T::push_data(&mut ctxt.inner, field).await;
    }

    fn push_error(ctxt: &mut Self::Context, error: form::Error<'r>) {
        T::push_error(&mut ctxt.inner, error);
    }

    fn finalize(ctxt: Self::Context) -> form::Result<'r, Self> {
        Ok(WithToken {
            token: ctxt.token,
            inner: T::finalize(ctxt.inner)?,
        })
    }
}

/// Our error as a form error with its status (`403`, `503`, ...). Rocket's
/// form errors own their source, so it carries the message; the error itself
/// stays with the request (a failed load) or is a constant (refusals).
fn form_error<'r>(error: &Error) -> (Status, form::Errors<'r>) {
    let status = error.status();
    let kind =
        form::error::ErrorKind::Custom(status, Box::new(std::io::Error::other(error.to_string())));
    (status, form::Error::from(kind).into())
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r>> FromData<'r> for CsrfForm<T> {
    type Error = form::Errors<'r>;

    async fn from_data(request: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let state = match request_state(request).await {
            request::Outcome::Success((_, state)) => state,
            request::Outcome::Error((_, error)) => return data::Outcome::Error(form_error(error)),
            request::Outcome::Forward(status) => return data::Outcome::Forward((data, status)),
        };
        let parsed = try_outcome!(Form::<WithToken<T>>::from_data(request, data).await);
        let WithToken { token, inner } = parsed.into_inner();
        let presented = token
            .as_deref()
            .or_else(|| request.headers().get_one(CSRF_HEADER));
        match verify(state, presented) {
            Ok(()) => data::Outcome::Success(CsrfForm(inner)),
            Err(error) => data::Outcome::Error(form_error(error)),
        }
    }
}

impl<T> rocket::Sentinel for CsrfForm<T> {
    fn abort(rocket: &rocket::Rocket<rocket::Ignite>) -> bool {
        <Session<'_> as rocket::Sentinel>::abort(rocket)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;

    #[test]
    fn renderings_differ_and_all_verify() {
        let token = SessionToken::generate().unwrap();
        let secret = secret(&token);
        let first = render(&secret);
        let second = render(&secret);
        assert_ne!(first, second, "masked afresh");
        assert_eq!(first.len(), 86);
        assert!(matches(&secret, &first) && matches(&secret, &second));
        let other = super::secret(&SessionToken::generate().unwrap());
        assert!(!matches(&other, &first), "bound to its session");
        // Tampering, truncation and the unmasked secret are all refused.
        let mut tampered = first.clone().into_bytes();
        tampered[50] = if tampered[50] == b'A' { b'B' } else { b'A' };
        assert!(!matches(&secret, &String::from_utf8(tampered).unwrap()));
        assert!(!matches(&secret, &first[..85]));
        assert!(!matches(&secret, &URL_SAFE_NO_PAD.encode(secret)));
        assert!(!matches(&secret, ""));
    }

    #[test]
    fn loopback_hosts_are_the_ones_browsers_trust_over_http() {
        for host in [
            "localhost",
            "app.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "localhost.example.com",
            "128.0.0.1",
            "[::2]",
            "10.0.0.1",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            normalize_origin("HTTPS://App.Example.com:443/").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            normalize_origin("http://127.0.0.1:8000").as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(
            normalize_origin("http://a.com:443").as_deref(),
            Some("http://a.com:443"),
            "443 is not http's default"
        );
        assert_eq!(
            normalize_origin("http://[::1]:8000").as_deref(),
            Some("http://[::1]:8000")
        );
        for bad in [
            "",
            "example.com",
            "https://",
            "https://a.com/path",
            "null",
            "https://u@a.com",
            "https://a.com:port",
            "https://:443",
        ] {
            assert_eq!(normalize_origin(bad), None, "{bad:?}");
        }
    }
}
