//! The ground truth: everything the world holds at a simulated time, as JSON lines.
//!
//! Recorder tests compare what netwar captured with this. Each line is one object with a
//! `kind`: `user` (profile as of now, status, and the history of every profile and status
//! change up to now), `tweet` (the post as the API returns it with every field, for all posts
//! published up to now, including those of protected, suspended and deleted accounts),
//! `tweet_deletion` (a post its author deleted, and when), `list` (every list field),
//! `membership` (List membership intervals), `list_follow` (List follow intervals) and
//! `follow` (account follows, with the time they began). Order is deterministic: users,
//! then posts by author and index, deletions, Lists, memberships, List follows, follows.

use crate::clock::format_time;
use crate::fields::Selection;
use crate::render::Ctx;
use crate::world::lists::{Interval, ListStore};
use crate::world::{Status, World, version_at};
use serde_json::{Value, json};
use std::io::{self, Write};

/// Writes the ground truth as of `now` (simulated Unix milliseconds).
/// Writes only the user records of the ground truth: what profile checks need, without the
/// millions of tweets a large world holds after a long simulated time.
pub fn write_users(world: &World, now: i64, out: &mut dyn Write) -> io::Result<()> {
    for u in &world.users {
        if u.created_ms <= now {
            line(out, &user_record(world, u.index, now))?;
        }
    }
    Ok(())
}

pub fn write(world: &World, lists: &ListStore, now: i64, out: &mut dyn Write) -> io::Result<()> {
    let ctx = Ctx {
        world,
        lists,
        now,
        reader: None,
        sel: Selection::everything(),
    };

    for u in &world.users {
        if u.created_ms > now {
            continue;
        }
        line(out, &user_record(world, u.index, now))?;
    }

    let mut deletions = Vec::new();
    for u in 0..world.users.len() as u32 {
        for k in 0..world.posted_count(u, now) {
            let t = world.tweet(u, k);
            let body = serde_json::to_vec(&ctx.tweet(&t))?;
            out.write_all(b"{\"kind\":\"tweet\",")?;
            out.write_all(&body[1..])?;
            out.write_all(b"\n")?;
            if let Some(d) = t.deleted_at.filter(|&d| d <= now) {
                deletions.push((t.id, d));
            }
        }
    }
    for (id, at) in deletions {
        line(
            out,
            &json!({"kind": "tweet_deletion", "id": id.to_string(), "at": format_time(at)}),
        )?;
    }

    let mut live: Vec<_> = lists.lists.iter().filter(|l| l.exists_at(now)).collect();
    live.sort_by_key(|l| l.id);
    for l in &live {
        let body = serde_json::to_vec(&ctx.list(l))?;
        out.write_all(b"{\"kind\":\"list\",")?;
        out.write_all(&body[1..])?;
        out.write_all(b"\n")?;
    }
    for (kind, pick) in [("membership", true), ("list_follow", false)] {
        for l in &live {
            let intervals: &[Interval] = if pick { &l.members } else { &l.followers };
            // Empty intervals are planned joins that were cancelled before they happened.
            for m in intervals
                .iter()
                .filter(|m| m.since <= now && m.until != Some(m.since))
            {
                line(
                    out,
                    &json!({
                        "kind": kind,
                        "list_id": l.id.to_string(),
                        "user_id": world.user(m.user).id.to_string(),
                        "since": format_time(m.since),
                        "until": m.until.filter(|&t| t <= now).map(format_time),
                    }),
                )?;
            }
        }
    }

    for (src, edges) in world.following.iter().enumerate() {
        let mut sorted: Vec<_> = edges.iter().filter(|e| e.since_ms() <= now).collect();
        sorted.sort_by_key(|e| e.user);
        for e in sorted {
            line(
                out,
                &json!({
                    "kind": "follow",
                    "source_id": world.users[src].id.to_string(),
                    "target_id": world.user(e.user).id.to_string(),
                    "since": format_time(e.since_ms()),
                }),
            )?;
        }
    }
    Ok(())
}

fn line(out: &mut dyn Write, v: &Value) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")
}

fn user_record(world: &World, index: u32, now: i64) -> Value {
    let u = world.user(index);
    let mut history = Vec::new();
    let mut changes = |field: &str, versions: Vec<(i64, String)>| {
        for pair in versions.windows(2) {
            if pair[1].0 <= now {
                history.push((
                    pair[1].0,
                    field.to_string(),
                    pair[0].1.clone(),
                    pair[1].1.clone(),
                ));
            }
        }
    };
    changes("username", u.username.clone());
    changes("name", u.name.clone());
    changes(
        "description",
        u.description
            .iter()
            .map(|(t, b)| (*t, b.text.clone()))
            .collect(),
    );
    changes("location", u.location.clone());
    changes(
        "url",
        u.url.iter().map(|(t, p)| (*t, p.tco.clone())).collect(),
    );
    changes("profile_image_url", u.profile_image_url.clone());
    let mut status = vec![(u.created_ms, "active".to_string())];
    for (at, s) in [
        (u.suspended_at, Status::Suspended),
        (u.deleted_at, Status::Deleted),
    ] {
        if let Some(at) = at {
            status.push((at, s.as_str().to_string()));
        }
    }
    status.sort_by_key(|(t, _)| *t);
    changes("status", status);
    history.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));

    json!({
        "kind": "user",
        "id": u.id.to_string(),
        "username": u.username_at(now),
        "name": u.name_at(now),
        "description": version_at(&u.description, now).text,
        "location": version_at(&u.location, now),
        "url": version_at(&u.url, now).tco,
        "profile_image_url": version_at(&u.profile_image_url, now),
        "protected": u.protected,
        "created_at": format_time(u.created_ms),
        "status": u.status_at(now).as_str(),
        "history": history
            .into_iter()
            .map(|(at, field, old, new)| {
                json!({"at": format_time(at), "field": field, "old": old, "new": new})
            })
            .collect::<Vec<_>>(),
    })
}
