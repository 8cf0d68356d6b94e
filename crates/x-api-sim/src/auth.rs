//! Authentication: Bearer tokens, OAuth 1.0a signatures and the PIN (out-of-band) flow.
//!
//! The signature check is an independent implementation of RFC 5849 §3.4 with HMAC-SHA1, so a
//! client's signing library is tested against a second implementation rather than itself.
//! X signs the URL the client used, host included, so the base string is built from the
//! request's Host header and path; query parameters and form-encoded body parameters are
//! signed, JSON bodies are not. Timestamps are checked against real wall-clock time (clients
//! sign with their own clock, which the simulated clock does not change), and nonces may be
//! used once.

use crate::clock::real_epoch_secs;
use crate::errors::ApiError;
use crate::rng::{SplitMix64, hash, hash_str, rng_for};
use crate::world::{Status, World, tag};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Serialize;
use sha1::Sha1;
use std::collections::HashMap;
use std::sync::Mutex;

/// RFC 3986 unreserved characters stay as they are; everything else is encoded.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How far a signed timestamp may be from real time.
const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// A complete set of keys for one account, as written to a credentials file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credentials {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub access_token: String,
    pub access_token_secret: String,
    pub bearer_token: String,
}

/// Who a request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// OAuth 2.0 application-only (Bearer).
    App,
    /// OAuth 1.0a user context: the account and the access token used.
    User { user: u32, token: String },
}

/// What the signature check needs to know about a request.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub authorization: Option<&'a str>,
    /// The body, when it is `application/x-www-form-urlencoded`.
    pub form_body: Option<&'a str>,
}

struct AccessToken {
    secret: String,
    user: u32,
}

struct RequestToken {
    secret: String,
    /// The PIN and chosen account once the authorize page was shown.
    verifier: Option<(String, u32)>,
}

pub struct AuthState {
    seed: u64,
    pub consumer_key: String,
    consumer_secret: String,
    pub bearer: String,
    /// Named credential sets handed out at startup: (name, user, token).
    named: Vec<(String, u32, String)>,
    access: Mutex<HashMap<String, AccessToken>>,
    request_tokens: Mutex<HashMap<String, RequestToken>>,
    nonces: Mutex<HashMap<String, i64>>,
    issued: Mutex<u64>,
}

/// Decodes a percent-encoded component, `+` meaning space as in form encoding.
pub fn form_decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

/// Parses `a=1&b=2` into decoded pairs.
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (form_decode(k), form_decode(v)),
            None => (form_decode(p), String::new()),
        })
        .collect()
}

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// Parses `OAuth k="v", …` into decoded pairs.
pub fn parse_oauth_header(h: &str) -> Option<Vec<(String, String)>> {
    let rest = h.trim().strip_prefix("OAuth ")?;
    let mut out = Vec::new();
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=')?;
        let v = v.trim().trim_matches('"');
        out.push((
            form_decode(k.trim()),
            percent_decode_str(v).decode_utf8_lossy().into_owned(),
        ));
    }
    Some(out)
}

/// The RFC 5849 signature base string.
pub fn base_string(method: &str, base_url: &str, params: &[(String, String)]) -> String {
    let mut enc: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    enc.sort();
    let joined: Vec<String> = enc.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(base_url),
        encode(&joined.join("&"))
    )
}

