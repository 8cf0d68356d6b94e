//! Authentication: OAuth 1.0a user context, app-only bearer tokens, and the PIN flow.
//!
//! OAuth 1.0a signs the method, the URL without its query, and every query and form
//! parameter. What is signed and what is sent must agree byte for byte, so this module both
//! signs a request and serialises its query string, with one encoder (RFC 3986, the one
//! `oauth1-request` uses; a generic URL encoder would write spaces as `+` and break the
//! signature). Parameters are sorted by their encoded form before signing, because the
//! signing crate sorts by raw value, which differs for repeated keys and non-ASCII text.

use std::num::NonZeroU64;

use oauth1_request as oauth;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// RFC 3986 unreserved characters stay as they are; everything else is percent-encoded.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one key or value as OAuth 1.0a requires.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, RFC3986).to_string()
}

/// The keys a user-context signature needs.
#[derive(Debug, Clone)]
pub struct OAuthKeys {
    pub consumer_key: Secret,
    pub consumer_secret: Secret,
    /// Absent while asking for a request token in the PIN flow.
    pub token: Option<(Secret, Secret)>,
}

/// Protocol parameters that only some requests carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct OAuthExtras<'a> {
    /// `oob` when asking for a request token in the PIN flow.
    pub callback: Option<&'a str>,
    /// The PIN, when exchanging a request token for an access token.
    pub verifier: Option<&'a str>,
    /// Fixed nonce and timestamp, for reproducing published test vectors only.
    pub nonce: Option<&'a str>,
    pub timestamp: Option<NonZeroU64>,
}

/// Sorts parameters by their encoded key, then encoded value, as the signature base string
/// orders them.
pub fn sort_parameters(parameters: &mut [(String, String)]) {
    parameters.sort_by_cached_key(|(key, value)| (encode(key), encode(value)));
}

/// The `Authorization` header value for a request. `url` is scheme, host and path with no
/// query; `parameters` are every query and form-encoded body parameter, already sorted by
/// [`sort_parameters`].
pub fn oauth1_header(
    method: &str,
    url: &str,
    parameters: &[(String, String)],
    keys: &OAuthKeys,
    extras: OAuthExtras<'_>,
) -> String {
    debug_assert!(!url.contains('?'), "the signed URL must not carry a query");

    let client = oauth::Credentials::new(keys.consumer_key.expose(), keys.consumer_secret.expose());
    let mut builder = oauth::Builder::<_, &str, &str>::new(client, oauth::HmacSha1::new());
    if let Some((token, secret)) = &keys.token {
        builder.token(oauth::Credentials::new(token.expose(), secret.expose()));
    }
    builder
        .version(true)
        .callback(extras.callback)
        .verifier(extras.verifier)
        .nonce(extras.nonce)
        .timestamp(extras.timestamp);

    let request = oauth::request::AssertSorted::new(
        parameters
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    );
    builder.authorize(method, url, &request)
}

/// The query string (without `?`) for sorted parameters, encoded exactly as they were signed.
pub fn query_string(parameters: &[(String, String)]) -> String {
    let request = oauth::request::AssertSorted::new(
        parameters
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    );
    let with_mark = oauth::to_query(String::new(), &request);
    with_mark.strip_prefix('?').unwrap_or(&with_mark).to_owned()
}

/// The `Authorization` header value for an app-only request.
pub fn bearer_header(token: &Secret) -> String {
    format!("Bearer {}", token.expose())
}

/// Normalises a base URL for signing: lowercase scheme and host, no default port, no trailing
/// slash. X verifies the signature against the host it was sent to, so this must be exactly
/// what the request goes to.
pub fn normalize_base_url(base: &str) -> Result<String> {
    let url = reqwest::Url::parse(base)
        .map_err(|error| Error::InvalidInput(format!("api.base_url `{base}`: {error}")))?;
    let scheme = url.scheme().to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(Error::InvalidInput(format!(
            "api.base_url `{base}`: the scheme must be http or https"
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| Error::InvalidInput(format!("api.base_url `{base}` has no host")))?
        .to_ascii_lowercase();
    let port = match url.port() {
        Some(port) => format!(":{port}"),
        None => String::new(),
    };
    let path = url.path().trim_end_matches('/');
    Ok(format!("{scheme}://{host}{port}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_keys() -> OAuthKeys {
        OAuthKeys {
            consumer_key: Secret::new("xvz1evFS4wEEPTGEFPHBog"),
            consumer_secret: Secret::new("kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"),
            token: Some((
                Secret::new("370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
                Secret::new("LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"),
            )),
        }
    }

    fn signature_of(header: &str) -> String {
        let start = header.find("oauth_signature=\"").unwrap() + "oauth_signature=\"".len();
        let end = start + header[start..].find('"').unwrap();
        percent_encoding::percent_decode_str(&header[start..end])
            .decode_utf8()
            .unwrap()
            .into_owned()
    }

    fn vector_header(host: &str) -> String {
        let mut parameters = vec![
            (
                "status".to_owned(),
                "Hello Ladies + Gentlemen, a signed OAuth request!".to_owned(),
            ),
            ("include_entities".to_owned(), "true".to_owned()),
        ];
        sort_parameters(&mut parameters);
        oauth1_header(
            "POST",
            &format!("https://{host}/1.1/statuses/update.json"),
            &parameters,
            &vector_keys(),
            OAuthExtras {
                nonce: Some("kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
                timestamp: NonZeroU64::new(1_318_622_958),
                ..OAuthExtras::default()
            },
        )
    }

    #[test]
    fn the_published_test_vector_is_reproduced_for_api_x_com() {
        assert_eq!(
            signature_of(&vector_header("api.x.com")),
            "Ls93hJiZbQ3akF3HF3x1Bz8/zU4="
        );
    }

    #[test]
    fn the_published_test_vector_is_reproduced_for_api_twitter_com() {
        assert_eq!(
            signature_of(&vector_header("api.twitter.com")),
            "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
        );
    }

    #[test]
    fn the_header_carries_every_protocol_parameter() {
        let header = vector_header("api.x.com");
        for key in [
            "oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\"",
            "oauth_signature_method=\"HMAC-SHA1\"",
            "oauth_timestamp=\"1318622958\"",
            "oauth_version=\"1.0\"",
            "oauth_token=\"370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb\"",
        ] {
            assert!(header.contains(key), "{key} missing from {header}");
        }
    }

    #[test]
    fn the_query_string_encodes_like_the_signature() {
        let mut parameters = vec![
            ("query".to_owned(), "a b+c #tag é".to_owned()),
            ("max_results".to_owned(), "100".to_owned()),
        ];
        sort_parameters(&mut parameters);
        assert_eq!(
            query_string(&parameters),
            "max_results=100&query=a%20b%2Bc%20%23tag%20%C3%A9"
        );
    }

    #[test]
    fn base_urls_are_normalised_for_signing() {
        assert_eq!(
            normalize_base_url("HTTPS://API.X.COM/").unwrap(),
            "https://api.x.com"
        );
        assert_eq!(
            normalize_base_url("https://api.x.com:443").unwrap(),
            "https://api.x.com"
        );
        assert_eq!(
            normalize_base_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalize_base_url("ftp://x").is_err());
    }
}
