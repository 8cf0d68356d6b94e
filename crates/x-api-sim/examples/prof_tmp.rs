use std::time::Instant;
use x_api_sim::world::World;
fn main() {
    let start = 1_767_225_600_000;
    let w = World::new(7, 10_000, start);
    let c = w.posted_count(0, start);
    let t0 = Instant::now();
    let mut n = 0usize;
    for _ in 0..1000 {
        for k in c - 100..c {
            let t = w.tweet(0, k);
            n += t.text.len();
            if let Some((u, kk)) = t.target {
                n += w.tweet(u, kk).text.len();
            }
        }
    }
    println!("gen 100 (+refs): {:?} per page ({n})", t0.elapsed() / 1000);
    let t0 = Instant::now();
    for _ in 0..1000 {
        for k in c - 100..c {
            n += w.skeleton(0, k).mentions.len();
        }
    }
    println!("skeleton x100: {:?} per page ({n})", t0.elapsed() / 1000);
}
