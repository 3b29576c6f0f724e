//! Who may call the server: API keys (Basic), access tokens (Bearer) and rotating refresh tokens.
//!
//! Access tokens are JWT-shaped (`header.claims.signature`, HS256) and signed with a secret kept
//! in the data folder, so they stay valid across a restart without a token table. Refresh tokens
//! are single-use: each is a file named by its SHA-256 in `auth/refresh/`, removed when spent, so
//! rotation holds across restarts and two racing refreshes cannot both win.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use avbatch_api::AccessToken;
use axum::http::{header, HeaderMap, StatusCode};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::problem::ApiError;
use super::store::{fsync_dir, write_atomic};
use avbatch_api::secret::ApiKey;

type HmacSha256 = Hmac<Sha256>;

/// The accepted keys and the token machinery.
#[derive(Debug)]
pub struct Auth {
    keys: Vec<ApiKey>,
    secret: Vec<u8>,
    ttl: Duration,
    refresh_dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// Fingerprint of the API key the token was issued for.
    sub: String,
    iat: i64,
    exp: i64,
    jti: String,
}

#[derive(Serialize, Deserialize)]
struct RefreshRecord {
    sub: String,
}

/// SHA-256 of a key, hex, first 16 bytes: identifies a key without storing it.
fn fingerprint(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..16])
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn unauthorized(slug: &'static str, title: &'static str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, slug, title)
}

/// `400` for a wrong API key or refresh token (API.md §1.2).
fn invalid_credentials() -> ApiError {
    ApiError::bad_request(
        "authentication-invalid-user-credentials",
        "The user credentials were incorrect.",
    )
    .name("")
}

impl Auth {
    /// Loads (or creates) the signing secret in `data/auth/`.
    pub fn open(data: &Path, keys: Vec<ApiKey>, ttl: Duration) -> io::Result<Auth> {
        let dir = data.join("auth");
        let refresh_dir = dir.join("refresh");
        fs::create_dir_all(&refresh_dir)?;
        let secret_path = dir.join("signing-secret");
        let secret = match fs::read(&secret_path) {
            Ok(s) if s.len() >= 32 => s,
            _ => {
                let mut s = vec![0u8; 32];
                rand::rng().fill_bytes(&mut s);
                // Written 0600, as every record ([`write_atomic`]).
                write_atomic(&secret_path, &s)?;
                s
            }
        };
        Ok(Auth { keys, secret, ttl, refresh_dir })
    }

    fn key_by_fingerprint(&self, fp: &str) -> bool {
        self.keys.iter().any(|k| fingerprint(k.expose()) == fp)
    }

