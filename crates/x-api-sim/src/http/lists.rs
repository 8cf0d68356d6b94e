//! List endpoints: lookups, members, followers, posts, and the user-context writes.
//!
//! Collections page with short decimal tokens over positions in the newest-first order. List
//! posts merge the timelines of the current members and reach only the newest 800.

use super::tweets::{SCAN_BUDGET, push_below};
use super::users::subject;
use super::{Call, LIST_PARAMS, PAGING, Reply, TWEET_PARAMS, USER_PARAMS};
use crate::errors::{self, ApiError, ParamError};
use crate::fields::Primary;
use crate::render::{Access, Body, Includes, lists_body, tweets_body, users_body};
use crate::tokens::Family;
use crate::world::lists::{ListRec, ListWriteError};
use serde_json::{Value, json};
use std::collections::BinaryHeap;

/// Pages a newest-first collection with List-collection tokens.
fn page<T: Copy>(
    c: &Call,
    items: &[T],
    subject: u64,
    max: usize,
) -> Result<(Vec<T>, Value), ApiError> {
    let start = match c.param("pagination_token") {
        None => 0,
        Some(t) => {
            c.sim
                .tokens
                .parse_short(Family::ListCollection, subject, t)
                .ok_or_else(|| ParamError::bad_token("pagination_token", t))? as usize
        }
    };
    let start = start.min(items.len());
    let end = (start + max).min(items.len());
    let data = items[start..end].to_vec();
    let mut meta = json!({ "result_count": data.len() });
    if end < items.len() {
        meta["next_token"] = json!(
            c.sim
                .tokens
                .short(Family::ListCollection, subject, end as u32)
        );
    }
    if start > 0 {
        let prev = start.saturating_sub(max) as u32;
        meta["previous_token"] = json!(c.sim.tokens.short(Family::ListCollection, subject, prev));
    }
    Ok((data, meta))
}

fn user_lists(c: &Call, which: u64) -> Result<Reply, ApiError> {
    c.check_params(&[LIST_PARAMS, PAGING])?;
    let sel = c.selection(Primary::List)?;
    let id = c.path_id(0, "id")?;
    let max = c.int_param("max_results", 1, 100, 100)? as usize;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    let u = match subject(&ctx, id, false) {
        Ok(u) => u,
        Err(reply) => return Ok(reply),
    };

    let all: Vec<&ListRec> = match which {
        0 => lists.owned_by(u, c.now),
        1 => lists.followed_by(u, c.now),
        _ => lists.memberships_of(u, c.now),
    };
    let visible: Vec<&ListRec> = all
        .into_iter()
        .filter(|l| l.visible_to(c.reader()))
        .collect();
    let (data, meta) = page(c, &visible, u64::from(u) * 4 + which, max)?;
    Ok(Reply::ok(lists_body(&ctx, &data, Some(meta))))
}

pub fn owned(c: &Call) -> Result<Reply, ApiError> {
    user_lists(c, 0)
}

pub fn followed(c: &Call) -> Result<Reply, ApiError> {
    user_lists(c, 1)
}

pub fn memberships(c: &Call) -> Result<Reply, ApiError> {
    user_lists(c, 2)
}

/// A List the reader may see, or the 200-with-errors reply.
fn find<'a>(
    c: &Call,
    lists: &'a crate::world::lists::ListStore,
    id: u64,
) -> Result<&'a ListRec, Reply> {
    match lists.get(id) {
        Some(l) if l.exists_at(c.now) && l.visible_to(c.reader()) => Ok(l),
        _ => Err(Reply::value(
            200,
            &json!({"errors": [errors::not_found("list", "id", &id.to_string())]}),
        )),
    }
}

pub fn by_id(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[LIST_PARAMS])?;
    let sel = c.selection(Primary::List)?;
    let id = c.path_id(0, "id")?;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    let l = match find(c, &lists, id) {
        Ok(l) => l,
        Err(reply) => return Ok(reply),
    };
    let mut inc = Includes::default();
    inc.expand_lists(&ctx, &[l]);
    let errs = std::mem::take(&mut inc.errors);
    let body = Body {
        data: Some(ctx.list(l)),
        includes: Some(inc.out(&ctx)),
        errors: &errs,
        meta: None,
    };
    Ok(Reply::ok(serde_json::to_vec(&body).unwrap_or_default()))
}

