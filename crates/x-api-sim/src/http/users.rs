//! User endpoints: lookups by id and username, `/2/users/me`, followers and following.

use super::{Call, PAGING, Reply, USER_PARAMS};
use crate::errors::{self, ApiError, ParamError};
use crate::fields::Primary;
use crate::render::{Access, Body, Ctx, Includes, users_body};
use crate::tokens::Family;
use serde_json::{Value, json};

/// Splits a required comma-separated list parameter of 1–100 values.
pub fn list_param<'a>(c: &'a Call, name: &str) -> Result<Vec<&'a str>, ApiError> {
    let raw = c
        .param(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ParamError::missing(name))?;
    let values: Vec<&str> = raw.split(',').collect();
    if values.len() > 100 {
        let msg = format!(
            "The number of values in the `{name}` query parameter list [{}] is not between 1 \
             and 100",
            values.len()
        );
        return Err(ParamError::new(name, raw, msg).into());
    }
    Ok(values)
}

fn check_usernames(name: &str, values: &[&str]) -> Result<(), ApiError> {
    let bad: Vec<ParamError> = values
        .iter()
        .filter(|v| !crate::ids::valid_username(v))
        .map(|v| ParamError::pattern(name, v, "^[A-Za-z0-9_]{1,15}$"))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(bad))
    }
}

fn check_ids(name: &str, values: &[&str]) -> Result<Vec<u64>, ApiError> {
    let mut ids = Vec::with_capacity(values.len());
    let mut bad = Vec::new();
    for v in values {
        match crate::ids::parse_id(v) {
            Some(id) => ids.push(id),
            None => bad.push(ParamError::pattern(name, v, "^[0-9]{1,19}$")),
        }
    }
    if bad.is_empty() {
        Ok(ids)
    } else {
        Err(ApiError::Invalid(bad))
    }
}

/// Classifies an account for a lookup: its index, or the partial error to report.
fn lookup(ctx: &Ctx, u: Option<u32>, parameter: &str, value: &str) -> Result<u32, Value> {
    match u.map(|u| (u, ctx.user_access(u))) {
        Some((u, Access::Visible | Access::NotAuthorized)) => Ok(u),
        Some((_, Access::Suspended)) => Err(errors::suspended(parameter, value)),
        _ => Err(errors::not_found("user", parameter, value)),
    }
}

pub fn by_ids(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[&["ids"], USER_PARAMS])?;
    let sel = c.selection(Primary::User)?;
    let ids = check_ids("ids", &list_param(c, "ids")?)?;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);

    let (mut data, mut errs) = (Vec::new(), Vec::new());
    for id in ids {
        match lookup(&ctx, c.sim.world.user_by_id(id), "ids", &id.to_string()) {
            Ok(u) if !data.contains(&u) => data.push(u),
            Ok(_) => {}
            Err(e) => errs.push(e),
        }
    }
    Ok(Reply::ok(users_body(&ctx, &data, errs, None)))
}

pub fn by_usernames(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[&["usernames"], USER_PARAMS])?;
    let sel = c.selection(Primary::User)?;
    let names = list_param(c, "usernames")?;
    check_usernames("usernames", &names)?;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);

    let (mut data, mut errs) = (Vec::new(), Vec::new());
    for name in names {
        match lookup(
            &ctx,
            c.sim.world.user_by_name(name, c.now),
            "usernames",
            name,
        ) {
            Ok(u) if !data.contains(&u) => data.push(u),
            Ok(_) => {}
            Err(e) => errs.push(e),
        }
    }
    Ok(Reply::ok(users_body(&ctx, &data, errs, None)))
}

