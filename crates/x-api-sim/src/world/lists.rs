//! Lists: the part of the world that clients can change.
//!
//! Lists start from a seeded set (the operator account owns a few; about 4% of other accounts
//! own one to four) whose members join and leave at deterministic times, some of them in the
//! simulated future. The API can create, update and delete Lists and add or remove members and
//! followers, so the whole collection lives in this store behind a lock; every change records
//! its simulated time, so the ground truth can replay membership intervals.

use super::{DAY_MS, HOUR_MS, Status, World, future_offset, tag, vocab};
use crate::ids::{self, snowflake};
use crate::rng::rng_for;
use std::collections::HashMap;

/// A List holds at most this many members.
pub const MAX_MEMBERS: usize = 5_000;
/// An account owns at most this many Lists.
pub const MAX_OWNED: usize = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub user: u32,
    pub since: i64,
    /// When the membership or follow ended, if it did.
    pub until: Option<i64>,
}

impl Interval {
    pub fn active_at(&self, t: i64) -> bool {
        self.since <= t && self.until.is_none_or(|u| u > t)
    }
}

#[derive(Clone, Debug)]
pub struct ListRec {
    pub id: u64,
    pub owner: u32,
    pub name: String,
    pub description: String,
    pub private: bool,
    pub created_ms: i64,
    pub deleted_ms: Option<i64>,
    pub members: Vec<Interval>,
    pub followers: Vec<Interval>,
}

impl ListRec {
    pub fn exists_at(&self, t: i64) -> bool {
        self.created_ms <= t && self.deleted_ms.is_none_or(|d| d > t)
    }

    /// Whether a reader may see this List: public ones, or private ones they own.
    pub fn visible_to(&self, reader: Option<u32>) -> bool {
        !self.private || reader == Some(self.owner)
    }

    /// Current members whose accounts are active, newest first.
    pub fn members_at<'a>(&'a self, world: &'a World, t: i64) -> impl Iterator<Item = u32> + 'a {
        active(&self.members, world, t)
    }

    pub fn followers_at<'a>(&'a self, world: &'a World, t: i64) -> impl Iterator<Item = u32> + 'a {
        active(&self.followers, world, t)
    }
}

fn active<'a>(v: &'a [Interval], world: &'a World, t: i64) -> impl Iterator<Item = u32> + 'a {
    v.iter()
        .rev()
        .filter(move |m| m.active_at(t) && world.user(m.user).status_at(t) == Status::Active)
        .map(|m| m.user)
}