/// GET /2/lists/:id/members and /followers.
pub fn members(c: &Call, members: bool) -> Result<Reply, ApiError> {
    c.check_params(&[USER_PARAMS, PAGING])?;
    let sel = c.selection(Primary::User)?;
    let id = c.path_id(0, "id")?;
    let max = c.int_param("max_results", 1, 100, 100)? as usize;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    let l = match find(c, &lists, id) {
        Ok(l) => l,
        Err(reply) => return Ok(reply),
    };
    let w = &c.sim.world;
    let users: Vec<u32> = if members {
        l.members_at(w, c.now).collect()
    } else {
        l.followers_at(w, c.now).collect()
    };
    let (data, meta) = page(c, &users, l.id ^ u64::from(members), max)?;
    Ok(Reply::ok(users_body(&ctx, &data, Vec::new(), Some(meta))))
}

/// GET /2/lists/:id/tweets: the newest 800 posts of the current members.
pub fn tweets(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[TWEET_PARAMS, PAGING])?;
    let sel = c.selection(Primary::Tweet)?;
    let id = c.path_id(0, "id")?;
    let max = c.int_param("max_results", 1, 100, 100)? as usize;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    let l = match find(c, &lists, id) {
        Ok(l) => l,
        Err(reply) => return Ok(reply),
    };
    let w = &c.sim.world;

    let mut upper = crate::ids::snowflake(c.now + 1, 0);
    let mut rank = 0;
    if let Some(t) = c.param("pagination_token") {
        let (pos, r) = c
            .sim
            .tokens
            .parse_long(Family::ListTweets, l.id, t)
            .ok_or_else(|| ParamError::bad_token("pagination_token", t))?;
        upper = pos;
        rank = r;
    }
    let mut heap = BinaryHeap::new();
    for m in l.members_at(w, c.now) {
        push_below(w, &mut heap, m, upper, c.now);
    }
    let mut data = Vec::new();
    let mut next = None;
    let mut examined = 0;
    while rank < 800 {
        let Some((tid, v, k)) = heap.pop() else { break };
        examined += 1;
        if ctx.tweet_access(v, k, None) == Access::Visible {
            rank += 1;
            data.push(w.tweet(v, k));
        }
        if k > 0 {
            heap.push((w.tweet_id(v, k - 1), v, k - 1));
        }
        if data.len() >= max || examined >= SCAN_BUDGET {
            if rank < 800 && !heap.is_empty() {
                next = Some(c.sim.tokens.long(Family::ListTweets, l.id, tid, rank));
            }
            break;
        }
    }
    let mut meta = json!({ "result_count": data.len() });
    if let Some(n) = next {
        meta["next_token"] = json!(n);
    }
    Ok(Reply::ok(tweets_body(&ctx, &data, Vec::new(), Some(meta))))
}

/// A 404 for a write whose target does not exist.
fn missing(detail: String) -> ApiError {
    let kind = format!("{}resource-not-found", errors::PROBLEM_BASE);
    ApiError::Other(
        404,
        json!({"title": "Not Found Error", "detail": detail, "type": kind}),
    )
}

/// A 403 for a write the account may not make.
fn refused(detail: &str) -> ApiError {
    ApiError::Other(
        403,
        json!({"title": "Forbidden", "detail": detail, "type": "about:blank", "status": 403}),
    )
}

fn write_error(e: ListWriteError) -> ApiError {
    match e {
        ListWriteError::NotFound => missing("Could not find the List.".into()),
        ListWriteError::NotOwner => refused("You are not allowed to modify this List."),
        ListWriteError::TooManyMembers => {
            refused("This List has reached its limit of 5000 members.")
        }
        ListWriteError::TooManyLists => refused("You have reached the limit of 1000 owned Lists."),
    }
}

fn actor(c: &Call) -> Result<u32, ApiError> {
    c.reader().ok_or(ApiError::Forbidden)
}

fn body_str<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::InvalidMessage(format!(
            "$.{key}: expected a string"
        ))),
    }
}

fn body_bool(body: &Value, key: &str) -> Result<Option<bool>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::InvalidMessage(format!(
            "$.{key}: expected a boolean"
        ))),
    }
}

fn check_name_description(name: Option<&str>, description: Option<&str>) -> Result<(), ApiError> {
    if let Some(n) = name {
        let len = n.chars().count();
        if !(1..=25).contains(&len) {
            return Err(ApiError::InvalidMessage(format!(
                "$.name: length {len} is not between 1 and 25"
            )));
        }
    }
    if let Some(d) = description {
        let len = d.chars().count();
        if len > 100 {
            return Err(ApiError::InvalidMessage(format!(
                "$.description: length {len} is over 100"
            )));
        }
    }
    Ok(())
}

