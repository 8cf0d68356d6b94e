//! Error bodies in the shapes X returns.
//!
//! Clients branch on these shapes (status, `title`, the `type` suffix, `errors[].parameters`),
//! so each is reproduced from observed responses: RFC 7807 problems for request-level
//! failures, and per-resource problem entries inside 200 responses for partial errors.

use serde_json::{Value, json};

pub const PROBLEM_BASE: &str = "https://api.twitter.com/2/problems/";

/// One invalid query parameter.
#[derive(Clone, Debug)]
pub struct ParamError {
    pub param: String,
    pub value: String,
    pub message: String,
}

impl ParamError {
    pub fn new(param: &str, value: &str, message: impl Into<String>) -> Self {
        ParamError {
            param: param.to_string(),
            value: value.to_string(),
            message: message.into(),
        }
    }

    /// "The `max_results` query parameter value [0] is not between 5 and 100".
    pub fn range(param: &str, value: &str, lo: u64, hi: u64) -> Self {
        let msg =
            format!("The `{param}` query parameter value [{value}] is not between {lo} and {hi}");
        ParamError::new(param, value, msg)
    }

    pub fn pattern(param: &str, value: &str, pattern: &str) -> Self {
        let msg = format!("The `{param}` query parameter value [{value}] does not match {pattern}");
        ParamError::new(param, value, msg)
    }

    pub fn missing(param: &str) -> Self {
        let msg = format!("The `{param}` query parameter can not be empty");
        ParamError::new(param, "", msg)
    }

    pub fn bad_token(param: &str, value: &str) -> Self {
        let msg = format!("The `{param}` query parameter value [{value}] is not a valid token");
        ParamError::new(param, value, msg)
    }
}

/// A request-level failure.
#[derive(Clone, Debug)]
pub enum ApiError {
    /// 400 invalid-request with per-parameter errors.
    Invalid(Vec<ParamError>),
    /// 400 invalid-request for a problem not tied to one parameter (bodies, combinations).
    InvalidMessage(String),
    Unauthorized,
    Forbidden,
    /// The endpoint does not accept the kind of authentication used.
    UnsupportedAuth {
        used_app_only: bool,
    },
    /// The access tier does not include the endpoint.
    ClientForbidden {
        client_id: String,
    },
    TooManyRequests,
    TooManyConnections,
    /// Unknown path.
    NoRoute,
    /// Any other status and body.
    Other(u16, Value),
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError::Invalid(vec![e])
    }
}

impl From<Vec<ParamError>> for ApiError {
    fn from(e: Vec<ParamError>) -> Self {
        ApiError::Invalid(e)
    }
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Invalid(_) | ApiError::InvalidMessage(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden
            | ApiError::UnsupportedAuth { .. }
            | ApiError::ClientForbidden { .. } => 403,
            ApiError::TooManyRequests | ApiError::TooManyConnections => 429,
            ApiError::NoRoute => 404,
            ApiError::Other(s, _) => *s,
        }
    }

    pub fn body(&self) -> Value {
        match self {
            ApiError::Invalid(errs) => invalid_request(
                errs.iter()
                    .map(|e| {
                        let mut params = serde_json::Map::new();
                        params.insert(e.param.clone(), json!([e.value]));
                        json!({"parameters": params, "message": e.message})
                    })
                    .collect(),
            ),
            ApiError::InvalidMessage(m) => {
                invalid_request(vec![json!({"parameters": {}, "message": m})])
            }
            ApiError::Unauthorized => blank(401, "Unauthorized"),
            ApiError::Forbidden => blank(403, "Forbidden"),
            ApiError::UnsupportedAuth { used_app_only } => {
                let detail = if *used_app_only {
                    "Authenticating with OAuth 2.0 Application-Only is forbidden for this \
                     endpoint.  Supported authentication types are [OAuth 1.0a User Context, \
                     OAuth 2.0 User Context]."
                } else {
                    "Authenticating with OAuth 1.0a User Context is forbidden for this \
                     endpoint.  Supported authentication types are [OAuth 2.0 \
                     Application-Only]."
                };
                json!({
                    "title": "Unsupported Authentication",
                    "detail": detail,
                    "type": format!("{PROBLEM_BASE}unsupported-authentication"),
                    "status": 403
                })
            }
            ApiError::ClientForbidden { client_id } => json!({
                "client_id": client_id,
                "detail": "When authenticating requests to the Twitter API v2 endpoints, you \
                           must use keys and tokens from a Twitter developer App that is \
                           attached to a Project. You can create a project via the developer \
                           portal.",
                "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
                "title": "Client Forbidden",
                "required_enrollment": "Appropriate Level of API Access",
                "reason": "client-not-enrolled",
                "type": format!("{PROBLEM_BASE}client-forbidden"),
            }),
            ApiError::TooManyRequests => blank(429, "Too Many Requests"),
            ApiError::TooManyConnections => json!({
                "title": "ConnectionException",
                "detail": "This stream is currently at the maximum allowed connection limit.",
                "connection_issue": "TooManyConnections",
                "type": format!("{PROBLEM_BASE}streaming-connection"),
            }),
            ApiError::NoRoute => {
                json!({"errors": [{"message": "Sorry, that page does not exist", "code": 34}]})
            }
            ApiError::Other(_, v) => v.clone(),
        }
    }
}