#[derive(Debug, Default)]
pub struct ListStore {
    pub lists: Vec<ListRec>,
    by_id: HashMap<u64, usize>,
    /// Each user's membership intervals as (List index, position in its `members`), so
    /// listing a user's Lists never scans member lists. Intervals are never removed, only
    /// ended, so positions stay valid.
    member_of: HashMap<u32, Vec<(usize, usize)>>,
    /// Each user's List follow intervals, likewise.
    follows: HashMap<u32, Vec<(usize, usize)>>,
    owned: HashMap<u32, Vec<usize>>,
    created: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ListWriteError {
    NotFound,
    NotOwner,
    TooManyMembers,
    TooManyLists,
}

const LIST_NAMES: &[&str] = &[
    "Journalists",
    "Sources",
    "Researchers",
    "Watchlist",
    "Friends",
    "Local news",
    "Officials",
    "Analysts",
    "Must read",
    "Accounts to watch",
    "Network A",
    "Network B",
];

impl ListStore {
    /// The seeded Lists of a world.
    pub fn generate(world: &World) -> ListStore {
        let mut store = ListStore::default();
        let n = world.users.len();
        for owner in 0..n as u32 {
            let u = world.user(owner);
            let mut rng = rng_for(&[world.seed, tag::LISTS, u64::from(owner)]);
            let count = if owner == 0 {
                3
            } else if u.suspended_at.is_none() && u.deleted_at.is_none() && rng.chance(0.04) {
                rng.range(1, 4)
            } else {
                0
            };
            for j in 0..count {
                let created_ms = if rng.chance(0.1) && owner != 0 {
                    world.start_ms + future_offset(&mut rng)
                } else {
                    // List ids are snowflakes, so no List predates the snowflake epoch.
                    let earliest = u.created_ms.max(ids::TWITTER_EPOCH_MS) + DAY_MS;
                    rng.range(earliest, world.start_ms - DAY_MS)
                };
                let topic = &vocab::TOPICS[rng.below(vocab::TOPICS.len() as u64) as usize];
                let name = if rng.chance(0.5) {
                    format!(
                        "{} {}",
                        capitalise(topic.name),
                        rng.pick(&["watch", "people", "accounts"])
                    )
                } else {
                    rng.pick(LIST_NAMES).to_string()
                };
                let description = if rng.chance(0.7) {
                    format!("Accounts about {} I follow closely.", topic.name)
                } else {
                    String::new()
                };
                let private = if owner == 0 { j == 2 } else { rng.chance(0.15) };

                // Members: mostly accounts the owner follows, some found elsewhere.
                let wanted = (rng.log_uniform(5.0, 300.0) as usize).min(n - 1);
                let mut picked = Vec::with_capacity(wanted);
                let following = &world.following[owner as usize];
                for _ in 0..wanted * 2 {
                    if picked.len() >= wanted {
                        break;
                    }
                    let m = if !following.is_empty() && rng.chance(0.7) {
                        following[rng.below(following.len() as u64) as usize].user
                    } else {
                        rng.below(n as u64) as u32
                    };
                    if m != owner && !picked.contains(&m) {
                        picked.push(m);
                    }
                }
                let members = picked
                    .into_iter()
                    .map(|m| {
                        let earliest = created_ms.max(world.user(m).created_ms);
                        let since = if rng.chance(0.2) {
                            earliest.max(world.start_ms) + future_offset(&mut rng)
                        } else {
                            earliest
                                + ((world.start_ms - earliest).max(1) as f64 * rng.unit()) as i64
                        };
                        let until = rng
                            .chance(0.15)
                            .then(|| since + HOUR_MS + future_offset(&mut rng) * 2);
                        Interval {
                            user: m,
                            since,
                            until,
                        }
                    })
                    .collect::<Vec<_>>();
                let mut followers = Vec::new();
                for _ in 0..rng.range(0, 40) {
                    let f = rng.below(n as u64) as u32;
                    let since = created_ms + rng.range(HOUR_MS, 90 * DAY_MS);
                    if f != owner {
                        followers.push(Interval {
                            user: f,
                            since,
                            until: None,
                        });
                    }
                }

                let id = snowflake(created_ms, (owner * 4 + j as u32) & ids::MAX_INDEX);
                store.insert(ListRec {
                    id,
                    owner,
                    name,
                    description,
                    private,
                    created_ms,
                    deleted_ms: None,
                    members,
                    followers,
                });
            }
        }
        store
    }

    fn insert(&mut self, mut rec: ListRec) {
        let idx = self.lists.len();
        rec.members.sort_by_key(|m| m.since);
        rec.followers.sort_by_key(|m| m.since);
        rec.followers.dedup_by_key(|f| f.user);
        for (pos, m) in rec.members.iter().enumerate() {
            self.member_of.entry(m.user).or_default().push((idx, pos));
        }
        for (pos, f) in rec.followers.iter().enumerate() {
            self.follows.entry(f.user).or_default().push((idx, pos));
        }
        self.owned.entry(rec.owner).or_default().push(idx);
        self.by_id.insert(rec.id, idx);
        self.lists.push(rec);
    }

    pub fn get(&self, id: u64) -> Option<&ListRec> {
        self.by_id.get(&id).map(|&i| &self.lists[i])
    }

