//! Filtered-stream rules: GET and POST /2/tweets/search/stream/rules.
//!
//! Adds are validated as a batch: if any rule is malformed, nothing is created and the reply
//! is a 400 listing the invalid ones. Duplicates of existing rules (or of earlier rules in the
//! same request) are reported with the existing rule's id and not created, while the others
//! are; a request that created rules answers 201. Caps follow the tier: 1,000 rules of at most
//! 1,024 characters (Pro, pay-per-use), 25,000 of at most 2,048 (Enterprise).

use super::{Call, Reply};
use crate::errors::{ApiError, PROBLEM_BASE, ParamError};
use crate::ids::snowflake;
use crate::query;
use crate::stream::StoredRule;
use crate::tokens::Family;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn sent(c: &Call) -> String {
    crate::clock::format_time(c.now)
}

pub fn get(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[&["ids", "max_results", "pagination_token"]])?;
    let max = c.int_param("max_results", 1, 1000, 1000)? as usize;
    let ids: Option<Vec<u64>> = match c.param("ids") {
        None => None,
        Some(v) => Some(
            v.split(',')
                .map(|s| {
                    crate::ids::parse_id(s)
                        .ok_or_else(|| ParamError::pattern("ids", s, "^[0-9]{1,19}$"))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let start = match c.param("pagination_token") {
        None => 0,
        Some(t) => {
            c.sim
                .tokens
                .parse_base32(Family::Rules, 0, t)
                .ok_or_else(|| ParamError::bad_token("pagination_token", t))? as usize
        }
    };

    let rules = c.sim.stream.rules.lock().unwrap_or_else(|e| e.into_inner());
    let selected: Vec<&StoredRule> = rules
        .iter()
        .filter(|r| ids.as_ref().is_none_or(|ids| ids.contains(&r.id)))
        .collect();
    let end = (start + max).min(selected.len());
    let page: Vec<Value> = selected[start.min(end)..end]
        .iter()
        .map(|r| rule_json(r))
        .collect();
    let mut meta = json!({"sent": sent(c), "result_count": page.len()});
    if end < selected.len() {
        meta["next_token"] = json!(c.sim.tokens.base32(Family::Rules, 0, end as u32));
    }
    let body = if page.is_empty() {
        json!({"meta": meta})
    } else {
        json!({"data": page, "meta": meta})
    };
    Ok(Reply::value(200, &body))
}

fn rule_json(r: &StoredRule) -> Value {
    let mut v = json!({"id": r.id.to_string(), "value": r.value});
    if let Some(t) = &r.tag {
        v["tag"] = json!(t);
    }
    v
}

fn flag(c: &Call, name: &str) -> Result<bool, ApiError> {
    match c.param(name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => {
            let msg =
                format!("The `{name}` query parameter value [{v}] is not one of [true,false]");
            Err(ParamError::new(name, v, msg).into())
        }
    }
}

pub fn post(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[&["dry_run", "delete_all"]])?;
    let dry_run = flag(c, "dry_run")?;
    if flag(c, "delete_all")? {
        let mut rules = c.sim.stream.rules.lock().unwrap_or_else(|e| e.into_inner());
        let n = rules.len();
        if !dry_run {
            rules.clear();
        }
        let meta = json!({"sent": sent(c), "summary": {"deleted": n, "not_deleted": 0}});
        return Ok(Reply::value(200, &json!({"meta": meta})));
    }
    let body = c.json_body()?;
    match (body.get("add"), body.get("delete")) {
        (Some(add), None) => add_rules(c, add, dry_run),
        (None, Some(del)) => delete_rules(c, del, dry_run),
        _ => Err(ApiError::InvalidMessage(
            "Request body must contain exactly one of `add` or `delete`".into(),
        )),
    }
}

fn add_rules(c: &Call, add: &Value, dry_run: bool) -> Result<Reply, ApiError> {
    let items = add
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::InvalidMessage("$.add: expected a non-empty array".into()))?;
    let (max_rules, max_len) = c.sim.tier.rule_caps().expect("tier offers the stream");

    let mut parsed = Vec::new();
    let mut invalid = Vec::new();
    for item in items {
        let value = item.get("value").and_then(Value::as_str).ok_or_else(|| {
            ApiError::InvalidMessage("$.add[*].value: is missing but it is required".into())
        })?;
        let tag = item.get("tag").and_then(Value::as_str).map(str::to_string);
        match query::parse(value, max_len) {
            Ok(q) => parsed.push((value.to_string(), tag, q)),
            Err(e) => invalid.push(json!({
                "value": value,
                "details": [e.to_string()],
                "title": "UnprocessableEntity",
                "type": format!("{PROBLEM_BASE}invalid-rules"),
            })),
        }
    }
    if !invalid.is_empty() {
        let summary = json!({
            "created": 0,
            "not_created": items.len(),
            "valid": parsed.len(),
            "invalid": invalid.len(),
        });
        let meta = json!({"sent": sent(c), "summary": summary});
        return Ok(Reply::value(400, &json!({"meta": meta, "errors": invalid})));
    }

    let mut rules = c.sim.stream.rules.lock().unwrap_or_else(|e| e.into_inner());
    let mut created = Vec::new();
    let mut errors = Vec::new();
    let mut pending: Vec<StoredRule> = Vec::new();
    for (value, tag, q) in parsed {
        let existing = rules
            .iter()
            .chain(pending.iter())
            .find(|r| r.value == value);
        if let Some(r) = existing {
            errors.push(json!({
                "value": value,
                "id": r.id.to_string(),
                "title": "DuplicateRule",
                "type": format!("{PROBLEM_BASE}duplicate-rules"),
            }));
            continue;
        }
        if rules.len() + pending.len() >= max_rules {
            errors.push(json!({
                "value": value,
                "title": "RuleCapEnforcement",
                "detail": format!("Rule cap of {max_rules} rules reached for this stream."),
                "type": format!("{PROBLEM_BASE}rule-cap"),
            }));
            continue;
        }
        let seq = c.sim.stream.rule_seq.fetch_add(1, Ordering::Relaxed);
        let id = snowflake(c.now, (seq & u64::from(crate::ids::MAX_INDEX)) as u32);
        pending.push(StoredRule {
            id,
            value,
            tag,
            query: Arc::new(q),
        });
    }
    for r in &pending {
        created.push(rule_json(r));
    }
    let n_created = if dry_run { 0 } else { pending.len() };
    if !dry_run {
        rules.extend(pending);
    }

    let meta = json!({"sent": sent(c), "summary": {
        "created": n_created,
        "not_created": items.len() - n_created,
        "valid": items.len() - errors.len(),
        "invalid": errors.len(),
    }});
    let mut body = json!({"meta": meta});
    if !created.is_empty() {
        body["data"] = json!(created);
    }
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    Ok(Reply::value(if n_created > 0 { 201 } else { 200 }, &body))
}

fn delete_rules(c: &Call, del: &Value, dry_run: bool) -> Result<Reply, ApiError> {
    let strings = |key: &str| -> Option<Vec<String>> {
        del.get(key)?.as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
    };
    let (by_id, wanted) = match (strings("ids"), strings("values")) {
        (Some(ids), None) => (true, ids),
        (None, Some(values)) => (false, values),
        _ => {
            return Err(ApiError::InvalidMessage(
                "$.delete: expected exactly one of `ids` or `values`".into(),
            ));
        }
    };

    let mut rules = c.sim.stream.rules.lock().unwrap_or_else(|e| e.into_inner());
    let mut deleted = 0;
    let mut errors = Vec::new();
    for w in &wanted {
        let pos = rules.iter().position(|r| {
            if by_id {
                r.id.to_string() == *w
            } else {
                r.value == *w
            }
        });
        match pos {
            Some(i) => {
                if !dry_run {
                    rules.remove(i);
                }
                deleted += 1;
            }
            None => errors.push(json!({
                "value": w,
                "title": "Not Found Error",
                "detail": "Rule does not exist",
                "type": format!("{PROBLEM_BASE}resource-not-found"),
            })),
        }
    }
    let summary = json!({"deleted": deleted, "not_deleted": wanted.len() - deleted});
    let meta = json!({"sent": sent(c), "summary": summary});
    let mut body = json!({"meta": meta});
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    Ok(Reply::value(200, &body))
}
