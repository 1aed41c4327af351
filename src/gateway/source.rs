//! Where the layer reads a request's account and nonce: the [`Verified`]
//! extension a signature layer inserts (the default), a header pair, or the
//! query string; and the strict parsing every source shares.

use super::refusal::{BadInput, Refusal};
use http::header::HeaderName;
use http::Request;

/// The longest account a source accepts by default, in bytes (the Redis
/// validator's own limit; see [`NonceSource`] implementors to change it).
pub const DEFAULT_MAX_ACCOUNT_LEN: usize = 1024;

/// What a signature layer inserts into the request's extensions once it has
/// verified the signature over the account and the nonce: the only input
/// [`NonceLayer::new`](super::NonceLayer::new) records a nonce from.
///
/// ```
/// use monotonic_nonce::gateway::Verified;
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(Verified::new("bot-1", 1_704_067_200_000));
/// assert_eq!(request.extensions().get::<Verified>().map(|v| v.nonce), Some(1_704_067_200_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Verified {
    /// The account (API key) whose signature was verified.
    pub account: String,
    /// The nonce the signature covers.
    pub nonce: u64,
}

impl Verified {
    /// The verified `account` and `nonce`.
    pub fn new(account: impl Into<String>, nonce: u64) -> Self {
        Self { account: account.into(), nonce }
    }
}

/// Reads a request's account and nonce for the layer. Implement it to read
/// them from elsewhere (a JSON body the signature layer parsed, say).
///
/// ```
/// use monotonic_nonce::gateway::{NonceSource, Refusal};
///
/// /// The account from a fixed header, the nonce from the path's last segment.
/// #[derive(Clone)]
/// struct PathNonce;
/// impl NonceSource for PathNonce {
///     fn read<B>(&self, request: &http::Request<B>) -> Result<(String, u64), Refusal> {
///         let last = request.uri().path().rsplit('/').next().unwrap_or("");
///         let nonce = monotonic_nonce::gateway::parse_nonce("path", last.as_bytes())?;
///         Ok(("bot".to_owned(), nonce))
///     }
/// }
/// let request = http::Request::get("/orders/42").body(()).unwrap();
/// assert_eq!(PathNonce.read(&request), Ok(("bot".to_owned(), 42)));
/// ```
pub trait NonceSource: Clone + Send + Sync + 'static {
    /// The account and the nonce, or why they cannot be read.
    ///
    /// # Errors
    /// A [`Refusal`]: [`Refusal::BadRequest`] for unreadable input,
    /// [`Refusal::Unverified`] when nothing verified the request.
    fn read<B>(&self, request: &Request<B>) -> Result<(String, u64), Refusal>;
}

/// The [`Verified`] extension: a request without one is refused with
/// [`Refusal::Unverified`] (500: the stack is misconfigured, and recording an
/// unverified nonce would let forged requests burn a victim's nonces).
#[derive(Debug, Clone, Copy, Default)]
pub struct FromVerified;

impl NonceSource for FromVerified {
    fn read<B>(&self, request: &Request<B>) -> Result<(String, u64), Refusal> {
        match request.extensions().get::<Verified>() {
            Some(v) => Ok((v.account.clone(), v.nonce)),
            None => Err(Refusal::Unverified),
        }
    }
}

/// The account and the nonce from two headers, each present exactly once.
///
/// ```
/// use monotonic_nonce::gateway::{HeaderPair, NonceSource};
/// let source = HeaderPair::new("x-api-key", "x-nonce");
/// let request = http::Request::get("/").header("x-api-key", "bot").header("x-nonce", "17").body(()).unwrap();
/// assert_eq!(source.read(&request), Ok(("bot".to_owned(), 17)));
/// ```
#[derive(Debug, Clone)]
pub struct HeaderPair {
    account: HeaderName,
    nonce: HeaderName,
    max_account_len: usize,
}

impl HeaderPair {
    /// Reads the account from header `account` and the nonce from header `nonce`.
    ///
    /// # Panics
    /// When a name is not a valid header name (a programming error, as with
    /// `HeaderName::from_static`).
    pub fn new(account: &'static str, nonce: &'static str) -> Self {
        Self::from_names(HeaderName::from_static(account), HeaderName::from_static(nonce))
    }

    /// The same with names built elsewhere.
    pub fn from_names(account: HeaderName, nonce: HeaderName) -> Self {
        Self { account, nonce, max_account_len: DEFAULT_MAX_ACCOUNT_LEN }
    }

    /// Refuses accounts longer than `len` bytes (default [`DEFAULT_MAX_ACCOUNT_LEN`]).
    pub fn max_account_len(mut self, len: usize) -> Self {
        self.max_account_len = len;
        self
    }

    fn one<'r, B>(&self, request: &'r Request<B>, name: &HeaderName) -> Result<&'r [u8], Refusal> {
        let mut values = request.headers().get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => Ok(v.as_bytes()),
            (None, _) => Err(BadInput::Missing { field: name.to_string() }.into()),
            (Some(_), Some(_)) => Err(BadInput::Duplicated { field: name.to_string() }.into()),
        }
    }
}

impl NonceSource for HeaderPair {
    fn read<B>(&self, request: &Request<B>) -> Result<(String, u64), Refusal> {
        let account = parse_account(self.account.as_str(), self.one(request, &self.account)?, self.max_account_len)?;
        let nonce = parse_nonce(self.nonce.as_str(), self.one(request, &self.nonce)?)?;
        Ok((account, nonce))
    }
}