fn invalid_request(errors: Vec<Value>) -> Value {
    json!({
        "errors": errors,
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": format!("{PROBLEM_BASE}invalid-request"),
    })
}

/// A generic problem whose meaning is the HTTP status.
pub fn blank(status: u16, title: &str) -> Value {
    json!({"title": title, "type": "about:blank", "status": status, "detail": title})
}

/// "Could not find user with ids: [N]." and its relatives.
pub fn not_found(resource_type: &str, parameter: &str, value: &str) -> Value {
    json!({
        "value": value,
        "detail": format!("Could not find {resource_type} with {parameter}: [{value}]."),
        "title": "Not Found Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": value,
        "type": format!("{PROBLEM_BASE}resource-not-found"),
    })
}

/// A suspended account, reported (sic) with the resource-not-found type.
pub fn suspended(parameter: &str, value: &str) -> Value {
    json!({
        "value": value,
        "detail": format!("User has been suspended: [{value}]."),
        "title": "Forbidden",
        "resource_type": "user",
        "parameter": parameter,
        "resource_id": value,
        "type": format!("{PROBLEM_BASE}resource-not-found"),
    })
}

/// A protected account's content, or a protected author's post.
pub fn not_authorized(resource_type: &str, parameter: &str, value: &str) -> Value {
    let what = if resource_type == "tweet" {
        "the Tweet"
    } else {
        "the user"
    };
    json!({
        "value": value,
        "detail":
            format!("Sorry, you are not authorized to see {what} with {parameter}: [{value}]."),
        "title": "Authorization Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": value,
        "section": "data",
        "type": format!("{PROBLEM_BASE}not-authorized-for-resource"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_request_matches_the_observed_body() {
        let e = ApiError::from(ParamError::range("max_results", "0", 5, 100));
        assert_eq!(e.status(), 400);
        let expected: Value = serde_json::from_str(concat!(
            r#"{"errors":[{"parameters":{"max_results":["0"]},"message":"The `max_results` "#,
            r#"query parameter value [0] is not between 5 and 100"}],"title":"Invalid "#,
            r#"Request","detail":"One or more parameters to your request was invalid.","#,
            r#""type":"https://api.twitter.com/2/problems/invalid-request"}"#
        ))
        .unwrap();
        assert_eq!(e.body(), expected);
    }

    #[test]
    fn partial_error_entries() {
        let v = not_found("user", "ids", "111");
        assert_eq!(v["detail"], "Could not find user with ids: [111].");
        let v = not_authorized("user", "id", "5");
        assert_eq!(
            v["detail"],
            "Sorry, you are not authorized to see the user with id: [5]."
        );
        assert_eq!(
            suspended("usernames", "bob")["detail"],
            "User has been suspended: [bob]."
        );
    }
}