fn write_lock<'a>(c: &Call<'a>) -> std::sync::RwLockWriteGuard<'a, crate::world::lists::ListStore> {
    c.sim.lists.write().unwrap_or_else(|e| e.into_inner())
}

pub fn create(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[])?;
    let me = actor(c)?;
    let body = c.json_body()?;
    let name = body_str(&body, "name")?
        .ok_or_else(|| ApiError::InvalidMessage("$.name: is missing but it is required".into()))?;
    let description = body_str(&body, "description")?;
    check_name_description(Some(name), description)?;
    let private = body_bool(&body, "private")?.unwrap_or(false);
    let id = write_lock(c)
        .create(me, name, description.unwrap_or(""), private, c.now)
        .map_err(write_error)?;
    Ok(Reply::value(
        200,
        &json!({"data": {"id": id.to_string(), "name": name}}),
    ))
}

pub fn update(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[])?;
    let me = actor(c)?;
    let id = c.path_id(0, "id")?;
    let body = c.json_body()?;
    let name = body_str(&body, "name")?;
    let description = body_str(&body, "description")?;
    check_name_description(name, description)?;
    let private = body_bool(&body, "private")?;
    write_lock(c)
        .update(id, me, c.now, name, description, private)
        .map_err(write_error)?;
    Ok(Reply::value(200, &json!({"data": {"updated": true}})))
}

pub fn delete(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[])?;
    let me = actor(c)?;
    let id = c.path_id(0, "id")?;
    write_lock(c).delete(id, me, c.now).map_err(write_error)?;
    Ok(Reply::value(200, &json!({"data": {"deleted": true}})))
}

/// An account id from a JSON body field, which must exist and be active.
fn body_user(c: &Call, body: &Value, key: &str) -> Result<u32, ApiError> {
    let raw = body_str(body, key)?.ok_or_else(|| {
        ApiError::InvalidMessage(format!("$.{key}: is missing but it is required"))
    })?;
    let id = crate::ids::parse_id(raw).ok_or_else(|| {
        ApiError::InvalidMessage(format!("$.{key}: does not match ^[0-9]{{1,19}}$"))
    })?;
    let w = &c.sim.world;
    match w.user_by_id(id) {
        Some(u) if w.user(u).exists_at(c.now) => Ok(u),
        _ => Err(missing(format!("Could not find user with {key}: [{raw}]."))),
    }
}

pub fn add_member(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[])?;
    let me = actor(c)?;
    let id = c.path_id(0, "id")?;
    let body = c.json_body()?;
    let user = body_user(c, &body, "user_id")?;
    write_lock(c)
        .add_member(id, me, user, c.now)
        .map_err(write_error)?;
    Ok(Reply::value(200, &json!({"data": {"is_member": true}})))
}

pub fn remove_member(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[])?;
    let me = actor(c)?;
    let id = c.path_id(0, "id")?;
    let uid = c.path_id(1, "user_id")?;
    let user = c
        .sim
        .world
        .user_by_id(uid)
        .ok_or_else(|| missing(format!("Could not find user with user_id: [{uid}].")))?;
    write_lock(c)
        .remove_member(id, me, user, c.now)
        .map_err(write_error)?;
    Ok(Reply::value(200, &json!({"data": {"is_member": false}})))
}

/// The `:id` of follow writes must be the authenticated account.
fn check_self(c: &Call) -> Result<u32, ApiError> {
    let me = actor(c)?;
    let id = c.path_id(0, "id")?;
    if c.sim.world.user(me).id != id {
        return Err(refused("You are not permitted to perform this action."));
    }
    Ok(me)
}

pub fn follow(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[])?;
    let me = check_self(c)?;
    let body = c.json_body()?;
    let raw = body_str(&body, "list_id")?.ok_or_else(|| {
        ApiError::InvalidMessage("$.list_id: is missing but it is required".into())
    })?;
    let list = crate::ids::parse_id(raw).ok_or_else(|| {
        ApiError::InvalidMessage("$.list_id: does not match ^[0-9]{1,19}$".into())
    })?;
    write_lock(c).follow(list, me, c.now).map_err(write_error)?;
    Ok(Reply::value(200, &json!({"data": {"following": true}})))
}

pub fn unfollow(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[])?;
    let me = check_self(c)?;
    let list = c.path_id(1, "list_id")?;
    write_lock(c)
        .unfollow(list, me, c.now)
        .map_err(write_error)?;
    Ok(Reply::value(200, &json!({"data": {"following": false}})))
}