/// HMAC-SHA1 signature of a base string, base64-encoded.
pub fn sign(base: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!("{}&{}", encode(consumer_secret), encode(token_secret));
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(base.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// The OAuth parameters of a request and all parameters it signs.
struct OAuthParams {
    all: Vec<(String, String)>,
    signature: String,
}

impl OAuthParams {
    fn get(&self, k: &str) -> Option<&str> {
        self.all
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

fn collect_oauth(req: &SignedRequest) -> Option<OAuthParams> {
    let header = parse_oauth_header(req.authorization?)?;
    let mut all = parse_form(req.query);
    if let Some(body) = req.form_body {
        all.extend(parse_form(body));
    }
    let mut signature = None;
    for (k, v) in header {
        match k.as_str() {
            "oauth_signature" => signature = Some(v),
            "realm" => {}
            _ => all.push((k, v)),
        }
    }
    Some(OAuthParams {
        all,
        signature: signature?,
    })
}

fn base_url(req: &SignedRequest) -> String {
    format!("http://{}{}", req.host.to_ascii_lowercase(), req.path)
}

impl AuthState {
    /// Keys derived from the seed; `second` is the account of the second credential set.
    pub fn new(seed: u64, world: &World, second: u32) -> AuthState {
        let mut rng = rng_for(&[seed, tag::CREDENTIALS]);
        let consumer_key = rng.alnum(25);
        let consumer_secret = rng.alnum(50);
        let bearer = format!("AAAAAAAAAAAAAAAAAAAAA{}", rng.alnum(91));
        let mut access = HashMap::new();
        let mut named = Vec::new();
        for (name, user) in [("default", 0u32), ("second", second)] {
            let (token, secret) = new_access_token(&mut rng, world.user(user).id);
            access.insert(token.clone(), AccessToken { secret, user });
            named.push((name.to_string(), user, token));
        }
        AuthState {
            seed,
            consumer_key,
            consumer_secret,
            bearer,
            named,
            access: Mutex::new(access),
            request_tokens: Mutex::new(HashMap::new()),
            nonces: Mutex::new(HashMap::new()),
            issued: Mutex::new(0),
        }
    }

    /// The named credential sets.
    pub fn credentials(&self) -> Vec<(String, Credentials)> {
        let access = self.access.lock().unwrap_or_else(|e| e.into_inner());
        self.named
            .iter()
            .map(|(name, _, token)| {
                let secret = access
                    .get(token)
                    .map(|a| a.secret.clone())
                    .unwrap_or_default();
                (
                    name.clone(),
                    Credentials {
                        consumer_key: self.consumer_key.clone(),
                        consumer_secret: self.consumer_secret.clone(),
                        access_token: token.clone(),
                        access_token_secret: secret,
                        bearer_token: self.bearer.clone(),
                    },
                )
            })
            .collect()
    }

    /// The client id X reports in client-forbidden bodies.
    pub fn client_id(&self) -> String {
        (hash(&[self.seed, 77]) % 100_000_000).to_string()
    }

    /// Authenticates an API request as the app (Bearer) or a user (OAuth 1.0a).
    pub fn authenticate(&self, req: &SignedRequest) -> Result<Identity, ApiError> {
        let Some(h) = req.authorization else {
            return Err(ApiError::Unauthorized);
        };
        if let Some(token) = h.strip_prefix("Bearer ") {
            return if token.trim() == self.bearer {
                Ok(Identity::App)
            } else {
                Err(ApiError::Unauthorized)
            };
        }

        let p = collect_oauth(req).ok_or(ApiError::Unauthorized)?;
        let token = p
            .get("oauth_token")
            .ok_or(ApiError::Unauthorized)?
            .to_string();
        let (secret, user) = {
            let access = self.access.lock().unwrap_or_else(|e| e.into_inner());
            let a = access.get(&token).ok_or(ApiError::Unauthorized)?;
            (a.secret.clone(), a.user)
        };
        self.verify(req, &p, &secret)?;
        Ok(Identity::User { user, token })
    }

    /// Checks consumer key, method, timestamp, signature and nonce.
    fn verify(
        &self,
        req: &SignedRequest,
        p: &OAuthParams,
        token_secret: &str,
    ) -> Result<(), ApiError> {
        if p.get("oauth_consumer_key") != Some(self.consumer_key.as_str())
            || p.get("oauth_signature_method") != Some("HMAC-SHA1")
            || p.get("oauth_version").is_some_and(|v| v != "1.0")
        {
            return Err(ApiError::Unauthorized);
        }
        let ts: i64 = p
            .get("oauth_timestamp")
            .and_then(|t| t.parse().ok())
            .ok_or(ApiError::Unauthorized)?;
        let now = real_epoch_secs();
        if (ts - now).abs() > MAX_CLOCK_SKEW_SECS {
            return Err(ApiError::Unauthorized);
        }

        let base = base_string(req.method, &base_url(req), &p.all);
        if sign(&base, &self.consumer_secret, token_secret) != p.signature {
            return Err(ApiError::Unauthorized);
        }

        // A nonce may be used once; remembered for as long as its timestamp is acceptable.
        let nonce = p
            .get("oauth_nonce")
            .filter(|n| !n.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let key = format!("{}:{}:{nonce}", p.get("oauth_token").unwrap_or(""), ts);
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        if nonces.len() > 100_000 {
            nonces.retain(|_, t| (*t - now).abs() <= MAX_CLOCK_SKEW_SECS);
        }
        if nonces.insert(key, ts).is_some() {
            return Err(ApiError::Unauthorized);
        }
        Ok(())
    }

    /// POST /oauth2/token with client credentials: the app's one Bearer token.
    pub fn bearer_for_basic(&self, authorization: Option<&str>) -> Option<String> {
        let encoded = authorization?.trim().strip_prefix("Basic ")?;
        let decoded = String::from_utf8(B64.decode(encoded.trim()).ok()?).ok()?;
        let (k, s) = decoded.split_once(':')?;
        (form_decode(k) == self.consumer_key && form_decode(s) == self.consumer_secret)
            .then(|| self.bearer.clone())
    }

    /// PIN flow step 1: a request token, signed with the consumer keys only.
    pub fn request_token(&self, req: &SignedRequest) -> Result<String, ApiError> {
        let p = collect_oauth(req).ok_or(ApiError::Unauthorized)?;
        if p.get("oauth_token").is_some() || p.get("oauth_callback").is_none() {
            return Err(ApiError::Unauthorized);
        }
        self.verify(req, &p, "")?;
        let mut rng = self.fresh_rng();
        let token = rng.alnum(27);
        let secret = rng.alnum(32);
        let mut tokens = self
            .request_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        tokens.insert(
            token.clone(),
            RequestToken {
                secret: secret.clone(),
                verifier: None,
            },
        );
        Ok(format!(
            "oauth_token={token}&oauth_token_secret={secret}&oauth_callback_confirmed=true"
        ))
    }

    /// PIN flow step 2: binds a PIN and an account to a request token. The account is the
    /// operator unless `screen_name` names another active account.
    pub fn authorize(
        &self,
        world: &World,
        token: &str,
        screen_name: Option<&str>,
        now: i64,
    ) -> Option<(String, u32)> {
        let user = screen_name
            .and_then(|n| world.user_by_name(n, now))
            .filter(|&u| world.user(u).status_at(now) == Status::Active)
            .unwrap_or(0);
        let mut tokens = self
            .request_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let rt = tokens.get_mut(token)?;
        let pin = format!("{:07}", self.fresh_rng().below(10_000_000));
        rt.verifier = Some((pin.clone(), user));
        Some((pin, user))
    }

    /// PIN flow step 3: exchanges a request token and its PIN for an access token.
    pub fn access_token(
        &self,
        world: &World,
        req: &SignedRequest,
        now: i64,
    ) -> Result<String, ApiError> {
        let p = collect_oauth(req).ok_or(ApiError::Unauthorized)?;
        let token = p
            .get("oauth_token")
            .ok_or(ApiError::Unauthorized)?
            .to_string();
        let verifier = p
            .get("oauth_verifier")
            .ok_or(ApiError::Unauthorized)?
            .to_string();
        let secret = {
            let tokens = self
                .request_tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            tokens
                .get(&token)
                .ok_or(ApiError::Unauthorized)?
                .secret
                .clone()
        };
        self.verify(req, &p, &secret)?;

        // The PIN is single use: the request token goes away with a successful exchange.
        let user = {
            let mut tokens = self
                .request_tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match tokens.get(&token).and_then(|t| t.verifier.clone()) {
                Some((pin, user)) if pin == verifier => {
                    tokens.remove(&token);
                    user
                }
                _ => return Err(ApiError::Unauthorized),
            }
        };
        let u = world.user(user);
        let (access, access_secret) = new_access_token(&mut self.fresh_rng(), u.id);
        self.access
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                access.clone(),
                AccessToken {
                    secret: access_secret.clone(),
                    user,
                },
            );
        Ok(format!(
            "oauth_token={access}&oauth_token_secret={access_secret}&user_id={}&screen_name={}",
            u.id,
            u.username_at(now)
        ))
    }

    /// A generator for tokens issued at run time: seeded, and different for every issue.
    fn fresh_rng(&self) -> SplitMix64 {
        let mut n = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        rng_for(&[self.seed, tag::CREDENTIALS, hash_str("issued"), *n])
    }
}

fn new_access_token(rng: &mut SplitMix64, user_id: u64) -> (String, String) {
    (format!("{user_id}-{}", rng.alnum(40)), rng.alnum(45))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_params() -> Vec<(String, String)> {
        [
            ("include_entities", "true"),
            (
                "status",
                "Hello Ladies + Gentlemen, a signed OAuth request!",
            ),
            ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
            ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            (
                "oauth_token",
                "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            ),
            ("oauth_version", "1.0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn published_signature_vector_for_both_hosts() {
        let consumer_secret = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";
        let token_secret = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE";
        for (host, expected) in [
            ("api.x.com", "Ls93hJiZbQ3akF3HF3x1Bz8/zU4="),
            ("api.twitter.com", "hCtSmYh+iHYCEqBWrE7C7hYmtUk="),
        ] {
            let url = format!("https://{host}/1.1/statuses/update.json");
            let base = base_string("POST", &url, &vector_params());
            assert_eq!(
                sign(&base, consumer_secret, token_secret),
                expected,
                "{host}"
            );
        }
    }

    #[test]
    fn vector_through_the_request_parser() {
        // The same request as a client sends it: status in a form body, the rest in the header.
        let header = "OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\", \
            oauth_nonce=\"kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg\", \
            oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\", \
            oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"1318622958\", \
            oauth_token=\"370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb\", \
            oauth_version=\"1.0\"";
        let req = SignedRequest {
            method: "POST",
            host: "api.twitter.com",
            path: "/1.1/statuses/update.json",
            query: "include_entities=true",
            authorization: Some(header),
            form_body: Some(
                "status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21",
            ),
        };
        let p = collect_oauth(&req).unwrap();
        let base = base_string(
            req.method,
            "https://api.twitter.com/1.1/statuses/update.json",
            &p.all,
        );
        let sig = sign(
            &base,
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        );
        assert_eq!(sig, p.signature);
    }

    #[test]
    fn basic_auth_yields_the_bearer() {
        let w = World::new(1, 50, 1_767_225_600_000);
        let a = AuthState::new(1, &w, 1);
        let basic = B64.encode(format!("{}:{}", a.consumer_key, a.consumer_secret));
        assert_eq!(
            a.bearer_for_basic(Some(&format!("Basic {basic}"))),
            Some(a.bearer.clone())
        );
        assert_eq!(a.bearer_for_basic(Some("Basic Zm9vOmJhcg==")), None);
    }
}