    fn sign(&self, data: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(data.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Issues an access and refresh token for the key with fingerprint `sub`.
    fn issue(&self, sub: String) -> Result<AccessToken, ApiError> {
        // `exp` is in whole seconds, as in a JWT: rounded up, so a token lives at least the
        // `expires_in` it is sold with (rounding down made a 1 s token live 0 to 1 s).
        let now_ms = Utc::now().timestamp_millis();
        let exp = if self.ttl.is_zero() {
            now_ms / 1000
        } else {
            (now_ms + self.ttl.as_millis() as i64 + 999) / 1000
        };
        let claims = Claims { sub: sub.clone(), iat: now_ms / 1000, exp, jti: random_hex(8) };
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let unsigned = format!("{header}.{payload}");
        let access = format!("{unsigned}.{}", self.sign(&unsigned));
        let refresh = format!("def50200{}", random_hex(48));
        let record = serde_json::to_vec(&RefreshRecord { sub }).expect("record serialises");
        write_atomic(&self.refresh_path(&refresh), &record)
            .map_err(|e| ApiError::internal("storing the refresh token", e))?;
        Ok(AccessToken {
            token_type: "Bearer".to_owned(),
            expires_in: self.ttl.as_secs(),
            access_token: access,
            refresh_token: refresh,
        })
    }

    fn refresh_path(&self, token: &str) -> PathBuf {
        self.refresh_dir.join(hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// `POST /auth/api-key`: a token pair for a valid key. Blocks (writes the refresh token).
    pub fn authenticate(&self, api_key: &str) -> Result<AccessToken, ApiError> {
        if !self.keys.iter().any(|k| k.expose() == api_key) {
            return Err(invalid_credentials());
        }
        self.issue(fingerprint(api_key))
    }

    /// `POST /auth/refresh`: spends the refresh token and issues a new pair. Blocks.
    pub fn refresh(&self, refresh_token: &str) -> Result<AccessToken, ApiError> {
        let path = self.refresh_path(refresh_token);
        let record: RefreshRecord = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(invalid_credentials)?;
        // Removing the file is the spend: only one caller can succeed.
        fs::remove_file(&path).map_err(|_| invalid_credentials())?;
        let _ = fsync_dir(&self.refresh_dir);
        if !self.key_by_fingerprint(&record.sub) {
            return Err(invalid_credentials());
        }
        self.issue(record.sub)
    }

    /// Checks the `Authorization` header of an API call.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(
                "authentication-missing-authorization-header",
                "The \"Authorization\" header is missing.",
            ));
        };
        let bad_header = || {
            unauthorized(
                "authentication-invalid-authorization-header-value",
                "The \"Authorization\" header value is invalid.",
            )
        };
        let value = value.to_str().map_err(|_| bad_header())?.trim();
        let (scheme, credentials) = value.split_once(' ').ok_or_else(bad_header)?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD.decode(credentials).map_err(|_| bad_header())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad_header())?;
            // The key is the user name; the password is empty (curl -u KEY:). Accept a bare key
            // too.
            let key = decoded.split_once(':').map_or(decoded.as_str(), |(user, _)| user);
            if self.keys.iter().any(|k| k.expose() == key) {
                return Ok(());
            }
            return Err(unauthorized("authentication-invalid-api-key", "The API key is invalid."));
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.verify_access(credentials);
        }
        Err(bad_header())
    }

    fn verify_access(&self, token: &str) -> Result<(), ApiError> {
        let invalid = || {
            unauthorized(
                "authentication-invalid-access-token",
                "The access token is invalid or expired.",
            )
        };
        let (unsigned, signature) = token.rsplit_once('.').ok_or_else(invalid)?;
        // `verify_slice` compares in constant time.
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(unsigned.as_bytes());
        let given = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
        mac.verify_slice(&given).map_err(|_| invalid())?;
        let payload = unsigned.split_once('.').map(|(_, p)| p).ok_or_else(invalid)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(invalid)?;
        if claims.exp * 1000 <= Utc::now().timestamp_millis()
            || !self.key_by_fingerprint(&claims.sub)
        {
            return Err(invalid());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn basic_bearer_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let auth =
            Auth::open(dir.path(), vec![ApiKey::new("k1")], Duration::from_secs(60)).unwrap();
        assert!(auth.check(&headers(&format!("Basic {}", STANDARD.encode("k1:")))).is_ok());
        assert_eq!(
            auth.check(&headers(&format!("Basic {}", STANDARD.encode("k2:")))).unwrap_err().slug,
            "authentication-invalid-api-key"
        );
        assert_eq!(
            auth.check(&HeaderMap::new()).unwrap_err().slug,
            "authentication-missing-authorization-header"
        );
        assert_eq!(
            auth.check(&headers("Token x")).unwrap_err().slug,
            "authentication-invalid-authorization-header-value"
        );
        assert_eq!(
            auth.authenticate("nope").unwrap_err().slug,
            "authentication-invalid-user-credentials"
        );

        let pair = auth.authenticate("k1").unwrap();
        let access = pair.access_token.as_str();
        assert!(auth.check(&headers(&format!("Bearer {access}"))).is_ok());
        let tampered = format!("{}x", access);
        assert_eq!(
            auth.check(&headers(&format!("Bearer {tampered}"))).unwrap_err().slug,
            "authentication-invalid-access-token"
        );

        let refresh = pair.refresh_token.as_str();
        let next = auth.refresh(refresh).unwrap();
        assert_ne!(next.refresh_token, pair.refresh_token);
        assert!(auth.refresh(refresh).is_err(), "a spent refresh token is refused");

        // A restart keeps the secret, so tokens stay valid.
        let again =
            Auth::open(dir.path(), vec![ApiKey::new("k1")], Duration::from_secs(60)).unwrap();
        assert!(again.check(&headers(&format!("Bearer {access}"))).is_ok());
        assert!(again.refresh(&next.refresh_token).is_ok());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::open(dir.path(), vec![ApiKey::new("k1")], Duration::from_secs(0)).unwrap();
        let pair = auth.authenticate("k1").unwrap();
        let access = pair.access_token.as_str();
        assert_eq!(
            auth.check(&headers(&format!("Bearer {access}"))).unwrap_err().slug,
            "authentication-invalid-access-token"
        );
    }
}