/// The account and the nonce from the query string (`?key=bot&nonce=17`),
/// each present exactly once; the account may be percent-encoded.
///
/// ```
/// use monotonic_nonce::gateway::{NonceSource, QueryParam};
/// let source = QueryParam::new("key", "nonce");
/// let request = http::Request::get("/orders?key=bot%201&nonce=17").body(()).unwrap();
/// assert_eq!(source.read(&request), Ok(("bot 1".to_owned(), 17)));
/// ```
#[derive(Debug, Clone)]
pub struct QueryParam {
    account: String,
    nonce: String,
    max_account_len: usize,
}

impl QueryParam {
    /// Reads the account from parameter `account` and the nonce from parameter `nonce`.
    pub fn new(account: impl Into<String>, nonce: impl Into<String>) -> Self {
        Self { account: account.into(), nonce: nonce.into(), max_account_len: DEFAULT_MAX_ACCOUNT_LEN }
    }

    /// Refuses accounts longer than `len` bytes (default [`DEFAULT_MAX_ACCOUNT_LEN`]).
    pub fn max_account_len(mut self, len: usize) -> Self {
        self.max_account_len = len;
        self
    }

    /// The one value of `name`, percent-decoded.
    fn one(query: &str, name: &str) -> Result<Vec<u8>, Refusal> {
        let mut found = None;
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key != name {
                continue;
            }
            if found.is_some() {
                return Err(BadInput::Duplicated { field: name.to_owned() }.into());
            }
            found = Some(percent_decode(value).ok_or_else(|| BadInput::Unreadable { field: name.to_owned() })?);
        }
        found.ok_or_else(|| BadInput::Missing { field: name.to_owned() }.into())
    }
}

impl NonceSource for QueryParam {
    fn read<B>(&self, request: &Request<B>) -> Result<(String, u64), Refusal> {
        let query = request.uri().query().unwrap_or("");
        let account = parse_account(&self.account, &Self::one(query, &self.account)?, self.max_account_len)?;
        let nonce = parse_nonce(&self.nonce, &Self::one(query, &self.nonce)?)?;
        Ok((account, nonce))
    }
}

/// `%XX` escapes decoded (`+` stays a `+`); `None` for a broken escape.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // `from_str_radix` alone would take a sign (`%+1`)
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A nonce as a request carries it: 1 to 20 ASCII digits, no sign, no
/// spaces, no leading zero, no exponent, at most `u64::MAX`. `field` names
/// where it came from, for the error.
///
/// # Errors
/// [`Refusal::BadRequest`] with [`BadInput::Empty`] or [`BadInput::NotANonce`].
///
/// ```
/// use monotonic_nonce::gateway::parse_nonce;
/// assert_eq!(parse_nonce("nonce", b"1704067200000"), Ok(1_704_067_200_000));
/// for bad in [&b"+1"[..], b"-1", b" 1", b"1 ", b"1e3", b"01", b"18446744073709551616", b"0x1"] {
///     assert!(parse_nonce("nonce", bad).is_err());
/// }
/// ```
pub fn parse_nonce(field: &str, text: &[u8]) -> Result<u64, Refusal> {
    let not_a_nonce = || Refusal::from(BadInput::NotANonce { field: field.to_owned() });
    match text {
        [] => Err(BadInput::Empty { field: field.to_owned() }.into()),
        // `u64::from_str` would take a leading `+`; leading zeros would give one nonce two spellings
        [b'0', _, ..] => Err(not_a_nonce()),
        _ if text.len() > 20 || !text.iter().all(u8::is_ascii_digit) => Err(not_a_nonce()),
        // all ASCII digits, so UTF-8; above u64::MAX fails the parse
        _ => std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()).ok_or_else(not_a_nonce),
    }
}

/// An account as a request carries it: UTF-8, not empty, at most `max` bytes.
fn parse_account(field: &str, bytes: &[u8], max: usize) -> Result<String, Refusal> {
    let field = || field.to_owned();
    if bytes.is_empty() {
        return Err(BadInput::Empty { field: field() }.into());
    }
    if bytes.len() > max {
        return Err(BadInput::TooLong { field: field(), len: bytes.len(), max }.into());
    }
    match std::str::from_utf8(bytes) {
        Ok(account) => Ok(account.to_owned()),
        Err(_) => Err(BadInput::Unreadable { field: field() }.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_parse_strictly() {
        assert_eq!(parse_nonce("n", b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_nonce("n", b"0"), Ok(0)); // the validator refuses 0, with its own body
        for bad in [&b""[..], b"+5", b"-5", b"\t5", b"5\n", b"5.0", b"5e0", b"00", b"99999999999999999999", b"\xff"] {
            assert!(matches!(parse_nonce("n", bad), Err(Refusal::BadRequest(_))), "{bad:?}");
        }
    }

    #[test]
    fn queries_are_read_once_and_decoded() {
        assert_eq!(QueryParam::one("a=1&b=%41", "b"), Ok(b"A".to_vec()));
        assert!(matches!(QueryParam::one("a=1&a=2", "a"), Err(Refusal::BadRequest(BadInput::Duplicated { .. }))));
        assert!(matches!(QueryParam::one("a=%4", "a"), Err(Refusal::BadRequest(BadInput::Unreadable { .. }))));
        assert!(matches!(QueryParam::one("a=%+1", "a"), Err(Refusal::BadRequest(BadInput::Unreadable { .. }))));
        assert!(matches!(QueryParam::one("b=1", "a"), Err(Refusal::BadRequest(BadInput::Missing { .. }))));
    }
}
