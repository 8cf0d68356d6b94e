//! OAuth endpoints: app-only Bearer tokens and the three PIN-flow steps.
//!
//! Failures use the v1.1-style bodies these endpoints still return on X.

use super::{Ep, Payload, Reply};
use crate::auth::{SignedRequest, parse_form};
use crate::sim::Sim;
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;

fn v1_error(status: u16, code: u32, message: &str) -> Reply {
    Reply::value(
        status,
        &json!({"errors": [{"code": code, "message": message}]}),
    )
}

fn text(status: u16, content_type: &'static str, body: String) -> Reply {
    Reply {
        status,
        body: Payload::Bytes(body.into_bytes()),
        content_type,
        headers: Vec::new(),
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

pub fn handle(sim: &Arc<Sim>, ep: Ep, req: &SignedRequest, body: &Bytes) -> Reply {
    let now = sim.now_ms();
    match ep {
        Ep::OAuth2Token => {
            let form = parse_form(std::str::from_utf8(body).unwrap_or(""));
            let mut params = parse_form(req.query);
            params.extend(form);
            let grant = params
                .iter()
                .find(|(k, _)| k == "grant_type")
                .map(|(_, v)| v.as_str());
            match grant {
                None => v1_error(403, 170, "Missing required parameter: grant_type"),
                Some("client_credentials") => match sim.auth.bearer_for_basic(req.authorization) {
                    Some(token) => {
                        Reply::value(200, &json!({"token_type": "bearer", "access_token": token}))
                    }
                    None => v1_error(403, 99, "Unable to verify your credentials"),
                },
                Some(_) => v1_error(403, 99, "Unable to verify your credentials"),
            }
        }
        Ep::RequestToken => match sim.auth.request_token(req) {
            Ok(form) => text(200, FORM, form),
            Err(_) => v1_error(401, 32, "Could not authenticate you."),
        },
        Ep::Authorize => {
            let params = parse_form(req.query);
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let Some(token) = get("oauth_token") else {
                return text(
                    400,
                    "text/html; charset=utf-8",
                    page("Missing oauth_token.", None),
                );
            };
            match sim
                .auth
                .authorize(&sim.world, token, get("screen_name"), now)
            {
                Some((pin, user)) => {
                    let name = sim.world.user(user).username_at(now).to_string();
                    text(200, "text/html; charset=utf-8", page(&name, Some(&pin)))
                }
                None => text(
                    401,
                    "text/html; charset=utf-8",
                    page(
                        "This page is no longer valid. The request token is unknown or used.",
                        None,
                    ),
                ),
            }
        }
        Ep::AccessToken => match sim.auth.access_token(&sim.world, req, now) {
            Ok(form) => text(200, FORM, form),
            Err(_) => v1_error(401, 32, "Could not authenticate you."),
        },
        _ => unreachable!("only OAuth endpoints come here"),
    }
}

/// The authorize page: the account and the PIN, which the user copies into the app.
fn page(account_or_message: &str, pin: Option<&str>) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    match pin {
        Some(pin) => format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
             <title>Authorize app</title></head>\
             <body><h1>You've granted access to the app</h1>\
             <p>Account: @<span id=\"screen_name\">{}</span></p>\
             <p>Next, return to the app and enter this PIN to complete the authorization \
             process:</p><kbd aria-labelledby=\"code-desc\">\
             <code id=\"oauth_pin\">{pin}</code></kbd></body></html>\n",
            escape(account_or_message)
        ),
        None => format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Error</title></head>\
             <body><p>{}</p></body></html>\n",
            escape(account_or_message)
        ),
    }
}