    /// Lists owned by `u` existing at `t`, newest first.
    pub fn owned_by(&self, u: u32, t: i64) -> Vec<&ListRec> {
        self.owned_lists(self.owned.get(&u), t)
    }

    /// Lists `u` is a member of at `t`, newest first.
    pub fn memberships_of(&self, u: u32, t: i64) -> Vec<&ListRec> {
        self.intervals(self.member_of.get(&u), t, |l| &l.members)
    }

    /// Lists `u` follows at `t`, newest first.
    pub fn followed_by(&self, u: u32, t: i64) -> Vec<&ListRec> {
        self.intervals(self.follows.get(&u), t, |l| &l.followers)
    }

    fn owned_lists(&self, idx: Option<&Vec<usize>>, t: i64) -> Vec<&ListRec> {
        let mut out: Vec<&ListRec> = idx
            .into_iter()
            .flatten()
            .map(|&i| &self.lists[i])
            .filter(|l| l.exists_at(t))
            .collect();
        out.sort_by_key(|l| std::cmp::Reverse(l.id));
        out
    }

    fn intervals(
        &self,
        idx: Option<&Vec<(usize, usize)>>,
        t: i64,
        side: impl Fn(&ListRec) -> &Vec<Interval>,
    ) -> Vec<&ListRec> {
        let mut out: Vec<&ListRec> = idx
            .into_iter()
            .flatten()
            .filter(|&&(i, pos)| side(&self.lists[i])[pos].active_at(t))
            .map(|&(i, _)| &self.lists[i])
            .filter(|l| l.exists_at(t))
            .collect();
        out.sort_by_key(|l| std::cmp::Reverse(l.id));
        out.dedup_by_key(|l| l.id);
        out
    }

    /// Creates a List owned by `owner` at `now`.
    pub fn create(
        &mut self,
        owner: u32,
        name: &str,
        description: &str,
        private: bool,
        now: i64,
    ) -> Result<u64, ListWriteError> {
        if self.owned_by(owner, now).len() >= MAX_OWNED {
            return Err(ListWriteError::TooManyLists);
        }
        self.created += 1;
        // Created Lists use low bits above the seeded ones so their ids never collide.
        let low = (ids::MAX_INDEX - (self.created & 0xFFFF)) & ids::MAX_INDEX;
        let mut id = snowflake(now, low);
        while self.by_id.contains_key(&id) {
            id += 1;
        }
        self.insert(ListRec {
            id,
            owner,
            name: name.to_string(),
            description: description.to_string(),
            private,
            created_ms: now,
            deleted_ms: None,
            members: Vec::new(),
            followers: Vec::new(),
        });
        Ok(id)
    }

    fn owned_mut(&mut self, id: u64, actor: u32, now: i64) -> Result<&mut ListRec, ListWriteError> {
        let &i = self.by_id.get(&id).ok_or(ListWriteError::NotFound)?;
        let rec = &mut self.lists[i];
        if !rec.exists_at(now) || !rec.visible_to(Some(actor)) {
            return Err(ListWriteError::NotFound);
        }
        if rec.owner != actor {
            return Err(ListWriteError::NotOwner);
        }
        Ok(rec)
    }

    pub fn update(
        &mut self,
        id: u64,
        actor: u32,
        now: i64,
        name: Option<&str>,
        description: Option<&str>,
        private: Option<bool>,
    ) -> Result<(), ListWriteError> {
        let rec = self.owned_mut(id, actor, now)?;
        if let Some(n) = name {
            rec.name = n.to_string();
        }
        if let Some(d) = description {
            rec.description = d.to_string();
        }
        if let Some(p) = private {
            rec.private = p;
        }
        Ok(())
    }

    pub fn delete(&mut self, id: u64, actor: u32, now: i64) -> Result<(), ListWriteError> {
        self.owned_mut(id, actor, now)?.deleted_ms = Some(now);
        Ok(())
    }