/// A single-account response: `data` as an object, or only `errors`.
fn single(ctx: &Ctx, found: Result<u32, Value>) -> Reply {
    let mut inc = Includes::default();
    let (data, mut errs) = match found {
        Ok(u) => {
            inc.expand_users(ctx, &[u]);
            (Some(ctx.user(u)), Vec::new())
        }
        Err(e) => (None, vec![e]),
    };
    errs.append(&mut inc.errors);
    let body = Body {
        data,
        includes: Some(inc.out(ctx)),
        errors: &errs,
        meta: None,
    };
    Reply::ok(serde_json::to_vec(&body).unwrap_or_default())
}

pub fn by_id(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[USER_PARAMS])?;
    let sel = c.selection(Primary::User)?;
    let id = c.path_id(0, "id")?;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    Ok(single(
        &ctx,
        lookup(&ctx, c.sim.world.user_by_id(id), "id", &id.to_string()),
    ))
}

pub fn by_username(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[USER_PARAMS])?;
    let sel = c.selection(Primary::User)?;
    let name = &c.args[0];
    check_usernames("username", &[name])?;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    Ok(single(
        &ctx,
        lookup(
            &ctx,
            c.sim.world.user_by_name(name, c.now),
            "username",
            name,
        ),
    ))
}

pub fn me(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[USER_PARAMS])?;
    let sel = c.selection(Primary::User)?;
    let me = c.reader().ok_or(ApiError::Forbidden)?;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    Ok(single(&ctx, Ok(me)))
}

/// Resolves the account a collection endpoint is about, or the 200-with-errors reply.
pub fn subject(ctx: &Ctx, id: u64, need_content: bool) -> Result<u32, Reply> {
    let value = id.to_string();
    let fail = |e: Value| Reply::value(200, &json!({ "errors": [e] }));
    let u = lookup(ctx, ctx.world.user_by_id(id), "id", &value).map_err(fail)?;
    if need_content && ctx.content_access(u) == Access::NotAuthorized {
        return Err(fail(errors::not_authorized("user", "id", &value)));
    }
    Ok(u)
}

/// GET /2/users/:id/followers and /following.
pub fn follows(c: &Call, followers: bool) -> Result<Reply, ApiError> {
    c.check_params(&[USER_PARAMS, PAGING])?;
    let sel = c.selection(Primary::User)?;
    let id = c.path_id(0, "id")?;
    let max = c.int_param("max_results", 1, 1000, 100)? as usize;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    let u = match subject(&ctx, id, true) {
        Ok(u) => u,
        Err(reply) => return Ok(reply),
    };

    let w = &c.sim.world;
    let edges = if followers {
        &w.followers[u as usize]
    } else {
        &w.following[u as usize]
    };
    let token_subject = u64::from(u) * 2 + u64::from(followers);
    let start = match c.param("pagination_token") {
        None => 0,
        Some(t) => {
            c.sim
                .tokens
                .parse_base32(Family::Follows, token_subject, t)
                .ok_or_else(|| ParamError::bad_token("pagination_token", t))? as usize
        }
    };

    // Edges that exist now and whose accounts are not gone.
    let shown = |i: usize| {
        let e = edges[i];
        e.since_ms() <= c.now
            && matches!(
                ctx.user_access(e.user),
                Access::Visible | Access::NotAuthorized
            )
    };
    let mut data = Vec::with_capacity(max.min(edges.len()));
    let mut i = start.min(edges.len());
    while i < edges.len() && data.len() < max {
        if shown(i) {
            data.push(edges[i].user);
        }
        i += 1;
    }
    let more = (i..edges.len()).any(shown);

    let mut meta = json!({ "result_count": data.len() });
    if more {
        meta["next_token"] = json!(
            c.sim
                .tokens
                .base32(Family::Follows, token_subject, i as u32)
        );
    }
    if start > 0 {
        let mut p = start;
        let mut n = 0;
        while p > 0 && n < max {
            p -= 1;
            if shown(p) {
                n += 1;
            }
        }
        meta["previous_token"] = json!(c.sim.tokens.base32(
            Family::Follows,
            token_subject,
            p as u32
        ));
    }
    Ok(Reply::ok(users_body(&ctx, &data, Vec::new(), Some(meta))))
}
