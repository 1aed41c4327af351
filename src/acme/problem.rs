//! The RFC 7807 problem document an ACME server answers a bad nonce with.

/// The ACME error type for a refused nonce (RFC 8555 §6.5).
///
/// ```
/// use monotonic_nonce::acme::{BadNonce, ACME_BAD_NONCE};
/// assert_eq!(BadNonce::AlreadyUsed.problem().r#type, ACME_BAD_NONCE);
/// ```
pub const ACME_BAD_NONCE: &str = "urn:ietf:params:acme:error:badNonce";

/// An RFC 7807 problem document, as ACME servers answer errors
/// (`application/problem+json`). Serializable with the `serde` feature.
///
/// ```
/// use monotonic_nonce::acme::BadNonce;
/// let p = BadNonce::TooOld.problem();
/// assert_eq!(p.r#type, "urn:ietf:params:acme:error:badNonce");
/// assert_eq!(p.detail, "the nonce is too old");
/// # #[cfg(feature = "serde")]
/// assert!(serde_json::to_string(&p).unwrap().starts_with(r#"{"type":"urn:ietf:params:acme:error:badNonce""#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Problem {
    /// The problem type URI.
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
    pub r#type: String,
    /// A human-readable explanation.
    pub detail: String,
    /// The HTTP status code.
    pub status: u16,
}

impl Problem {
    /// A `badNonce` problem (HTTP 400) with `detail`.
    pub(crate) fn bad_nonce(detail: String) -> Self {
        Self { r#type: ACME_BAD_NONCE.to_owned(), detail, status: 400 }
    }
}