    /// Adds a member; returns whether the user is now a member (true also if already one).
    pub fn add_member(
        &mut self,
        id: u64,
        actor: u32,
        user: u32,
        now: i64,
    ) -> Result<(), ListWriteError> {
        let &i = self.by_id.get(&id).ok_or(ListWriteError::NotFound)?;
        let rec = self.owned_mut(id, actor, now)?;
        if rec
            .members
            .iter()
            .any(|m| m.user == user && m.active_at(now))
        {
            return Ok(());
        }
        if rec.members.iter().filter(|m| m.active_at(now)).count() >= MAX_MEMBERS {
            return Err(ListWriteError::TooManyMembers);
        }
        rec.members.push(Interval {
            user,
            since: now,
            until: None,
        });
        let pos = rec.members.len() - 1;
        self.member_of.entry(user).or_default().push((i, pos));
        Ok(())
    }

    pub fn remove_member(
        &mut self,
        id: u64,
        actor: u32,
        user: u32,
        now: i64,
    ) -> Result<(), ListWriteError> {
        let rec = self.owned_mut(id, actor, now)?;
        end_interval(&mut rec.members, user, now);
        Ok(())
    }

    pub fn follow(&mut self, id: u64, user: u32, now: i64) -> Result<(), ListWriteError> {
        let &i = self.by_id.get(&id).ok_or(ListWriteError::NotFound)?;
        let rec = &mut self.lists[i];
        if !rec.exists_at(now) || !rec.visible_to(Some(user)) {
            return Err(ListWriteError::NotFound);
        }
        if !rec
            .followers
            .iter()
            .any(|f| f.user == user && f.active_at(now))
        {
            rec.followers.push(Interval {
                user,
                since: now,
                until: None,
            });
            let pos = rec.followers.len() - 1;
            self.follows.entry(user).or_default().push((i, pos));
        }
        Ok(())
    }

    pub fn unfollow(&mut self, id: u64, user: u32, now: i64) -> Result<(), ListWriteError> {
        let &i = self.by_id.get(&id).ok_or(ListWriteError::NotFound)?;
        let rec = &mut self.lists[i];
        if !rec.exists_at(now) {
            return Err(ListWriteError::NotFound);
        }
        end_interval(&mut rec.followers, user, now);
        Ok(())
    }
}

/// Ends `user`'s active interval at `now`. A future-dated one becomes empty (never active)
/// rather than removed, so positions recorded in the reverse indexes stay valid.
fn end_interval(v: &mut [Interval], user: u32, now: i64) {
    for m in v.iter_mut().filter(|m| m.user == user) {
        if m.since > now {
            m.until = Some(m.since);
        } else if m.active_at(now) {
            m.until = Some(now);
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_767_225_600_000;

    #[test]
    fn operator_owns_lists_and_writes_apply() {
        let w = World::new(1, 400, START);
        let mut s = ListStore::generate(&w);
        let owned = s.owned_by(0, START);
        assert_eq!(owned.len(), 3);
        let id = s.create(0, "new list", "", false, START + 10).unwrap();
        assert_eq!(s.owned_by(0, START + 10).len(), 4);
        s.add_member(id, 0, 7, START + 20).unwrap();
        assert_eq!(
            s.get(id).unwrap().members_at(&w, START + 30).count(),
            usize::from(w.user(7).status_at(START + 30) == Status::Active)
        );
        assert_eq!(
            s.add_member(id, 1, 8, START + 20),
            Err(ListWriteError::NotOwner)
        );
        s.remove_member(id, 0, 7, START + 40).unwrap();
        assert_eq!(s.get(id).unwrap().members_at(&w, START + 50).count(), 0);
        assert!(s.memberships_of(7, START + 50).iter().all(|l| l.id != id));
        s.delete(id, 0, START + 60).unwrap();
        assert_eq!(s.owned_by(0, START + 60).len(), 3);
    }
}
