#!/usr/bin/env bash
# Follows README.md's quick start as a reader would: runs the commands of its marked block
# (between `<!-- quickstart:begin -->` and `<!-- quickstart:end -->`) exactly as written, in
# a fresh bash started in the home directory, then checks that the capture archived the
# queued accounts' tweets. Because the commands are read from README.md, the README cannot
# describe a quick start that does not work.
#
#   bash tests/quickstart.sh [README]
#
# Expects the netwar tools and x-api-sim on PATH and HOME pointing at an empty directory (the
# quick start writes ~/.config/netwar and ~/.local/share/netwar); tests/quickstart.rs sets
# both up. Prints what the quick start printed; exits non-zero, saying why, when a command of
# the block fails or the capture is not in the archive.
set -euo pipefail

readme="${1:-$(dirname "$0")/../README.md}"
readme="$(cd "$(dirname "$readme")" && pwd)/$(basename "$readme")"
cd "$HOME"

fail() {
    echo "quickstart: $*" >&2
    exit 1
}

# The block's commands, without the Markdown fence around them.
block="$(sed -n '/^<!-- quickstart:begin -->$/,/^<!-- quickstart:end -->$/p' "$readme" |
    sed '1d;$d' | sed '/^```/d')"
[ -n "$block" ] || fail "no quick-start block in $readme"

# A reader's shell stops nothing on error; this one stops at the first failing command, and
# echoes each command so a failure shows where it happened. The simulator the block starts in
# the background is stopped however the block ends.
{
    echo "trap 'kill \$(jobs -p) 2>/dev/null || true' EXIT"
    echo "set -ex"
    printf '%s\n' "$block"
} >"$HOME/quickstart-block.sh"
bash "$HOME/quickstart-block.sh" || fail "a command of the quick start failed (see above)"

# What the block queued, as the handles it wrote.
[ -s accounts.txt ] || fail "the quick start wrote no accounts.txt"
mapfile -t accounts < <(sed 's/^@//' accounts.txt)

# Every queued account was dealt with: none is waiting, in flight or dead-lettered, and each
# has an outcome (captured, capped, protected, suspended, not found).
status="$(timeline-bulk status --json)"
echo "$status"
echo "$status" | grep -q '"waiting": 0,' || fail "jobs are still waiting"
echo "$status" | grep -q '"in_flight": \[\],' || fail "jobs are still in flight"
echo "$status" | grep -q '"dead_letters": \[\],' || fail "jobs were dead-lettered"
outcomes="$(echo "$status" | awk '
    /"outcomes": \{/ { counting = 1; next }
    counting && /\}/ { counting = 0 }
    counting { sub(/.*: /, ""); sub(/,/, ""); total += $0 }
    END { print total + 0 }')"
[ "$outcomes" -eq "${#accounts[@]}" ] ||
    fail "$outcomes outcomes recorded for ${#accounts[@]} queued accounts"

# The archive holds tweets, and the queued accounts are their authors (all but those with
# nothing to read: protected, suspended, deleted, or without a post).
tweets="$(netwar search --limit 0 --json)"
count="$(grep -c '^{"id":' <<<"$tweets" || true)"
[ "$count" -gt 0 ] || fail "netwar search found no archived tweet"
captured_authors=0
for account in "${accounts[@]}"; do
    if grep -q "\"author_username\":\"$account\"" <<<"$tweets"; then
        captured_authors=$((captured_authors + 1))
    fi
done
[ "$captured_authors" -gt 0 ] || fail "no archived tweet is by an account of accounts.txt"
echo "quickstart: $count tweets archived, by $captured_authors of the ${#accounts[@]} accounts"
